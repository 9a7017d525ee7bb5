/**
 * `deno bench` view of scenario 1: ns per cached `getAccessToken()` for each
 * contender that loads, beside the bare baselines (a `Map.get` and a clock
 * read, awaited and not). The runner's table uses its own loop; this file is
 * for `deno bench` and profiling (`deno bench --cpu-prof`... or
 * `deno run --cpu-prof`).
 *
 * Run: `deno bench -A bench/hot_path_bench.ts`
 *
 * @module
 */
import { CONTENDERS } from "./contenders/all.ts";
import { baselineAsync, baselineSync } from "./scenarios/hot_path.ts";
import { type Bench, startBench } from "./scenarios/scenario.ts";

const benches: { name: string; bench: Bench }[] = [];
for (const factory of CONTENDERS) {
  try {
    await factory.load();
  } catch (error) {
    console.error(`${factory.name} did not load:`, error);
    continue;
  }
  const bench = startBench(factory);
  await bench.contender.getAccessToken();
  benches.push({ name: factory.name, bench });
}

Deno.bench({
  name: "baseline: await (Map.get + Date.now)",
  group: "hot path",
  baseline: true,
  fn: async () => {
    await baselineAsync();
  },
});
Deno.bench({
  name: "baseline: Map.get + Date.now (sync)",
  group: "hot path",
  fn: () => {
    baselineSync();
  },
});
for (const { name, bench } of benches) {
  Deno.bench({
    name,
    group: "hot path",
    fn: async () => {
      await bench.contender.getAccessToken();
    },
  });
}

// The emulators stay up until the last benchmark has run; closing them from
// an unload handler lets the process end cleanly.
globalThis.addEventListener("unload", () => {
  for (const { bench } of benches) void bench[Symbol.asyncDispose]();
});
