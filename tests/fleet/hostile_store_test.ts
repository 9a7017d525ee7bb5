import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import type { AuthEvent } from "../../src/events.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { listKvInstances } from "../../src/fleet/kv_listing.ts";
import { serviceNamespace } from "../../src/fleet/distribution.ts";
import { ConfigError } from "../../src/errors.ts";
import {
  type ActiveRecord,
  createMemoryFleetStore,
  type FleetStore,
  type InstanceRecord,
  type StoredGrant,
} from "../../src/fleet/store.ts";

const CLIENTS = [
  { clientId: "blue-id", secret: "blue-secret", tokenLifetimeSeconds: 600 },
  { clientId: "green-id", secret: "green-secret", tokenLifetimeSeconds: 600 },
];
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const FAST = { pollIntervalMs: 20, leaseMs: 2_000, storeTimeoutMs: 500 };

/** A store another process has written malformed records into. */
function hostile(
  store: FleetStore,
  records: { active?: unknown; grant?: unknown },
): FleetStore {
  return {
    ...store,
    readActive: async (service) =>
      "active" in records
        ? records.active as ActiveRecord
        : await store.readActive(service),
    readSlots: async (keys) =>
      "grant" in records
        ? keys.map(() => ({ grant: records.grant as StoredGrant }))
        : await store.readSlots(keys),
  };
}

const polls = () => new Promise((resolve) => setTimeout(resolve, 200));

for (
  const generation of ["9", Number.MAX_SAFE_INTEGER, -1, 1.5] as unknown[]
) {
  Deno.test(`an active record of generation ${JSON.stringify(generation)} is ignored: no switch, the generation stays a number`, async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const events: AuthEvent[] = [];
    const store = hostile(createMemoryFleetStore(), {
      active: { label: "green", generation, by: "x", at: 0, reason: "x" },
    });
    await using auth = createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      onEvent: (event) => events.push(event),
      shared: createFleet(store, { ...FAST, instanceId: "a" }),
    });
    await auth.getAccessToken();
    await polls();
    assert.equal(auth.status().active, "blue");
    assert.equal(typeof fleetFor(auth).summary()?.activeGeneration, "number");
    assert.ok(
      events.some((e) =>
        e.type === "warning" && e.code === "FLEET_RECORD_INVALID"
      ),
    );
  });
}

Deno.test("a stored grant of the wrong types is never served", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  for (
    const grant of [
      { token: 42, sealed: false, clientId: "blue-id" },
      { token: { a: 1 }, sealed: false, clientId: "blue-id" },
      { token: "t", sealed: "no", clientId: "blue-id" },
      {
        token: "forged",
        sealed: false,
        clientId: "blue-id",
        expiresAt: "9e15",
      },
    ]
  ) {
    const store = hostile(createMemoryFleetStore(), {
      grant: {
        expiresAt: Date.now() + 600_000,
        refreshAt: Date.now() + 500_000,
        writtenAt: 0,
        writtenBy: "x",
        ...grant,
      },
    });
    await using auth = createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      onEvent: () => {},
      shared: createFleet(store, { ...FAST, instanceId: "a" }),
    });
    const token = await auth.getAccessToken();
    assert.equal(typeof token, "string", JSON.stringify(grant));
    assert.notEqual(token, "t");
    assert.notEqual(token, "forged");
    await polls();
    const again = await auth.getAccessToken();
    assert.equal(typeof again, "string", JSON.stringify(grant));
    assert.notEqual(again, "forged");
  }
});

Deno.test("a malformed sealKey or secretSealKeys is a ConfigError at createFleet, without the key in it", async (t) => {
  const store = createMemoryFleetStore();
  const good = btoa("k".repeat(32));
  const cases = [
    { sealKey: good.slice(0, 20) },
    { sealKey: "not base64 at all!!" + "s3cr3t" },
    { secretSealKeys: `k1:${good.slice(0, 30)}` },
    { secretSealKeys: "k1:%%%s3cr3t%%%" },
  ];
  await t.step("each case throws", () => {
    for (const options of cases) {
      assert.throws(() => createFleet(store, options), ConfigError);
    }
  });
  for (const options of cases) {
    let caught: unknown;
    try {
      createFleet(store, options);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError, String(caught));
    const text = `${caught.message} ${caught.option}`;
    const key = Object.values(options)[0]!;
    assert.ok(!text.includes(key.replace(/^k1:/, "")), text);
    assert.ok(!text.includes("s3cr3t"), text);
  }
});

