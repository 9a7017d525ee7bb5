/**
 * Alerts: each trigger (a stalled step, the gate shut past its bound, a
 * promotion that leaves stragglers, a secret older than the maximum age)
 * reaches a loopback webhook once, from the store's state as the real
 * scheduler, promotion and sealed sink leave it. No payload carries a secret.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Secret } from "../../src/secret.ts";
import { importSealKeyring } from "../../src/fleet/distribution.ts";
import {
  audit,
  createSealedStoreSink,
  type FleetTarget,
  setSharedActive,
} from "../../src/fleet/operator.ts";
import { scheduleTick } from "../../src/fleet/schedule.ts";
import {
  createMemoryFleetStore,
  type FleetStore,
  type InstanceRecord,
} from "../../src/fleet/store.ts";
import {
  type FleetStatusSource,
  readFleetStatus,
} from "../../src/fleet/fleet_status.ts";
import { createAlertNotifier } from "../../src/fleet/alerts.ts";

const SERVICE = "svc-1";
const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(9)));
const NEW_SECRET = "green-CANARY-alert-5e21";
const MINUTE = 60_000;

/** A status source over a store holding one service (the KV and Redis sources list the same records). */
function memorySource(
  store: FleetStore,
  clock: () => number,
): FleetStatusSource {
  return {
    name: "memory",
    instances: async () =>
      (await store.listInstances()).filter((r) => r.until > clock()).map((
        record,
      ) => ({ prefix: "test", record })),
    audit: async (limit) =>
      (await store.listAudit(SERVICE, limit)).map((entry) => ({
        service: SERVICE,
        entry,
      })),
    store,
    close: () => Promise.resolve(),
  };
}

function beat(
  id: string,
  active: string,
  now: number,
  heldUntil?: { blue?: number; green?: number },
): InstanceRecord {
  return {
    instanceId: id,
    host: `${id}.internal`,
    active,
    credentials: ["blue", "green"].map((label) => ({
      label,
      clientId: `${label}-id`,
      slots: [0],
      // Used: the label it serves, and any it holds a token of.
      ...(label === active || heldUntil?.[label as "blue"] !== undefined
        ? { lastUsedAt: now }
        : {}),
      ...(heldUntil?.[label as "blue"] === undefined
        ? {}
        : { heldUntil: heldUntil[label as "blue"] }),
    })),
    version: "test",
    startedAt: now,
    seenAt: now,
    until: now + MINUTE,
  };
}

