/**
 * Sorts a failed token request into what the library does next: fail over
 * (rejected), wait and retry (rate limited, transient), or give up.
 *
 * @module
 */
import {
  AbortedError,
  CredentialRejectedError,
  type DualSecretAuthError,
  PermissionDeniedError,
  RateLimitedError,
  TokenEndpointUnavailableError,
  TokenRequestError,
} from "./errors.ts";
import { parseRetryAfter } from "./retry.ts";

/** OAuth error codes that mean "this credential does not work". */
const REJECTION_CODES: ReadonlySet<string> = new Set([
  "invalid_client",
  "unauthorized_client",
  "invalid_grant",
]);

/** How long an OAuth error description may be before it is cut. */
const MAX_DESCRIPTION = 200;

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
 * - 400/401 with `invalid_client`, `unauthorized_client`, `invalid_grant`, and
 *   a 401 without another OAuth error (RFC 6749 §5.2 keeps 401 for client
 *   authentication): the credential is rejected.
 * - 429: rate limited, with the server's `Retry-After`.
 * - 408 and 5xx: transient.
 * - Anything else: a request error that no other credential would fix.
 *
 * @param response The response (its status and headers).
 * @param text The response body.
 * @param label The credential's label (for messages).
 * @param now The current time, for `Retry-After` dates.
 * @returns The error to throw or retry on.
 */
export function classifyErrorResponse(
  response: Response,
  text: string,
  label: string,
  now: number,
): DualSecretAuthError {
  const { status } = response;
  const body = readOAuthError(text);
  if (status === 429) {
    return new RateLimitedError(
      parseRetryAfter(response.headers.get("retry-after"), now),
    );
  }
  if (status === 408 || status >= 500) {
    return new TokenEndpointUnavailableError(`HTTP ${status}`, status);
  }
  const details = { status, ...body };
  const rejected = (status === 400 || status === 401) &&
    (body.oauthError === undefined
      ? status === 401
      : REJECTION_CODES.has(body.oauthError));
  return rejected
    ? new CredentialRejectedError(label, details)
    : new TokenRequestError(label, details);
}

/**
 * Classifies a `fetch` that threw or a body that could not be read.
 *
 * @param error What was thrown.
 * @param timedOut Whether the library's own timeout aborted the request.
 * @param callerSignal The caller's signal, to tell its abort from ours.
 * @returns A transient error; an abort error when the caller aborted; a
 *   permission error when the runtime refused the connection.
 */
export function classifyFetchFailure(
  error: unknown,
  timedOut: boolean,
  callerSignal?: AbortSignal,
): DualSecretAuthError {
  if (timedOut) {
    return new TokenEndpointUnavailableError("request timed out", undefined, {
      cause: error,
    });
  }
  if (callerSignal?.aborted) return new AbortedError({ cause: error });
  const name = error instanceof Error ? error.name : "error";
  // Deno's NotCapable (and the older PermissionDenied), named without a
  // reference to `Deno` so the library stays web-standard.
  if (name === "NotCapable" || name === "PermissionDenied") {
    const detail = (error as Error).message.replace(/, run again with.*$/s, "");
    return new PermissionDeniedError(detail, { cause: error });
  }
  return new TokenEndpointUnavailableError(`network ${name}`, undefined, {
    cause: error,
  });
}

function readOAuthError(
  text: string,
): { oauthError?: string; description?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== "object" || parsed === null) return {};
  const { error, error_description: description } = parsed as Record<
    string,
    unknown
  >;
  return {
    oauthError: typeof error === "string" && /^[\x20-\x7e]{1,64}$/.test(error)
      ? error
      : undefined,
    description: typeof description === "string"
      ? description.slice(0, MAX_DESCRIPTION)
      : undefined,
  };
}
