/**
 * Two secrets of one client on a fleet store, in one process (memory
 * store, the Okta emulator): the member keeps the two labels' tokens and
 * heartbeat figures apart although they share a client id; the retire
 * step's gate refuses while a live instance holds a token of the old
 * label, and opens although the same instance holds one of the new label
 * (same client id); the re-run only retires (nothing issued), marks the
 * old label's sealed record retired, and a promotion back to it is refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import { createFleet } from "../../src/fleet/member.ts";
import {
  createMemoryFleetStore,
  type InstanceRecord,
} from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import {
  importSealKeyring,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import {
  readStoredSecretIdentity,
  storedSecretIds,
} from "../../src/fleet/operator.ts";
import {
  fleetRotation,
  promoteFleet,
  providerAdapterFactory,
  resumesPastRegenerate,
  RetireGateShutError,
} from "../../src/fleet/store_flows.ts";
import { readProviderEnv } from "../../src/providers/env.ts";
import { StagedRotationError } from "../../src/rotation/staged_rotation.ts";
import { Secret } from "../../src/secret.ts";
import { startOktaEmulator } from "../../testing.ts";

const KEY = btoa("s".repeat(32));
const ADMIN = "00admin-token-value-0000000000";
const BLUE = "blue0secret0value0000000000000000";
const GREEN = "green0secret0value000000000000000";

function okta(secrets: string[]) {
  return startOktaEmulator({
    scopes: ["api"],
    apps: [{ clientId: "0oaapp", secrets }],
    adminTokens: [{
      token: ADMIN,
      scopes: ["okta.apps.read", "okta.apps.manage"],
    }],
  });
}

const until = async (what: string, check: () => Promise<boolean>) => {
  const end = Date.now() + 5_000;
  while (!await check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

Deno.test("two labels of one client in a fleet member: tokens and heartbeat figures stay per label, so the gate of the unused label is open", async () => {
  await using emulator = okta([BLUE, GREEN]);
  await emulator.ready;
  const store = createMemoryFleetStore();
  const auth = createFleetAuth({
    credentials: [
      { label: "blue", clientId: "0oaapp", clientSecret: BLUE },
      { label: "green", clientId: "0oaapp", clientSecret: GREEN },
    ],
    tokenUrl: emulator.tokenUrl,
    scope: "api",
    shared: createFleet(store, {
      pollIntervalMs: 40,
      leaseMs: 2_000,
      storeTimeoutMs: 500,
      heartbeatMs: 300,
      instanceId: "web-1",
      sealKey: KEY,
    }),
  });
  try {
    await auth.getAccessToken();
    const target = createStoreTarget({
      store,
      service: await serviceNamespace(emulator.tokenUrl, "api"),
      by: "ops@test",
      ring: await importSealKeyring(KEY),
      onRejected: () => {},
    });
    // Several polls after the token was shared: with one namespace for the
    // client, green's pool would have taken blue's token from the store.
    await until("a heartbeat holding blue's token", async () => {
      const [record] = await target.live();
      return record?.credentials.find((c) => c.label === "blue")
        ?.heldUntil !== undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const [record] = await target.live();
    const green = record.credentials.find((c) => c.label === "green")!;
    assert.equal(green.clientId, "0oaapp");
    assert.equal(green.heldUntil, undefined, JSON.stringify(record));
    assert.equal(green.lastUsedAt, undefined);
    assert.equal(fleetFor(auth).summary()?.instances, 1);
    const greenGate = await target.gate(
      { label: "green", clientId: "0oaapp" },
      60_000,
    );
    assert.equal(greenGate.open, true, JSON.stringify(greenGate));
    const blueGate = await target.gate(
      { label: "blue", clientId: "0oaapp" },
      60_000,
    );
    assert.deepEqual(blueGate.blockers.map((b) => b.reason), ["active"]);
  } finally {
    await auth.close();
  }
});

Deno.test("retire on a fleet store: refused while an instance holds the old label's token; the re-run only retires, marks its sealed record retired, and promote refuses it", async () => {
  await using emulator = okta([BLUE]);
  await emulator.ready;
  const config = readProviderEnv({
    AUTH_PROVIDER: "okta",
    AUTH_TOKEN_URL: emulator.tokenUrl,
    AUTH_API_URL: emulator.apiUrl,
    AUTH_SCOPE: "api",
    AUTH_CLIENT_ID_BLUE: "0oaapp",
    AUTH_CLIENT_SECRET_BLUE: BLUE,
    AUTH_CLIENT_ID_GREEN: "0oaapp",
    AUTH_CLIENT_SECRET_GREEN: "stale0secret0value000000000000000",
    AUTH_ACTIVE: "blue",
    AUTH_ADMIN_TOKEN: ADMIN,
  });
  const store = createMemoryFleetStore();
  const target = createStoreTarget({
    store,
    service: await serviceNamespace(emulator.tokenUrl, "api"),
    by: "ops@test",
    ring: await importSealKeyring(KEY),
    onRejected: () => {},
  });
  const blueId = emulator.secrets("0oaapp")[0].id;
  // Blue's secret as an earlier rotation sealed it, with its id.
  await target.sealedSink().publish({
    label: "blue",
    clientId: "0oaapp",
    secret: new Secret(BLUE),
    secretId: blueId,
  });
  const beat = (blueHeld: boolean): InstanceRecord => {
    const now = Date.now();
    return {
      instanceId: "web-1",
      active: "green",
      credentials: [
        {
          label: "blue",
          clientId: "0oaapp",
          slots: [0],
          ...(blueHeld ? { heldUntil: now + 60_000, lastUsedAt: now } : {}),
        },
        // The same client id: its token must not keep blue's gate shut.
        {
          label: "green",
          clientId: "0oaapp",
          slots: [0],
          heldUntil: now + 60_000,
          lastUsedAt: now,
        },
      ],
      version: "0",
      startedAt: now,
      seenAt: now,
      until: now + 30_000,
    };
  };
  await target.store.heartbeat(beat(true));
  const rotation = (active: string, standby: string) =>
    target.credentials(config.credentials).then((credentials) =>
      fleetRotation(target, {
        tokenUrl: config.tokenUrl,
        scope: config.scope!,
        credentials,
        active,
        standby,
        provider: providerAdapterFactory(() => config.createProvider()),
        onPromote: async (label) => void await target.setActive(label),
        retire: { tokenLifetimeMs: 60_000, timeoutMs: 300, pollMs: 50 },
        commands: {},
      }).run()
    );

  const failed = await rotation("blue", "green").then(
    () => assert.fail("the retire gate should refuse"),
    (error) => error,
  );
  assert.ok(failed instanceof StagedRotationError, String(failed));
  assert.equal(failed.phase, "retire");
  assert.ok(failed.cause instanceof RetireGateShutError, String(failed.cause));
  assert.deepEqual(
    failed.cause.blockers.map((b) => `${b.instanceId}:${b.reason}`),
    ["web-1:holds-token"],
  );
  // Nothing revoked: both secrets live, blue's record in service.
  const secrets = emulator.secrets("0oaapp");
  assert.equal(secrets.length, 2);
  const greenId = secrets.find((s) => s.id !== blueId)!.id;
  const journal = await target.journal.read();
  assert.equal(journal?.secretId, greenId);
  assert.equal(journal?.oldSecretId, blueId);
  assert.ok(journal?.promotedAt !== undefined);
  assert.equal(journal?.completedAt, undefined);
  assert.equal(
    (await readStoredSecretIdentity(target, "blue"))?.retiredAt,
    undefined,
  );
  assert.equal(await resumesPastRegenerate(target, "blue", false), true);

  // The instance let go of blue (green's token of the same client stays).
  await target.store.heartbeat(beat(false));
  const created = emulator.stats().secretsCreated;
  const report = await rotation("green", "blue");
  assert.equal(report.retiredSecretId, blueId);
  assert.equal(report.standby, "green");
  assert.equal(emulator.stats().secretsCreated, created, "nothing issued");
  assert.deepEqual(emulator.secrets("0oaapp").map((s) => s.id), [greenId]);
  const retired = await readStoredSecretIdentity(target, "blue");
  assert.ok(retired?.retiredAt !== undefined, JSON.stringify(retired));
  const back = await promoteFleet(target, "blue", { timeoutMs: 100 });
  assert.equal(back.kind, "refused");
  assert.equal((await target.store.readActive(target.service))?.label, "green");
  const trail = (await target.store.listAudit(target.service, 50)).map((e) =>
    `${e.action}:${e.outcome}`
  );
  for (
    const wanted of [
      "rotate.retire-gate:refused",
      "rotate.retire-gate:open",
      "rotate.retire:completed",
      "promote.ready:refused",
    ]
  ) assert.ok(trail.includes(wanted), `${wanted} in ${trail}`);
});

Deno.test("a first fleet rotation at Okta's limit takes the standby's id from the env file (AUTH_SECRET_ID_*) when the store has no record of it, and revokes exactly that secret", async () => {
  await using emulator = okta([BLUE, GREEN]);
  await emulator.ready;
  const [blueId, greenId] = emulator.secrets("0oaapp").map((s) => s.id);
  const config = readProviderEnv({
    AUTH_PROVIDER: "okta",
    AUTH_TOKEN_URL: emulator.tokenUrl,
    AUTH_API_URL: emulator.apiUrl,
    AUTH_SCOPE: "api",
    AUTH_CLIENT_ID_BLUE: "0oaapp",
    AUTH_CLIENT_SECRET_BLUE: BLUE,
    AUTH_SECRET_ID_BLUE: blueId,
    AUTH_CLIENT_ID_GREEN: "0oaapp",
    AUTH_CLIENT_SECRET_GREEN: GREEN,
    AUTH_SECRET_ID_GREEN: greenId,
    AUTH_ACTIVE: "blue",
    AUTH_ADMIN_TOKEN: ADMIN,
  });
  const store = createMemoryFleetStore();
  const target = createStoreTarget({
    store,
    service: await serviceNamespace(emulator.tokenUrl, "api"),
    by: "ops@test",
    ring: await importSealKeyring(KEY),
    onRejected: () => {},
  });
  const report = await fleetRotation(target, {
    tokenUrl: config.tokenUrl,
    scope: config.scope!,
    credentials: await target.credentials(config.credentials),
    active: "blue",
    standby: "green",
    provider: providerAdapterFactory(() => config.createProvider()),
    envFileSecretIds: config.secretIds,
    commands: {},
  }).run();
  assert.equal(report.standby, "green");
  const ids = emulator.secrets("0oaapp").map((s) => s.id);
  assert.equal(ids.length, 2, "at the limit again: blue's and the new one");
  assert.ok(ids.includes(blueId), "the active's secret is kept");
  assert.ok(!ids.includes(greenId), "green's recorded old secret was revoked");
  const stored = await storedSecretIds(target, ["green"]);
  assert.ok(stored.green !== undefined && stored.green !== greenId);
  assert.ok(ids.includes(stored.green), "the sealed record names the new one");
});
