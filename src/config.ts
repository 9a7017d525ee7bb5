/**
 * Options: their types, defaults and validation, and the seed's shorthand.
 * Everything is checked once, up front, with messages that say what to fix.
 *
 * @module
 */
import { isLoopback, resolveAllowedUrl } from "./allowed_url.ts";
import type { ApiRateLimitOptions } from "./authorized_fetch.ts";
import { type Clock, systemClock } from "./clock.ts";
import { ConfigError } from "./errors.ts";
import type { AuthEventListener } from "./events.ts";
import { resolveRegion } from "./regions.ts";
import { UNENCODABLE } from "./redact.ts";
import { DEFAULT_RETRY, type RetryOptions, type RetryPolicy } from "./retry.ts";
import { Secret } from "./secret.ts";
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "./send.ts";
import type { SharedState } from "./store.ts";
import {
  DEFAULT_EXPIRES_IN_SECONDS,
  type TokenAuthMethod,
} from "./token_endpoint.ts";

/** One OAuth client credential. */
export interface CredentialInput {
  /** A unique name for it, such as `blue` or `green`. */
  readonly label: string;
  /** The OAuth client id (several credentials may share one). */
  readonly clientId: string;
  /** The client secret, as a string or a {@linkcode Secret}. */
  readonly clientSecret: string | Secret;
  /**
   * How this client authenticates at the token endpoint: an
   * `Authorization: Basic` header, or `client_id` and `client_secret` in the
   * form body (what the client is registered for; Auth0's applications
   * default to `client_secret_post`).
   *
   * @default {"client_secret_basic"}
   */
  readonly authMethod?: TokenAuthMethod;
}

/** Options of `createDualSecretAuth`. */
export interface DualSecretAuthOptions {
  /** Two or more credentials; the first is active unless `active` says otherwise. */
  readonly credentials?: readonly CredentialInput[];
  /** Seed shorthand: one client id with `secretA` and `secretB` (labels `a` and `b`). */
  readonly clientId?: string;
  /** Seed shorthand: the first secret (label `a`). */
  readonly secretA?: string | Secret;
  /** Seed shorthand: the second secret (label `b`). */
  readonly secretB?: string | Secret;
  /**
   * A Genesys Cloud region domain such as `mypurecloud.com`; gives
   * `https://login.<env>/oauth/token`. Used when `tokenUrl` is not given.
   *
   * @default {"mypurecloud.com"}
   */
  readonly environment?: string;
  /** Any RFC 6749 token endpoint instead of `environment`. Must be `https:` unless on loopback. */
  readonly tokenUrl?: string;
  /**
   * The label to start with.
   *
   * @default the first credential's label
   */
  readonly active?: string;
  /** Scopes to request, space-separated or as a list. */
  readonly scope?: string | readonly string[];
  /**
   * Further parameters of every token request, such as Auth0's
   * `{ audience }`. Cannot set `grant_type`, `scope`, `client_id` or
   * `client_secret`. Unlike `tokenUrl` and `scope`, they are not part of a
   * fleet's namespace: services whose tokens differ only by these (two
   * audiences of one client) need fleets of their own (another `prefix`).
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /**
   * The fetch to use.
   *
   * @default the global `fetch`, looked up per call
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock to use.
   *
   * @default {systemClock}
   */
  readonly clock?: Clock;
  /**
   * Numbers in [0, 1) for jitter.
   *
   * @default {Math.random}
   */
  readonly random?: () => number;
  /**
   * Refresh this long before expiry (capped at half a token's lifetime, minus
   * up to 20 % jitter).
   *
   * @default {300_000}
   */
  readonly refreshMarginMs?: number;
  /**
   * Timeout of one token request, body included.
   *
   * @default {10_000}
   */
  readonly requestTimeoutMs?: number;
  /**
   * The largest token response body read; a longer one is cancelled and
   * refused as an invalid token response.
   *
   * @default {65_536}
   */
  readonly maxResponseBytes?: number;
  /**
   * The token lifetime assumed, in seconds, when the token endpoint sends no
   * `expires_in` (RFC 6749 §5.1 does not require it); the first such
   * response emits a `warning` (`EXPIRES_IN_MISSING`). 300 s is the shortest
   * lifetime of the endpoints the library knows: a guess too long would serve
   * tokens the server already expired (a 401 and a replay per call), a guess
   * too short only costs a token request every few minutes. Set it to the
   * lifetime your endpoint documents (at least 1).
   *
   * @default {300}
   */
  readonly defaultExpiresInSeconds?: number;
  /**
   * Retry policy for transient token endpoint failures.
   *
   * @default {{ maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 5_000, maxElapsedMs: 30_000, maxRetryAfterMs: 30_000 }}
   */
  readonly retry?: RetryOptions;
  /**
   * How `auth.fetch` waits out an API's 429 for idempotent methods (POST only
   * when listed); `false` returns every 429 at once.
   *
   * @default {{ maxRetries: 2, maxRetryAfterMs: 60_000, methods: ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"] }}
   */
  readonly apiRateLimit?: ApiRateLimitOptions | false;
  /**
   * Keep a token of the healthiest standby credential cached too, refreshed
   * along with the active one's, so a failover costs a caller one rejected
   * request and no fresh token request. Costs one token request per refresh
   * per standby.
   *
   * @default {false}
   */
  readonly warmStandby?: boolean;
  /** Receives events; see `AuthEvent`. */
  readonly onEvent?: AuthEventListener;
  /**
   * Distinct tokens kept per credential (the pool). Genesys Cloud limits each
   * token to 300 API requests a minute, so a load of R requests a minute
   * needs at least R / 300. In a fleet the pool is fleet-wide and instances
   * are spread evenly over it; alone, the instance hands its tokens out in
   * turn. An integer from 1 to 64.
   *
   * @default 1
   */
  readonly tokensPerCredential?: number;
  /**
   * Where grants and the active label live: the core's one port. A fleet
   * (`createKvFleet` of `./kv`, `createRedisFleet` of `./redis`) shares them
   * with the other instances of the service.
   *
   * @default {createMemorySharedState(active)}
   */
  readonly shared?: SharedState;
}

