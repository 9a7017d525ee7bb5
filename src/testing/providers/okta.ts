/**
 * A local stand-in for Okta: a custom authorization server's token endpoint
 * and the app client-secret API (`/api/v1/apps/{appId}/credentials/secrets`)
 * with Okta's limits (two secret objects per client; the only active secret
 * cannot be deactivated; an active secret cannot be deleted), error envelope
 * and admin scopes.
 *
 * An OIDC app's client id is its app id in Okta, so apps are addressed by
 * client id. Admin callers present `SSWS {token}` or `Bearer {token}` of a
 * configured admin token; its scopes stand for both an API token's admin and
 * a service app's granted scopes.
 *
 * Reproduced as `../shared/identity-provider-facts.md` states them: the
 * wrong-secret body, `invalid_scope` "No scopes were requested.", 400 for
 * credentials in both header and body, the 429 `E0000047` envelope with
 * `X-Rate-Limit-*` headers, the secret object, the two-secret limit and the
 * deactivate/delete refusals with `E0000001`, 401 `E0000011`, 403
 * `E0000006`. Modelled without a source (texts plausible, not verified): the
 * answer to the other client authentication method (401 `invalid_client`),
 * an unknown client, the org server's refusal, 404 `E0000007`, and the
 * 14–100 character check's wording. Okta sends no `Retry-After` on 429.
 *
 * @module
 */
import {
  HostedProviderEmulator,
  isRecord,
  type IssuedToken,
  noStore,
  type ProviderEmulator,
  type ProviderEmulatorOptions,
  type ProviderRoutes,
  randomFrom,
  validSeconds,
} from "./common.ts";
import { json } from "../emulator_responses.ts";
import {
  readForm,
  readJson,
  safeDecodeURIComponent,
  scopesOf,
} from "../emulator_parsing.ts";
import { randomBase64Url, timingSafeEqual } from "../emulator_helpers.ts";

/** How an Okta client authenticates at the token endpoint. */
export type OktaTokenEndpointAuthMethod =
  | "client_secret_basic"
  | "client_secret_post";

/** Okta's admin scopes for the app API. */
export type OktaAdminScope = "okta.apps.read" | "okta.apps.manage";

/** The status of an Okta client secret. */
export type OktaSecretStatus = "ACTIVE" | "INACTIVE";

/** A service app (client-credentials) of the emulated org. */
export interface OktaEmulatorApp {
  /** The client id, which is also the app id (`0oa…` in a real org). */
  readonly clientId: string;
  /**
   * Its secrets at start, all `ACTIVE`: at most two, as Okta allows.
   *
   * @default []
   */
  readonly secrets?: readonly string[];
  /**
   * How the client must authenticate; the other method is refused.
   *
   * @default "client_secret_basic"
   */
  readonly tokenEndpointAuthMethod?: OktaTokenEndpointAuthMethod;
  /**
   * Lifetime of its access tokens in seconds (the access policy's rule).
   *
   * @default 3600
   */
  readonly tokenLifetimeSeconds?: number;
  /**
   * The app's label.
   *
   * @default the client id
   */
  readonly label?: string;
}

/** An admin credential of the emulated org. */
export interface OktaEmulatorAdminToken {
  /** The token, sent as `SSWS {token}` or `Bearer {token}`. */
  readonly token: string;
  /**
   * What it may do: `okta.apps.read` lists and gets, `okta.apps.manage`
   * also creates, activates, deactivates and deletes.
   *
   * @default ["okta.apps.read", "okta.apps.manage"]
   */
  readonly scopes?: readonly OktaAdminScope[];
}

/** Options for {@linkcode startOktaEmulator}. */
export interface OktaEmulatorOptions extends ProviderEmulatorOptions {
  /**
   * The custom authorization server's id in the token URL.
   *
   * @default "default"
   */
  readonly authServerId?: string;
  /**
   * Scopes the authorization server defines; a request for another is
   * refused with `invalid_scope`.
   *
   * @default undefined (any scope is granted)
   */
  readonly scopes?: readonly string[];
  /**
   * Service apps present from the start.
   *
   * @default []
   */
  readonly apps?: readonly OktaEmulatorApp[];
  /**
   * Admin credentials for the secret API.
   *
   * @default []
   */
  readonly adminTokens?: readonly OktaEmulatorAdminToken[];
}

