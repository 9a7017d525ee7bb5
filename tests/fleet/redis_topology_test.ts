/**
 * The Redis engine past one node: the shared contract suite on a 3-master
 * Redis Cluster and on a master with a replica watched by three sentinels,
 * every key of a fleet in one slot, and the options that choose a topology.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { RedisAuthError } from "../../src/fleet/redis_errors.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { ignoreWithoutRedis } from "../support/redis_server.ts";
import {
  ignoreWithoutRedisSentinel,
  redisCommand,
  startRedisCluster,
  startRedisSentinelSet,
} from "../support/redis_topology.ts";
import { fleetStoreContract } from "./contract.ts";

// The Cluster needs redis-server only; the Sentinel set redis-sentinel too.
const ignoreCluster = ignoreWithoutRedis();
const ignoreSentinel = ignoreWithoutRedisSentinel();
let unique = 0;
const prefix = () => `topology:${Date.now()}:${unique++}`;

Deno.test({
  name: "Redis fleet store keeps the contract on a 3-master Redis Cluster",
  ignore: ignoreCluster,
}, async (t) => {
  await using cluster = await startRedisCluster({ masters: 3 });
  await fleetStoreContract(t, () => {
    const store = createRedisFleetStore({
      cluster: { nodes: cluster.urls },
      prefix: prefix(),
    });
    return Promise.resolve({ store, close: () => store.close() });
  });

  await t.step(
    "every key of a fleet lands on one master (one hash tag, one slot)",
    async () => {
      // Prefixes whose tags hash to different masters, so a key without the
      // tag would be visible as a stray on another node.
      const prefixes = Array.from({ length: 6 }, prefix);
      const stores = prefixes.map((p) =>
        createRedisFleetStore({ cluster: { nodes: cluster.urls }, prefix: p })
      );
      try {
        for (const store of stores) {
          const key = { credential: "c", slot: 0 };
          assert.equal(
            await store.tryLease(key, { holder: "a", until: 5_000 }, 1_000),
            true,
          );
          assert.equal(
            await store.writeGrant(key, {
              token: "t",
              sealed: false,
              clientId: "id",
              expiresAt: 10_000,
              refreshAt: 8_000,
              writtenAt: 1_000,
              writtenBy: "a",
            }, "a"),
            true,
          );
          await store.heartbeat({
            instanceId: "a",
            host: "h",
            active: "blue",
            credentials: [],
            version: "0",
            startedAt: 1,
            seenAt: 1_000,
            until: 9_000,
          });
          await store.appendAudit("svc", {
            at: 1,
            by: "a",
            action: "rotate",
            outcome: "ok",
          });
          assert.equal(
            await store.writeDocument("svc", "doc", 0, { a: 1 }),
            true,
          );
        }
        const owners = new Set<number>();
        for (const p of prefixes) {
          const owner = await cluster.masterOf(`{${p}}`);
          owners.add(owner);
          for (const node of cluster.nodes) {
            const [, keys] = await redisCommand(node.port, [
              "SCAN",
              "0",
              "MATCH",
              `*${p}*`,
              "COUNT",
              "100000",
            ]) as [string, string[]];
            if (node.port === owner) {
              assert.ok(keys.length >= 5, `${p}: ${keys}`);
              assert.ok(keys.every((key) => key.startsWith(`{${p}}:`)));
            } else {
              assert.deepEqual(keys, [], `${p} has keys on ${node.port}`);
            }
          }
        }
        assert.ok(owners.size > 1, "the prefixes spread over the masters");
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    },
  );
  await t.step("a change is announced over pub/sub", async () => {
    const p = prefix();
    await assertAnnounced(() =>
      createRedisFleetStore({ cluster: { nodes: cluster.urls }, prefix: p })
    );
  });
  await t.step("a refused user is a RedisAuthError", async () => {
    await assertAuthRefused(createRedisFleetStore({
      cluster: { nodes: cluster.urls },
      username: "nobody",
      password: "wrong",
      prefix: prefix(),
    }));
  });
});

/** A change written by one store is announced to another one's watch. */
async function assertAnnounced(
  make: () => ReturnType<typeof createRedisFleetStore>,
): Promise<void> {
  const writer = make();
  const watcher = make();
  try {
    let seen = 0;
    const unwatch = watcher.watch!("svc", [], () => seen++);
    const end = Date.now() + 10_000;
    // The subscription is made in the background: write until one arrives.
    for (let generation = 0; seen === 0 && Date.now() < end; generation++) {
      assert.equal(
        await writer.compareAndSetActive("svc", generation, {
          label: "blue",
          generation: generation + 1,
          by: "w",
          at: 1,
          reason: "initial",
        }),
        true,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    unwatch();
    assert.ok(seen > 0, "an announcement arrived");
  } finally {
    await writer.close();
    await watcher.close();
  }
}

/** The nodes have only the default user: any other is refused (WRONGPASS). */
async function assertAuthRefused(
  store: ReturnType<typeof createRedisFleetStore>,
): Promise<void> {
  try {
    await assert.rejects(() => store.connected(5_000), (error: Error) => {
      assert.ok(error instanceof RedisAuthError, String(error));
      assert.equal(error.code, "REDIS_AUTH_FAILED");
      assert.match(error.message, /nobody/);
      assert.doesNotMatch(error.message, /wrong/);
      return true;
    });
  } finally {
    await store.close();
  }
}

Deno.test({
  name:
    "Redis fleet store keeps the contract on a master, a replica and three sentinels",
  ignore: ignoreSentinel,
}, async (t) => {
  await using set = await startRedisSentinelSet();
  await fleetStoreContract(t, () => {
    const store = createRedisFleetStore({
      sentinel: { name: set.name, sentinels: set.sentinelUrls },
      prefix: prefix(),
    });
    return Promise.resolve({ store, close: () => store.close() });
  });
  await t.step("a change is announced over pub/sub", async () => {
    const p = prefix();
    await assertAnnounced(() =>
      createRedisFleetStore({
        sentinel: { name: set.name, sentinels: set.sentinelUrls },
        prefix: p,
      })
    );
  });
  await t.step("a refused user is a RedisAuthError", async () => {
    await assertAuthRefused(createRedisFleetStore({
      sentinel: { name: set.name, sentinels: set.sentinelUrls },
      username: "nobody",
      password: "wrong",
      prefix: prefix(),
    }));
  });
  await t.step("an unknown master name is not reachable", async () => {
    const store = createRedisFleetStore({
      sentinel: { name: "no-such-master", sentinels: set.sentinelUrls },
      prefix: prefix(),
    });
    try {
      await assert.rejects(() => store.connected(3_000), (error: Error) => {
        assert.equal((error as { code?: string }).code, "REDIS_UNAVAILABLE");
        assert.match(error.message, /No such master/);
        return true;
      });
    } finally {
      await store.close();
    }
  });
});

Deno.test("Redis fleet options: one topology, well-formed node URLs", () => {
  const sentinel = { name: "m", sentinels: ["redis://127.0.0.1:26379"] };
  const cluster = { nodes: ["redis://127.0.0.1:7000"] };
  const refused: [Record<string, unknown>, string][] = [
    [{ url: "redis://127.0.0.1:6379", sentinel }, "fleet.sentinel"],
    [{ sentinel, cluster }, "fleet.cluster"],
    [{ sentinel: { name: "", sentinels: sentinel.sentinels } }, "name"],
    [{ sentinel: { name: "m", sentinels: [] } }, "fleet.sentinel.sentinels"],
    [{ cluster: { nodes: ["127.0.0.1:7000"] } }, "fleet.cluster.nodes[0]"],
    [
      { cluster: { nodes: ["redis://a:1", "rediss://b:2"] } },
      "fleet.cluster.nodes",
    ],
  ];
  for (const [options, option] of refused) {
    assert.throws(
      () => createRedisFleetStore({ prefix: "p", ...options }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.ok(error.option.includes(option), error.option);
        return true;
      },
    );
  }
});
