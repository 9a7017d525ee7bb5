/**
 * The fleet status read on Deno KV and on Redis: what it shows of the
 * records a promotion, a sealed sink and heartbeats leave, and that reading
 * writes nothing (every KV versionstamp, every Redis key's dump unchanged).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Secret } from "../../src/secret.ts";
import { importSealKeyring } from "../../src/fleet/distribution.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import {
  audit,
  createSealedStoreSink,
  type FleetTarget,
  setSharedActive,
} from "../../src/fleet/operator.ts";
import type { FleetStore, InstanceRecord } from "../../src/fleet/store.ts";
import {
  type FleetStatus,
  kvStatusSource,
  readFleetStatus,
} from "../../src/fleet/fleet_status.ts";
import { redisStatusSource } from "../../src/fleet/fleet_status_redis.ts";
import {
  connectRedis,
  createRedisFleetStore,
} from "../../src/fleet/redis_store.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(3)));
const SECRET = "green-CANARY-status-1c9b";

function beat(id: string, active: string, now: number): InstanceRecord {
  return {
    instanceId: id,
    host: `${id}.internal`,
    active,
    credentials: [
      {
        label: "blue",
        clientId: "blue-id",
        slots: [0],
        lastUsedAt: now - 1_000,
        heldUntil: now + 20_000,
      },
      {
        label: "green",
        clientId: "green-id",
        slots: [0],
        secretGeneration: 1,
        // What a newer heartbeat carries: shown when present.
        ...({
          secretFingerprint: "fp-0123456789abcdef",
          secretProblem: id === "web-1"
            ? { fingerprint: "fp-x", reason: "seal key mismatch" }
            : undefined,
        }),
      },
    ],
    version: "test",
    startedAt: now - 60_000,
    seenAt: now,
    until: now + 60_000,
  };
}

async function fill(store: FleetStore, now: number) {
  const target: FleetTarget = {
    store,
    service: "svc",
    by: "ops@test",
    now: () => now,
  };
  await createSealedStoreSink(target, await importSealKeyring(KEY)).publish({
    label: "green",
    clientId: "green-id",
    secret: new Secret(SECRET),
  });
  await setSharedActive(target, "green");
  await audit(target, { action: "promote", outcome: "ok", label: "green" });
  await store.heartbeat(beat("web-0", "green", now));
  await store.heartbeat(beat("web-1", "blue", now));
}

function check(status: FleetStatus, now: number) {
  assert.deepEqual(status.instances.map((i) => i.instanceId), [
    "web-0",
    "web-1",
  ]);
  const [web0, web1] = status.instances;
  assert.equal(web0.host, "web-0.internal");
  assert.equal(web0.sealKey, "ok");
  assert.equal(web1.sealKey, "seal key mismatch (green)");
  assert.equal(web0.credentials[0].tokenLeftMs, 20_000);
  assert.equal(web0.credentials[1].secretFingerprint, "fp-0123456789abcdef");
  const [service] = status.services;
  assert.equal(service.service, "svc");
  assert.equal(service.active?.label, "green");
  assert.deepEqual(service.activeHistory.map((e) => e.action), ["promote"]);
  assert.deepEqual(service.stragglers, [{
    instanceId: "web-1",
    host: "web-1.internal",
    reason: 'serves "blue", not "green"',
  }]);
  assert.deepEqual(service.secrets.map((s) => [s.label, s.generation]), [[
    "green",
    1,
  ]]);
  // Blue is the standby: both instances hold its tokens, the gate is shut.
  assert.equal(service.gate?.label, "blue");
  assert.equal(service.gate?.open, false);
  assert.deepEqual(
    service.gate?.blockers.map((b) => [b.instanceId, b.heldUntil]),
    [["web-0", now + 20_000], ["web-1", now + 20_000]],
  );
  const text = JSON.stringify(status);
  assert.ok(!text.includes(SECRET) && !text.includes(KEY));
  assert.doesNotMatch(text, /"sealed"/);
}

Deno.test("fleet status on Deno KV: instances, active label and history, stragglers, secrets, gate; reading writes nothing", async () => {
  const now = Date.now();
  const kv = await Deno.openKv(":memory:");
  try {
    await fill(createKvFleetStore(kv, { prefix: ["p"] }), now);
    const snapshot = async () => {
      const out: string[] = [];
      for await (const e of kv.list({ prefix: [] })) {
        out.push(`${JSON.stringify(e.key)} ${e.versionstamp}`);
      }
      return out;
    };
    const before = await snapshot();
    check(await readFleetStatus(kvStatusSource(kv, ["p"], "kv"), { now }), now);
    assert.deepEqual(await snapshot(), before);
  } finally {
    kv.close();
  }
});

Deno.test({
  name:
    "fleet status on Redis: the same view; reading writes nothing (every key's dump unchanged)",
  ignore: ignoreWithoutRedis(),
}, async () => {
  const now = Date.now();
  await using server = await startRedisServer();
  const store = createRedisFleetStore({ url: server.url, prefix: "p" });
  try {
    await fill(store, now);
  } finally {
    await store.close();
  }
  const redis = await connectRedis({ url: server.url });
  try {
    const snapshot = async () => {
      const keys = (await redis.client.sendCommand(["KEYS", "*"]) as string[])
        .sort();
      const out: string[] = [];
      for (const key of keys) {
        out.push(`${key} ${await redis.client.sendCommand(["DUMP", key])}`);
      }
      return out;
    };
    const before = await snapshot();
    const source = redisStatusSource(redis.client, "p", "redis");
    try {
      check(await readFleetStatus(source, { now }), now);
    } finally {
      await source.close();
    }
    assert.deepEqual(await snapshot(), before);
  } finally {
    await redis.close();
  }
});
