import assert from "node:assert/strict";
import {
  acquireStoreLock,
  checkRevokeGate,
  createSealedStoreSink,
  createStoreJournal,
  findLostSecrets,
  fleetLoadProof,
  FleetNotLoadedError,
  type FleetTarget,
  judgeFleetPresence,
  listLive,
  readTargetActive,
  reportedGeneration,
  secretStragglers,
  setSharedActive,
  type StoreLock,
  StoreLockedError,
  waitForFleet,
} from "../../src/fleet/operator.ts";
import type { FencedLock } from "../../src/rotation/lock.ts";
import { takeLeadership } from "../../src/fleet/schedule.ts";
import {
  createMemoryFleetStore,
  type InstanceRecord,
} from "../../src/fleet/store.ts";
import {
  credentialDocument,
  credentialFingerprint,
  importSealKeyring,
} from "../../src/fleet/distribution.ts";
import { authenticateStore } from "../../src/fleet/control.ts";
import { Secret } from "../../src/secret.ts";

function target(now: { value: number }, by = "ops@a"): FleetTarget {
  return {
    // The store judges locks by its own clock: here the same one.
    store: createMemoryFleetStore({ monotonic: () => now.value }),
    service: "svc",
    by,
    now: () => now.value,
  };
}

const heartbeat = (
  id: string,
  over: Partial<InstanceRecord> & {
    green?: { lastUsedAt?: number; heldUntil?: number };
  } = {},
): InstanceRecord => ({
  instanceId: id,
  active: "blue",
  credentials: [
    { label: "blue", clientId: "blue-id", slots: [0], lastUsedAt: 1_000 },
    { label: "green", clientId: "green-id", slots: [0], ...over.green },
  ],
  version: "0",
  startedAt: 0,
  seenAt: 1_000,
  until: 100_000,
  ...over,
});

Deno.test("revoke gate", async (t) => {
  const now = { value: 10_000 };
  const green = { label: "green", clientId: "green-id" };

  await t.step("open when no live instance uses the credential", async () => {
    const fleet = target(now);
    await fleet.store.heartbeat(heartbeat("a"));
    await fleet.store.heartbeat(
      heartbeat("gone", { active: "green", until: 9_000 }),
    );
    const report = await checkRevokeGate(fleet, green, 60_000);
    assert.equal(report.open, true);
    assert.equal(report.instances, 1, "a lapsed heartbeat does not count");
  });

  await t.step(
    "shut while an instance has it active, holds a token of it, or used one within a lifetime",
    async () => {
      const fleet = target(now);
      await fleet.store.heartbeat(heartbeat("active", { active: "green" }));
      await fleet.store.heartbeat(
        heartbeat("holder", {
          green: { heldUntil: 12_000, lastUsedAt: 9_000 },
        }),
      );
      await fleet.store.heartbeat(
        heartbeat("recent", { green: { lastUsedAt: 5_000 } }),
      );
      await fleet.store.heartbeat(
        heartbeat("long-ago", { green: { lastUsedAt: 1, heldUntil: 2 } }),
      );
      const report = await checkRevokeGate(fleet, green, 6_000);
      assert.equal(report.open, false);
      assert.deepEqual(
        report.blockers.map((b) => [b.instanceId, b.reason]).sort(),
        [
          ["active", "active"],
          ["holder", "holds-token"],
          ["recent", "used-recently"],
        ],
      );
    },
  );

  await t.step("another client id under the label does not count", async () => {
    const fleet = target(now);
    await fleet.store.heartbeat(
      heartbeat("a", { green: { heldUntil: 50_000 } }),
    );
    const report = await checkRevokeGate(
      fleet,
      { label: "green", clientId: "other-id" },
      6_000,
    );
    assert.equal(report.open, true);
  });
});

Deno.test("revoke gate: during a seal-key change, an instance that holds only the old key (which the operator keeps to open old records) keeps the gate shut", async () => {
  const raw = createMemoryFleetStore();
  const next = `next:${btoa("n".repeat(32))}`;
  const old = `old:${btoa("o".repeat(32))}`;
  const operator = await importSealKeyring(`${next},${old}`);
  const quiet = () => {};
  const fleet: FleetTarget = {
    store: authenticateStore(raw, operator, quiet, {
      keepUnverifiedHeartbeats: true,
    }),
    service: "svc",
    by: "ops",
    now: () => 1_000,
  };
  await authenticateStore(raw, await importSealKeyring(`${next},${old}`), quiet)
    .heartbeat(heartbeat("changed"));
  await authenticateStore(raw, await importSealKeyring(old), quiet).heartbeat(
    heartbeat("old-only"),
  );
  const report = await checkRevokeGate(
    fleet,
    { label: "green", clientId: "green-id" },
    6_000,
  );
  assert.equal(report.instances, 2);
  assert.deepEqual(
    report.blockers.map((b) => [b.instanceId, b.reason]),
    [["old-only", "seal-key"]],
  );
  assert.match(
    report.blockers[0].problem!,
    /signs with key id "old", not next/,
  );
});

