/**
 * A small client of the Genesys Cloud OAuth client administration API: read a
 * client, regenerate its one secret, create a client and change its state.
 * Rate limits (429 with `Retry-After`)
 * and transient failures are retried a bounded number of times on the injected
 * clock; everything else becomes a typed error from `./errors.ts`.
 *
 * @module
 */
import { headerSafe } from "../header_safe.ts";
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
  RoleGrantRefusedError,
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

/** A role granted in a division (`*`: every division), as `roleDivisions` lists them. */
export interface OAuthRoleDivision {
  /** The role's id. */
  readonly roleId: string;
  /** The division's id, or `*` for all divisions. */
  readonly divisionId: string;
}

/** The states of an OAuth client; only `active` clients get tokens. */
export type OAuthClientState = "active" | "inactive" | "disabled";

/**
 * An OAuth client with everything needed to create its twin, as `GET
 * /api/v2/oauth/clients/{id}` describes it (never its secret).
 */
export interface OAuthClientDetails extends OAuthClientInfo {
  /** The grant type, such as `CLIENT-CREDENTIALS`. */
  readonly authorizedGrantType: string;
  /** The roles it holds, each in a division. */
  readonly roleDivisions: readonly OAuthRoleDivision[];
  /** Its description, when it has one. */
  readonly description?: string;
}

/** What {@linkcode GenesysOAuthClientAdmin.createClient} creates. */
export interface NewOAuthClient {
  /** The display name. */
  readonly name: string;
  /**
   * The grant type; only client credentials are supported here.
   *
   * @default "CLIENT-CREDENTIALS"
   */
  readonly authorizedGrantType?: "CLIENT-CREDENTIALS";
  /**
   * The roles to grant, each in a division. The admin credential must hold
   * every one of them itself.
   *
   * @default []
   */
  readonly roleDivisions?: readonly OAuthRoleDivision[];
  /**
   * Token lifetime in seconds, 300 to 172800.
   *
   * @default 86400 (Genesys's default, applied by the API)
   */
  readonly accessTokenValiditySeconds?: number;
  /**
   * The state to create it in.
   *
   * @default "active"
   */
  readonly state?: OAuthClientState;
  /**
   * A description.
   *
   * @default undefined (none)
   */
  readonly description?: string;
}