/** A validated credential. */
export interface ResolvedCredential {
  /** Its label. */
  readonly label: string;
  /** Its client id. */
  readonly clientId: string;
  /** Its secret. */
  readonly clientSecret: Secret;
  /** How it authenticates; absent means Basic. */
  readonly authMethod?: TokenAuthMethod;
}

/** Validated options with defaults filled in. */
export interface ResolvedConfig {
  /** The credentials, in order. */
  readonly credentials: readonly ResolvedCredential[];
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The active label at start. */
  readonly active: string;
  /** Space-separated scopes, if any. */
  readonly scope?: string;
  /** Further token request parameters, if any. */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /** The fetch. */
  readonly fetch: typeof fetch;
  /** The clock. */
  readonly clock: Clock;
  /** Jitter source. */
  readonly random: () => number;
  /** Refresh margin in ms. */
  readonly refreshMarginMs: number;
  /** Request timeout in ms. */
  readonly requestTimeoutMs: number;
  /** The largest token response body read, in bytes. */
  readonly maxResponseBytes: number;
  /** The lifetime assumed without `expires_in`, in seconds. */
  readonly defaultExpiresInSeconds: number;
  /** Retry policy. */
  readonly retry: RetryPolicy;
  /** How `auth.fetch` waits out 429s, or `false`. */
  readonly apiRateLimit: ApiRateLimitOptions | false;
  /** Whether a standby's token is kept warm. */
  readonly warmStandby: boolean;
  /** Tokens per credential (the pool). */
  readonly tokensPerCredential: number;
}

/** A warning found while validating, emitted once the instance exists. */
export interface ConfigWarning {
  /** Stable code. */
  readonly code: string;
  /** What happened. */
  readonly message: string;
  /** The credential concerned. */
  readonly label?: string;
}

/** Default `refreshMarginMs`: five minutes. */
export const DEFAULT_REFRESH_MARGIN_MS = 300_000;
export { DEFAULT_REQUEST_TIMEOUT_MS, isLoopback };

