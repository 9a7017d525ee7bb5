/**
 * A store lock left by a dead holder lapses for the next run, although
 * every acquisition is a new holder (`name~token`): on Deno KV (judged by
 * this process's observation of the record) and on Redis (judged by the
 * server's expiry).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import {
  acquireStoreLock,
  type FleetTarget,
  StoreLockedError,
} from "../../src/fleet/operator.ts";
import type { FleetStore } from "../../src/fleet/store.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";

const TTL_MS = 300;

async function takeOverDeadHolder(store: FleetStore): Promise<void> {
  const target = (by: string): FleetTarget => ({
    store,
    service: "svc",
    by,
    now: () => Date.now(),
  });
  // Taken and never renewed nor released: its process was SIGKILLed.
  await acquireStoreLock(target("s2"), "rotate --every", TTL_MS);
  const started = Date.now();
  for (;;) {
    try {
      // A new acquisition at each try, as a scheduler's tick makes.
      const lock = await acquireStoreLock(
        target("s1"),
        "rotate --every",
        TTL_MS,
      );
      await lock[Symbol.asyncDispose]();
      break;
    } catch (error) {
      if (!(error instanceof StoreLockedError)) throw error;
    }
    assert.ok(
      Date.now() - started < 20 * TTL_MS,
      `the dead holder's lock did not lapse within ${20 * TTL_MS} ms`,
    );
    await new Promise((r) => setTimeout(r, TTL_MS / 3));
  }
}

Deno.test("kv: a dead holder's store lock lapses for a later acquisition", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await takeOverDeadHolder(createKvFleetStore(kv, { prefix: ["lapse"] }));
  } finally {
    kv.close();
  }
});

Deno.test({
  name: "redis: a dead holder's store lock lapses for a later acquisition",
  ignore: ignoreWithoutRedis(),
  async fn() {
    await using server = await startRedisServer();
    const store = createRedisFleetStore({ url: server.url, prefix: "lapse" });
    try {
      await takeOverDeadHolder(store);
    } finally {
      await store.close();
    }
  },
});
