/**
 * A local stand-in for Keycloak: a realm's OpenID Connect token endpoint and
 * the admin REST client-secret API, with and without the client secret
 * rotation policy (the `secret-rotation` executor of the preview feature
 * `client-secret-rotation`).
 *
 * Without the policy, regenerating a secret kills the old one at once and no
 * client ever has a rotated secret. With it, the old secret becomes the
 * "rotated" one until its own expiration, and the main secret is refused by
 * the token endpoint once its expiration time passes, even with the right
 * value. Admin callers present a Bearer token of a client of the same realm
 * whose service account holds `realm-management` roles.
 *
 * The policy is served as Keycloak's admin REST API shows it
 * (`GET client-policies/policies` and `…/profiles`, `view-realm`): one
 * enabled policy with the `client-access-type` condition `confidential` and
 * one profile with the `secret-rotation` executor. As in Keycloak's
 * `ClientSecretRotationExecutor`, the secret attributes live on the client:
 * removing the policy (`setSecretRotation(false)`) leaves the main secret's
 * expiration time and any rotated secret in place (the token endpoint still
 * honours both), and regenerating without the policy replaces the value
 * alone (the new secret inherits the old expiration time, after which the
 * token endpoint refuses it), so the secret in use dies at once. With
 * `rotatedExpirationPeriodSeconds: 0` the executor keeps no rotated secret
 * either.
 *
 * From the facts file: 401 `unauthorized_client` "Invalid client or Invalid
 * client credentials" for a wrong (or expired) secret, Basic credentials
 * form-URL-decoded, `client_secret_post`, `scope` optional, the
 * `{type, value}` credential, 404 "Client does not have a rotated secret",
 * `DELETE …/rotated` 204 (also when nothing was rotated, as reported of a
 * measured 26.7.1), the policy's defaults (30 d, 2 d) and its client
 * attributes in epoch seconds. Modelled without a source: 401
 * `invalid_client` for an unknown client, the 403 body, the names and
 * string-valued configuration of the served policy and profile, empty
 * global policies and profiles (a real server lists its built-in FAPI
 * profiles), and 429 when throttled (Keycloak has no rate
 * limit of its own; the answer stands for a proxy in front of it).
 *
 * @module
 */
import {
  HostedProviderEmulator,
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
  safeDecodeURIComponent,
  scopesOf,
} from "../emulator_parsing.ts";
import { timingSafeEqual } from "../emulator_helpers.ts";

/** `realm-management` client roles the admin API checks. */
export type KeycloakRealmManagementRole =
  | "view-clients"
  | "manage-clients"
  | "view-realm"
  | "manage-realm";

/** A confidential client of the realm. */
export interface KeycloakEmulatorClient {
  /** The client id (`clientId`, not the internal uuid). */
  readonly clientId: string;
  /** Its secret at start. */
  readonly secret: string;
  /**
   * The internal uuid the admin API addresses it by.
   *
   * @default a random uuid
   */
  readonly id?: string;
  /**
   * Whether it may use the client-credentials grant.
   *
   * @default true
   */
  readonly serviceAccountsEnabled?: boolean;
  /**
   * `realm-management` roles of its service account.
   *
   * @default []
   */
  readonly realmManagementRoles?: readonly KeycloakRealmManagementRole[];
  /**
   * Lifetime of its access tokens in seconds (the realm's default is 300).
   *
   * @default 300
   */
  readonly tokenLifetimeSeconds?: number;
}

/** The `secret-rotation` executor's configuration. */
export interface KeycloakSecretRotationPolicy {
  /**
   * Lifetime of a main secret, in seconds.
   *
   * @default 2592000 (30 days)
   */
  readonly expirationPeriodSeconds?: number;
  /**
   * Lifetime of a rotated secret, in seconds; 0 keeps none (regenerating
   * then kills the old secret, as without the policy). At most
   * `expirationPeriodSeconds`, as Keycloak validates.
   *
   * @default 172800 (2 days)
   */
  readonly rotatedExpirationPeriodSeconds?: number;
  /**
   * Remaining lifetime under which updating a client rotates its secret,
   * in seconds (reported only: the emulator rotates on request alone).
   *
   * @default 864000 (10 days)
   */
  readonly remainingRotationPeriodSeconds?: number;
}

