/**
 * Scenario 6: what the library's authorized request costs next to a raw
 * `fetch` carrying a token fetched beforehand, on loopback, for each input
 * shape `fetch` takes.
 *
 * @module
 */
import { consume } from "../contenders/contender.ts";
import { runLoad } from "../load.ts";
import { median } from "../stats.ts";
import { type Scenario, startBench } from "./scenario.ts";

/** One input shape: the raw request and the same request through the library. */
interface Shape {
  readonly key: string;
  readonly raw: (url: string, token: string) => Promise<Response>;
  readonly library: (
    fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>,
    url: string,
  ) => Promise<Response>;
}

const BODY = JSON.stringify({ name: "bench", values: [1, 2, 3] });
const EXTRA = { accept: "application/json", "x-request-id": "bench" };

const SHAPES: readonly Shape[] = [
  {
    key: "url",
    raw: (url, token) =>
      fetch(url, { headers: { authorization: `Bearer ${token}` } }),
    library: (f, url) => f(url),
  },
  {
    key: "headers",
    raw: (url, token) =>
      fetch(url, { headers: { ...EXTRA, authorization: `Bearer ${token}` } }),
    library: (f, url) => f(url, { headers: EXTRA }),
  },
  {
    key: "post",
    raw: (url, token) =>
      fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${token}`,
        },
        body: BODY,
      }),
    library: (f, url) =>
      f(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: BODY,
      }),
  },
  {
    key: "request",
    raw: (url, token) =>
      fetch(
        new Request(url, { headers: { authorization: `Bearer ${token}` } }),
      ),
    library: (f, url) => f(new Request(url)),
  },
];

/** Scenario 6. */
export const fetchOverhead: Scenario = {
  title: "6. authorized fetch overhead",
  description:
    'Requests/s through the library\'s own request path (its authorized fetch, SDK API call, or get-token-then-fetch) versus raw fetch with a token fetched beforehand, on loopback; workers (16; 8 with --quick); raw and library runs alternate in pairs (15 pairs of 500 requests; 2 pairs of 200 with --quick), order swapped every pair; ratio = median over pairs of library ÷ raw. Bodies are read and parsed as JSON in both. One ratio per input shape, for libraries with an authorized fetch: `fetch(url)`; `fetch(url, { headers })`; `fetch(url, { method: "POST", headers, body })` (the emulator answers 405, alike on both sides); `fetch(new Request(url))`. Others only go through their own GET path (the URL column).',
  figures: [
    { key: "raw", label: "raw fetch req/s (URL)", digits: 0 },
    { key: "library", label: "library req/s (URL)", digits: 0 },
    { key: "ratio", label: "URL: library ÷ raw %", digits: 1 },
    { key: "ratioHeaders", label: "URL + headers %", digits: 1 },
    { key: "ratioPost", label: "POST with body %", digits: 1 },
    { key: "ratioRequest", label: "Request %", digits: 1 },
  ],
  async run(factory, size) {
    await using bench = startBench(factory);
    const { contender, tokensMeUrl } = bench;
    const token = await contender.getAccessToken();
    // 405 is the answer to the POST shape on both sides.
    const status = async (response: Promise<Response>) => {
      const code = await consume(await response);
      return code === 405 ? 200 : code;
    };
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
    const pairs = async (
      raw: () => Promise<number>,
      library: () => Promise<number>,
    ) => {
      await rate(raw);
      await rate(library);
      const raws: number[] = [];
      const libraries: number[] = [];
      const ratios: number[] = [];
      // Short alternating pairs, so a noisy neighbour hits both sides of a
      // pair alike; the figure is the median of the pairs' ratios.
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
    };
    const libraryFetch = contender.fetch?.bind(contender);
    const figures: Record<string, number> = {};
    for (const shape of SHAPES) {
      if (libraryFetch === undefined && shape.key !== "url") {
        figures[`ratio${shape.key[0].toUpperCase()}${shape.key.slice(1)}`] =
          NaN;
        continue;
      }
      const result = await pairs(
        () => status(shape.raw(tokensMeUrl, token)),
        libraryFetch === undefined
          ? () => contender.get(tokensMeUrl)
          : () => status(shape.library(libraryFetch, tokensMeUrl)),
      );
      if (shape.key === "url") Object.assign(figures, result);
      else {
        figures[`ratio${shape.key[0].toUpperCase()}${shape.key.slice(1)}`] =
          result.ratio;
      }
    }
    return figures;
  },
};