Deno.test("revoke gate: on a namespace's first rotation, an instance whose seal key differs from the operator's (or that has none) keeps the gate shut", async () => {
  const raw = createMemoryFleetStore();
  const ours = await importSealKeyring(btoa("o".repeat(32)));
  const theirs = await importSealKeyring(btoa("t".repeat(32)));
  const quiet = () => {};
  const fleet: FleetTarget = {
    store: authenticateStore(raw, ours, quiet, {
      keepUnverifiedHeartbeats: true,
    }),
    service: "svc",
    by: "ops",
    now: () => 1_000,
  };
  // No sealed record exists yet: nothing to compare keys with but the
  // heartbeats' MACs.
  await authenticateStore(raw, ours, quiet).heartbeat(heartbeat("same-key"));
  await authenticateStore(raw, theirs, quiet).heartbeat(
    heartbeat("other-key"),
  );
  await raw.heartbeat(heartbeat("no-key"));
  const report = await checkRevokeGate(
    fleet,
    { label: "green", clientId: "green-id" },
    6_000,
  );
  assert.equal(report.open, false);
  assert.equal(report.instances, 3);
  assert.deepEqual(
    report.blockers.map((b) => [b.instanceId, b.reason]).sort(),
    [["no-key", "seal-key"], ["other-key", "seal-key"]],
  );
  assert.match(
    report.blockers.find((b) => b.instanceId === "other-key")!.problem!,
    /not among this process's keys/,
  );
  assert.match(
    report.blockers.find((b) => b.instanceId === "no-key")!.problem!,
    /no MAC/,
  );
});

Deno.test("a store that lost its data: the lost secrets are named, and a publication goes on from the generation the instances loaded", async () => {
  const now = { value: 1_000 };
  const fleet = target(now);
  const loaded = (id: string, generation: number) =>
    heartbeat(id, {
      active: "green",
      credentials: [
        { label: "blue", clientId: "blue-id", slots: [0] },
        {
          label: "green",
          clientId: "green-id",
          slots: [0],
          secretGeneration: generation,
          secretFingerprint: `fp-${generation}`,
        },
      ],
    });
  await fleet.store.heartbeat(loaded("a", 3));
  await fleet.store.heartbeat(loaded("b", 2));
  const live = await listLive(fleet);
  assert.deepEqual(await findLostSecrets(fleet, live, ["blue", "green"]), [
    { label: "green", generation: 3, instances: ["a", "b"] },
  ]);
  assert.equal(reportedGeneration(live, "green"), 3);
  const ring = await importSealKeyring(btoa("k".repeat(32)));
  const sink = createSealedStoreSink(fleet, ring);
  await sink.publish({
    label: "green",
    clientId: "green-id",
    secret: new Secret("new-green"),
  });
  assert.equal(sink.generations.get("green"), 4, "not 1 again");
  assert.deepEqual(await findLostSecrets(fleet, live, ["green"]), []);
});

Deno.test("store lock: one holder; a lapsed lock is taken over; released on dispose", async () => {
  const now = { value: 1_000 };
  const first = target(now, "ops@a");
  const second: FleetTarget = { ...first, by: "ops@b" };
  {
    await using _held = await acquireStoreLock(first, "rotate --kv x", 5_000);
    await assert.rejects(
      () => acquireStoreLock(second, "promote --kv x", 5_000),
      (error: unknown) =>
        error instanceof StoreLockedError &&
        error.code === "FLEET_ROTATION_LOCKED" &&
        error.holder.holder === "ops@a" &&
        /rotate --kv x/.test(error.message),
    );
  }
  // Released: the other takes it, then dies holding it.
  await acquireStoreLock(second, "promote --kv x", 5_000);
  await assert.rejects(() => acquireStoreLock(first, "rotate", 5_000));
  now.value += 5_001;
  await using _again = await acquireStoreLock(first, "rotate", 5_000);
});