/** A client secret as Okta's API returns it. */
export interface OktaSecretView {
  /** `ocs…` id. */
  readonly id: string;
  /** Whether the token endpoint accepts it. */
  readonly status: OktaSecretStatus;
  /** The value (Okta returns it again on list and get). */
  readonly client_secret: string;
  /** An opaque hash of the value. */
  readonly secret_hash: string;
  /** ISO-8601 creation time. */
  readonly created: string;
  /** ISO-8601 time of the last change. */
  readonly lastUpdated: string;
}

/** A running Okta emulator; close it or `await using` it. */
export interface OktaEmulator extends ProviderEmulator {
  /** `{url}/oauth2/{authServerId}/v1/token`. */
  readonly tokenUrl: string;
  /** The org URL, under which `/api/v1/apps/…` lives. */
  readonly apiUrl: string;
  /**
   * Adds a service app.
   *
   * @param app The app; its client id must be new.
   */
  addApp(app: OktaEmulatorApp): void;
  /**
   * Reads an app's secrets as the list API would.
   *
   * @param clientId An existing client id.
   * @returns The secrets, oldest first.
   */
  secrets(clientId: string): OktaSecretView[];
  /**
   * Adds a secret behind the caller's back, under the same limit as the API.
   *
   * @param clientId An existing client id.
   * @param value The value; a random one if left out.
   * @returns The new secret.
   */
  addSecret(clientId: string, value?: string): OktaSecretView;
  /**
   * Deletes a secret behind the caller's back, whatever its status (as an
   * administrator in the console could after deactivating it).
   *
   * @param clientId An existing client id.
   * @param secretId The secret's id.
   */
  removeSecret(clientId: string, secretId: string): void;
}

const INVALID_SECRET =
  "The client secret supplied for a confidential client is invalid.";
const CLIENT_AUTH_FAILED =
  "Client authentication failed. Either the client or the client credentials are invalid.";
const MAX_SECRETS = 2;
const SECRET_ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

interface OktaSecret {
  readonly id: string;
  status: OktaSecretStatus;
  readonly value: string;
  readonly hash: string;
  readonly createdAt: number;
  /** When the token endpoint starts to accept it (propagation). */
  readonly usableAt: number;
  updatedAt: number;
}

interface OktaApp {
  readonly clientId: string;
  readonly label: string;
  readonly method: OktaTokenEndpointAuthMethod;
  readonly lifetimeSeconds: number;
  readonly secrets: OktaSecret[];
  readonly createdAt: number;
}

/** Okta's error envelope. */
function oktaError(
  status: number,
  errorCode: string,
  errorSummary: string,
  causes: readonly string[] = [],
  headers?: HeadersInit,
): Response {
  return json(status, {
    errorCode,
    errorSummary,
    errorLink: errorCode,
    errorId: `oae${randomBase64Url(16)}`,
    errorCauses: causes.map((summary) => ({ errorSummary: summary })),
  }, headers);
}

/** Thrown by the shared secret rules; the API answers it, controls rethrow it. */
class OktaRefusal extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    readonly summary: string,
    readonly causes: readonly string[] = [],
  ) {
    super(causes.length === 0 ? summary : `${summary}: ${causes.join("; ")}`);
    this.name = "OktaRefusal";
  }

  response(): Response {
    return oktaError(this.status, this.errorCode, this.summary, this.causes);
  }
}

function notFound(appId: string, what = "AppInstance"): OktaRefusal {
  return new OktaRefusal(
    404,
    "E0000007",
    `Not found: Resource not found: ${appId} (${what})`,
  );
}