/** Options for {@linkcode startKeycloakEmulator}. */
export interface KeycloakEmulatorOptions extends ProviderEmulatorOptions {
  /**
   * The realm's name.
   *
   * @default "emulator"
   */
  readonly realm?: string;
  /**
   * The secret rotation policy, for every confidential client of the realm,
   * or `false` for none (Keycloak's default: the feature is a preview).
   *
   * @default false
   */
  readonly secretRotation?: KeycloakSecretRotationPolicy | false;
  /**
   * Clients present from the start.
   *
   * @default []
   */
  readonly clients?: readonly KeycloakEmulatorClient[];
}

/** What the emulator holds of a client's secrets. */
export interface KeycloakSecretState {
  /** The main secret. */
  readonly secret: string;
  /** The emulator's id of the main secret (keys `stats().tokensBySecret`). */
  readonly secretId: string;
  /** Epoch seconds of its creation. */
  readonly creationTime: number;
  /** Epoch seconds after which it is refused; undefined without the policy. */
  readonly expirationTime: number | undefined;
  /** The rotated secret, if any. */
  readonly rotated: string | undefined;
  /** The emulator's id of the rotated secret, if any. */
  readonly rotatedSecretId: string | undefined;
  /** Epoch seconds after which the rotated secret is refused. */
  readonly rotatedExpirationTime: number | undefined;
}

/** A running Keycloak emulator; close it or `await using` it. */
export interface KeycloakEmulator extends ProviderEmulator {
  /** `{url}/realms/{realm}/protocol/openid-connect/token`. */
  readonly tokenUrl: string;
  /** `{url}/admin/realms/{realm}`. */
  readonly apiUrl: string;
  /** The realm's name. */
  readonly realm: string;
  /**
   * Adds a client.
   *
   * @param client Its client id and uuid must be new.
   */
  addClient(client: KeycloakEmulatorClient): void;
  /**
   * The internal uuid of a client id.
   *
   * @param clientId An existing client id.
   * @returns The uuid.
   */
  uuidOf(clientId: string): string;
  /**
   * Reads a client's secrets and their times.
   *
   * @param clientId An existing client id.
   * @returns A snapshot.
   */
  secretState(clientId: string): KeycloakSecretState;
  /**
   * Regenerates a client's secret behind the caller's back, as the admin
   * API does (the old one becomes rotated only under the policy).
   *
   * @param clientId An existing client id.
   * @param value The new value; a random one if left out.
   * @returns The new secret.
   */
  regenerateSecret(clientId: string, value?: string): string;
  /**
   * Turns the rotation policy on or off for the realm. As in Keycloak,
   * turning it off removes no client attribute: expiration times and
   * rotated secrets stay (and are honoured) until they expire. Turning it on
   * gives each client without an expiration time one (Keycloak does so on
   * the client's next token request or update).
   *
   * @param policy The policy, or `false`.
   */
  setSecretRotation(policy: KeycloakSecretRotationPolicy | false): void;
}

const INVALID_CREDENTIALS = "Invalid client or Invalid client credentials";
const DAY_SECONDS = 24 * 60 * 60;
const PROFILE = "secret-rotation-profile";

interface ResolvedPolicy {
  readonly expiration: number;
  readonly rotatedExpiration: number;
  readonly remaining: number;
}

interface KeycloakSecret {
  /** The emulator's own id of this value, for statistics and revocation. */
  readonly id: string;
  readonly value: string;
  /** ms on the clock. */
  readonly createdAt: number;
  /** ms on the clock from which the token endpoint accepts it. */
  readonly usableAt: number;
  /** ms on the clock, or undefined without the policy. */
  readonly expiresAt: number | undefined;
}

interface KeycloakClient {
  readonly id: string;
  readonly clientId: string;
  readonly serviceAccountsEnabled: boolean;
  readonly roles: ReadonlySet<KeycloakRealmManagementRole>;
  readonly lifetimeSeconds: number;
  main: KeycloakSecret;
  rotated: KeycloakSecret | undefined;
}

