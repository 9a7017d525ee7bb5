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
 * @example One caller gives up; the shared request goes on for the others
 * ```ts
 * import { AbortedError, createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "blue-id", secret: "blue-secret" }],
 * });
 * emulator.injectTokenFaults({ kind: "delay", ms: 200 });
 * await using auth = createDualSecretAuth({
 *   credentials: [{ label: "blue", clientId: "blue-id", clientSecret: "blue-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 * });
 * const patient = auth.getAccessToken();
 * const impatient = auth.getAccessToken({ signal: AbortSignal.timeout(10) });
 * if (!(await impatient.catch((e: unknown) => e) instanceof AbortedError)) {
 *   throw new Error("expected AbortedError");
 * }
 * await patient;
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