Deno.test("store lock: a FencedLock whose token is the store's fence, above every earlier hold's", async () => {
  const now = { value: 1_000 };
  const first = target(now, "ops@a");
  const second: FleetTarget = { ...first, by: "ops@b" };
  const tokens: number[] = [];
  {
    const held: FencedLock = await acquireStoreLock(first, "rotate", 5_000);
    const lock = held as StoreLock;
    assert.equal(lock.token, lock.fence?.fence);
    tokens.push(held.token);
    await held.release();
    await held.release(); // a second release does nothing
  }
  {
    // Released: another takes it at once, with a higher token.
    await using held = await acquireStoreLock(second, "promote", 5_000);
    tokens.push(held.token);
  }
  // Dead holder: its lock lapses; the next hold's token is higher still.
  const dead = await acquireStoreLock(first, "rotate", 5_000);
  tokens.push(dead.token);
  now.value += 5_001;
  await using taken = await acquireStoreLock(second, "rotate", 5_000);
  tokens.push(taken.token);
  for (let i = 1; i < tokens.length; i++) {
    assert.ok(tokens[i] > tokens[i - 1], `tokens ${tokens.join(", ")}`);
  }
});

Deno.test("store lock: held by one acquisition, not by a name (two operators on one host, two schedulers given one id)", async () => {
  const now = { value: 1_000 };
  const first = target(now, "operator@host");
  // Same name, another process: another env file, or a copy of a scheduler.
  const twin: FleetTarget = { ...first };
  {
    await using _held = await acquireStoreLock(first, "rotate --kv x", 5_000);
    await assert.rejects(
      () => acquireStoreLock(twin, "rotate --kv x", 5_000),
      (error: unknown) =>
        error instanceof StoreLockedError &&
        error.holder.holder === "operator@host" &&
        /rotate --kv x/.test(error.message),
    );
    // The refused twin released nothing: the first still holds it.
    await assert.rejects(() => acquireStoreLock(twin, "promote", 5_000));
  }
  await using _next = await acquireStoreLock(twin, "promote --kv x", 5_000);
});

Deno.test("store lock: a re-run holding the same OS lock (lockProof) takes a killed run's lock over at once; another proof waits", async () => {
  const now = { value: 1_000 };
  const killed: FleetTarget = {
    ...target(now, "operator@host"),
    lockProof: "host:/srv/a/.env.lock",
  };
  // Killed while holding it: never disposed.
  const dead = await acquireStoreLock(killed, "rotate --kv x", 60_000);
  const otherEnv: FleetTarget = {
    ...killed,
    lockProof: "host:/srv/b/.env.lock",
  };
  await assert.rejects(
    () => acquireStoreLock(otherEnv, "rotate --kv x", 60_000),
    StoreLockedError,
  );
  const noProof: FleetTarget = { ...killed, lockProof: undefined };
  await assert.rejects(
    () => acquireStoreLock(noProof, "rotate --kv x", 60_000),
    StoreLockedError,
  );
  await using rerun = await acquireStoreLock(killed, "rotate --kv x", 60_000);
  assert.ok(rerun.fence!.fence > dead.fence!.fence, "a higher fence");
  // The dead run's fenced writes are refused from now on.
  assert.equal(
    await killed.store.writeDocument("svc", "x", 0, { v: 1 }, dead.fence),
    false,
  );
  assert.equal(
    await killed.store.writeDocument("svc", "x", 0, { v: 1 }, rerun.fence),
    true,
  );
  await assert.rejects(() => dead.renew());
  assert.equal(
    await killed.store.writeDocument("svc", "x", 1, { v: 2 }, rerun.fence),
    true,
    "a renewal of the dead hold takes nothing back",
  );
});

Deno.test("scheduler leader lease: two schedulers with the same id never both lead", async () => {
  const store = createMemoryFleetStore({ monotonic: () => 0 });
  const one: FleetTarget = {
    store,
    service: "svc",
    by: "scheduler",
    now: () => 1,
  };
  const other: FleetTarget = { ...one };
  const a = await takeLeadership(one, 60_000);
  assert.ok(a, "the first takes the lead");
  assert.equal(await takeLeadership(other, 60_000), undefined);
  // The leader keeps it from tick to tick.
  assert.deepEqual(await takeLeadership(one, 60_000), a);
  assert.equal(await takeLeadership(other, 60_000), undefined);
});

