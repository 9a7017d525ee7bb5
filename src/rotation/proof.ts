/**
 * The one proof of the rotation flows: a secret proven with real
 * client-credentials grants, allowing it a bounded time to propagate,
 * through the shared retry loop. The staged rotation, promotion, twin
 * setup and incident mode all prove through {@linkcode proveSecret}.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import type { ResolvedCredential } from "../config.ts";
import {
  AbortedError,
  CredentialRejectedError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../errors.ts";
import { withRetry } from "../retry.ts";
import type { Secret } from "../secret.ts";
import {
  requestToken,
  type TokenAuthMethod,
  type TokenGrant,
} from "../token_endpoint.ts";
import type { StagedRotationOptions } from "./staged_rotation.ts";

const DEFAULT_PROPAGATION_TIMEOUT_MS = 60_000;
const DEFAULT_TEST_DELAY_MS = 1_000;
const MAX_TEST_DELAY_MS = 5_000;
const TOKEN_TIMEOUT_MS = 10_000;

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

/** Whose secret a proof sends: the label (for messages), the client, how it authenticates. */
export interface ProofCredential {
  /** The label, for error messages. */
  readonly label: string;
  /** The OAuth client id. */
  readonly clientId: string;
  /**
   * How the secret is sent.
   *
   * @default the token endpoint's default (HTTP Basic)
   */
  readonly authMethod?: TokenAuthMethod;
}

/**
 * What every token request of a proof sends besides the credential: the
 * scope Okta and Entra ID require, Auth0's `audience`. The same for every
 * credential of a service (as `createDualSecretAuth` takes them).
 */
