/**
 * Lets one caller stop waiting for a shared promise without cancelling it for
 * the others.
 *
 * @module
 */
import { AbortedError } from "./errors.ts";

/**
 * Resolves or rejects like `promise`, or rejects with {@linkcode AbortedError}
 * as soon as `signal` aborts. The promise itself keeps running.
 *
 * @param promise The shared work.
 * @param signal The caller's signal.
 * @returns The promise's value.
 *
 * @example
 * ```ts
 * import { abortable } from "./abortable.ts";
 * const controller = new AbortController();
 * const waiting = abortable(new Promise(() => {}), controller.signal);
 * controller.abort();
 * const error = await waiting.catch((e: unknown) => e);
 * if (!(error instanceof Error) || !("code" in error) || error.code !== "ABORTED") {
 *   throw new Error("expected ABORTED");
 * }
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    // Nobody awaits the work for this caller now: its failure must not be
    // left unhandled.
    promise.catch(() => undefined);
    return Promise.reject(new AbortedError({ cause: signal.reason }));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError({ cause: signal.reason }));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}
