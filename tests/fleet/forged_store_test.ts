/**
 * A store writer without the seal key, on Deno KV and on Redis: the active
 * record, heartbeats, a sealed token with its expiry pushed out, a
 * rejection and the schedule's state forged beside a keyed fleet are all
 * ignored, with a warning; nothing switches, and the scheduler does not
 * regenerate the active credential.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import type { AuthEvent } from "../../src/events.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { authenticateStore } from "../../src/fleet/control.ts";
import {
  importSealKeyring,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { checkRevokeGate, type FleetTarget } from "../../src/fleet/operator.ts";
import { readScheduleState, scheduleTick } from "../../src/fleet/schedule.ts";
import { digest } from "../../src/fleet/seal.ts";
import type { FleetStore } from "../../src/fleet/store.ts";
import {
  ignoreWithoutRedis,
  sharedOrOwnRedis,
} from "../support/redis_server.ts";
import { untilTrue } from "../support/wait.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(3)));
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How closely and how long the waits below poll. */
const SOON = { timeoutMs: 5_000, intervalMs: 20 };

/**
 * @param stores Two views of one store: the fleet's, and the forger's (a
 * separate client on the same data, without the key).
 */
async function forgedRecordsAreIgnored(
  stores: { fleet: FleetStore; forger: FleetStore },
): Promise<void> {
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
      tokenLifetimeSeconds: 600,
    })),
  });
  const events: AuthEvent[] = [];
  const warnings = () =>
    events.flatMap((e) =>
      e.type === "warning" ? [e.code + " " + e.message] : []
    );
  const make = (id: string, sink?: AuthEvent[]) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      onEvent: (event) => sink?.push(event),
      shared: createFleet(stores.fleet, {
        instanceId: id,
        pollIntervalMs: 20,
        storeTimeoutMs: 1_000,
        sealKey: KEY,
        secretSealKeys: KEY,
      }),
    });
  await using auth = make("web-1", events);
  const token = await auth.getAccessToken();
  const service = await serviceNamespace(emulator.tokenUrl);
  await untilTrue(
    "the active record",
    async () => (await stores.forger.readActive(service))?.label === "blue",
    SOON,
  );
  const { forger } = stores;

  // 1. The active record: a higher generation naming green.
  const active = (await forger.readActive(service))!;
  assert.ok(
    await forger.compareAndSetActive(service, active.generation, {
      label: "green",
      generation: active.generation + 5,
      by: "forger",
      at: Date.now(),
      reason: "rotate",
    }),
  );
  // 2. A heartbeat of an instance that does not exist.
  await forger.heartbeat({
    instanceId: "ghost",
    active: "green",
    credentials: [],
    version: "0.1.0",
    startedAt: 0,
    seenAt: Date.now(),
    until: Date.now() + 60_000,
  });
  // 3. A rejection of blue's secret (any hash: the forger cannot key it).
  const ns = await digest("credential", emulator.tokenUrl, "", "blue-id");
  await forger.publishRejection({
    credential: ns,
    label: "blue",
    clientId: "blue-id",
    secretHash: "",
    at: Date.now(),
    by: "forger",
    status: 400,
    oauthError: "invalid_client",
  });
  await untilTrue(
    "the warnings",
    () =>
      ["active", "heartbeat"].every((kind) =>
        warnings().some((w) => w.startsWith(`FLEET_RECORD_FORGED A ${kind}`))
      ),
    SOON,
  );
  await sleep(200); // Several polls.
  assert.equal(
    auth.status().active,
    "blue",
    "the forged active is not followed",
  );
  assert.deepEqual(
    (await fleetFor(auth).instances()).map((r) => r.instanceId),
    ["web-1"],
    "the forged heartbeat is not listed",
  );
  // The forged rejection does not stop blue: a fresh token request goes out.
  auth.invalidate();
  assert.notEqual(await auth.getAccessToken(), token);
  assert.equal(auth.status().active, "blue");
  assert.ok(
    warnings().some((w) => w.startsWith("FLEET_RECORD_FORGED A rejection")),
    warnings().join("\n"),
  );

  // 4. The sealed token's expiry pushed out: it no longer opens, so a new
  // instance requests its own instead of serving it.
  const key = { credential: ns, slot: 0 };
  const [slot] = await forger.readSlots([key]);
  assert.ok(slot.grant?.sealed, "the store holds a sealed token");
  assert.ok(
    await forger.writeGrant(key, {
      ...slot.grant!,
      expiresAt: slot.grant!.expiresAt + 3_600_000,
      refreshAt: slot.grant!.refreshAt + 3_600_000,
    }, "forger"),
  );
  const before = emulator.stats().tokenRequestsByClient["blue-id"] ?? 0;
  const late: AuthEvent[] = [];
  {
    await using second = make("web-2", late);
    await second.getAccessToken();
  }
  assert.equal(
    emulator.stats().tokenRequestsByClient["blue-id"],
    before + 1,
    "the extended token was not served",
  );
  assert.ok(
    late.some((e) => e.type === "warning" && e.code === "FLEET_SEAL_MISMATCH"),
  );

  // 5. The operator's side: a forged schedule state that would regenerate
  // the active credential is ignored, and the scheduler rotates the standby.
  assert.ok(
    await forger.writeDocument(service, "schedule/state", 0, {
      completed: 0,
      step: "rotate",
      standby: "blue",
      from: "green",
      stepStartedAt: 0,
      cycleStartedAt: 0,
    }),
  );
  const operatorWarnings: string[] = [];
  const target: FleetTarget = {
    store: authenticateStore(
      stores.fleet,
      await importSealKeyring(KEY),
      (kind, where) => operatorWarnings.push(`${kind} ${where}`),
    ),
    service,
    by: "scheduler",
    now: () => Date.now(),
  };
  assert.equal(await readScheduleState(target), undefined);
  assert.ok(operatorWarnings.some((w) => w.startsWith("document")));
  const rotated: string[] = [];
  await scheduleTick({
    target,
    credentials: CREDENTIALS,
    initialActive: "blue",
    everyMs: 60_000,
    leaseMs: 5_000,
    tokenLifetimeMs: 0,
    drainBoundMs: 0,
    rotate: (standby) => {
      rotated.push(standby);
      return Promise.resolve(1);
    },
  });
  assert.ok(!rotated.includes("blue"), `rotated: ${rotated}`);
  // The forged active record reads as no label: the cycle starts from the
  // instances' configured active, so green is the one rotated.
  assert.equal((await readScheduleState(target))?.standby, "green");
  // The operator's tasks keep unverified heartbeats for the revoke gate
  // (the cautious side): the ghost naming green active holds it shut.
  const cautious: FleetTarget = {
    ...target,
    store: authenticateStore(
      stores.fleet,
      await importSealKeyring(KEY),
      () => undefined,
      { keepUnverifiedHeartbeats: true },
    ),
  };
  const gate = await checkRevokeGate(cautious, {
    label: "green",
    clientId: "green-id",
  }, 0);
  assert.ok(
    gate.blockers.some((b) => b.instanceId === "ghost"),
    JSON.stringify(gate),
  );
}

Deno.test("Deno KV: forged control records without the seal key are ignored, with warnings", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await forgedRecordsAreIgnored({
      fleet: createKvFleetStore(kv, { prefix: ["forged"] }),
      forger: createKvFleetStore(kv, { prefix: ["forged"] }),
    });
  } finally {
    kv.close();
  }
});

Deno.test({
  name:
    "Redis: forged control records without the seal key are ignored, with warnings",
  ignore: ignoreWithoutRedis(),
}, async () => {
  await using redis = await sharedOrOwnRedis();
  const prefix = `forged:${Date.now()}`;
  const fleet = createRedisFleetStore({ url: redis.url, prefix });
  const forger = createRedisFleetStore({ url: redis.url, prefix });
  try {
    await forgedRecordsAreIgnored({ fleet, forger });
  } finally {
    await fleet.close();
    await forger.close();
  }
});
