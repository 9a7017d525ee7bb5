import assert from "node:assert/strict";
import {
  createMemoryFleetStore,
  type InstanceRecord,
} from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import {
  fleetIncidentPorts,
  fleetPresenceRefusal,
  type FleetWords,
  planFleetRotation,
  resumesPastRegenerate,
} from "../../src/fleet/store_flows.ts";
import {
  FleetNotLoadedError,
  type SeenInstance,
} from "../../src/fleet/operator.ts";
import { importSealKeyring } from "../../src/fleet/distribution.ts";
import { Secret } from "../../src/secret.ts";

const NOW = 50_000;
const ENV_CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-env" },
  { label: "green", clientId: "green-id", clientSecret: "green-env" },
];

async function makeTarget(now: () => number = () => NOW) {
  return createStoreTarget({
    store: createMemoryFleetStore(),
    service: "svc",
    by: "ops@test",
    now,
    ring: await importSealKeyring(btoa("k".repeat(32))),
    onRejected: () => {},
  });
}

const heartbeat = (
  id: string,
  active: string,
  blueFingerprint?: string,
): InstanceRecord => ({
  instanceId: id,
  active,
  credentials: [
    {
      label: "blue",
      clientId: "blue-id",
      slots: [0],
      ...(blueFingerprint === undefined ? {} : {
        secretFingerprint: blueFingerprint,
        secretGeneration: 3,
      }),
    },
    { label: "green", clientId: "green-id", slots: [0] },
  ],
  version: "0",
  startedAt: 0,
  seenAt: NOW,
  until: NOW + 10_000,
});

const words: FleetWords = {
  storeArgs: "--kv fleet.db",
  envFile: ".env",
  instanceTable: (rows) => rows.map((r) => `row ${r.instanceId}`),
  elsewhereTable: (rows) => rows.map((r) => `other ${r.namespace}`),
};

const none = () => Promise.resolve([] as SeenInstance[]);

Deno.test("planFleetRotation: the active label and the standby from the store, the store's secrets", async () => {
  const target = await makeTarget();
  await target.store.heartbeat(heartbeat("web-1", "green"));
  await target.sealedSink().publish({
    label: "green",
    clientId: "green-id",
    secret: new Secret("green-store"),
  });
  await target.setActive("green");
  const plan = await planFleetRotation(target, {
    credentials: ENV_CREDENTIALS,
    envActive: "blue",
    expectation: {},
    elsewhere: none,
    words,
  });
  assert.equal(plan.kind, "ready");
  if (plan.kind !== "ready") return;
  assert.equal(plan.active, "green", "the store's, not GENESYS_ACTIVE");
  assert.equal(plan.standby, "blue");
  assert.equal(plan.notice, undefined);
  const green = plan.credentials.find((c) => c.label === "green")!;
  assert.equal((green.clientSecret as Secret).reveal(), "green-store");
  assert.equal(plan.standbyCredential.clientId, "blue-id");
});

Deno.test("planFleetRotation: live instances that disagree with no active record are refused, with their table", async () => {
  const target = await makeTarget();
  await target.store.heartbeat(heartbeat("web-1", "blue"));
  await target.store.heartbeat(heartbeat("web-2", "green"));
  const plan = await planFleetRotation(target, {
    credentials: ENV_CREDENTIALS,
    envActive: "blue",
    expectation: {},
    elsewhere: none,
    words,
  });
  assert.equal(plan.kind, "refused");
  if (plan.kind !== "refused") return;
  assert.equal(plan.code, "FLEET_ACTIVE_UNKNOWN");
  assert.equal(
    plan.message,
    "The fleet store has no active label and its 2 live instances disagree (blue, green); nothing was changed.\n" +
      "row web-1\nrow web-2\n" +
      "Next: promote one label (deno task promote --kv fleet.db --to <label>), then rotate the other.",
  );
});

Deno.test("planFleetRotation: no live instance is refused (other prefixes listed); --allow-empty takes GENESYS_ACTIVE with a notice", async () => {
  const target = await makeTarget();
  const seen: SeenInstance[] = [{
    namespace: "dual-secret-auth/other",
    instanceId: "web-9",
    active: "blue",
  }];
  const refused = await planFleetRotation(target, {
    credentials: ENV_CREDENTIALS,
    envActive: "blue",
    expectation: {},
    elsewhere: () => Promise.resolve(seen),
    words,
  });
  assert.equal(refused.kind, "refused");
  if (refused.kind !== "refused") return;
  assert.equal(refused.code, "FLEET_NOT_SEEN");
  assert.match(
    refused.message,
    /^Refusing to regenerate a credential of this fleet: no live instance reports in this namespace: no instance has ever reported in this namespace; 1 live instance\(s\) report under another prefix/,
  );
  assert.match(refused.message, /\nother dual-secret-auth\/other\n/);
  assert.deepEqual(refused.details, { elsewhere: seen });

  const allowed = await planFleetRotation(target, {
    credentials: ENV_CREDENTIALS,
    envActive: "blue",
    expectation: { allowEmpty: true },
    elsewhere: none,
    words,
  });
  assert.equal(allowed.kind, "ready");
  if (allowed.kind !== "ready") return;
  assert.equal(allowed.active, "blue");
  assert.equal(allowed.standby, "green");
  assert.equal(
    allowed.notice,
    'Notice: the fleet store holds no active label and no live instance reports; taking "blue" as active from GENESYS_ACTIVE in .env.',
  );
});

