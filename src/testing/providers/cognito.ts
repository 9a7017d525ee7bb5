/**
 * A local stand-in for an AWS Cognito user pool: the user-pool domain's
 * client-credentials token endpoint (`/oauth2/token`) and the
 * `cognito-idp` JSON 1.1 API's client-secret operations
 * (`AddUserPoolClientSecret`, `ListUserPoolClientSecrets`,
 * `DeleteUserPoolClientSecret`) behind AWS Signature Version 4, with IAM
 * actions per access key. One HTTP server plays both hosts; time reads only
 * the injected clock.
 *
 * What AWS does not document is a switch: how long a new secret takes to
 * work (`propagationDelayMs`) and whether deleting a secret revokes the
 * tokens got with it (`revokeTokensWithSecret`). The token endpoint's
 * throttling answer (`throttleTokenRequests`: 429 `too_many_requests`) is
 * modelled without a source. The clock also judges SigV4 dates (5 minutes
 * of skew at most).
 *
 * @module
 */
import { timingSafeEqual } from "../emulator_helpers.ts";
import { readForm, scopesOf } from "../emulator_parsing.ts";
import { json } from "../emulator_responses.ts";
import { verifySigV4 } from "./cognito_sigv4.ts";
import {
  FaultInjectingProviderEmulator,
  FixedWindow,
  noStore,
  type ProviderEmulator,
  type ProviderEmulatorOptions,
  type ProviderRoutes,
  type RateLimit,
  readText,
  type TokenFaultInjection,
} from "./common.ts";

/** An app client of the emulated user pool (client-credentials flow). */
export interface CognitoAppClient {
  /** The app client id. */
  readonly clientId: string;
  /**
   * The client's secrets at start, one or two (Cognito allows two active).
   * They work at once, whatever `propagationDelayMs` says.
   */
  readonly secrets: readonly string[];
  /**
   * The custom scopes (`resource-server/scope`) the client may request.
   * Cognito requires at least one for the client-credentials flow; a token
   * request without `scope` gets them all.
   *
   * @default ["default/m2m"]
   */
  readonly allowedScopes?: readonly string[];
  /**
   * Whether the client-credentials flow is enabled for the client; if not,
   * the token endpoint answers `unauthorized_client`.
   *
   * @default true
   */
  readonly clientCredentialsFlow?: boolean;
  /**
   * Access-token validity in seconds (Cognito allows 5 minutes to 1 day;
   * any positive value is accepted so tests can use short ones).
   *
   * @default 3600
   */
  readonly tokenLifetimeSeconds?: number;
}

/** An IAM principal's access key and the actions its policies allow. */
export interface CognitoIamPrincipal {
  /** The access key id, such as `AKIAEXAMPLE`. */
  readonly accessKeyId: string;
  /** The secret access key the emulator checks signatures with. */
  readonly secretAccessKey: string;
  /**
   * The session token of temporary credentials; the request must then carry
   * it in `X-Amz-Security-Token`.
   *
   * @default undefined (long-term credentials)
   */
  readonly sessionToken?: string;
  /**
   * IAM actions allowed on every resource, such as
   * `"cognito-idp:ListUserPoolClientSecrets"`; `"cognito-idp:*"` and `"*"`
   * allow all.
   *
   * @default ["cognito-idp:AddUserPoolClientSecret", "cognito-idp:ListUserPoolClientSecrets", "cognito-idp:DeleteUserPoolClientSecret"]
   */
  readonly actions?: readonly string[];
  /**
   * The principal's ARN, quoted by `AccessDeniedException`.
   *
   * @default "arn:aws:iam::000000000000:user/emulator"
   */
  readonly arn?: string;
}