/**
 * Starts an Okta emulator on `127.0.0.1` and a free port (by default).
 *
 * @param options Apps, admin tokens, clock and switches; all optional.
 * @returns The running emulator; close it when done.
 *
 * @example Get a token with client_secret_basic and a required scope
 * ```ts
 * import { startOktaEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using okta = startOktaEmulator({
 *   apps: [{ clientId: "0oaapp", secrets: ["first-secret-value"] }],
 * });
 * const response = await fetch(okta.tokenUrl, {
 *   method: "POST",
 *   headers: {
 *     authorization: `Basic ${btoa("0oaapp:first-secret-value")}`,
 *     "content-type": "application/x-www-form-urlencoded",
 *   },
 *   body: "grant_type=client_credentials&scope=api",
 * });
 * const body = await response.json();
 * if (body.token_type !== "Bearer" || body.scope !== "api") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function startOktaEmulator(options?: OktaEmulatorOptions): OktaEmulator {
  return new Okta(options ?? {});
}

class Okta extends HostedProviderEmulator implements OktaEmulator {
  readonly #authServerId: string;
  readonly #scopes: ReadonlySet<string> | undefined;
  readonly #apps = new Map<string, OktaApp>();
  readonly #admins = new Map<string, ReadonlySet<OktaAdminScope>>();

  constructor(options: OktaEmulatorOptions) {
    super("Okta", options);
    this.#authServerId = options.authServerId ?? "default";
    this.#scopes = options.scopes ? new Set(options.scopes) : undefined;
    for (const admin of options.adminTokens ?? []) {
      this.#admins.set(
        admin.token,
        new Set(admin.scopes ?? ["okta.apps.read", "okta.apps.manage"]),
      );
    }
    const routes: ProviderRoutes = {
      isTokenPath: (path) => /^\/oauth2\/(?:[^/]+\/)?v1\/token$/.test(path),
      isApiPath: (path) => path.startsWith("/api/v1/"),
      token: (request, path) => this.#token(request, path),
      throttled: () => this.#throttled(),
      api: (request, path) => this.#api(request, path),
      notFound: () => unknownPath(),
      serverError: () => oktaError(500, "E0000009", "Internal Server Error"),
    };
    for (const app of options.apps ?? []) this.addApp(app);
    this.host.listen(routes);
  }

  get tokenUrl(): string {
    return `${this.url}/oauth2/${this.#authServerId}/v1/token`;
  }

  get apiUrl(): string {
    return this.url;
  }

  addApp(app: OktaEmulatorApp): void {
    if (this.#apps.has(app.clientId)) {
      throw new Error(`Okta app ${app.clientId} already exists`);
    }
    const now = this.host.clock.now();
    const record: OktaApp = {
      clientId: app.clientId,
      label: app.label ?? app.clientId,
      method: app.tokenEndpointAuthMethod ?? "client_secret_basic",
      lifetimeSeconds: validSeconds(
        "tokenLifetimeSeconds",
        app.tokenLifetimeSeconds,
        3600,
      ),
      secrets: [],
      createdAt: now,
    };
    this.#apps.set(app.clientId, record);
    // Seeded secrets work at once: they stand for secrets created long ago.
    for (const value of app.secrets ?? []) {
      this.#create(record, value, "ACTIVE", false);
    }
  }

  secrets(clientId: string): OktaSecretView[] {
    const app = this.#app(clientId);
    return app.secrets.map((secret) => this.#view(secret));
  }

  addSecret(clientId: string, value?: string): OktaSecretView {
    const app = this.#app(clientId);
    const secret = this.#create(app, value, "ACTIVE", true);
    this.host.secretCreated();
    return this.#view(secret);
  }

  removeSecret(clientId: string, secretId: string): void {
    const app = this.#app(clientId);
    const index = app.secrets.findIndex((secret) => secret.id === secretId);
    if (index < 0) throw notFound(secretId, "OAuth2ClientSecret");
    const [removed] = app.secrets.splice(index, 1);
    // An INACTIVE secret stopped working (and was counted) when deactivated.
    if (removed.status === "ACTIVE") {
      this.host.secretRemoved(clientId, secretId);
    }
  }

  #app(clientId: string): OktaApp {
    const app = this.#apps.get(clientId);
    if (!app) throw notFound(clientId);
    return app;
  }

  /** Creates a secret under Okta's rules, or throws the refusal. */
  #create(
    app: OktaApp,
    value: string | undefined,
    status: OktaSecretStatus,
    propagates: boolean,
  ): OktaSecret {
    if (app.secrets.length >= MAX_SECRETS) {
      throw new OktaRefusal(
        400,
        "E0000001",
        "Api validation failed: OAuth2ClientSecretMediated",
        ["You've reached the maximum number of client secrets per client."],
      );
    }
    if (value !== undefined && !/^[\x21-\x7e]{14,100}$/.test(value)) {
      throw new OktaRefusal(
        400,
        "E0000001",
        "Api validation failed: client_secret",
        [
          "client_secret: 'client_secret' must be between 14 and 100 printable ASCII characters.",
        ],
      );
    }
    const now = this.host.clock.now();
    const secret: OktaSecret = {
      id: `ocs${randomFrom(SECRET_ALPHABET.slice(0, 62), 17)}`,
      status,
      value: value ?? randomFrom(SECRET_ALPHABET, 64),
      hash: randomBase64Url(16),
      createdAt: now,
      usableAt: propagates ? this.host.usableAt() : now,
      updatedAt: now,
    };
    app.secrets.push(secret);
    return secret;
  }

  #view(secret: OktaSecret): OktaSecretView {
    return {
      id: secret.id,
      status: secret.status,
      client_secret: secret.value,
      secret_hash: secret.hash,
      created: new Date(secret.createdAt).toISOString(),
      lastUpdated: new Date(secret.updatedAt).toISOString(),
    };
  }

  // ---- token endpoint ----------------------------------------------------

  #throttled(): Response {
    const reset = Math.ceil(this.host.clock.now() / 1000) + 60;
    return oktaError(
      429,
      "E0000047",
      "API call exceeded rate limit due to too many requests.",
      [],
      {
        "x-rate-limit-limit": "600",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": String(reset),
      },
    );
  }

  async #token(request: Request, path: string): Promise<Response> {
    if (request.method !== "POST") {
      return noStore(405, {
        error: "invalid_request",
        error_description:
          `The HTTP method '${request.method}' is not allowed.`,
      }, { allow: "POST" });
    }
    if (path === "/oauth2/v1/token") {
      return tokenError(
        400,
        "invalid_client",
        "Client Credentials requests to the Org Authorization Server must use the private_key_jwt token_endpoint_auth_method.",
      );
    }
    if (path !== `/oauth2/${this.#authServerId}/v1/token`) {
      return oktaError(
        404,
        "E0000007",
        `Not found: Resource not found: ${
          path.split("/")[2]
        } (AuthorizationServer)`,
      );
    }
    const form = await readForm(request);
    if (typeof form === "string") {
      return tokenError(400, "invalid_request", form);
    }
    const auth = this.host.readClientAuthentication(request, form);
    if (auth.basic && auth.bodySecret !== undefined) {
      return tokenError(
        400,
        "invalid_request",
        "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
      );
    }
    const method: OktaTokenEndpointAuthMethod = auth.basic
      ? "client_secret_basic"
      : "client_secret_post";
    const candidates = auth.basic ??
      (auth.bodyId === undefined
        ? []
        : [{ id: auth.bodyId, secret: auth.bodySecret ?? "" }]);
    if (candidates.length === 0) {
      return tokenError(
        401,
        "invalid_client",
        "Client authentication failed. Either the client or the client credentials are invalid.",
      );
    }
    const app = this.#apps.get(candidates[0].id);
    if (!app) return tokenError(401, "invalid_client", CLIENT_AUTH_FAILED);
    if (app.method !== method) {
      return tokenError(
        401,
        "invalid_client",
        `Client authentication failed. The client is configured for ${app.method}, not ${method}.`,
      );
    }
    const secret = this.#matchingSecret(app, candidates.map((c) => c.secret));
    if (!secret) return tokenError(401, "invalid_client", INVALID_SECRET);
    const grantType = form.get("grant_type");
    if (grantType === null) {
      return tokenError(
        400,
        "invalid_request",
        "The 'grant_type' parameter is missing.",
      );
    }
    if (grantType !== "client_credentials") {
      return tokenError(
        400,
        "unsupported_grant_type",
        `'grant_type' is not supported: ${grantType}.`,
      );
    }
    const scopes = scopesOf(form);
    if (scopes.length === 0) {
      return tokenError(400, "invalid_scope", "No scopes were requested.");
    }
    const unknown = scopes.filter((scope) =>
      !(this.#scopes?.has(scope) ?? true)
    );
    if (unknown.length > 0) {
      return tokenError(
        400,
        "invalid_scope",
        "One or more scopes are not configured for the authorization server resource.",
      );
    }
    return this.#grant(app, secret, scopes.join(" "));
  }

  #matchingSecret(
    app: OktaApp,
    offered: readonly string[],
  ): OktaSecret | undefined {
    const now = this.host.clock.now();
    return app.secrets.find((secret) =>
      secret.status === "ACTIVE" &&
      now >= secret.usableAt &&
      offered.some((value) => timingSafeEqual(secret.value, value))
    );
  }

  #grant(app: OktaApp, secret: OktaSecret, scope: string): Response {
    const issuer = `${this.url}/oauth2/${this.#authServerId}`;
    const issued: Omit<IssuedToken, "revoked" | "expiresAt" | "claims"> = {
      clientId: app.clientId,
      secretId: secret.id,
      audience: "api://default",
      scope,
    };
    const token = this.host.tokens.mint(issued, app.lifetimeSeconds, {
      ver: 1,
      jti: `AT.${randomBase64Url(24)}`,
      iss: issuer,
      aud: "api://default",
      cid: app.clientId,
      sub: app.clientId,
      scp: scope.split(" "),
    });
    this.host.issued(secret.id);
    return noStore(200, {
      token_type: "Bearer",
      expires_in: app.lifetimeSeconds,
      access_token: token,
      scope,
    });
  }

  // ---- /api/v1 -----------------------------------------------------------

  async #api(request: Request, path: string): Promise<Response> {
    try {
      return await this.#route(request, path);
    } catch (error) {
      if (error instanceof OktaRefusal) return error.response();
      throw error;
    }
  }

  async #route(request: Request, path: string): Promise<Response> {
    const match = path.match(
      /^\/api\/v1\/apps\/([^/]+)(?:\/credentials\/secrets(?:\/([^/]+)(?:\/lifecycle\/(activate|deactivate))?)?)?\/?$/,
    );
    if (!match) return unknownPath();
    const method = request.method;
    const write = method !== "GET";
    const denied = this.#authorize(request, write);
    if (denied) return denied;
    const appId = safeDecodeURIComponent(match[1]);
    const app = this.#app(appId);
    const isSecrets = path.includes("/credentials/secrets");
    if (!isSecrets) {
      if (method !== "GET") return methodNotAllowed();
      return json(200, this.#appView(app));
    }
    const secretId = match[2] === undefined
      ? undefined
      : safeDecodeURIComponent(match[2]);
    const lifecycle = match[3];
    if (secretId === undefined) {
      if (method === "GET") {
        return json(200, app.secrets.map((s) => this.#linked(app, s)));
      }
      if (method === "POST") return await this.#createViaApi(request, app);
      return methodNotAllowed();
    }
    const secret = app.secrets.find((s) => s.id === secretId);
    if (!secret) throw notFound(secretId, "OAuth2ClientSecret");
    if (lifecycle !== undefined) {
      if (method !== "POST") return methodNotAllowed();
      this.#setStatus(
        app,
        secret,
        lifecycle === "activate" ? "ACTIVE" : "INACTIVE",
      );
      return json(200, this.#linked(app, secret));
    }
    if (method === "GET") return json(200, this.#linked(app, secret));
    if (method === "DELETE") {
      if (secret.status === "ACTIVE") {
        throw new OktaRefusal(
          400,
          "E0000001",
          "Deactivate the secret before deleting it.",
        );
      }
      this.removeSecret(app.clientId, secret.id);
      return new Response(null, { status: 204 });
    }
    return methodNotAllowed();
  }

  /** 401 for no or an unknown token, 403 for a missing scope. */
  #authorize(request: Request, write: boolean): Response | undefined {
    const match = request.headers.get("authorization")?.match(
      /^\s*(?:SSWS|Bearer)\s+(\S+)\s*$/i,
    );
    const scopes = match ? this.#admins.get(match[1]) : undefined;
    if (!scopes) {
      return oktaError(401, "E0000011", "Invalid token provided");
    }
    const allowed = write
      ? scopes.has("okta.apps.manage")
      : scopes.has("okta.apps.read") || scopes.has("okta.apps.manage");
    if (allowed) return undefined;
    return oktaError(
      403,
      "E0000006",
      "You do not have permission to perform the requested action",
      [],
      {
        "www-authenticate":
          `Bearer authorization_uri="${this.url}/oauth2/v1/authorize", realm="${this.url}", scope="${
            write ? "okta.apps.manage" : "okta.apps.read"
          }", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="${
            new URL(request.url).pathname
          }"`,
      },
    );
  }

  async #createViaApi(request: Request, app: OktaApp): Promise<Response> {
    const body = await readJson(request);
    if (body !== undefined && !isRecord(body)) {
      throw new OktaRefusal(
        400,
        "E0000003",
        "The request body was not well-formed.",
      );
    }
    const value = body?.client_secret;
    const status = body?.status ?? "ACTIVE";
    if (value !== undefined && typeof value !== "string") {
      throw new OktaRefusal(
        400,
        "E0000001",
        "Api validation failed: client_secret",
        [
          "client_secret: 'client_secret' must be a string.",
        ],
      );
    }
    if (status !== "ACTIVE" && status !== "INACTIVE") {
      throw new OktaRefusal(400, "E0000001", "Api validation failed: status", [
        "status: 'status' must be ACTIVE or INACTIVE.",
      ]);
    }
    const secret = this.#create(app, value, status, true);
    this.host.secretCreated();
    return json(201, this.#linked(app, secret));
  }

  #setStatus(app: OktaApp, secret: OktaSecret, status: OktaSecretStatus): void {
    if (secret.status === status) return;
    if (status === "INACTIVE") {
      const active = app.secrets.filter((s) => s.status === "ACTIVE");
      if (active.length === 1) {
        throw new OktaRefusal(
          400,
          "E0000001",
          "You can't deactivate the only active client secret.",
        );
      }
    }
    secret.status = status;
    secret.updatedAt = this.host.clock.now();
    if (status === "INACTIVE") {
      this.host.secretRemoved(app.clientId, secret.id);
    }
  }

  #linked(app: OktaApp, secret: OktaSecret) {
    const base = `${this.url}/api/v1/apps/${
      encodeURIComponent(app.clientId)
    }/credentials/secrets/${secret.id}`;
    const next = secret.status === "ACTIVE" ? "deactivate" : "activate";
    return {
      ...this.#view(secret),
      _links: {
        [next]: {
          href: `${base}/lifecycle/${next}`,
          hints: { allow: ["POST"] },
        },
        ...(secret.status === "INACTIVE"
          ? { delete: { href: base, hints: { allow: ["DELETE"] } } }
          : {}),
      },
    };
  }

  #appView(app: OktaApp) {
    return {
      id: app.clientId,
      name: "oidc_client",
      label: app.label,
      status: "ACTIVE",
      signOnMode: "OPENID_CONNECT",
      created: new Date(app.createdAt).toISOString(),
      credentials: {
        oauthClient: {
          client_id: app.clientId,
          autoKeyRotation: true,
          token_endpoint_auth_method: app.method,
        },
      },
      settings: {
        oauthClient: {
          application_type: "service",
          grant_types: ["client_credentials"],
          response_types: ["token"],
        },
      },
    };
  }
}

function tokenError(
  status: number,
  error: string,
  description: string,
): Response {
  return noStore(status, { error, error_description: description });
}

function unknownPath(): Response {
  return oktaError(404, "E0000007", "Not found: Resource not found");
}

function methodNotAllowed(): Response {
  return oktaError(
    405,
    "E0000022",
    "The endpoint does not support the provided HTTP method",
  );
}
