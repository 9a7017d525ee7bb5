/**
 * Shared fast-check run settings for the property tests: one seed per test
 * run, taken from `FC_SEED` when set so a failure can be replayed, and a
 * `FC_RUNS_FACTOR` to run more (or fewer) cases without editing the tests.
 *
 * fast-check prints the seed and the shrink path of any counterexample in the
 * failure message; re-run with `FC_SEED=<seed>` to get the same cases again.
 *
 * @module
 */
import type fc from "fast-check";

/** The seed of this test run: `FC_SEED` if set, else a random 32-bit one. */
export const FC_SEED: number = readSeed();

function readSeed(): number {
  const text = Deno.env.get("FC_SEED");
  if (text === undefined || text.trim() === "") {
    return (Math.random() * 2 ** 32) | 0;
  }
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) {
    throw new Error(`FC_SEED must be an integer, got "${text}"`);
  }
  return seed | 0;
}

function runsFactor(): number {
  const factor = Number(Deno.env.get("FC_RUNS_FACTOR") ?? "1");
  return Number.isFinite(factor) && factor > 0 ? factor : 1;
}

/**
 * Parameters for `fc.assert`: the run's seed and `numRuns` scaled by
 * `FC_RUNS_FACTOR`.
 *
 * @param numRuns How many cases to generate at factor 1.
 * @returns Parameters whose seed is shown again in any failure.
 */
export function propertyParameters<T>(numRuns: number): fc.Parameters<T> {
  return {
    numRuns: Math.max(1, Math.round(numRuns * runsFactor())),
    seed: FC_SEED,
  };
}

/**
 * Counts generated cases, so a test can prove it ran as many as it claims.
 */
export class CaseCounter {
  #count = 0;

  /** Records one generated case. */
  tick(): void {
    this.#count++;
  }

  /** How many cases were recorded. */
  get count(): number {
    return this.#count;
  }
}