Deno.test("store journal: written and read back through the store", async () => {
  const fleet = target({ value: 1 });
  const journal = createStoreJournal(fleet);
  assert.equal(await journal.read(), undefined);
  const record = {
    version: 1 as const,
    rotationId: "r1",
    active: "blue",
    standby: "green",
    clientId: "green-id",
    sink: "fleet store (sealed)",
    phase: "regenerate" as const,
    startedAt: 1,
  };
  await journal.write(record);
  await journal.write({ ...record, phase: "publish" });
  assert.deepEqual(await journal.read(), { ...record, phase: "publish" });
});

Deno.test("promotion: the active label by compare-and-set; waiting reports stragglers", async () => {
  const now = { value: 1_000 };
  const fleet = target(now);
  const first = await setSharedActive(fleet, "green");
  assert.equal(first.generation, 1);
  assert.equal((await setSharedActive(fleet, "green")).generation, 1);
  assert.equal((await setSharedActive(fleet, "blue")).generation, 2);
  await fleet.store.heartbeat(heartbeat("follows", { active: "blue" }));
  await fleet.store.heartbeat(heartbeat("stuck", { active: "green" }));
  const progress: string[] = [];
  let slept = 0;
  const stragglers = await waitForFleet(fleet, {
    reached: (r) => r.active === "blue",
    timeoutMs: 1_000,
    pollMs: 250,
    onProgress: (reached, live) => progress.push(`${reached}/${live}`),
    sleep: (ms) => {
      slept += ms;
      now.value += ms;
      return Promise.resolve();
    },
  });
  assert.deepEqual(stragglers.map((s) => s.instanceId), ["stuck"]);
  assert.deepEqual(progress, ["1/2"]);
  assert.equal(slept, 1_000);
});

