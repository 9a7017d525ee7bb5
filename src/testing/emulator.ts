/**
 * A local stand-in for Genesys Cloud: the client-credentials token endpoint,
 * `/api/v2/tokens/me` and the OAuth client administration API, with fault
 * injection, per-token rate limiting and request statistics.
 *
 * One HTTP server plays both the login host (`login.<domain>`) and the API
 * host (`api.<domain>`). Time-dependent behaviour (token expiry, rate-limit
 * windows, `Retry-After` dates) reads only the injected {@linkcode Clock}, so
 * a fake clock can expire tokens without waiting.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";

// Re-exported so the public options type refers to a documented type.
export type { Clock, TimerHandle } from "../clock.ts";

/** An OAuth client (client-credentials grant) known to the emulator. */
export interface EmulatorClient {
  /** The OAuth client id. */
  clientId: string;
  /** The client's one current secret. */
  secret: string;
  /** Display name; defaults to the client id. */
  name?: string;
  /**
   * Lifetime of issued tokens in seconds; default 86400. Genesys allows 300 to
   * 172800, but any positive value is accepted so tests can use short ones.
   */
  tokenLifetimeSeconds?: number;
  /** Inactive clients cannot get tokens (`invalid_client`); default active. */
  state?: "active" | "inactive";
  /**
   * Permissions granted to tokens of this client, such as
   * `"oauth:client:view"`; `*` matches any one segment. Default none.
   */
  permissions?: readonly string[];
}

/** Options for {@linkcode startGenesysEmulator}. */
export interface GenesysEmulatorOptions {
  /** OAuth clients present from the start. */
  clients?: readonly EmulatorClient[];
  /** Source of time for expiry, rate-limit windows and `Retry-After` dates. */
  clock?: Clock;
  /** Interface to listen on; default `127.0.0.1`. */
  hostname?: string;
  /** Port to listen on; default 0 (any free port). */
  port?: number;
  /** The organization reported by `/api/v2/tokens/me`. */
  organization?: { id: string; name: string };
  /**
   * Whether regenerating a secret revokes the client's tokens at once. Default
   * false: they stay valid until they expire. Genesys does not document which.
   */
  revokeTokensOnRegenerate?: boolean;
  /**
   * Requests per token per minute on `/api/v2/*`; default no limit. Real
   * Genesys allows 300 for client-credentials tokens.
   */
  apiRateLimitPerMinute?: number;
  /** The `token_type` of issued tokens; default `"bearer"`. */
  tokenType?: string;
}

/**
 * A failure to inject into upcoming requests.
 *
 * - `status`: the request is not processed; the emulator answers `status` with
 *   `body` (or a plausible default body for the endpoint) and `retryAfter` as
 *   the `Retry-After` header. An API 429 always carries `Retry-After` (default
 *   `"1"`), as Genesys does; pass `retryAfter: ""` to leave it out.
 * - `delay`: the request is processed at once, but the response is held back
 *   for `ms` real milliseconds (a client that gives up has still, say, rotated
 *   a secret).
 * - `reset`: the request is processed, then the connection dies part-way
 *   through the body, so the client's `fetch()` or body read rejects.
 * - `body`: the request is not processed; the emulator answers with exactly
 *   `body` (default status 200, `application/json`).
 */
export type EmulatorFault =
  | {
    kind: "status";
    status: number;
    retryAfter?: string;
    body?: string;
    contentType?: string;
    headers?: Record<string, string>;
  }
  | { kind: "delay"; ms: number }
  | { kind: "reset" }
  | { kind: "body"; body: string; status?: number; contentType?: string };

/** Counters kept by the emulator since it started or since the last reset. */
export interface EmulatorStats {
  /** Requests to `/oauth/token`, whatever their outcome. */
  tokenRequests: number;
  /** Token requests by the client id in their `Authorization` header. */
  tokenRequestsByClient: Record<string, number>;
  /** Token requests answered with a status of 400 or more. */
  tokenFailures: number;
  /** Requests to `/api/v2/*`, whatever their outcome. */
  apiRequests: number;
  /** API requests by the client of the token presented (if the token is known). */
  apiRequestsByClient: Record<string, number>;
  /** API requests answered 401. */
  apiUnauthorized: number;
  /** API requests that presented a token that had expired. */
  expiredTokenUses: number;
  /** Secrets regenerated, through the API or {@linkcode GenesysEmulator.regenerateSecret}. */
  secretRegenerations: number;
}

