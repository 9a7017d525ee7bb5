/**
 * The engine-agnostic contract of a {@linkcode FleetStore}. Every engine's
 * test calls {@linkcode fleetStoreContract} with a factory of fresh, empty
 * stores (each call must return a store that shares nothing with earlier ones,
 * e.g. under a new prefix).
 *
 * @module
 */
import assert from "node:assert/strict";
import type {
  ActiveRecord,
  FleetStore,
  GrantKey,
  InstanceRecord,
  RejectionRecord,
  StoredGrant,
} from "../../src/fleet/store.ts";

/** Makes a fresh empty store; `close` (if any) is called after the step. */
export type StoreFactory = () => Promise<
  { store: FleetStore; close?: () => Promise<void> | void }
>;

const grant = (over: Partial<StoredGrant> = {}): StoredGrant => ({
  token: "tok",
  sealed: false,
  clientId: "client",
  expiresAt: 10_000,
  refreshAt: 8_000,
  writtenAt: 1_000,
  writtenBy: "a",
  ...over,
});

const rejection = (over: Partial<RejectionRecord> = {}): RejectionRecord => ({
  credential: "cred",
  label: "blue",
  clientId: "client",
  secretHash: "h1",
  at: 1_000,
  by: "a",
  status: 400,
  oauthError: "invalid_client",
  ...over,
});

const active = (
  label: string,
  generation: number,
): ActiveRecord => ({ label, generation, by: "a", at: 1, reason: "rotate" });

const instance = (id: string, until: number): InstanceRecord => ({
  instanceId: id,
  host: "h",
  active: "blue",
  credentials: [{ label: "blue", clientId: "client", slots: [0] }],
  version: "0.0.0",
  startedAt: 1,
  seenAt: 2,
  until,
});

/**
 * Registers the contract's steps.
 *
 * @param t The test context to add steps to.
 * @param factory Makes fresh stores.
 */
