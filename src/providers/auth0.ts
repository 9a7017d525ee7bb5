/**
 * Auth0 behind the rotation engine's provider port: twin clients, one
 * secret each, replaced by the Management API's `rotate-secret` (the old
 * secret dies at once; Auth0 says the new one may take up to thirty seconds
 * to work).
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  SecretProvider,
} from "../rotation/provider.ts";
import { Secret } from "../secret.ts";
import { host } from "./presets.ts";
import {
  type AdminIoOptions,
  type AdminRefusal,
  type AdminRequest,
  baseUrl,
  bearer,
  createAdminTransport,
  kindOfStatus,
  nonNegativeMs,
  type ProviderApiError,
  type ProviderErrorCodes,
  type ProviderFailure,
  requireId,
  stringField,
  throttleWait,
  undocumentedAnswer,
} from "./admin_http.ts";

/** The stable error codes of the Auth0 adapter. */
export const Auth0ErrorCode: {
  readonly UNAUTHORIZED: "AUTH0_ADMIN_UNAUTHORIZED";
  readonly FORBIDDEN: "AUTH0_ADMIN_FORBIDDEN";
  readonly NOT_FOUND: "AUTH0_NOT_FOUND";
  readonly LIMIT_REACHED: "AUTH0_LIMIT_REACHED";
  readonly REFUSED: "AUTH0_REQUEST_REFUSED";
  readonly RATE_LIMITED: "AUTH0_RATE_LIMITED";
  readonly UNAVAILABLE: "AUTH0_API_UNAVAILABLE";
  readonly REQUEST_FAILED: "AUTH0_API_REQUEST_FAILED";
} = Object.freeze(
  {
    UNAUTHORIZED: "AUTH0_ADMIN_UNAUTHORIZED",
    FORBIDDEN: "AUTH0_ADMIN_FORBIDDEN",
    NOT_FOUND: "AUTH0_NOT_FOUND",
    LIMIT_REACHED: "AUTH0_LIMIT_REACHED",
    REFUSED: "AUTH0_REQUEST_REFUSED",
    RATE_LIMITED: "AUTH0_RATE_LIMITED",
    UNAVAILABLE: "AUTH0_API_UNAVAILABLE",
    REQUEST_FAILED: "AUTH0_API_REQUEST_FAILED",
  } as const satisfies ProviderErrorCodes,
);

/** One of the values of {@linkcode Auth0ErrorCode}. */
export type Auth0ErrorCode = typeof Auth0ErrorCode[keyof typeof Auth0ErrorCode];

/** How long Auth0 says a rotated secret may take to work: thirty seconds. */
export const AUTH0_PROPAGATION_MS = 30_000;

/** Options of {@linkcode auth0SecretProvider}. */
export interface Auth0SecretProviderOptions extends AdminIoOptions {
  /**
   * The tenant's domain, such as `my-tenant.eu.auth0.com` (the Management
   * API is served there, not on a custom domain). Give this or `apiUrl`.
   *
   * @default undefined (give `apiUrl`)
   */
  readonly domain?: string;
  /**
   * The Management API's base URL.
   *
   * @default "https://{domain}/api/v2"
   */
  readonly apiUrl?: string;
  /**
   * Gives a Management API access token (client credentials with
   * `audience=https://{domain}/api/v2/`) of an application granted
   * `read:clients` (inspect) and `update:client_keys` (rotate).
   */
  readonly getAccessToken: (
    options?: { signal?: AbortSignal },
  ) => Promise<string>;
  /**
   * Drops a cached token Auth0 refused (such as `auth.invalidate`); when
   * given, a 401 is replayed once with a fresh token.
   *
   * @default undefined (a 401 is final)
   */
  readonly invalidateToken?: (token: string) => void;
  /**
   * How long a rotated secret may take to work, in ms: the proof of a
   * rotation waits at least this long before giving up.
   *
   * @default 30_000 (what Auth0 documents)
   */
  readonly propagationMs?: number;
}

/**
 * Auth0's Management API as a {@linkcode SecretProvider} of twin clients:
 * `inspectClient` reads the client (`read:clients`; the secret is never
 * asked for), `issueSecret` calls `rotate-secret` on it
 * (`update:client_keys`) and returns the new secret with `propagationMs`
 * (30 s by default, as Auth0 documents). The engine calls it on the standby
 * client only: the old secret dies at once. Throttling (`Retry-After`,
 * `x-ratelimit-reset`), 5xx and network failures are retried; a second
 * rotation of the standby is harmless, as only the last secret is kept.
 *
 * @param options The tenant, the Management API token getter and I/O.
 * @returns The provider; it has no `revokeSecret`. Errors are
 *   {@linkcode ProviderApiError}s with an {@linkcode Auth0ErrorCode}.
 * @throws {ConfigError} When neither `domain` nor `apiUrl` is given, a URL
 *   is not https (or http on loopback), or `getAccessToken` is not a function.
 *
 * @example Rotate the standby client's secret
 * ```ts
 * import { auth0SecretProvider } from "@rotating/dual-secret-auth/providers";
 * import { startAuth0Emulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using auth0 = startAuth0Emulator({ apis: [{ identifier: "https://orders.example" }] });
 * auth0.addClient({ clientId: "green", secret: "green-secret", grants: [{ audience: "https://orders.example" }] });
 * auth0.addClient({
 *   clientId: "admin",
 *   secret: "admin-secret",
 *   grants: [{ audience: auth0.managementAudience, scopes: ["read:clients", "update:client_keys"] }],
 * });
 * const provider = auth0SecretProvider({
 *   apiUrl: auth0.apiUrl,
 *   // Normally auth.getAccessToken of the admin application.
 *   getAccessToken: () => Promise.resolve(auth0.issueToken("admin", auth0.managementAudience)),
 * });
 * const issued = await provider.issueSecret("green");
 * if (issued.secret.reveal() !== auth0.getClientSecret("green")) throw new Error();
 * if (issued.propagationMs !== 30_000 || provider.model !== "twin-clients") throw new Error();
 * ```
 */
