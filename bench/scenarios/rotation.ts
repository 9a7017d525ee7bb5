/**
 * Scenario 3: secret regeneration under load. Workers call
 * `GET /api/v2/tokens/me` through the contender while the secret of the
 * client it is using is regenerated without warning, three times; the new
 * secret reaches the contender a little later (as a secret manager's reload
 * would), so the next regeneration can be survived too.
 *
 * @module
 */
import { runLoad } from "../load.ts";
import { percentile } from "../stats.ts";
import { type Scenario, startBench } from "./scenario.ts";

/** Regenerations per run. */
const REGENERATIONS = 3;

/**
 * Scenario 3 with or without revocation of the old secret's tokens.
 *
 * @param revoke The emulator's `revokeTokensOnRegenerate`.
 * @returns The scenario.
 */
export function rotation(revoke: boolean): Scenario {
  return {
    title: revoke
      ? "3a. rotation under load (old tokens revoked)"
      : "3b. rotation under load (old tokens kept)",
    description:
      `Workers (20; 10 with --quick) make a fixed count of GET /api/v2/tokens/me (4,000; 400 with --quick) through the contender. At 1/4, 2/4 and 3/4 of the count, the secret of the client the contender is using is regenerated without warning (emulator revokeTokensOnRegenerate: ${revoke}); the new secret is handed to the contender 1/20 of the count later. failed = requests that threw or did not end in 200; latency per request in ms.`,
    figures: [
      { key: "failed", label: "failed requests", digits: 0 },
      { key: "p50", label: "p50 ms", digits: 2 },
      { key: "p99", label: "p99 ms", digits: 2 },
      { key: "tokenRequests", label: "token requests", digits: 0 },
    ],
    async run(factory, size) {
      await using bench = startBench(factory, {
        emulator: { revokeTokensOnRegenerate: revoke },
      });
      const { contender, emulator } = bench;
      const total = size.rotationRequests;
      const lag = Math.max(1, Math.floor(total / 20));
      const regenerateAt = Array.from(
        { length: REGENERATIONS },
        (_, i) => Math.floor((total * (i + 1)) / (REGENERATIONS + 1)),
      );
      const deliveries = new Map<number, () => void>();
      const result = await runLoad({
        workers: size.rotationWorkers,
        total,
        request: () => contender.get(bench.tokensMeUrl),
        onProgress(finished) {
          if (regenerateAt.includes(finished)) {
            const clientId = contender.activeClientId();
            const secret = emulator.regenerateSecret(clientId);
            deliveries.set(
              finished + lag,
              () => contender.updateSecret(clientId, secret),
            );
          }
          deliveries.get(finished)?.();
        },
      });
      return {
        failed: result.failed,
        p50: percentile(result.latenciesMs, 50),
        p99: percentile(result.latenciesMs, 99),
        tokenRequests: emulator.stats().tokenRequests,
      };
    },
  };
}