export async function fleetStoreContract(
  t: Deno.TestContext,
  factory: StoreFactory,
): Promise<void> {
  const step = (name: string, fn: (store: FleetStore) => Promise<void>) =>
    t.step(name, async () => {
      const { store, close } = await factory();
      try {
        await fn(store);
      } finally {
        await close?.();
      }
    });
  const key: GrantKey = { credential: "cred", slot: 0 };

  await step("an empty slot reads as an empty record", async (store) => {
    assert.deepEqual(await store.readSlots([key, { ...key, slot: 1 }]), [
      {},
      {},
    ]);
  });

  await step(
    "one lease at a time; lapsed or own leases are taken",
    async (store) => {
      assert.equal(
        await store.tryLease(key, { holder: "a", until: 2_000 }, 1_000),
        true,
      );
      assert.equal(
        await store.tryLease(key, { holder: "b", until: 2_000 }, 1_500),
        false,
      );
      assert.equal(
        await store.tryLease(key, { holder: "a", until: 3_000 }, 1_500),
        true,
      );
      assert.deepEqual((await store.readSlots([key]))[0].lease, {
        holder: "a",
        until: 3_000,
      });
      assert.equal(
        await store.tryLease(key, { holder: "b", until: 5_000 }, 3_000),
        true,
      );
      assert.equal(
        await store.tryLease(
          { ...key, slot: 1 },
          { holder: "c", until: 5_000 },
          3_000,
        ),
        true,
        "slots lease independently",
      );
    },
  );

  await step("concurrent leases: exactly one winner", async (store) => {
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => store.tryLease(key, { holder: `i${i}`, until: 9_000 }, 1_000),
      ),
    );
    assert.equal(results.filter(Boolean).length, 1);
  });

  await step(
    "writing a grant releases the writer's lease only",
    async (store) => {
      await store.tryLease(key, { holder: "a", until: 2_000 }, 1_000);
      assert.equal(await store.writeGrant(key, grant(), "b"), true);
      assert.deepEqual(await store.readSlots([key]), [{
        grant: grant(),
        lease: { holder: "a", until: 2_000 },
      }]);
      assert.equal(
        await store.writeGrant(
          key,
          grant({ token: "t2", expiresAt: 11_000 }),
          "a",
        ),
        true,
      );
      assert.deepEqual(await store.readSlots([key]), [{
        grant: grant({ token: "t2", expiresAt: 11_000 }),
      }]);
    },
  );

  await step(
    "a grant that expires earlier does not overwrite a later one",
    async (store) => {
      await store.writeGrant(key, grant({ expiresAt: 20_000 }), "a");
      assert.equal(
        await store.writeGrant(key, grant({ token: "old" }), "a"),
        false,
      );
      assert.equal((await store.readSlots([key]))[0].grant?.expiresAt, 20_000);
    },
  );

  await step("releaseLease drops only the holder's lease", async (store) => {
    await store.tryLease(key, { holder: "a", until: 2_000 }, 1_000);
    await store.releaseLease(key, "b");
    assert.equal((await store.readSlots([key]))[0].lease?.holder, "a");
    await store.releaseLease(key, "a");
    assert.equal((await store.readSlots([key]))[0].lease, undefined);
    assert.equal(
      await store.tryLease(key, { holder: "b", until: 2_000 }, 1_000),
      true,
    );
  });

  await step("dropGrant drops only the token named", async (store) => {
    await store.writeGrant(key, grant(), "a");
    await store.dropGrant(key, "other");
    assert.equal((await store.readSlots([key]))[0].grant?.token, "tok");
    await store.dropGrant(key, "tok");
    assert.equal((await store.readSlots([key]))[0].grant, undefined);
  });

  await step(
    "active label: compare-and-set on the generation",
    async (store) => {
      assert.equal(await store.readActive("svc"), undefined);
      assert.equal(
        await store.compareAndSetActive("svc", 1, active("blue", 2)),
        false,
      );
      assert.equal(
        await store.compareAndSetActive("svc", 0, active("blue", 1)),
        true,
      );
      assert.equal(
        await store.compareAndSetActive("svc", 0, active("green", 1)),
        false,
      );
      assert.deepEqual(await store.readActive("svc"), active("blue", 1));
      assert.equal(
        await store.compareAndSetActive("svc", 1, active("green", 2)),
        true,
      );
      assert.deepEqual(await store.readActive("svc"), active("green", 2));
      assert.equal(
        await store.readActive("other"),
        undefined,
        "services are separate",
      );
    },
  );

  await step(
    "concurrent compare-and-set: exactly one winner",
    async (store) => {
      const results = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) => store.compareAndSetActive("svc", 0, active(`l${i}`, 1)),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
    },
  );

  await step(
    "rejections are published once per credential and secret hash",
    async (store) => {
      assert.equal(await store.publishRejection(rejection()), true);
      assert.equal(await store.publishRejection(rejection({ by: "b" })), false);
      assert.equal(
        await store.publishRejection(rejection({ secretHash: "h2" })),
        true,
      );
      await store.publishRejection(rejection({ credential: "other" }));
      const seen = await store.readRejections(["cred"]);
      assert.deepEqual(seen.map((r) => r.secretHash).sort(), ["h1", "h2"]);
      assert.equal(seen.find((r) => r.secretHash === "h1")?.by, "a");
      await store.clearRejections("cred", "h2");
      assert.deepEqual(
        (await store.readRejections(["cred"])).map((r) => r.secretHash),
        ["h2"],
      );
      await store.clearRejections("cred");
      assert.deepEqual(await store.readRejections(["cred"]), []);
      assert.equal((await store.readRejections(["other", "cred"])).length, 1);
    },
  );

  await step(
    "heartbeats: written, listed with their until, removed",
    async (store) => {
      await store.heartbeat(instance("a", 5_000));
      await store.heartbeat(instance("b", 1_000));
      await store.heartbeat(instance("a", 6_000));
      const listed = (await store.listInstances()).sort((x, y) =>
        x.instanceId.localeCompare(y.instanceId)
      );
      assert.deepEqual(listed, [instance("a", 6_000), instance("b", 1_000)]);
      await store.removeInstance("a");
      assert.deepEqual((await store.listInstances()).map((i) => i.instanceId), [
        "b",
      ]);
    },
  );

  await step("values round-trip as JSON", async (store) => {
    const big = grant({ token: "x".repeat(8_000) });
    await store.writeGrant(key, big, "a");
    const [read] = await store.readSlots([key]);
    assert.deepEqual(read.grant, JSON.parse(JSON.stringify(big)));
  });

  await step(
    "readSlots takes more keys than one atomic read allows",
    async (store) => {
      const keys = Array.from(
        { length: 23 },
        (_, slot) => ({ credential: "c", slot }),
      );
      for (const k of keys) {
        await store.writeGrant(
          k,
          grant({ token: `t${k.slot}` }),
          "a",
        );
      }
      const read = await store.readSlots(keys);
      assert.deepEqual(
        read.map((r) => r.grant?.token),
        keys.map((k) => `t${k.slot}`),
      );
    },
  );

  await step(
    "documents: compare-and-set on the version, per service and name",
    async (store) => {
      assert.equal(
        await store.readDocument("svc", "credential/green"),
        undefined,
      );
      assert.equal(
        await store.writeDocument("svc", "credential/green", 1, { a: 1 }),
        false,
        "a version that was never stored",
      );
      assert.equal(
        await store.writeDocument("svc", "credential/green", 0, {
          generation: 1,
          at: 1_733_000_000_123,
        }),
        true,
      );
      assert.deepEqual(await store.readDocument("svc", "credential/green"), {
        version: 1,
        value: { generation: 1, at: 1_733_000_000_123 },
      });
      assert.equal(
        await store.writeDocument("svc", "credential/green", 0, { b: 2 }),
        false,
        "a stale version",
      );
      const racers = await Promise.all(
        ["x", "y", "z"].map((who) =>
          store.writeDocument("svc", "credential/green", 1, { who })
        ),
      );
      assert.equal(racers.filter(Boolean).length, 1, "one racer wins");
      assert.equal(
        (await store.readDocument("svc", "credential/green"))?.version,
        2,
      );
      assert.equal(
        await store.readDocument("other", "credential/green"),
        undefined,
      );
      assert.equal(
        await store.readDocument("svc", "credential/blue"),
        undefined,
      );
    },
  );

  await step(
    "audit trail: appended in order, the latest read back",
    async (store) => {
      assert.deepEqual(await store.listAudit("svc", 10), []);
      for (let i = 0; i < 5; i++) {
        await store.appendAudit("svc", {
          at: 1_733_000_000_000 + i,
          by: "ops@host",
          action: "rotate.regenerate",
          outcome: "ok",
          label: "green",
          detail: `step ${i}`,
        });
      }
      await store.appendAudit("other", {
        at: 1,
        by: "x",
        action: "promote",
        outcome: "ok",
      });
      const latest = await store.listAudit("svc", 3);
      assert.deepEqual(latest.map((e) => e.detail), [
        "step 2",
        "step 3",
        "step 4",
      ]);
      assert.equal(latest[2].at, 1_733_000_000_004);
      assert.equal((await store.listAudit("other", 10)).length, 1);
    },
  );

  await step(
    "locks: one holder, renewed by it, a fence that grows with each new holder; fenced writes of a former holder are refused",
    async (store) => {
      const a = { holder: "a", ttlMs: 60_000, note: "rotate --kv" };
      const first = await store.claimLock("svc", "rotation", a);
      assert.deepEqual(first, { held: true, ...a, fence: 1 });
      const refused = await store.claimLock("svc", "rotation", {
        holder: "b",
        ttlMs: 60_000,
        note: "promote",
      });
      assert.equal(refused.held, false);
      assert.equal(refused.holder, "a");
      assert.equal(refused.note, "rotate --kv");
      assert.equal(refused.fence, 1);
      assert.equal((await store.claimLock("svc", "rotation", a)).fence, 1);
      assert.equal((await store.readLock("svc", "rotation"))?.holder, "a");
      assert.equal(
        (await store.claimLock("other", "rotation", { ...a, holder: "c" }))
          .held,
        true,
        "locks of other services are apart",
      );
      const fenceA = { lock: "rotation", holder: "a", fence: 1 };
      assert.equal(
        await store.writeDocument("svc", "doc", 0, { n: 1 }, fenceA),
        true,
      );
      await store.releaseLock("svc", "rotation", "b", 1); // Not b's: no effect.
      assert.equal((await store.readLock("svc", "rotation"))?.holder, "a");
      await store.releaseLock("svc", "rotation", "a", 1);
      assert.equal(await store.readLock("svc", "rotation"), undefined);
      const b = await store.claimLock("svc", "rotation", {
        holder: "b",
        ttlMs: 60_000,
        note: "promote",
      });
      assert.equal(b.held, true);
      assert.equal(b.fence, 2);
      assert.equal(
        await store.writeDocument("svc", "doc", 1, { n: 2 }, fenceA),
        false,
        "a's fence is stale",
      );
      assert.equal(
        await store.writeDocument("svc", "doc", 1, { n: 2 }, {
          ...fenceA,
          holder: "b",
          fence: 2,
        }),
        true,
      );
      assert.deepEqual((await store.readDocument("svc", "doc"))?.value, {
        n: 2,
      });
      await assert.rejects(
        async () =>
          await store.claimLock("svc", "x", {
            holder: "a",
            ttlMs: 2 ** 31,
            note: "",
          }),
        RangeError,
      );
    },
  );

  await step(
    "locks: concurrent claims, exactly one holder",
    async (store) => {
      const states = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) =>
            store.claimLock("svc", "schedule/leader", {
              holder: `s${i}`,
              ttlMs: 60_000,
              note: "",
            }),
        ),
      );
      assert.equal(states.filter((s) => s.held).length, 1);
      const holder = states.find((s) => s.held)!.holder;
      assert.ok(states.every((s) => s.holder === holder && s.fence === 1));
    },
  );

  await step(
    "locks lapse as the store judges it: kept while renewed, taken over one duration after the last renewal",
    async (store) => {
      const ttlMs = 300;
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const claim = (holder: string) =>
        store.claimLock("svc", "schedule/leader", { holder, ttlMs, note: "" });
      assert.equal((await claim("a")).held, true);
      for (let i = 0; i < 4; i++) {
        assert.equal((await claim("b")).held, false, `renewed, lap ${i}`);
        await sleep(ttlMs / 3);
        assert.equal((await claim("a")).held, true);
      }
      // a stops renewing: b sees the same record for a whole duration.
      assert.equal((await claim("b")).held, false);
      await sleep(ttlMs + 150);
      const taken = await claim("b");
      assert.equal(taken.held, true);
      assert.equal(taken.fence, 2);
      assert.equal((await claim("a")).held, false, "a lost it");
      assert.equal(
        await store.writeDocument("svc", "state", 0, {}, {
          lock: "schedule/leader",
          holder: "a",
          fence: 1,
        }),
        false,
      );
    },
  );
}
