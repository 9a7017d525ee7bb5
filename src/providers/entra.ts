/**
 * Microsoft Entra ID behind the rotation engine's provider port: two
 * secrets on one application, through Microsoft Graph's password
 * credentials (`addPassword`, `removePassword` by `keyId`, and the list in
 * `passwordCredentials`). A new secret is reported to start working 4–18 s
 * after `addPassword`, so each one is issued with that propagation time.
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
import { Secret } from "../secret.ts";
import { systemClock } from "../clock.ts";
import {
  type AdminIoOptions,
  type AdminRefusal,
  type AdminRequest,
  baseUrl,
  bearer,
  createAdminTransport,
  isObject,
  kindOfStatus,
  nonNegativeMs,
  ProviderApiError,
  type ProviderErrorCodes,
  type ProviderFailure,
  requireId,
  stringField,
  throttleWait,
  undocumentedAnswer,
} from "./admin_http.ts";

/** The stable error codes of the Entra ID adapter. */
export const EntraErrorCode: {
  readonly UNAUTHORIZED: "ENTRA_ADMIN_UNAUTHORIZED";
  readonly FORBIDDEN: "ENTRA_ADMIN_FORBIDDEN";
  readonly NOT_FOUND: "ENTRA_NOT_FOUND";
  readonly LIMIT_REACHED: "ENTRA_SECRET_LIMIT_REACHED";
  readonly REFUSED: "ENTRA_REQUEST_REFUSED";
  readonly RATE_LIMITED: "ENTRA_RATE_LIMITED";
  readonly UNAVAILABLE: "ENTRA_API_UNAVAILABLE";
  readonly REQUEST_FAILED: "ENTRA_API_REQUEST_FAILED";
} = Object.freeze(
  {
    UNAUTHORIZED: "ENTRA_ADMIN_UNAUTHORIZED",
    FORBIDDEN: "ENTRA_ADMIN_FORBIDDEN",
    NOT_FOUND: "ENTRA_NOT_FOUND",
    LIMIT_REACHED: "ENTRA_SECRET_LIMIT_REACHED",
    REFUSED: "ENTRA_REQUEST_REFUSED",
    RATE_LIMITED: "ENTRA_RATE_LIMITED",
    UNAVAILABLE: "ENTRA_API_UNAVAILABLE",
    REQUEST_FAILED: "ENTRA_API_REQUEST_FAILED",
  } as const satisfies ProviderErrorCodes,
);

/** One of the values of {@linkcode EntraErrorCode}. */
export type EntraErrorCode = typeof EntraErrorCode[keyof typeof EntraErrorCode];

/**
 * How long a new Entra secret may take to work: users report 4–18 s after
 * `addPassword`; Microsoft documents none.
 */
export const ENTRA_PROPAGATION_MS = 18_000;

/** Options of {@linkcode entraSecretProvider}. */
export interface EntraSecretProviderOptions extends AdminIoOptions {
  /**
   * Gives a Microsoft Graph access token (client credentials with
   * `scope=https://graph.microsoft.com/.default`) of an application granted
   * `Application.ReadWrite.OwnedBy` (and made an owner of the applications
   * it rotates) or `Application.ReadWrite.All`.
   */
  readonly getAccessToken: (
    options?: { signal?: AbortSignal },
  ) => Promise<string>;
  /**
   * Drops a cached token Graph refused (such as `auth.invalidate`); when
   * given, a 401 is replayed once with a fresh token.
   *
   * @default undefined (a 401 is final)
   */
  readonly invalidateToken?: (token: string) => void;
  /**
   * Microsoft Graph's base URL (another national cloud, or an emulator).
   *
   * @default "https://graph.microsoft.com/v1.0"
   */
  readonly graphUrl?: string;
  /**
   * The display name of each new secret, as the portal lists it.
   *
   * @default "dual-secret-auth"
   */
  readonly displayName?: string;
  /**
   * The lifetime of each new secret, in ms; Entra refuses a secret after it
   * (AADSTS7000222), and tenant policies may cap it.
   *
   * @default undefined (Entra's default: two years)
   */
  readonly secretLifetimeMs?: number;
  /**
   * How long a new secret may take to work, in ms: the proof of a rotation
   * waits at least this long before giving up.
   *
   * @default 18_000 (the top of the 4–18 s users report)
   */
  readonly propagationMs?: number;
}