/** A running emulator; close it with {@linkcode GenesysEmulator.close} or `await using`. */
export interface GenesysEmulator extends AsyncDisposable {
  /** Base URL, such as `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The token endpoint: {@linkcode GenesysEmulator.url} + `/oauth/token`. */
  readonly tokenUrl: string;
  /** The API base URL; the same origin as {@linkcode GenesysEmulator.url}. */
  readonly apiUrl: string;
  /**
   * Adds an OAuth client.
   *
   * @param client The client; its id must be new.
   */
  addClient(client: EmulatorClient): void;
  /**
   * Reads a client's current secret.
   *
   * @param clientId An existing client id.
   * @returns The secret.
   */
  getClientSecret(clientId: string): string;
  /**
   * Regenerates a client's secret behind the caller's back: the old secret
   * stops working at once.
   *
   * @param clientId An existing client id.
   * @param newSecret The new secret; default a random one.
   * @returns The new secret.
   */
  regenerateSecret(clientId: string, newSecret?: string): string;
  /**
   * Activates or deactivates a client. Existing tokens are not affected.
   *
   * @param clientId An existing client id.
   * @param state The new state.
   */
  setClientState(clientId: string, state: "active" | "inactive"): void;
  /**
   * Mints a valid token without an HTTP request (not counted in stats).
   *
   * @param clientId An existing client id, active or not.
   * @returns The access token.
   */
  issueToken(clientId: string): string;
  /**
   * Revokes one token; unknown tokens are ignored.
   *
   * @param token The access token.
   */
  revokeToken(token: string): void;
  /**
   * Revokes every token issued to a client.
   *
   * @param clientId The client id.
   */
  revokeTokensOf(clientId: string): void;
  /**
   * Makes the next `count` requests to `/oauth/token` fail with `fault`.
   *
   * @param fault What to do.
   * @param count How many requests; default 1.
   */
  injectTokenFaults(fault: EmulatorFault, count?: number): void;
  /**
   * Makes the next `count` requests to `/api/v2/*` fail with `fault`.
   *
   * @param fault What to do.
   * @param count How many requests; default 1.
   */
  injectApiFaults(fault: EmulatorFault, count?: number): void;
  /** Drops every fault not yet delivered. */
  clearFaults(): void;
  /**
   * Reads the counters.
   *
   * @returns A snapshot; later requests do not change it.
   */
  stats(): EmulatorStats;
  /** Sets every counter back to zero. */
  resetStats(): void;
  /**
   * Stops the server. Responses held back by `delay` faults are released at
   * once. Calling it again returns the same promise.
   *
   * @returns A promise that resolves once the server has stopped.
   */
  close(): Promise<void>;
}

/** Default token lifetime of a Genesys OAuth client, in seconds. */
const DEFAULT_TOKEN_LIFETIME_SECONDS = 86_400;
const RATE_WINDOW_MS = 60_000;
/**
 * Advertised in `inin-ratelimit-allowed` when no limit is configured, large
 * enough that a client throttling itself on the headers never slows down.
 */
const UNLIMITED_ADVERTISED = 2_147_483_647;
const DEFAULT_ORGANIZATION = Object.freeze({
  id: "00000000-0000-4000-8000-00000000e0e0",
  name: "Genesys Emulator",
});
const INVALID_CLIENT_DESCRIPTION = "authentication failed";
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 204, 205, 304]);

interface ClientRecord {
  readonly id: string;
  name: string;
  secret: string;
  lifetimeSeconds: number;
  state: "active" | "inactive";
  permissions: readonly string[];
  readonly dateCreated: string;
}

interface TokenRecord {
  readonly clientId: string;
  readonly expiresAt: number;
  readonly scopes: readonly string[];
  revoked: boolean;
  windowStart: number;
  windowCount: number;
}

interface PendingFault {
  readonly fault: EmulatorFault;
  remaining: number;
}

interface PendingDelay {
  readonly timer: ReturnType<typeof setTimeout>;
  readonly release: () => void;
}

type ApiRoute =
  | { kind: "tokensMe" }
  | { kind: "clients" }
  | { kind: "client"; id: string }
  | { kind: "clientSecret"; id: string };

/** What an authenticated API handler gets to work with. */
interface ApiContext {
  readonly request: Request;
  readonly token: string;
  readonly record: TokenRecord;
  readonly contextId: string;
  readonly headers: Headers;
}

/**
 * Starts an emulator listening on `127.0.0.1` and a free port (by default).
 *
 * @param options Clients, clock, listening address and behaviour switches.
 * @returns The running emulator; close it when done.
 *
 * @example Get a token and look at it
 * ```ts
 * import { startGenesysEmulator } from "./emulator.ts";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "app", secret: "s3cret" }],
 * });
 * const response = await fetch(emulator.tokenUrl, {
 *   method: "POST",
 *   headers: {
 *     authorization: `Basic ${btoa("app:s3cret")}`,
 *     "content-type": "application/x-www-form-urlencoded",
 *   },
 *   body: "grant_type=client_credentials",
 * });
 * const { access_token: token } = await response.json();
 * const me = await fetch(`${emulator.apiUrl}/api/v2/tokens/me`, {
 *   headers: { authorization: `Bearer ${token}` },
 * });
 * const info = await me.json();
 * if (info.OAuthClient.id !== "app") throw new Error("unexpected");
 * ```
 */