Deno.test("planFleetRotation: a store that lost the active label's sealed secret is refused", async () => {
  const target = await makeTarget();
  await target.store.heartbeat(heartbeat("web-1", "blue", "f".repeat(16)));
  await target.setActive("blue");
  const plan = await planFleetRotation(target, {
    credentials: ENV_CREDENTIALS,
    envActive: "blue",
    expectation: {},
    elsewhere: none,
    words,
  });
  assert.equal(plan.kind, "refused");
  if (plan.kind !== "refused") return;
  assert.equal(plan.code, "FLEET_SECRET_LOST");
  assert.match(
    plan.message,
    /^The fleet store holds no sealed secret of the active label "blue", but 1 live instance\(s\) report one loaded from it \(generation 3\)/,
  );
  assert.match(plan.message, /deno task fleet --kv fleet.db --history/);
  assert.deepEqual(plan.details, {
    lost: { label: "blue", generation: 3, instances: ["web-1"] },
  });
});

Deno.test("planFleetRotation: --to the active label is a usage error", async () => {
  const target = await makeTarget();
  await target.store.heartbeat(heartbeat("web-1", "blue"));
  const plan = await planFleetRotation(target, {
    credentials: ENV_CREDENTIALS,
    envActive: "green",
    to: "blue",
    expectation: {},
    elsewhere: none,
    words,
  });
  assert.deepEqual(plan, {
    kind: "usage",
    message:
      '"blue" is the fleet\'s active label; rotate the other one, or promote first (deno task promote --kv fleet.db)',
  });
});

Deno.test("fleetPresenceRefusal: --expect-instances counts the live ones", async () => {
  const target = await makeTarget();
  await target.store.heartbeat(heartbeat("web-1", "blue"));
  const live = await target.live();
  const seen = { elsewhere: none, table: words.elsewhereTable };
  assert.equal(
    await fleetPresenceRefusal(target, live, { expectInstances: 1 }, "x", seen),
    undefined,
  );
  const refusal = await fleetPresenceRefusal(
    target,
    live,
    { expectInstances: 2 },
    "promote",
    seen,
  );
  assert.match(
    refusal?.message ?? "",
    /^Refusing to promote: 1 live instance\(s\) report in this namespace; --expect-instances 2 asked for at least that many\. Nothing was changed\.\nNext: /,
  );
});

Deno.test("resumesPastRegenerate: only an unfinished rotation of the label past its regenerate call, without --fresh", async () => {
  const target = await makeTarget();
  assert.equal(await resumesPastRegenerate(target, "green", false), false);
  const record = {
    version: 1,
    rotationId: "r",
    active: "blue",
    standby: "green",
    clientId: "green-id",
    sink: "fleet store (sealed)",
    phase: "regenerate",
    startedAt: NOW,
    regenerateRequestedAt: NOW,
  };
  await target.journal.write(record as never);
  assert.equal(await resumesPastRegenerate(target, "green", false), true);
  assert.equal(await resumesPastRegenerate(target, "green", true), false);
  assert.equal(await resumesPastRegenerate(target, "blue", false), false);
  await target.journal.write({ ...record, completedAt: NOW } as never);
  assert.equal(await resumesPastRegenerate(target, "green", false), false);
});

Deno.test("fleetIncidentPorts: the promotion, the load proof (--force goes on past stragglers, audited) and the steps in the audit trail", async () => {
  // The waits are timed by the target's clock: a real one here.
  const target = await makeTarget(() => Date.now());
  await target.store.heartbeat({
    ...heartbeat("web-1", "blue"),
    seenAt: Date.now(),
    until: Date.now() + 60_000,
  });
  const forced: string[] = [];
  const ports = fleetIncidentPorts(target, {
    compromised: "blue",
    timeoutMs: 300,
    force: true,
    onForced: (error) => forced.push(error.message),
  });
  await ports.sink.publish({
    label: "green",
    clientId: "green-id",
    secret: new Secret("green-new"),
  });
  // web-1 never reports green's new secret: a straggler.
  const line = await ports.awaitLoaded({ label: "green", active: false });
  assert.match(
    line,
    /^--force: went on although 1 of 1 live instances did not report secret [0-9a-f]{16} of "green" within 0 s: web-1 \(not loaded yet\)\.$/,
  );
  assert.equal(forced.length, 1);
  await ports.onPromote("green");
  assert.equal((await target.store.readActive("svc"))?.label, "green");
  ports.recordStep({
    step: "plan",
    status: "completed",
    detail: "planned",
    at: new Date(NOW).toISOString(),
    elapsedMs: 0,
  });
  ports.recordStep({
    step: "propagate",
    status: "completed",
    detail: "forced",
    at: new Date(NOW).toISOString(),
    elapsedMs: 1,
  });
  await ports.settled();
  const trail = (await target.store.listAudit("svc", 20)).map((e) =>
    `${e.action}:${e.outcome}:${e.label}`
  );
  for (
    const entry of [
      "secret.publish:ok:green",
      "incident.wait:forced:green",
      "promote:ok:green",
      "incident.plan:completed:blue",
      "incident.propagate:completed:blue",
    ]
  ) {
    assert.ok(trail.includes(entry), `${entry} in ${trail.join(", ")}`);
  }

  const strict = fleetIncidentPorts(target, {
    compromised: "blue",
    timeoutMs: 300,
  });
  await assert.rejects(
    strict.awaitLoaded({ label: "green", active: false }),
    FleetNotLoadedError,
  );
});
