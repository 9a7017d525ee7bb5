/**
 * Throwaway Redis topologies for the Sentinel and Cluster tests, built from
 * {@linkcode startRedisServer}: a Cluster of masters (and replicas) joined
 * with `CLUSTER MEET`, and a master with a replica watched by three
 * `redis-sentinel` processes. Everything on free loopback ports, in temp
 * dirs removed on dispose.
 *
 * `redis-sentinel` is found on `PATH` or named by `REDIS_SENTINEL`. In CI
 * (`CI=true`) or with `DSA_REQUIRE_REDIS=1` a missing binary FAILS the tests,
 * as a missing `redis-server` does.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { createClient } from "npm:@redis/client@^6.3.1";
import { type RunningChild, startChild } from "./child_process.ts";
import { untilTrue } from "./wait.ts";
import {
  findRedisServer,
  freePort,
  redisRequired,
  type RedisTestServer,
  startRedisServer,
} from "./redis_server.ts";

/**
 * The redis-sentinel binary, or undefined when there is none.
 *
 * @returns Its path or command name.
 */
export function findRedisSentinel(): string | undefined {
  const named = Deno.env.get("REDIS_SENTINEL");
  if (named) return named;
  try {
    const found = new Deno.Command("redis-sentinel", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return found.success ? "redis-sentinel" : undefined;
  } catch {
    return undefined;
  }
}

let notedMissing = false;

/**
 * `ignore` for a `Deno.test` that needs redis-server and redis-sentinel: true
 * only when one is missing and Redis is not required (a note is printed once).
 *
 * @returns Whether to ignore the test.
 */
export function ignoreWithoutRedisSentinel(): boolean {
  if (
    (findRedisServer() !== undefined && findRedisSentinel() !== undefined) ||
    redisRequired()
  ) {
    return false;
  }
  if (!notedMissing) {
    notedMissing = true;
    console.warn(
      "redis-server or redis-sentinel not found: Redis Sentinel tests ignored (apt-get install -y redis-server redis-sentinel; CI fails instead)",
    );
  }
  return true;
}

/** Sends one command to one node on a short-lived connection. */
export async function redisCommand(
  port: number,
  args: string[],
): Promise<unknown> {
  const client = createClient({
    url: `redis://127.0.0.1:${port}`,
    socket: { reconnectStrategy: false, connectTimeout: 2_000 },
  });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

/** Waits for a topology to settle: elections and syncs take seconds. */
const settled = (what: string, check: () => Promise<boolean>) =>
  untilTrue(what, check, { timeoutMs: 30_000 });

/** A Redis Cluster started by {@linkcode startRedisCluster}. */
export interface RedisTestCluster extends AsyncDisposable {
  /** The masters, in slot order, then the replicas. */
  readonly nodes: readonly RedisTestServer[];
  /** `redis://127.0.0.1:<port>` of every node, for `cluster.nodes`. */
  readonly urls: readonly string[];
  /**
   * The port of the master that serves a key now.
   *
   * @param key The key (or its hash tag, `{tag}`).
   * @returns The port.
   */
  masterOf(key: string): Promise<number>;
  /** Waits until every live node says `cluster_state:ok`. */
  healthy(): Promise<void>;
}

/**
 * Starts a Redis Cluster on loopback: `masters` masters splitting the 16384
 * slots, each with `replicasPerMaster` replicas.
 *
 * @param options How many masters and replicas, and `nodeTimeoutMs`
 *   (`cluster-node-timeout`; default 5000, so that a loaded machine does not
 *   fail a node over by itself; 1000 replaces a killed master in about 2 s).
 * @returns The running cluster, healthy; dispose it.
 */
export async function startRedisCluster(
  options: {
    masters?: number;
    replicasPerMaster?: number;
    nodeTimeoutMs?: number;
  } = {},
): Promise<RedisTestCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const nodes: RedisTestServer[] = [];
  const dispose = async () => {
    await Promise.all(nodes.map((node) => node[Symbol.asyncDispose]()));
  };
  try {
    const buses: number[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) {
      buses.push(freePort());
      nodes.push(
        await startRedisServer({
          config: [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            `cluster-node-timeout ${options.nodeTimeoutMs ?? 5_000}`,
            `cluster-port ${buses[i]}`,
            // A replica may take over however long its link was down.
            "cluster-replica-validity-factor 0",
          ],
        }),
      );
    }
    const per = Math.ceil(16384 / masters);
    for (let i = 0; i < masters; i++) {
      await redisCommand(nodes[i].port, [
        "CLUSTER",
        "ADDSLOTSRANGE",
        String(i * per),
        String(Math.min(16383, (i + 1) * per - 1)),
      ]);
    }
    for (let i = 1; i < nodes.length; i++) {
      await redisCommand(nodes[0].port, [
        "CLUSTER",
        "MEET",
        "127.0.0.1",
        String(nodes[i].port),
        String(buses[i]),
      ]);
    }
    await settled("every node meeting every other", async () => {
      for (const node of nodes) {
        const text = await redisCommand(node.port, ["CLUSTER", "NODES"]);
        const known = String(text).trim().split("\n")
          .filter((line) => !/\b(handshake|noaddr)\b/.test(line));
        if (known.length !== nodes.length) return false;
      }
      return true;
    });
    for (let r = 0; r < masters * replicas; r++) {
      const master = nodes[r % masters];
      const id = await redisCommand(master.port, ["CLUSTER", "MYID"]);
      await redisCommand(nodes[masters + r].port, [
        "CLUSTER",
        "REPLICATE",
        String(id),
      ]);
    }
    const healthy = () =>
      settled("cluster_state:ok on every node", async () => {
        for (const node of nodes) {
          let info: unknown;
          try {
            info = await redisCommand(node.port, ["CLUSTER", "INFO"]);
          } catch {
            continue; // A killed node.
          }
          if (!String(info).includes("cluster_state:ok")) return false;
        }
        return true;
      });
    await healthy();
    if (replicas > 0) {
      await settled("every replica in sync", async () => {
        for (const node of nodes.slice(masters)) {
          const info = String(
            await redisCommand(node.port, ["INFO", "replication"]),
          );
          if (!info.includes("master_link_status:up")) return false;
        }
        return true;
      });
    }
    return {
      nodes,
      urls: nodes.map((node) => `redis://127.0.0.1:${node.port}`),
      async masterOf(key: string) {
        let slot: number | undefined;
        for (const node of nodes) {
          try {
            slot ??= await redisCommand(node.port, [
              "CLUSTER",
              "KEYSLOT",
              key,
            ]) as number;
            const slots = await redisCommand(node.port, [
              "CLUSTER",
              "SLOTS",
            ]) as [number, number, [string, number]][];
            const range = slots.find(([from, to]) =>
              from <= slot! && slot! <= to
            );
            if (range !== undefined) return range[2][1];
          } catch {
            // A killed node: ask the next.
          }
        }
        throw new Error(`no node serves slot ${slot}`);
      },
      healthy,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** A Sentinel set started by {@linkcode startRedisSentinelSet}. */
export interface RedisTestSentinelSet extends AsyncDisposable {
  /** The master's name for the sentinels. */
  readonly name: string;
  /** The first master and its replica (their roles swap on failover). */
  readonly servers: readonly RedisTestServer[];
  /** `redis://127.0.0.1:<port>` of each sentinel, for `sentinel.sentinels`. */
  readonly sentinelUrls: readonly string[];
  /**
   * The master's port as the sentinels say.
   *
   * @returns The port.
   */
  masterPort(): Promise<number>;
  /**
   * `SENTINEL FAILOVER` and waits until every sentinel names the replica
   * as master and the old master follows it.
   *
   * @returns The new master's port.
   */
  failover(): Promise<number>;
  /** The sentinels' logs, for failure reports. */
  log(): string;
}

/**
 * Starts a master, one replica and three sentinels (quorum 2) on loopback.
 *
 * @param name The master's name.
 * @param downAfterMs `down-after-milliseconds`: how long a master may not
 *   answer before the sentinels fail it over by themselves; default 5000, so
 *   that a loaded machine does not fail it over unasked.
 * @returns The running set, once the sentinels know the replica and each
 *   other; dispose it.
 */
export async function startRedisSentinelSet(
  name = "dsa-master",
  downAfterMs = 5_000,
): Promise<RedisTestSentinelSet> {
  const binary = findRedisSentinel();
  if (binary === undefined) {
    throw new Error(
      "redis-sentinel not found: install it (apt-get install -y redis-sentinel) or set REDIS_SENTINEL to its path",
    );
  }
  const servers: RedisTestServer[] = [];
  const sentinels: RunningChild[] = [];
  const dirs: string[] = [];
  let pastLogs = "";
  const dispose = async () => {
    for (const sentinel of sentinels.splice(0)) {
      await sentinel.stop();
      pastLogs += sentinel.output();
    }
    await Promise.all(servers.map((server) => server[Symbol.asyncDispose]()));
    await Promise.all(
      dirs.map((dir) => Deno.remove(dir, { recursive: true }).catch(() => {})),
    );
  };
  try {
    servers.push(await startRedisServer());
    servers.push(
      await startRedisServer({
        config: [`replicaof 127.0.0.1 ${servers[0].port}`],
      }),
    );
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = await Deno.makeTempDir({ prefix: "dsa-sentinel-" });
      dirs.push(dir);
      const port = freePort();
      ports.push(port);
      await Deno.writeTextFile(
        `${dir}/sentinel.conf`,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          "protected-mode no",
          `dir ${dir}`,
          'logfile ""',
          `sentinel monitor ${name} 127.0.0.1 ${servers[0].port} 2`,
          `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
          `sentinel failover-timeout ${name} 10000`,
          "",
        ].join("\n"),
      );
      sentinels.push(
        await startChild({
          program: binary,
          args: [`${dir}/sentinel.conf`],
          env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
          ready: /\+monitor master/,
          timeoutMs: 30_000,
        }),
      );
    }
    let seen = "";
    await settled(
      "the sentinels knowing the replica and each other",
      async () => {
        for (const port of ports) {
          const replicas = await redisCommand(port, [
            "SENTINEL",
            "REPLICAS",
            name,
          ]) as unknown[];
          const others = await redisCommand(port, [
            "SENTINEL",
            "SENTINELS",
            name,
          ]) as unknown[];
          seen = JSON.stringify({ port, replicas, others });
          const up = /"master-link-status"[,:]"ok"/.test(
            JSON.stringify(replicas),
          );
          if (replicas.length !== 1 || !up || others.length !== 2) return false;
        }
        return true;
      },
    ).catch((error) => {
      throw new Error(`${error.message}; last seen ${seen}`);
    });
    const masterPort = async () => {
      const [, port] = await redisCommand(ports[0], [
        "SENTINEL",
        "GET-MASTER-ADDR-BY-NAME",
        name,
      ]) as [string, string];
      return Number(port);
    };
    return {
      name,
      servers,
      sentinelUrls: ports.map((port) => `redis://127.0.0.1:${port}`),
      masterPort,
      async failover() {
        const before = await masterPort();
        const replica = servers.find((server) => server.port !== before)!;
        await redisCommand(ports[0], ["SENTINEL", "FAILOVER", name]);
        await settled("the failover", async () => {
          for (const port of ports) {
            const [, now] = await redisCommand(port, [
              "SENTINEL",
              "GET-MASTER-ADDR-BY-NAME",
              name,
            ]) as [string, string];
            if (Number(now) !== replica.port) return false;
          }
          const role = await redisCommand(replica.port, ["ROLE"]) as unknown[];
          return role[0] === "master";
        });
        return replica.port;
      },
      log: () => pastLogs + sentinels.map((s) => s.output()).join("\n"),
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