export function startGenesysEmulator(
  options: GenesysEmulatorOptions = {},
): GenesysEmulator {
  return new Emulator(options);
}

/** The emulator: server lifecycle, state, routing and fault delivery. */
class Emulator implements GenesysEmulator {
  readonly url: string;
  readonly tokenUrl: string;
  readonly apiUrl: string;

  readonly #clock: Clock;
  readonly #organization: { id: string; name: string };
  readonly #revokeOnRegenerate: boolean;
  readonly #rateLimit: number | undefined;
  readonly #tokenType: string;
  readonly #clients = new Map<string, ClientRecord>();
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #tokenFaults: PendingFault[] = [];
  readonly #apiFaults: PendingFault[] = [];
  readonly #delays = new Set<PendingDelay>();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  #stats: EmulatorStats = emptyStats();
  #closing: Promise<void> | undefined;

  constructor(options: GenesysEmulatorOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#organization = { ...(options.organization ?? DEFAULT_ORGANIZATION) };
    this.#revokeOnRegenerate = options.revokeTokensOnRegenerate ?? false;
    this.#rateLimit = validRateLimit(options.apiRateLimitPerMinute);
    this.#tokenType = options.tokenType ?? "bearer";
    for (const client of options.clients ?? []) this.addClient(client);
    this.#server = Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      // The emulator must never write to the console, and Deno.serve announces
      // itself and logs handler errors unless told otherwise.
      onListen: () => {},
      onError: () =>
        genesysError(
          500,
          "internal.server.error",
          "Internal server error",
          crypto.randomUUID(),
        ),
    }, (request) => this.#handle(request));
    this.url = originOf(this.#server.addr);
    this.tokenUrl = `${this.url}/oauth/token`;
    this.apiUrl = this.url;
  }

