/**
 * AWS Cognito user pools behind the rotation engine's provider port: two
 * secrets on one app client, through the `cognito-idp` JSON 1.1 API
 * (`AddUserPoolClientSecret`, `ListUserPoolClientSecrets`,
 * `DeleteUserPoolClientSecret`), signed with AWS Signature Version 4. An app
 * client holds at most two secrets, and its last one cannot be deleted.
 *
 * @module
 */
import { headerSafe } from "../header_safe.ts";
import { ConfigError } from "../errors.ts";
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
  createAdminTransport,
  isObject,
  kindOfStatus,
  type ProviderApiError,
  type ProviderErrorCodes,
  type ProviderFailure,
  requireId,
  stringField,
  undocumentedAnswer,
  unlessGone,
} from "./admin_http.ts";
import { type AwsCredentials, signSigV4 } from "./sigv4.ts";

/** The stable error codes of the Cognito adapter. */
export const CognitoErrorCode: {
  readonly UNAUTHORIZED: "COGNITO_ADMIN_UNAUTHORIZED";
  readonly FORBIDDEN: "COGNITO_ADMIN_FORBIDDEN";
  readonly NOT_FOUND: "COGNITO_NOT_FOUND";
  readonly LIMIT_REACHED: "COGNITO_SECRET_LIMIT_REACHED";
  readonly REFUSED: "COGNITO_REQUEST_REFUSED";
  readonly RATE_LIMITED: "COGNITO_RATE_LIMITED";
  readonly UNAVAILABLE: "COGNITO_API_UNAVAILABLE";
  readonly REQUEST_FAILED: "COGNITO_API_REQUEST_FAILED";
} = Object.freeze(
  {
    UNAUTHORIZED: "COGNITO_ADMIN_UNAUTHORIZED",
    FORBIDDEN: "COGNITO_ADMIN_FORBIDDEN",
    NOT_FOUND: "COGNITO_NOT_FOUND",
    LIMIT_REACHED: "COGNITO_SECRET_LIMIT_REACHED",
    REFUSED: "COGNITO_REQUEST_REFUSED",
    RATE_LIMITED: "COGNITO_RATE_LIMITED",
    UNAVAILABLE: "COGNITO_API_UNAVAILABLE",
    REQUEST_FAILED: "COGNITO_API_REQUEST_FAILED",
  } as const satisfies ProviderErrorCodes,
);

/** One of the values of {@linkcode CognitoErrorCode}. */
export type CognitoErrorCode =
  typeof CognitoErrorCode[keyof typeof CognitoErrorCode];

/** Options of {@linkcode cognitoSecretProvider}. */
export interface CognitoSecretProviderOptions extends AdminIoOptions {
  /** The user pool's id, such as `eu-west-1_AbCdEf123`. */
  readonly userPoolId: string;
  /**
   * Gives the AWS credentials to sign with, of a principal allowed
   * `cognito-idp:ListUserPoolClientSecrets` (inspect),
   * `cognito-idp:AddUserPoolClientSecret` (issue) and
   * `cognito-idp:DeleteUserPoolClientSecret` (revoke) on the pool. Called
   * before each request, so temporary credentials can be refreshed.
   */
  readonly getCredentials: (
    options?: { signal?: AbortSignal },
  ) => Promise<AwsCredentials>;
  /**
   * The region.
   *
   * @default the user pool id's prefix, such as `eu-west-1`
   */
  readonly region?: string;
  /**
   * The `cognito-idp` endpoint (a VPC endpoint, or an emulator).
   *
   * @default "https://cognito-idp.{region}.amazonaws.com/"
   */
  readonly apiUrl?: string;
}

/** Cognito's limit of secrets per app client. */
const MAX_SECRETS = 2;
const TARGET = "AWSCognitoIdentityProviderService";
const PAGES = 10;
const DELETE = "DeleteUserPoolClientSecret";

/**
 * Cognito's app client secrets as a {@linkcode SecretProvider} of two
 * secrets on one app client. `inspectClient` lists the secrets (ids and
 * creation times; Cognito never lists values); `issueSecret` adds a
 * Cognito-generated secret, and Cognito refuses a third
 * (`LimitExceededException`: delete the one no instance uses first);
 * `revokeSecret` deletes one by `ClientSecretId`, resolves when it is gone
 * already, and is refused for the client's last secret. Requests are
 * signed with SigV4 (service `cognito-idp`); `TooManyRequestsException`,
 * 5xx and network failures are retried, adding a secret only when
 * throttled.
 *
 * @param options The user pool, the credentials getter and I/O.
 * @returns The provider; errors are {@linkcode ProviderApiError}s with a
 *   {@linkcode CognitoErrorCode}.
 * @throws {ConfigError} When `userPoolId` has no region prefix and no
 *   `region` is given, or `apiUrl` is not https (or http on loopback).
 *
 * @example Add a secret beside the one in use, then delete the old one
 * ```ts
 * import { cognitoSecretProvider } from "@rotating/dual-secret-auth/providers";
 * import { startCognitoEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * const key = { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "example-secret-key" };
 * await using cognito = startCognitoEmulator({
 *   userPoolId: "eu-west-1_EXAMPLE",
 *   clients: [{ clientId: "app", secrets: ["old-secret-value-of-24-chars"] }],
 *   principals: [key],
 * });
 * const provider = cognitoSecretProvider({
 *   userPoolId: "eu-west-1_EXAMPLE",
 *   apiUrl: cognito.apiUrl,
 *   getCredentials: () => Promise.resolve(key),
 * });
 * const [old] = (await provider.inspectClient("app")).secrets!;
 * const issued = await provider.issueSecret("app");
 * // … prove issued.secret, switch every consumer to it, then:
 * await provider.revokeSecret!("app", old.secretId);
 * const left = (await provider.inspectClient("app")).secrets!;
 * if (left.length !== 1 || left[0].secretId !== issued.secretId) throw new Error();
 * ```
 */
