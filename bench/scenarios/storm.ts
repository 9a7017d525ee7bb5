/**
 * Scenario 4: a transient storm at the token endpoint. A cold contender's
 * first token requests meet 503s, then 429s with `Retry-After: 1`, while
 * workers keep calling the API. Neither is a reason to fail over: the
 * credential is fine.
 *
 * @module
 */
import { runLoad } from "../load.ts";
import { GREEN, type Scenario, startBench } from "./scenario.ts";

/** So many that the fault lasts until the phase ends. */
const UNTIL_CLEARED = 1_000_000;

/** Scenario 4. */
export const storm: Scenario = {
  title: "4. transient storm",
  description:
    "A cold contender; the token endpoint answers 503 for 1 s, then 429 with Retry-After: 1 for 1 s (200 ms each with --quick), then recovers. Workers (20; 10) make a fixed count of API calls (1,000; 100) from the start. failed = API calls that threw or did not end in 200; wrong failovers = token requests made with the standby credential (nothing was wrong with the active one; n/a for one-credential libraries); token requests = all requests the token endpoint received (amplification).",
  figures: [
    { key: "failed", label: "failed requests", digits: 0 },
    {
      key: "wrongFailovers",
      label: "wrong failovers",
      digits: 0,
      needsTwoCredentials: true,
    },
    { key: "tokenRequests", label: "token requests", digits: 0 },
  ],
  async run(factory, size) {
    await using bench = startBench(factory);
    const { contender, emulator } = bench;
    emulator.injectTokenFaults({ kind: "status", status: 503 }, UNTIL_CLEARED);
    const timers: ReturnType<typeof setTimeout>[] = [];
    const phase = (ms: number, next: () => void) =>
      new Promise<void>((resolve) => {
        timers.push(setTimeout(() => {
          next();
          resolve();
        }, ms));
      });
    const schedule = phase(size.stormPhaseMs, () => {
      emulator.clearFaults();
      emulator.injectTokenFaults(
        { kind: "status", status: 429, retryAfter: "1" },
        UNTIL_CLEARED,
      );
    }).then(() => phase(size.stormPhaseMs, () => emulator.clearFaults()));
    const result = await runLoad({
      workers: size.stormWorkers,
      total: size.stormRequests,
      request: () => contender.get(bench.tokensMeUrl),
    });
    // A contender that gave up early still waits for the storm to end, so
    // every contender is measured over the same storm.
    await schedule;
    timers.forEach(clearTimeout);
    const stats = emulator.stats();
    return {
      failed: result.failed,
      wrongFailovers: stats.tokenRequestsByClient[GREEN.clientId] ?? 0,
      tokenRequests: stats.tokenRequests,
    };
  },
};
