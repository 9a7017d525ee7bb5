/**
 * A small client of the Genesys Cloud OAuth client administration API: read a
 * client, and regenerate its one secret. Rate limits (429 with `Retry-After`)
 * and transient failures are retried a bounded number of times on the injected
 * clock; everything else becomes a typed error from `./errors.ts`.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { resolveAllowedUrl } from "../allowed_url.ts";
import { AbortedError, ConfigError } from "../errors.ts";
import {
  DEFAULT_RETRY,
  parseRetryAfter,
  type RetryOptions,
  type RetryPolicy,
  type RetryVerdict,
  withRetry,
} from "../retry.ts";
import { createRedactor } from "../redact.ts";
import { Secret } from "../secret.ts";
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  send,
  SendFailure,
  type SentResponse,
} from "../send.ts";
import {
  AdminForbiddenError,
  AdminRateLimitedError,
  AdminUnauthorizedError,
  GenesysApiError,
  type GenesysApiErrorDetails,
  OAuthClientNotFoundError,
  PlatformApiRequestError,
  PlatformApiUnavailableError,
} from "./errors.ts";

/** An OAuth client as `GET /api/v2/oauth/clients/{id}` describes it. */
export interface OAuthClientInfo {
  /** The client id. */
  readonly id: string;
  /** Its display name. */
  readonly name: string;
  /** `active` or `inactive`; inactive clients cannot get tokens. */
  readonly state: string;
  /** Lifetime of its tokens in seconds, when the API said. */
  readonly accessTokenValiditySeconds?: number;
}

/** A client whose secret was just regenerated: the only time it is shown. */
export interface RegeneratedOAuthClient extends OAuthClientInfo {
  /** The new secret; the old one no longer works. */
  readonly secret: Secret;
}

/** Options of each admin call. */
export interface AdminCallOptions {
  /** Stops the call (and its retries). */
  readonly signal?: AbortSignal;
}

/** Options of {@linkcode createGenesysAdminClient}. */
export interface GenesysAdminClientOptions {
  /** The Platform API base URL, such as `https://api.mypurecloud.com`. */
  readonly apiUrl: string;
  /**
   * Gives an access token of a client allowed to manage OAuth clients
   * (`oauth:client:edit`), typically `auth.getAccessToken` of the active
   * credential or of separate admin credentials.
   */
  readonly getAccessToken: (
    options?: { signal?: AbortSignal },
  ) => Promise<string>;
  /**
   * Drops a cached token the API rejected (such as `auth.invalidate`). When
   * given, a 401 is replayed once with a fresh token.
   */
  readonly invalidateToken?: (token: string) => void;
  /** The fetch to use; default the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** The clock for retry waits and timeouts; default the system clock. */
  readonly clock?: Clock;
  /** Bounds on retrying 429, 5xx and network failures. */
  readonly retry?: RetryOptions;
  /** Timeout of one request, body included, in ms. Default 10,000. */
  readonly requestTimeoutMs?: number;
  /** Numbers in [0, 1) for backoff jitter; default `Math.random`. */
  readonly random?: () => number;
}

/** The admin API; see {@linkcode createGenesysAdminClient}. */
export interface GenesysAdminClient {
  /**
   * Reads an OAuth client (`GET /api/v2/oauth/clients/{id}`, permission
   * `oauth:client:view`). The secret is never returned here.
   *
   * @throws {import("./errors.ts").GenesysApiError} Typed by cause.
   */
  getClient(
    clientId: string,
    options?: AdminCallOptions,
  ): Promise<OAuthClientInfo>;
  /**
   * Regenerates an OAuth client's secret (`POST
   * /api/v2/oauth/clients/{id}/secret`, permission `oauth:client:edit`). The
   * old secret stops working at once; never call this on the credential that
   * serves traffic.
   *
   * A 5xx or a lost response is retried: the server may then regenerate twice,
   * which is harmless because only the last returned secret is used and nobody
   * holds the one in between.
   *
   * @throws {import("./errors.ts").GenesysApiError} Typed by cause.
   */
  regenerateSecret(
    clientId: string,
    options?: AdminCallOptions,
  ): Promise<RegeneratedOAuthClient>;
}

/** Default longest `Retry-After` honoured: Genesys windows are one minute. */
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

interface Call {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly operation: string;
  readonly permission: string;
  readonly clientId: string;
  readonly signal?: AbortSignal;
}