export function cognitoSecretProvider(
  options: CognitoSecretProviderOptions,
): SecretProvider {
  const userPoolId = requireId(options.userPoolId, "userPoolId");
  const region = options.region ??
    userPoolId.match(/^([a-z]{2}(?:-[a-z]+)+-\d+)_/)?.[1];
  if (region === undefined || !/^[a-z0-9-]+$/.test(region)) {
    throw new ConfigError(
      "region",
      "give the region, such as eu-west-1 (the user pool id has no region prefix)",
    );
  }
  if (typeof options.getCredentials !== "function") {
    throw new ConfigError("getCredentials", "must be a function");
  }
  const getCredentials = options.getCredentials;
  const endpoint = `${
    baseUrl(
      "apiUrl",
      options.apiUrl ?? `https://cognito-idp.${region}.amazonaws.com/`,
    )
  }/`;
  const clock = options.clock ?? systemClock;
  const transport = createAdminTransport({
    provider: "Cognito",
    codes: CognitoErrorCode,
    async authorize(request, signal) {
      const credentials = await getCredentials(signal ? { signal } : undefined);
      if (
        typeof credentials?.accessKeyId !== "string" ||
        typeof credentials.secretAccessKey !== "string"
      ) {
        throw new ConfigError(
          "getCredentials",
          "must resolve to { accessKeyId, secretAccessKey, sessionToken? }",
        );
      }
      headerSafe("getCredentials", credentials.accessKeyId);
      if (credentials.sessionToken !== undefined) {
        headerSafe("getCredentials", credentials.sessionToken);
      }
      const headers = await signSigV4({
        method: request.method,
        url: request.url,
        headers: { ...request.headers },
        body: request.body ?? "",
        region,
        service: "cognito-idp",
        now: clock.now(),
      }, credentials);
      return {
        headers,
        secrets: [
          credentials.secretAccessKey,
          ...(credentials.sessionToken ? [credentials.sessionToken] : []),
        ],
      };
    },
    classify,
    fetch: options.fetch,
    clock,
    retry: options.retry,
    requestTimeoutMs: options.requestTimeoutMs,
    random: options.random,
  });

  async function call(
    operation: string,
    input: Record<string, unknown>,
    what: string,
    idempotent: boolean,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const { body } = await transport({
      method: "POST",
      url: endpoint,
      operation: what,
      permission: `cognito-idp:${operation}`,
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `${TARGET}.${operation}`,
      },
      body: JSON.stringify(input),
      idempotent,
      signal,
    });
    return isObject(body) ? body : {};
  }

  async function listSecrets(
    clientId: string,
    signal?: AbortSignal,
  ): Promise<ProviderSecretInfo[]> {
    const what = `list the secrets of Cognito app client ${clientId}`;
    const secrets: ProviderSecretInfo[] = [];
    let next: string | undefined;
    for (let page = 0; page < PAGES; page++) {
      const body = await call(
        "ListUserPoolClientSecrets",
        {
          UserPoolId: userPoolId,
          ClientId: requireId(clientId, "clientId"),
          ...(next === undefined ? {} : { NextToken: next }),
        },
        what,
        true,
        signal,
      );
      if (!Array.isArray(body.ClientSecrets)) {
        throw undocumented(what, "ClientSecrets");
      }
      for (const entry of body.ClientSecrets) {
        secrets.push(secretInfo(entry, what));
      }
      next = stringField(body, "NextToken");
      if (next === undefined) return secrets;
    }
    throw undocumented(what, `an end to the list after ${PAGES} pages`);
  }

  return Object.freeze({
    name: "Cognito",
    model: "two-secrets" as const,
    issuedTokens:
      "Cognito's secret API (DeleteUserPoolClientSecret) has no call to end access tokens already issued: treat them as valid until they expire (expires_in 3600 s)",
    async inspectClient(
      clientId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderClientInfo> {
      const secrets = await listSecrets(clientId, callOptions?.signal);
      return {
        clientId,
        // Listing succeeded: the app client exists; Cognito has no client state.
        state: "active",
        secrets,
        maxSecrets: MAX_SECRETS,
      };
    },
    async issueSecret(clientId: string): Promise<IssuedSecret> {
      // No signal: once sent, the call must return so its secret is stored.
      const what = `add a secret to Cognito app client ${clientId}`;
      const body = await call(
        "AddUserPoolClientSecret",
        {
          UserPoolId: userPoolId,
          ClientId: requireId(clientId, "clientId"),
        },
        what,
        false,
      );
      const descriptor = body.ClientSecretDescriptor;
      const info = secretInfo(
        descriptor,
        what,
        " (a secret may have been added: list the app client's secrets and delete the one nobody holds)",
      );
      const value = stringField(descriptor, "ClientSecretValue");
      if (value === undefined) {
        throw undocumented(
          what,
          `ClientSecretValue (secret ${info.secretId} was added: delete it)`,
        );
      }
      return { clientId, secret: new Secret(value), secretId: info.secretId };
    },
    async revokeSecret(
      clientId: string,
      secretId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<void> {
      const signal = callOptions?.signal;
      requireId(secretId, "secretId");
      const secrets = await listSecrets(clientId, signal);
      if (!secrets.some((secret) => secret.secretId === secretId)) return;
      // A retried delete whose first attempt went through finds nothing
      // (the app client was just listed, so the secret is what is gone).
      await unlessGone(() =>
        call(
          DELETE,
          {
            UserPoolId: userPoolId,
            ClientId: clientId,
            ClientSecretId: secretId,
          },
          `delete secret ${secretId} of Cognito app client ${clientId}`,
          true,
          signal,
        )
      );
    },
  });
}

/** Reads the AWS JSON error shape `{__type, message}` (type also in `x-amzn-ErrorType`). */
function classify(
  refusal: AdminRefusal,
  request: AdminRequest,
): ProviderFailure {
  const { status, body, quote, headers } = refusal;
  const rawType = stringField(body, "__type") ??
    headers.get("x-amzn-errortype") ?? "";
  // `__type` may carry a namespace (`com.amazonaws…#Name`) or a suffix (`Name:http…`).
  const type = quote(rawType.replace(/^.*#/, "").replace(/:.*$/, ""));
  const said = quote(
    stringField(body, "message") ?? stringField(body, "Message"),
  );
  const words = `HTTP ${status}${type ? ` ${type}` : ""}${
    said ? `: "${said}"` : ""
  }`;
  const common = {
    status,
    providerCode: type,
    requestId: quote(headers.get("x-amzn-requestid")),
  };
  switch (type) {
    case "AccessDeniedException":
      return {
        ...common,
        kind: "forbidden",
        permission: request.permission,
        message: `the AWS principal lacks ${request.permission} (${words}). ` +
          `Allow it on the user pool in the principal's IAM policy.`,
      };
    case "LimitExceededException":
      return {
        ...common,
        kind: "limit",
        message: `Cognito allows ${MAX_SECRETS} secrets per app client and ` +
          `this one has them (${words}). Delete the secret no instance uses ` +
          `any more, then issue again.`,
      };
    case "ResourceNotFoundException":
      return {
        ...common,
        kind: "not-found",
        message: `Cognito has no such user pool, app client or secret ` +
          `(${words}). Check the user pool id, the region and the client id.`,
      };
    case "TooManyRequestsException":
    case "ThrottlingException":
      return {
        ...common,
        kind: "rate-limited",
        message: `Cognito is throttling the API (${words}). Retry later.`,
      };
    case "InvalidParameterException":
      return {
        ...common,
        kind: "refused",
        // Cognito's words name the parameter; only a delete can be the last-secret rule.
        message: request.permission === `cognito-idp:${DELETE}`
          ? `Cognito refused the request (${words}); an app client ` +
            `keeps at least one secret: issue and switch to a new one before ` +
            `deleting the last.`
          : `Cognito refused the request (${words}); check the parameter it names.`,
      };
    case "UnrecognizedClientException":
    case "InvalidSignatureException":
    case "IncompleteSignatureException":
    case "MissingAuthenticationTokenException":
    case "ExpiredTokenException":
    case "NotAuthorizedException":
      return {
        ...common,
        kind: "unauthorized",
        message: `AWS refused the request's signature or credentials ` +
          `(${words}). Check the access key, its session token, the region ` +
          `and the machine's clock.`,
      };
  }
  const kind = type === "InternalErrorException"
    ? "unavailable"
    : kindOfStatus(status);
  return {
    ...common,
    kind,
    message: kind === "unavailable"
      ? `Cognito's API is unavailable (${words}); retry later.`
      : `Cognito refused the request (${words}).`,
  };
}

/** `added` tells, on an add's answer, what to do about the secret it made. */
function secretInfo(
  entry: unknown,
  what: string,
  added = "",
): ProviderSecretInfo {
  const id = stringField(entry, "ClientSecretId");
  if (id === undefined) throw undocumented(what, `a ClientSecretId${added}`);
  const created = isObject(entry) ? entry.ClientSecretCreateDate : undefined;
  return {
    secretId: id,
    status: "active",
    // AWS JSON dates are epoch seconds.
    ...(typeof created === "number" && Number.isFinite(created)
      ? { createdAt: Math.round(created * 1000) }
      : {}),
  };
}

function undocumented(operation: string, what: string): ProviderApiError {
  return undocumentedAnswer(CognitoErrorCode, "Cognito", operation, what);
}
