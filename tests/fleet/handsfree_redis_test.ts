/**
 * `rotate --redis` and `promote --redis`: the hands-free rotation on the
 * Redis engine, with 3 `deno run` instances on one Redis.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { serviceNamespace } from "../../src/fleet/distribution.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import {
  createFleetWorkspace,
  type FleetChild,
  fleetInstance,
  startFleet,
  startFleetEmulator,
} from "./harness.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(11)));
const BLUE = "blue-CANARY-81f2";
const GREEN = "green-CANARY-1c3b";
const ADMIN = "admin-CANARY-d4e5";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };
const N = 3;

Deno.test({
  name:
    `Redis, ${N} processes: rotate --redis seals the new secret, every instance picks it up; promote --redis waits for them; 0 failed calls`,
  ignore: ignoreWithoutRedis(),
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedisServer();
    await using emulator = startFleetEmulator(SECRETS);
    await using ws = await createFleetWorkspace(emulator, SECRETS);
    const prefix = "hands-free";
    const storeArgs = ["--redis", redis.url, "--prefix", prefix];
    const children: FleetChild[] = await startFleet(
      N,
      (i) =>
        fleetInstance(emulator, SECRETS, KEY, {
          redisUrl: redis.url,
          redisPrefix: prefix,
          instanceId: `r-${i}`,
          fleetSize: N,
          heartbeatMs: 900,
        }),
      ws.dir,
    );
    const store = createRedisFleetStore({ url: redis.url, prefix });
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 20, api: true });
      }
      const rotated = await ws.task("rotate", [...storeArgs, "--yes"], {
        DUAL_SECRET_SEAL_KEY: KEY,
      });
      assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
      assert.notEqual(emulator.getClientSecret("green-id"), GREEN);
      const deadline = Date.now() + 20_000;
      for (;;) {
        const live = (await store.listInstances()).filter((r) =>
          r.until > Date.now()
        );
        if (
          live.length === N &&
          live.every((r) =>
            r.credentials.find((c) => c.label === "green")
              ?.secretGeneration === 1
          )
        ) break;
        if (Date.now() > deadline) throw new Error(JSON.stringify(live));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const promoted = await ws.task("promote", [
        ...storeArgs,
        "--to",
        "green",
        "--timeout",
        "20",
        "--yes",
      ], { DUAL_SECRET_SEAL_KEY: KEY });
      assert.equal(promoted.code, 0, promoted.stdout + promoted.stderr);
      assert.match(promoted.stderr, new RegExp(`${N}/${N} live instances`));
      const trail = await store.listAudit(
        await serviceNamespace(emulator.tokenUrl),
        100,
      );
      assert.ok(trail.some((e) => e.action === "secret.publish"));
      assert.ok(
        trail.some((e) => e.action === "promote.wait" && e.outcome === "ok"),
      );
    } finally {
      await store.close();
      const summaries = await Promise.all(children.map((c) => c.stop()));
      const failed = summaries.reduce(
        (sum, s) => sum + Number(s?.failed ?? 1),
        0,
      );
      const errors = summaries.flatMap((s) => s?.errors as string[] ?? []);
      assert.equal(failed, 0, `failed calls: ${errors.join("; ")}`);
    }
  },
});
