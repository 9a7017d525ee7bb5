/**
 * A local stand-in for an Auth0 tenant: the client-credentials token endpoint
 * (`/oauth/token`, form or JSON, `audience` required, client grants and
 * scopes, `access_denied` refusals, rate-limit answers) and the Management
 * API v2 calls that handle a client's one secret (`rotate-secret`, reading
 * and setting it), with its scopes and error envelope. One HTTP server plays
 * the tenant's domain; time reads only the injected clock.
 *
 * Auth0 gives a client one secret and rotating it kills the old one at once,
 * so zero downtime needs twin clients. What Auth0 leaves open is a switch:
 * how long a new secret takes to work (Auth0 says up to thirty seconds;
 * `propagationDelayMs`) and whether rotating revokes the tokens got with
 * the old secret (`revokeTokensWithSecret`). `throttleTokenRequests`
 * answers as the token rate limit does (429 `too_many_requests`).
 *
 * @module
 */
import { randomBase64Url, timingSafeEqual } from "../emulator_helpers.ts";
import {
  bearerToken,
  parseBasicCredentials,
  safeDecodeURIComponent,
} from "../emulator_parsing.ts";
import { json } from "../emulator_responses.ts";
import {
  FaultInjectingProviderEmulator,
  FixedWindow,
  noStore,
  type ProviderEmulator,
  type ProviderEmulatorOptions,
  type ProviderRoutes,
  type RateDecision,
  type RateLimit,
  readText,
  type TokenFaultInjection,
} from "./common.ts";

/** How a client authenticates at the token endpoint. */
export type Auth0TokenEndpointAuthMethod =
  | "client_secret_post"
  | "client_secret_basic";

/** A client grant: the client may get tokens for `audience` with `scopes`. */
export interface Auth0ClientGrant {
  /** The API's identifier. */
  readonly audience: string;
  /**
   * Scopes granted on it.
   *
   * @default []
   */
  readonly scopes?: readonly string[];
}

/** An API (resource server) of the tenant. */
export interface Auth0Api {
  /** Its identifier, the `audience` of token requests. */
  readonly identifier: string;
  /**
   * Lifetime of its access tokens, in seconds.
   *
   * @default 86400
   */
  readonly tokenLifetimeSeconds?: number;
}

/** A machine-to-machine application of the tenant. */
export interface Auth0Client {
  /** The client id. */
  readonly clientId: string;
  /** Its one secret. */
  readonly secret: string;
  /**
   * Display name.
   *
   * @default the client id
   */
  readonly name?: string;
  /**
   * How it must send its credentials; the other way is refused.
   *
   * @default "client_secret_post"
   */
  readonly tokenEndpointAuthMethod?: Auth0TokenEndpointAuthMethod;
  /**
   * The APIs it may get tokens for, the Management API included (its
   * audience is {@linkcode Auth0Emulator.managementAudience}).
   *
   * @default []
   */
  readonly grants?: readonly Auth0ClientGrant[];
}

/** Options for {@linkcode startAuth0Emulator}. */
export interface Auth0EmulatorOptions extends ProviderEmulatorOptions {
  /**
   * The tenant's domain; the Management API's audience is
   * `https://<domain>/api/v2/`.
   *
   * @default "emulator.auth0.local"
   */
  readonly domain?: string;
  /**
   * APIs of the tenant besides the Management API.
   *
   * @default []
   */
  readonly apis?: readonly Auth0Api[];
  /**
   * Clients present from the start.
   *
   * @default []
   */
  readonly clients?: readonly Auth0Client[];
  /**
   * A limit on token requests, answered 429 with `x-ratelimit-*` headers.
   *
   * @default undefined (no limit)
   */
  readonly tokenRateLimit?: RateLimit;
  /**
   * A limit on Management API requests, answered 429 the same way.
   *
   * @default undefined (no limit)
   */
  readonly managementRateLimit?: RateLimit;
}

