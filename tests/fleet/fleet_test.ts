import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import { createDualSecretAuth, type DualSecretAuth } from "../../mod.ts";
import { createKvFleet } from "../../kv.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import {
  createMemoryFleetStore,
  type FleetStore,
} from "../../src/fleet/store.ts";
import type { AuthEvent } from "../../src/events.ts";

const CLIENTS = [
  { clientId: "blue-id", secret: "blue-secret", tokenLifetimeSeconds: 600 },
  { clientId: "green-id", secret: "green-secret", tokenLifetimeSeconds: 600 },
];
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const FAST = { pollIntervalMs: 40, leaseMs: 2_000, storeTimeoutMs: 500 };

const until = async (what: string, check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

async function fleetOf(
  n: number,
  tokenUrl: string,
  store: FleetStore,
  extra: {
    tokensPerCredential?: number;
    events?: AuthEvent[];
    sealKey?: string;
  } = {},
): Promise<DualSecretAuth[]> {
  const auths = Array.from({ length: n }, (_, i) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl,
      tokensPerCredential: extra.tokensPerCredential,
      onEvent: (event) => extra.events?.push(event),
      shared: createFleet(store, {
        ...FAST,
        instanceId: `i${i}`,
        sealKey: extra.sealKey,
      }),
    }));
  // Let every instance beat once, so the pool assignment is settled.
  await until(
    "heartbeats",
    () => auths.every((auth) => fleetFor(auth).summary()?.instances === n),
  );
  return auths;
}