/** Options for {@linkcode startCognitoEmulator}. */
export interface CognitoEmulatorOptions extends ProviderEmulatorOptions {
  /**
   * The user pool's id; its prefix before `_` is the region.
   *
   * @default "us-east-1_EMULATOR"
   */
  readonly userPoolId?: string;
  /**
   * App clients present from the start.
   *
   * @default []
   */
  readonly clients?: readonly CognitoAppClient[];
  /**
   * Access keys accepted by the API.
   *
   * @default []
   */
  readonly principals?: readonly CognitoIamPrincipal[];
  /**
   * A limit on API requests, answered with `TooManyRequestsException`.
   *
   * @default undefined (no limit)
   */
  readonly apiRateLimit?: RateLimit;
}

/** One secret of an app client, as the emulator's control methods show it. */
export interface CognitoSecret {
  /** `ClientSecretId`: `<client-id>--<epoch ms>`. */
  readonly secretId: string;
  /** The secret's value. */
  readonly value: string;
  /** When it was created, in epoch ms. */
  readonly createdAt: number;
  /** When the token endpoint starts accepting it, in epoch ms. */
  readonly usableFrom: number;
}

/** A running Cognito emulator; close it with `close()` or `await using`. */
export interface CognitoEmulator extends ProviderEmulator, TokenFaultInjection {
  /** The user-pool domain's token endpoint: `url` + `/oauth2/token`. */
  readonly tokenUrl: string;
  /** The `cognito-idp` API endpoint (an SDK's `endpoint`): `url` + `/`. */
  readonly apiUrl: string;
  /** The user pool's id. */
  readonly userPoolId: string;
  /** The region, from the user pool's id; what SigV4 scopes must name. */
  readonly region: string;
  /**
   * Adds an app client.
   *
   * @param client The client; its id must be new.
   */
  addClient(client: CognitoAppClient): void;
  /**
   * Adds a secret behind the API's back, with the API's limit of two.
   *
   * @param clientId An existing client id.
   * @param value The value; a generated one if left out.
   * @returns The new secret.
   */
  addSecret(clientId: string, value?: string): CognitoSecret;
  /**
   * Deletes a secret behind the API's back (the last one may go too).
   *
   * @param clientId An existing client id.
   * @param secretId The secret's id.
   */
  deleteSecret(clientId: string, secretId: string): void;
  /**
   * The client's secrets, oldest first, values included.
   *
   * @param clientId An existing client id.
   * @returns The secrets.
   */
  secrets(clientId: string): CognitoSecret[];
  /**
   * Mints a valid access token without an HTTP request (not counted).
   *
   * @param clientId An existing client id.
   * @returns The access token.
   */
  issueToken(clientId: string): string;
}

/** The IAM actions of the three secret operations. */
export const COGNITO_SECRET_ACTIONS: readonly string[] = Object.freeze([
  "cognito-idp:AddUserPoolClientSecret",
  "cognito-idp:ListUserPoolClientSecrets",
  "cognito-idp:DeleteUserPoolClientSecret",
]);

