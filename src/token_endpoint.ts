/**
 * One client-credentials token request (RFC 6749 §4.4): Basic or form-body
 * (`client_secret_post`) client authentication, a form body, a timeout, and strict response validation.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { classifyErrorResponse, classifyFetchFailure } from "./classify.ts";
import { ConfigError, InvalidTokenResponseError } from "./errors.ts";
import {
  createRedactor,
  credentialForms,
  formEncode,
  type Redactor,
  UNENCODABLE,
} from "./redact.ts";
import type { Secret } from "./secret.ts";
import { send } from "./send.ts";

/** RFC 6750 §2.1 `b64token`: what an `Authorization: Bearer` value may hold. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The longest token lifetime the library believes; longer ones are cut to this. */
export const MAX_TOKEN_LIFETIME_MS: number = 7 * 24 * 60 * 60 * 1000;

/**
 * The lifetime assumed, in seconds, when a token response has no
 * `expires_in` (RFC 6749 §5.1 makes it RECOMMENDED, not required): 300 s, the
 * shortest lifetime among the endpoints this library knows (Genesys Cloud's
 * minimum, Keycloak's default). A guess too long would serve a token the
 * server already expired, so every call would pay a 401 and a replay; a guess
 * too short costs only a token request every few minutes.
 */
export const DEFAULT_EXPIRES_IN_SECONDS: number = 300;

/** `expires_in` sent as a JSON string: decimal digits, optionally a fraction ("3599"). */
const NUMERIC_STRING = /^[0-9]+(\.[0-9]+)?$/;

/** What a token request needs. */
export interface TokenRequest {
  /** The token endpoint URL. */
  readonly tokenUrl: string;
  /** The credential's label, for error messages. */
  readonly label: string;
  /** The OAuth client id. */
  readonly clientId: string;
  /** The client secret. */
  readonly clientSecret: Secret;
  /** Space-separated scopes, if any. */
  readonly scope?: string;
  /**
   * How the client authenticates (RFC 7591 `token_endpoint_auth_method`):
   * an `Authorization: Basic` header, or `client_id` and `client_secret` in
   * the form body.
   *
   * @default {"client_secret_basic"}
   */
  readonly authMethod?: TokenAuthMethod;
  /** Further form parameters, such as Auth0's `audience`. */
  readonly params?: Readonly<Record<string, string>>;
  /** The fetch to send with. */
  readonly fetch: typeof fetch;
  /** The clock for the timeout and `Retry-After` dates. */
  readonly clock: Clock;
  /**
   * Abort the request after this many ms, body included.
   *
   * @default {10_000}
   */
  readonly timeoutMs?: number;
  /**
   * The largest response body read.
   *
   * @default {65_536}
   */
  readonly maxResponseBytes?: number;
  /** Aborts the request. */
  readonly signal?: AbortSignal;
  /**
   * The lifetime assumed when the response has no `expires_in`, in seconds.
   *
   * @default {300}
   */
  readonly defaultExpiresInSeconds?: number;
  /**
   * What else to redact from the server's text, besides this credential
   * (which is always redacted): other secrets and tokens of the caller.
   */
  readonly redact?: Redactor;
}

/** How a client authenticates at the token endpoint (RFC 7591 names). */
export type TokenAuthMethod = "client_secret_basic" | "client_secret_post";

/** A validated token response. */
export interface TokenGrant {
  /** The access token. */
  readonly accessToken: string;
  /** The token type as sent (always bearer, any case). */
  readonly tokenType: string;
  /** The lifetime in ms, as sent, capped at {@linkcode MAX_TOKEN_LIFETIME_MS}. */
  readonly lifetimeMs: number;
  /** The granted scope, if the server said. */
  readonly scope?: string;
  /**
   * True when the response had no `expires_in` and `lifetimeMs` is the
   * assumed default, so the owner can warn.
   */
  readonly lifetimeAssumed?: boolean;
}

/**
 * Builds the `Authorization` header value for client authentication:
 * `Basic base64(urlencode(clientId) ":" urlencode(secret))` (RFC 6749 §2.3.1).
 *
 * @param clientId The client id.
 * @param clientSecret The client secret.
 * @returns The header value.
 * @throws {ConfigError} When the id or secret cannot be encoded (a lone
 *   surrogate): no request could carry it.
 *
 * @example
 * ```ts
 * import { basicAuthorization } from "./token_endpoint.ts";
 * import { Secret } from "./secret.ts";
 * const value = basicAuthorization("id", new Secret("a:b"));
 * if (atob(value.slice(6)) !== "id:a%3Ab") throw new Error(value);
 * ```
 */
export function basicAuthorization(
  clientId: string,
  clientSecret: Secret,
): string {
  // Form encoding leaves only ASCII, which btoa takes as it is.
  return `Basic ${
    btoa(
      `${encoded("clientId", clientId)}:${
        encoded("clientSecret", clientSecret.reveal())
      }`,
    )
  }`;
}

function encoded(option: string, value: string): string {
  try {
    return formEncode(value);
  } catch {
    throw new ConfigError(option, UNENCODABLE);
  }
}

