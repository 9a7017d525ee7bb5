/**
 * A fleet's rotation through its store for Okta, Entra ID, Keycloak, Cognito
 * and Auth0 (`AUTH_PROVIDER` in the env file): `deno task rotate --kv
 * --promote` under the operator permission set, while instance processes
 * sharing one Deno KV file call the emulator's protected resource through
 * `auth.fetch`. The first run is SIGKILLed right after the new secret was
 * sealed into the store; the re-run proves that secret without issuing
 * another and promotes it; with two secrets on one client the old label's
 * secret is kept while an instance used it within the token lifetime given
 * (exit 4, naming them), and the next run only revokes it. 0 failed calls.
 * On Okta a second rotation (blue) then retires green's secret: its sealed
 * record is marked retired and `promote --to green` refuses (exit 4).
 * Entra ID also runs on Redis under the scheduler (`rotate --redis --every`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import {
  credentialDocument,
  isSealedCredentialRecord,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import type { FleetStore, InstanceRecord } from "../../src/fleet/store.ts";
import type { ChildConfig } from "./child.ts";
import {
  assertNoFailures,
  type ChildMessage,
  type FleetChild,
  startFleet,
} from "./harness.ts";
import { createWorkspace } from "../tasks/workspace.ts";
import type { EntraEmulator } from "../../testing.ts";
import {
  killAt,
  PROVIDERS,
  type World,
} from "../tasks/rotate_provider_scenario.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(23)));
const SEAL = { DUAL_SECRET_SEAL_KEY: KEY };
const N = 3;
/** Short tokens: the old label's go out of use within seconds of the switch. */
const TOKEN_SECONDS = 4;

/** The instance configuration of a provider's world (blue active). */
function instanceOf(
  world: World,
  store: Pick<ChildConfig, "kvPath" | "kvPrefix" | "redisUrl" | "redisPrefix">,
  instanceId: string,
): ChildConfig {
  const { env, emulator, request } = world;
  return {
    ...store,
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    resourceUrl: emulator.resourceUrl,
    instanceId,
    fleetSize: N,
    heartbeatMs: 900,
    pollIntervalMs: 200,
    secretSealKeys: KEY,
    credentials: ["blue", "green"].map((label) => ({
      label,
      clientId: env[`AUTH_CLIENT_ID_${label.toUpperCase()}`],
      clientSecret: env[`AUTH_CLIENT_SECRET_${label.toUpperCase()}`],
    })),
    authMethod: request.authMethod,
    ...(request.scope === undefined ? {} : { scope: request.scope }),
    ...(request.tokenParams === undefined
      ? {}
      : { tokenParams: request.tokenParams }),
  };
}

/** The sealed record of a label in the namespace the instances use. */
async function sealedRecord(
  store: FleetStore,
  world: World,
  label: string,
) {
  const service = await serviceNamespace(
    world.emulator.tokenUrl,
    world.request.scope,
  );
  const document = await store.readDocument(
    service,
    credentialDocument(label),
  );
  const value = document?.value;
  return isSealedCredentialRecord(value) ? value : undefined;
}

async function stopAll(children: readonly FleetChild[]) {
  const summaries = await Promise.all(children.map((c) => c.stop()));
  return summaries.filter((s): s is ChildMessage => s !== undefined);
}