const MAX_SECRETS = 2;
const DEFAULT_LIFETIME_SECONDS = 3600;
const TARGET_PREFIX = "AWSCognitoIdentityProviderService.";
const SECRET_PATTERN = /^[\w+]{24,64}$/;
const SECRET_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * Starts a Cognito emulator listening on `127.0.0.1` and a free port (by
 * default).
 *
 * @param options User pool, app clients, access keys and switches; all
 *   optional.
 * @returns The running emulator; close it when done.
 *
 * @example Get a token with Basic authentication
 * ```ts
 * import { startCognitoEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using cognito = startCognitoEmulator({
 *   clients: [{ clientId: "app", secrets: ["s3cret"] }],
 * });
 * const response = await fetch(cognito.tokenUrl, {
 *   method: "POST",
 *   headers: {
 *     authorization: `Basic ${btoa("app:s3cret")}`,
 *     "content-type": "application/x-www-form-urlencoded",
 *   },
 *   body: "grant_type=client_credentials",
 * });
 * const body = await response.json();
 * if (body.token_type !== "Bearer" || body.expires_in !== 3600) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function startCognitoEmulator(
  options?: CognitoEmulatorOptions,
): CognitoEmulator {
  return new Cognito(options ?? {});
}

type SecretRecord = CognitoSecret;

interface ClientRecord {
  readonly id: string;
  readonly allowedScopes: readonly string[];
  readonly clientCredentialsFlow: boolean;
  readonly lifetimeSeconds: number;
  readonly secrets: SecretRecord[];
}

type Operation = (
  input: Record<string, unknown>,
) => Response;

class Cognito extends FaultInjectingProviderEmulator
  implements CognitoEmulator {
  readonly userPoolId: string;
  readonly region: string;

  readonly #limiter: FixedWindow | undefined;
  readonly #clients = new Map<string, ClientRecord>();
  readonly #principals = new Map<string, CognitoIamPrincipal>();
  #lastSecretMs = 0;

  constructor(options: CognitoEmulatorOptions) {
    super("Cognito", options, faultBody);
    this.userPoolId = options.userPoolId ?? "us-east-1_EMULATOR";
    const match = this.userPoolId.match(/^([\w-]+)_[0-9a-zA-Z]+$/);
    if (!match) {
      throw new Error(
        `userPoolId must look like <region>_<id>, such as us-east-1_EMULATOR, got ${this.userPoolId}`,
      );
    }
    this.region = match[1];
    this.#limiter = options.apiRateLimit === undefined
      ? undefined
      : new FixedWindow(options.apiRateLimit, this.host.clock);
    for (const principal of options.principals ?? []) {
      this.#principals.set(principal.accessKeyId, principal);
    }
    for (const client of options.clients ?? []) this.addClient(client);
    const routes: ProviderRoutes = {
      isTokenPath: (path) => path === "/oauth2/token",
      isApiPath: (path) => path === "/",
      token: (request) => this.faulted(request, () => this.#token(request)),
      throttled: () => oauthError(429, "too_many_requests"),
      api: (request) =>
        request.method === "POST" ? this.#api(request) : notFound(),
      notFound,
      serverError: () =>
        awsError(500, "InternalErrorException", "Internal server error"),
    };
    this.host.listen(routes);
  }

  get tokenUrl(): string {
    return `${this.url}/oauth2/token`;
  }

  get apiUrl(): string {
    return `${this.url}/`;
  }

  addClient(client: CognitoAppClient): void {
    if (this.#clients.has(client.clientId)) {
      throw new Error(`App client ${client.clientId} already exists`);
    }
    if (client.secrets.length < 1 || client.secrets.length > MAX_SECRETS) {
      throw new RangeError(
        `App client ${client.clientId} needs one or two secrets, got ${client.secrets.length}`,
      );
    }
    const scopes = client.allowedScopes ?? ["default/m2m"];
    if (scopes.length === 0) {
      throw new RangeError(
        `App client ${client.clientId} needs at least one allowed custom scope for the client-credentials flow`,
      );
    }
    const lifetime = client.tokenLifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
    if (!(lifetime > 0 && Number.isFinite(lifetime))) {
      throw new RangeError(
        `tokenLifetimeSeconds must be a positive number, got ${lifetime}`,
      );
    }
    const record: ClientRecord = {
      id: client.clientId,
      allowedScopes: [...scopes],
      clientCredentialsFlow: client.clientCredentialsFlow ?? true,
      lifetimeSeconds: lifetime,
      secrets: [],
    };
    this.#clients.set(client.clientId, record);
    for (const value of client.secrets) this.#createSecret(record, value, true);
  }

  addSecret(clientId: string, value?: string): CognitoSecret {
    const client = this.#client(clientId);
    if (client.secrets.length >= MAX_SECRETS) {
      throw new Error(
        `App client ${clientId} already has ${MAX_SECRETS} secrets, the most Cognito allows`,
      );
    }
    return { ...this.#createSecret(client, value, false) };
  }

  deleteSecret(clientId: string, secretId: string): void {
    const client = this.#client(clientId);
    if (!this.#removeSecret(client, secretId)) {
      throw new Error(`App client ${clientId} has no secret ${secretId}`);
    }
  }

  secrets(clientId: string): CognitoSecret[] {
    return this.#client(clientId).secrets.map((secret) => ({ ...secret }));
  }

  issueToken(clientId: string): string {
    const client = this.#client(clientId);
    return this.#mint(client, client.allowedScopes, undefined);
  }

  #client(clientId: string): ClientRecord {
    const client = this.#clients.get(clientId);
    if (!client) throw new Error(`Unknown app client ${clientId}`);
    return client;
  }

  #createSecret(
    client: ClientRecord,
    value: string | undefined,
    seeded: boolean,
  ): SecretRecord {
    const now = this.host.clock.now();
    // Ids carry the creation time; two in the same millisecond stay distinct.
    const stamp = Math.max(now, this.#lastSecretMs + 1);
    this.#lastSecretMs = stamp;
    const secret: SecretRecord = {
      secretId: `${client.id}--${stamp}`,
      value: value ?? generatedSecret(),
      createdAt: now,
      usableFrom: seeded ? now : this.host.usableAt(),
    };
    client.secrets.push(secret);
    if (!seeded) this.host.secretCreated();
    return secret;
  }

  #removeSecret(client: ClientRecord, secretId: string): boolean {
    const index = client.secrets.findIndex((secret) =>
      secret.secretId === secretId
    );
    if (index < 0) return false;
    client.secrets.splice(index, 1);
    this.host.secretRemoved(client.id, secretId);
    return true;
  }

  // ---- /oauth2/token ------------------------------------------------------

  /** A token shaped as Cognito's access token (a JWT, `token_use` access). */
  #mint(
    client: ClientRecord,
    scopes: readonly string[],
    secretId: string | undefined,
  ): string {
    const scope = scopes.join(" ");
    return this.host.tokens.mint(
      {
        clientId: client.id,
        audience: undefined,
        scope,
        secretId,
      },
      client.lifetimeSeconds,
      {
        sub: client.id,
        token_use: "access",
        scope,
        iss:
          `https://cognito-idp.${this.region}.amazonaws.com/${this.userPoolId}`,
        version: 2,
        jti: crypto.randomUUID(),
        client_id: client.id,
      },
    );
  }

  async #token(request: Request): Promise<Response> {
    if (request.method !== "POST") return oauthError(405, "invalid_request");
    const form = await readForm(request);
    if (typeof form === "string") return oauthError(400, "invalid_request");
    const { basic, bodyId, bodySecret } = this.host.readClientAuthentication(
      request,
      form,
    );
    const grantType = form.get("grant_type");
    if (grantType === null) return oauthError(400, "invalid_request");
    const candidates = basic ?? (bodyId === undefined ? [] : [{
      id: bodyId,
      secret: bodySecret ?? "",
    }]);
    if (basic && bodyId !== undefined && basic[0].id !== bodyId) {
      return oauthError(400, "invalid_client");
    }
    const auth = this.#authenticate(candidates);
    if (!auth) return oauthError(400, "invalid_client");
    if (
      !["authorization_code", "refresh_token", "client_credentials"].includes(
        grantType,
      )
    ) {
      return oauthError(400, "unsupported_grant_type");
    }
    if (
      grantType !== "client_credentials" || !auth.client.clientCredentialsFlow
    ) {
      return oauthError(400, "unauthorized_client");
    }
    const requested = scopesOf(form);
    if (requested.some((scope) => !auth.client.allowedScopes.includes(scope))) {
      return oauthError(400, "invalid_scope");
    }
    const scopes = requested.length > 0 ? requested : auth.client.allowedScopes;
    const token = this.#mint(auth.client, scopes, auth.secret.secretId);
    this.host.issued(auth.secret.secretId);
    return noStore(200, {
      access_token: token,
      expires_in: auth.client.lifetimeSeconds,
      token_type: "Bearer",
    });
  }

  #authenticate(
    candidates: readonly { id: string; secret: string }[],
  ): { client: ClientRecord; secret: SecretRecord } | undefined {
    const now = this.host.clock.now();
    for (const candidate of candidates) {
      const client = this.#clients.get(candidate.id);
      const secret = client?.secrets.find((secret) =>
        now >= secret.usableFrom &&
        timingSafeEqual(secret.value, candidate.secret)
      );
      if (client && secret) return { client, secret };
    }
    return undefined;
  }

  // ---- cognito-idp JSON 1.1 API -------------------------------------------

  async #api(request: Request): Promise<Response> {
    const body = await readText(request) ?? "";
    const signer = await verifySigV4(request, body, this.#principals, {
      region: this.region,
      service: "cognito-idp",
    }, this.host.clock.now());
    if ("type" in signer) return awsError(400, signer.type, signer.message);
    const target = request.headers.get("x-amz-target") ?? "";
    const name = target.startsWith(TARGET_PREFIX)
      ? target.slice(TARGET_PREFIX.length)
      : "";
    const operation = this.#operations()[name];
    if (!operation) {
      return awsError(400, "UnknownOperationException", undefined);
    }
    const denied = this.#authorize(signer.key, name);
    if (denied) return denied;
    if (this.#limiter && !this.#limiter.take().allowed) {
      return awsError(400, "TooManyRequestsException", "Too many requests");
    }
    let input: unknown;
    try {
      input = JSON.parse(body === "" ? "{}" : body);
    } catch {
      return awsError(400, "SerializationException", undefined);
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      return awsError(400, "SerializationException", undefined);
    }
    return operation(input as Record<string, unknown>);
  }

  #operations(): Record<string, Operation> {
    return {
      AddUserPoolClientSecret: (input) => this.#addViaApi(input),
      ListUserPoolClientSecrets: (input) => this.#listViaApi(input),
      DeleteUserPoolClientSecret: (input) => this.#deleteViaApi(input),
    };
  }

  #authorize(
    principal: CognitoIamPrincipal,
    operation: string,
  ): Response | undefined {
    const action = `cognito-idp:${operation}`;
    const allowed = principal.actions ?? COGNITO_SECRET_ACTIONS;
    if (
      allowed.some((granted) =>
        granted === "*" || granted === "cognito-idp:*" || granted === action
      )
    ) {
      return undefined;
    }
    const arn = principal.arn ?? "arn:aws:iam::000000000000:user/emulator";
    const resource =
      `arn:aws:cognito-idp:${this.region}:000000000000:userpool/${this.userPoolId}`;
    return awsError(
      400,
      "AccessDeniedException",
      `User: ${arn} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
    );
  }

  /** The pool and client an input names, or the error AWS answers. */
  #target(input: Record<string, unknown>): ClientRecord | Response {
    for (
      const [member, field] of [["userPoolId", "UserPoolId"], [
        "clientId",
        "ClientId",
      ]]
    ) {
      if (typeof input[field] !== "string") {
        return invalidParameter(
          `1 validation error detected: Value null at '${member}' failed to satisfy constraint: Member must not be null`,
        );
      }
    }
    const poolId = input.UserPoolId as string;
    const clientId = input.ClientId as string;
    if (poolId !== this.userPoolId) {
      return awsError(
        400,
        "ResourceNotFoundException",
        `User pool ${poolId} does not exist.`,
      );
    }
    const client = this.#clients.get(clientId);
    if (!client) {
      return awsError(
        400,
        "ResourceNotFoundException",
        `User pool client ${clientId} does not exist.`,
      );
    }
    return client;
  }

  #addViaApi(input: Record<string, unknown>): Response {
    const client = this.#target(input);
    if (client instanceof Response) return client;
    const given = input.ClientSecret;
    if (given !== undefined) {
      if (typeof given !== "string" || !SECRET_PATTERN.test(given)) {
        return invalidParameter(
          "1 validation error detected: Value at 'clientSecret' failed to satisfy constraint: Member must have length between 24 and 64 and match regular expression pattern: [\\w+]+",
        );
      }
    }
    if (client.secrets.length >= MAX_SECRETS) {
      return awsError(
        400,
        "LimitExceededException",
        `App client ${client.id} already has the maximum number of client secrets (${MAX_SECRETS}).`,
      );
    }
    const secret = this.#createSecret(
      client,
      given as string | undefined,
      false,
    );
    return awsJson({
      ClientSecretDescriptor: {
        ClientSecretId: secret.secretId,
        // Cognito returns the value only when it generated it.
        ...(given === undefined ? { ClientSecretValue: secret.value } : {}),
        ClientSecretCreateDate: secret.createdAt / 1000,
      },
    });
  }

  #listViaApi(input: Record<string, unknown>): Response {
    const client = this.#target(input);
    if (client instanceof Response) return client;
    if (input.NextToken !== undefined && typeof input.NextToken !== "string") {
      return invalidParameter(
        "1 validation error detected: Value at 'nextToken' failed to satisfy constraint: Member must be a string",
      );
    }
    return awsJson({
      ClientSecrets: client.secrets.map((secret) => ({
        ClientSecretId: secret.secretId,
        ClientSecretCreateDate: secret.createdAt / 1000,
      })),
    });
  }

  #deleteViaApi(input: Record<string, unknown>): Response {
    const client = this.#target(input);
    if (client instanceof Response) return client;
    const secretId = input.ClientSecretId;
    if (typeof secretId !== "string") {
      return invalidParameter(
        "1 validation error detected: Value null at 'clientSecretId' failed to satisfy constraint: Member must not be null",
      );
    }
    if (!client.secrets.some((secret) => secret.secretId === secretId)) {
      return awsError(
        400,
        "ResourceNotFoundException",
        `Client secret ${secretId} does not exist.`,
      );
    }
    if (client.secrets.length === 1) {
      return invalidParameter(
        `Client secret ${secretId} is the only secret of app client ${client.id} and cannot be deleted.`,
      );
    }
    this.#removeSecret(client, secretId);
    return awsJson({});
  }
}

function generatedSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(52));
  return [...bytes].map((byte) => SECRET_ALPHABET[byte % 36]).join("");
}

/** Cognito's token-endpoint errors carry the code alone. */
function notFound(): Response {
  return json(404, { message: "Not Found" });
}

function oauthError(status: number, error: string): Response {
  return json(status, { error }, { "cache-control": "no-store" });
}

function awsHeaders(): Headers {
  return new Headers({
    "content-type": "application/x-amz-json-1.1",
    "x-amzn-requestid": crypto.randomUUID(),
  });
}

function awsJson(body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: awsHeaders(),
  });
}

/** The AWS JSON error shape: `{__type, message}` and `x-amzn-ErrorType`. */
function awsError(
  status: number,
  type: string,
  message: string | undefined,
): Response {
  const headers = awsHeaders();
  headers.set("x-amzn-errortype", type);
  return new Response(
    JSON.stringify(
      message === undefined ? { __type: type } : {
        __type: type,
        message,
      },
    ),
    { status, headers },
  );
}

function invalidParameter(message: string): Response {
  return awsError(400, "InvalidParameterException", message);
}

/** The body of an injected token-endpoint status: the code alone, as Cognito answers. */
function faultBody(status: number): string {
  return JSON.stringify({
    error: status === 429
      ? "too_many_requests"
      : status >= 500
      ? "server_error"
      : status === 401
      ? "invalid_client"
      : "invalid_request",
  });
}
