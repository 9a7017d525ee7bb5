/**
 * `deno task rotate --kv … --dry-run` (under the operator permission set)
 * against one live instance: it plans and checks the revoke gate, and changes
 * nothing: no regenerate call, no journal, no audit entry, no lock.
 *
 * @module
 */
import assert from "node:assert/strict";
import { listKvAudit } from "../../src/fleet/kv_listing.ts";
import {
  createFleetWorkspace,
  fleetInstance,
  startFleet,
  startFleetEmulator,
} from "../fleet/harness.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const BLUE = "blue-CANARY-d1a2";
const GREEN = "green-CANARY-e3b4";
const ADMIN = "admin-CANARY-f5c6";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };

Deno.test({
  name:
    "rotate --kv --dry-run plans and checks the gate; no regenerate, journal, audit entry or lock",
  sanitizeResources: false,
  async fn() {
    await using emulator = startFleetEmulator(SECRETS);
    await using ws = await createFleetWorkspace(emulator, SECRETS);
    const kvPath = `${ws.dir}/fleet.db`;
    const fleetArgs = ["--kv", "fleet.db", "--prefix", "fleet-test"];
    const sealEnv = { DUAL_SECRET_SEAL_KEY: KEY };
    const [child] = await startFleet(
      1,
      () =>
        fleetInstance(emulator, SECRETS, KEY, {
          kvPath,
          instanceId: "web-0",
          fleetSize: 1,
          heartbeatMs: 900,
        }),
      ws.dir,
    );
    const kv = await Deno.openKv(kvPath);
    try {
      const keys = async () => {
        const found: string[] = [];
        for await (const entry of kv.list({ prefix: [] })) {
          found.push(JSON.stringify(entry.key));
        }
        return found.sort();
      };
      // The instance's first heartbeat (and what it records at start) lands
      // after it reports ready: wait for it, then one more heartbeat.
      for (let i = 0; i < 100; i++) {
        if ((await keys()).some((key) => key.includes('"instance"'))) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const keysBefore = await keys();
      assert.ok(keysBefore.some((key) => key.includes('"instance"')));
      const auditBefore = await listKvAudit(kv, ["fleet-test"], 100);
      const text = await ws.task(
        "rotate",
        [...fleetArgs, "--dry-run"],
        sealEnv,
      );
      assert.equal(text.code, 0, text.stdout + text.stderr);
      assert.match(
        text.stdout,
        /^Plan: regenerate "green" \(green-id\) while "blue" serves the fleet/m,
      );
      assert.match(text.stdout, /^Revoke gate: open \(1 live instance/m);
      assert.match(text.stdout, /^Dry run: nothing was changed\.$/m);

      const json = await ws.task(
        "rotate",
        [...fleetArgs, "--dry-run", "--json"],
        sealEnv,
      );
      assert.equal(json.code, 0, json.stdout + json.stderr);
      const report = JSON.parse(json.stdout);
      assert.equal(report.dryRun, true);
      assert.equal(report.standby, "green");
      assert.equal(report.gate.open, true);

      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(emulator.getClientSecret("green-id"), GREEN);
      // No new record (journal, lock, sealed secret): the same keys as
      // before, heartbeats aside (they exist already and only change).
      assert.deepEqual(await keys(), keysBefore);
      assert.deepEqual(await listKvAudit(kv, ["fleet-test"], 100), auditBefore);
      for (const run of [text, json]) {
        assert.doesNotMatch(run.stdout + run.stderr, /CANARY/);
      }
    } finally {
      kv.close();
      await child.stop();
    }
  },
});