/** A running Auth0 emulator; close it with `close()` or `await using`. */
export interface Auth0Emulator extends ProviderEmulator, TokenFaultInjection {
  /** The token endpoint: `url` + `/oauth/token`. */
  readonly tokenUrl: string;
  /** The Management API's base: `url` + `/api/v2`. */
  readonly apiUrl: string;
  /** The tenant's domain, as configured. */
  readonly domain: string;
  /** The Management API's identifier: `https://<domain>/api/v2/`. */
  readonly managementAudience: string;
  /**
   * Adds a client.
   *
   * @param client The client; its id must be new.
   */
  addClient(client: Auth0Client): void;
  /**
   * Reads a client's current secret.
   *
   * @param clientId An existing client id.
   * @returns The secret.
   */
  getClientSecret(clientId: string): string;
  /**
   * Rotates a client's secret behind the API's back: the old one dies at
   * once, the new one works after `propagationDelayMs`.
   *
   * @param clientId An existing client id.
   * @param newSecret The new secret; a generated one if left out.
   * @returns The new secret.
   */
  rotateSecret(clientId: string, newSecret?: string): string;
  /**
   * Mints a valid access token without an HTTP request (not counted).
   *
   * @param clientId An existing client id.
   * @param audience The API it is for.
   * @returns The access token.
   */
  issueToken(clientId: string, audience: string): string;
}

const DEFAULT_LIFETIME_SECONDS = 86_400;
const GLOBAL_LIMIT = "Global limit has been reached";
const OTHER_GRANTS = new Set([
  "password",
  "authorization_code",
  "refresh_token",
  "implicit",
  "http://auth0.com/oauth/grant-type/password-realm",
  "urn:ietf:params:oauth:grant-type:device_code",
  "urn:ietf:params:oauth:grant-type:jwt-bearer",
  "urn:ietf:params:oauth:grant-type:token-exchange",
]);

/**
 * Starts an Auth0 emulator listening on `127.0.0.1` and a free port (by
 * default).
 *
 * @param options Tenant domain, APIs, clients and switches; all optional.
 * @returns The running emulator; close it when done.
 *
 * @example Get a token for an API, then rotate the secret with the Management API
 * ```ts
 * import { startAuth0Emulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using auth0 = startAuth0Emulator({
 *   apis: [{ identifier: "https://orders.example" }],
 * });
 * auth0.addClient({
 *   clientId: "app",
 *   secret: "s3cret",
 *   grants: [{ audience: "https://orders.example" }],
 * });
 * auth0.addClient({
 *   clientId: "admin",
 *   secret: "admin-secret",
 *   grants: [{
 *     audience: auth0.managementAudience,
 *     scopes: ["update:client_keys"],
 *   }],
 * });
 * const form = (id: string, secret: string, audience: string) =>
 *   new URLSearchParams({
 *     grant_type: "client_credentials",
 *     client_id: id,
 *     client_secret: secret,
 *     audience,
 *   });
 * const app = await fetch(auth0.tokenUrl, {
 *   method: "POST",
 *   body: form("app", "s3cret", "https://orders.example"),
 * });
 * if ((await app.json()).expires_in !== 86400) throw new Error("unexpected");
 *
 * const admin = await fetch(auth0.tokenUrl, {
 *   method: "POST",
 *   body: form("admin", "admin-secret", auth0.managementAudience),
 * });
 * const { access_token: token } = await admin.json();
 * const rotated = await fetch(`${auth0.apiUrl}/clients/app/rotate-secret`, {
 *   method: "POST",
 *   headers: { authorization: `Bearer ${token}` },
 * });
 * const { client_secret: secret } = await rotated.json();
 * if (secret !== auth0.getClientSecret("app")) throw new Error("unexpected");
 * ```
 */
export function startAuth0Emulator(
  options?: Auth0EmulatorOptions,
): Auth0Emulator {
  return new Auth0(options ?? {});
}

interface ClientRecord {
  readonly id: string;
  name: string;
  secret: string;
  /** Generation of the secret, so tokens can be told apart by it. */
  generation: number;
  usableFrom: number;
  readonly method: Auth0TokenEndpointAuthMethod;
  readonly grants: readonly Auth0ClientGrant[];
}

interface Credentials {
  readonly id: string | undefined;
  readonly secret: string | undefined;
  readonly via: "header" | "body" | "none";
}