  addClient(client: EmulatorClient): void {
    if (this.#clients.has(client.clientId)) {
      throw new Error(`OAuth client ${client.clientId} already exists`);
    }
    this.#clients.set(client.clientId, {
      id: client.clientId,
      name: client.name ?? client.clientId,
      secret: client.secret,
      lifetimeSeconds: validLifetime(client.tokenLifetimeSeconds),
      state: client.state ?? "active",
      permissions: [...(client.permissions ?? [])],
      dateCreated: new Date(this.#clock.now()).toISOString(),
    });
  }

  getClientSecret(clientId: string): string {
    return this.#client(clientId).secret;
  }

  regenerateSecret(clientId: string, newSecret?: string): string {
    const client = this.#client(clientId);
    client.secret = newSecret ?? randomBase64Url(32);
    this.#stats.secretRegenerations++;
    if (this.#revokeOnRegenerate) this.revokeTokensOf(clientId);
    return client.secret;
  }

  setClientState(clientId: string, state: "active" | "inactive"): void {
    this.#client(clientId).state = state;
  }

  issueToken(clientId: string): string {
    return this.#mint(this.#client(clientId), []);
  }

  revokeToken(token: string): void {
    const record = this.#tokens.get(token);
    if (record) record.revoked = true;
  }

  revokeTokensOf(clientId: string): void {
    for (const record of this.#tokens.values()) {
      if (record.clientId === clientId) record.revoked = true;
    }
  }

  injectTokenFaults(fault: EmulatorFault, count: number = 1): void {
    this.#tokenFaults.push(pendingFault(fault, count));
  }

  injectApiFaults(fault: EmulatorFault, count: number = 1): void {
    this.#apiFaults.push(pendingFault(fault, count));
  }

  clearFaults(): void {
    this.#tokenFaults.length = 0;
    this.#apiFaults.length = 0;
  }

  stats(): EmulatorStats {
    return {
      ...this.#stats,
      tokenRequestsByClient: { ...this.#stats.tokenRequestsByClient },
      apiRequestsByClient: { ...this.#stats.apiRequestsByClient },
    };
  }

  resetStats(): void {
    this.#stats = emptyStats();
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    // Held-back responses would keep shutdown() waiting and leave timers
    // behind, so they are released before the server stops.
    for (const delay of [...this.#delays]) delay.release();
    await this.#server.shutdown();
  }

  #client(clientId: string): ClientRecord {
    const client = this.#clients.get(clientId);
    if (!client) throw new Error(`Unknown OAuth client ${clientId}`);
    return client;
  }

  #mint(client: ClientRecord, scopes: readonly string[]): string {
    const token = randomBase64Url(48);
    const now = this.#clock.now();
    this.#tokens.set(token, {
      clientId: client.id,
      expiresAt: now + client.lifetimeSeconds * 1000,
      scopes,
      revoked: false,
      windowStart: now,
      windowCount: 0,
    });
    return token;
  }

  #handle(request: Request): Promise<Response> | Response {
    const path = new URL(request.url).pathname;
    if (path === "/oauth/token") return this.#deliver(request, "token");
    if (path === "/api/v2" || path.startsWith("/api/v2/")) {
      return this.#deliver(request, "api");
    }
    return notFound(crypto.randomUUID());
  }

  /** Counts the request, then answers it through the next pending fault, if any. */
  async #deliver(request: Request, target: "token" | "api"): Promise<Response> {
    const contextId = crypto.randomUUID();
    if (target === "token") this.#countTokenRequest(request);
    else this.#countApiRequest(request);
    const fault = takeFault(
      target === "token" ? this.#tokenFaults : this.#apiFaults,
    );
    const process = () =>
      target === "token"
        ? this.#handleToken(request)
        : this.#handleApi(request, contextId);
    const response = await this.#applyFault(
      fault,
      request,
      target,
      contextId,
      process,
    );
    this.#countOutcome(target, response.status);
    return response;
  }

  async #applyFault(
    fault: EmulatorFault | undefined,
    request: Request,
    target: "token" | "api",
    contextId: string,
    process: () => Promise<Response> | Response,
  ): Promise<Response> {
    switch (fault?.kind) {
      case undefined:
        return await process();
      case "status":
        return statusFaultResponse(
          fault,
          request,
          target,
          contextId,
          this.#clock.now(),
        );
      case "body":
        return bodyFaultResponse(fault, target, contextId);
      case "delay": {
        const response = await process();
        await this.#hold(fault.ms);
        return response;
      }
      case "reset":
        return resetResponse(await process());
    }
  }

  /**
   * Waits `ms` real milliseconds, or less if the server closes. A client that
   * gives up is not noticed (`request.signal` also fires on success in Deno
   * and warns on the console); close() releases whatever is still held.
   */
  #hold(ms: number): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(delay.timer);
        this.#delays.delete(delay);
        resolve();
      };
      const delay: PendingDelay = { timer: setTimeout(release, ms), release };
      this.#delays.add(delay);
    });
  }

  #countTokenRequest(request: Request): void {
    this.#stats.tokenRequests++;
    const clientId = parseBasicCredentials(request.headers.get("authorization"))
      ?.[0]?.id;
    if (clientId !== undefined) {
      increment(this.#stats.tokenRequestsByClient, clientId);
    }
  }

  #countApiRequest(request: Request): void {
    this.#stats.apiRequests++;
    const token = bearerToken(request.headers.get("authorization"));
    const clientId = token === undefined
      ? undefined
      : this.#tokens.get(token)?.clientId;
    if (clientId !== undefined) {
      increment(this.#stats.apiRequestsByClient, clientId);
    }
  }

  #countOutcome(target: "token" | "api", status: number): void {
    if (target === "token" && status >= 400) this.#stats.tokenFailures++;
    if (target === "api" && status === 401) this.#stats.apiUnauthorized++;
  }

  // ---- /oauth/token -------------------------------------------------------

  async #handleToken(request: Request): Promise<Response> {
    if (request.method !== "POST") {
      return oauthError(
        405,
        "invalid_request",
        `Method ${request.method} not allowed`,
        { allow: "POST" },
      );
    }
    const client = this.#authenticateClient(
      request.headers.get("authorization"),
    );
    if (!client) {
      return oauthError(401, "invalid_client", INVALID_CLIENT_DESCRIPTION, {
        "www-authenticate": 'Basic realm="oauth"',
      });
    }
    const form = await readForm(request);
    if (typeof form === "string") {
      return oauthError(400, "invalid_request", form);
    }
    const grantType = form.get("grant_type");
    if (grantType === null) {
      return oauthError(400, "invalid_request", "Missing grant type");
    }
    if (grantType !== "client_credentials") {
      return oauthError(
        400,
        "unsupported_grant_type",
        `Unsupported grant type: ${grantType}`,
      );
    }
    return this.#tokenSuccess(client, scopesOf(form));
  }

  /** The active client matching the Basic credentials, if any. */
  #authenticateClient(header: string | null): ClientRecord | undefined {
    for (const candidate of parseBasicCredentials(header) ?? []) {
      const client = this.#clients.get(candidate.id);
      if (
        client && client.state === "active" &&
        timingSafeEqual(client.secret, candidate.secret)
      ) {
        return client;
      }
    }
    return undefined;
  }

  #tokenSuccess(client: ClientRecord, scopes: readonly string[]): Response {
    const body = {
      access_token: this.#mint(client, scopes),
      token_type: this.#tokenType,
      expires_in: client.lifetimeSeconds,
    };
    return json(200, body, { "cache-control": "no-store", pragma: "no-cache" });
  }

  // ---- /api/v2/* ----------------------------------------------------------

  #handleApi(request: Request, contextId: string): Response {
    const route = matchRoute(new URL(request.url).pathname);
    if (!route) return notFound(contextId);
    const auth = this.#authenticateToken(request, contextId);
    if (auth instanceof Response) return auth;
    const limited = this.#applyRateLimit(auth);
    if (limited) return limited;
    return this.#route(route, auth);
  }

  /** Resolves the bearer token, or answers 401 the way Genesys does. */
  #authenticateToken(
    request: Request,
    contextId: string,
  ): ApiContext | Response {
    const token = bearerToken(request.headers.get("authorization"));
    if (token === undefined) {
      return genesysError(
        401,
        "authentication.required",
        "No authentication bearer token specified in authorization header.",
        contextId,
        {
          "www-authenticate": 'Bearer realm="genesys"',
        },
      );
    }
    const record = this.#tokens.get(token);
    const expired = record !== undefined && !record.revoked &&
      this.#clock.now() >= record.expiresAt;
    if (expired) this.#stats.expiredTokenUses++;
    if (!record || record.revoked || expired) {
      return genesysError(
        401,
        "bad.credentials",
        "Invalid login credentials.",
        contextId,
        {
          "www-authenticate": 'Bearer realm="genesys", error="invalid_token"',
        },
      );
    }
    return { request, token, record, contextId, headers: new Headers() };
  }

  /** Counts the request in the token's window; answers 429 past the limit. */
  #applyRateLimit(context: ApiContext): Response | undefined {
    const { record, headers } = context;
    const now = this.#clock.now();
    if (
      now >= record.windowStart + RATE_WINDOW_MS || now < record.windowStart
    ) {
      record.windowStart = now;
      record.windowCount = 0;
    }
    record.windowCount++;
    const resetSeconds = Math.max(
      1,
      Math.ceil((record.windowStart + RATE_WINDOW_MS - now) / 1000),
    );
    headers.set(
      "inin-ratelimit-allowed",
      String(this.#rateLimit ?? UNLIMITED_ADVERTISED),
    );
    headers.set("inin-ratelimit-count", String(record.windowCount));
    headers.set("inin-ratelimit-reset", String(resetSeconds));
    if (
      this.#rateLimit === undefined || record.windowCount <= this.#rateLimit
    ) return undefined;
    return rateLimited(resetSeconds, context.contextId, {
      "retry-after": String(resetSeconds),
    });
  }

  #route(route: ApiRoute, context: ApiContext): Response {
    const method = context.request.method;
    switch (route.kind) {
      case "tokensMe":
        if (method === "GET" || method === "HEAD") {
          return this.#tokensMe(context, method === "HEAD");
        }
        if (method === "DELETE") return this.#revokeSelf(context);
        return methodNotAllowed(context, "GET, HEAD, DELETE");
      case "clients":
        if (method === "GET") return this.#listClients(context);
        return methodNotAllowed(context, "GET");
      case "client":
        if (method === "GET") return this.#getClient(context, route.id);
        return methodNotAllowed(context, "GET");
      case "clientSecret":
        if (method === "POST") return this.#regenerateViaApi(context, route.id);
        return methodNotAllowed(context, "POST");
    }
  }

  #tokensMe(context: ApiContext, head: boolean): Response {
    const client = this.#clients.get(context.record.clientId);
    const organization = {
      ...this.#organization,
      selfUri: `/api/v2/organizations/${this.#organization.id}`,
    };
    const body = {
      organization,
      homeOrganization: organization,
      OAuthClient: {
        id: context.record.clientId,
        name: client?.name ?? context.record.clientId,
        organization: { id: this.#organization.id },
        selfUri: `/api/v2/oauth/clients/${
          encodeURIComponent(context.record.clientId)
        }`,
      },
      authorizedScope: [...context.record.scopes],
    };
    return apiResponse(context, 200, head ? null : body);
  }

  #revokeSelf(context: ApiContext): Response {
    this.revokeToken(context.token);
    return apiResponse(context, 204, null);
  }

  #listClients(context: ApiContext): Response {
    const denied = this.#requirePermission(context, [
      "oauth:client:view",
      "oauth:client:edit",
    ]);
    if (denied) return denied;
    const entities = [...this.#clients.values()].map(publicClient);
    return apiResponse(context, 200, {
      entities,
      selfUri: "/api/v2/oauth/clients",
    });
  }

  #getClient(context: ApiContext, clientId: string): Response {
    const denied = this.#requirePermission(context, [
      "oauth:client:view",
      "oauth:client:edit",
    ]);
    if (denied) return denied;
    const client = this.#clients.get(clientId);
    if (!client) return clientNotFound(context, clientId);
    return apiResponse(context, 200, publicClient(client));
  }

  #regenerateViaApi(context: ApiContext, clientId: string): Response {
    const denied = this.#requirePermission(context, ["oauth:client:edit"]);
    if (denied) return denied;
    const client = this.#clients.get(clientId);
    if (!client) return clientNotFound(context, clientId);
    this.regenerateSecret(clientId);
    return apiResponse(context, 200, {
      ...publicClient(client),
      secret: client.secret,
    });
  }

  /** Answers 403 unless the token's client holds one of `anyOf`. */
  #requirePermission(
    context: ApiContext,
    anyOf: readonly string[],
  ): Response | undefined {
    const granted = this.#clients.get(context.record.clientId)?.permissions ??
      [];
    if (
      anyOf.some((needed) =>
        granted.some((perm) => permissionMatches(perm, needed))
      )
    ) {
      return undefined;
    }
    const message =
      `Unable to perform the requested action. You are missing the following permission(s): [${
        anyOf.join(", ")
      }]`;
    return genesysError(
      403,
      "missing.any.permissions",
      message,
      context.contextId,
      context.headers,
    );
  }
}

