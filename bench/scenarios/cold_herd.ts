/**
 * Scenario 2: the cold herd. Many concurrent first calls on a fresh
 * instance; how many token requests reach the emulator, and how long until
 * every call has settled.
 *
 * @module
 */
import { type Scenario, startBench } from "./scenario.ts";

/** Scenario 2. */
export const coldHerd: Scenario = {
  title: "2. cold herd",
  description:
    "N concurrent first getAccessToken() calls on a fresh instance (N = 10,000; 1,000 with --quick): token requests the emulator received, calls that failed, and ms until all settled.",
  figures: [
    { key: "tokenRequests", label: "token requests", digits: 0 },
    { key: "failedCalls", label: "failed calls", digits: 0 },
    { key: "ms", label: "ms to all settled", digits: 0 },
  ],
  async run(factory, size) {
    await using bench = startBench(factory);
    const start = performance.now();
    const settled = await Promise.allSettled(
      Array.from({ length: size.herd }, () => bench.contender.getAccessToken()),
    );
    const ms = performance.now() - start;
    return {
      tokenRequests: bench.emulator.stats().tokenRequests,
      failedCalls: settled.filter((s) => s.status === "rejected").length,
      ms,
    };
  },
};
