/**
 * A local stand-in for Microsoft Entra ID: the v2.0 token endpoint with its
 * AADSTS error bodies, and Microsoft Graph's application password API
 * (`addPassword`, `removePassword` by `keyId`, the list through
 * `GET /applications/{id}?$select=passwordCredentials`) with Graph's error
 * envelope and application permissions.
 *
 * Graph tokens come from the same token endpoint with
 * `scope=https://graph.microsoft.com/.default`; their roles are the calling
 * application's {@linkcode EntraEmulatorApplication.graphPermissions}.
 *
 * From the facts file: the error body (`error_codes`, `timestamp`,
 * `trace_id`, `correlation_id`), AADSTS7000215, 7000222 and 90055, `scope`
 * required with one `/.default` resource, Basic or form credentials (the form
 * wins when both are sent), `expires_in` 3599, `secretText` shown once with
 * `hint` its first three characters, a two-year default end, `removePassword`
 * 204, and least privilege `Application.ReadWrite.OwnedBy` on owned
 * applications. Open in the facts and switchable here: the status of
 * `invalid_client` (401 by default) and of throttling (429 by default), the
 * propagation delay (0 by default; 4–18 s reported). Modelled without a
 * source: AADSTS900144, 1002012, 28000, 700016, 90002, 500011 bodies, the
 * 400 for an unknown `keyId`, and removal taking effect at once.
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
  bearerToken,
  readForm,
  readJson,
  safeDecodeURIComponent,
} from "../emulator_parsing.ts";
import { timingSafeEqual } from "../emulator_helpers.ts";

/** The Graph application permissions the emulator knows. */
export type EntraGraphPermission =
  | "Application.Read.All"
  | "Application.ReadWrite.All"
  | "Application.ReadWrite.OwnedBy";

/** A client secret an application starts with. */
export interface EntraEmulatorSecret {
  /** The secret's value. */
  readonly value: string;
  /**
   * Its key id (a GUID).
   *
   * @default a random GUID
   */
  readonly keyId?: string;
  /**
   * Its display name.
   *
   * @default undefined (none)
   */
  readonly displayName?: string;
  /**
   * ISO-8601 time from which it is valid.
   *
   * @default a day before the emulator started
   */
  readonly startDateTime?: string;
  /**
   * ISO-8601 time after which the token endpoint refuses it (AADSTS7000222).
   *
   * @default two years after its start
   */
  readonly endDateTime?: string;
}

/** An application registration with its service principal. */
export interface EntraEmulatorApplication {
  /** The application (client) id. */
  readonly appId: string;
  /**
   * The application object's id, which Graph's `/applications/{id}` takes.
   *
   * @default a random GUID
   */
  readonly objectId?: string;
  /**
   * Display name.
   *
   * @default the app id
   */
  readonly displayName?: string;
  /**
   * Its client secrets at start: values, or full descriptions.
   *
   * @default []
   */
  readonly secrets?: readonly (string | EntraEmulatorSecret)[];
  /**
   * Graph application permissions (app roles) granted to it, with admin
   * consent.
   *
   * @default []
   */
  readonly graphPermissions?: readonly EntraGraphPermission[];
  /**
   * App ids of the applications it owns (what
   * `Application.ReadWrite.OwnedBy` lets it manage).
   *
   * @default []
   */
  readonly owns?: readonly string[];
  /**
   * Lifetime of its access tokens in seconds.
   *
   * @default 3599
   */
  readonly tokenLifetimeSeconds?: number;
}

/** Options for {@linkcode startEntraEmulator}. */
export interface EntraEmulatorOptions extends ProviderEmulatorOptions {
  /**
   * The tenant id in the token URL (a tenant's domain is not accepted).
   *
   * @default "00000000-0000-4000-8000-00000000e17a"
   */
  readonly tenantId?: string;
  /**
   * Resources (application id URIs) a `scope` may name besides Graph; an
   * unknown one is refused with AADSTS500011.
   *
   * @default undefined (any resource)
   */
  readonly resources?: readonly string[];
  /**
   * Applications present from the start.
   *
   * @default []
   */
  readonly applications?: readonly EntraEmulatorApplication[];
  /**
   * The status of a wrong or expired secret's `invalid_client` answer;
   * Microsoft documents neither.
   *
   * @default 401
   */
  readonly invalidClientStatus?: 400 | 401;
  /**
   * The status of a throttled token request (AADSTS90055); Microsoft
   * documents none.
   *
   * @default 429
   */
  readonly throttleStatus?: 400 | 429;
}

