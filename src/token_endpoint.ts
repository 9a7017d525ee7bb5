/**
 * One client-credentials token request (RFC 6749 §4.4): Basic client
 * authentication, a form body, a timeout, and strict response validation.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { classifyErrorResponse, classifyFetchFailure } from "./classify.ts";
import { InvalidTokenResponseError } from "./errors.ts";
import type { Secret } from "./secret.ts";

/** The longest token lifetime the library believes; longer ones are cut to this. */
export const MAX_TOKEN_LIFETIME_MS: number = 7 * 24 * 60 * 60 * 1000;

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
  /** The fetch to send with. */
  readonly fetch: typeof fetch;
  /** The clock for the timeout and `Retry-After` dates. */
  readonly clock: Clock;
  /** Abort the request after this many ms, body included. */
  readonly timeoutMs: number;
  /** Aborts the request. */
  readonly signal?: AbortSignal;
}

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
}

/**
 * Builds the `Authorization` header value for client authentication:
 * `Basic base64(urlencode(clientId) ":" urlencode(secret))` (RFC 6749 §2.3.1).
 *
 * @param clientId The client id.
 * @param clientSecret The client secret.
 * @returns The header value.
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
    btoa(`${formEncode(clientId)}:${formEncode(clientSecret.reveal())}`)
  }`;
}

/**
 * Sends one token request and validates the answer. Does not retry.
 *
 * @param request What to send and how.
 * @returns The validated grant.
 * @throws {import("./errors.ts").DualSecretAuthError} Classified: rejected,
 *   rate limited, unavailable, invalid response, request error, or aborted.
 */
export async function requestToken(request: TokenRequest): Promise<TokenGrant> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = request.clock.setTimeout(() => {
    timedOut = true;
    controller.abort(
      new DOMException("token request timed out", "TimeoutError"),
    );
  }, request.timeoutMs);
  const onCallerAbort = () => controller.abort(request.signal?.reason);
  request.signal?.addEventListener("abort", onCallerAbort, { once: true });
  if (request.signal?.aborted) onCallerAbort();
  try {
    let response: Response;
    let text: string;
    try {
      response = await request.fetch(request.tokenUrl, {
        method: "POST",
        headers: {
          "authorization": basicAuthorization(
            request.clientId,
            request.clientSecret,
          ),
          "content-type": "application/x-www-form-urlencoded",
          "accept": "application/json",
        },
        body: formBody(request.scope),
        signal: controller.signal,
        redirect: "error",
      });
      text = await response.text();
    } catch (error) {
      throw classifyFetchFailure(error, timedOut, request.signal);
    }
    if (!response.ok) {
      throw classifyErrorResponse(
        response,
        text,
        request.label,
        request.clock.now(),
      );
    }
    return parseTokenResponse(text, response.status);
  } finally {
    request.clock.clearTimeout(timer);
    request.signal?.removeEventListener("abort", onCallerAbort);
  }
}

/**
 * Validates a token response body strictly: a non-empty string
 * `access_token`, a `token_type` of bearer in any case, and a positive finite
 * number `expires_in`.
 *
 * @param text The response body.
 * @param status The HTTP status, for the error.
 * @returns The grant.
 * @throws {InvalidTokenResponseError} When any rule fails.
 *
 * @example
 * ```ts
 * import { parseTokenResponse } from "./token_endpoint.ts";
 * const grant = parseTokenResponse('{"access_token":"t","token_type":"Bearer","expires_in":60}', 200);
 * if (grant.lifetimeMs !== 60_000) throw new Error();
 * ```
 */
export function parseTokenResponse(text: string, status: number): TokenGrant {
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
  if (typeof token_type !== "string" || token_type.toLowerCase() !== "bearer") {
    throw new InvalidTokenResponseError(
      `token_type is ${describe(token_type)}, expected bearer`,
      status,
    );
  }
  if (
    typeof expires_in !== "number" || !Number.isFinite(expires_in) ||
    expires_in <= 0
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
    lifetimeMs: Math.min(expires_in * 1000, MAX_TOKEN_LIFETIME_MS),
    scope: typeof scope === "string" ? scope : undefined,
  };
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (typeof value === "string") return `the string "${value.slice(0, 20)}"`;
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

function formBody(scope: string | undefined): URLSearchParams {
  const body = new URLSearchParams({ grant_type: "client_credentials" });
  if (scope) body.set("scope", scope);
  return body;
}

/** `application/x-www-form-urlencoded` encoding, as RFC 6749 Appendix B asks. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, "+").replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
