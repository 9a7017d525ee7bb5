/**
 * Proving a credential with a real client-credentials token request,
 * allowing a new secret or client a bounded time to propagate, counted in
 * attempts: the one proof ({@linkcode proveSecret}) with those bounds.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import {
  type ProofTokenRequest,
  proveSecret,
  tokenRequestOptions,
} from "./proof.ts";
import type { Secret } from "../secret.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../send.ts";
import type { TokenAuthMethod, TokenGrant } from "../token_endpoint.ts";

/** The longest wait between two proof attempts. */
const MAX_PROOF_DELAY_MS = 5_000;

/** What {@linkcode proveCredential} proves, and how patiently. */
export interface ProveCredentialOptions extends ProofTokenRequest {
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The credential's label, for error messages. */
  readonly label: string;
  /** The OAuth client id. */
  readonly clientId: string;
  /** The secret to prove. */
  readonly secret: Secret;
  /**
   * How the secret is sent.
   *
   * @default the token endpoint's default (HTTP Basic)
   */
  readonly authMethod?: TokenAuthMethod;
  /**
   * Token requests made at most.
   *
   * @default 10
   */
  readonly attempts?: number;
  /**
   * First wait between them, in ms; it doubles up to 5 s.
   *
   * @default 1000
   */
  readonly delayMs?: number;
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
  /** Stops the proof, during a request or a wait. */
  readonly signal?: AbortSignal;
}

/**
 * Gets one token with the credential, retrying a rejection (the new secret
 * may still be propagating), a 429 and an unavailable endpoint a bounded
 * number of times. The token is only proof: nothing keeps it.
 * Internal: users reach it through `runStagedRotation`, `setUpTwinClient` and
 * `respondToCompromise` (`@rotating/dual-secret-auth/rotation`), whose examples
 * show it; `tests/rotation/prove_credential_test.ts` tests it.
 *
 * @param options The credential and the bounds.
 * @returns The grant.
 * @throws {import("../errors.ts").DualSecretAuthError} The last failure.
 */
export function proveCredential(
  options: ProveCredentialOptions,
): Promise<TokenGrant> {
  const attempts = Math.max(1, options.attempts ?? 10);
  const delayMs = Math.max(0, options.delayMs ?? 1000);
  return proveSecret({
    tokenUrl: options.tokenUrl,
    credential: options,
    secret: options.secret,
    attempts,
    delayMs,
    maxElapsedMs: attempts * Math.max(delayMs, MAX_PROOF_DELAY_MS),
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...tokenRequestOptions(options),
    fetch: options.fetch,
    clock: options.clock,
    signal: options.signal,
  });
}
