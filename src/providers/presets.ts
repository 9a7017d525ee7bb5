/**
 * Token endpoint presets for identity providers other than Genesys Cloud:
 * each derives the token URL (and the scope or extra parameters the provider
 * requires) from the few values its console shows, the way `environment`
 * does for Genesys Cloud. Kept out of the core entry point so that only an
 * application using a provider pays for its preset.
 *
 * @module
 */
import { resolveAllowedUrl } from "../allowed_url.ts";
import { ConfigError } from "../errors.ts";

/** What a preset gives: spread it into `createDualSecretAuth`'s options. */
export interface ProviderPreset {
  /** The provider's token endpoint. */
  readonly tokenUrl: string;
  /** The scope the provider needs, when it needs or was given one. */
  readonly scope?: string | readonly string[];
  /** Further token request parameters (Auth0's `audience`). */
  readonly tokenParams?: Readonly<Record<string, string>>;
}

/** Scopes as `createDualSecretAuth` takes them. */
export type Scope = string | readonly string[];

/** Okta: a custom authorization server of an Okta org. */
export interface OktaPresetOptions {
  /** The org's host, such as `dev-123456.okta.com` (an `https://` URL of it is accepted too). */
  readonly domain: string;
  /**
   * The custom authorization server's id. Okta's org server (`/oauth2/v1/token`)
   * does not grant client credentials with a client secret.
   *
   * @default {"default"}
   */
  readonly authServerId?: string;
  /** The scopes to request: Okta requires at least one for client credentials. */
  readonly scope: Scope;
}

/** Microsoft Entra ID (v2.0 endpoint). */
export interface EntraPresetOptions {
  /** The directory (tenant) id, a GUID, or a verified domain such as `contoso.onmicrosoft.com`. */
  readonly tenantId: string;
  /**
   * The resource (API) to get tokens for, such as `api://<app id>` or
   * `https://graph.microsoft.com`; the scope requested is `<resource>/.default`.
   */
  readonly resource: string;
  /**
   * The login host of the cloud, such as `login.microsoftonline.us`.
   *
   * @default {"login.microsoftonline.com"}
   */
  readonly authorityHost?: string;
}

/** Keycloak: one realm of a Keycloak server. */
export interface KeycloakPresetOptions {
  /** The server's base URL, such as `https://sso.example.com` (with `/auth` for Keycloak before 17). */
  readonly baseUrl: string;
  /** The realm's name. */
  readonly realm: string;
  /** Scopes to request; Keycloak needs none. */
  readonly scope?: Scope;
}

/** AWS Cognito user pools: the pool's domain, given whole or as prefix and region. */
export type CognitoPresetOptions =
  | {
    /** The pool's domain: `<prefix>.auth.<region>.amazoncognito.com` or a custom domain. */
    readonly domain: string;
    /** Scopes to request (resource server scopes); optional. */
    readonly scope?: Scope;
  }
  | {
    /** The Cognito domain prefix, such as `my-app`. */
    readonly userPoolDomain: string;
    /** The AWS region, such as `eu-west-1`. */
    readonly region: string;
    /** Scopes to request (resource server scopes); optional. */
    readonly scope?: Scope;
  };

/** Auth0: one tenant and the API to get tokens for. */
export interface Auth0PresetOptions {
  /** The tenant's domain, such as `my-tenant.eu.auth0.com`, or its custom domain. */
  readonly domain: string;
  /** The API identifier; Auth0 requires it for client credentials. */
  readonly audience: string;
  /** Scopes to request; optional (Auth0 grants the client's granted scopes). */
  readonly scope?: Scope;
}

/**
 * The token endpoint of an Okta custom authorization server:
 * `https://<domain>/oauth2/<authServerId>/v1/token`, with the scope Okta
 * requires.
 *
 * @param options The org's domain, the authorization server and the scope.
 * @returns The options to spread into `createDualSecretAuth`.
 * @throws {ConfigError} When a field is missing or malformed (`okta.domain`,
 *   `okta.authServerId`, `okta.scope`).
 *
 * @example Two secrets of one Okta client
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { okta } from "@rotating/dual-secret-auth/providers";
 *
 * await using auth = createDualSecretAuth({
 *   ...okta({ domain: "dev-123456.okta.com", scope: "orders.read" }),
 *   credentials: [
 *     { label: "a", clientId: "0oa1", clientSecret: "first-secret" },
 *     { label: "b", clientId: "0oa1", clientSecret: "second-secret" },
 *   ],
 * });
 * ```
 */
