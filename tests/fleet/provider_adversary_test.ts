/**
 * Attacks on two-secret rotations on a fleet store (memory store, the Okta
 * emulator), each a defect found and fixed: a retired label's secret must
 * stay retired whatever the store loses.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createFleetAuth } from "../support/fleet_auth.ts";
import { createFleet } from "../../src/fleet/member.ts";
import {
  createMemoryFleetStore,
  type FleetStore,
} from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import {
  importSealKeyring,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import {
  readStoredSecretIdentity,
  retireSealedRecord,
} from "../../src/fleet/operator.ts";
import {
  fleetRevokeGate,
  fleetRotation,
  promoteFleet,
  providerAdapterFactory,
  RetireGateShutError,
} from "../../src/fleet/store_flows.ts";
import { readProviderEnv } from "../../src/providers/env.ts";
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

const until = async <T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
): Promise<T> => {
  const end = Date.now() + 5_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > end) {
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/** A memory store whose data can be lost at once (a Redis restarted without persistence). */
function wipeable(): { store: FleetStore; wipe(): void } {
  let inner = createMemoryFleetStore();
  const store = new Proxy({} as FleetStore, {
    get: (_, key) => (...args: unknown[]) =>
      // deno-lint-ignore no-explicit-any
      (inner as any)[key](...args),
  });
  return { store, wipe: () => void (inner = createMemoryFleetStore()) };
}

Deno.test("a retired label's secret stays retired when the store loses its data: the instance that had loaded it seals it back retired, and promote still refuses it", async () => {
  await using emulator = okta([BLUE, GREEN]);
  await emulator.ready;
  const { store, wipe } = wipeable();
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
      heartbeatMs: 200,
      instanceId: "web-1",
      sealKey: KEY,
      secretSealKeys: KEY,
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
    const blueId = emulator.secrets("0oaapp")[0].id;
    await target.sealedSink().publish({
      label: "blue",
      clientId: "0oaapp",
      secret: new Secret(BLUE),
      secretId: blueId,
    });
    const stored = (await readStoredSecretIdentity(target, "blue"))!;
    await until(
      "the instance reporting blue's stored secret loaded",
      () => target.live(),
      ([record]) =>
        record?.credentials.find((c) => c.label === "blue")
          ?.secretFingerprint === stored.fingerprint,
    );
    // The rotation promoted green (blue's secret no longer in use) ...
    await target.setActive("green");
    await until(
      "the instance on green",
      () => target.live(),
      ([record]) => record?.active === "green",
    );
    // ... and the retire step's gate opened: the record is marked retired (the
    // provider revokes the secret next).
    assert.equal(await retireSealedRecord(target, "blue", blueId), true);
    await new Promise((resolve) => setTimeout(resolve, 200));

    wipe();
    const reseeded = await until(
      "blue's record sealed back by the instance",
      () => readStoredSecretIdentity(target, "blue"),
      (identity) => identity !== undefined,
    );
    assert.ok(
      reseeded!.retiredAt !== undefined,
      `a revoked secret came back in service: ${JSON.stringify(reseeded)}`,
    );
    const back = await promoteFleet(target, "blue", { timeoutMs: 300 });
    assert.equal(back.kind, "refused");
  } finally {
    await auth.close();
  }
});

Deno.test("the retire gate does not open on heartbeats the store lost: an instance still holding the old label's token keeps it shut after a wipe", async () => {
  await using emulator = okta([BLUE, GREEN]);
  await emulator.ready;
  const { store, wipe } = wipeable();
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
      heartbeatMs: 200,
      instanceId: "web-1",
      sealKey: KEY,
      secretSealKeys: KEY,
    }),
  });
  try {
    // A token of blue, held for an hour.
    await auth.getAccessToken();
    const target = createStoreTarget({
      store,
      service: await serviceNamespace(emulator.tokenUrl, "api"),
      by: "ops@test",
      ring: await importSealKeyring(KEY),
      onRejected: () => {},
    });
    const blueId = emulator.secrets("0oaapp")[0].id;
    // The rotation promoted green (its journal says so) ...
    await target.journal.write({
      version: 1,
      rotationId: "r1",
      active: "blue",
      standby: "green",
      clientId: "0oaapp",
      sink: "fleet",
      phase: "promote",
      startedAt: Date.now(),
      promotedAt: Date.now(),
      oldSecretId: blueId,
    });
    await target.setActive("green");
    const gate = fleetRevokeGate(target, {
      tokenLifetimeMs: 60_000,
      timeoutMs: 600,
      pollMs: 50,
    });
    const request = { label: "blue", clientId: "0oaapp", secretId: blueId };
    await until(
      "the instance on green, holding blue's token",
      () => target.gate(request, 60_000),
      (report) => report.blockers.map((b) => b.reason).join() === "holds-token",
    );
    // ... and the store loses its data while the retire step watches.
    wipe();
    const outcome = await gate(request).then(
      (line) => `opened: ${line}`,
      (error) => error,
    );
    assert.ok(
      outcome instanceof RetireGateShutError,
      `the gate opened on heartbeats the store lost: ${outcome}`,
    );
  } finally {
    await auth.close();
  }
});

Deno.test("retire of a label whose secret came from the env file (no sealed record): promote back to it is refused all the same", async () => {
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
  // An instance that holds no token; it follows the active label.
  const beat = (active: string) => {
    const now = Date.now();
    return target.store.heartbeat({
      instanceId: "web-1",
      active,
      credentials: [
        { label: "blue", clientId: "0oaapp", slots: [0] },
        { label: "green", clientId: "0oaapp", slots: [0] },
      ],
      version: "0",
      startedAt: now,
      seenAt: now,
      until: now + 30_000,
    });
  };
  await beat("blue");
  const blueId = emulator.secrets("0oaapp")[0].id;
  const report = await fleetRotation(target, {
    tokenUrl: config.tokenUrl,
    scope: config.scope!,
    credentials: await target.credentials(config.credentials),
    active: "blue",
    standby: "green",
    provider: providerAdapterFactory(() => config.createProvider()),
    onPromote: async (label) => {
      await target.setActive(label);
      await beat(label);
    },
    retire: { tokenLifetimeMs: 60_000, timeoutMs: 300, pollMs: 50 },
    commands: {},
  }).run();
  assert.equal(report.retiredSecretId, blueId);
  assert.equal(
    emulator.secrets("0oaapp").some((s) => s.id === blueId),
    false,
    "blue's secret revoked",
  );
  const back = await promoteFleet(target, "blue", { timeoutMs: 300 });
  assert.equal(
    back.kind,
    "refused",
    "a promotion to the revoked secret of blue must be refused",
  );
  assert.equal((await target.store.readActive(target.service))?.label, "green");
  assert.ok(
    (await readStoredSecretIdentity(target, "blue"))?.retiredAt !== undefined,
  );
  // The next rotation gives blue a new secret, in service again.
  await fleetRotation(target, {
    tokenUrl: config.tokenUrl,
    scope: config.scope!,
    credentials: await target.credentials(config.credentials),
    active: "green",
    standby: "blue",
    provider: providerAdapterFactory(() => config.createProvider()),
    commands: {},
  }).run();
  const renewed = await readStoredSecretIdentity(target, "blue");
  assert.equal(renewed?.retiredAt, undefined, JSON.stringify(renewed));
  assert.equal(emulator.secrets("0oaapp").length, 2);
});