export interface ProofTokenRequest {
  /**
   * Space-separated scopes to request.
   *
   * @default undefined (no `scope` parameter)
   */
  readonly scope?: string;
  /**
   * Further parameters of the token request, such as `{ audience }`.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
}

/**
 * The scope and further parameters of a token request, only those given:
 * what a flow passes on from its options to the proof and the engine.
 *
 * @param options Options that may carry `scope` and `tokenParams`.
 * @returns Those of them that are set.
 */
export function tokenRequestOptions(
  options: ProofTokenRequest,
): ProofTokenRequest {
  return {
    ...(options.scope === undefined ? {} : { scope: options.scope }),
    ...(options.tokenParams === undefined
      ? {}
      : { tokenParams: options.tokenParams }),
  };
}

/** What {@linkcode proveSecret} proves, and how patiently. */
export interface ProveSecretOptions extends ProofTokenRequest {
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** Whose secret it is. */
  readonly credential: ProofCredential;
  /** The secret to prove. */
  readonly secret: Secret;
  /**
   * Token requests made at most.
   *
   * @default unlimited within `maxElapsedMs`
   */
  readonly attempts?: number;
  /**
   * The first wait between requests, in ms; it doubles up to 5 s (or up
   * to itself when longer).
   *
   * @default 1_000
   */
  readonly delayMs?: number;
  /**
   * How long the whole proof may take, waits included.
   *
   * @default 60_000
   */
  readonly maxElapsedMs?: number;
  /**
   * Whether a rejection is retried: true while a new secret may still be
   * propagating; false for a secret that should work already (promotion).
   *
   * @default true
   */
  readonly retryRejected?: boolean;
  /**
   * The longest `Retry-After` of a 429 that is waited for.
   *
   * @default 5_000
   */
  readonly maxRetryAfterMs?: number;
  /**
   * Timeout of one token request, body included, in ms.
   *
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * The fetch to send with.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock of waits and timeouts.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Stops the proof, during a request or a wait; it then rejects with an
   * `AbortedError`.
   *
   * @default undefined
   */
  readonly signal?: AbortSignal;
  /**
   * Receives each failed attempt before its wait.
   *
   * @default undefined
   */
  readonly onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
}

/**
 * Proves a secret with real client-credentials grants: the first token
 * request that passes ends it. A rejection (the new secret may still be
 * propagating, unless `retryRejected` is false), a 429 and an unavailable
 * endpoint are retried, with waits that double from `delayMs` and no
 * jitter (an operator reads them), within `attempts` and `maxElapsedMs`.
 * The token is only proof: nothing keeps it.
 *
 * @param options The credential, the secret and the bounds.
 * @returns The grant of the first token request that passed.
 * @throws The last failure; an `AbortedError` when the signal aborted.
 */
export function proveSecret(options: ProveSecretOptions): Promise<TokenGrant> {
  const clock = options.clock ?? systemClock;
  const fetchFn = options.fetch ??
    ((input: RequestInfo | URL, init?: RequestInit) =>
      globalThis.fetch(input, init));
  const delayMs = Math.max(0, options.delayMs ?? DEFAULT_TEST_DELAY_MS);
  const retryRejected = options.retryRejected ?? true;
  return withRetry(
    () =>
      oneTokenRequest(options.tokenUrl, options.credential, options.secret, {
        clock,
        fetchFn,
        signal: options.signal,
        timeoutMs: options.requestTimeoutMs,
        scope: options.scope,
        tokenParams: options.tokenParams,
      }),
    {
      maxAttempts: Math.max(1, options.attempts ?? Number.MAX_SAFE_INTEGER),
      baseDelayMs: delayMs,
      maxDelayMs: Math.max(delayMs, MAX_TEST_DELAY_MS),
      maxElapsedMs: Math.max(
        0,
        options.maxElapsedMs ?? DEFAULT_PROPAGATION_TIMEOUT_MS,
      ),
      maxRetryAfterMs: options.maxRetryAfterMs ?? MAX_TEST_DELAY_MS,
      clock,
      signal: options.signal,
      // Full jitter would make "the first wait" meaningless to an operator.
      random: () => 1,
      isRetriable: (error) => {
        if (error instanceof RateLimitedError) {
          return error.retryAfterMs ?? true;
        }
        return (retryRejected && error instanceof CredentialRejectedError) ||
          error instanceof TokenEndpointUnavailableError;
      },
      onRetry: ({ attempt, delayMs, error }) =>
        options.onRetry?.(attempt, delayMs, error),
    },
  ).catch((error) => {
    if (options.signal?.aborted && !(error instanceof AbortedError)) {
      throw new AbortedError({ cause: options.signal.reason });
    }
    throw error;
  });
}

/**
 * The staged rotation's proof of its new secret: {@linkcode proveSecret}
 * with the rotation's bounds (`propagationTimeoutMs`, `testAttempts`,
 * `testDelayMs`, and at least the provider's `propagationMs`), sending the
 * service's scope and token parameters with the credential's auth method.
 *
 * @param options The rotation's options.
 * @param credential Whose secret it is.
 * @param secret The secret to prove.
 * @param io The clock, the fetch, the progress receiver, the provider's
 *   propagation time, the validated scope and token parameters.
 * @returns The grant of the first token request that passed.
 */
export function proveRotatedSecret(
  options: StagedRotationOptions,
  credential: ResolvedCredential,
  secret: Secret,
  io: {
    readonly clock: Clock;
    readonly fetchFn: typeof fetch;
    readonly onProgress: (detail: string) => void;
    readonly propagationMs?: number;
    readonly request?: ProofTokenRequest;
  },
): Promise<TokenGrant> {
  const timeout = proofTimeout(options, io.propagationMs);
  return proveSecret({
    tokenUrl: options.tokenUrl,
    ...io.request,
    credential,
    secret,
    attempts: options.testAttempts,
    delayMs: options.testDelayMs,
    maxElapsedMs: timeout,
    fetch: io.fetchFn,
    clock: io.clock,
    signal: options.signal,
    onRetry: (attempt, delayMs, error) =>
      io.onProgress(
        `attempt ${attempt} failed (${
          codeOf(error)
        }); the new secret may still be propagating; retrying in ${
          (delayMs / 1000).toFixed(1)
        } s (up to ${Math.round(timeout / 1000)} s in all)`,
      ),
  });
}

/**
 * How long the staged rotation proves a new secret: the propagation
 * timeout, or the provider's own propagation time when that is longer
 * (Entra ID 18 s, Auth0 30 s), so a slow provider is never given up on
 * before it said the secret would work.
 *
 * @param options The rotation's options.
 * @param propagationMs What the provider said of the new secret, if anything.
 * @returns Milliseconds.
 */
export function proofTimeout(
  options: StagedRotationOptions,
  propagationMs?: number,
): number {
  return Math.max(propagationTimeout(options), propagationMs ?? 0);
}

/**
 * A failure's stable code for a progress line.
 *
 * @param error What was thrown.
 * @returns Its `code`, or "error".
 */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Error && typeof code === "string" ? code : "error";
}

/**
 * One token request, with the rotation's timeout.
 *
 * @param tokenUrl The token endpoint.
 * @param credential Whose secret it is.
 * @param secret The secret.
 * @param io Clock, fetch, signal, the request's timeout (default 10 s), and
 *   the scope and token parameters to send.
 * @returns The grant.
 */
export function oneTokenRequest(
  tokenUrl: string,
  credential: ProofCredential,
  secret: Secret,
  io: {
    clock: Clock;
    fetchFn: typeof fetch;
    signal?: AbortSignal;
    timeoutMs?: number;
  } & ProofTokenRequest,
): Promise<TokenGrant> {
  return requestToken({
    tokenUrl,
    label: credential.label,
    clientId: credential.clientId,
    clientSecret: secret,
    authMethod: credential.authMethod,
    fetch: io.fetchFn,
    clock: io.clock,
    timeoutMs: io.timeoutMs ?? TOKEN_TIMEOUT_MS,
    signal: io.signal,
    ...(io.scope === undefined ? {} : { scope: io.scope }),
    ...(io.tokenParams === undefined ? {} : { params: io.tokenParams }),
  });
}