/** A webhook on loopback that keeps every body it receives. */
function startWebhook() {
  const bodies: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (request) => {
    bodies.push(await request.text());
    return new Response(null, { status: 204 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/alert`,
    bodies,
    alerts: () =>
      bodies.map((b) =>
        JSON.parse(b).alert as {
          kind: string;
          label?: string;
          summary: string;
          instances: { instanceId: string; tokenUntil?: number }[];
        }
      ),
    close: () => server.shutdown(),
  };
}

Deno.test("alerts: a scheduled cycle stuck at a shut gate fires step-stalled and gate-shut (with the holders and their token expiry) once, to a loopback webhook", async () => {
  let now = Date.UTC(2026, 0, 1);
  const clock = () => now;
  const store = createMemoryFleetStore();
  const target: FleetTarget = {
    store,
    service: SERVICE,
    by: "scheduler-1",
    now: clock,
  };
  const tokenUntil = now + 30 * MINUTE;
  await store.heartbeat(beat("web-0", "blue", now, { green: tokenUntil }));
  await store.heartbeat(beat("web-1", "blue", now));
  const progress: string[] = [];
  // One listener for every tick, as the scheduler task passes it.
  const onProgress = (line: string) => void progress.push(line);
  const tick = () =>
    scheduleTick({
      target,
      credentials: [
        { label: "blue", clientId: "blue-id" },
        { label: "green", clientId: "green-id" },
      ],
      initialActive: "blue",
      everyMs: 1,
      leaseMs: 10 * MINUTE,
      tokenLifetimeMs: MINUTE,
      drainBoundMs: MINUTE,
      rotate: () => Promise.reject(new Error("the gate is shut: not reached")),
      onProgress,
    });
  await tick();
  await tick();
  // The cycle started and waits at the gate of green, held by web-0's token;
  // a second tick at once does not repeat the line.
  assert.equal(
    progress.filter((l) => /waiting for the gate of "green"/.test(l)).length,
    1,
    progress.join("\n"),
  );
  const webhook = startWebhook();
  try {
    const notifier = createAlertNotifier({
      bounds: { stepMs: 2 * MINUTE, gateMs: 5 * MINUTE },
      webhookUrl: webhook.url,
    });
    const source = memorySource(store, clock);
    const read = () =>
      readFleetStatus(source, { now, tokenLifetimeMs: MINUTE });

    now += MINUTE;
    assert.deepEqual(await notifier.check(await read()), []);
    now += 2 * MINUTE; // 3 min at the gate: past the step bound only.
    await store.heartbeat(beat("web-0", "blue", now, { green: tokenUntil }));
    await store.heartbeat(beat("web-1", "blue", now));
    await tick();
    assert.deepEqual(
      (await notifier.check(await read())).map((a) => a.kind),
      ["step-stalled"],
    );
    now += 3 * MINUTE; // 6 min: past the gate bound too.
    await store.heartbeat(beat("web-0", "blue", now, { green: tokenUntil }));
    await store.heartbeat(beat("web-1", "blue", now));
    await tick();
    assert.deepEqual(
      (await notifier.check(await read())).map((a) => a.kind),
      ["gate-shut"],
    );
    // Once each: a further check with the same state sends nothing.
    assert.deepEqual(await notifier.check(await read()), []);

    const alerts = webhook.alerts();
    assert.deepEqual(alerts.map((a) => a.kind), ["step-stalled", "gate-shut"]);
    const gate = alerts[1];
    assert.equal(gate.label, "green");
    assert.deepEqual(gate.instances.map((i) => i.instanceId), ["web-0"]);
    assert.equal(gate.instances[0].tokenUntil, tokenUntil);
    assert.match(gate.summary, /web-0 \(holds-token\)/);
    assert.match(gate.summary, new RegExp(new Date(tokenUntil).toISOString()));
    assert.match(alerts[0].summary, /rotate step of "green" has waited 180 s/);
    // The scheduler's waiting line says what it waits for and until when.
    assert.ok(
      progress.some((l) =>
        l.includes("web-0") &&
        l.includes(new Date(tokenUntil).toISOString())
      ),
      progress.join("\n"),
    );
  } finally {
    await webhook.close();
  }
});

Deno.test("alerts: a promotion that leaves stragglers, and a secret older than --max-age, each reach the webhook once; no payload carries the secret or the seal key", async () => {
  let now = Date.UTC(2026, 0, 1);
  const clock = () => now;
  const store = createMemoryFleetStore();
  const target: FleetTarget = {
    store,
    service: SERVICE,
    by: "ops@host",
    now: clock,
  };
  const ring = await importSealKeyring(KEY);
  await createSealedStoreSink(target, ring).publish({
    label: "green",
    clientId: "green-id",
    secret: new Secret(NEW_SECRET),
  });
  await setSharedActive(target, "green");
  await audit(target, { action: "promote", outcome: "ok", label: "green" });
  const beats = async () => {
    await store.heartbeat(beat("web-0", "green", now));
    await store.heartbeat(beat("web-1", "blue", now));
  };
  await beats();
  const webhook = startWebhook();
  try {
    const notifier = createAlertNotifier({
      bounds: { stragglerMs: MINUTE, maxAgeMs: 60 * MINUTE },
      webhookUrl: webhook.url,
    });
    const source = memorySource(store, clock);
    const read = () => readFleetStatus(source, { now });
    assert.deepEqual(await notifier.check(await read()), []);
    now += 2 * MINUTE;
    await beats();
    assert.deepEqual(
      (await notifier.check(await read())).map((a) => a.kind),
      ["promotion-stragglers"],
    );
    now += 60 * MINUTE;
    await beats();
    assert.deepEqual(
      (await notifier.check(await read())).map((a) => a.kind),
      ["secret-too-old"],
    );
    assert.deepEqual(await notifier.check(await read()), []);
    // web-1 catches up: the stragglers' alert clears.
    await store.heartbeat(beat("web-1", "green", now));
    assert.deepEqual(await notifier.check(await read()), []);

    const alerts = webhook.alerts();
    assert.deepEqual(alerts.map((a) => a.kind), [
      "promotion-stragglers",
      "secret-too-old",
    ]);
    assert.deepEqual(alerts[0].instances.map((i) => i.instanceId), ["web-1"]);
    assert.match(alerts[0].summary, /still off "green"/);
    assert.equal(alerts[1].label, "green");
    assert.match(alerts[1].summary, /generation 1/);
    const sealed = (await store.readDocument(SERVICE, "credential/green"))
      ?.value as { sealed: string };
    for (const body of webhook.bodies) {
      for (const secret of [NEW_SECRET, KEY, sealed.sealed]) {
        assert.ok(!body.includes(secret), "a payload carries a secret");
      }
    }
  } finally {
    await webhook.close();
  }
});

Deno.test("alerts: a webhook that refuses is reported, and the alert is sent again at the next check", async () => {
  const now = Date.UTC(2026, 0, 1);
  const store = createMemoryFleetStore();
  const target: FleetTarget = {
    store,
    service: SERVICE,
    by: "ops@host",
    now: () => now - 120 * MINUTE,
  };
  await createSealedStoreSink(target, await importSealKeyring(KEY)).publish({
    label: "blue",
    clientId: "blue-id",
    secret: new Secret(NEW_SECRET),
  });
  const errors: string[] = [];
  let calls = 0;
  const notifier = createAlertNotifier({
    bounds: { maxAgeMs: 60 * MINUTE },
    webhookUrl: "http://127.0.0.1:9/alert",
    fetch: () => {
      calls++;
      return Promise.resolve(
        new Response("no", { status: calls === 1 ? 500 : 200 }),
      );
    },
    onError: (error) => errors.push(String(error)),
  });
  const status = await readFleetStatus(memorySource(store, () => now), { now });
  assert.deepEqual(await notifier.check(status), []);
  assert.match(errors[0], /HTTP 500/);
  assert.deepEqual(
    (await notifier.check(status)).map((a) => a.kind),
    ["secret-too-old"],
  );
  assert.equal(calls, 2);
});