const READ_PERMISSION =
  "Application.Read.All (or Application.ReadWrite.OwnedBy as an owner of the application, or Application.ReadWrite.All)";
const WRITE_PERMISSION =
  "Application.ReadWrite.OwnedBy (with the admin's service principal an owner of the application) or Application.ReadWrite.All";

/**
 * Microsoft Graph's application password credentials as a
 * {@linkcode SecretProvider} of two secrets on one application, addressed by
 * its application (client) id. `inspectClient` reads `passwordCredentials`;
 * `issueSecret` calls `addPassword` (the value is shown once; it is issued
 * with `propagationMs`, 18 s by default, so the proof waits through Entra's
 * propagation delay); `revokeSecret` calls `removePassword` with the
 * `keyId`, resolves when the secret is gone already, and refuses the
 * application's only working secret. Graph's 429 (with
 * `Retry-After`), 5xx and network failures are retried; `addPassword` only
 * when throttled, since a retry after a lost answer could add a secret
 * nobody holds.
 *
 * @param options The Graph token getter, naming and I/O.
 * @returns The provider; errors are {@linkcode ProviderApiError}s with an
 *   {@linkcode EntraErrorCode}.
 * @throws {import("../errors.ts").ConfigError} When `getAccessToken` is not a function, `graphUrl`
 *   is not https (or http on loopback), or a duration is negative.
 *
 * @example Add a secret, prove it, remove the old one
 * ```ts
 * import { entraSecretProvider } from "@rotating/dual-secret-auth/providers";
 * import { startEntraEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using entra = startEntraEmulator({
 *   applications: [
 *     { appId: "app-id", secrets: [{ value: "old-value", keyId: "00000000-0000-4000-8000-000000000001" }] },
 *     { appId: "admin-id", secrets: ["admin-value"], graphPermissions: ["Application.ReadWrite.OwnedBy"], owns: ["app-id"] },
 *   ],
 * });
 * const graphToken = async () => {
 *   const response = await fetch(entra.tokenUrl, {
 *     method: "POST",
 *     body: new URLSearchParams({
 *       grant_type: "client_credentials",
 *       client_id: "admin-id",
 *       client_secret: "admin-value",
 *       scope: "https://graph.microsoft.com/.default",
 *     }),
 *   });
 *   return (await response.json()).access_token as string;
 * };
 * const provider = entraSecretProvider({ graphUrl: entra.apiUrl, getAccessToken: graphToken });
 * const issued = await provider.issueSecret("app-id");
 * if (issued.propagationMs !== 18_000) throw new Error("the proof must wait");
 * // … prove issued.secret, switch every consumer to it, then:
 * await provider.revokeSecret!("app-id", "00000000-0000-4000-8000-000000000001");
 * const left = (await provider.inspectClient("app-id")).secrets!;
 * if (left.length !== 1 || left[0].secretId !== issued.secretId) throw new Error();
 * ```
 */