export function auth0SecretProvider(
  options: Auth0SecretProviderOptions,
): SecretProvider {
  if (options.apiUrl === undefined && options.domain === undefined) {
    throw new ConfigError(
      "domain",
      "give the tenant's domain, such as my-tenant.eu.auth0.com (or apiUrl)",
    );
  }
  const api = options.apiUrl === undefined
    ? `https://${host("domain", options.domain)}/api/v2`
    : baseUrl("apiUrl", options.apiUrl);
  const propagationMs = nonNegativeMs(
    "propagationMs",
    options.propagationMs ?? AUTH0_PROPAGATION_MS,
  );
  const transport = createAdminTransport({
    provider: "Auth0",
    codes: Auth0ErrorCode,
    authorize: bearer(options.getAccessToken),
    invalidate: options.invalidateToken,
    classify,
    fetch: options.fetch,
    clock: options.clock,
    retry: options.retry,
    requestTimeoutMs: options.requestTimeoutMs,
    random: options.random,
  });
  const clientUrl = (clientId: string) =>
    `${api}/clients/${encodeURIComponent(requireId(clientId, "clientId"))}`;

  return Object.freeze({
    name: "Auth0",
    model: "twin-clients" as const,
    issuedTokens:
      "rotate-secret does not end access tokens already issued, and the Management API calls this tool uses have none that does: treat them as valid until they expire (expires_in 86400 s, 24 h, by default)",
    async inspectClient(
      clientId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderClientInfo> {
      const operation = `read Auth0 client ${clientId}`;
      const { body } = await transport({
        method: "GET",
        // Only these fields: a token with read:client_keys would get the secret.
        url: `${clientUrl(clientId)}?fields=client_id,name&include_fields=true`,
        operation,
        permission: "read:clients",
        idempotent: true,
        signal: callOptions?.signal,
      });
      const id = stringField(body, "client_id");
      if (id === undefined) throw undocumented(operation, "client_id");
      // Auth0 clients have no state; the token lifetime belongs to the API.
      return { clientId: id, state: "active" };
    },
    async issueSecret(clientId: string): Promise<IssuedSecret> {
      // No signal: once sent, the call must return so its secret is stored.
      const operation = `rotate the secret of Auth0 client ${clientId}`;
      const { body } = await transport({
        method: "POST",
        url: `${clientUrl(clientId)}/rotate-secret`,
        operation,
        permission: "update:client_keys",
        // Rotating the standby twice is harmless: only the last secret is used.
        idempotent: true,
      });
      const id = stringField(body, "client_id");
      const value = stringField(body, "client_secret");
      if (value === undefined) {
        throw undocumented(
          operation,
          "client_secret (the secret was rotated anyway: treat the old one as dead and rotate again)",
        );
      }
      return {
        clientId: id ?? clientId,
        secret: new Secret(value),
        propagationMs,
      };
    },
  });
}

/** Reads the Management API's envelope `{statusCode, error, message, errorCode}`. */
function classify(
  refusal: AdminRefusal,
  request: AdminRequest,
): ProviderFailure {
  const { status, body, quote } = refusal;
  const errorCode = quote(stringField(body, "errorCode"));
  const said = quote(stringField(body, "message"));
  const words = `HTTP ${status}${errorCode ? ` ${errorCode}` : ""}${
    said ? `: "${said}"` : ""
  }`;
  const common = { status, providerCode: errorCode };
  if (status === 401) {
    return {
      ...common,
      kind: "unauthorized",
      message: `the Management API refused the access token (${words}). ` +
        `Get it with audience https://{your tenant's domain}/api/v2/.`,
    };
  }
  if (status === 403) {
    return {
      ...common,
      kind: "forbidden",
      permission: request.permission,
      message:
        `the admin application lacks ${request.permission} (${words}). ` +
        `Grant it that scope under APIs → Auth0 Management API → Machine ` +
        `to Machine Applications.`,
    };
  }
  if (status === 404) {
    return {
      ...common,
      kind: "not-found",
      message: `Auth0 has no such client (${words}). Check the client id ` +
        `and the tenant.`,
    };
  }
  if (status === 429) {
    const retryAfterMs = throttleWait(refusal.headers, refusal.now);
    return {
      ...common,
      kind: "rate-limited",
      retryAfterMs,
      message: `Auth0 is rate limiting the Management API (${words}). ` +
        `Retry later.`,
    };
  }
  const kind = kindOfStatus(status);
  return {
    ...common,
    kind,
    message: kind === "unavailable"
      ? `the Management API is unavailable (${words}); check status.auth0.com and retry.`
      : `the Management API refused the request (${words}).`,
  };
}

function undocumented(operation: string, what: string): ProviderApiError {
  return undocumentedAnswer(Auth0ErrorCode, "Auth0", operation, what);
}
