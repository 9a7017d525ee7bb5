/**
 * The fleet store as a rotation target (src/fleet/store_target.ts) and the
 * flows on it (src/fleet/store_flows.ts), on the memory engine against the
 * Genesys Cloud emulator: what the tasks and a `Deno.cron` scheduler share.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startGenesysEmulator } from "../../testing.ts";
import { importSealKeyring } from "../../src/fleet/distribution.ts";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import {
  fleetRotation,
  genesysAdminProvider,
  promoteFleet,
  scheduledRotation,
} from "../../src/fleet/store_flows.ts";
import { ConfigError } from "../../src/errors.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(3)));
const EDIT = ["oauth:client:view", "oauth:client:edit"];
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-first" },
  { label: "green", clientId: "green-id", clientSecret: "green-first" },
];

function emulator() {
  return startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: "blue-first", permissions: EDIT },
      { clientId: "green-id", secret: "green-first", permissions: EDIT },
      { clientId: "admin-id", secret: "admin-secret", permissions: EDIT },
    ],
  });
}

Deno.test("store target: without seal keys nothing is sealed or read sealed", async () => {
  const target = createStoreTarget({
    store: createMemoryFleetStore(),
    service: "svc",
    by: "ops",
  });
  assert.throws(() => target.sealedSink(), ConfigError);
  await assert.rejects(() => target.credentials(CREDENTIALS), ConfigError);
});

Deno.test("store flows: a rotation seals the new secret into the target, journals and audits it; the scheduled step does not rotate a label twice in one cycle", async () => {
  await using genesys = emulator();
  const target = createStoreTarget({
    store: createMemoryFleetStore(),
    service: "svc",
    by: "ops@host",
    ring: await importSealKeyring(KEY),
  });
  const provider = genesysAdminProvider({
    tokenUrl: genesys.tokenUrl,
    apiUrl: genesys.apiUrl,
  });
  const admin = { clientId: "admin-id", clientSecret: "admin-secret" };
  const rotation = fleetRotation(target, {
    tokenUrl: genesys.tokenUrl,
    credentials: CREDENTIALS,
    active: "blue",
    standby: "green",
    admin,
    provider,
    propagationTimeoutMs: 5_000,
    commands: { rerun: "again", promote: "promote", fresh: "fresh" },
  });
  const report = await rotation.run();
  assert.equal(report.standby, "green");
  assert.equal(rotation.generation(), 1);
  const [, green] = await target.credentials(CREDENTIALS);
  assert.equal(
    String((green.clientSecret as { reveal(): string }).reveal()),
    genesys.getClientSecret("green-id"),
  );
  assert.equal((await target.journal.read())?.completedAt !== undefined, true);
  const trail = await target.store.listAudit(target.service, 50);
  assert.ok(trail.some((e) => e.action === "secret.publish"));
  assert.ok(trail.some((e) => e.action === "rotate.done"));

  // The scheduled step of a cycle that began before that rotation: taken
  // as done, not regenerated again (the example once lacked this check).
  const step = scheduledRotation(target, {
    tokenUrl: genesys.tokenUrl,
    credentials: CREDENTIALS,
    admin,
    provider,
    propagationTimeoutMs: 5_000,
  });
  assert.equal(await step("green", 0), 1);
  assert.equal(genesys.stats().secretRegenerations, 1);
  // A later cycle rotates again, with the active credential from the store.
  assert.equal(await step("green", Date.now() + 1), 2);
  assert.equal(genesys.stats().secretRegenerations, 2);

  // No live instance: the promotion sets the label and waits for nobody.
  const outcome = await promoteFleet(target, "green", { timeoutMs: 100 });
  assert.equal(outcome.kind, "promoted");
  assert.equal((await target.store.readActive(target.service))?.label, "green");
  const again = await promoteFleet(target, "green", { timeoutMs: 100 });
  assert.equal(again.kind === "promoted" && again.changed, false);
});