export function okta(options: OktaPresetOptions): ProviderPreset {
  const { domain, authServerId = "default", scope } = object("okta", options);
  if (typeof authServerId !== "string" || !/^\w+$/.test(authServerId)) {
    throw new ConfigError(
      "okta.authServerId",
      "must be the id of a custom authorization server (such as default or aus…), as Security › API lists it",
    );
  }
  return Object.freeze({
    tokenUrl: `https://${
      host("okta.domain", domain)
    }/oauth2/${authServerId}/v1/token`,
    scope: requiredScope(
      "okta.scope",
      scope,
      "Okta requires a scope for client credentials (without one it answers 400 invalid_scope); name a scope of the authorization server",
    ),
  });
}

/** A tenant id (GUID) or a domain name. */
const TENANT =
  /^(?:[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)$/i;

/** Tenant names that mean "any tenant": client credentials need one tenant. */
const MULTI_TENANT = /^(common|organizations|consumers)$/i;

/**
 * The Microsoft Entra ID v2.0 token endpoint of one tenant,
 * `https://login.microsoftonline.com/<tenantId>/oauth2/v2.0/token`, with the
 * scope `<resource>/.default` it requires.
 *
 * @param options The tenant, the resource and, for national clouds, the login host.
 * @returns The options to spread into `createDualSecretAuth`.
 * @throws {ConfigError} When a field is missing or malformed (`entra.tenantId`,
 *   `entra.resource`, `entra.authorityHost`).
 *
 * @example
 * ```ts
 * import { entra } from "@rotating/dual-secret-auth/providers";
 *
 * const preset = entra({
 *   tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
 *   resource: "https://graph.microsoft.com",
 * });
 * if (preset.scope !== "https://graph.microsoft.com/.default") throw new Error();
 * ```
 */
export function entra(options: EntraPresetOptions): ProviderPreset {
  const { tenantId, resource, authorityHost = "login.microsoftonline.com" } =
    object("entra", options);
  if (
    typeof tenantId !== "string" || MULTI_TENANT.test(tenantId) ||
    !TENANT.test(tenantId)
  ) {
    throw new ConfigError(
      "entra.tenantId",
      "must be the directory (tenant) id or a verified domain of the tenant; client credentials cannot use common, organizations or consumers",
    );
  }
  if (
    typeof resource !== "string" || resource.trim() === "" ||
    /\s/.test(resource.trim())
  ) {
    throw new ConfigError(
      "entra.resource",
      "must be the resource's application id URI or id, such as api://<app id> or https://graph.microsoft.com",
    );
  }
  const base = resource.trim().replace(/\/\.default$/, "").replace(/\/+$/, "");
  return Object.freeze({
    tokenUrl: `https://${
      host("entra.authorityHost", authorityHost)
    }/${tenantId}/oauth2/v2.0/token`,
    scope: `${base}/.default`,
  });
}

/**
 * The token endpoint of a Keycloak realm:
 * `<baseUrl>/realms/<realm>/protocol/openid-connect/token`.
 *
 * @param options The server's base URL, the realm and optional scopes.
 * @returns The options to spread into `createDualSecretAuth`.
 * @throws {ConfigError} When a field is missing or malformed
 *   (`keycloak.baseUrl`, `keycloak.realm`).
 *
 * @example
 * ```ts
 * import { keycloak } from "@rotating/dual-secret-auth/providers";
 *
 * const { tokenUrl } = keycloak({ baseUrl: "https://sso.example.com", realm: "prod" });
 * if (tokenUrl !== "https://sso.example.com/realms/prod/protocol/openid-connect/token") {
 *   throw new Error(tokenUrl);
 * }
 * ```
 */
export function keycloak(options: KeycloakPresetOptions): ProviderPreset {
  const { baseUrl, realm, scope } = object("keycloak", options);
  const url = resolveAllowedUrl("keycloak.baseUrl", baseUrl);
  if (url.search || url.hash) {
    throw new ConfigError(
      "keycloak.baseUrl",
      "must be the server's base URL, without a query or fragment",
    );
  }
  // "." and ".." would be resolved away as URL path segments.
  if (typeof realm !== "string" || /^\s*\.{0,2}\s*$/.test(realm)) {
    throw new ConfigError("keycloak.realm", "must be the realm's name");
  }
  return withScope({
    tokenUrl: `${url.href.replace(/\/+$/, "")}/realms/${
      encodeURIComponent(realm.trim())
    }/protocol/openid-connect/token`,
  }, scope);
}

/**
 * The token endpoint of an AWS Cognito user pool domain:
 * `https://<userPoolDomain>.auth.<region>.amazoncognito.com/oauth2/token`,
 * or `https://<domain>/oauth2/token` for a domain given whole (a custom one).
 *
 * @param options `{ domain }` or `{ userPoolDomain, region }`, and optional scopes.
 * @returns The options to spread into `createDualSecretAuth`.
 * @throws {ConfigError} When a field is missing or malformed, or both forms
 *   are given (`cognito.domain`, `cognito.userPoolDomain`, `cognito.region`).
 *
 * @example
 * ```ts
 * import { cognito } from "@rotating/dual-secret-auth/providers";
 *
 * const { tokenUrl } = cognito({ userPoolDomain: "my-app", region: "eu-west-1" });
 * if (tokenUrl !== "https://my-app.auth.eu-west-1.amazoncognito.com/oauth2/token") {
 *   throw new Error(tokenUrl);
 * }
 * ```
 */
export function cognito(options: CognitoPresetOptions): ProviderPreset {
  const given = object("cognito", options) as {
    domain?: unknown;
    userPoolDomain?: unknown;
    region?: unknown;
    scope?: Scope;
  };
  const { domain, userPoolDomain, region, scope } = given;
  if (domain !== undefined) {
    if (userPoolDomain !== undefined || region !== undefined) {
      throw new ConfigError(
        "cognito.domain",
        "give either domain or userPoolDomain with region, not both",
      );
    }
    return withScope({
      tokenUrl: `https://${host("cognito.domain", domain)}/oauth2/token`,
    }, scope);
  }
  if (
    typeof userPoolDomain !== "string" ||
    !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(userPoolDomain)
  ) {
    throw new ConfigError(
      "cognito.userPoolDomain",
      "must be the Cognito domain prefix (lower-case letters, digits and hyphens, such as my-app), or give domain instead",
    );
  }
  if (typeof region !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new ConfigError(
      "cognito.region",
      "must be the user pool's AWS region, such as eu-west-1",
    );
  }
  return withScope({
    tokenUrl:
      `https://${userPoolDomain}.auth.${region}.amazoncognito.com/oauth2/token`,
  }, scope);
}

/**
 * The token endpoint of an Auth0 tenant, `https://<domain>/oauth/token`, with
 * the `audience` Auth0 requires. Auth0 applications authenticate with
 * `client_secret_post` unless set to Basic: give each credential
 * `authMethod: "client_secret_post"` to match.
 *
 * @param options The tenant's domain, the API's identifier and optional scopes.
 * @returns The options to spread into `createDualSecretAuth`.
 * @throws {ConfigError} When a field is missing or malformed (`auth0.domain`,
 *   `auth0.audience`).
 *
 * @example Twin clients of one Auth0 API
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { auth0 } from "@rotating/dual-secret-auth/providers";
 *
 * await using auth = createDualSecretAuth({
 *   ...auth0({ domain: "my-tenant.eu.auth0.com", audience: "https://api.example.com" }),
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret", authMethod: "client_secret_post" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret", authMethod: "client_secret_post" },
 *   ],
 * });
 * ```
 */
export function auth0(options: Auth0PresetOptions): ProviderPreset {
  const { domain, audience, scope } = object("auth0", options);
  if (typeof audience !== "string" || audience.trim() === "") {
    throw new ConfigError(
      "auth0.audience",
      "must be the API's identifier (Applications › APIs); Auth0 requires it for client credentials",
    );
  }
  return withScope({
    tokenUrl: `https://${host("auth0.domain", domain)}/oauth/token`,
    tokenParams: Object.freeze({ audience: audience.trim() }),
  }, scope);
}

function object<T>(preset: string, options: T): T {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError(preset, "pass an options object");
  }
  return options;
}

