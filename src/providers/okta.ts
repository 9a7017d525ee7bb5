/**
 * Okta behind the rotation engine's provider port: two secrets on one
 * client, through the app client-secret API
 * (`/api/v1/apps/{appId}/credentials/secrets`). Okta keeps at most two
 * secret objects per client; a secret is revoked by deactivating it, then
 * deleting it.
 *
 * @module
 */
import type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  ProviderSecretInfo,
  SecretProvider,
} from "../rotation/provider.ts";
import { SECRET_HINT_LENGTH } from "../rotation/provider.ts";
import { ConfigError } from "../errors.ts";
import { Secret } from "../secret.ts";
import {
  type AdminIoOptions,
  type AdminRefusal,
  type AdminRequest,
  baseUrl,
  bearer,
  createAdminTransport,
  isObject,
  kindOfStatus,
  type ProviderApiError,
  type ProviderErrorCodes,
  type ProviderFailure,
  requireId,
  stringField,
  throttleWait,
  undocumentedAnswer,
  unlessGone,
} from "./admin_http.ts";

/** The stable error codes of the Okta adapter. */
export const OktaErrorCode: {
  readonly UNAUTHORIZED: "OKTA_ADMIN_UNAUTHORIZED";
  readonly FORBIDDEN: "OKTA_ADMIN_FORBIDDEN";
  readonly NOT_FOUND: "OKTA_NOT_FOUND";
  readonly LIMIT_REACHED: "OKTA_SECRET_LIMIT_REACHED";
  readonly REFUSED: "OKTA_REQUEST_REFUSED";
  readonly RATE_LIMITED: "OKTA_RATE_LIMITED";
  readonly UNAVAILABLE: "OKTA_API_UNAVAILABLE";
  readonly REQUEST_FAILED: "OKTA_API_REQUEST_FAILED";
} = Object.freeze(
  {
    UNAUTHORIZED: "OKTA_ADMIN_UNAUTHORIZED",
    FORBIDDEN: "OKTA_ADMIN_FORBIDDEN",
    NOT_FOUND: "OKTA_NOT_FOUND",
    LIMIT_REACHED: "OKTA_SECRET_LIMIT_REACHED",
    REFUSED: "OKTA_REQUEST_REFUSED",
    RATE_LIMITED: "OKTA_RATE_LIMITED",
    UNAVAILABLE: "OKTA_API_UNAVAILABLE",
    REQUEST_FAILED: "OKTA_API_REQUEST_FAILED",
  } as const satisfies ProviderErrorCodes,
);

/** One of the values of {@linkcode OktaErrorCode}. */
export type OktaErrorCode = typeof OktaErrorCode[keyof typeof OktaErrorCode];

/** Options of {@linkcode oktaSecretProvider}. */
export interface OktaSecretProviderOptions extends AdminIoOptions {
  /** The org URL, such as `https://dev-123456.okta.com`. */
  readonly orgUrl: string;
  /**
   * Gives the admin credential: an API token (with `scheme: "SSWS"`) or an
   * access token of a service app from the org authorization server with
   * `okta.apps.read` (inspect) and `okta.apps.manage` (issue, revoke), and
   * an admin role that may manage the app.
   */
  readonly getAccessToken: (
    options?: { signal?: AbortSignal },
  ) => Promise<string>;
  /**
   * How the credential is sent: `Bearer` for a service app's access token,
   * `SSWS` for an API token.
   *
   * @default "Bearer"
   */
  readonly scheme?: "Bearer" | "SSWS";
  /**
   * Drops a cached access token Okta refused (such as `auth.invalidate`);
   * when given, a 401 is replayed once with a fresh token.
   *
   * @default undefined (a 401 is final)
   */
  readonly invalidateToken?: (token: string) => void;
}

/** Okta's limit of secret objects per client. */
const MAX_SECRETS = 2;
const LIMIT_CAUSE = /maximum number of client secrets/i;

