/**
 * A local stand-in for Genesys Cloud: the client-credentials token endpoint,
 * `/api/v2/tokens/me` and the OAuth client administration API (list, read,
 * create, update, delete, regenerate the secret, usage queries), with fault
 * injection, the per-token API limit and the per-client token-creation limit,
 * and request statistics. Its answers follow the models of Genesys's official
 * JavaScript SDK (`purecloud-platform-client-v2`), which a test drives it with.
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

import type {
  ApiContext,
  ApiRoute,
  ClientRecord,
  EmulatorClient,
  EmulatorClientState,
  EmulatorFault,
  EmulatorRole,
  EmulatorStats,
  GenesysEmulator,
  GenesysEmulatorOptions,
  PendingDelay,
  PendingFault,
  TokenRecord,
  TokenWindow,
} from "./emulator_types.ts";
import {
  DEFAULT_HOME_DIVISION_ID,
  DEFAULT_ORGANIZATION,
  INVALID_CLIENT_DESCRIPTION,
  RATE_WINDOW_MS,
  UNLIMITED_ADVERTISED,
} from "./emulator_types.ts";
import {
  bodyFaultResponse,
  pendingFault,
  resetResponse,
  statusFaultResponse,
  takeFault,
} from "./emulator_faults.ts";
import {
  apiResponse,
  badRequest,
  clientNotFound,
  genesysError,
  json,
  methodNotAllowed,
  notFound,
  oauthError,
  publicClient,
  rateLimited,
  tokenRateLimited,
} from "./emulator_responses.ts";
import {
  bearerToken,
  matchRoute,
  parseBasicCredentials,
  permissionMatches,
  readForm,
  readJson,
  scopesOf,
  templateUriOf,
} from "./emulator_parsing.ts";
import {
  emptyStats,
  increment,
  randomBase64Url,
  timingSafeEqual,
  validLifetime,
  validLimitStatus,
  validPolls,
  validRateLimit,
} from "./emulator_helpers.ts";
import { type LocalServer, serveLocally } from "./http_server.ts";
import {
  notHeld,
  readClientRequest,
  ROLE_NOT_HELD_CODE,
  roleNotHeldMessage,
} from "./emulator_admin.ts";
import { readUsageQuery, summaryQuery, UsageLog } from "./emulator_usage.ts";

// Re-exported so the public options type refers to a documented type.
export type { Clock, TimerHandle } from "../clock.ts";
export type {
  EmulatorClient,
  EmulatorClientState,
  EmulatorFault,
  EmulatorRole,
  EmulatorRoleDivision,
  EmulatorStats,
  GenesysEmulator,
  GenesysEmulatorOptions,
} from "./emulator_types.ts";

/**
 * Starts an emulator listening on `127.0.0.1` and a free port (by default).
 *
 * @param options Clients, clock, listening address and behaviour switches;
 *   all optional (no clients, the system clock, `127.0.0.1`, a free port).
 * @returns The running emulator; close it when done.
 *
 * @example Get a token and look at it
 * ```ts
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
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
  options?: GenesysEmulatorOptions,
): GenesysEmulator {
  return new Emulator(options ?? {});
}

/** The emulator: server lifecycle, state, routing and fault delivery. */
class Emulator implements GenesysEmulator {
  readonly ready: Promise<void>;

  readonly #clock: Clock;
  readonly #organization: { id: string; name: string };
  readonly #revokeOnRegenerate: boolean;
  readonly #rateLimit: number | undefined;
  readonly #tokenRateLimit: number | undefined;
  readonly #tokenRateLimitStatus: 400 | 429;
  readonly #homeDivisionId: string;
  readonly #tokenType: string;
  readonly #tokenWindows = new Map<string, TokenWindow>();
  readonly #usage: UsageLog;
  readonly #clients = new Map<string, ClientRecord>();
  readonly #roles = new Map<string, EmulatorRole>();
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #tokenFaults: PendingFault[] = [];
  readonly #apiFaults: PendingFault[] = [];
  readonly #delays = new Set<PendingDelay>();
  readonly #server: LocalServer;
  #stats: EmulatorStats = emptyStats();
  #closing: Promise<void> | undefined;