class Auth0 extends FaultInjectingProviderEmulator implements Auth0Emulator {
  readonly domain: string;
  readonly managementAudience: string;

  readonly #tokenLimiter: FixedWindow | undefined;
  readonly #managementLimiter: FixedWindow | undefined;
  readonly #apis = new Map<string, number>();
  readonly #clients = new Map<string, ClientRecord>();

  constructor(options: Auth0EmulatorOptions) {
    super("Auth0", options, faultBody);
    this.domain = options.domain ?? "emulator.auth0.local";
    this.managementAudience = `https://${this.domain}/api/v2/`;
    this.#tokenLimiter = options.tokenRateLimit &&
      new FixedWindow(options.tokenRateLimit, this.host.clock);
    this.#managementLimiter = options.managementRateLimit &&
      new FixedWindow(options.managementRateLimit, this.host.clock);
    this.#apis.set(this.managementAudience, DEFAULT_LIFETIME_SECONDS);
    for (const api of options.apis ?? []) {
      const lifetime = api.tokenLifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
      if (!(lifetime > 0 && Number.isFinite(lifetime))) {
        throw new RangeError(
          `tokenLifetimeSeconds of ${api.identifier} must be a positive number, got ${lifetime}`,
        );
      }
      this.#apis.set(api.identifier, lifetime);
    }
    for (const client of options.clients ?? []) this.addClient(client);
    const routes: ProviderRoutes = {
      isTokenPath: (path) => path === "/oauth/token",
      isApiPath: (path) => path.startsWith("/api/v2/"),
      token: (request) => this.faulted(request, () => this.#token(request)),
      throttled: () =>
        tokenError(429, "too_many_requests", GLOBAL_LIMIT, new Headers()),
      api: (request, path) => this.#management(request, path),
      notFound: () => managementError(404, "Not Found", "Not Found"),
      serverError: () =>
        managementError(500, "Internal Server Error", "Internal error"),
    };
    this.host.listen(routes);
  }

  get tokenUrl(): string {
    return `${this.url}/oauth/token`;
  }

  get apiUrl(): string {
    return `${this.url}/api/v2`;
  }

  addClient(client: Auth0Client): void {
    if (this.#clients.has(client.clientId)) {
      throw new Error(`Client ${client.clientId} already exists`);
    }
    for (const grant of client.grants ?? []) {
      if (!this.#apis.has(grant.audience)) {
        throw new Error(
          `Client ${client.clientId} has a grant for ${grant.audience}, which is not among the emulator's APIs`,
        );
      }
    }
    this.#clients.set(client.clientId, {
      id: client.clientId,
      name: client.name ?? client.clientId,
      secret: client.secret,
      generation: 0,
      usableFrom: Number.NEGATIVE_INFINITY,
      method: client.tokenEndpointAuthMethod ?? "client_secret_post",
      grants: (client.grants ?? []).map((grant) => ({
        audience: grant.audience,
        scopes: [...(grant.scopes ?? [])],
      })),
    });
  }

  getClientSecret(clientId: string): string {
    return this.#client(clientId).secret;
  }

  rotateSecret(clientId: string, newSecret?: string): string {
    const client = this.#client(clientId);
    this.#replaceSecret(client, newSecret ?? randomBase64Url(48));
    return client.secret;
  }

  issueToken(clientId: string, audience: string): string {
    const client = this.#client(clientId);
    const grant = client.grants.find((grant) => grant.audience === audience);
    return this.#mint(
      client,
      audience,
      grant?.scopes ?? [],
      this.#apis.get(audience) ?? DEFAULT_LIFETIME_SECONDS,
    );
  }

  #client(clientId: string): ClientRecord {
    const client = this.#clients.get(clientId);
    if (!client) throw new Error(`Unknown client ${clientId}`);
    return client;
  }

  #replaceSecret(client: ClientRecord, secret: string): void {
    // A client's secret is known by its rotation count, so tokens got with
    // the old one can be told from those got with the new one.
    this.host.secretRemoved(client.id, String(client.generation));
    client.secret = secret;
    client.generation++;
    client.usableFrom = this.host.usableAt();
    this.host.secretCreated();
  }

  // ---- /oauth/token -------------------------------------------------------

  /** A token shaped as Auth0's client-credentials access token (a JWT). */
  #mint(
    client: ClientRecord,
    audience: string,
    scopes: readonly string[],
    lifetimeSeconds: number,
  ): string {
    const scope = scopes.join(" ");
    return this.host.tokens.mint(
      {
        clientId: client.id,
        audience,
        scope,
        secretId: String(client.generation),
      },
      lifetimeSeconds,
      {
        iss: `https://${this.domain}/`,
        sub: `${client.id}@clients`,
        aud: audience,
        azp: client.id,
        ...(scope === "" ? {} : { scope }),
        gty: "client-credentials",
      },
    );
  }

  async #token(request: Request): Promise<Response> {
    const params = request.method === "POST"
      ? await readParams(request)
      : undefined;
    const credentials = credentialsOf(request, params);
    if (credentials.via !== "header") this.host.countBodyClient(credentials.id);
    const limit = this.#tokenLimiter?.take();
    const headers = limit ? rateHeaders(limit) : new Headers();
    if (limit && !limit.allowed) {
      return tokenError(429, "too_many_requests", GLOBAL_LIMIT, headers);
    }
    if (request.method !== "POST") {
      return tokenError(404, "not_found", "Not Found", headers);
    }
    if (params === undefined) {
      return tokenError(
        400,
        "invalid_request",
        "The request body must be application/x-www-form-urlencoded or application/json",
        headers,
      );
    }
    const grantType = params.get("grant_type");
    if (grantType === undefined) {
      return tokenError(
        400,
        "invalid_request",
        "Missing required parameter: grant_type",
        headers,
      );
    }
    if (credentials.id === undefined) {
      return tokenError(
        400,
        "invalid_request",
        "Missing required parameter: client_id",
        headers,
      );
    }
    const client = this.#authenticate(credentials);
    if (!client) {
      return tokenError(401, "access_denied", "Unauthorized", headers);
    }
    if (grantType !== "client_credentials") {
      return OTHER_GRANTS.has(grantType)
        ? tokenError(
          403,
          "unauthorized_client",
          `Grant type '${grantType}' not allowed for the client.`,
          headers,
        )
        : tokenError(
          400,
          "unsupported_grant_type",
          `Unsupported grant type: ${grantType}`,
          headers,
        );
    }
    return this.#grant(client, params, headers);
  }

  #authenticate(credentials: Credentials): ClientRecord | undefined {
    const client = this.#clients.get(credentials.id ?? "");
    if (!client || credentials.secret === undefined) return undefined;
    const via = client.method === "client_secret_basic" ? "header" : "body";
    if (credentials.via !== via) return undefined;
    if (this.host.clock.now() < client.usableFrom) return undefined;
    return timingSafeEqual(client.secret, credentials.secret)
      ? client
      : undefined;
  }

  #grant(
    client: ClientRecord,
    params: Params,
    headers: Headers,
  ): Response {
    const audience = params.get("audience");
    if (audience === undefined || audience === "") {
      return tokenError(
        403,
        "access_denied",
        "No audience parameter was provided, and no default audience has been configured",
        headers,
      );
    }
    const lifetime = this.#apis.get(audience);
    if (lifetime === undefined) {
      return tokenError(
        403,
        "access_denied",
        `Service not found: ${audience}`,
        headers,
      );
    }
    const grant = client.grants.find((grant) => grant.audience === audience);
    if (!grant) {
      return tokenError(
        403,
        "access_denied",
        `Client is not authorized to access "${audience}". You need to create a "client-grant" associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants`,
        headers,
      );
    }
    const granted = grant.scopes ?? [];
    const requested = (params.get("scope") ?? "").split(/\s+/).filter((s) =>
      s !== ""
    );
    const missing = requested.filter((scope) => !granted.includes(scope));
    if (missing.length > 0) {
      return tokenError(
        403,
        "access_denied",
        `Client has not been granted scopes: ${missing.join(", ")}`,
        headers,
      );
    }
    const scopes = requested.length > 0 ? requested : granted;
    const token = this.#mint(client, audience, scopes, lifetime);
    this.host.issued(String(client.generation));
    return noStore(200, {
      access_token: token,
      ...(scopes.length > 0 ? { scope: scopes.join(" ") } : {}),
      expires_in: lifetime,
      token_type: "Bearer",
    }, headers);
  }

  // ---- /api/v2 ------------------------------------------------------------

  async #management(request: Request, path: string): Promise<Response> {
    const token = this.host.tokens.lookup(
      bearerToken(request.headers.get("authorization")),
    );
    if (typeof token === "string") {
      return managementError(
        401,
        "Unauthorized",
        token === "missing"
          ? "Missing authentication"
          : token === "expired"
          ? "Expired token received for JSON Web Token validation"
          : "Invalid token",
      );
    }
    if (token.audience !== this.managementAudience) {
      return managementError(
        401,
        "Unauthorized",
        `Bad audience: ${token.audience ?? ""}`,
      );
    }
    const limit = this.#managementLimiter?.take();
    const headers = limit ? rateHeaders(limit) : new Headers();
    if (limit && !limit.allowed) {
      return managementError(
        429,
        "Too Many Requests",
        GLOBAL_LIMIT,
        "too_many_requests",
        headers,
      );
    }
    const scopes = token.scope.split(" ").filter((scope) => scope !== "");
    const rotate = path.match(/^\/api\/v2\/clients\/([^/]+)\/rotate-secret$/);
    if (rotate && request.method === "POST") {
      return this.#rotateViaApi(
        safeDecodeURIComponent(rotate[1]),
        scopes,
        headers,
      );
    }
    const one = path.match(/^\/api\/v2\/clients\/([^/]+)$/);
    if (one && request.method === "GET") {
      return this.#getViaApi(safeDecodeURIComponent(one[1]), scopes, headers);
    }
    if (one && request.method === "PATCH") {
      return await this.#patchViaApi(
        request,
        safeDecodeURIComponent(one[1]),
        scopes,
        headers,
      );
    }
    return managementError(404, "Not Found", "Not Found", undefined, headers);
  }

  #rotateViaApi(
    clientId: string,
    scopes: readonly string[],
    headers: Headers,
  ): Response {
    const denied = insufficientScope(scopes, ["update:client_keys"], headers);
    if (denied) return denied;
    const client = this.#clients.get(clientId);
    if (!client) return noSuchClient(headers);
    this.#replaceSecret(client, randomBase64Url(48));
    return json(200, this.#view(client, true), headers);
  }

  #getViaApi(
    clientId: string,
    scopes: readonly string[],
    headers: Headers,
  ): Response {
    const denied = insufficientScope(
      scopes,
      ["read:clients", "read:client_keys"],
      headers,
    );
    if (denied) return denied;
    const client = this.#clients.get(clientId);
    if (!client) return noSuchClient(headers);
    return json(
      200,
      this.#view(client, scopes.includes("read:client_keys")),
      headers,
    );
  }

  async #patchViaApi(
    request: Request,
    clientId: string,
    scopes: readonly string[],
    headers: Headers,
  ): Promise<Response> {
    const denied = insufficientScope(
      scopes,
      ["update:clients", "update:client_keys"],
      headers,
    );
    if (denied) return denied;
    let body: unknown;
    try {
      body = JSON.parse(await readText(request) ?? "");
    } catch {
      return invalidBody("Payload validation error: 'Invalid JSON'.", headers);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return invalidBody(
        "Payload validation error: 'Expected type object but found type " +
          `${Array.isArray(body) ? "array" : typeof body}'.`,
        headers,
      );
    }
    const fields = body as Record<string, unknown>;
    const extra = Object.keys(fields).filter((key) =>
      key !== "client_secret" && key !== "name"
    );
    if (extra.length > 0) {
      return invalidBody(
        `Payload validation error: 'Additional properties not allowed: ${
          extra.join(",")
        }'.`,
        headers,
      );
    }
    for (const key of ["client_secret", "name"]) {
      if (key in fields && typeof fields[key] !== "string") {
        return invalidBody(
          `Payload validation error: 'Expected type string but found type ${typeof fields[
            key
          ]}' on property ${key}.`,
          headers,
        );
      }
    }
    if ("client_secret" in fields) {
      const keys = insufficientScope(scopes, ["update:client_keys"], headers);
      if (keys) return keys;
    }
    const client = this.#clients.get(clientId);
    if (!client) return noSuchClient(headers);
    if (typeof fields.name === "string") client.name = fields.name;
    if (typeof fields.client_secret === "string") {
      this.#replaceSecret(client, fields.client_secret);
    }
    return json(
      200,
      this.#view(client, "client_secret" in fields),
      headers,
    );
  }

  #view(client: ClientRecord, withSecret: boolean) {
    return {
      tenant: this.domain.split(".")[0],
      global: false,
      is_first_party: true,
      name: client.name,
      client_id: client.id,
      ...(withSecret ? { client_secret: client.secret } : {}),
      app_type: "non_interactive",
      grant_types: ["client_credentials"],
      token_endpoint_auth_method: client.method,
      callbacks: [],
    };
  }
}