/**
 * Okta's client-secret API as a {@linkcode SecretProvider} of two secrets on
 * one client. `inspectClient` reads the app and lists its secrets
 * (`okta.apps.read`); `issueSecret` adds a generated secret (`okta.apps.manage`),
 * and Okta refuses a third one (`E0000001`: revoke the one no instance uses
 * first); `revokeSecret` deactivates the secret, then deletes it
 * (`okta.apps.manage`), and resolves when it is gone already. Throttling
 * (`E0000047`, waiting for `X-Rate-Limit-Reset`), 5xx and network failures
 * are retried; adding a secret is retried only when throttled, since a
 * retry after a lost answer could add a secret nobody holds.
 *
 * @param options The org URL, the admin credential and I/O.
 * @returns The provider; errors are {@linkcode ProviderApiError}s with an
 *   {@linkcode OktaErrorCode}.
 * @throws {ConfigError} When `orgUrl` is not https (or http on loopback),
 *   `scheme` is neither `Bearer` nor `SSWS`, or `getAccessToken` is not a function.
 *
 * @example Add a second secret beside the one in use, then revoke the old one
 * ```ts
 * import { oktaSecretProvider } from "@rotating/dual-secret-auth/providers";
 * import { startOktaEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using okta = startOktaEmulator({
 *   apps: [{ clientId: "0oa1", secrets: ["first-secret-value"] }],
 *   adminTokens: [{ token: "api-token" }],
 * });
 * const provider = oktaSecretProvider({
 *   orgUrl: okta.apiUrl,
 *   scheme: "SSWS",
 *   getAccessToken: () => Promise.resolve("api-token"),
 * });
 * const [old] = (await provider.inspectClient("0oa1")).secrets!;
 * const issued = await provider.issueSecret("0oa1");
 * // … prove issued.secret, switch every consumer to it, then:
 * await provider.revokeSecret!("0oa1", old.secretId);
 * const left = (await provider.inspectClient("0oa1")).secrets!;
 * if (left.length !== 1 || left[0].secretId !== issued.secretId) throw new Error();
 * ```
 */
