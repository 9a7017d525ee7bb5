/**
 * Scenario 2: the cold herd. Many concurrent first calls on a fresh
 * instance; how many token requests reach the emulator, how long until every
 * call has settled, and how much heap the waiting herd took.
 *
 * @module
 */
import { heapUsed } from "../heap.ts";
import { type Scenario, startBench } from "./scenario.ts";

/** Scenario 2. */
export const coldHerd: Scenario = {
  title: "2. cold herd",
  description:
    "N concurrent first getAccessToken() calls on a fresh instance (N = 100,000; 10,000 with --quick; a library that sends one token request per caller is run with at most 10,000): callers, token requests the emulator received, calls that failed, ms until all settled, and the peak heap above the idle instance (sampled once every call is waiting and again once all settled; MB).",
  figures: [
    { key: "callers", label: "callers", digits: 0 },
    { key: "tokenRequests", label: "token requests", digits: 0 },
    { key: "failedCalls", label: "failed calls", digits: 0 },
    { key: "ms", label: "ms to all settled", digits: 0 },
    { key: "peakHeapMb", label: "peak heap MB", digits: 1 },
  ],
  async run(factory, size) {
    await using bench = startBench(factory);
    const callers = Math.min(size.herd, factory.herdLimit ?? Infinity);
    const before = heapUsed();
    const start = performance.now();
    const calls = Array.from(
      { length: callers },
      () => bench.contender.getAccessToken(),
    );
    const waiting = heapUsed(false);
    const settled = await Promise.allSettled(calls);
    const ms = performance.now() - start;
    const after = heapUsed(false);
    return {
      callers,
      tokenRequests: bench.emulator.stats().tokenRequests,
      failedCalls: settled.filter((s) => s.status === "rejected").length,
      ms,
      peakHeapMb: (Math.max(waiting, after) - before) / 1e6,
    };
  },
};
