/**
 * What the provider adapter tests share: a fetch that answers the first
 * admin calls with injected failures before passing the rest to the
 * emulator, and the proof of a new secret (real token requests, retried
 * while it propagates).
 *
 * @module
 */
import type { Clock } from "../../src/clock.ts";
import { CredentialRejectedError } from "../../src/errors.ts";
import { withRetry } from "../../src/retry.ts";
import type { Secret } from "../../src/secret.ts";
import {
  requestToken,
  type TokenAuthMethod,
  type TokenGrant,
} from "../../src/token_endpoint.ts";

/** A fetch that answers matching requests with `faults`, in order, then passes through. */
export interface FaultyFetch {
  readonly fetch: typeof fetch;
  /** Requests seen, as `METHOD path`, faulted ones included. */
  readonly seen: string[];
}

/**
 * Wraps the global fetch: the first `faults.length` requests that `match`
 * get the next fault's response instead of reaching the server.
 *
 * @param faults Makes each injected response.
 * @param match Which requests may be faulted.
 * @returns The fetch and what it saw.
 */
export function faultyFetch(
  faults: readonly (() => Response)[],
  match: (method: string, url: URL) => boolean = () => true,
): FaultyFetch {
  const queue = [...faults];
  const seen: string[] = [];
  return {
    seen,
    fetch: (input, init) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      seen.push(`${request.method} ${url.pathname}`);
      if (queue.length > 0 && match(request.method, url)) {
        const next = queue.shift()!;
        return request.body?.cancel().then(() => next()) ??
          Promise.resolve(next());
      }
      return globalThis.fetch(request);
    },
  };
}

/** What a proof sends. */
export interface ProofRequest {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly secret: Secret;
  readonly scope?: string;
  readonly params?: Record<string, string>;
  readonly authMethod?: TokenAuthMethod;
  readonly clock: Clock;
  /** How long the secret may take to work. */
  readonly propagationMs?: number;
}

/** A proof: the grant, and how many token requests it took. */
export interface Proof {
  readonly grant: TokenGrant;
  readonly attempts: number;
}

/**
 * Proves a secret with real client-credentials requests, retrying a
 * rejection (the secret may still be propagating) every 50 ms for up to
 * `propagationMs`.
 *
 * @param request What to send.
 * @returns The grant and the number of attempts.
 */
export async function prove(request: ProofRequest): Promise<Proof> {
  let attempts = 0;
  const grant = await withRetry(
    () => {
      attempts++;
      return requestToken({
        tokenUrl: request.tokenUrl,
        label: "new",
        clientId: request.clientId,
        clientSecret: request.secret,
        scope: request.scope,
        params: request.params,
        authMethod: request.authMethod,
        fetch: globalThis.fetch,
        clock: request.clock,
      });
    },
    {
      maxAttempts: Number.MAX_SAFE_INTEGER,
      baseDelayMs: 50,
      maxDelayMs: 50,
      maxElapsedMs: request.propagationMs ?? 0,
      random: () => 1,
      clock: request.clock,
      isRetriable: (error) => error instanceof CredentialRejectedError,
    },
  );
  return { grant, attempts };
}

/**
 * Whether a token request with the secret is rejected now.
 *
 * @param request What to send.
 * @returns True when the endpoint rejects the credential.
 */
export async function rejected(request: ProofRequest): Promise<boolean> {
  try {
    await prove({ ...request, propagationMs: 0 });
    return false;
  } catch (error) {
    if (error instanceof CredentialRejectedError) return true;
    throw error;
  }
}