export function oktaSecretProvider(
  options: OktaSecretProviderOptions,
): SecretProvider {
  const org = baseUrl("orgUrl", options.orgUrl);
  const scheme = options.scheme ?? "Bearer";
  if (scheme !== "Bearer" && scheme !== "SSWS") {
    throw new ConfigError("scheme", 'must be "Bearer" or "SSWS"');
  }
  const transport = createAdminTransport({
    provider: "Okta",
    codes: OktaErrorCode,
    authorize: bearer(options.getAccessToken, scheme),
    invalidate: options.invalidateToken,
    classify,
    fetch: options.fetch,
    clock: options.clock,
    retry: options.retry,
    requestTimeoutMs: options.requestTimeoutMs,
    random: options.random,
  });
  const appPath = (clientId: string) =>
    `${org}/api/v1/apps/${encodeURIComponent(requireId(clientId, "clientId"))}`;
  const secretsPath = (clientId: string) =>
    `${appPath(clientId)}/credentials/secrets`;

  async function listSecrets(
    clientId: string,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>[]> {
    const operation = `list the secrets of Okta app ${clientId}`;
    const { body } = await transport({
      method: "GET",
      url: secretsPath(clientId),
      operation,
      permission: "okta.apps.read",
      idempotent: true,
      signal,
    });
    if (!Array.isArray(body) || !body.every(isObject)) {
      throw undocumented(operation, "a JSON array of secrets");
    }
    return body;
  }

  return Object.freeze({
    name: "Okta",
    model: "two-secrets" as const,
    issuedTokens:
      "Okta does not document whether access tokens issued before a secret is deactivated stay valid (not confirmed), and its secret API has no call to end them: treat them as valid until they expire (expires_in 3600 s)",
    async inspectClient(
      clientId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderClientInfo> {
      const signal = callOptions?.signal;
      const operation = `read Okta app ${clientId}`;
      const { body: app } = await transport({
        method: "GET",
        url: appPath(clientId),
        operation,
        permission: "okta.apps.read",
        idempotent: true,
        signal,
      });
      const status = stringField(app, "status");
      if (status === undefined) throw undocumented(operation, "an app status");
      const secrets = (await listSecrets(clientId, signal)).map((entry) =>
        secretInfo(entry, `list the secrets of Okta app ${clientId}`)
      );
      return {
        clientId,
        state: status === "ACTIVE" ? "active" : "inactive",
        secrets,
        maxSecrets: MAX_SECRETS,
      };
    },
    async issueSecret(clientId: string): Promise<IssuedSecret> {
      // No signal: once sent, the call must return so its secret is stored.
      const operation = `add a secret to Okta app ${clientId}`;
      const { body } = await transport({
        method: "POST",
        url: secretsPath(clientId),
        operation,
        permission: "okta.apps.manage",
        headers: { "content-type": "application/json" },
        body: "{}",
        idempotent: false,
      });
      const value = stringField(body, "client_secret");
      const info = secretInfo(
        body,
        operation,
        " (a secret may have been added: list the app's secrets, then deactivate and delete the one nobody holds)",
      );
      if (value === undefined) {
        throw undocumented(
          operation,
          `the new secret's value (secret ${info.secretId} was added: deactivate and delete it)`,
        );
      }
      return {
        clientId,
        secret: new Secret(value),
        secretId: info.secretId,
      };
    },
    async revokeSecret(
      clientId: string,
      secretId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<void> {
      const signal = callOptions?.signal;
      requireId(secretId, "secretId");
      const listed = await listSecrets(clientId, signal);
      const entry = listed.find((secret) => secret.id === secretId);
      if (entry === undefined) return;
      const url = `${secretsPath(clientId)}/${encodeURIComponent(secretId)}`;
      if (entry.status === "ACTIVE") {
        await transport({
          method: "POST",
          url: `${url}/lifecycle/deactivate`,
          operation: `deactivate secret ${secretId} of Okta app ${clientId}`,
          permission: "okta.apps.manage",
          idempotent: true,
          signal,
        });
      }
      await unlessGone(() =>
        transport({
          method: "DELETE",
          url,
          operation: `delete secret ${secretId} of Okta app ${clientId}`,
          permission: "okta.apps.manage",
          idempotent: true,
          signal,
        })
      );
    },
  });
}

/** Reads Okta's error envelope `{errorCode, errorSummary, errorCauses, errorId}`. */
function classify(
  refusal: AdminRefusal,
  request: AdminRequest,
): ProviderFailure {
  const { status, body, quote } = refusal;
  const errorCode = quote(stringField(body, "errorCode"));
  const summary = quote(stringField(body, "errorSummary"));
  const causes = isObject(body) && Array.isArray(body.errorCauses)
    ? body.errorCauses.map((cause) => quote(stringField(cause, "errorSummary")))
      .filter((text): text is string => text !== undefined)
    : [];
  const said = [summary, ...causes].filter(Boolean).join(": ");
  const words = `HTTP ${status}${errorCode ? ` ${errorCode}` : ""}${
    said ? `: "${said}"` : ""
  }`;
  const common = {
    status,
    providerCode: errorCode,
    requestId: quote(stringField(body, "errorId")),
  };
  if (status === 400 && causes.some((cause) => LIMIT_CAUSE.test(cause))) {
    return {
      ...common,
      kind: "limit",
      message: `Okta allows ${MAX_SECRETS} secrets per client and this one ` +
        `has them (${words}). Revoke the secret no instance uses any more ` +
        `(deactivate it, then delete it), then issue again.`,
    };
  }
  if (status === 400 && /only active client secret/i.test(said)) {
    return {
      ...common,
      kind: "refused",
      message: `Okta keeps one active secret per client (${words}). ` +
        `Issue the new secret and switch to it before revoking this one.`,
    };
  }
  if (status === 401) {
    return {
      ...common,
      kind: "unauthorized",
      message: `Okta refused the admin credential (${words}). The API token ` +
        `was revoked or expired, or the access token is not from this org; ` +
        `check the credential and its scheme (SSWS for an API token, Bearer for an access token).`,
    };
  }
  if (status === 403) {
    return {
      ...common,
      kind: "forbidden",
      permission: request.permission,
      message: `the admin credential lacks ${request.permission} (${words}). ` +
        `Grant the service app the ${request.permission} scope and an admin ` +
        `role that may manage this app, or use an API token of such an admin.`,
    };
  }
  if (status === 404) {
    return {
      ...common,
      kind: "not-found",
      message: `Okta has no such app or secret (${words}). Check the client ` +
        `id (an OIDC app's id is its client id) and the org URL.`,
    };
  }
  if (status === 429) {
    const retryAfterMs = throttleWait(refusal.headers, refusal.now);
    return {
      ...common,
      kind: "rate-limited",
      retryAfterMs,
      message: `Okta is rate limiting the app API (${words})` +
        (retryAfterMs === undefined
          ? ""
          : `; its window resets in ${Math.ceil(retryAfterMs / 1000)} s`) +
        `. Retry later.`,
    };
  }
  const kind = kindOfStatus(status);
  return {
    ...common,
    kind,
    message: kind === "unavailable"
      ? `Okta's API is unavailable (${words}); check status.okta.com and retry.`
      : `Okta refused the request (${words}).`,
  };
}

/** `added` tells, on an add's answer, what to do about the secret it made. */
function secretInfo(
  entry: unknown,
  operation: string,
  added = "",
): ProviderSecretInfo {
  const id = stringField(entry, "id");
  const status = stringField(entry, "status");
  if (id === undefined || (status !== "ACTIVE" && status !== "INACTIVE")) {
    throw undocumented(operation, `a secret with an id and a status${added}`);
  }
  const created = Date.parse(stringField(entry, "created") ?? "");
  // Okta lists the value again: only its first characters are kept.
  const value = stringField(entry, "client_secret");
  return {
    secretId: id,
    status: status === "ACTIVE" ? "active" : "inactive",
    ...(value === undefined
      ? {}
      : { hint: value.slice(0, SECRET_HINT_LENGTH) }),
    ...(Number.isFinite(created) ? { createdAt: created } : {}),
  };
}

function undocumented(operation: string, what: string): ProviderApiError {
  return undocumentedAnswer(OktaErrorCode, "Okta", operation, what);
}
