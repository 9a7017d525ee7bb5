import assert from "node:assert/strict";
import { FakeClock } from "../src/testing/fake_clock.ts";

Deno.test("FakeClock", async (t) => {
  await t.step("starts where told, and at 2026-01-01 by default", () => {
    assert.equal(new FakeClock(42).now(), 42);
    assert.equal(new FakeClock().now(), Date.UTC(2026, 0, 1));
  });

  await t.step("advance fires due timers in due-time order", async () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 300);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 100);
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 200);
    clock.setTimeout(() => fired.push(`later@${clock.now()}`), 1_000);
    await clock.advance(300);
    assert.deepEqual(fired, ["a@100", "b@200", "c@300"]);
    assert.equal(clock.now(), 300);
    assert.equal(clock.pendingTimers, 1);
  });

  await t.step(
    "timers due at the same time fire in creation order",
    async () => {
      const clock = new FakeClock(0);
      const fired: number[] = [];
      for (const n of [1, 2, 3]) clock.setTimeout(() => fired.push(n), 50);
      await clock.advance(50);
      assert.deepEqual(fired, [1, 2, 3]);
    },
  );

  await t.step("a timer not yet due does not fire", async () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.setTimeout(() => fired = true, 1_000);
    await clock.advance(999);
    assert.equal(fired, false);
    await clock.advance(1);
    assert.equal(fired, true);
  });

  await t.step(
    "timers set by a firing timer fire if due in range",
    async () => {
      const clock = new FakeClock(0);
      const fired: number[] = [];
      clock.setTimeout(() => {
        fired.push(clock.now());
        clock.setTimeout(() => fired.push(clock.now()), 100);
      }, 100);
      await clock.advance(250);
      assert.deepEqual(fired, [100, 200]);
    },
  );

  await t.step("awaiting code runs between timers", async () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    const sleep = (ms: number) =>
      new Promise<void>((r) => clock.setTimeout(r, ms));
    const work = (async () => {
      await sleep(10);
      seen.push(`woke@${clock.now()}`);
      await sleep(10);
      seen.push(`woke@${clock.now()}`);
    })();
    await clock.advance(100);
    await work;
    assert.deepEqual(seen, ["woke@10", "woke@20"]);
  });

  await t.step(
    "clearTimeout cancels; unknown handles are ignored",
    async () => {
      const clock = new FakeClock(0);
      let fired = false;
      const handle = clock.setTimeout(() => fired = true, 10);
      clock.clearTimeout(handle);
      clock.clearTimeout(12345);
      clock.clearTimeout(undefined);
      assert.equal(clock.pendingTimers, 0);
      await clock.advance(100);
      assert.equal(fired, false);
    },
  );

  await t.step("negative delays count as 0", async () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.setTimeout(() => fired = true, -5);
    await clock.advance(0);
    assert.equal(fired, true);
  });

  await t.step("advance rejects negative or NaN amounts", async () => {
    const clock = new FakeClock(0);
    await assert.rejects(clock.advance(-1), RangeError);
    await assert.rejects(clock.advance(NaN), RangeError);
  });

  await t.step("set() jumps without firing, either way", async () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.setTimeout(() => fired = true, 100);
    clock.set(10_000);
    assert.equal(clock.now(), 10_000);
    assert.equal(fired, false);
    assert.equal(clock.pendingTimers, 1);
    await clock.advance(0); // an overdue timer fires on the next move
    assert.equal(fired, true);
    clock.set(5);
    assert.equal(clock.now(), 5);
  });

  await t.step("runAll runs every timer and stops at the limit", async () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 100);
    clock.setTimeout(() => fired.push(clock.now()), 5_000);
    clock.setTimeout(() => fired.push(clock.now()), 50_000);
    await clock.runAll(10_000);
    assert.deepEqual(fired, [100, 5_000]);
    assert.equal(clock.now(), 5_000);
    assert.equal(clock.pendingTimers, 1);
    await clock.runAll();
    assert.deepEqual(fired, [100, 5_000, 50_000]);
    assert.equal(clock.pendingTimers, 0);
  });
});