/**
 * Sends one token request and validates the answer. Does not retry. Server
 * text quoted in an error is redacted of this credential in every encoding
 * and of whatever `redact` knows.
 *
 * @param request What to send and how.
 * @returns The validated grant.
 * @throws {import("./errors.ts").DualSecretAuthError} Classified: rejected,
 *   rate limited, unavailable, invalid response, request error, redirect
 *   refused, or aborted.
 */
export async function requestToken(request: TokenRequest): Promise<TokenGrant> {
  // Built for post too: it refuses an id or secret no request could carry.
  const authorization = basicAuthorization(
    request.clientId,
    request.clientSecret,
  );
  const post = request.authMethod === "client_secret_post";
  const body = new URLSearchParams({
    ...request.params,
    grant_type: "client_credentials",
  });
  if (request.scope) body.set("scope", request.scope);
  if (post) {
    body.set("client_id", request.clientId);
    body.set("client_secret", request.clientSecret.reveal());
  }
  // Computed only when server text is quoted, i.e. on error paths.
  const ownRedactor = createRedactor(() =>
    credentialForms(request.clientId, request.clientSecret.reveal())
  );
  const redact: Redactor = request.redact === undefined
    ? ownRedactor
    : (text) => ownRedactor(request.redact!(text));
  let sent;
  try {
    sent = await send(request.tokenUrl, {
      method: "POST",
      headers: {
        ...post ? {} : { authorization },
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
      },
      body,
    }, {
      fetch: request.fetch,
      clock: request.clock,
      timeoutMs: request.timeoutMs,
      maxResponseBytes: request.maxResponseBytes,
      signal: request.signal,
      redact,
    });
  } catch (error) {
    throw classifyFetchFailure(error);
  }
  const { response, text } = sent;
  if (!response.ok) {
    throw classifyErrorResponse(
      response,
      text,
      request.label,
      request.clock.now(),
      sent.quote,
    );
  }
  return parseTokenResponse(
    text,
    response.status,
    request.defaultExpiresInSeconds,
  );
}

/**
 * Validates a token response body strictly: a non-empty string
 * `access_token`, a `token_type` of bearer in any case, and an `expires_in`
 * of a positive finite number of seconds, or a string of decimal digits
 * such as `"3599"` (some servers send one). A missing (or `null`)
 * `expires_in` is allowed, as RFC 6749 §5.1 allows it: the grant then lives
 * `defaultExpiresInSeconds` and says so (`lifetimeAssumed`).
 *
 * @param text The response body.
 * @param status The HTTP status, for the error.
 * @param defaultExpiresInSeconds The lifetime assumed without `expires_in`.
 * @returns The grant.
 * @throws {InvalidTokenResponseError} When any rule fails.
 *
 * @example
 * ```ts
 * import { parseTokenResponse } from "./token_endpoint.ts";
 * const grant = parseTokenResponse('{"access_token":"t","token_type":"Bearer","expires_in":"60"}', 200);
 * if (grant.lifetimeMs !== 60_000) throw new Error();
 * const assumed = parseTokenResponse('{"access_token":"t","token_type":"Bearer"}', 200, 120);
 * if (assumed.lifetimeMs !== 120_000 || !assumed.lifetimeAssumed) throw new Error();
 * ```
 */
export function parseTokenResponse(
  text: string,
  status: number,
  defaultExpiresInSeconds: number = DEFAULT_EXPIRES_IN_SECONDS,
): TokenGrant {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // The parser's message quotes the body, which may hold a token: leave it out.
    throw new InvalidTokenResponseError("body is not JSON", status);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidTokenResponseError("body is not a JSON object", status);
  }
  const fields = body as Record<string, unknown>;
  const { access_token, token_type, expires_in, scope } = fields;
  if (typeof access_token !== "string" || access_token.length === 0) {
    throw new InvalidTokenResponseError(
      "access_token is missing or not a non-empty string",
      status,
    );
  }
  if (!B64TOKEN.test(access_token)) {
    // Never quoted: it is a token, or close to one.
    throw new InvalidTokenResponseError(
      "access_token holds characters a Bearer token cannot have (RFC 6750 b64token)",
      status,
    );
  }
  if (typeof token_type !== "string" || token_type.toLowerCase() !== "bearer") {
    throw new InvalidTokenResponseError(
      `token_type is ${describe(token_type)}, expected bearer`,
      status,
    );
  }
  const assumed = expires_in === undefined || expires_in === null;
  const seconds = assumed
    ? defaultExpiresInSeconds
    : typeof expires_in === "string" && NUMERIC_STRING.test(expires_in)
    ? Number(expires_in)
    : expires_in;
  if (
    typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0
  ) {
    throw new InvalidTokenResponseError(
      `expires_in is ${
        describe(expires_in)
      }, expected a positive number of seconds`,
      status,
    );
  }
  return {
    accessToken: access_token,
    tokenType: token_type,
    lifetimeMs: Math.min(seconds * 1000, MAX_TOKEN_LIFETIME_MS),
    scope: typeof scope === "string" ? scope : undefined,
    ...(assumed ? { lifetimeAssumed: true } : {}),
  };
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  // A string is not quoted: a server may echo a secret in any field.
  if (typeof value === "string") {
    return `a string of ${value.length} characters`;
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return `${typeof value} ${value}`;
  }
  // Objects are not converted: a body may give them a throwing toString.
  return value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : "an object";
}