  constructor(options: GenesysEmulatorOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#organization = { ...(options.organization ?? DEFAULT_ORGANIZATION) };
    this.#revokeOnRegenerate = options.revokeTokensOnRegenerate ?? false;
    this.#rateLimit = validRateLimit(
      options.apiRateLimitPerMinute,
      "apiRateLimitPerMinute",
    );
    this.#tokenRateLimit = validRateLimit(
      options.tokenRateLimitPerMinute,
      "tokenRateLimitPerMinute",
    );
    this.#tokenRateLimitStatus = validLimitStatus(options.tokenRateLimitStatus);
    this.#homeDivisionId = options.homeDivisionId ?? DEFAULT_HOME_DIVISION_ID;
    this.#usage = new UsageLog(validPolls(options.usageQueryRunningPolls));
    this.#tokenType = options.tokenType ?? "bearer";
    for (const role of options.roles ?? []) {
      if (this.#roles.has(role.id)) {
        throw new Error(`Role ${role.id} is listed twice`);
      }
      this.#roles.set(role.id, { ...role });
    }
    for (const client of options.clients ?? []) this.addClient(client);
    this.#server = serveLocally({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      onError: () =>
        genesysError(
          500,
          "internal.server.error",
          "Internal server error",
          crypto.randomUUID(),
        ),
    }, (request) => this.#handle(request));
    this.ready = this.#server.listening.then(() => {});
  }

  get url(): string {
    const origin = this.#server.origin();
    if (origin === undefined) {
      throw new Error(
        "The Genesys emulator is still starting: await emulator.ready before reading its URL (needed on Node)",
      );
    }
    return origin;
  }

  get tokenUrl(): string {
    return `${this.url}/oauth/token`;
  }

  get apiUrl(): string {
    return this.url;
  }

  addClient(client: EmulatorClient): void {
    if (this.#clients.has(client.clientId)) {
      throw new Error(`OAuth client ${client.clientId} already exists`);
    }
    for (const pair of client.roleDivisions ?? []) {
      if (!this.#roles.has(pair.roleId)) {
        throw new Error(
          `OAuth client ${client.clientId} holds role ${pair.roleId}, which is not among the emulator's roles`,
        );
      }
    }
    const now = new Date(this.#clock.now()).toISOString();
    this.#clients.set(client.clientId, {
      id: client.clientId,
      name: client.name ?? client.clientId,
      secret: client.secret,
      lifetimeSeconds: validLifetime(client.tokenLifetimeSeconds),
      state: client.state ?? "active",
      permissions: [...(client.permissions ?? [])],
      roleDivisions: (client.roleDivisions ?? []).map((pair) => ({
        roleId: pair.roleId,
        divisionId: pair.divisionId,
      })),
      description: client.description,
      dateCreated: now,
      dateModified: now,
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

  setClientState(
    clientId: string,
    state: EmulatorClientState,
    options: { readonly revokeTokens?: boolean } = {},
  ): void {
    this.#client(clientId).state = state;
    if (options.revokeTokens ?? state === "disabled") {
      this.revokeTokensOf(clientId);
    }
  }

  getClientState(clientId: string): EmulatorClientState {
    return this.#client(clientId).state;
  }

  clientIds(): string[] {
    return [...this.#clients.keys()];
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
    const waitSeconds = this.#takeTokenSlot(client.id);
    if (waitSeconds !== undefined) {
      return tokenRateLimited(
        this.#tokenRateLimit ?? 0,
        this.#tokenRateLimitStatus,
        waitSeconds,
      );
    }
    return this.#tokenSuccess(client, scopesOf(form));
  }

  /**
   * Counts one token creation in the client's one-minute window; once the
   * window is full (`client.credentials.token.rate.per.minute`), the seconds
   * until it ends instead.
   */
  #takeTokenSlot(clientId: string): number | undefined {
    if (this.#tokenRateLimit === undefined) return undefined;
    const now = this.#clock.now();
    let window = this.#tokenWindows.get(clientId);
    if (
      !window || now >= window.start + RATE_WINDOW_MS || now < window.start
    ) {
      window = { start: now, count: 0 };
      this.#tokenWindows.set(clientId, window);
    }
    if (window.count >= this.#tokenRateLimit) {
      return Math.max(
        1,
        Math.ceil((window.start + RATE_WINDOW_MS - now) / 1000),
      );
    }
    window.count++;
    return undefined;
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

  async #handleApi(
    request: Request,
    contextId: string,
  ): Promise<Response> {
    const route = matchRoute(new URL(request.url).pathname);
    if (!route) return notFound(contextId);
    const auth = this.#authenticateToken(request, contextId);
    if (auth instanceof Response) return auth;
    const response = this.#applyRateLimit(auth) ??
      await this.#route(route, auth);
    // Counted when answered, on the day the emulator's clock says.
    this.#usage.record(
      auth.record.clientId,
      this.#clock.now(),
      request.method,
      templateUriOf(route),
      response.status,
    );
    return response;
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

  #route(route: ApiRoute, context: ApiContext): Response | Promise<Response> {
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
        if (method === "POST") return this.#createClient(context);
        return methodNotAllowed(context, "GET, POST");
      case "client":
        if (method === "GET") return this.#getClient(context, route.id);
        if (method === "PUT") return this.#updateClient(context, route.id);
        if (method === "DELETE") return this.#deleteClient(context, route.id);
        return methodNotAllowed(context, "GET, PUT, DELETE");
      case "clientSecret":
        if (method === "POST") return this.#regenerateViaApi(context, route.id);
        return methodNotAllowed(context, "POST");
      case "usageQuery":
        if (method === "POST") return this.#queryUsage(context, route.id);
        return methodNotAllowed(context, "POST");
      case "usageSummary":
        if (method === "GET") return this.#summarizeUsage(context, route.id);
        return methodNotAllowed(context, "GET");
      case "usageResults":
        if (method === "GET") {
          return this.#usageResults(context, route.id, route.executionId);
        }
        return methodNotAllowed(context, "GET");
    }
  }

  #tokensMe(context: ApiContext, head: boolean): Response {
    const client = this.#clients.get(context.record.clientId);
    // A NamedEntity in the SDK's TokenInfo: id and name only.
    const organization = { ...this.#organization };
    const body = {
      organization,
      homeOrganization: organization,
      // Genesys's OrgOAuthClient: name and authorizedGrantType are required;
      // unlike OAuthClient it has no selfUri.
      OAuthClient: {
        id: context.record.clientId,
        name: client?.name ?? context.record.clientId,
        ...(client === undefined ? {} : {
          dateCreated: client.dateCreated,
          dateModified: client.dateModified,
        }),
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleDivisions: (client?.roleDivisions ?? []).map((pair) => ({
          ...pair,
        })),
        state: client?.state ?? "active",
        organization: { id: this.#organization.id },
      },
      authorizedScope: [...context.record.scopes],
    };
    return apiResponse(context, 200, head ? null : body);
  }

  #revokeSelf(context: ApiContext): Response {
    this.revokeToken(context.token);
    return apiResponse(context, 204, null);
  }

  /**
   * `GET /api/v2/oauth/clients`: an entity listing. The SDK passes no paging
   * parameters to it, so by default every client is on page 1; `pageSize`
   * and `pageNumber` are honoured when given.
   */
  #listClients(context: ApiContext): Response {
    const denied = this.#requirePermission(context, ["oauth:client:view"]);
    if (denied) return denied;
    const all = [...this.#clients.values()];
    const query = new URL(context.request.url).searchParams;
    const pageSize = readPageParameter(
      query.get("pageSize"),
      Math.max(all.length, 1),
    );
    const pageNumber = readPageParameter(query.get("pageNumber"), 1);
    if (pageSize === undefined || pageNumber === undefined) {
      return badRequest(
        context,
        "pageSize and pageNumber must be whole numbers of at least 1.",
      );
    }
    const pageCount = Math.ceil(all.length / pageSize);
    const start = (pageNumber - 1) * pageSize;
    const page = (n: number) =>
      `/api/v2/oauth/clients?pageSize=${pageSize}&pageNumber=${n}`;
    return apiResponse(context, 200, {
      entities: all.slice(start, start + pageSize).map(publicClient),
      pageSize,
      pageNumber,
      total: all.length,
      firstUri: page(1),
      selfUri: page(pageNumber),
      lastUri: page(Math.max(pageCount, 1)),
      ...(pageNumber < pageCount ? { nextUri: page(pageNumber + 1) } : {}),
      ...(pageNumber > 1 ? { previousUri: page(pageNumber - 1) } : {}),
      pageCount,
    });
  }

  #getClient(context: ApiContext, clientId: string): Response {
    const denied = this.#requirePermission(context, ["oauth:client:view"]);
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

  /**
   * `POST /api/v2/oauth/clients`: creates a client from an
   * `OAuthClientRequest`; its secret is in this response only.
   */
  async #createClient(context: ApiContext): Promise<Response> {
    const denied = this.#requirePermission(context, ["oauth:client:add"]);
    if (denied) return denied;
    const request = readClientRequest(
      await readJson(context.request),
      this.#roles,
      this.#homeDivisionId,
    );
    if (typeof request === "string") return badRequest(context, request);
    const refused = this.#refuseRolesNotHeld(context, request.roleDivisions);
    if (refused) return refused;
    const id = crypto.randomUUID();
    this.addClient({
      clientId: id,
      secret: randomBase64Url(32),
      name: request.name,
      description: request.description,
      tokenLifetimeSeconds: request.lifetimeSeconds,
      state: request.state,
      roleDivisions: request.roleDivisions,
    });
    const client = this.#client(id);
    return apiResponse(context, 200, {
      ...publicClient(client),
      secret: client.secret,
    });
  }

  /**
   * `PUT /api/v2/oauth/clients/{id}`: replaces the client's settings. A state
   * other than `active` invalidates every token the client holds, as
   * Genesys's OAuthClient model says of disabled clients; re-activating it
   * allows new tokens, never the old ones.
   */
  async #updateClient(
    context: ApiContext,
    clientId: string,
  ): Promise<Response> {
    const denied = this.#requirePermission(context, ["oauth:client:edit"]);
    if (denied) return denied;
    const client = this.#clients.get(clientId);
    if (!client) return clientNotFound(context, clientId);
    const request = readClientRequest(
      await readJson(context.request),
      this.#roles,
      this.#homeDivisionId,
    );
    if (typeof request === "string") return badRequest(context, request);
    const added = notHeld(client.roleDivisions, request.roleDivisions);
    const refused = this.#refuseRolesNotHeld(context, added);
    if (refused) return refused;
    client.name = request.name;
    client.description = request.description;
    client.lifetimeSeconds = request.lifetimeSeconds;
    client.roleDivisions = request.roleDivisions;
    client.dateModified = new Date(this.#clock.now()).toISOString();
    this.setClientState(clientId, request.state, {
      revokeTokens: request.state !== "active",
    });
    return apiResponse(context, 200, publicClient(client));
  }

  /**
   * `DELETE /api/v2/oauth/clients/{id}`: the client and every token it holds
   * are gone; its id is unknown from then on.
   */
  #deleteClient(context: ApiContext, clientId: string): Response {
    const denied = this.#requirePermission(context, ["oauth:client:delete"]);
    if (denied) return denied;
    if (!this.#clients.has(clientId)) return clientNotFound(context, clientId);
    this.revokeTokensOf(clientId);
    this.#clients.delete(clientId);
    this.#tokenWindows.delete(clientId);
    return apiResponse(context, 204, null);
  }

  /** `POST .../usage/query`: runs the query and answers its execution id. */
  async #queryUsage(
    context: ApiContext,
    clientId: string,
  ): Promise<Response> {
    const denied = this.#requireUsageView(context, clientId);
    if (denied) return denied;
    const query = readUsageQuery(await readJson(context.request));
    if (typeof query === "string") return badRequest(context, query);
    return this.#startUsageExecution(context, clientId, query);
  }

  /** `GET .../usage/summary?days=N`: the last N whole days, by route. */
  #summarizeUsage(context: ApiContext, clientId: string): Response {
    const denied = this.#requireUsageView(context, clientId);
    if (denied) return denied;
    const days = new URL(context.request.url).searchParams.get("days");
    const query = summaryQuery(days, this.#clock.now());
    if (typeof query === "string") return badRequest(context, query);
    return this.#startUsageExecution(context, clientId, query);
  }

  #startUsageExecution(
    context: ApiContext,
    clientId: string,
    query: Exclude<ReturnType<typeof readUsageQuery>, string>,
  ): Response {
    const client = this.#client(clientId);
    const executionId = this.#usage.execute(
      {
        clientId,
        clientName: client.name,
        organizationId: this.#organization.id,
      },
      query,
      this.#clock.now(),
    );
    return apiResponse(context, 202, {
      executionId,
      resultsUri: `/api/v2/oauth/clients/${
        encodeURIComponent(clientId)
      }/usage/query/results/${executionId}`,
    });
  }

  /** `GET .../usage/query/results/{executionId}`: `Running`, then the rows. */
  #usageResults(
    context: ApiContext,
    clientId: string,
    executionId: string,
  ): Response {
    const denied = this.#requireUsageView(context, clientId);
    if (denied) return denied;
    const results = this.#usage.results(clientId, executionId);
    if (!results) {
      return genesysError(
        404,
        "not.found",
        `Unable to find a usage query execution ${executionId} of OAuth client ${clientId}`,
        context.contextId,
        context.headers,
      );
    }
    return apiResponse(context, 200, results);
  }

  /** The usage endpoints need either permission, and an existing client. */
  #requireUsageView(
    context: ApiContext,
    clientId: string,
  ): Response | undefined {
    return this.#requirePermission(context, [
      "oauth:client:view",
      "usage:client:view",
    ]) ?? (this.#clients.has(clientId)
      ? undefined
      : clientNotFound(context, clientId));
  }

  /** Answers 403 when the caller grants a role-division pair it does not hold. */
  #refuseRolesNotHeld(
    context: ApiContext,
    wanted: ClientRecord["roleDivisions"],
  ): Response | undefined {
    const held = this.#clients.get(context.record.clientId)?.roleDivisions ??
      [];
    const missing = notHeld(held, wanted);
    if (missing.length === 0) return undefined;
    return genesysError(
      403,
      ROLE_NOT_HELD_CODE,
      roleNotHeldMessage(missing, this.#roles),
      context.contextId,
      context.headers,
    );
  }

  /** The client's own permissions and those of the roles it holds. */
  #permissionsOf(clientId: string): readonly string[] {
    const client = this.#clients.get(clientId);
    if (!client) return [];
    return [
      ...client.permissions,
      ...client.roleDivisions.flatMap((pair) =>
        this.#roles.get(pair.roleId)?.permissions ?? []
      ),
    ];
  }

  /** Answers 403 unless the token's client holds one of `anyOf`. */
  #requirePermission(
    context: ApiContext,
    anyOf: readonly string[],
  ): Response | undefined {
    const granted = this.#permissionsOf(context.record.clientId);
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

/** A paging parameter: its default when absent, `undefined` when invalid. */
function readPageParameter(
  value: string | null,
  fallback: number,
): number | undefined {
  if (value === null) return fallback;
  const number = Number(value);
  return Number.isInteger(number) && number >= 1 ? number : undefined;
}
