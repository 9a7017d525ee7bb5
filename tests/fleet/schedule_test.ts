/**
 * Scheduled rotation across processes: 6 `deno run` instances, two
 * schedulers (`rotate --kv --every`, accelerated), the leader SIGKILLed
 * mid-cycle and resumed by the other; three full cycles, 0 failed calls.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { serviceNamespace } from "../../src/fleet/distribution.ts";
import type { ScheduleState } from "../../src/fleet/schedule.ts";
import { holderName } from "../../src/fleet/operator.ts";
import type { LockState } from "../../src/fleet/store.ts";
import { parsePeriod } from "../../src/fleet/schedule.ts";
import type { SpawnedTask } from "../tasks/workspace.ts";
import { type FleetChild, startKvFleet } from "./harness.ts";

/** The scheduler id of a lock's holder (without its acquisition's token). */
const holderOf = (lock: LockState | undefined) =>
  lock === undefined ? undefined : holderName(lock.holder);

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(5)));
const BLUE = "blue-CANARY-c3d1";
const GREEN = "green-CANARY-e2a4";
const ADMIN = "admin-CANARY-9f70";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };
const N = 6;
const CYCLES = 3;

Deno.test("parsePeriod reads 30d, 12h, 15m, 90s, 500ms and refuses the rest", () => {
  assert.equal(parsePeriod("30d"), 30 * 86_400_000);
  assert.equal(parsePeriod("12h"), 12 * 3_600_000);
  assert.equal(parsePeriod("15m"), 900_000);
  assert.equal(parsePeriod("90s"), 90_000);
  assert.equal(parsePeriod("500ms"), 500);
  for (const bad of ["", "30", "d", "-1s", "0s", "1w"]) {
    assert.equal(parsePeriod(bad), undefined, bad);
  }
});

Deno.test({
  name:
    `${N} processes, two schedulers (rotate --kv --every 1s): ${CYCLES} cycles, the leader SIGKILLed mid-cycle and resumed by the other, every regeneration after the gate opened, 0 failed calls`,
  sanitizeResources: false,
  async fn() {
    await using fleet = await startKvFleet(SECRETS, KEY, {
      n: N,
      heartbeatMs: 900,
      tokenLifetimeSeconds: 3,
    });
    const { emulator, ws, kvPath } = fleet;
    const children: FleetChild[] = fleet.children;
    const kv = await Deno.openKv(kvPath);
    const store = createKvFleetStore(kv, { prefix: ["fleet-test"] });
    const service = await serviceNamespace(emulator.tokenUrl);
    const state = async () =>
      (await store.readDocument(service, "schedule/state"))?.value as
        | ScheduleState
        | undefined;
    const leader = async () =>
      holderOf(await store.readLock(service, "schedule/leader"));
    const schedulers = new Map<string, SpawnedTask>();
    const startScheduler = (id: string) =>
      schedulers.set(
        id,
        ws.spawn([
          "run",
          "-q",
          "-P=operator",
          "tasks/rotate.ts",
          "--kv",
          "fleet.db",
          "--prefix",
          "fleet-test",
          "--yes",
          "--every",
          "1s",
          "--tick",
          "150ms",
          "--lease",
          "1500ms",
          "--drain-bound",
          "5s",
          "--token-lifetime",
          "3",
          "--cycles",
          String(CYCLES),
          "--scheduler-id",
          id,
        ], { DUAL_SECRET_SEAL_KEY: KEY }),
      );
    let killed: string | undefined;
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 20, api: true });
      }
      startScheduler("s1");
      startScheduler("s2");
      const started = Date.now();
      // Kill whoever leads once the second cycle is under way.
      while (killed === undefined) {
        const now = await state();
        // Past its rotate step: the new leader must resume, not restart.
        if (
          now !== undefined && now.completed === 1 &&
          (now.step === "propagate" || now.step === "promote" ||
            now.step === "drain")
        ) {
          killed = await leader();
          if (killed !== undefined) {
            schedulers.get(killed)!.child.kill("SIGKILL");
          }
        }
        if (Date.now() - started > 60_000) {
          throw new Error(
            `no second cycle: ${JSON.stringify(await state())}\n${
              [...schedulers.values()].map((s) => s.stderr()).join("\n")
            }`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const survivor = [...schedulers.keys()].find((id) => id !== killed)!;
      const run = await schedulers.get(survivor)!.finished();
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const final = await state();
      assert.equal(final?.completed, CYCLES, JSON.stringify(final));
      assert.equal(final?.step, "done");

      const trail = await store.listAudit(service, 1_000);
      const took = trail.filter((e) =>
        e.action === "schedule.leader" && e.by === survivor &&
        /took the lead over from/.test(e.detail ?? "")
      );
      assert.ok(took.length >= 1, "the survivor took the lead over");
      // The cycle the leader died in was resumed, not rotated again: one
      // regeneration per cycle.
      const order = trail.filter((e) =>
        e.action === "schedule.start" || e.action === "rotate.regenerate"
      ).map((e) => e.action);
      assert.deepEqual(
        order,
        Array.from({ length: CYCLES }, () => [
          "schedule.start",
          "rotate.regenerate",
        ]).flat(),
      );
      // Every regeneration after the gate opened for its label.
      let gateOpen = new Set<string>();
      let regenerations = 0;
      for (const entry of trail) {
        if (entry.action === "rotate.gate" && entry.outcome === "open") {
          gateOpen.add(entry.label!);
        }
        if (
          entry.action === "rotate.regenerate" &&
          entry.outcome === "completed"
        ) {
          assert.ok(gateOpen.has(entry.label!), `gate before ${entry.label}`);
          gateOpen = new Set();
          regenerations++;
        }
      }
      assert.ok(regenerations >= CYCLES, `${regenerations} regenerations`);
      const promotions = trail.filter((e) =>
        e.action === "schedule.promote" && e.outcome === "completed"
      ).map((e) => e.label);
      assert.ok(promotions.length >= CYCLES);
      // Blue and green alternate.
      for (let i = 1; i < promotions.length; i++) {
        assert.notEqual(promotions[i], promotions[i - 1]);
      }
    } finally {
      for (const [id, scheduler] of schedulers) {
        if (id !== killed) {
          try {
            scheduler.child.kill("SIGTERM");
          } catch {
            // Already exited.
          }
        }
        await scheduler.finished();
      }
      kv.close();
      const summaries = await Promise.all(children.map((c) => c.stop()));
      const failed = summaries.reduce(
        (sum, s) => sum + Number(s?.failed ?? 1),
        0,
      );
      const errors = summaries.flatMap((s) => s?.errors as string[] ?? []);
      assert.equal(failed, 0, `failed calls: ${errors.join("; ")}`);
      assert.ok(summaries.every((s) => Number(s?.ok) > 0));
    }
  },
});
