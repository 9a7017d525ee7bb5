/**
 * `createRedisFleet` with `createDualSecretAuth` in one process against a
 * real redis-server: shared grants, the pool, rotation, sealing, a wrong
 * password and Redis restarted mid-traffic; and `./redis` kept out of
 * `mod.ts`'s graph.
 */
import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import { fileURLToPath } from "node:url";
// deno-lint-ignore no-import-prefix
import { createClient } from "npm:@redis/client@^6.3.1";
import { createDualSecretAuth, type DualSecretAuth } from "../../mod.ts";
import {
  createRedisFleet,
  RedisAuthError,
  RedisErrorCode,
  type RedisFleetOptions,
} from "../../redis.ts";
import { startGenesysEmulator } from "../../testing.ts";
import type { AuthEvent } from "../../src/events.ts";
import { runToEnd } from "../support/child_process.ts";
import {
  ignoreWithoutRedis,
  sharedOrOwnRedis,
  startRedisServer,
} from "../support/redis_server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ignore = ignoreWithoutRedis();
const CLIENTS = [
  { clientId: "blue-id", secret: "blue-secret", tokenLifetimeSeconds: 600 },
  { clientId: "green-id", secret: "green-secret", tokenLifetimeSeconds: 600 },
];
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const FAST = { pollIntervalMs: 40, leaseMs: 2_000, storeTimeoutMs: 500 };
let unique = 0;

const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

async function fleetOf(
  n: number,
  tokenUrl: string,
  fleet: Omit<RedisFleetOptions, "prefix" | "instanceId">,
  extra: { tokensPerCredential?: number; events?: AuthEvent[] } = {},
): Promise<DualSecretAuth[]> {
  const prefix = `fleet-test:${Date.now()}:${unique++}`;
  const auths = Array.from({ length: n }, (_, i) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl,
      tokensPerCredential: extra.tokensPerCredential,
      onEvent: (event) => extra.events?.push(event),
      shared: createRedisFleet({
        ...FAST,
        ...fleet,
        prefix,
        instanceId: `i${i}`,
      }),
    }));
  await until(
    "heartbeats",
    () => auths.every((auth) => fleetFor(auth).summary()?.instances === n),
  );
  return auths;
}

Deno.test({ name: "fleet mode on Redis in one process", ignore }, async (t) => {
  await using redis = await sharedOrOwnRedis();

  await t.step("N instances, K = 1: one token request", async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const auths = await fleetOf(5, emulator.tokenUrl, { url: redis.url });
    try {
      const tokens = await Promise.all(auths.map((a) => a.getAccessToken()));
      assert.equal(new Set(tokens).size, 1);
      assert.equal(emulator.stats().tokenRequests, 1);
      assert.equal((await fleetFor(auths[0]).instances()).length, 5);
    } finally {
      await Promise.all(auths.map((a) => a.close()));
    }
  });

  await t.step("8 instances, K = 4: four token requests", async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const auths = await fleetOf(8, emulator.tokenUrl, { url: redis.url }, {
      tokensPerCredential: 4,
    });
    try {
      const tokens = await Promise.all(auths.map((a) => a.getAccessToken()));
      assert.equal(new Set(tokens).size, 4);
      assert.equal(emulator.stats().tokenRequests, 4);
    } finally {
      await Promise.all(auths.map((a) => a.close()));
    }
  });

  await t.step("rotate() on one instance reaches the others", async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const auths = await fleetOf(3, emulator.tokenUrl, { url: redis.url });
    try {
      await Promise.all(auths.map((a) => a.getAccessToken()));
      await auths[1].rotate({ to: "green" });
      await until(
        "every instance on green",
        () => auths.every((a) => a.status().active === "green"),
      );
    } finally {
      await Promise.all(auths.map((a) => a.close()));
    }
  });

  await t.step("sealed: no token in Redis in plaintext", async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const sealKey = btoa("s".repeat(32));
    const auths = await fleetOf(2, emulator.tokenUrl, {
      url: redis.url,
      sealKey,
    });
    const raw = createClient({ url: redis.url });
    raw.on("error", () => undefined);
    await raw.connect();
    try {
      const token = await auths[0].getAccessToken();
      assert.equal(await auths[1].getAccessToken(), token);
      let found = 0;
      for await (const keys of raw.scanIterator({ MATCH: "{fleet-test:*" })) {
        for (const key of keys) {
          if ((await raw.type(key)) !== "string") continue;
          const value = await raw.get(key);
          assert.ok(!value?.includes(token), `${key} holds the token`);
          found++;
        }
      }
      assert.ok(found > 0, "the scan saw the fleet's keys");
    } finally {
      raw.destroy();
      await Promise.all(auths.map((a) => a.close()));
    }
  });
});