export function entraSecretProvider(
  options: EntraSecretProviderOptions,
): SecretProvider {
  const graph = baseUrl(
    "graphUrl",
    options.graphUrl ?? "https://graph.microsoft.com/v1.0",
  );
  const propagationMs = nonNegativeMs(
    "propagationMs",
    options.propagationMs ?? ENTRA_PROPAGATION_MS,
  );
  const lifetimeMs = options.secretLifetimeMs === undefined
    ? undefined
    : nonNegativeMs("secretLifetimeMs", options.secretLifetimeMs);
  const displayName = options.displayName ?? "dual-secret-auth";
  const clock = options.clock ?? systemClock;
  const transport = createAdminTransport({
    provider: "Entra ID",
    codes: EntraErrorCode,
    authorize: bearer(options.getAccessToken),
    invalidate: options.invalidateToken,
    classify,
    fetch: options.fetch,
    clock,
    retry: options.retry,
    requestTimeoutMs: options.requestTimeoutMs,
    random: options.random,
  });
  // Graph addresses an application by its app id through this alternate key.
  const application = (appId: string) =>
    `${graph}/applications(appId='${
      encodeURIComponent(requireId(appId, "clientId").replaceAll("'", "''"))
    }')`;

  async function passwords(
    appId: string,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>[]> {
    const operation = `read the secrets of Entra application ${appId}`;
    const { body } = await transport({
      method: "GET",
      url: `${application(appId)}?$select=id,appId,passwordCredentials`,
      operation,
      permission: READ_PERMISSION,
      idempotent: true,
      signal,
    });
    const list = isObject(body) ? body.passwordCredentials : undefined;
    if (!Array.isArray(list) || !list.every(isObject)) {
      throw undocumented(operation, "passwordCredentials");
    }
    return list;
  }

  return Object.freeze({
    name: "Entra ID",
    model: "two-secrets" as const,
    issuedTokens:
      "Microsoft Graph documents no effect of removePassword on access tokens already issued and has no call in the application API to end them: treat them as valid until they expire (expires_in 3599 s)",
    async inspectClient(
      clientId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderClientInfo> {
      const list = await passwords(clientId, callOptions?.signal);
      const now = clock.now();
      return {
        clientId,
        // An application has no state of its own in Graph.
        state: "active",
        secrets: list.map((entry) =>
          secretInfo(entry, now, `read the secrets of ${clientId}`)
        ),
      };
    },
    async issueSecret(clientId: string): Promise<IssuedSecret> {
      // No signal: once sent, the call must return so its secret is stored.
      const operation = `add a secret to Entra application ${clientId}`;
      const start = clock.now();
      const { body } = await transport({
        method: "POST",
        url: `${application(clientId)}/addPassword`,
        operation,
        permission: WRITE_PERMISSION,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          passwordCredential: {
            displayName,
            ...(lifetimeMs === undefined ? {} : {
              endDateTime: new Date(start + lifetimeMs).toISOString(),
            }),
          },
        }),
        idempotent: false,
      });
      const info = secretInfo(
        body,
        start,
        operation,
        " (a secret may have been added: list the application's secrets and remove the one nobody holds)",
      );
      const value = stringField(body, "secretText");
      if (value === undefined) {
        throw undocumented(
          operation,
          `secretText (secret ${info.secretId} was added: remove it)`,
        );
      }
      return {
        clientId,
        secret: new Secret(value),
        secretId: info.secretId,
        propagationMs,
        ...(info.expiresAt === undefined ? {} : { expiresAt: info.expiresAt }),
      };
    },
    async revokeSecret(
      clientId: string,
      secretId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<void> {
      const signal = callOptions?.signal;
      requireId(secretId, "secretId");
      const operation =
        `remove secret ${secretId} from Entra application ${clientId}`;
      const list = await passwords(clientId, signal);
      const listed = (entries: Record<string, unknown>[]) =>
        entries.some((entry) => entry.keyId === secretId);
      if (!listed(list)) return;
      const now = clock.now();
      const infos = list.map((entry) => secretInfo(entry, now, operation));
      // Graph removes an application's last secret too; Okta, Cognito and
      // Keycloak refuse to, and so does this adapter.
      if (
        infos.every((info) =>
          info.secretId === secretId || info.status !== "active"
        ) &&
        infos.some((info) =>
          info.secretId === secretId && info.status === "active"
        )
      ) {
        throw new ProviderApiError(
          EntraErrorCode.REFUSED,
          "Entra ID",
          operation,
          {
            kind: "refused",
            message:
              `it is the application's only working secret, and removing it ` +
              `would leave every consumer without one. Issue a new secret and ` +
              `switch to it first.`,
          },
        );
      }
      try {
        await transport({
          method: "POST",
          url: `${application(clientId)}/removePassword`,
          operation,
          permission: WRITE_PERMISSION,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ keyId: secretId }),
          idempotent: true,
          signal,
        });
      } catch (error) {
        // A retried removal whose first attempt went through is refused
        // (400 "No password credential found"): gone is what was asked.
        if (
          error instanceof ProviderApiError && error.kind === "refused" &&
          !listed(await passwords(clientId, signal))
        ) {
          return;
        }
        throw error;
      }
    },
  });
}

