/**
 * Sorts a failed token request into what the library does next: fail over
 * (rejected), wait and retry (rate limited, transient), or give up.
 *
 * @module
 */
import {
  AbortedError,
  CredentialRejectedError,
  DualSecretAuthError,
  InvalidTokenResponseError,
  PermissionDeniedError,
  RateLimitedError,
  TokenEndpointUnavailableError,
  TokenRequestError,
} from "./errors.ts";
import { parseRetryAfter } from "./retry.ts";
import { SendFailure } from "./send.ts";

/**
 * OAuth error codes that mean "this credential does not work". Keycloak
 * answers a wrong secret with `unauthorized_client`, Auth0 with
 * `access_denied`.
 */
const REJECTION_CODES: ReadonlySet<string> = new Set([
  "invalid_client",
  "unauthorized_client",
  "invalid_grant",
  "access_denied",
]);

/**
 * The Entra ID codes read from the start of `error_description`
 * ("AADSTS7000215: …"): an invalid (7000215) or expired (7000222) secret, a
 * rejection whatever OAuth code comes with it; tenant throttling (90055,
 * `TenantThrottlingError`), rate limiting whatever the status.
 */
const ENTRA_CODE = /^AADSTS(7000215|7000222|90055)\b/;

/**
 * An `invalid_request` description that says a rate limit was exceeded.
 * Genesys Cloud answers a token request past its creation limit with
 * `400 invalid_request` and `rate limit exceeded` (its Terraform provider
 * retries on exactly that). A description that only mentions a rate limit
 * ("rate limit policy") is not throttling.
 */
const RATE_LIMIT_TEXT =
  /rate[ _-]?limit(?:ed\b|[^.;]*\bexceed)|too many requests/i;

/** How much of a description is searched for throttling text. */
const MAX_THROTTLE_TEXT = 200;

/**
 * Whether an error may go away by itself, so the request should be retried.
 *
 * @param error A classified error.
 * @returns True for rate limiting and unavailability.
 */
export function isRetryable(error: DualSecretAuthError): boolean {
  return error instanceof RateLimitedError ||
    error instanceof TokenEndpointUnavailableError;
}

/**
 * Classifies a non-2xx token endpoint response.
 *
 * - 400/401 with `invalid_client`, `unauthorized_client`, `invalid_grant`,
 *   `access_denied` (Auth0) or an Entra ID description starting
 *   `AADSTS7000215`/`AADSTS7000222`, and a 401 without another OAuth error
 *   (RFC 6749 §5.2 keeps 401 for client authentication): the credential is
 *   rejected.
 * - 429, a 400 `invalid_request` whose description says a rate limit was
 *   exceeded (Genesys Cloud's `rate limit exceeded`), and Entra ID's
 *   `AADSTS90055` on any status: rate limited, with the server's
 *   `Retry-After`; retried, never failed over. (Okta's and Auth0's
 *   `X-Rate-Limit-Reset` are not read: the core stays small, and the
 *   backoff waits without them.)
 * - 408 and 5xx: transient.
 * - Anything else: a request error that no other credential would fix.
 *
 * @param response The response (its status and headers).
 * @param text The response body.
 * @param label The credential's label (for messages).
 * @param now The current time, for `Retry-After` dates.
 * @param quote Quotes server text, redacted and capped; by default nothing
 *   the server wrote is quoted.
 * @returns The error to throw or retry on.
 */
export function classifyErrorResponse(
  response: Response,
  text: string,
  label: string,
  now: number,
  quote: (value: unknown) => string | undefined = () => undefined,
): DualSecretAuthError {
  const { status } = response;
  const { throttled, aad, ...body } = readOAuthError(text, quote);
  if (
    status === 429 || (status === 400 && throttled) || aad === "90055"
  ) {
    return new RateLimitedError(
      parseRetryAfter(response.headers.get("retry-after"), now),
      // The cause keeps what a 400 said; the class keeps it retried.
      status === 429
        ? undefined
        : { cause: new TokenRequestError(label, { status, ...body }) },
    );
  }
  if (status === 408 || status >= 500) {
    return new TokenEndpointUnavailableError(`HTTP ${status}`, status);
  }
  const details = { status, ...body };
  const rejected = (status === 400 || status === 401) &&
    (!!aad ||
      (body.oauthError === undefined
        ? status === 401
        : REJECTION_CODES.has(body.oauthError)));
  return rejected
    ? new CredentialRejectedError(label, details)
    : new TokenRequestError(label, details);
}

/**
 * Classifies a failed send of a token request.
 *
 * @param error What {@linkcode send} threw.
 * @returns A transient error for timeouts and network failures; an abort
 *   error when the caller aborted; a permission error when the runtime
 *   refused the connection; an invalid response for a body over the limit; a
 *   redirect refusal as it is.
 */
export function classifyFetchFailure(error: unknown): DualSecretAuthError {
  if (error instanceof DualSecretAuthError) return error;
  if (!(error instanceof SendFailure)) {
    return new TokenEndpointUnavailableError("unexpected failure", undefined, {
      cause: error,
    });
  }
  switch (error.kind) {
    case "aborted":
      return new AbortedError({ cause: error.cause });
    case "permission":
      return new PermissionDeniedError(error.message, { cause: error.cause });
    case "too-large":
      return new InvalidTokenResponseError(
        `${error.message}; raise maxResponseBytes if the endpoint really sends that much`,
        error.status ?? 0,
      );
    default:
      return new TokenEndpointUnavailableError(error.message, undefined, {
        cause: error.cause,
      });
  }
}

function readOAuthError(
  text: string,
  quote: (value: unknown) => string | undefined,
): {
  oauthError?: string;
  description?: string;
  throttled?: boolean;
  aad?: string;
} {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== "object" || parsed === null) return {};
  const { error, error_description: description, description: genesys } =
    parsed as Record<string, unknown>;
  const code = typeof error === "string" && /^[\x20-\x7e]{1,64}$/.test(error)
    ? quote(error)
    : undefined;
  return {
    // A code that had to be redacted is no OAuth code at all.
    oauthError: code === error ? code : undefined,
    description: quote(description),
    // Entra ID starts every description with its code, "AADSTS7000215: …".
    // Not String(description): a body's {"toString": 1} would throw.
    aad: typeof description === "string"
      ? ENTRA_CODE.exec(description)?.[1]
      : undefined,
    // Read raw, not quoted: quoting may be off, and is only for messages.
    // Genesys Cloud sends its text in `description` as well.
    // Only the start is read: the pattern scans ahead for "exceed", which
    // on 64 KiB of "rate limit rate limit …" would cost seconds.
    throttled: error === "invalid_request" &&
      [description, genesys].some((text) =>
        typeof text === "string" &&
        RATE_LIMIT_TEXT.test(text.slice(0, MAX_THROTTLE_TEXT))
      ),
  };
}