/**
 * Validates options and fills in defaults.
 *
 * @param options The options as given.
 * @param warnings Receives warnings (such as trimmed secrets).
 * @returns The resolved configuration.
 * @throws {ConfigError} When an option is missing or invalid.
 */
export function resolveConfig(
  options: DualSecretAuthOptions,
  warnings: ConfigWarning[],
): ResolvedConfig {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError("options", "pass an options object");
  }
  const credentials = resolveCredentials(shorthandOrList(options), warnings);
  checkInjected(options);
  const active = options.active ?? credentials[0].label;
  if (typeof active !== "string") {
    throw new ConfigError("active", "must be a credential's label (a string)");
  }
  if (!credentials.some((c) => c.label === active)) {
    throw new ConfigError(
      "active",
      `"${active}" is not a configured label (${
        credentials.map((c) => c.label).join(", ")
      })`,
    );
  }
  return Object.freeze({
    credentials,
    tokenUrl: resolveTokenUrl(options),
    active,
    scope: resolveScope(options.scope),
    tokenParams: resolveTokenParams(options.tokenParams),
    fetch: options.fetch ?? globalFetch,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    refreshMarginMs: nonNegative(
      "refreshMarginMs",
      options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS,
    ),
    requestTimeoutMs: positive(
      "requestTimeoutMs",
      options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ),
    maxResponseBytes: positive(
      "maxResponseBytes",
      options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    ),
    defaultExpiresInSeconds: atLeastOneSecond(
      options.defaultExpiresInSeconds ?? DEFAULT_EXPIRES_IN_SECONDS,
    ),
    retry: resolveRetry(options.retry),
    apiRateLimit: resolveApiRateLimit(options.apiRateLimit),
    warmStandby: flag("warmStandby", options.warmStandby),
    tokensPerCredential: poolSize(options.tokensPerCredential),
  });
}

/** The largest `tokensPerCredential`. */
export const MAX_TOKENS_PER_CREDENTIAL = 64;

function poolSize(value: number | undefined): number {
  if (value === undefined) return 1;
  if (
    !Number.isInteger(value) || value < 1 || value > MAX_TOKENS_PER_CREDENTIAL
  ) {
    throw new ConfigError(
      "tokensPerCredential",
      `must be an integer from 1 to ${MAX_TOKENS_PER_CREDENTIAL}, got ${value}`,
    );
  }
  return value;
}

/**
 * Validates a list of credentials: non-empty, unique labels, non-empty ids
 * and secrets. Surrounding whitespace is trimmed with a warning, since
 * mounted secret files usually end in a newline.
 *
 * @param list The credentials as given.
 * @param warnings Receives a warning per trimmed value.
 * @returns The validated credentials.
 * @throws {ConfigError} When the list or an entry is invalid.
 */
export function resolveCredentials(
  list: readonly CredentialInput[] | undefined,
  warnings: ConfigWarning[],
): readonly ResolvedCredential[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(
      "credentials",
      "give at least one credential ({ label, clientId, clientSecret }), or clientId with secretA and secretB",
    );
  }
  const labels = new Set<string>();
  return Object.freeze(list.map((input, index) => {
    const at = `credentials[${index}]`;
    if (typeof input !== "object" || input === null) {
      throw new ConfigError(at, "expected { label, clientId, clientSecret }");
    }
    const label = requiredText(`${at}.label`, input.label);
    if (labels.has(label)) {
      throw new ConfigError(
        `${at}.label`,
        `duplicate label "${label}"; labels must be unique`,
      );
    }
    labels.add(label);
    const clientId = trimmed(
      `${at}.clientId`,
      requiredText(`${at}.clientId`, input.clientId, false),
      label,
      warnings,
    );
    const { authMethod } = input;
    if (
      authMethod !== undefined &&
      !/^client_secret_(basic|post)$/.test(authMethod)
    ) {
      throw new ConfigError(
        `${at}.authMethod`,
        "must be client_secret_basic or client_secret_post",
      );
    }
    return Object.freeze({
      label,
      clientId,
      clientSecret: resolveSecret(
        `${at}.clientSecret`,
        input.clientSecret,
        label,
        warnings,
      ),
      authMethod,
    });
  }));
}