/** Reads Graph's error envelope `{error: {code, message, innerError}}`. */
function classify(
  refusal: AdminRefusal,
  request: AdminRequest,
): ProviderFailure {
  const { status, body, quote } = refusal;
  const error = isObject(body) ? body.error : undefined;
  const code = quote(stringField(error, "code"));
  const said = quote(stringField(error, "message"));
  const inner = isObject(error) ? error.innerError : undefined;
  const words = `HTTP ${status}${code ? ` ${code}` : ""}${
    said ? `: "${said}"` : ""
  }`;
  const common = {
    status,
    providerCode: code,
    requestId: quote(stringField(inner, "request-id")) ??
      quote(refusal.headers.get("request-id")),
  };
  if (status === 401) {
    return {
      ...common,
      kind: "unauthorized",
      message: `Microsoft Graph refused the access token (${words}). ` +
        `Get it with scope https://graph.microsoft.com/.default from this tenant.`,
    };
  }
  if (status === 403) {
    return {
      ...common,
      kind: "forbidden",
      permission: request.permission,
      message:
        `the admin application lacks ${request.permission} (${words}). ` +
        `Grant that Graph application permission with admin consent` +
        (request.permission === WRITE_PERMISSION
          ? `; with OwnedBy, add the admin's service principal as an owner of the application.`
          : "."),
    };
  }
  if (status === 404) {
    return {
      ...common,
      kind: "not-found",
      message: `Entra has no application with that application (client) ` +
        `id in this tenant (${words}).`,
    };
  }
  if (status === 429) {
    const retryAfterMs = throttleWait(refusal.headers, refusal.now);
    return {
      ...common,
      kind: "rate-limited",
      retryAfterMs,
      message:
        `Microsoft Graph is throttling requests (${words}). Retry later.`,
    };
  }
  const kind = kindOfStatus(status);
  return {
    ...common,
    kind: kind === "request-failed" ? "refused" : kind,
    message: kind === "unavailable"
      ? `Microsoft Graph is unavailable (${words}); retry later.`
      : `Microsoft Graph refused the request (${words}); a tenant policy ` +
        `may restrict or cap application secrets.`,
  };
}

/** `added` tells, on an add's answer, what to do about the secret it made. */
function secretInfo(
  entry: unknown,
  now: number,
  operation: string,
  added = "",
): ProviderSecretInfo {
  const keyId = stringField(entry, "keyId");
  if (keyId === undefined) throw undocumented(operation, `a keyId${added}`);
  const start = Date.parse(stringField(entry, "startDateTime") ?? "");
  const end = Date.parse(stringField(entry, "endDateTime") ?? "");
  // No activate or deactivate in Entra: a secret works between its times.
  const live = (!Number.isFinite(start) || now >= start) &&
    (!Number.isFinite(end) || now < end);
  const hint = stringField(entry, "hint");
  return {
    secretId: keyId,
    status: live ? "active" : "inactive",
    ...(hint === undefined ? {} : { hint }),
    ...(Number.isFinite(start) ? { createdAt: start } : {}),
    ...(Number.isFinite(end) ? { expiresAt: end } : {}),
  };
}

function undocumented(operation: string, what: string): ProviderApiError {
  return undocumentedAnswer(EntraErrorCode, "Entra ID", operation, what);
}