for (const name of Object.keys(PROVIDERS)) {
  Deno.test({
    name:
      `${name} on Deno KV, ${N} processes: rotate --kv --promote killed after sealing, re-run proves without issuing again, promotes${
        name === "auth0"
          ? ""
          : "; the retire gate keeps the old secret while the instances used it (exit 4), the next run revokes it"
      }; 0 failed calls`,
    sanitizeResources: false,
    async fn() {
      await using world = await PROVIDERS[name]({
        tokenLifetimeSeconds: TOKEN_SECONDS,
      });
      const { emulator } = world;
      await using ws = await createWorkspace();
      await ws.writeEnv(world.env);
      const prefix = `pf-${name}`;
      const kvPath = `${ws.dir}/fleet.db`;
      const children = await startFleet(
        N,
        (i) =>
          instanceOf(world, { kvPath, kvPrefix: [prefix] }, `${name}-${i}`),
        ws.dir,
      );
      const kv = await Deno.openKv(kvPath);
      const store = createKvFleetStore(kv, { prefix: [prefix] });
      try {
        for (const child of children) {
          await child.send({ cmd: "traffic", intervalMs: 20, viaAuth: true });
        }
        const storeArgs = ["--kv", "fleet.db", "--prefix", prefix];
        const twoSecrets = world.liveSecrets() !== undefined;
        const created = emulator.stats().secretsCreated;

        // 1. Killed right after the new secret was sealed into the store.
        await killAt(
          ws,
          [...storeArgs, "--yes", "--promote"],
          "publish:after",
          "rotate",
          SEAL,
        );
        assert.equal(emulator.stats().secretsCreated, created + 1);
        const sealed = await sealedRecord(store, world, "green");
        assert.ok(sealed, "green's new secret is sealed in the store");
        if (twoSecrets) {
          assert.ok(sealed.secretId, "its record carries the secret's id");
          assert.equal(world.liveSecrets(), 2);
        }

        // 2. Two secrets: the re-run proves the sealed secret (no second
        // issue) and promotes; the instances used blue within the token
        // lifetime given, so the old secret is kept (exit 4, with them).
        if (twoSecrets) {
          const shut = await ws.task("rotate", [
            ...storeArgs,
            "--yes",
            "--promote",
            "--token-lifetime",
            "600",
            "--timeout",
            "1",
          ], SEAL);
          assert.equal(shut.code, 4, shut.stdout + shut.stderr);
          assert.match(shut.stderr, /failed in phase retire/);
          assert.match(shut.stderr, /INSTANCE\s+HOST\s+ACTIVE\s+REASON/);
          for (let i = 0; i < N; i++) {
            assert.match(shut.stderr, new RegExp(`${name}-${i}`));
          }
          assert.equal(world.liveSecrets(), 2, "nothing revoked");
        }

        // 3. The (next) re-run retires the old secret once it is unused.
        const run = await ws.task("rotate", [
          ...storeArgs,
          "--yes",
          "--promote",
          "--token-lifetime",
          "2",
          "--timeout",
          "40",
        ], SEAL);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.equal(
          emulator.stats().secretsCreated,
          created + 1,
          "the re-run issued no secret",
        );
        assert.match(run.stdout, /Rotation complete: "green"/);
        if (twoSecrets) {
          assert.match(run.stdout, /the old secret \S+ of "blue" was revoked/);
        }
        // `fleet --json`: each instance on green with the store's secret,
        // its two labels apart (one client id for two-secret providers).
        const status = await ws.task("fleet", [...storeArgs, "--json"]);
        assert.equal(status.code, 0, status.stderr);
        const records = JSON.parse(status.stdout) as InstanceRecord[];
        assert.equal(records.length, N, status.stdout);
        for (const record of records) {
          assert.equal(record.active, "green");
          const [blue, green] = ["blue", "green"].map((label) =>
            record.credentials.find((c) => c.label === label)!
          );
          assert.ok(green.secretFingerprint, JSON.stringify(record));
          assert.equal(blue.clientId === green.clientId, twoSecrets);
          if (twoSecrets) {
            assert.ok(
              blue.heldUntil === undefined || blue.heldUntil <= Date.now(),
              JSON.stringify(record),
            );
          }
        }
        if (twoSecrets) {
          assert.equal(world.liveSecrets(), 1, "blue's old secret is revoked");
        }
        assert.equal(
          (await sealedRecord(store, world, "green"))?.sealed,
          sealed.sealed,
        );
        // Okta: a second rotation (blue) retires green's secret, whose
        // sealed record is marked; promote then refuses green (exit 4).
        const last = name === "okta" ? "blue" : "green";
        if (name === "okta") {
          const second = await ws.task("rotate", [
            ...storeArgs,
            "--yes",
            "--promote",
            "--token-lifetime",
            "2",
            "--timeout",
            "40",
          ], SEAL);
          assert.equal(second.code, 0, second.stdout + second.stderr);
          assert.match(
            second.stdout,
            /"blue" .* the old secret \S+ of "green" was revoked/,
          );
          assert.equal(emulator.stats().secretsCreated, created + 2);
          assert.equal(world.liveSecrets(), 1);
          assert.ok((await sealedRecord(store, world, "green"))?.retiredAt);
          const back = await ws.task("promote", [
            ...storeArgs,
            "--to",
            "green",
            "--yes",
            "--json",
          ], SEAL);
          assert.equal(back.code, 4, back.stdout + back.stderr);
          assert.match(back.stdout + back.stderr, /PROMOTE_RETIRED/);
        }
        // Let every instance see the switch before it stops.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const summaries = await stopAll(children);
        assertNoFailures(summaries, N);
        for (const summary of summaries) {
          assert.equal(
            (summary.status as { active: string }).active,
            last,
            summary.instanceId,
          );
        }
        const history = await ws.task("fleet", [
          ...storeArgs,
          "--history",
          "--json",
        ]);
        assert.equal(history.code, 0, history.stderr);
        const steps = (JSON.parse(history.stdout) as {
          action: string;
          outcome: string;
        }[]).map((e) => `${e.action}:${e.outcome}`);
        for (
          const wanted of [
            "secret.publish:ok",
            "promote:ok",
            ...(twoSecrets
              ? ["rotate.retire-gate:open", "rotate.retire:completed"]
              : []),
            "rotate.done:completed",
          ]
        ) assert.ok(steps.includes(wanted), `${wanted} in ${steps}`);
      } finally {
        await stopAll(children);
        kv.close();
      }
    },
  });
}

