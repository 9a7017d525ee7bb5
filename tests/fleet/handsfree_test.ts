/**
 * Hands-free rotation across processes: `deno task rotate --kv` and
 * `deno task promote --kv` (under the operator permission set) against a
 * fleet of `deno run` instances sharing one Deno KV file and the emulator.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import type { InstanceRecord } from "../../src/fleet/store.ts";
import { type FleetChild, startKvFleet } from "./harness.ts";
import { until } from "../support/wait.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(42)));
const BLUE = "blue-CANARY-5b1e";
const GREEN = "green-CANARY-77c0";
const ADMIN = "admin-CANARY-0a9d";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };
const N = 4;

const generationOf = (record: InstanceRecord, label: string) =>
  record.credentials.find((c) => c.label === label)?.secretGeneration;

Deno.test({
  name:
    `${N} processes: rotate --kv seals the new secret into the store, every instance picks it up; promote --kv waits for the heartbeats; the gate refuses the old credential, --force overrides; 0 failed calls; --history`,
  sanitizeResources: false,
  async fn() {
    await using fleet = await startKvFleet(SECRETS, KEY, {
      n: N,
      heartbeatMs: 900,
      tokenLifetimeSeconds: 6,
    });
    const { emulator, ws, kvPath } = fleet;
    const fleetArgs = ["--kv", "fleet.db", "--prefix", "fleet-test"];
    const sealEnv = { DUAL_SECRET_SEAL_KEY: KEY };
    const children: FleetChild[] = fleet.children;
    const kv = await Deno.openKv(kvPath);
    const store = createKvFleetStore(kv, { prefix: ["fleet-test"] });
    const live = async () =>
      (await store.listInstances()).filter((r) => r.until > Date.now());
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 20, api: true });
      }

      // 1. Rotate green (the standby): the gate is open, the new secret goes
      // sealed into the store, and every instance picks it up.
      const first = await ws.task("rotate", [...fleetArgs, "--yes"], sealEnv);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      const newGreen = emulator.getClientSecret("green-id");
      assert.notEqual(newGreen, GREEN);
      assert.doesNotMatch(first.stdout + first.stderr, new RegExp(newGreen));
      await until(
        "every instance on green's generation 1",
        live,
        (records) =>
          records.length === N &&
          records.every((r) => generationOf(r, "green") === 1),
      );

      // 2. Promote green through the store: waits for the heartbeats.
      const promoted = await ws.task("promote", [
        ...fleetArgs,
        "--to",
        "green",
        "--timeout",
        "20",
        "--yes",
      ], sealEnv);
      assert.equal(promoted.code, 0, promoted.stdout + promoted.stderr);
      assert.match(
        promoted.stderr,
        new RegExp(`${N}/${N} live instances on "green"`),
      );
      assert.match(promoted.stdout, /every live instance reports it/);

      // 3. Rotating blue now: the instances still hold (and just used) its
      // tokens, so the gate refuses, with a table, and changes nothing.
      const refused = await ws.task("rotate", [
        ...fleetArgs,
        "--yes",
        "--token-lifetime",
        "600",
      ], sealEnv);
      assert.equal(refused.code, 4, refused.stdout + refused.stderr);
      const refusal = refused.stdout + refused.stderr;
      assert.match(refusal, /revoke gate is shut/);
      for (let i = 0; i < N; i++) assert.match(refusal, new RegExp(`web-${i}`));
      assert.match(refusal, /INSTANCE\s+HOST\s+ACTIVE\s+REASON/);
      assert.equal(emulator.getClientSecret("blue-id"), BLUE);

      // 4. --force overrides, with a warning.
      const forced = await ws.task("rotate", [
        ...fleetArgs,
        "--yes",
        "--force",
        "--token-lifetime",
        "600",
      ], sealEnv);
      assert.equal(forced.code, 0, forced.stdout + forced.stderr);
      assert.match(forced.stderr, /WARNING: --force/);
      assert.notEqual(emulator.getClientSecret("blue-id"), BLUE);
      await until(
        "every instance on blue's generation 1",
        live,
        (records) =>
          records.length === N &&
          records.every((r) => generationOf(r, "blue") === 1),
      );

      // 5. The audit trail has every step, and no secret.
      const history = await ws.task("fleet", [
        ...fleetArgs,
        "--history",
        "--json",
      ]);
      assert.equal(history.code, 0, history.stderr);
      const entries: { action: string; outcome: string; label?: string }[] =
        JSON.parse(history.stdout);
      const steps = entries.map((e) => `${e.action}:${e.outcome}:${e.label}`);
      for (
        const wanted of [
          "rotate.gate:open:green",
          "secret.publish:ok:green",
          "rotate.done:completed:green",
          "promote:ok:green",
          "promote.wait:ok:green",
          "rotate.gate:refused:blue",
          "rotate.gate:forced:blue",
          "secret.publish:ok:blue",
        ]
      ) assert.ok(steps.includes(wanted), `${wanted} in ${steps.join(", ")}`);
      for (
        const secret of [
          BLUE,
          GREEN,
          ADMIN,
          newGreen,
          emulator.getClientSecret("blue-id"),
        ]
      ) {
        assert.doesNotMatch(history.stdout, new RegExp(secret));
      }
      const table = await ws.task("fleet", [...fleetArgs, "--history"]);
      assert.match(table.stdout, /rotate\.gate\s+forced/);
    } finally {
      kv.close();
      const summaries = await Promise.all(children.map((c) => c.stop()));
      const failed = summaries.reduce(
        (sum, s) => sum + Number(s?.failed ?? 1),
        0,
      );
      const errors = summaries.flatMap((s) => s?.errors as string[] ?? []);
      const warnings = summaries.flatMap((s) => s?.warnings as string[] ?? []);
      assert.equal(failed, 0, `failed calls: ${errors.join("; ")}`);
      assert.ok(
        !warnings.includes("FLEET_SECRET_PROOF_FAILED") &&
          !warnings.includes("FLEET_SECRET_SEAL_MISMATCH"),
        warnings.join(", "),
      );
      assert.ok(summaries.every((s) => Number(s?.ok) > 0));
    }
  },
});