/**
 * Creates an admin client of the Genesys Cloud OAuth client API.
 *
 * @param options The API URL, where tokens come from, and I/O.
 * @returns The client.
 * @throws {ConfigError} When `apiUrl` is not an https URL (or http on loopback).
 *
 * @example Regenerate a standby client's secret on the emulator
 * ```ts
 * import { createGenesysAdminClient } from "./admin_client.ts";
 * import { startGenesysEmulator } from "../testing/emulator.ts";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "green", secret: "old" }],
 * });
 * const admin = createGenesysAdminClient({
 *   apiUrl: emulator.apiUrl,
 *   // Normally auth.getAccessToken of a client with oauth:client:edit.
 *   getAccessToken: () => Promise.resolve(emulator.issueToken("green")),
 * });
 * const denied = await admin.regenerateSecret("green").catch((e) => e);
 * if (denied.code !== "GENESYS_ADMIN_FORBIDDEN") throw new Error(denied.message);
 * ```
 */
export function createGenesysAdminClient(
  options: GenesysAdminClientOptions,
): GenesysAdminClient {
  const apiUrl = resolveApiUrl(options.apiUrl);
  if (typeof options.getAccessToken !== "function") {
    throw new ConfigError("getAccessToken", "must be a function");
  }
  const fetchFn = options.fetch ??
    ((input: RequestInfo | URL, init?: RequestInit) =>
      globalThis.fetch(input, init));
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const policy: RetryPolicy = {
    ...DEFAULT_RETRY,
    maxRetryAfterMs: DEFAULT_MAX_RETRY_AFTER_MS,
    maxElapsedMs: 120_000,
    ...options.retry,
  };

  async function call(spec: Call): Promise<Record<string, unknown>> {
    try {
      return await withRetry(() => attemptWithReplay(spec), {
        ...policy,
        clock,
        random,
        signal: spec.signal,
        isRetriable: (error) => retryVerdict(error, policy),
      });
    } catch (error) {
      if (error instanceof GenesysApiError || error instanceof AbortedError) {
        throw error;
      }
      if (spec.signal?.aborted) throw new AbortedError({ cause: error });
      throw error;
    }
  }

  /** One attempt; a 401 that says the token went stale is replayed once with a fresh token. */
  async function attemptWithReplay(
    spec: Call,
  ): Promise<Record<string, unknown>> {
    let outcome = await attemptOnce(spec);
    if (outcome.kind === "stale-token") {
      options.invalidateToken?.(outcome.token);
      outcome = await attemptOnce(spec);
    }
    if (outcome.kind === "ok") return outcome.body;
    throw outcome.error;
  }

  type Outcome =
    | { kind: "ok"; body: Record<string, unknown> }
    | { kind: "stale-token"; token: string; error: GenesysApiError }
    | { kind: "fail"; error: GenesysApiError };

  async function attemptOnce(spec: Call): Promise<Outcome> {
    const details: GenesysApiErrorDetails = { operation: spec.operation };
    const token = await options.getAccessToken({ signal: spec.signal });
    let sent: SentResponse;
    try {
      sent = await send(`${apiUrl}${spec.path}`, {
        method: spec.method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
        },
      }, {
        fetch: fetchFn,
        clock,
        timeoutMs,
        signal: spec.signal,
        // The API may echo the bearer token it was sent.
        redact: createRedactor(() => [token]),
      });
    } catch (error) {
      if (!(error instanceof SendFailure)) throw error;
      if (error.kind === "aborted") {
        throw new AbortedError({ cause: error.cause });
      }
      if (error.kind === "too-large") {
        return {
          kind: "fail",
          error: new PlatformApiRequestError(
            { ...details, status: error.status },
            `${error.message}; the API should never send that much`,
          ),
        };
      }
      return {
        kind: "fail",
        error: new PlatformApiUnavailableError(details, error.message, {
          cause: error.cause,
        }),
      };
    }
    const { response, text } = sent;
    if (response.ok) {
      const body = parseObject(text);
      if (body === undefined) {
        // The body may hold a secret: say what is wrong, never quote it.
        return {
          kind: "fail",
          error: new PlatformApiRequestError(
            { ...details, status: response.status },
            `the API answered HTTP ${response.status} with a body that is not a JSON object`,
          ),
        };
      }
      return { kind: "ok", body };
    }
    return classify(sent, details, token, spec);
  }

  function classify(
    { response, text, quote }: SentResponse,
    operation: GenesysApiErrorDetails,
    token: string,
    spec: Call,
  ): Outcome {
    const body = parseObject(text) ?? {};
    const { status } = response;
    const details: GenesysApiErrorDetails = {
      ...operation,
      status,
      genesysCode: quote(body.code),
      correlationId: quote(body.contextId) ??
        quote(response.headers.get("inin-correlation-id")),
    };
    if (status === 401) {
      return {
        kind: options.invalidateToken ? "stale-token" : "fail",
        token,
        error: new AdminUnauthorizedError(details),
      };
    }
    if (status === 403) {
      return {
        kind: "fail",
        error: new AdminForbiddenError(details, spec.permission),
      };
    }
    if (status === 404) {
      return {
        kind: "fail",
        error: new OAuthClientNotFoundError(details, spec.clientId),
      };
    }
    if (status === 429) {
      const retryAfterMs =
        parseRetryAfter(response.headers.get("retry-after"), clock.now()) ??
          retryAfterFromMessage(body.message);
      return {
        kind: "fail",
        error: new AdminRateLimitedError(details, retryAfterMs),
      };
    }
    if (status === 408 || status >= 500) {
      return {
        kind: "fail",
        error: new PlatformApiUnavailableError(details, `HTTP ${status}`),
      };
    }
    const message = quote(body.message);
    return {
      kind: "fail",
      error: new PlatformApiRequestError(
        details,
        `the API refused the request (HTTP ${status}${
          message ? `: ${message}` : ""
        }).`,
      ),
    };
  }

  function clientPath(clientId: string): string {
    return `/api/v2/oauth/clients/${encodeURIComponent(clientId)}`;
  }

  return Object.freeze({
    async getClient(clientId: string, callOptions?: AdminCallOptions) {
      requireClientId(clientId);
      const operation = `read OAuth client ${clientId}`;
      const body = await call({
        method: "GET",
        path: clientPath(clientId),
        operation,
        permission: "oauth:client:view",
        clientId,
        signal: callOptions?.signal,
      });
      return readClient(body, operation);
    },
    async regenerateSecret(clientId: string, callOptions?: AdminCallOptions) {
      requireClientId(clientId);
      const operation = `regenerate the secret of OAuth client ${clientId}`;
      const body = await call({
        method: "POST",
        path: `${clientPath(clientId)}/secret`,
        operation,
        permission: "oauth:client:edit",
        clientId,
        signal: callOptions?.signal,
      });
      const client = readClient(body, operation);
      const secret = body.secret;
      if (typeof secret !== "string" || secret.length === 0) {
        throw new PlatformApiRequestError(
          { operation, status: 200 },
          "the response has no secret; the client's secret may have changed anyway, so treat its old secret as dead",
        );
      }
      return Object.freeze({ ...client, secret: new Secret(secret) });
    },
  });
}