/** A DNS host name with an optional port; an `https://` prefix and a trailing slash are forgiven. */
const HOST =
  /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::\d{1,5})?$/;

/**
 * Reads a host name option the way every preset does (and the Auth0 admin
 * adapter, for its tenant's domain).
 * Internal: `tests/providers/presets_test.ts` tests it through the presets.
 *
 * @param option The option's name, for the error.
 * @param value The host as given.
 * @returns The host, lower-case, with its port if given.
 * @throws {ConfigError} When it is not a DNS host name (a path, `http://`, user info).
 */
export function host(option: string, value: unknown): string {
  const name = typeof value === "string"
    ? value.trim().toLowerCase().replace(/^https:\/\//, "").replace(/\/$/, "")
    : "";
  if (!HOST.test(name)) {
    throw new ConfigError(
      option,
      "must be a host name such as login.example.com (no path, no http://)",
    );
  }
  return name;
}

function withScope(
  preset: ProviderPreset,
  scope: Scope | undefined,
): ProviderPreset {
  return Object.freeze(scope === undefined ? preset : { ...preset, scope });
}

function requiredScope(option: string, scope: unknown, why: string): Scope {
  const list = typeof scope === "string"
    ? scope.split(/\s+/)
    : Array.isArray(scope)
    ? scope
    : [];
  if (!list.some((s) => typeof s === "string" && s.trim() !== "")) {
    throw new ConfigError(option, why);
  }
  return scope as Scope;
}