function shorthandOrList(
  options: DualSecretAuthOptions,
): readonly CredentialInput[] | undefined {
  const usesShorthand = options.secretA !== undefined ||
    options.secretB !== undefined || options.clientId !== undefined;
  if (!usesShorthand) return options.credentials;
  if (options.credentials !== undefined) {
    throw new ConfigError(
      "credentials",
      "give either credentials or the shorthand clientId/secretA/secretB, not both",
    );
  }
  const clientId = requiredText("clientId", options.clientId, false);
  if (options.secretA === undefined || options.secretB === undefined) {
    throw new ConfigError(
      options.secretA === undefined ? "secretA" : "secretB",
      "the shorthand needs both secretA and secretB",
    );
  }
  return [
    { label: "a", clientId, clientSecret: options.secretA },
    { label: "b", clientId, clientSecret: options.secretB },
  ];
}

function resolveSecret(
  option: string,
  value: unknown,
  label: string,
  warnings: ConfigWarning[],
): Secret {
  const text = value instanceof Secret ? value.reveal() : value;
  if (typeof text !== "string" || text.trim() === "") {
    throw new ConfigError(
      option,
      `the secret of "${label}" is missing or empty; set it (for example from an environment variable)`,
    );
  }
  encodable(option, text);
  return new Secret(trimmed(option, text, label, warnings));
}

function trimmed(
  option: string,
  value: string,
  label: string,
  warnings: ConfigWarning[],
): string {
  const result = value.trim();
  if (result !== value) {
    warnings.push({
      code: "WHITESPACE_TRIMMED",
      label,
      message:
        `${option} of "${label}" had surrounding whitespace, which was removed; fix its source (a mounted file or .env line ending in a newline?)`,
    });
  }
  return result;
}

function requiredText(option: string, value: unknown, trim = true): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(option, "must be a non-empty string");
  }
  encodable(option, value);
  return trim ? value.trim() : value;
}

/** A lone surrogate cannot be sent: refuse it here rather than at each request. */
function encodable(option: string, value: string): void {
  try {
    encodeURIComponent(value);
  } catch {
    throw new ConfigError(option, UNENCODABLE);
  }
}

function resolveTokenUrl(options: DualSecretAuthOptions): string {
  if (options.tokenUrl !== undefined && options.environment !== undefined) {
    throw new ConfigError(
      "tokenUrl",
      "give either tokenUrl or environment, not both",
    );
  }
  if (options.tokenUrl === undefined) {
    return resolveRegion(options.environment ?? "mypurecloud.com").tokenUrl;
  }
  const { href } = resolveAllowedUrl("tokenUrl", options.tokenUrl);
  // The caller's string when it is already normal: one copy per process, not
  // one per instance.
  return href === options.tokenUrl ? options.tokenUrl : href;
}

/** What each injected dependency must offer: its methods, or itself a function. */
const INJECTED: Readonly<Record<string, readonly string[]>> = {
  fetch: [],
  random: [],
  onEvent: [],
  clock: ["now", "setTimeout", "clearTimeout"],
  shared: ["getGrant", "setGrant", "deleteGrant", "getActive", "setActive"],
};

function checkInjected(options: DualSecretAuthOptions): void {
  for (const [option, methods] of Object.entries(INJECTED)) {
    const value = (options as Record<string, unknown>)[option];
    if (value === undefined) continue;
    const ok = methods.length === 0
      ? typeof value === "function"
      : typeof value === "object" && value !== null &&
        methods.every((m) =>
          typeof (value as Record<string, unknown>)[m] === "function"
        );
    if (!ok) {
      throw new ConfigError(
        option,
        methods.length === 0
          ? "must be a function"
          : `must be an object with the methods ${methods.join(", ")}`,
      );
    }
  }
}

