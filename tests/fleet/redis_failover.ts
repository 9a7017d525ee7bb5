/**
 * A Redis master failed over under a fleet of processes taking traffic: a
 * Sentinel set told `SENTINEL FAILOVER`, or the master of the fleet's slot
 * in a Redis Cluster killed (SIGKILL) so that its replica takes over. Shared
 * by tests/fleet/redis_failover_test.ts (which asserts) and
 * bench/scenarios/redis_failover.ts (which reports).
 *
 * The time to rejoin is measured on the new master itself: from the moment
 * the failover starts until every instance's heartbeat, written after the new
 * master took over, is there. Its resolution is one heartbeat interval
 * (`heartbeatMs / 3`).
 *
 * @module
 */
import { startGenesysEmulator } from "../../testing.ts";
import {
  redisCommand,
  startRedisCluster,
  startRedisSentinelSet,
} from "../support/redis_topology.ts";
import type { ChildConfig } from "./child.ts";
import { type ChildMessage, type FleetChild, startFleet } from "./harness.ts";

/** Options of {@linkcode runRedisFailover}. */
export interface RedisFailoverOptions {
  /** `sentinel`: `SENTINEL FAILOVER`; `cluster`: the slot's master killed. */
  readonly topology: "sentinel" | "cluster";
  /** How many processes; default 8. */
  readonly processes?: number;
  /** A call per process every this many ms; default 30. */
  readonly intervalMs?: number;
  /** Heartbeat option of each instance; default 1500 (a beat every 500 ms). */
  readonly heartbeatMs?: number;
  /** Called with progress lines. */
  readonly progress?: (line: string) => void;
}

/** What {@linkcode runRedisFailover} saw. */
export interface RedisFailoverRun {
  /** The topology. */
  readonly topology: "sentinel" | "cluster";
  /** Processes that took traffic. */
  readonly processes: number;
  /** Calls (`getAccessToken()`) made, all processes. */
  readonly calls: number;
  /** Calls that failed, all processes. */
  readonly failed: number;
  /** The first errors, for a failure report. */
  readonly errors: readonly string[];
  /** From the start of the failover until the new master took over, in ms. */
  readonly failoverMs: number;
  /**
   * From the start of the failover until every instance's heartbeat was on
   * the new master, in ms; undefined if some never came (within 30 s).
   */
  readonly rejoinMs?: number;
  /** Per instance, the same (instances that came back). */
  readonly rejoinByInstance: Readonly<Record<string, number>>;
  /** Token requests the emulator received during the run. */
  readonly tokenRequests: number;
  /** The children's summaries. */
  readonly summaries: readonly ChildMessage[];
}

const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the topology, an emulator and the fleet, fails the master over
 * mid-traffic, and measures.
 *
 * @param options Topology, size and timing.
 * @returns The figures and the children's summaries.
 */
export async function runRedisFailover(
  options: RedisFailoverOptions,
): Promise<RedisFailoverRun> {
  const n = options.processes ?? 8;
  const progress = options.progress ?? (() => {});
  const prefix = `failover:${options.topology}:${Date.now()}`;
  const tag = `{${prefix}}`;
  const heartbeatMs = options.heartbeatMs ?? 1_500;
  // As quick to notice a dead node as a production set-up might be.
  await using topology = options.topology === "sentinel"
    ? await startRedisSentinelSet("dsa-master", 1_000)
    : await startRedisCluster({
      masters: 3,
      replicasPerMaster: 1,
      nodeTimeoutMs: 1_000,
    });
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
      // Refreshed about every 2 s: the run crosses refreshes and an expiry.
      tokenLifetimeSeconds: 3,
    })),
  });
  const where: Partial<ChildConfig> = "sentinelUrls" in topology
    ? {
      redisSentinel: {
        name: topology.name,
        sentinels: [...topology.sentinelUrls],
      },
    }
    : { redisCluster: { nodes: [...topology.urls] } };
  const masterPort = () =>
    "sentinelUrls" in topology ? topology.masterPort() : topology.masterOf(tag);
  const dir = await Deno.makeTempDir({ prefix: "redis-failover-" });
  const config = (i: number): ChildConfig => ({
    ...where,
    redisPrefix: prefix,
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    instanceId: `p${i}`,
    fleetSize: n,
    credentials: CREDENTIALS,
    tokensPerCredential: 2,
    refreshMarginMs: 1_000,
    pollIntervalMs: 200,
    leaseMs: 1_500,
    storeTimeoutMs: 1_500,
    heartbeatMs,
  });
  const children: FleetChild[] = [];
  const summaries: ChildMessage[] = [];
  let failoverMs = 0;
  const rejoined: Record<string, number> = {};
  try {
    children.push(...await startFleet(n, config, dir));
    await Promise.all(
      children.map((c) =>
        c.send({ cmd: "traffic", intervalMs: options.intervalMs ?? 30 })
      ),
    );
    await sleep(1_500);
    const before = await masterPort();
    progress(`${options.topology}: master on ${before}, failing it over`);
    const started = Date.now();
    let after: number;
    if ("sentinelUrls" in topology) {
      after = await topology.failover();
    } else {
      await topology.nodes.find((node) => node.port === before)!.kill();
      const end = Date.now() + 30_000;
      after = before;
      while (after === before && Date.now() < end) {
        await sleep(50);
        after = await masterPort().catch(() => before);
      }
      if (after === before) throw new Error("no replica took over in 30 s");
    }
    const tookOver = Date.now();
    failoverMs = tookOver - started;
    progress(
      `${options.topology}: master now on ${after} after ${failoverMs} ms`,
    );
    const end = Date.now() + 30_000;
    while (Object.keys(rejoined).length < n && Date.now() < end) {
      const ids = await redisCommand(after, [
        "ZRANGE",
        `${tag}:instances`,
        "0",
        "-1",
      ]).catch(() => []) as string[];
      if (ids.length > 0) {
        const values = await redisCommand(after, [
          "MGET",
          ...ids.map((id) => `${tag}:instance:${id}`),
        ]).catch(() => []) as (string | null)[];
        for (const value of values) {
          if (value === null) continue;
          const record = JSON.parse(value) as {
            instanceId: string;
            seenAt: number;
          };
          if (
            record.seenAt >= tookOver && rejoined[record.instanceId] ===
              undefined
          ) {
            rejoined[record.instanceId] = record.seenAt - started;
          }
        }
      }
      await sleep(50);
    }
    // Past one more refresh on the new master.
    await sleep(2_500);
  } finally {
    for (const summary of await Promise.all(children.map((c) => c.stop()))) {
      if (summary) summaries.push(summary);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
  const times = Object.values(rejoined);
  return {
    topology: options.topology,
    processes: n,
    calls: summaries.reduce(
      (sum, s) => sum + (s.ok as number) + (s.failed as number),
      0,
    ),
    failed: summaries.reduce((sum, s) => sum + (s.failed as number), 0),
    errors: summaries.flatMap((s) => s.errors as string[]).slice(0, 5),
    failoverMs,
    ...(times.length === n ? { rejoinMs: Math.max(...times) } : {}),
    rejoinByInstance: rejoined,
    tokenRequests: emulator.stats().tokenRequests,
    summaries,
  };
}