Deno.test("a lease held far into the future by another process: waiters serve within the bound; close() during the wait leaks nothing", async (t) => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const held = (): FleetStore => ({
    ...createMemoryFleetStore(),
    tryLease: () => Promise.resolve(false),
  });
  await t.step("the wait is bounded", async () => {
    await using auth = createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      onEvent: () => {},
      shared: createFleet(held(), { ...FAST, leaseMs: 100, instanceId: "a" }),
    });
    const started = Date.now();
    assert.equal(typeof await auth.getAccessToken(), "string");
    assert.ok(Date.now() - started < 5_000);
  });
  await t.step("close() while waiting", async () => {
    const auth = createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      onEvent: () => {},
      shared: createFleet(held(), {
        ...FAST,
        leaseMs: 60_000,
        instanceId: "b",
      }),
    });
    const before = emulator.stats().tokenRequests;
    const pending = auth.getAccessToken().then(
      (token) => ({ token }),
      (error) => ({ error }),
    );
    await new Promise((resolve) => setTimeout(resolve, 150));
    await auth.close();
    const outcome = await pending;
    assert.ok("error" in outcome, "a closed instance serves no token");
    assert.equal((outcome.error as { code?: string }).code, "CLOSED");
    assert.equal(emulator.stats().tokenRequests - before, 0);
  });
});

Deno.test("heartbeats of the wrong types from another process: the member keeps serving", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const until = Date.now() + 1e12;
  const memory = createMemoryFleetStore();
  const store: FleetStore = {
    ...memory,
    listInstances: async () => [
      ...await memory.listInstances(),
      ...[
        { until, instanceId: 5, credentials: "x", active: {} },
        { until, instanceId: null, credentials: [{ label: 1 }] },
        { until: "soon", instanceId: "z" },
        null,
      ] as unknown as InstanceRecord[],
    ],
  };
  const events: AuthEvent[] = [];
  await using auth = createFleetAuth({
    credentials: CREDENTIALS,
    tokenUrl: emulator.tokenUrl,
    tokensPerCredential: 2,
    onEvent: (event) => events.push(event),
    shared: createFleet(store, { ...FAST, instanceId: "a" }),
  });
  assert.equal(typeof await auth.getAccessToken(), "string");
  await polls();
  assert.equal(typeof await auth.getAccessToken(), "string");
  const live = await fleetFor(auth).instances();
  assert.ok(live.every((record) => typeof record.instanceId === "string"));
  assert.equal(typeof fleetFor(auth).summary()?.instances, "number");
});

Deno.test("listKvInstances (deno task fleet) skips heartbeats of the wrong types instead of throwing", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const encode = (value: unknown) =>
      new TextEncoder().encode(JSON.stringify(value));
    const until = Date.now() + 1e12;
    const prefix = ["dual-secret-auth", "svc"];
    await kv.set(
      [...prefix, "instance", "a"],
      encode({ until, instanceId: 5 }),
    );
    await kv.set(
      [...prefix, "instance", "b"],
      encode({ until, instanceId: null }),
    );
    await kv.set(
      [...prefix, "instance", "c"],
      encode({
        until,
        instanceId: "c",
        active: "blue",
        credentials: [],
        version: "x",
        startedAt: 0,
        seenAt: 0,
      }),
    );
    const live = await listKvInstances(kv, ["dual-secret-auth"], Date.now());
    assert.deepEqual(live.map((entry) => entry.record.instanceId), ["c"]);
  } finally {
    kv.close();
  }
});

const untilTrue = async (what: string, check: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

Deno.test("a store whose active generation went back (restored from a backup): the instances do not follow its label, and a later rotation reaches them all", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  let inner = createMemoryFleetStore();
  const store = new Proxy({} as FleetStore, {
    get: (_, key) => {
      const value = (inner as unknown as Record<PropertyKey, unknown>)[key];
      return typeof value === "function" ? value.bind(inner) : value;
    },
  });
  const auths = [0, 1].map((i) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      onEvent: () => {},
      shared: createFleet(store, { pollIntervalMs: 20, instanceId: `i${i}` }),
    })
  );
  try {
    await Promise.all(auths.map((a) => a.getAccessToken()));
    for (const to of ["green", "blue", "green", "blue"] as const) {
      await auths[0].rotate({ to });
      await untilTrue(to, () => auths.every((a) => a.status().active === to));
    }
    const fresh = createMemoryFleetStore();
    const service = await serviceNamespace(emulator.tokenUrl);
    await fresh.compareAndSetActive(service, 0, {
      label: "green",
      generation: 1,
      by: "restore",
      // Written before the records the instances follow, as a backup's is.
      at: Date.now() - 3_600_000,
      reason: "rotate",
    });
    inner = fresh; // restored from an old backup: generation 1
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(auths.every((a) => a.status().active === "blue"));
    await auths[0].rotate({ to: "green" });
    await untilTrue(
      "green after the flush",
      () => auths.every((a) => a.status().active === "green"),
    );
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});
