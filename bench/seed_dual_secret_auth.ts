/**
 * A faithful TypeScript port of the seed tutorial's Python `DualSecretAuth`
 * (shared/seed/dual-secret-tutorial.txt), kept as the benchmark's baseline.
 * Its flaws are kept on purpose, because they are what the benchmark
 * measures:
 *
 * - the cache test is `expires_at > now - 60`, so a token is served for up to
 *   60 s AFTER it expired;
 * - the cache is checked outside the lock and checked again inside it, but the
 *   failover path takes the lock without the second check, and the active key
 *   is switched outside the lock when the standby has a cached token;
 * - any exception from the primary (a 503, a 429, a timeout) fails over;
 * - nothing reacts to a 401 from the API: the cached token stays in use.
 *
 * Two changes were unavoidable. Genesys Cloud gives an OAuth client one
 * secret (shared/genesys-cloud-facts.md), so `a` and `b` are each a client id
 * with its secret rather than two secrets of one client. And the Python SDK's
 * `post_oauth2_token` becomes a plain form POST to the real token endpoint
 * (`/oauth/token` on the login host), raising on any non-2xx like the SDK's
 * `ApiException`. `threading.Lock` becomes an {@linkcode AsyncMutex};
 * `print` becomes an injectable `log` so a benchmark can count failovers
 * without flooding its output.
 *
 * @module
 */
import { AsyncMutex } from "./async_mutex.ts";

/** The seed's two keys. */
export type SeedSecretKey = "a" | "b";

/** One of the seed's secrets, with the OAuth client it belongs to. */
export interface SeedCredential {
  /** The OAuth client id. */
  clientId: string;
  /** Its secret. */
  secret: string;
}

/** A cache entry, as the seed keeps it: expiry in seconds since the epoch. */
export interface SeedCacheEntry {
  /** The access token. */
  readonly token: string;
  /** `time.time() + expires_in` at the moment the response was read. */
  readonly expiresAt: number;
}

/** Options of {@linkcode SeedDualSecretAuth}. */
export interface SeedDualSecretAuthOptions {
  /** Secret `a` (active at start) and secret `b`. */
  readonly secrets: Record<SeedSecretKey, SeedCredential>;
  /** The token endpoint (the seed builds it from `environment`). */
  readonly tokenUrl: string;
  /** `time.time()` in milliseconds; default `Date.now`. */
  readonly now?: () => number;
  /** `print`; default `console.log`. */
  readonly log?: (message: string) => void;
  /** The HTTP client; default the global `fetch`. */
  readonly fetch?: typeof fetch;
}

/** The seed's `DualSecretAuth`, line for line. */
export class SeedDualSecretAuth {
  /** The seed's `self.secrets`; an operator may replace an entry's secret. */
  readonly secrets: Record<SeedSecretKey, SeedCredential>;
  /** The seed's `self.active_secret_key`. */
  activeSecretKey: SeedSecretKey = "a";
  /** The seed's `self.token_cache`. */
  readonly tokenCache = new Map<SeedSecretKey, SeedCacheEntry>();
  readonly #lock = new AsyncMutex();
  readonly #tokenUrl: string;
  readonly #now: () => number;
  readonly #log: (message: string) => void;
  readonly #fetch: typeof fetch;

  /**
   * The seed's `__init__`.
   *
   * @param options Secrets, token endpoint and the injected services.
   */
  constructor(options: SeedDualSecretAuthOptions) {
    this.secrets = {
      a: { ...options.secrets.a },
      b: { ...options.secrets.b },
    };
    this.#tokenUrl = options.tokenUrl;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? console.log;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** `time.time()`: seconds since the epoch, as a float. */
  #time(): number {
    return this.#now() / 1000;
  }

  /** The seed's `_get_token_from_cache`, with its `- 60` on the wrong side. */
  #getTokenFromCache(secretKey: SeedSecretKey): string | undefined {
    const cacheEntry = this.tokenCache.get(secretKey);
    if (cacheEntry !== undefined) {
      // "Subtract 60 seconds for safety buffer" -- from now, not from the
      // expiry, so expired tokens are served for another minute.
      if (cacheEntry.expiresAt > this.#time() - 60) return cacheEntry.token;
    }
    return undefined;
  }

  /**
   * The seed's `_acquire_token`: a token request with one secret, cached on
   * success, cache entry dropped on failure. The tutorial's rotation step
   * calls it directly to verify a secret.
   *
   * @param secretKey Which secret.
   * @returns The new access token.
   */
  async acquireToken(secretKey: SeedSecretKey): Promise<string> {
    const { clientId, secret } = this.secrets[secretKey];
    try {
      const response = await this.#fetch(this.#tokenUrl, {
        method: "POST",
        headers: {
          authorization: `Basic ${btoa(`${clientId}:${secret}`)}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: "grant_type=client_credentials",
      });
      const text = await response.text();
      if (!response.ok) {
        // The SDK's ApiException: status, reason and body.
        throw new Error(
          `(${response.status}) Reason: ${response.statusText} HTTP response body: ${text}`,
        );
      }
      const body = JSON.parse(text) as {
        access_token: string;
        expires_in: number;
      };
      this.tokenCache.set(secretKey, {
        token: body.access_token,
        expiresAt: this.#time() + body.expires_in,
      });
      return body.access_token;
    } catch (error) {
      this.tokenCache.delete(secretKey);
      throw error;
    }
  }

  /**
   * The seed's `get_access_token`: primary from cache, else acquire under the
   * lock (with a double check); on ANY error, the standby from cache
   * (switching outside the lock), else acquire the standby under the lock
   * without a double check.
   *
   * @returns An access token, possibly expired up to 60 s ago.
   */
  async getAccessToken(): Promise<string> {
    const primaryKey = this.activeSecretKey;
    const secondaryKey: SeedSecretKey = primaryKey === "a" ? "b" : "a";

    // 1. Check cache for primary
    let token = this.#getTokenFromCache(primaryKey);
    if (token) return token;

    // 2. Try to acquire new token from primary
    let primaryError: unknown;
    try {
      return await this.#lock.runExclusive(async () => {
        // Double-check inside lock to prevent duplicate calls
        const cached = this.#getTokenFromCache(primaryKey);
        if (cached) return cached;
        return await this.acquireToken(primaryKey);
      });
    } catch (error) {
      primaryError = error;
    }
    this.#log(
      `Primary secret '${primaryKey}' failed: ${
        messageOf(primaryError)
      }. Failing over to '${secondaryKey}'.`,
    );

    // 3. Check cache for secondary
    token = this.#getTokenFromCache(secondaryKey);
    if (token) {
      // Switched outside the lock, as in the seed.
      this.activeSecretKey = secondaryKey;
      return token;
    }

    // 4. Acquire new token from secondary (no double check)
    try {
      return await this.#lock.runExclusive(async () => {
        const fresh = await this.acquireToken(secondaryKey);
        this.activeSecretKey = secondaryKey;
        return fresh;
      });
    } catch (secondaryError) {
      throw new Error(
        `Both secrets failed. Primary: ${messageOf(primaryError)}, Secondary: ${
          messageOf(secondaryError)
        }`,
      );
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