Deno.test({
  name:
    "Redis fleet: a wrong password is a typed error, and callers are still served",
  ignore,
}, async () => {
  await using server = await startRedisServer({
    users: [{ username: "svc", password: "right-password" }],
  });
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const events: AuthEvent[] = [];
  const fleet = createRedisFleet({
    ...FAST,
    url: server.urlFor("svc", "wrong-password"),
    prefix: "auth-test",
  });
  await assert.rejects(fleet.connected(10_000), (error: unknown) => {
    assert.ok(error instanceof RedisAuthError);
    assert.equal(error.code, RedisErrorCode.REDIS_AUTH_FAILED);
    return true;
  });
  await using auth = createDualSecretAuth({
    credentials: CREDENTIALS,
    tokenUrl: emulator.tokenUrl,
    onEvent: (event) => events.push(event),
    shared: fleet,
  });
  assert.equal(typeof await auth.getAccessToken(), "string");
  await until(
    "a warning naming the refused user",
    () =>
      events.some((e) =>
        e.type === "warning" &&
        /refused the credentials of user "svc"/.test(e.message)
      ),
  );
  const text = JSON.stringify(events);
  assert.ok(!text.includes("wrong-password"), "no password in any event");
  assert.equal(fleet.summary()?.store, "unavailable");
});

Deno.test({
  name:
    "Redis restarted mid-traffic (its data lost): 0 failed calls, and the fleet shares again after",
  ignore,
}, async () => {
  await using server = await startRedisServer();
  await using emulator = startGenesysEmulator({
    clients: CLIENTS.map((c) => ({ ...c, tokenLifetimeSeconds: 4 })),
  });
  const auths = await fleetOf(4, emulator.tokenUrl, { url: server.url });
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  let stopping = false;
  const traffic = auths.map(async (auth) => {
    while (!stopping) {
      try {
        await auth.getAccessToken();
        ok++;
      } catch (error) {
        failed++;
        errors.push(String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.kill();
    // Down for longer than a token's refresh margin and across its expiry.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    await server.start();
    await until(
      "every instance back on the store",
      () => auths.every((a) => fleetFor(a).summary()?.store === "ok"),
      20_000,
    );
    const before = emulator.stats().tokenRequests;
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    stopping = true;
    await Promise.all(traffic);
    assert.equal(failed, 0, `failed calls: ${errors.slice(0, 3).join("; ")}`);
    assert.ok(ok > 100, `${ok} calls`);
    // Back on the store, 4 s of 4 s tokens (refreshed about every 2 s) cost
    // the fleet about 2 requests; 4 instances on their own would pay about 8.
    const after = emulator.stats().tokenRequests - before;
    assert.ok(after <= 4, `${after} token requests in 4 s after the restart`);
  } finally {
    stopping = true;
    await Promise.all(traffic);
    await Promise.all(auths.map((a) => a.close()));
  }
});

Deno.test("./redis stays out of mod.ts's graph", async () => {
  const { code, stdout, stderr } = await runToEnd(
    Deno.execPath(),
    ["info", "--json", "mod.ts"],
    { cwd: ROOT },
  );
  assert.equal(code, 0, stderr);
  const specifiers =
    (JSON.parse(stdout) as { modules: { specifier: string }[] })
      .modules.map((m) => m.specifier);
  assert.ok(specifiers.some((s) => s.endsWith("/src/dual_secret_auth.ts")));
  assert.deepEqual(
    specifiers.filter((s) =>
      s.endsWith("/redis.ts") || s.includes("redis_store") ||
      s.includes("@redis")
    ),
    [],
  );
});
