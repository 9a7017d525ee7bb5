/**
 * The scheduler and a manual `rotate --kv` share the store's rotation lock:
 * a manual run refuses (exit 3) while a cycle is mid-rotation, and the
 * scheduler waits for its next tick while a manual run holds it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { serviceNamespace } from "../../src/fleet/distribution.ts";
import {
  acquireStoreLock,
  type FleetTarget,
  StoreLockedError,
} from "../../src/fleet/operator.ts";
import { scheduleTick } from "../../src/fleet/schedule.ts";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import { createFleetWorkspace, startFleetEmulator } from "./harness.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const BLUE = "blue-CANARY-41aa";
const GREEN = "green-CANARY-82bb";
const ADMIN = "admin-CANARY-c3cc";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id" },
  { label: "green", clientId: "green-id" },
];

const timing = {
  initialActive: "blue",
  everyMs: 1_000,
  leaseMs: 60_000,
  tokenLifetimeMs: 1_000,
  drainBoundMs: 1_000,
  lockTtlMs: 60_000,
  // No instance runs in these tests: only the lock is under test.
  presence: { allowEmpty: true },
};

Deno.test("scheduler: a rotate or promote step waits while a manual run holds the rotation lock, and holds it while it acts", async () => {
  const now = { value: 10_000 };
  const scheduler: FleetTarget = {
    store: createMemoryFleetStore(),
    service: "svc",
    by: "scheduler-1",
    now: () => now.value,
  };
  const operator: FleetTarget = { ...scheduler, by: "ops@host" };
  const lines: string[] = [];
  const rotated: string[] = [];
  const tick = () =>
    scheduleTick({
      ...timing,
      target: scheduler,
      credentials: CREDENTIALS,
      onProgress: (line) => lines.push(line),
      rotate: async (standby) => {
        rotated.push(standby);
        // Mid-rotation, a manual run is refused, naming the scheduler.
        await assert.rejects(
          () => acquireStoreLock(operator, "rotate --kv fleet.db", 60_000),
          (error: unknown) =>
            error instanceof StoreLockedError &&
            error.holder.holder === "scheduler-1" &&
            /rotate --every \(scheduled rotate of "green"\)/.test(
              error.message,
            ),
        );
        return 1;
      },
    });

  {
    await using _manual = await acquireStoreLock(
      operator,
      "rotate --kv fleet.db",
      60_000,
    );
    const waiting = await tick();
    assert.equal(waiting.leader, true);
    assert.deepEqual(waiting.advanced, ["done"]); // The cycle started...
    assert.equal(waiting.state?.step, "rotate"); // ...but did not rotate.
    assert.deepEqual(rotated, []);
    assert.match(
      lines.join("\n"),
      /waiting for the rotation lock \(rotate --kv fleet.db by ops@host\); rotate retried at the next tick/,
    );
  }

  // The manual run finished: the next tick rotates and goes on.
  const acted = await tick();
  assert.deepEqual(rotated, ["green"]);
  assert.deepEqual(acted.advanced, ["rotate", "propagate", "promote", "drain"]);
  assert.equal(acted.state?.step, "done");
  // Released after the steps: a manual run may take it now, and while it
  // holds it the next cycle waits before rotating again.
  now.value += 2_000;
  {
    await using _after = await acquireStoreLock(operator, "promote", 60_000);
    const held = await tick();
    assert.deepEqual(held.advanced, ["done"]);
    assert.equal(held.state?.step, "rotate");
    assert.deepEqual(rotated, ["green"]);
  }

  // A cycle at its promote step (as a resumed one may be) waits too, and
  // does not change the shared active label.
  const active = await scheduler.store.readActive("svc");
  const state = await scheduler.store.readDocument("svc", "schedule/state");
  assert.ok(
    await scheduler.store.writeDocument(
      "svc",
      "schedule/state",
      state!.version,
      {
        completed: 1,
        step: "promote",
        standby: "blue",
        from: "green",
        generation: 1,
        stepStartedAt: now.value,
        cycleStartedAt: now.value,
      },
    ),
  );
  {
    await using _promoting = await acquireStoreLock(
      operator,
      "promote --kv fleet.db",
      60_000,
    );
    const waiting = await tick();
    assert.deepEqual(waiting.advanced, []);
    assert.equal(waiting.state?.step, "promote");
    assert.deepEqual(await scheduler.store.readActive("svc"), active);
  }
  const promoted = await tick();
  assert.deepEqual(promoted.advanced, ["promote", "drain"]);
  assert.equal((await scheduler.store.readActive("svc"))?.label, "blue");
});

Deno.test({
  name:
    "rotate --kv refuses with exit 3 while the scheduler is mid-rotation on the same store",
  sanitizeResources: false,
  async fn() {
    await using emulator = startFleetEmulator(SECRETS);
    await using ws = await createFleetWorkspace(emulator, SECRETS);
    const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
    try {
      const scheduler: FleetTarget = {
        store: createKvFleetStore(kv, { prefix: ["fleet-test"] }),
        service: await serviceNamespace(emulator.tokenUrl),
        by: "scheduler-1",
        now: () => Date.now(),
      };
      let manual: { code: number; output: string } | undefined;
      const result = await scheduleTick({
        ...timing,
        target: scheduler,
        credentials: CREDENTIALS,
        rotate: async () => {
          const run = await ws.task("rotate", [
            "--kv",
            "fleet.db",
            "--prefix",
            "fleet-test",
            "--yes",
            // No instance runs in this test: only the lock is under test.
            "--allow-empty",
          ], { DUAL_SECRET_SEAL_KEY: KEY });
          manual = { code: run.code, output: run.stdout + run.stderr };
          return 1;
        },
      });
      assert.ok(manual, "the rotate step ran");
      assert.equal(manual.code, 3, manual.output);
      assert.match(
        manual.output,
        /by scheduler-1 holds the fleet's rotation lock/,
      );
      // Nothing was regenerated by the refused run.
      assert.equal(emulator.getClientSecret("green-id"), GREEN);
      assert.ok(result.advanced.includes("rotate"));
    } finally {
      kv.close();
    }
  },
});

Deno.test("scheduler: a rotate step longer than the lock's lifetime keeps it renewed, and frees it after", async () => {
  const scheduler: FleetTarget = {
    store: createMemoryFleetStore(),
    service: "svc",
    by: "scheduler-1",
    now: () => Date.now(),
  };
  const operator: FleetTarget = { ...scheduler, by: "ops@host" };
  let refusedLate = false;
  const result = await scheduleTick({
    ...timing,
    lockTtlMs: 300,
    target: scheduler,
    credentials: CREDENTIALS,
    rotate: async () => {
      // Past two lifetimes of the lock: still held, because renewed.
      await new Promise((resolve) => setTimeout(resolve, 700));
      await assert.rejects(
        () => acquireStoreLock(operator, "rotate --kv fleet.db", 60_000),
        StoreLockedError,
      );
      refusedLate = true;
      return 1;
    },
  });
  assert.equal(refusedLate, true);
  assert.ok(result.advanced.includes("rotate"));
  await using _free = await acquireStoreLock(operator, "rotate", 60_000);
});

Deno.test("scheduler: a lease past what a timer can wait is refused before anything is written", async () => {
  const scheduler: FleetTarget = {
    store: createMemoryFleetStore(),
    service: "svc",
    by: "scheduler-1",
    now: () => Date.now(),
  };
  for (
    const over of [{ leaseMs: 30 * 86_400_000 }, { lockTtlMs: 2 ** 31 }]
  ) {
    await assert.rejects(
      () =>
        scheduleTick({
          ...timing,
          ...over,
          target: scheduler,
          credentials: CREDENTIALS,
          rotate: () => Promise.resolve(1),
        }),
      (error: Error & { code?: string }) =>
        error.code === "CONFIG_INVALID" &&
        /schedule\.(leaseMs|lockTtlMs)/.test(error.message),
    );
  }
  assert.equal(
    await scheduler.store.readDocument("svc", "schedule/leader"),
    undefined,
  );
});
