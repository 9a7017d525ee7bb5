/**
 * Scenario 1: the cached-token hot path. ns per `getAccessToken()` once a
 * token is cached, measured in batches interleaved with a bare baseline (a
 * `Map.get` and a clock read) so both see the same machine state.
 *
 * @module
 */
import { median, percentile } from "../stats.ts";
import { type Scenario, startBench } from "./scenario.ts";

interface Grant {
  readonly accessToken: string;
  readonly refreshAt: number;
}

const grants = new Map<string, Grant>([["blue", {
  accessToken: "t".repeat(40),
  refreshAt: Number.MAX_SAFE_INTEGER,
}]]);

/** The floor: a cache lookup and a clock read, nothing else. */
export function baselineSync(): string | undefined {
  const grant = grants.get("blue");
  return grant !== undefined && Date.now() < grant.refreshAt
    ? grant.accessToken
    : undefined;
}

/** The same floor behind an async API, as every contender's is. */
// deno-lint-ignore require-await
export async function baselineAsync(): Promise<string | undefined> {
  return baselineSync();
}

let sink = 0;

async function timeAsync(
  call: () => Promise<string | undefined>,
  n: number,
): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += (await call())?.length ?? 0;
  return ((performance.now() - start) * 1e6) / n;
}

function timeSync(call: () => string | undefined, n: number): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += call()?.length ?? 0;
  return ((performance.now() - start) * 1e6) / n;
}

/** Scenario 1. */
export const hotPath: Scenario = {
  title: "1. cached token hot path",
  description:
    "ns per getAccessToken() with a cached token (batches of calls; median and p99 over batches), beside the baseline measured in the same run: `await` of an async function doing Map.get + Date.now (the floor of any async token API) and the same without async. ratio = median ÷ awaited-baseline median.",
  figures: [
    { key: "median", label: "median ns", digits: 0 },
    { key: "p99", label: "p99 ns", digits: 0 },
    { key: "baseline", label: "baseline ns (await)", digits: 0 },
    { key: "ratio", label: "ratio vs await baseline", digits: 2 },
    { key: "baselineSync", label: "baseline ns (sync)", digits: 0 },
    { key: "ratioSync", label: "ratio vs sync baseline", digits: 2 },
  ],
  async run(factory, size) {
    await using bench = startBench(factory);
    const { contender } = bench;
    await contender.getAccessToken();
    const call = () => contender.getAccessToken();
    // Warm-up, so every function is optimised before measuring.
    for (let i = 0; i < 5; i++) {
      await timeAsync(call, size.hotBatchSize * 4);
      await timeAsync(baselineAsync, size.hotBatchSize * 4);
      timeSync(baselineSync, size.hotBatchSize * 4);
    }
    const ours: number[] = [];
    const awaited: number[] = [];
    const sync: number[] = [];
    for (let batch = 0; batch < size.hotBatches; batch++) {
      awaited.push(await timeAsync(baselineAsync, size.hotBatchSize));
      ours.push(await timeAsync(call, size.hotBatchSize));
      sync.push(timeSync(baselineSync, size.hotBatchSize));
    }
    if (sink < 0) console.log(sink);
    const baseline = median(awaited);
    const baselineSyncNs = median(sync);
    return {
      median: median(ours),
      p99: percentile(ours, 99),
      baseline,
      ratio: median(ours) / baseline,
      baselineSync: baselineSyncNs,
      ratioSync: median(ours) / baselineSyncNs,
    };
  },
};