/** A password credential as Graph lists it (`secretText` always null). */
export interface EntraPasswordCredential {
  /** Its id (a GUID). */
  readonly keyId: string;
  /** Display name, or null. */
  readonly displayName: string | null;
  /** The first three characters of the value. */
  readonly hint: string;
  /** ISO-8601 start. */
  readonly startDateTime: string;
  /** ISO-8601 end. */
  readonly endDateTime: string;
  /** Always null here. */
  readonly customKeyIdentifier: null;
  /** Null except in `addPassword`'s answer. */
  readonly secretText: string | null;
}

/** A running Entra ID emulator; close it or `await using` it. */
export interface EntraEmulator extends ProviderEmulator {
  /** `{url}/{tenantId}/oauth2/v2.0/token`. */
  readonly tokenUrl: string;
  /** Graph's base: `{url}/v1.0`. */
  readonly apiUrl: string;
  /** The tenant id. */
  readonly tenantId: string;
  /**
   * Adds an application.
   *
   * @param application Its app id and object id must be new.
   */
  addApplication(application: EntraEmulatorApplication): void;
  /**
   * The application object's id of an app id.
   *
   * @param appId An existing app id.
   * @returns Its object id.
   */
  objectIdOf(appId: string): string;
  /**
   * Reads an application's password credentials as Graph lists them.
   *
   * @param appId An existing app id.
   * @returns The credentials, oldest first.
   */
  passwordCredentials(appId: string): EntraPasswordCredential[];
  /**
   * Adds a password behind the caller's back; it works after the
   * propagation delay, as one added through Graph does.
   *
   * @param appId An existing app id.
   * @param options Value (random if left out) and validity.
   * @returns The new credential with its `secretText`.
   */
  addPassword(
    appId: string,
    options?: Partial<EntraEmulatorSecret>,
  ): EntraPasswordCredential;
  /**
   * Removes a password behind the caller's back.
   *
   * @param appId An existing app id.
   * @param keyId The credential's key id.
   */
  removePassword(appId: string, keyId: string): void;
}

const GRAPH = "https://graph.microsoft.com";
const TWO_YEARS_MS = 2 * 365 * 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const SECRET_ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~";

interface EntraPassword {
  readonly keyId: string;
  readonly value: string;
  readonly displayName: string | null;
  readonly start: number;
  readonly end: number;
  /** When the token endpoint starts to accept it (propagation). */
  readonly usableAt: number;
}

interface EntraApp {
  readonly appId: string;
  readonly objectId: string;
  readonly displayName: string;
  readonly passwords: EntraPassword[];
  readonly permissions: ReadonlySet<EntraGraphPermission>;
  readonly owns: ReadonlySet<string>;
  readonly lifetimeSeconds: number;
  readonly createdAt: number;
}

/**
 * Starts an Entra ID emulator on `127.0.0.1` and a free port (by default).
 *
 * @param options Tenant, applications, clock and switches; all optional.
 * @returns The running emulator; close it when done.
 *
 * @example A wrong secret answers AADSTS7000215
 * ```ts
 * import { startEntraEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using entra = startEntraEmulator({
 *   applications: [{ appId: "app-id", secrets: ["right"] }],
 * });
 * const response = await fetch(entra.tokenUrl, {
 *   method: "POST",
 *   headers: { "content-type": "application/x-www-form-urlencoded" },
 *   body: new URLSearchParams({
 *     grant_type: "client_credentials",
 *     client_id: "app-id",
 *     client_secret: "wrong",
 *     scope: "https://graph.microsoft.com/.default",
 *   }),
 * });
 * const body = await response.json();
 * if (body.error_codes[0] !== 7000215) throw new Error("unexpected");
 * ```
 */
export function startEntraEmulator(
  options?: EntraEmulatorOptions,
): EntraEmulator {
  return new Entra(options ?? {});
}

