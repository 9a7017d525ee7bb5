/**
 * Scenario 5: the expiry edge. Tokens live 300 s (Genesys' minimum) on a
 * fake clock shared by the emulator and the contender; time moves while
 * requests are in flight, as network latency does, and between rounds.
 *
 * @module
 */
import { FakeClock } from "../../testing.ts";
import { installFakeDate } from "../fake_date.ts";
import { type Scenario, startBench } from "./scenario.ts";

const LIFETIME_SECONDS = 300;
/** Fake time that passes while a round's requests are in flight. */
const IN_FLIGHT_MS = 500;
/** Fake time between rounds; not a divisor of the lifetime, so phases vary. */
const BETWEEN_ROUNDS_MS = 3_700;

/** Scenario 5. */
export const expiryEdge: Scenario = {
  title: "5. expiry edge",
  description:
    `Token lifetime ${LIFETIME_SECONDS} s on a FakeClock shared by the emulator and the contender (injected where the library takes a clock; the global Date follows the same clock for libraries that read Date). Each round sends N concurrent API calls (10; 5 with --quick), moves time ${IN_FLIGHT_MS} ms while they are in flight, then ${BETWEEN_ROUNDS_MS} ms more (400 rounds, about ${
      Math.round(
        400 * (IN_FLIGHT_MS + BETWEEN_ROUNDS_MS) / 1000 /
          LIFETIME_SECONDS,
      )
    } lifetimes; 80 with --quick). expired = API requests that presented an expired token (emulator's expiredTokenUses).`,
  figures: [
    { key: "expired", label: "requests with expired token", digits: 0 },
    { key: "failed", label: "failed requests", digits: 0 },
    { key: "tokenRequests", label: "token requests", digits: 0 },
  ],
  async run(factory, size) {
    const clock = new FakeClock();
    const restoreDate = installFakeDate(clock);
    try {
      await using bench = startBench(factory, {
        clock,
        tokenLifetimeSeconds: LIFETIME_SECONDS,
      });
      let failed = 0;
      for (let round = 0; round < size.expiryRounds; round++) {
        const calls = Array.from(
          { length: size.expiryWorkers },
          () => bench.contender.get(bench.tokensMeUrl),
        );
        await clock.advance(IN_FLIGHT_MS);
        for (const outcome of await Promise.allSettled(calls)) {
          if (outcome.status === "rejected" || outcome.value !== 200) failed++;
        }
        await clock.advance(BETWEEN_ROUNDS_MS);
      }
      const stats = bench.emulator.stats();
      return {
        expired: stats.expiredTokenUses,
        failed,
        tokenRequests: stats.tokenRequests,
      };
    } finally {
      restoreDate();
    }
  },
};