Deno.test("fleet mode in one process (memory store)", async (t) => {
  await t.step("N instances, K = 1: one token request", async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const auths = await fleetOf(5, emulator.tokenUrl, createMemoryFleetStore());
    try {
      const tokens = await Promise.all(auths.map((a) => a.getAccessToken()));
      assert.equal(new Set(tokens).size, 1);
      assert.equal(emulator.stats().tokenRequests, 1);
    } finally {
      await Promise.all(auths.map((a) => a.close()));
    }
  });

  await t.step(
    "8 instances, K = 4: four token requests, each slot used twice",
    async () => {
      await using emulator = startGenesysEmulator({ clients: CLIENTS });
      const auths = await fleetOf(
        8,
        emulator.tokenUrl,
        createMemoryFleetStore(),
        {
          tokensPerCredential: 4,
        },
      );
      try {
        const tokens = await Promise.all(auths.map((a) => a.getAccessToken()));
        assert.equal(new Set(tokens).size, 4);
        assert.equal(emulator.stats().tokenRequests, 4);
        const slots = auths.map((a) => fleetFor(a).summary()!.slots.blue);
        assert.deepEqual(
          slots.flat().sort(),
          [0, 0, 1, 1, 2, 2, 3, 3],
        );
      } finally {
        await Promise.all(auths.map((a) => a.close()));
      }
    },
  );

  await t.step(
    "2 instances, K = 4: each serves two slots in turn",
    async () => {
      await using emulator = startGenesysEmulator({ clients: CLIENTS });
      const auths = await fleetOf(
        2,
        emulator.tokenUrl,
        createMemoryFleetStore(),
        {
          tokensPerCredential: 4,
        },
      );
      try {
        const seen = new Set<string>();
        for (let i = 0; i < 4; i++) {
          for (const auth of auths) seen.add(await auth.getAccessToken());
        }
        assert.equal(seen.size, 4);
        assert.equal(emulator.stats().tokenRequests, 4);
      } finally {
        await Promise.all(auths.map((a) => a.close()));
      }
    },
  );

  await t.step("rotate() on one instance reaches the others", async () => {
    await using emulator = startGenesysEmulator({ clients: CLIENTS });
    const auths = await fleetOf(3, emulator.tokenUrl, createMemoryFleetStore());
    try {
      await Promise.all(auths.map((a) => a.getAccessToken()));
      await auths[0].rotate({ to: "green" });
      await until(
        "every instance on green",
        () => auths.every((a) => a.status().active === "green"),
      );
      assert.ok(
        auths.every((a) => fleetFor(a).summary()!.activeGeneration >= 2),
      );
    } finally {
      await Promise.all(auths.map((a) => a.close()));
    }
  });

  await t.step(
    "a rejection is sent once for the fleet, then skipped",
    async () => {
      await using emulator = startGenesysEmulator({ clients: CLIENTS });
      const events: AuthEvent[] = [];
      const auths = await fleetOf(
        4,
        emulator.tokenUrl,
        createMemoryFleetStore(),
        {
          events,
        },
      );
      try {
        emulator.regenerateSecret("blue-id");
        const tokens = await Promise.all(auths.map((a) => a.getAccessToken()));
        assert.equal(new Set(tokens).size, 1);
        const stats = emulator.stats();
        assert.equal(stats.tokenRequestsByClient["blue-id"], 1);
        assert.equal(stats.tokenRequestsByClient["green-id"], 1);
        assert.ok(auths.every((a) => a.status().active === "green"));
      } finally {
        await Promise.all(auths.map((a) => a.close()));
      }
    },
  );

  await t.step(
    "setCredentials with the new secret is not held to the old one's rejection",
    async () => {
      await using emulator = startGenesysEmulator({ clients: CLIENTS });
      const auths = await fleetOf(
        2,
        emulator.tokenUrl,
        createMemoryFleetStore(),
      );
      try {
        const fresh = emulator.regenerateSecret("blue-id");
        await auths[0].getAccessToken(); // blue rejected once, fleet on green
        assert.equal(emulator.stats().tokenFailures, 1);
        const replaced = [
          { ...CREDENTIALS[0], clientSecret: fresh },
          CREDENTIALS[1],
        ];
        for (const auth of auths) auth.setCredentials(replaced);
        // At once: the old secret's hash must not apply while the new one's
        // is being learnt.
        await auths[1].rotate({ to: "blue" });
        await until(
          "every instance back on blue",
          () => auths.every((a) => a.status().active === "blue"),
        );
        await Promise.all(auths.map((a) => a.getAccessToken()));
        assert.equal(emulator.stats().tokenFailures, 1, "no second rejection");
        assert.ok(
          auths.every((a) => a.status().credentials[0].state === "ready"),
        );
      } finally {
        await Promise.all(auths.map((a) => a.close()));
      }
    },
  );

  await t.step(
    "a failing store never fails a caller; a warning says so",
    async () => {
      await using emulator = startGenesysEmulator({ clients: CLIENTS });
      const healthy = createMemoryFleetStore();
      let down = false;
      const flaky = new Proxy(healthy, {
        get(target, name) {
          const value = target[name as keyof FleetStore];
          if (typeof value !== "function") return value;
          return (...args: unknown[]) =>
            down
              ? Promise.reject(new Error("store down"))
              : (value as (...a: unknown[]) => unknown).apply(target, args);
        },
      });
      const events: AuthEvent[] = [];
      const auths = await fleetOf(3, emulator.tokenUrl, flaky, { events });
      try {
        down = true;
        const tokens = await Promise.all(auths.map((a) => a.getAccessToken()));
        assert.equal(tokens.length, 3);
        assert.ok(
          events.some((e) =>
            e.type === "warning" && e.code === "FLEET_STORE_UNAVAILABLE"
          ),
        );
        await until(
          "store seen down",
          () =>
            auths.every((a) => fleetFor(a).summary()!.store === "unavailable"),
        );
        down = false;
        await until(
          "store seen back",
          () => auths.every((a) => fleetFor(a).summary()!.store === "ok"),
        );
        assert.ok(
          events.some((e) =>
            e.type === "warning" && e.code === "FLEET_STORE_RECOVERED"
          ),
        );
      } finally {
        down = false;
        await Promise.all(auths.map((a) => a.close()));
      }
    },
  );

  await t.step(
    "instances() lists live heartbeats; close removes one",
    async () => {
      await using emulator = startGenesysEmulator({ clients: CLIENTS });
      const auths = await fleetOf(
        3,
        emulator.tokenUrl,
        createMemoryFleetStore(),
      );
      try {
        await auths[1].getAccessToken();
        const list = await fleetFor(auths[0]).instances();
        assert.deepEqual(list.map((i) => i.instanceId), ["i0", "i1", "i2"]);
        assert.ok(list.every((i) => i.version && i.until > Date.now()));
        assert.equal(list[0].credentials[0].label, "blue");
        assert.doesNotMatch(JSON.stringify(list), /secret/);
        await auths[2].close();
        assert.deepEqual(
          (await fleetFor(auths[0]).instances()).map((i) => i.instanceId),
          ["i0", "i1"],
        );
      } finally {
        await Promise.all(auths.map((a) => a.close()));
      }
    },
  );
});