function resolveScope(
  scope: string | readonly string[] | undefined,
): string | undefined {
  if (scope === undefined) return undefined;
  if (typeof scope !== "string" && !Array.isArray(scope)) {
    throw new ConfigError("scope", "must be a string or a list of strings");
  }
  const list = typeof scope === "string" ? scope.split(/\s+/) : [...scope];
  if (list.some((s) => typeof s !== "string")) {
    throw new ConfigError("scope", "must be a string or a list of strings");
  }
  const joined = list.map((s) => s.trim()).filter(Boolean).join(" ");
  return joined === "" ? undefined : joined;
}

function resolveTokenParams(params: unknown): ResolvedConfig["tokenParams"] {
  if (params === undefined) return undefined;
  if (typeof params !== "object" || params === null) {
    throw new ConfigError("tokenParams", "must be an object of strings");
  }
  for (const [name, value] of Object.entries(params)) {
    if (/^(grant_type|scope|client_id|client_secret)$/.test(name)) {
      throw new ConfigError(
        `tokenParams.${name}`,
        "is set by the library; use scope or the credentials",
      );
    }
    requiredText(`tokenParams.${name}`, value, false);
  }
  return Object.freeze({ ...params as Record<string, string> });
}

/** No `apiRateLimit` given: one shared object, not one per instance. */
const NO_API_RATE_LIMIT_OPTIONS: ApiRateLimitOptions = Object.freeze({});
/** The global fetch, looked up per call (so a test's stub of it is seen). */
const globalFetch: typeof fetch = (input, init) =>
  globalThis.fetch(input, init);

function resolveRetry(retry: RetryOptions | undefined): RetryPolicy {
  if (retry === undefined) return DEFAULT_RETRY;
  const merged = { ...DEFAULT_RETRY, ...retry };
  if (!Number.isInteger(merged.maxAttempts) || merged.maxAttempts < 1) {
    throw new ConfigError("retry.maxAttempts", "must be a whole number ≥ 1");
  }
  return Object.freeze({
    maxAttempts: merged.maxAttempts,
    baseDelayMs: nonNegative("retry.baseDelayMs", merged.baseDelayMs),
    maxDelayMs: nonNegative("retry.maxDelayMs", merged.maxDelayMs),
    maxElapsedMs: nonNegative("retry.maxElapsedMs", merged.maxElapsedMs),
    maxRetryAfterMs: nonNegative(
      "retry.maxRetryAfterMs",
      merged.maxRetryAfterMs,
    ),
  });
}

function resolveApiRateLimit(
  value: ApiRateLimitOptions | false | undefined,
): ApiRateLimitOptions | false {
  if (value === false) return false;
  if (value === undefined) return NO_API_RATE_LIMIT_OPTIONS;
  if (typeof value !== "object" || value === null) {
    throw new ConfigError("apiRateLimit", "must be an object or false");
  }
  const { maxRetries, maxRetryAfterMs, methods } = value;
  if (
    maxRetries !== undefined &&
    (!Number.isInteger(maxRetries) || maxRetries < 0)
  ) {
    throw new ConfigError(
      "apiRateLimit.maxRetries",
      "must be a whole number ≥ 0",
    );
  }
  if (maxRetryAfterMs !== undefined) {
    nonNegative("apiRateLimit.maxRetryAfterMs", maxRetryAfterMs);
  }
  if (
    methods !== undefined &&
    (!Array.isArray(methods) || methods.some((m) => typeof m !== "string"))
  ) {
    throw new ConfigError(
      "apiRateLimit.methods",
      "must be a list of HTTP methods",
    );
  }
  return Object.freeze({
    ...value,
    ...(methods ? { methods: methods.map((m) => m.toUpperCase()) } : {}),
  });
}

function flag(option: string, value: unknown): boolean {
  if (value !== undefined && typeof value !== "boolean") {
    throw new ConfigError(option, "must be true or false");
  }
  return value === true;
}

function nonNegative(option: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(option, "must be a finite number ≥ 0");
  }
  return value;
}

/** Less than a second would make every call a token request. */
function atLeastOneSecond(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 1) {
    throw new ConfigError(
      "defaultExpiresInSeconds",
      "must be a finite number of seconds ≥ 1 (the lifetime your token endpoint documents)",
    );
  }
  return value;
}

function positive(option: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(option, "must be a finite number > 0");
  }
  return value;
}