class Entra extends HostedProviderEmulator implements EntraEmulator {
  readonly tenantId: string;
  readonly #resources: ReadonlySet<string> | undefined;
  readonly #invalidClientStatus: 400 | 401;
  readonly #throttleStatus: 400 | 429;
  readonly #apps = new Map<string, EntraApp>();
  readonly #started: number;

  constructor(options: EntraEmulatorOptions) {
    super("Entra ID", options);
    this.tenantId = options.tenantId ?? "00000000-0000-4000-8000-00000000e17a";
    this.#resources = options.resources
      ? new Set([GRAPH, ...options.resources])
      : undefined;
    this.#invalidClientStatus = options.invalidClientStatus ?? 401;
    this.#throttleStatus = options.throttleStatus ?? 429;
    const routes: ProviderRoutes = {
      isTokenPath: (path) => /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path),
      isApiPath: (path) => path === "/v1.0" || path.startsWith("/v1.0/"),
      token: (request, path) => this.#token(request, path),
      throttled: () =>
        this.#stsError(
          this.#throttleStatus,
          "temporarily_unavailable",
          90055,
          "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants.",
          { "retry-after": "5" },
        ),
      api: (request, path) => this.#graph(request, path),
      notFound: () => new Response(null, { status: 404 }),
      serverError: () =>
        this.#graphError(500, "InternalServerError", "Internal server error."),
    };
    this.#started = this.host.clock.now();
    for (const application of options.applications ?? []) {
      this.addApplication(application);
    }
    this.host.listen(routes);
  }

  get tokenUrl(): string {
    return `${this.url}/${this.tenantId}/oauth2/v2.0/token`;
  }

  get apiUrl(): string {
    return `${this.url}/v1.0`;
  }

  addApplication(application: EntraEmulatorApplication): void {
    const objectId = application.objectId ?? crypto.randomUUID();
    for (const app of this.#apps.values()) {
      if (app.appId === application.appId || app.objectId === objectId) {
        throw new Error(`Application ${application.appId} already exists`);
      }
    }
    const app: EntraApp = {
      appId: application.appId,
      objectId,
      displayName: application.displayName ?? application.appId,
      passwords: [],
      permissions: new Set(application.graphPermissions ?? []),
      owns: new Set(application.owns ?? []),
      lifetimeSeconds: validSeconds(
        "tokenLifetimeSeconds",
        application.tokenLifetimeSeconds,
        3599,
      ),
      createdAt: this.host.clock.now(),
    };
    this.#apps.set(app.appId, app);
    for (const secret of application.secrets ?? []) {
      const given = typeof secret === "string" ? { value: secret } : secret;
      // Seeded secrets stand for old ones: no propagation delay.
      this.#add(app, {
        startDateTime: new Date(this.#started - DAY_MS).toISOString(),
        ...given,
      }, false);
    }
  }

  objectIdOf(appId: string): string {
    return this.#app(appId).objectId;
  }

  passwordCredentials(appId: string): EntraPasswordCredential[] {
    return this.#app(appId).passwords.map((password) => listed(password));
  }

  addPassword(
    appId: string,
    options: Partial<EntraEmulatorSecret> = {},
  ): EntraPasswordCredential {
    const app = this.#app(appId);
    const password = this.#add(app, options, true);
    this.host.secretCreated();
    return { ...listed(password), secretText: password.value };
  }

  removePassword(appId: string, keyId: string): void {
    const app = this.#app(appId);
    const index = app.passwords.findIndex((p) => p.keyId === keyId);
    if (index < 0) {
      throw new Error(`Application ${appId} has no password ${keyId}`);
    }
    app.passwords.splice(index, 1);
    this.host.secretRemoved(appId, keyId);
  }

  #app(appId: string): EntraApp {
    const app = this.#apps.get(appId);
    if (!app) throw new Error(`Unknown application ${appId}`);
    return app;
  }

  #add(
    app: EntraApp,
    options: Partial<EntraEmulatorSecret>,
    propagates: boolean,
  ): EntraPassword {
    const now = this.host.clock.now();
    const start = options.startDateTime === undefined
      ? now
      : Date.parse(options.startDateTime);
    const end = options.endDateTime === undefined
      ? start + TWO_YEARS_MS
      : Date.parse(options.endDateTime);
    if (Number.isNaN(start) || Number.isNaN(end) || end <= start) {
      throw new RangeError(
        "startDateTime and endDateTime must be ISO-8601 times, the end after the start",
      );
    }
    const password: EntraPassword = {
      keyId: options.keyId ?? crypto.randomUUID(),
      // Entra's generated values: 40 characters, `8Q~` after the first three.
      value: options.value ??
        `${randomFrom(SECRET_ALPHABET, 3)}8Q~${
          randomFrom(SECRET_ALPHABET, 34)
        }`,
      displayName: options.displayName ?? null,
      start,
      end,
      usableAt: propagates ? this.host.usableAt() : now,
    };
    app.passwords.push(password);
    return password;
  }

  // ---- token endpoint ----------------------------------------------------

  #stsError(
    status: number,
    error: string,
    code: number,
    text: string,
    headers?: HeadersInit,
  ): Response {
    const traceId = crypto.randomUUID();
    const correlationId = crypto.randomUUID();
    const timestamp = new Date(this.host.clock.now()).toISOString()
      .replace("T", " ").replace(/\.\d+Z$/, "Z");
    return noStore(status, {
      error,
      error_description:
        `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    }, headers);
  }

  async #token(request: Request, path: string): Promise<Response> {
    const tenant = safeDecodeURIComponent(path.split("/")[1]);
    if (request.method !== "POST") {
      return this.#stsError(
        400,
        "invalid_request",
        900561,
        "The endpoint only accepts POST requests.",
      );
    }
    if (tenant !== this.tenantId) {
      return this.#stsError(
        400,
        "invalid_request",
        90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      );
    }
    const form = await readForm(request);
    if (typeof form === "string") {
      return this.#stsError(400, "invalid_request", 900144, form);
    }
    const grantType = form.get("grant_type");
    if (grantType === null) {
      return this.#missing("grant_type");
    }
    if (grantType !== "client_credentials") {
      return this.#stsError(
        400,
        "unsupported_grant_type",
        70003,
        `The app requested an unsupported grant type '${grantType}'.`,
      );
    }
    const auth = this.host.readClientAuthentication(request, form);
    const candidates = auth.bodyId !== undefined
      ? [{ id: auth.bodyId, secret: auth.bodySecret }]
      : auth.basic ?? [];
    if (candidates.length === 0) return this.#missing("client_id");
    const scope = form.get("scope");
    if (scope === null || scope.trim() === "") return this.#missing("scope");
    const resource = this.#resourceOf(scope);
    if (resource instanceof Response) return resource;
    const app = this.#apps.get(candidates[0].id);
    if (!app) {
      return this.#stsError(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${
          candidates[0].id
        }' was not found in the directory '${this.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }
    const offered = candidates.map((c) => c.secret).filter((s) =>
      s !== undefined
    );
    if (offered.length === 0) {
      return this.#stsError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      );
    }
    const now = this.host.clock.now();
    const matching = app.passwords.filter((password) =>
      offered.some((value) => timingSafeEqual(password.value, value))
    );
    const usable = matching.find((password) =>
      now >= password.usableAt &&
      now >= password.start && now < password.end
    );
    if (usable) return this.#grant(app, usable, resource);
    if (matching.some((password) => now >= password.end)) {
      return this.#stsError(
        this.#invalidClientStatus,
        "invalid_client",
        7000222,
        `The provided client secret keys for app '${app.appId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
      );
    }
    return this.#stsError(
      this.#invalidClientStatus,
      "invalid_client",
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.appId}'.`,
    );
  }

  #missing(parameter: string): Response {
    return this.#stsError(
      400,
      "invalid_request",
      900144,
      `The request body must contain the following parameter: '${parameter}'.`,
    );
  }

  /** The one resource of a client-credentials scope, or the refusal. */
  #resourceOf(scope: string): string | Response {
    const scopes = scope.trim().split(/\s+/);
    const notDefault = scopes.find((s) => !s.endsWith("/.default"));
    if (notDefault !== undefined) {
      return this.#stsError(
        400,
        "invalid_scope",
        1002012,
        `The provided value for scope ${notDefault} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    }
    const resources = new Set(
      scopes.map((s) => s.slice(0, -"/.default".length)),
    );
    if (resources.size > 1) {
      return this.#stsError(
        400,
        "invalid_scope",
        28000,
        "Provided value for the input parameter scope is not valid because it contains more than one resource.",
      );
    }
    const [resource] = resources;
    if (this.#resources && !this.#resources.has(resource)) {
      return this.#stsError(
        400,
        "invalid_resource",
        500011,
        `The resource principal named ${resource} was not found in the tenant named ${this.tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
      );
    }
    return resource;
  }

  #grant(app: EntraApp, password: EntraPassword, resource: string): Response {
    const roles = resource === GRAPH ? [...app.permissions] : [];
    const issued: Omit<IssuedToken, "revoked" | "expiresAt" | "claims"> = {
      clientId: app.appId,
      secretId: password.keyId,
      audience: resource,
      scope: `${resource}/.default`,
    };
    const token = this.host.tokens.mint(issued, app.lifetimeSeconds, {
      aud: resource,
      iss: `https://sts.windows.net/${this.tenantId}/`,
      appid: app.appId,
      appidacr: "1",
      oid: app.objectId,
      sub: app.objectId,
      tid: this.tenantId,
      roles,
      ver: "1.0",
    });
    this.host.issued(password.keyId);
    return noStore(200, {
      token_type: "Bearer",
      expires_in: app.lifetimeSeconds,
      ext_expires_in: app.lifetimeSeconds,
      access_token: token,
    });
  }

  // ---- Graph -------------------------------------------------------------

  #graphError(status: number, code: string, message: string): Response {
    return graphError(status, code, message, this.host.clock.now());
  }

  async #graph(request: Request, path: string): Promise<Response> {
    const caller = this.#graphCaller(request);
    if (caller instanceof Response) return caller;
    const match = path.match(
      /^\/v1\.0\/applications(?:\/([^/()]+)|\(appId='([^']+)'\))(?:\/(addPassword|removePassword))?\/?$/,
    );
    if (!match) {
      return this.#graphError(
        400,
        "BadRequest",
        `Resource not found for the segment '${path.split("/")[2] ?? ""}'.`,
      );
    }
    const target = match[1] !== undefined
      ? [...this.#apps.values()].find((app) =>
        app.objectId === safeDecodeURIComponent(match[1])
      )
      : this.#apps.get(safeDecodeURIComponent(match[2]));
    const action = match[3];
    const write = action !== undefined;
    if (
      (write && request.method !== "POST") ||
      (!write && request.method !== "GET")
    ) {
      return this.#graphError(
        405,
        "Request_BadRequest",
        `The HTTP method '${request.method}' is not allowed for this resource.`,
      );
    }
    const denied = this.#authorize(caller, target, write);
    if (denied) return denied;
    if (!target) {
      return this.#graphError(
        404,
        "Request_ResourceNotFound",
        `Resource '${
          safeDecodeURIComponent(match[1] ?? match[2])
        }' does not exist or one of its queried reference-property objects are not present.`,
      );
    }
    if (action === "addPassword") {
      return await this.#addViaGraph(request, target);
    }
    if (action === "removePassword") {
      return await this.#removeViaGraph(request, target);
    }
    return this.#applicationView(request, target);
  }

  /** The calling application, or Graph's 401. */
  #graphCaller(request: Request): EntraApp | Response {
    const token = bearerToken(request.headers.get("authorization"));
    if (token === undefined) {
      return this.#graphError(
        401,
        "InvalidAuthenticationToken",
        "Access token is empty.",
      );
    }
    const record = this.host.tokens.lookup(token);
    if (record === "expired") {
      return this.#graphError(
        401,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
      );
    }
    if (typeof record === "string") {
      return this.#graphError(
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure.",
      );
    }
    if (record.audience !== GRAPH) {
      return this.#graphError(
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure. Invalid audience.",
      );
    }
    return this.#apps.get(record.clientId) ??
      this.#graphError(
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure.",
      );
  }

  /**
   * Read: `Application.Read.All`, `Application.ReadWrite.All`, or
   * `Application.ReadWrite.OwnedBy` on an owned application. Write: the
   * last two only. An unknown target is judged like one not owned.
   */
  #authorize(
    caller: EntraApp,
    target: EntraApp | undefined,
    write: boolean,
  ): Response | undefined {
    const granted = caller.permissions;
    const owned = target !== undefined && caller.owns.has(target.appId);
    const allowed = granted.has("Application.ReadWrite.All") ||
      (!write && granted.has("Application.Read.All")) ||
      (granted.has("Application.ReadWrite.OwnedBy") && owned) ||
      (target === undefined && granted.size > 0);
    if (allowed) return undefined;
    return this.#graphError(
      403,
      "Authorization_RequestDenied",
      "Insufficient privileges to complete the operation.",
    );
  }

  #applicationView(request: Request, app: EntraApp): Response {
    const full: Record<string, unknown> = {
      id: app.objectId,
      appId: app.appId,
      displayName: app.displayName,
      createdDateTime: new Date(app.createdAt).toISOString(),
      signInAudience: "AzureADMyOrg",
      passwordCredentials: app.passwords.map((password) => listed(password)),
      keyCredentials: [],
    };
    const select = new URL(request.url).searchParams.get("$select");
    const fields = select === null
      ? Object.keys(full)
      : select.split(",").map((field) => field.trim());
    const body: Record<string, unknown> = {
      "@odata.context": `${GRAPH}/v1.0/$metadata#applications(${
        select ?? ""
      })/$entity`,
    };
    for (const field of fields) {
      if (field in full) body[field] = full[field];
    }
    return json(200, body);
  }

  async #addViaGraph(request: Request, app: EntraApp): Promise<Response> {
    const body = await readJson(request);
    const given = isRecord(body) ? body.passwordCredential : undefined;
    if (
      body !== undefined &&
      (!isRecord(body) || (given !== undefined && !isRecord(given)))
    ) {
      return this.#graphError(
        400,
        "Request_BadRequest",
        "Invalid request body.",
      );
    }
    const options: Partial<EntraEmulatorSecret> = {};
    for (
      const field of ["displayName", "startDateTime", "endDateTime"] as const
    ) {
      const value = isRecord(given) ? given[field] : undefined;
      if (value === undefined || value === null) continue;
      if (typeof value !== "string") {
        return this.#graphError(
          400,
          "Request_BadRequest",
          `Invalid value specified for property '${field}' of resource 'PasswordCredential'.`,
        );
      }
      (options as Record<string, string>)[field] = value;
    }
    let password: EntraPassword;
    try {
      password = this.#add(app, options, true);
      this.host.secretCreated();
    } catch {
      return this.#graphError(
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
      );
    }
    return json(200, {
      "@odata.context":
        `${GRAPH}/v1.0/$metadata#microsoft.graph.passwordCredential`,
      ...listed(password),
      secretText: password.value,
    });
  }

  async #removeViaGraph(request: Request, app: EntraApp): Promise<Response> {
    const body = await readJson(request);
    const keyId = isRecord(body) ? body.keyId : undefined;
    if (
      typeof keyId !== "string" ||
      !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(
        keyId,
      )
    ) {
      return this.#graphError(
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'keyId' of resource 'RemovePassword'.",
      );
    }
    if (!app.passwords.some((password) => password.keyId === keyId)) {
      return this.#graphError(
        400,
        "Request_BadRequest",
        `No password credential found with keyId ${keyId}.`,
      );
    }
    this.removePassword(app.appId, keyId);
    return new Response(null, { status: 204 });
  }
}

function listed(password: EntraPassword): EntraPasswordCredential {
  return {
    customKeyIdentifier: null,
    displayName: password.displayName,
    endDateTime: new Date(password.end).toISOString(),
    hint: password.value.slice(0, 3),
    keyId: password.keyId,
    secretText: null,
    startDateTime: new Date(password.start).toISOString(),
  };
}

/** Graph's error envelope. */
function graphError(
  status: number,
  code: string,
  message: string,
  now: number,
): Response {
  const requestId = crypto.randomUUID();
  return json(status, {
    error: {
      code,
      message,
      innerError: {
        date: new Date(now).toISOString().replace(/\.\d+Z$/, ""),
        "request-id": requestId,
        "client-request-id": requestId,
      },
    },
  }, { "request-id": requestId, "client-request-id": requestId });
}