Deno.test("heartbeats say which client's token an instance holds, until when", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const store = createMemoryFleetStore();
  await using auth = createFleetAuth({
    credentials: CREDENTIALS,
    tokenUrl: emulator.tokenUrl,
    shared: createFleet(store, { ...FAST, instanceId: "h", heartbeatMs: 300 }),
  });
  await auth.getAccessToken();
  const expiresAt = auth.status().credentials[0].expiresAt!;
  let record;
  const end = Date.now() + 5_000;
  while (Date.now() < end) {
    [record] = await fleetFor(auth).instances();
    if (record?.credentials[0].heldUntil !== undefined) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(record?.credentials[0].label, "blue");
  assert.equal(record?.credentials[0].heldUntil, expiresAt);
  assert.ok(record!.credentials[0].lastUsedAt! <= Date.now());
  assert.equal(record?.credentials[1].label, "green");
  assert.equal(record?.credentials[1].heldUntil, undefined, "none of green");
});

Deno.test("a brief fault rejecting every credential: one probe for the fleet, then all serve", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const auths = await fleetOf(3, emulator.tokenUrl, createMemoryFleetStore());
  try {
    emulator.injectTokenFaults({ kind: "status", status: 401 }, 2);
    await assert.rejects(auths[0].getAccessToken(), /rejected/i);
    assert.equal(emulator.stats().tokenRequests, 2, "blue, then green");
    // The others skip both at once (published), without a request.
    for (const auth of auths.slice(1)) {
      await assert.rejects(auth.getAccessToken(), /rejected/i);
    }
    assert.equal(emulator.stats().tokenRequests, 2);
    // Nothing serves, so each instance re-probes after its backoff (1 s);
    // the fleet's published rejection must not stop that.
    const end = Date.now() + 8_000;
    const served = new Set<number>();
    while (served.size < auths.length && Date.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await Promise.all(
        auths.map((auth, i) =>
          auth.getAccessToken().then(() => served.add(i), () => {})
        ),
      );
    }
    assert.equal(served.size, auths.length, "every instance serves again");
    const requests = emulator.stats().tokenRequests;
    assert.ok(requests <= 4, `${requests} token requests: one probe shared`);
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});

Deno.test("keys are namespaced by scope and token URL: no token crosses them", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  await using other = startGenesysEmulator({ clients: CLIENTS });
  const store = createMemoryFleetStore();
  const make = (id: string, tokenUrl: string, scope?: string) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl,
      scope,
      shared: createFleet(store, { ...FAST, instanceId: id }),
    });
  const auths = [
    make("a1", emulator.tokenUrl, "users:readonly"),
    make("a2", emulator.tokenUrl, "users:readonly"),
    make("b1", emulator.tokenUrl, "analytics"),
    make("c1", other.tokenUrl, "users:readonly"),
  ];
  try {
    const [a1, a2, b1, c1] = await Promise.all(
      auths.map((auth) => auth.getAccessToken()),
    );
    assert.equal(a1, a2, "same URL and scope: shared");
    assert.notEqual(a1, b1, "another scope: its own token");
    assert.notEqual(a1, c1, "another token URL: its own token");
    assert.equal(emulator.stats().tokenRequests, 2);
    assert.equal(other.stats().tokenRequests, 1);
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});

Deno.test("a lapsed heartbeat drops out of instances()", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const store = createMemoryFleetStore();
  const auths = await fleetOf(1, emulator.tokenUrl, store);
  try {
    await until(
      "the first heartbeat",
      () => fleetFor(auths[0]).summary()?.lastSyncAt !== undefined,
    );
    const now = Date.now();
    await store.heartbeat({
      instanceId: "dead",
      active: "blue",
      credentials: [],
      version: "0.0.0",
      startedAt: now - 60_000,
      seenAt: now - 30_000,
      until: now + 150,
    });
    assert.deepEqual(
      (await fleetFor(auths[0]).instances()).map((i) => i.instanceId),
      ["dead", "i0"],
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      (await fleetFor(auths[0]).instances()).map((i) => i.instanceId),
      ["i0"],
      "expiry is read from the value, the record itself is still stored",
    );
    assert.equal((await store.listInstances()).length, 2);
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});

