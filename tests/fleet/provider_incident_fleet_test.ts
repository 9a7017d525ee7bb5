/**
 * `deno task incident --kv` for a two-secret provider (Okta): 3 instance
 * processes sharing one Deno KV file call the emulator's protected resource
 * through `auth.fetch`; two rotations (`rotate --kv --promote`) leave blue
 * active with its secret's id in its sealed record; then blue is declared
 * leaked. The
 * first run is SIGKILLed once green's clean secret is issued, sealed and
 * proven; the re-run resumes without issuing it again, waits until every
 * heartbeat reports green's sealed secret, promotes green, waits until every
 * instance serves it, then revokes blue's secret by the id its sealed record
 * carries and marks that record retired. 0 failed calls.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import {
  credentialDocument,
  isSealedCredentialRecord,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import type { FleetStore, InstanceRecord } from "../../src/fleet/store.ts";
import {
  assertNoFailures,
  type ChildMessage,
  type FleetChild,
  startFleet,
} from "./harness.ts";
import { createWorkspace } from "../tasks/workspace.ts";
import {
  killAt,
  oktaWorld,
  type World,
} from "../tasks/rotate_provider_scenario.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(29)));
const SEAL = { DUAL_SECRET_SEAL_KEY: KEY };
const N = 3;

async function sealedRecord(store: FleetStore, world: World, label: string) {
  const service = await serviceNamespace(
    world.emulator.tokenUrl,
    world.request.scope,
  );
  const value = (await store.readDocument(service, credentialDocument(label)))
    ?.value;
  return isSealedCredentialRecord(value) ? value : undefined;
}

async function stopAll(children: readonly FleetChild[]) {
  const summaries = await Promise.all(children.map((c) => c.stop()));
  return summaries.filter((s): s is ChildMessage => s !== undefined);
}

Deno.test({
  name:
    `incident --kv on okta, ${N} processes through auth.fetch: killed after rotate-other, the re-run issues nothing again, promotes green, revokes blue's leaked secret by its sealed record's id and marks it retired; 0 failed calls`,
  sanitizeResources: false,
  async fn() {
    await using world = await oktaWorld(4);
    const { emulator, env, request } = world;
    await using ws = await createWorkspace();
    await ws.writeEnv(env);
    const prefix = "pi-okta";
    const kvPath = `${ws.dir}/fleet.db`;
    const children = await startFleet(N, (i) => ({
      kvPath,
      kvPrefix: [prefix],
      tokenUrl: emulator.tokenUrl,
      apiUrl: emulator.apiUrl,
      resourceUrl: emulator.resourceUrl,
      instanceId: `okta-inc-${i}`,
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
      scope: request.scope!,
    }), ws.dir);
    const kv = await Deno.openKv(kvPath);
    const store = createKvFleetStore(kv, { prefix: [prefix] });
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 20, viaAuth: true });
      }
      const storeArgs = ["--kv", "fleet.db", "--prefix", prefix];
      const args = ["--compromised", "blue", ...storeArgs, "--yes"];
      // Blue's first secret reaches the store's record (with its id) through
      // an ordinary rotation pair: green rotated and promoted, then blue.
      for (const _ of [0, 1]) {
        const rotated = await ws.task("rotate", [
          ...storeArgs,
          "--yes",
          "--promote",
          "--token-lifetime",
          "2",
          "--timeout",
          "40",
        ], SEAL);
        assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
      }
      const leaked = await sealedRecord(store, world, "blue");
      assert.ok(leaked?.secretId, "blue's sealed record carries its id");
      // Green's secret was retired by the second rotation: blue's alone.
      assert.equal(world.liveSecrets(), 1);
      assert.ok((await sealedRecord(store, world, "green"))?.retiredAt);
      const created = emulator.stats().secretsCreated;

      // 1. Killed once green's clean secret is sealed and proven.
      await killAt(ws, args, "incident:rotate-other", "incident", SEAL);
      assert.equal(emulator.stats().secretsCreated, created + 1);
      const clean = await sealedRecord(store, world, "green");
      assert.ok(clean?.secretId, "green's new record carries its id");
      assert.notEqual(clean.secretId, leaked.secretId);
      assert.equal(clean.retiredAt, undefined);
      assert.equal(world.liveSecrets(), 2);

      // 2. The re-run: nothing issued again; green proved, promoted, served;
      // blue's leaked secret revoked by id, its record marked retired.
      const run = await ws.task("incident", args, SEAL);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /rotate-other\s+skipped/);
      assert.match(
        run.stdout,
        new RegExp(
          `propagate\\s+completed\\s+${N}/${N} live instances report secret [0-9a-f]{16} of "green"`,
        ),
      );
      assert.match(
        run.stdout,
        new RegExp(
          `regenerate\\s+completed\\s+revoked ${leaked.secretId}, the leaked secret of blue`,
        ),
      );
      assert.match(
        run.stdout,
        /verify\s+completed\s+the token endpoint refuses the leaked secret of blue/,
      );
      assert.equal(emulator.stats().secretsCreated, created + 1);
      assert.equal(world.liveSecrets(), 1);
      const retired = await sealedRecord(store, world, "blue");
      assert.ok(retired?.retiredAt, "blue's sealed record is marked retired");
      assert.equal(retired.secretId, leaked.secretId);
      assert.equal(
        (await sealedRecord(store, world, "green"))?.sealed,
        clean.sealed,
      );

      const status = await ws.task("fleet", [...storeArgs, "--json"]);
      assert.equal(status.code, 0, status.stderr);
      const records = JSON.parse(status.stdout) as InstanceRecord[];
      assert.equal(records.length, N, status.stdout);
      for (const record of records) assert.equal(record.active, "green");

      // Let every instance call on green before it stops.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const summaries = await stopAll(children);
      assertNoFailures(summaries, N);
      for (const summary of summaries) {
        assert.equal(
          (summary.status as { active: string }).active,
          "green",
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
        label?: string;
      }[]).map((e) => `${e.action}:${e.outcome}:${e.label}`);
      for (
        const wanted of [
          "incident.propagate:completed:blue",
          "promote:ok:green",
          "incident.retire:ok:blue",
          "incident.regenerate:completed:blue",
          "incident.verify:completed:blue",
        ]
      ) assert.ok(steps.includes(wanted), `${wanted} in ${steps}`);
    } finally {
      await stopAll(children);
      kv.close();
    }
  },
});