// ---- Faults -----------------------------------------------------------------

function pendingFault(fault: EmulatorFault, count: number): PendingFault {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(
      `Fault count must be a positive integer, got ${count}`,
    );
  }
  validateFault(fault);
  return { fault, remaining: count };
}

function validateFault(fault: EmulatorFault): void {
  const status = fault.kind === "status"
    ? fault.status
    : fault.kind === "body"
    ? fault.status ?? 200
    : 200;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError(
      `Fault status must be an integer from 200 to 599, got ${status}`,
    );
  }
  if (fault.kind === "delay" && !(fault.ms >= 0 && Number.isFinite(fault.ms))) {
    throw new RangeError(
      `Fault delay must be a finite number of ms >= 0, got ${fault.ms}`,
    );
  }
}

/** Takes one delivery from the head of a FIFO fault queue. */
function takeFault(queue: PendingFault[]): EmulatorFault | undefined {
  const head = queue[0];
  if (!head) return undefined;
  head.remaining--;
  if (head.remaining === 0) queue.shift();
  return head.fault;
}

function statusFaultResponse(
  fault: Extract<EmulatorFault, { kind: "status" }>,
  request: Request,
  target: "token" | "api",
  contextId: string,
  now: number,
): Response {
  const headers = new Headers();
  const retryAfter = fault.retryAfter ??
    (target === "api" && fault.status === 429 ? "1" : undefined);
  if (retryAfter) headers.set("retry-after", retryAfter);
  if (target === "api") headers.set("inin-correlation-id", contextId);
  const waitSeconds = retryAfter
    ? retryAfterSeconds(retryAfter, now)
    : undefined;
  const contentType = fault.contentType ?? "application/json";
  const body = fault.body ??
    defaultFaultBody(fault.status, target, contentType, contextId, waitSeconds);
  headers.set("content-type", contentType);
  for (const [name, value] of Object.entries(fault.headers ?? {})) {
    headers.set(name, value);
  }
  const withoutBody = request.method === "HEAD" ||
    NULL_BODY_STATUSES.has(fault.status);
  return new Response(withoutBody ? null : body, {
    status: fault.status,
    headers,
  });
}