/** Token request parameters from a form or a JSON body. */
interface Params {
  get(name: string): string | undefined;
}

async function readParams(request: Request): Promise<Params | undefined> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]
    .trim().toLowerCase();
  const text = await readText(request);
  if (text === undefined) return undefined;
  if (type === "application/x-www-form-urlencoded") {
    const form = new URLSearchParams(text);
    return { get: (name) => form.get(name) ?? undefined };
  }
  if (type === "application/json") {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (typeof body !== "object" || body === null) return undefined;
    const fields = body as Record<string, unknown>;
    return {
      get: (name) =>
        typeof fields[name] === "string" ? fields[name] : undefined,
    };
  }
  return undefined;
}

function credentialsOf(
  request: Request,
  params: Params | undefined,
): Credentials {
  const basic = parseBasicCredentials(request.headers.get("authorization"));
  if (basic) return { ...basic[0], via: "header" };
  const id = params?.get("client_id");
  return {
    id,
    secret: params?.get("client_secret"),
    via: id === undefined ? "none" : "body",
  };
}

function rateHeaders(limit: RateDecision): Headers {
  const headers = new Headers({
    "x-ratelimit-limit": String(limit.limit),
    "x-ratelimit-remaining": String(limit.remaining),
    "x-ratelimit-reset": String(limit.resetEpochSeconds),
  });
  if (!limit.allowed) {
    headers.set("retry-after", String(limit.retryAfterSeconds));
  }
  return headers;
}