/**
 * Starts a Keycloak emulator on `127.0.0.1` and a free port (by default).
 *
 * @param options Realm, clients, rotation policy, clock and switches.
 * @returns The running emulator; close it when done.
 *
 * @example A wrong secret answers 401 unauthorized_client
 * ```ts
 * import { startKeycloakEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using keycloak = startKeycloakEmulator({
 *   clients: [{ clientId: "service", secret: "right" }],
 * });
 * const response = await fetch(keycloak.tokenUrl, {
 *   method: "POST",
 *   headers: {
 *     authorization: `Basic ${btoa("service:wrong")}`,
 *     "content-type": "application/x-www-form-urlencoded",
 *   },
 *   body: "grant_type=client_credentials",
 * });
 * const body = await response.json();
 * if (response.status !== 401 || body.error !== "unauthorized_client") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function startKeycloakEmulator(
  options?: KeycloakEmulatorOptions,
): KeycloakEmulator {
  return new Keycloak(options ?? {});
}

function resolvePolicy(
  policy: KeycloakSecretRotationPolicy | false | undefined,
): ResolvedPolicy | undefined {
  if (!policy) return undefined;
  const expiration = validSeconds(
    "expirationPeriodSeconds",
    policy.expirationPeriodSeconds,
    30 * DAY_SECONDS,
  );
  const rotatedExpiration = policy.rotatedExpirationPeriodSeconds ??
    2 * DAY_SECONDS;
  // Keycloak's executor validation: 0 allowed, longer than the main not.
  if (
    !(Number.isFinite(rotatedExpiration) && rotatedExpiration >= 0 &&
      rotatedExpiration <= expiration)
  ) {
    throw new RangeError(
      `rotatedExpirationPeriodSeconds must be from 0 to expirationPeriodSeconds, got ${policy.rotatedExpirationPeriodSeconds}`,
    );
  }
  return {
    expiration,
    rotatedExpiration,
    remaining: validSeconds(
      "remainingRotationPeriodSeconds",
      policy.remainingRotationPeriodSeconds,
      10 * DAY_SECONDS,
    ),
  };
}

class Keycloak extends HostedProviderEmulator implements KeycloakEmulator {
  readonly realm: string;
  readonly #clients = new Map<string, KeycloakClient>();
  #policy: ResolvedPolicy | undefined;
  #secretCount = 0;

  constructor(options: KeycloakEmulatorOptions) {
    super("Keycloak", options);
    this.realm = options.realm ?? "emulator";
    this.#policy = resolvePolicy(options.secretRotation);
    const realmPath = `/realms/${encodeURIComponent(this.realm)}`;
    const routes: ProviderRoutes = {
      isTokenPath: (path) =>
        /^\/realms\/[^/]+\/protocol\/openid-connect\/token$/.test(path),
      isApiPath: (path) => path.startsWith("/admin/realms/"),
      token: (request, path) =>
        path === `${realmPath}/protocol/openid-connect/token`
          ? this.#token(request)
          : Promise.resolve(json(404, { error: "Realm does not exist" })),
      // Keycloak has no built-in rate limit; a proxy in front answers 429.
      throttled: () =>
        noStore(429, {
          error: "temporarily_unavailable",
          error_description: "Too many requests",
        }, { "retry-after": "1" }),
      api: (request, path) => this.#admin(request, path),
      notFound: () =>
        json(404, { error: "Unable to find matching target resource method" }),
      serverError: () =>
        json(500, {
          error: "unknown_error",
          error_description: "For more on this error consult the server log.",
        }),
    };
    for (const client of options.clients ?? []) this.addClient(client);
    this.host.listen(routes);
  }

  get tokenUrl(): string {
    return `${this.url}/realms/${
      encodeURIComponent(this.realm)
    }/protocol/openid-connect/token`;
  }

  get apiUrl(): string {
    return `${this.url}/admin/realms/${encodeURIComponent(this.realm)}`;
  }

  addClient(client: KeycloakEmulatorClient): void {
    const id = client.id ?? crypto.randomUUID();
    for (const existing of this.#clients.values()) {
      if (existing.clientId === client.clientId || existing.id === id) {
        throw new Error(`Client ${client.clientId} already exists`);
      }
    }
    this.#clients.set(client.clientId, {
      id,
      clientId: client.clientId,
      serviceAccountsEnabled: client.serviceAccountsEnabled ?? true,
      roles: new Set(client.realmManagementRoles ?? []),
      lifetimeSeconds: validSeconds(
        "tokenLifetimeSeconds",
        client.tokenLifetimeSeconds,
        300,
      ),
      // Seeded secrets stand for old ones: no propagation delay.
      main: this.#secret(client.secret, false),
      rotated: undefined,
    });
  }

  uuidOf(clientId: string): string {
    return this.#client(clientId).id;
  }

  secretState(clientId: string): KeycloakSecretState {
    const client = this.#client(clientId);
    const seconds = (ms: number | undefined) =>
      ms === undefined ? undefined : Math.floor(ms / 1000);
    return {
      secret: client.main.value,
      secretId: client.main.id,
      creationTime: Math.floor(client.main.createdAt / 1000),
      expirationTime: seconds(client.main.expiresAt),
      rotated: client.rotated?.value,
      rotatedSecretId: client.rotated?.id,
      rotatedExpirationTime: seconds(client.rotated?.expiresAt),
    };
  }

  regenerateSecret(clientId: string, value?: string): string {
    const client = this.#client(clientId);
    const now = this.host.clock.now();
    const old = client.main;
    const fresh = this.#secret(value ?? secretValue(), true);
    this.host.secretCreated();
    const policy = this.#policy;
    if (!policy) {
      // No executor runs: Keycloak replaces the value alone, and the secret
      // attributes (expiration time, a rotated secret) stay as they were.
      client.main = { ...fresh, expiresAt: old.expiresAt };
      this.host.secretRemoved(client.clientId, old.id);
      return client.main.value;
    }
    client.main = fresh;
    // Only one rotated secret is kept: a second regeneration drops the first.
    const replaced = client.rotated;
    if (replaced) this.host.secretRemoved(client.clientId, replaced.id);
    if (policy.rotatedExpiration > 0) {
      client.rotated = {
        ...old,
        expiresAt: now + policy.rotatedExpiration * 1000,
      };
    } else {
      // rotated-expiration-period 0: the executor removes the rotation.
      client.rotated = undefined;
      this.host.secretRemoved(client.clientId, old.id);
    }
    return client.main.value;
  }

  setSecretRotation(policy: KeycloakSecretRotationPolicy | false): void {
    const resolved = resolvePolicy(policy);
    this.#policy = resolved;
    // Nothing removes the attributes when the policy goes.
    if (!resolved) return;
    for (const client of this.#clients.values()) {
      if (client.main.expiresAt !== undefined) continue;
      client.main = {
        ...client.main,
        expiresAt: this.host.clock.now() + resolved.expiration * 1000,
      };
    }
  }

  #client(clientId: string): KeycloakClient {
    const client = this.#clients.get(clientId);
    if (!client) throw new Error(`Unknown client ${clientId}`);
    return client;
  }

  #secret(value: string, propagates: boolean): KeycloakSecret {
    const now = this.host.clock.now();
    return {
      id: `kcs-${++this.#secretCount}`,
      value,
      createdAt: now,
      usableAt: propagates ? this.host.usableAt() : now,
      expiresAt: this.#policy
        ? now + this.#policy.expiration * 1000
        : undefined,
    };
  }

  // ---- token endpoint ----------------------------------------------------

  async #token(request: Request): Promise<Response> {
    if (request.method !== "POST") {
      return json(405, { error: "HTTP 405 Method Not Allowed" });
    }
    const form = await readForm(request);
    if (typeof form === "string") {
      return noStore(400, {
        error: "invalid_request",
        error_description: form,
      });
    }
    const auth = this.host.readClientAuthentication(request, form);
    // Keycloak reads the Authorization header first, the form second.
    const candidates = auth.basic ??
      (auth.bodyId === undefined
        ? []
        : [{ id: auth.bodyId, secret: auth.bodySecret }]);
    if (candidates.length === 0) {
      return noStore(400, {
        error: "invalid_client",
        error_description: "Missing client_id parameter",
      });
    }
    const client = this.#clients.get(candidates[0].id);
    if (!client) {
      return noStore(401, {
        error: "invalid_client",
        error_description: INVALID_CREDENTIALS,
      });
    }
    const offered = candidates.map((c) => c.secret).filter((s) =>
      s !== undefined
    );
    const secret = this.#accepted(client, offered);
    if (secret === undefined) {
      return noStore(401, {
        error: "unauthorized_client",
        error_description: INVALID_CREDENTIALS,
      });
    }
    const grantType = form.get("grant_type");
    if (grantType === null) {
      return noStore(400, {
        error: "invalid_request",
        error_description: "Missing form parameter: grant_type",
      });
    }
    if (grantType !== "client_credentials") {
      return noStore(400, {
        error: "unsupported_grant_type",
        error_description: "Unsupported grant_type",
      });
    }
    if (!client.serviceAccountsEnabled) {
      return noStore(401, {
        error: "unauthorized_client",
        error_description: "Client not enabled to retrieve service account",
      });
    }
    return this.#grant(client, secret, scopesOf(form));
  }

  /** The live secret an offered value matches, if any. */
  #accepted(
    client: KeycloakClient,
    offered: readonly (string | undefined)[],
  ): KeycloakSecret | undefined {
    const now = this.host.clock.now();
    const live = (secret: KeycloakSecret | undefined) =>
      secret !== undefined &&
      now >= secret.usableAt &&
      (secret.expiresAt === undefined || now < secret.expiresAt) &&
      offered.some((value) =>
        value !== undefined && timingSafeEqual(secret.value, value)
      );
    if (live(client.main)) return client.main;
    if (live(client.rotated)) return client.rotated;
    return undefined;
  }

  #grant(
    client: KeycloakClient,
    secret: KeycloakSecret,
    requested: readonly string[],
  ): Response {
    const scope = [...new Set(["profile", "email", ...requested])].join(" ");
    const issuer = `${this.url}/realms/${encodeURIComponent(this.realm)}`;
    const issued: Omit<IssuedToken, "revoked" | "expiresAt" | "claims"> = {
      clientId: client.clientId,
      secretId: secret.id,
      audience: "account",
      scope,
    };
    const roles = [...client.roles];
    const token = this.host.tokens.mint(issued, client.lifetimeSeconds, {
      jti: crypto.randomUUID(),
      iss: issuer,
      aud: roles.length > 0 ? ["realm-management", "account"] : "account",
      sub: crypto.randomUUID(),
      typ: "Bearer",
      azp: client.clientId,
      client_id: client.clientId,
      scope,
      resource_access: roles.length > 0
        ? { "realm-management": { roles } }
        : {},
    });
    this.host.issued(secret.id);
    return noStore(200, {
      access_token: token,
      expires_in: client.lifetimeSeconds,
      refresh_expires_in: 0,
      token_type: "Bearer",
      "not-before-policy": 0,
      scope,
    });
  }

  // ---- admin REST --------------------------------------------------------

  #admin(request: Request, path: string): Response {
    const prefix = `/admin/realms/${encodeURIComponent(this.realm)}`;
    if (!path.startsWith(`${prefix}/`) && path !== prefix) {
      return json(404, { error: "Realm not found." });
    }
    const caller = this.#caller(request);
    if (caller instanceof Response) return caller;
    const rest = path.slice(prefix.length).replace(/\/$/, "");
    const method = request.method;
    if (rest === "/clients" && method === "GET") {
      if (!this.#may(caller, "clients", false)) return forbidden();
      const wanted = new URL(request.url).searchParams.get("clientId");
      const found = [...this.#clients.values()].filter((client) =>
        wanted === null || client.clientId === wanted
      );
      return json(200, found.map((client) => this.#representation(client)));
    }
    // Both need view-realm (`requireViewRealm` in Keycloak's resources).
    const query = new URL(request.url).searchParams;
    if (rest === "/client-policies/profiles" && method === "GET") {
      if (!this.#may(caller, "realm", false)) return forbidden();
      return json(200, {
        profiles: this.#profiles(),
        ...(query.get("include-global-profiles") === "true"
          ? { globalProfiles: [] }
          : {}),
      });
    }
    if (rest === "/client-policies/policies" && method === "GET") {
      if (!this.#may(caller, "realm", false)) return forbidden();
      return json(200, {
        policies: this.#policies(),
        ...(query.get("include-global-policies") === "true"
          ? { globalPolicies: [] }
          : {}),
      });
    }
    const match = rest.match(
      /^\/clients\/([^/]+)(\/client-secret(\/rotated)?)?$/,
    );
    if (!match) {
      return json(404, {
        error: "Unable to find matching target resource method",
      });
    }
    const uuid = safeDecodeURIComponent(match[1]);
    const write = method !== "GET";
    if (!this.#may(caller, "clients", write)) return forbidden();
    const client = [...this.#clients.values()].find((c) => c.id === uuid);
    if (!client) return json(404, { error: "Could not find client" });
    if (match[2] === undefined) {
      if (method !== "GET") return methodNotAllowed();
      return json(200, this.#representation(client));
    }
    if (match[3] === undefined) {
      if (method === "GET") return credential(client.main.value);
      if (method === "POST") {
        return credential(this.regenerateSecret(client.clientId));
      }
      return methodNotAllowed();
    }
    if (method === "GET") {
      const rotated = this.#liveRotated(client);
      return rotated === undefined
        ? json(404, { error: "Client does not have a rotated secret" })
        : credential(rotated.value);
    }
    if (method === "DELETE") {
      // Idempotent in Keycloak: 204 whether or not a rotated secret existed.
      const rotated = client.rotated;
      if (rotated) {
        client.rotated = undefined;
        this.host.secretRemoved(client.clientId, rotated.id);
      }
      return new Response(null, { status: 204 });
    }
    return methodNotAllowed();
  }

  #liveRotated(client: KeycloakClient): KeycloakSecret | undefined {
    const rotated = client.rotated;
    if (rotated?.expiresAt !== undefined) {
      if (this.host.clock.now() >= rotated.expiresAt) return undefined;
    }
    return rotated;
  }

  /** The calling client, or Keycloak's 401. */
  #caller(request: Request): KeycloakClient | Response {
    const token = bearerToken(request.headers.get("authorization"));
    const record = token === undefined
      ? "unknown"
      : this.host.tokens.lookup(token);
    const caller = typeof record === "string"
      ? undefined
      : this.#clients.get(record.clientId);
    return caller ?? json(401, { error: "HTTP 401 Unauthorized" });
  }

  #may(
    caller: KeycloakClient,
    area: "clients" | "realm",
    write: boolean,
  ): boolean {
    const manage = caller.roles.has(`manage-${area}`);
    return write ? manage : manage || caller.roles.has(`view-${area}`);
  }

  #representation(client: KeycloakClient) {
    const state = this.secretState(client.clientId);
    const attributes: Record<string, string> = {
      "client.secret.creation.time": String(state.creationTime),
    };
    if (state.expirationTime !== undefined) {
      attributes["client.secret.expiration.time"] = String(
        state.expirationTime,
      );
    }
    if (this.#liveRotated(client) !== undefined) {
      attributes["client.secret.rotated"] = state.rotated!;
      attributes["client.secret.rotated.expiration.time"] = String(
        state.rotatedExpirationTime,
      );
    }
    return {
      id: client.id,
      clientId: client.clientId,
      enabled: true,
      clientAuthenticatorType: "client-secret",
      secret: client.main.value,
      publicClient: false,
      bearerOnly: false,
      serviceAccountsEnabled: client.serviceAccountsEnabled,
      standardFlowEnabled: false,
      protocol: "openid-connect",
      attributes,
    };
  }

  /** The realm's own profiles (`ClientProfileRepresentation`s). */
  #profiles() {
    const policy = this.#policy;
    return policy
      ? [{
        name: PROFILE,
        executors: [{
          executor: "secret-rotation",
          configuration: {
            "expiration-period": String(policy.expiration),
            "rotated-expiration-period": String(policy.rotatedExpiration),
            "remaining-rotation-period": String(policy.remaining),
          },
        }],
      }]
      : [];
  }

  /** The realm's own policies (`ClientPolicyRepresentation`s). */
  #policies() {
    return this.#policy
      ? [{
        name: "secret-rotation-policy",
        enabled: true,
        conditions: [{
          condition: "client-access-type",
          configuration: { type: ["confidential"] },
        }],
        profiles: [PROFILE],
      }]
      : [];
  }
}

function credential(value: string): Response {
  return json(200, { type: "secret", value });
}

function forbidden(): Response {
  return json(403, {
    error: "unknown_error",
    error_description: "For more on this error consult the server log.",
  });
}

function methodNotAllowed(): Response {
  return json(405, { error: "HTTP 405 Method Not Allowed" });
}

/** A Keycloak-style generated secret: 32 alphanumerics. */
function secretValue(): string {
  return randomFrom(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    32,
  );
}