function bodyFaultResponse(
  fault: Extract<EmulatorFault, { kind: "body" }>,
  target: "token" | "api",
  contextId: string,
): Response {
  const status = fault.status ?? 200;
  const headers = new Headers({
    "content-type": fault.contentType ?? "application/json",
  });
  if (target === "api") headers.set("inin-correlation-id", contextId);
  return new Response(NULL_BODY_STATUSES.has(status) ? null : fault.body, {
    status,
    headers,
  });
}

/** A plausible body for an injected status with none given. */
function defaultFaultBody(
  status: number,
  target: "token" | "api",
  contentType: string,
  contextId: string,
  waitSeconds: number | undefined,
): string {
  const reason = STATUS_TEXT[status] ?? "Error";
  if (contentType.toLowerCase().startsWith("text/html")) {
    return `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n</body>\r\n</html>\r\n`;
  }
  if (!contentType.toLowerCase().includes("json")) return `${status} ${reason}`;
  if (target === "token") {
    return JSON.stringify(
      oauthErrorBody(...oauthFaultError(status, waitSeconds)),
    );
  }
  if (status === 429) {
    return JSON.stringify(rateLimitBody(waitSeconds ?? 1, contextId));
  }
  return JSON.stringify(
    genesysErrorBody(
      status,
      GENESYS_CODES[status] ?? "error",
      reason,
      contextId,
    ),
  );
}