Deno.test({
  name:
    `entra on Redis, ${N} processes: the scheduler (rotate --redis --every) runs two cycles, green then blue; blue's old secret is revoked before its new one is issued, though Entra ID has no limit of two; 0 failed calls`,
  ignore: ignoreWithoutRedis(),
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedisServer();
    await using world = await PROVIDERS.entra({
      tokenLifetimeSeconds: TOKEN_SECONDS,
    });
    const { emulator } = world;
    await using ws = await createWorkspace();
    await ws.writeEnv(world.env);
    const prefix = "pf-schedule";
    const children = await startFleet(
      N,
      (i) =>
        instanceOf(
          world,
          { redisUrl: redis.url, redisPrefix: prefix },
          `entra-r-${i}`,
        ),
      ws.dir,
    );
    const store = createRedisFleetStore({ url: redis.url, prefix });
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 20, viaAuth: true });
      }
      const created = emulator.stats().secretsCreated;
      const run = await ws.task("rotate", [
        "--redis",
        "env",
        "--prefix",
        prefix,
        "--yes",
        "--every",
        "1s",
        "--tick",
        "250ms",
        "--cycles",
        "2",
        "--drain-bound",
        "10s",
        "--token-lifetime",
        "2",
      ], { ...SEAL, REDIS_URL: redis.url });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /2 cycle\(s\) completed/);
      assert.equal(emulator.stats().secretsCreated, created + 2);
      // Blue's first secret (the env file's) went before its new one.
      assert.equal(world.liveSecrets(), 2);
      const blue = await sealedRecord(store, world, "blue");
      const green = await sealedRecord(store, world, "green");
      const ids = (emulator as EntraEmulator).passwordCredentials(
        world.env.AUTH_CLIENT_ID_BLUE,
      ).map((p) => p.keyId).sort();
      assert.deepEqual([blue?.secretId, green?.secretId].sort(), ids);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const summaries = await stopAll(children);
      assertNoFailures(summaries, N);
      for (const summary of summaries) {
        assert.equal((summary.status as { active: string }).active, "blue");
      }
    } finally {
      await stopAll(children);
      await store.close?.();
    }
  },
});