Deno.test("where the store's watch delivers, a rotation arrives before the next poll", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const store = createMemoryFleetStore();
  const auths = Array.from({ length: 3 }, (_, i) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      shared: createFleet(store, {
        instanceId: `w${i}`,
        pollIntervalMs: 30_000,
      }),
    }));
  try {
    await until(
      "every instance polled once",
      () => auths.every((a) => fleetFor(a).summary()?.lastSyncAt !== undefined),
    );
    await auths[0].rotate({ to: "green" });
    const rotatedAt = Date.now();
    await until(
      "all on green",
      () => auths.every((a) => a.status().active === "green"),
      2_000,
    );
    assert.ok(Date.now() - rotatedAt < 2_000);
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});

Deno.test("fleet mode on Deno KV: sealed tokens, no plaintext in the store", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const kv = await Deno.openKv(":memory:");
  const sealKey = btoa(
    String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))),
  );
  const make = (id: string, key = sealKey) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      shared: createKvFleet(kv, {
        prefix: ["svc"],
        instanceId: id,
        sealKey: key,
        ...FAST,
      }),
    });
  const a = make("a");
  const b = make("b");
  try {
    const token = await a.getAccessToken();
    assert.equal(await b.getAccessToken(), token);
    assert.equal(emulator.stats().tokenRequests, 1);
    const dump: string[] = [];
    for await (const entry of kv.list({ prefix: [] })) {
      dump.push(
        entry.value instanceof Uint8Array
          ? new TextDecoder().decode(entry.value)
          : JSON.stringify(entry.value),
      );
    }
    const all = dump.join("\n");
    assert.match(all, /"sealed":true/, "the dump is readable");
    assert.ok(!all.includes(token), "the token is sealed");
    assert.ok(!all.includes("blue-secret"), "no secret");
  } finally {
    await a.close();
    await b.close();
    kv.close();
  }
});

Deno.test("an instance without the seal key ignores sealed tokens, with a warning", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const store = createMemoryFleetStore();
  const events: AuthEvent[] = [];
  const sealed = createFleetAuth({
    credentials: CREDENTIALS,
    tokenUrl: emulator.tokenUrl,
    shared: createFleet(store, {
      ...FAST,
      instanceId: "sealed",
      sealKey: btoa("k".repeat(32)),
    }),
  });
  const plain = createFleetAuth({
    credentials: CREDENTIALS,
    tokenUrl: emulator.tokenUrl,
    onEvent: (event) => events.push(event),
    shared: createFleet(store, { ...FAST, instanceId: "plain" }),
  });
  try {
    const token = await sealed.getAccessToken();
    assert.notEqual(await plain.getAccessToken(), token);
    assert.equal(emulator.stats().tokenRequests, 2);
    assert.ok(
      events.some((e) =>
        e.type === "warning" && e.code === "FLEET_SEAL_MISMATCH"
      ),
    );
  } finally {
    await sealed.close();
    await plain.close();
  }
});

Deno.test("on Deno KV, kv.watch (where it delivers) brings a rotation before the next poll", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  // In one process a KV handle's watch sees its own writes, as Deploy's
  // does across isolates (a local file does not, across processes).
  const kv = await Deno.openKv(":memory:");
  const make = (instanceId: string) =>
    createFleetAuth({
      credentials: CREDENTIALS,
      tokenUrl: emulator.tokenUrl,
      shared: createKvFleet(kv, {
        prefix: ["watch"],
        instanceId,
        pollIntervalMs: 30_000,
      }),
    });
  const auths = [make("k1"), make("k2")];
  try {
    await until(
      "every instance polled once",
      () => auths.every((a) => fleetFor(a).summary()?.lastSyncAt !== undefined),
    );
    await auths[0].rotate({ to: "green" });
    await until(
      "k2 on green",
      () => auths[1].status().active === "green",
      3_000,
    );
  } finally {
    await Promise.all(auths.map((a) => a.close()));
    kv.close();
  }
});

Deno.test("without a fleet, tokensPerCredential = K hands out K tokens in turn", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  await using auth = createDualSecretAuth({
    credentials: CREDENTIALS,
    tokenUrl: emulator.tokenUrl,
    tokensPerCredential: 3,
  });
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) seen.push(await auth.getAccessToken());
  assert.equal(new Set(seen).size, 3);
  assert.equal(seen[0], seen[3]);
  assert.equal(emulator.stats().tokenRequests, 3);
  assert.throws(
    () =>
      createDualSecretAuth({
        credentials: CREDENTIALS,
        tokenUrl: emulator.tokenUrl,
        tokensPerCredential: 0,
      }),
    /tokensPerCredential/,
  );
});