/** The OAuth `error` code and description for an injected token-endpoint status. */
function oauthFaultError(
  status: number,
  waitSeconds: number | undefined,
): [string, string] {
  if (status === 429) {
    const retry = waitSeconds === undefined
      ? ""
      : ` Retry the request in [${waitSeconds}] seconds`;
    return ["too_many_requests", `Rate limit exceeded the maximum.${retry}`];
  }
  if (status === 401) return ["invalid_client", INVALID_CLIENT_DESCRIPTION];
  if (status === 503) return ["temporarily_unavailable", STATUS_TEXT[503]];
  if (status >= 500) {
    return ["server_error", STATUS_TEXT[status] ?? "Server error"];
  }
  return ["invalid_request", STATUS_TEXT[status] ?? "Invalid request"];
}

/**
 * Replaces a response's body with one that sends its first half and then
 * fails, so the connection dies after the headers.
 */
async function resetResponse(response: Response): Promise<Response> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const partial = bytes.length > 1
    ? bytes.slice(0, Math.ceil(bytes.length / 2))
    : new TextEncoder().encode("{");
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(partial);
    },
    pull(controller) {
      controller.error(new Error("connection reset by the Genesys emulator"));
    },
  });
  return new Response(body, { status: response.status, headers });
}

/** Seconds to wait for a `Retry-After` value: delta-seconds or an HTTP date. */
function retryAfterSeconds(value: string, now: number): number {
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) {
    return Math.max(0, Math.ceil(seconds));
  }
  const date = Date.parse(value);
  if (Number.isNaN(date)) return 1;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

// ---- Responses --------------------------------------------------------------

function json(status: number, body: unknown, headers?: HeadersInit): Response {
  const all = new Headers(headers);
  all.set("content-type", "application/json");
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: all,
  });
}

/** An authenticated API response with the rate-limit and correlation headers. */
function apiResponse(
  context: ApiContext,
  status: number,
  body: unknown,
): Response {
  const headers = new Headers(context.headers);
  headers.set("inin-correlation-id", context.contextId);
  return json(status, body, headers);
}

function genesysErrorBody(
  status: number,
  code: string,
  message: string,
  contextId: string,
) {
  return { message, code, status, contextId, details: [], errors: [] };
}

function genesysError(
  status: number,
  code: string,
  message: string,
  contextId: string,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("inin-correlation-id", contextId);
  return json(status, genesysErrorBody(status, code, message, contextId), all);
}

function rateLimitBody(seconds: number, contextId: string) {
  const message =
    `Rate limit exceeded the maximum. Retry the request in [${seconds}] seconds`;
  return genesysErrorBody(
    429,
    "too.many.requests.retry.after",
    message,
    contextId,
  );
}

function rateLimited(
  seconds: number,
  contextId: string,
  headers: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("inin-correlation-id", contextId);
  return json(429, rateLimitBody(seconds, contextId), all);
}

function notFound(contextId: string): Response {
  return genesysError(
    404,
    "not.found",
    "The requested resource was not found.",
    contextId,
  );
}

function clientNotFound(context: ApiContext, clientId: string): Response {
  const message = `Unable to find an OAuth client with ID ${clientId}`;
  return genesysError(
    404,
    "not.found",
    message,
    context.contextId,
    context.headers,
  );
}

function methodNotAllowed(context: ApiContext, allow: string): Response {
  const headers = new Headers(context.headers);
  headers.set("allow", allow);
  const message =
    `HTTP method ${context.request.method} is not supported by this resource.`;
  return genesysError(
    405,
    "method.not.allowed",
    message,
    context.contextId,
    headers,
  );
}

function oauthErrorBody(error: string, description: string) {
  return { error, description, error_description: description };
}

function oauthError(
  status: number,
  error: string,
  description: string,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("cache-control", "no-store");
  return json(status, oauthErrorBody(error, description), all);
}

