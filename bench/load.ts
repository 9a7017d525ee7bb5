/**
 * A closed-loop load generator: a fixed number of workers share a fixed
 * number of requests, each timed.
 *
 * @module
 */

/** What {@linkcode runLoad} measured. */
export interface LoadResult {
  /** Latency of every request, in ms. */
  readonly latenciesMs: number[];
  /** Requests that threw or did not end in HTTP 200. */
  readonly failed: number;
  /** Wall time of the whole run, in ms. */
  readonly elapsedMs: number;
}

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** Concurrent workers. */
  readonly workers: number;
  /** Requests in all. */
  readonly total: number;
  /** One request; resolves with its HTTP status. */
  readonly request: () => Promise<number>;
  /** Called after each request with the number finished so far. */
  readonly onProgress?: (finished: number) => void;
}

/**
 * Runs `total` requests on `workers` concurrent loops.
 *
 * @param options Workers, count, the request and a progress hook.
 * @returns Latencies, failures and wall time.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let started = 0;
  let finished = 0;
  let failed = 0;
  const begin = performance.now();
  const worker = async () => {
    while (started < options.total) {
      started++;
      const sent = performance.now();
      let ok = false;
      try {
        ok = (await options.request()) === 200;
      } catch {
        ok = false;
      }
      latenciesMs.push(performance.now() - sent);
      if (!ok) failed++;
      finished++;
      options.onProgress?.(finished);
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
  return { latenciesMs, failed, elapsedMs: performance.now() - begin };
}
