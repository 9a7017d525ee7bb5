/**
 * Scenario 6: what the library's authorized request costs next to a raw
 * `fetch` carrying a token fetched beforehand, on loopback.
 *
 * @module
 */
import { consume } from "../contenders/contender.ts";
import { runLoad } from "../load.ts";
import { median } from "../stats.ts";
import { type Scenario, startBench } from "./scenario.ts";

/** Scenario 6. */
export const fetchOverhead: Scenario = {
  title: "6. authorized fetch overhead",
  description:
    "Requests/s of GET /api/v2/tokens/me through the library's own request path (authorized fetch, SDK API call, or get-token-then-fetch) versus raw fetch with a token fetched beforehand, on loopback; workers (16; 8 with --quick); raw and library runs alternate in pairs (15 pairs of 500 requests; 2 pairs of 200 with --quick), order swapped every pair; ratio = median over pairs of library ÷ raw. Bodies are read and parsed as JSON in both.",
  figures: [
    { key: "raw", label: "raw fetch req/s", digits: 0 },
    { key: "library", label: "library req/s", digits: 0 },
    { key: "ratio", label: "library ÷ raw %", digits: 1 },
  ],
  async run(factory, size) {
    await using bench = startBench(factory);
    const { contender, tokensMeUrl } = bench;
    const token = await contender.getAccessToken();
    const headers = { authorization: `Bearer ${token}` };
    const raw = () => fetch(tokensMeUrl, { headers }).then(consume);
    const library = () => contender.get(tokensMeUrl);
    const rate = async (request: () => Promise<number>) => {
      const result = await runLoad({
        workers: size.fetchWorkers,
        total: size.fetchRequests,
        request,
      });
      if (result.failed > 0) {
        throw new Error(`${result.failed} requests failed`);
      }
      return size.fetchRequests / (result.elapsedMs / 1000);
    };
    // Warm-up of both paths.
    await rate(raw);
    await rate(library);
    const raws: number[] = [];
    const libraries: number[] = [];
    const ratios: number[] = [];
    // Short alternating pairs, so a noisy neighbour hits both sides of a pair
    // alike; the figure is the median of the pairs' ratios.
    for (let i = 0; i < size.fetchRepeats; i++) {
      const first = i % 2 === 0;
      const a = await rate(first ? raw : library);
      const b = await rate(first ? library : raw);
      raws.push(first ? a : b);
      libraries.push(first ? b : a);
      ratios.push(100 * (first ? b / a : a / b));
    }
    return {
      raw: median(raws),
      library: median(libraries),
      ratio: median(ratios),
    };
  },
};