Deno.test("presence: no live instance is refused unless told; the reason names the history and other prefixes", () => {
  const elsewhere = [{
    namespace: "dual-secret-auth/my-service",
    instanceId: "web-1",
    active: "green",
  }];
  const empty = judgeFleetPresence({ live: 0, elsewhere }, {});
  assert.equal(empty.proceed, false);
  assert.match(
    !empty.proceed ? empty.reason : "",
    /no instance has ever reported in this namespace; 1 live instance\(s\) report under another prefix/,
  );
  const before = judgeFleetPresence({
    live: 0,
    elsewhere: [],
    activeRecord: {
      label: "green",
      generation: 3,
      by: "web-1",
      at: 0,
      reason: "initial",
    },
  }, {});
  assert.match(
    !before.proceed ? before.reason : "",
    /instances reported here before \(the active label "green" was set by web-1/,
  );
  assert.equal(
    judgeFleetPresence({ live: 0, elsewhere }, { allowEmpty: true }).proceed,
    true,
  );
  assert.equal(
    judgeFleetPresence({ live: 0, elsewhere }, { expectInstances: 0 }).proceed,
    true,
  );
  assert.equal(
    judgeFleetPresence({ live: 2, elsewhere: [] }, {}).proceed,
    true,
  );
  const fewer = judgeFleetPresence({ live: 2, elsewhere: [] }, {
    expectInstances: 3,
  });
  assert.match(
    !fewer.proceed ? fewer.reason : "",
    /2 live instance\(s\) report in this namespace; --expect-instances 3/,
  );
});

Deno.test("the active label comes from the store's record, else from heartbeats that agree", async () => {
  const now = { value: 1_000 };
  const t = target(now);
  assert.equal(await readTargetActive(t, []), undefined);
  assert.deepEqual(
    await readTargetActive(t, [heartbeat("a", { active: "green" })]),
    { label: "green", source: "instances" },
  );
  assert.equal(
    await readTargetActive(t, [
      heartbeat("a", { active: "green" }),
      heartbeat("b", { active: "blue" }),
    ]),
    undefined,
  );
  await setSharedActive(t, "blue");
  assert.deepEqual(
    await readTargetActive(t, [heartbeat("a", { active: "green" })]),
    { label: "blue", source: "store" },
  );
});

Deno.test("secret stragglers: counted only with the proved fingerprint; each with its reason", () => {
  const withGreen = (
    id: string,
    green: Record<string, unknown>,
  ): InstanceRecord => ({
    ...heartbeat(id),
    credentials: [
      { label: "blue", clientId: "blue-id", slots: [0] },
      { label: "green", clientId: "green-id", slots: [0], ...green },
    ],
  });
  const live = [
    withGreen("proved", { secretFingerprint: "f2", secretGeneration: 1 }),
    // Same generation, another secret: the store lost its data in between.
    withGreen("old", { secretFingerprint: "f1", secretGeneration: 1 }),
    withGreen("wrong-key", {
      secretProblem: { fingerprint: "f2", reason: "seal key mismatch" },
    }),
    withGreen("failed", {
      secretFingerprint: "f1",
      secretProblem: { fingerprint: "f2", reason: "proof failed" },
    }),
    withGreen("slow", {}),
  ];
  assert.deepEqual(
    secretStragglers(live, "green", "f2").map((s) =>
      `${s.instanceId}: ${s.reason}`
    ),
    [
      "old: loaded another secret",
      "wrong-key: seal key mismatch",
      "failed: proof failed",
      "slow: not loaded yet",
    ],
  );
});

Deno.test("waitForFleet: an interrupt ends the wait with the stragglers of the last read", async () => {
  const now = { value: 1_000 };
  const t = target(now);
  await t.store.heartbeat(heartbeat("a"));
  const controller = new AbortController();
  const started = Date.now();
  const waiting = waitForFleet(t, {
    reached: () => false,
    timeoutMs: 60_000,
    pollMs: 30_000,
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(), 20);
  const stragglers = await waiting;
  assert.deepEqual(stragglers.map((s) => s.instanceId), ["a"]);
  assert.ok(Date.now() - started < 5_000);
});

Deno.test("a heartbeat the store holds but this version cannot read is left out, not a crash of every operator step", async () => {
  // Written straight into the store (another version, a corrupted or
  // hostile write): rotate --kv and promote --kv died on it with
  // "Cannot read properties of null (reading 'until')".
  const now = { value: 10_000 };
  const fleet = target(now);
  await fleet.store.heartbeat(heartbeat("a"));
  const store = {
    ...fleet.store,
    listInstances: async () =>
      [
        ...await fleet.store.listInstances(),
        null,
        { instanceId: "ghost", active: "green", until: 1e15 },
        "not a record",
      ] as unknown as InstanceRecord[],
  };
  const hostile: FleetTarget = { ...fleet, store };
  const green = { label: "green", clientId: "green-id" };
  const gate = await checkRevokeGate(hostile, green, 60_000);
  assert.equal(gate.open, true);
  assert.equal(gate.instances, 1);
  assert.deepEqual(
    (await listLive(hostile)).map((record) => record.instanceId),
    ["a"],
  );
  const stragglers = await waitForFleet(hostile, {
    reached: (record) => record.active === "blue",
    timeoutMs: 0,
    pollMs: 1,
    sleep: () => Promise.resolve(),
  });
  assert.deepEqual(stragglers, []);
});

Deno.test("the incident's load proof names each straggler's reason in its stragglers, as in its message", async () => {
  // incident --kv printed "web-9 (seal key mismatch)" in the message and
  // "-" in the REASON column of the table built from the stragglers.
  const now = { value: 10_000 };
  const fleet = target(now);
  const record = {
    label: "green",
    clientId: "green-id",
    generation: 1,
    keyId: "k1",
    sealed: "v1.sealed",
    publishedAt: 1_000,
    publishedBy: "ops@a",
  };
  assert.ok(
    await fleet.store.writeDocument(
      "svc",
      credentialDocument("green"),
      0,
      record,
    ),
  );
  const fingerprint = await credentialFingerprint(record);
  await fleet.store.heartbeat(heartbeat("web-8", {
    credentials: [{
      label: "green",
      clientId: "green-id",
      slots: [0],
      secretFingerprint: fingerprint,
    }],
  }));
  await fleet.store.heartbeat(heartbeat("web-9", {
    credentials: [{
      label: "green",
      clientId: "green-id",
      slots: [0],
      secretProblem: { fingerprint, reason: "seal key mismatch" },
    }],
  }));
  const proof = fleetLoadProof(fleet, { timeoutMs: 0, pollMs: 1 });
  await assert.rejects(
    proof({
      label: "green",
      active: false,
      signal: new AbortController().signal,
    }),
    (error: unknown) => {
      assert.ok(error instanceof FleetNotLoadedError);
      assert.match(error.message, /web-9 \(seal key mismatch\)/);
      assert.deepEqual(
        error.stragglers.map((s) => [s.instanceId, s.reason]),
        [["web-9", "seal key mismatch"]],
      );
      return true;
    },
  );
});
