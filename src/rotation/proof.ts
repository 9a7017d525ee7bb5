/**
 * Proving a secret with real client-credentials grants, allowing it a
 * bounded time to propagate, through the shared retry loop.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { ResolvedCredential } from "../config.ts";
import {
  AbortedError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../errors.ts";
import { withRetry } from "../retry.ts";
import type { Secret } from "../secret.ts";
import { requestToken, type TokenGrant } from "../token_endpoint.ts";
import type { StagedRotationOptions } from "./staged_rotation.ts";

const DEFAULT_PROPAGATION_TIMEOUT_MS = 60_000;
const DEFAULT_TEST_DELAY_MS = 1_000;
const MAX_TEST_DELAY_MS = 5_000;
const TOKEN_TIMEOUT_MS = 10_000;

/** What a proof needs. */
export interface ProofInput {
  /** The rotation's options (token URL, bounds, signal). */
  readonly options: StagedRotationOptions;
  /** The clock. */
  readonly clock: Clock;
  /** The fetch for token requests. */
  readonly fetchFn: typeof fetch;
  /** Receives a line before each wait. */
  readonly onProgress: (detail: string) => void;
}

/**
 * The propagation bound of a rotation.
 *
 * @param options The rotation's options.
 * @returns Milliseconds.
 */
export function propagationTimeout(options: StagedRotationOptions): number {
  return Math.max(
    0,
    options.propagationTimeoutMs ?? DEFAULT_PROPAGATION_TIMEOUT_MS,
  );
}
/**
 * Proves a secret, allowing it a bounded time to propagate: the shared
 * retry loop, with a progress line before every wait.
 *
 * @param run The options, clock, fetch and progress receiver.
 * @param credential Whose secret it is.
 * @param secret The secret to prove.
 * @returns The grant of the first token request that passed.
 */
export function proveSecret(
  run: ProofInput,
  credential: ResolvedCredential,
  secret: Secret,
): Promise<TokenGrant> {
  const { options, clock, fetchFn } = run;
  const timeout = propagationTimeout(options);
  return withRetry(
    () =>
      oneTokenRequest(options.tokenUrl, credential, secret, {
        clock,
        fetchFn,
        signal: options.signal,
      }),
    {
      maxAttempts: options.testAttempts ?? Number.MAX_SAFE_INTEGER,
      baseDelayMs: options.testDelayMs ?? DEFAULT_TEST_DELAY_MS,
      maxDelayMs: Math.max(
        options.testDelayMs ?? DEFAULT_TEST_DELAY_MS,
        MAX_TEST_DELAY_MS,
      ),
      maxElapsedMs: timeout,
      maxRetryAfterMs: MAX_TEST_DELAY_MS,
      clock,
      signal: options.signal,
      // Full jitter would make "the first wait" meaningless to an operator.
      random: () => 1,
      isRetriable: (error) => {
        if (error instanceof RateLimitedError) {
          return error.retryAfterMs ?? true;
        }
        return error instanceof CredentialRejectedError ||
          error instanceof TokenEndpointUnavailableError;
      },
      onRetry: ({ attempt, delayMs, error }) =>
        run.onProgress(
          `attempt ${attempt} failed (${
            error instanceof DualSecretAuthError ? error.code : "error"
          }); the new secret may still be propagating; retrying in ${
            (delayMs / 1000).toFixed(1)
          } s (up to ${Math.round(timeout / 1000)} s in all)`,
        ),
    },
  ).catch((error) => {
    if (options.signal?.aborted && !(error instanceof AbortedError)) {
      throw new AbortedError({ cause: options.signal.reason });
    }
    throw error;
  });
}

/**
 * One token request, with the rotation's timeout.
 *
 * @param tokenUrl The token endpoint.
 * @param credential Whose secret it is.
 * @param secret The secret.
 * @param io Clock, fetch and signal.
 * @returns The grant.
 */
export function oneTokenRequest(
  tokenUrl: string,
  credential: ResolvedCredential,
  secret: Secret,
  io: { clock: Clock; fetchFn: typeof fetch; signal?: AbortSignal },
): Promise<TokenGrant> {
  return requestToken({
    tokenUrl,
    label: credential.label,
    clientId: credential.clientId,
    clientSecret: secret,
    authMethod: credential.authMethod,
    fetch: io.fetchFn,
    clock: io.clock,
    timeoutMs: TOKEN_TIMEOUT_MS,
    signal: io.signal,
  });
}