/**
 * How the one retry loop treats an admin call's failure: 429 waits as asked
 * (and gives up at once when asked for longer than `maxRetryAfterMs`, as a
 * retry sooner would only be refused again); 5xx and network failures back
 * off; anything else is final.
 */
function retryVerdict(error: unknown, policy: RetryPolicy): RetryVerdict {
  if (error instanceof AdminRateLimitedError) {
    if (error.retryAfterMs === undefined) return true;
    return error.retryAfterMs <= policy.maxRetryAfterMs && error.retryAfterMs;
  }
  return error instanceof PlatformApiUnavailableError;
}

function resolveApiUrl(value: unknown): string {
  return resolveAllowedUrl("apiUrl", value).origin;
}

function requireClientId(clientId: unknown): void {
  if (typeof clientId !== "string" || clientId.trim() === "") {
    throw new ConfigError("clientId", "must be a non-empty string");
  }
}

function readClient(
  body: Record<string, unknown>,
  operation: string,
): OAuthClientInfo {
  const { id, name, state, accessTokenValiditySeconds } = body;
  if (typeof id !== "string" || id === "") {
    throw new PlatformApiRequestError(
      { operation, status: 200 },
      "the response has no client id",
    );
  }
  return Object.freeze({
    id,
    name: typeof name === "string" ? name : id,
    state: typeof state === "string" ? state : "unknown",
    ...(typeof accessTokenValiditySeconds === "number"
      ? { accessTokenValiditySeconds }
      : {}),
  });
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}

/** Genesys also puts the wait in its message: `Retry the request in [42] seconds`. */
function retryAfterFromMessage(message: unknown): number | undefined {
  if (typeof message !== "string") return undefined;
  const match = message.match(/in \[(\d{1,6})\] seconds/);
  return match ? Number(match[1]) * 1000 : undefined;
}