/** The client as Genesys returns it from GET: never with the secret. */
function publicClient(client: ClientRecord) {
  return {
    id: client.id,
    name: client.name,
    accessTokenValiditySeconds: client.lifetimeSeconds,
    authorizedGrantType: "CLIENT-CREDENTIALS",
    state: client.state,
    dateCreated: client.dateCreated,
    selfUri: `/api/v2/oauth/clients/${encodeURIComponent(client.id)}`,
  };
}

// ---- Parsing ----------------------------------------------------------------

interface Credentials {
  readonly id: string;
  readonly secret: string;
}

/**
 * Candidate credentials from a Basic header: the URL-decoded pair first (as
 * RFC 6749 asks), then the raw pair, since many clients do not encode.
 */
function parseBasicCredentials(
  header: string | null,
): Credentials[] | undefined {
  const match = header?.match(/^\s*basic\s+(\S+)\s*$/i);
  if (!match) return undefined;
  const decoded = decodeBase64Utf8(match[1]);
  if (decoded === undefined) return undefined;
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  const raw = { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
  const unescaped = {
    id: safeDecodeURIComponent(raw.id),
    secret: safeDecodeURIComponent(raw.secret),
  };
  const same = unescaped.id === raw.id && unescaped.secret === raw.secret;
  return same ? [raw] : [unescaped, raw];
}

function decodeBase64Utf8(text: string): string | undefined {
  try {
    const binary = atob(text);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function safeDecodeURIComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function bearerToken(header: string | null): string | undefined {
  return header?.match(/^\s*bearer\s+(\S+)\s*$/i)?.[1];
}

/** The form body, or why the request is not a valid form post. */
async function readForm(request: Request): Promise<URLSearchParams | string> {
  const contentType = request.headers.get("content-type") ?? "";
  if (
    contentType.split(";")[0].trim().toLowerCase() !==
      "application/x-www-form-urlencoded"
  ) {
    return "Content-Type must be application/x-www-form-urlencoded";
  }
  let text: string;
  try {
    text = await request.text();
  } catch {
    return "Unreadable request body";
  }
  if (text.trim() === "") return "Missing request body";
  return new URLSearchParams(text);
}

function scopesOf(form: URLSearchParams): string[] {
  return (form.get("scope") ?? "").split(/\s+/).filter((scope) => scope !== "");
}

function matchRoute(path: string): ApiRoute | undefined {
  const trimmed = path.length > 1 && path.endsWith("/")
    ? path.slice(0, -1)
    : path;
  if (trimmed === "/api/v2/tokens/me") return { kind: "tokensMe" };
  if (trimmed === "/api/v2/oauth/clients") return { kind: "clients" };
  const secret = trimmed.match(/^\/api\/v2\/oauth\/clients\/([^/]+)\/secret$/);
  if (secret) {
    return { kind: "clientSecret", id: safeDecodeURIComponent(secret[1]) };
  }
  const client = trimmed.match(/^\/api\/v2\/oauth\/clients\/([^/]+)$/);
  if (client) return { kind: "client", id: safeDecodeURIComponent(client[1]) };
  return undefined;
}

/** Genesys permissions are `domain:entity:action`; `*` matches one segment. */
function permissionMatches(granted: string, needed: string): boolean {
  const have = granted.split(":");
  const want = needed.split(":");
  return have.length === want.length &&
    have.every((part, i) => part === "*" || part === want[i]);
}

// ---- Small helpers ----------------------------------------------------------

function emptyStats(): EmulatorStats {
  return {
    tokenRequests: 0,
    tokenRequestsByClient: {},
    tokenFailures: 0,
    apiRequests: 0,
    apiRequestsByClient: {},
    apiUnauthorized: 0,
    expiredTokenUses: 0,
    secretRegenerations: 0,
  };
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function randomBase64Url(byteLength: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(byteLength));
  const binary = String.fromCharCode(...bytes);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/** Compares secrets without an early exit, as a real server would. */
function timingSafeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return diff === 0;
}

function originOf(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":")
    ? `[${addr.hostname}]`
    : addr.hostname;
  return `http://${host}:${addr.port}`;
}

function validLifetime(seconds: number | undefined): number {
  const value = seconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS;
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(
      `tokenLifetimeSeconds must be a positive number, got ${value}`,
    );
  }
  return value;
}

function validRateLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(
      `apiRateLimitPerMinute must be a positive integer, got ${limit}`,
    );
  }
  return limit;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const GENESYS_CODES: Readonly<Record<number, string>> = {
  400: "bad.request",
  401: "bad.credentials",
  403: "forbidden",
  404: "not.found",
  405: "method.not.allowed",
  408: "request.timeout",
  409: "conflict",
  500: "internal.server.error",
  502: "bad.gateway",
  503: "service.unavailable",
  504: "gateway.timeout",
};