/** A client just created: the only time its secret is shown. */
export interface CreatedOAuthClient extends OAuthClientDetails {
  /** Its secret; store it at once, no later call returns it. */
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
   * (`oauth:client:view` to read them, `oauth:client:edit` to regenerate or
   * change them, `oauth:client:add` to create them), typically
   * `auth.getAccessToken` of the active credential or of separate admin
   * credentials.
   */
  readonly getAccessToken: (
    options?: { signal?: AbortSignal },
  ) => Promise<string>;
  /**
   * Drops a cached token the API rejected (such as `auth.invalidate`). When
   * given, a 401 is replayed once with a fresh token.
   */
  readonly invalidateToken?: (token: string) => void;
  /**
   * The fetch to use.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock for retry waits and timeouts.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Bounds on retrying 429, 5xx and network failures. Fields left out keep
   * these defaults, longer than the token endpoint's because Genesys rate-limit
   * windows are one minute.
   *
   * @default { maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 5_000, maxElapsedMs: 120_000, maxRetryAfterMs: 60_000 }
   */
  readonly retry?: RetryOptions;
  /**
   * Timeout of one request, body included, in ms.
   *
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Numbers in [0, 1) for backoff jitter.
   *
   * @default Math.random
   */
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

/**
 * The whole admin API: the rotation's read and regenerate, plus what setting
 * up a twin client and incident response need. See
 * {@linkcode createGenesysAdminClient}.
 */
export interface GenesysOAuthClientAdmin extends GenesysAdminClient {
  /**
   * Reads an OAuth client with its grant type and roles (`GET
   * /api/v2/oauth/clients/{id}`, permission `oauth:client:view`), what a
   * twin is created from. The secret is never returned here.
   *
   * @throws {import("./errors.ts").GenesysApiError} Typed by cause.
   */
  describeClient(
    clientId: string,
    options?: AdminCallOptions,
  ): Promise<OAuthClientDetails>;
  /**
   * Creates a client-credentials OAuth client (`POST /api/v2/oauth/clients`,
   * permission `oauth:client:add`; the admin credential must itself hold
   * every role it grants). The response is the only time the secret is
   * shown: store it before anything else.
   *
   * Only a 429 is retried (the API did not act on it): after a lost response
   * or a 5xx the client may exist, and a second create would leave a client
   * whose secret nobody holds.
   *
   * @throws {import("./errors.ts").RoleGrantRefusedError} When the admin
   *   credential does not hold a role it grants.
   * @throws {import("./errors.ts").GenesysApiError} Typed by cause.
   */
  createClient(
    client: NewOAuthClient,
    options?: AdminCallOptions,
  ): Promise<CreatedOAuthClient>;
  /**
   * Sets a client's state (`PUT /api/v2/oauth/clients/{id}`, permission
   * `oauth:client:edit`). Genesys's PUT replaces the whole client, so the
   * client is read first (`oauth:client:view`: an admin with edit alone gets
   * an `AdminForbiddenError` naming it, and nothing changes) and written back
   * with only `state` changed. A
   * client set `disabled` (or `inactive`) can get no tokens and the tokens
   * it holds stop working; set `active` again, it gets new tokens, the old
   * ones stay dead.
   *
   * @throws {import("./errors.ts").GenesysApiError} Typed by cause.
   */
  setClientState(
    clientId: string,
    state: OAuthClientState,
    options?: AdminCallOptions,
  ): Promise<OAuthClientDetails>;
}

/** Default longest `Retry-After` honoured: Genesys windows are one minute. */
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

interface Call {
  readonly method: "GET" | "POST" | "PUT";
  readonly path: string;
  readonly operation: string;
  readonly permission: string;
  readonly clientId: string;
  readonly signal?: AbortSignal;
  /** The JSON body, if any. */
  readonly body?: unknown;
  /** The roles the call grants: a refusal naming roles is a {@linkcode RoleGrantRefusedError}. */
  readonly grants?: readonly OAuthRoleDivision[];
  /**
   * Whether sending it twice does no harm. When not, only a 429 (which the
   * API did not act on) is retried.
   */
  readonly idempotent: boolean;
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
 * import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "green", secret: "old" }],
 * });
 * const admin = createGenesysAdminClient({
 *   apiUrl: emulator.apiUrl,
 *   // Normally auth.getAccessToken of a client with oauth:client:view and
 *   // oauth:client:edit.
 *   getAccessToken: () => Promise.resolve(emulator.issueToken("green")),
 * });
 * const denied = await admin.regenerateSecret("green").catch((e) => e);
 * if (denied.code !== "GENESYS_ADMIN_FORBIDDEN") throw new Error(denied.message);
 * ```
 */
export function createGenesysAdminClient(
  options: GenesysAdminClientOptions,
): GenesysOAuthClientAdmin {
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
        isRetriable: (error) =>
          spec.idempotent || error instanceof AdminRateLimitedError
            ? retryVerdict(error, policy)
            : false,
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
    // fetch quotes a header it refuses, token included, in its TypeError.
    const token = headerSafe(
      "getAccessToken",
      await options.getAccessToken({ signal: spec.signal }),
    );
    let sent: SentResponse;
    try {
      sent = await send(`${apiUrl}${spec.path}`, {
        method: spec.method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          ...(spec.body === undefined
            ? {}
            : { "content-type": "application/json" }),
        },
        ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
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
    if (
      spec.grants && (status === 400 || status === 403) &&
      refusesRoles(body)
    ) {
      return {
        kind: "fail",
        error: new RoleGrantRefusedError(
          details,
          spec.grants,
          quote(body.message),
        ),
      };
    }
    if (status === 403) {
      return {
        kind: "fail",
        error: new AdminForbiddenError(details, spec.permission),
      };
    }
    if (status === 404 && spec.clientId !== "") {
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

  function readBody(
    clientId: string,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    requireClientId(clientId);
    return call({
      method: "GET",
      path: clientPath(clientId),
      operation: `read OAuth client ${clientId}`,
      permission: "oauth:client:view",
      clientId,
      signal,
      idempotent: true,
    });
  }

  return Object.freeze({
    async getClient(clientId: string, callOptions?: AdminCallOptions) {
      const body = await readBody(clientId, callOptions?.signal);
      return readClient(body, `read OAuth client ${clientId}`);
    },
    async describeClient(clientId: string, callOptions?: AdminCallOptions) {
      const body = await readBody(clientId, callOptions?.signal);
      return readClientDetails(body, `read OAuth client ${clientId}`);
    },
    async createClient(client: NewOAuthClient, callOptions?: AdminCallOptions) {
      const request = createRequest(client);
      const operation = `create OAuth client "${request.name}"`;
      const body = await call({
        method: "POST",
        path: "/api/v2/oauth/clients",
        operation,
        permission: "oauth:client:add",
        clientId: "",
        signal: callOptions?.signal,
        body: request,
        grants: request.roleDivisions,
        idempotent: false,
      });
      const created = readClientDetails(body, operation);
      const secret = body.secret;
      if (typeof secret !== "string" || secret.length === 0) {
        throw new PlatformApiRequestError(
          { operation, status: 200 },
          `the response has no secret; OAuth client ${created.id} was created but its secret is unknown: ` +
            `delete it, or regenerate its secret, before using it`,
        );
      }
      return Object.freeze({ ...created, secret: new Secret(secret) });
    },
    async setClientState(
      clientId: string,
      state: OAuthClientState,
      callOptions?: AdminCallOptions,
    ) {
      if (!isClientState(state)) {
        throw new ConfigError("state", "must be active, inactive or disabled");
      }
      const current = readClientDetails(
        await readBody(clientId, callOptions?.signal),
        `read OAuth client ${clientId}`,
      );
      const operation = `set OAuth client ${clientId} ${state}`;
      const body = await call({
        method: "PUT",
        path: clientPath(clientId),
        operation,
        permission: "oauth:client:edit",
        clientId,
        signal: callOptions?.signal,
        body: {
          name: current.name,
          authorizedGrantType: current.authorizedGrantType,
          roleDivisions: current.roleDivisions,
          ...(current.accessTokenValiditySeconds === undefined ? {} : {
            accessTokenValiditySeconds: current.accessTokenValiditySeconds,
          }),
          ...(current.description === undefined
            ? {}
            : { description: current.description }),
          state,
        },
        grants: current.roleDivisions,
        idempotent: true,
      });
      return readClientDetails(body, operation);
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
        // Regenerating twice is harmless: only the last secret returned is used.
        idempotent: true,
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

function readClientDetails(
  body: Record<string, unknown>,
  operation: string,
): OAuthClientDetails {
  const client = readClient(body, operation);
  const { authorizedGrantType, roleDivisions, description } = body;
  const pairs: OAuthRoleDivision[] = [];
  for (const entry of Array.isArray(roleDivisions) ? roleDivisions : []) {
    const { roleId, divisionId } = (entry ?? {}) as Record<string, unknown>;
    if (typeof roleId !== "string" || typeof divisionId !== "string") {
      throw new PlatformApiRequestError(
        { operation, status: 200 },
        "the response lists a role without a roleId and divisionId",
      );
    }
    pairs.push(Object.freeze({ roleId, divisionId }));
  }
  return Object.freeze({
    ...client,
    authorizedGrantType: typeof authorizedGrantType === "string"
      ? authorizedGrantType
      : "unknown",
    roleDivisions: Object.freeze(pairs),
    ...(typeof description === "string" && description !== ""
      ? { description }
      : {}),
  });
}

const MIN_TOKEN_LIFETIME_SECONDS = 300;
const MAX_TOKEN_LIFETIME_SECONDS = 172_800;

/** The `OAuthClientRequest` body of a create, checked before anything is sent. */
function createRequest(client: NewOAuthClient): {
  name: string;
  authorizedGrantType: "CLIENT-CREDENTIALS";
  roleDivisions: OAuthRoleDivision[];
  state: OAuthClientState;
  accessTokenValiditySeconds?: number;
  description?: string;
} {
  const { name, accessTokenValiditySeconds: lifetime, description } = client;
  if (typeof name !== "string" || name.trim() === "") {
    throw new ConfigError("name", "must be a non-empty string");
  }
  const grant = client.authorizedGrantType ?? "CLIENT-CREDENTIALS";
  if (grant !== "CLIENT-CREDENTIALS") {
    throw new ConfigError(
      "authorizedGrantType",
      "only CLIENT-CREDENTIALS clients can be created here",
    );
  }
  if (
    lifetime !== undefined &&
    !(Number.isInteger(lifetime) && lifetime >= MIN_TOKEN_LIFETIME_SECONDS &&
      lifetime <= MAX_TOKEN_LIFETIME_SECONDS)
  ) {
    throw new ConfigError(
      "accessTokenValiditySeconds",
      `must be an integer from ${MIN_TOKEN_LIFETIME_SECONDS} to ${MAX_TOKEN_LIFETIME_SECONDS}`,
    );
  }
  const state = client.state ?? "active";
  if (!isClientState(state)) {
    throw new ConfigError("state", "must be active, inactive or disabled");
  }
  const roleDivisions = (client.roleDivisions ?? []).map((pair, i) => {
    if (
      typeof pair?.roleId !== "string" || pair.roleId === "" ||
      typeof pair.divisionId !== "string" || pair.divisionId === ""
    ) {
      throw new ConfigError(
        `roleDivisions[${i}]`,
        "needs a roleId and a divisionId",
      );
    }
    return { roleId: pair.roleId, divisionId: pair.divisionId };
  });
  return {
    name,
    authorizedGrantType: grant,
    roleDivisions,
    state,
    ...(lifetime === undefined ? {} : { accessTokenValiditySeconds: lifetime }),
    ...(description === undefined ? {} : { description }),
  };
}

function isClientState(state: unknown): state is OAuthClientState {
  return state === "active" || state === "inactive" || state === "disabled";
}

/**
 * Whether a 400/403 is the role-subset refusal rather than a missing
 * permission. Genesys's exact code for it is not documented, so any error
 * that is not a missing-permission one and names a role or division counts.
 */
function refusesRoles(body: Record<string, unknown>): boolean {
  const code = typeof body.code === "string" ? body.code : "";
  if (/^missing\.(any\.)?permissions?$/.test(code)) return false;
  const text = `${code} ${
    typeof body.message === "string" ? body.message : ""
  }`;
  return /role|division/i.test(text);
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
