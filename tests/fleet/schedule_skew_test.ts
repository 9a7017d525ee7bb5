/**
 * Two schedulers whose wall clocks differ by 120 s share one store: the
 * leader lease is judged by the store (Redis: server-side expiry; Deno KV:
 * an unchanged versionstamp for a lease length on the contender's monotonic
 * clock), so there is one leader at a time and one regeneration per cycle,
 * even while the leader pauses and the other takes over. Runs on Deno KV and
 * on Redis.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { type FleetTarget, holderName } from "../../src/fleet/operator.ts";
import {
  readScheduleState,
  type ScheduleOptions,
  scheduleTick,
} from "../../src/fleet/schedule.ts";
import type { FleetStore } from "../../src/fleet/store.ts";
import {
  ignoreWithoutRedis,
  sharedOrOwnRedis,
} from "../support/redis_server.ts";

const SKEW_MS = 120_000;
const LEASE_MS = 300;
const CYCLES = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function twoSkewedSchedulers(
  stores: readonly [FleetStore, FleetStore],
): Promise<void> {
  const regenerations: { by: string; standby: string; cycle: number }[] = [];
  let generation = 0;
  let running = 0;
  const targets: FleetTarget[] = stores.map((store, i) => ({
    store,
    service: "svc",
    by: `scheduler-${i}`,
    // Scheduler 1 runs 120 s ahead of scheduler 0.
    now: () => Date.now() + i * SKEW_MS,
  }));
  const options = (target: FleetTarget): ScheduleOptions => ({
    target,
    credentials: [
      { label: "blue", clientId: "blue-id" },
      { label: "green", clientId: "green-id" },
    ],
    initialActive: "blue",
    everyMs: 150,
    leaseMs: LEASE_MS,
    lockTtlMs: LEASE_MS,
    tokenLifetimeMs: 1_000,
    drainBoundMs: 0,
    // No instance in this store: the schedulers alone are under test.
    presence: { allowEmpty: true },
    async rotate(standby) {
      running++;
      assert.equal(running, 1, "two regenerations at once");
      const state = await readScheduleState(target);
      regenerations.push({
        by: target.by,
        standby,
        cycle: (state?.completed ?? 0) + 1,
      });
      // A regeneration takes a while: both schedulers tick meanwhile.
      await sleep(LEASE_MS / 2);
      running--;
      return ++generation;
    },
  });
  const paused = new Set<number>();
  const leaders = new Set<string>();
  const deadline = Date.now() + 30_000;
  const done = async () =>
    ((await readScheduleState(targets[0]))?.completed ?? 0) >= CYCLES ||
    Date.now() > deadline;
  // Each scheduler ticks on its own, as two processes would.
  const run = async (i: number) => {
    while (!(await done())) {
      if (!paused.has(i)) {
        const tick = await scheduleTick(options(targets[i]));
        if (tick.leader) leaders.add(targets[i].by);
      }
      await sleep(20);
    }
  };
  // Every so often the leader pauses for two lease lengths between ticks:
  // the other must take over once the store says the lease lapsed.
  const pauser = (async () => {
    while (!(await done())) {
      await sleep(700);
      const lock = await stores[0].readLock("svc", "schedule/leader");
      const index =
        lock !== undefined && holderName(lock.holder) === "scheduler-1" ? 1 : 0;
      paused.add(index);
      await sleep(2 * LEASE_MS);
      paused.delete(index);
    }
  })();
  await Promise.all([run(0), run(1), pauser]);
  const state = await readScheduleState(targets[0]);
  assert.equal(state?.completed, CYCLES, JSON.stringify(state));
  const perCycle = new Map<number, number>();
  for (const r of regenerations) {
    perCycle.set(r.cycle, (perCycle.get(r.cycle) ?? 0) + 1);
  }
  assert.deepEqual(
    [...perCycle],
    Array.from({ length: CYCLES }, (_, i) => [i + 1, 1]),
    `one regeneration per cycle: ${JSON.stringify(regenerations)}`,
  );
  assert.deepEqual(
    regenerations.map((r) => r.standby),
    ["green", "blue", "green", "blue"],
  );
  assert.equal(leaders.size, 2, "both schedulers led at some point");
}

Deno.test("two schedulers 120 s apart on one Deno KV: one leader at a time, one regeneration per cycle", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await twoSkewedSchedulers([
      createKvFleetStore(kv, { prefix: ["skew"] }),
      createKvFleetStore(kv, { prefix: ["skew"] }),
    ]);
  } finally {
    kv.close();
  }
});

Deno.test({
  name:
    "two schedulers 120 s apart on one Redis: one leader at a time, one regeneration per cycle",
  ignore: ignoreWithoutRedis(),
}, async () => {
  await using redis = await sharedOrOwnRedis();
  const prefix = `skew:${Date.now()}`;
  const stores = [
    createRedisFleetStore({ url: redis.url, prefix }),
    createRedisFleetStore({ url: redis.url, prefix }),
  ] as const;
  try {
    await twoSkewedSchedulers(stores);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});