function tokenError(
  status: number,
  error: string,
  description: string,
  headers: Headers,
): Response {
  headers.set("cache-control", "no-store");
  return json(status, { error, error_description: description }, headers);
}

/** The Management API's envelope: `{statusCode, error, message, errorCode}`. */
function managementError(
  status: number,
  error: string,
  message: string,
  errorCode?: string,
  headers?: Headers,
): Response {
  return json(status, {
    statusCode: status,
    error,
    message,
    ...(errorCode === undefined ? {} : { errorCode }),
  }, headers);
}

function insufficientScope(
  granted: readonly string[],
  anyOf: readonly string[],
  headers: Headers,
): Response | undefined {
  if (anyOf.some((scope) => granted.includes(scope))) return undefined;
  return managementError(
    403,
    "Forbidden",
    `Insufficient scope, expected any of: ${anyOf.join(",")}`,
    "insufficient_scope",
    headers,
  );
}

function noSuchClient(headers: Headers): Response {
  return managementError(
    404,
    "Not Found",
    "The client does not exist",
    "inexistent_client",
    headers,
  );
}

function invalidBody(message: string, headers: Headers): Response {
  return managementError(400, "Bad Request", message, "invalid_body", headers);
}

/** The body of an injected token-endpoint status, in Auth0's shape. */
function faultBody(status: number): string {
  const [error, description] = status === 429
    ? ["too_many_requests", GLOBAL_LIMIT]
    : status === 401
    ? ["access_denied", "Unauthorized"]
    : status >= 500
    ? ["server_error", "Internal Server Error"]
    : ["invalid_request", "Bad Request"];
  return JSON.stringify({ error, error_description: description });
}
