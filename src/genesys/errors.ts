/**
 * Typed errors of the Genesys Cloud OAuth client administration API. Each one
 * says what the Platform API answered and what to do next; none ever holds a
 * secret or a token.
 *
 * @module
 */
import { DualSecretAuthError } from "../errors.ts";

/** The stable error codes of the admin client, one per error class. */
export const GenesysErrorCode: {
  readonly ADMIN_UNAUTHORIZED: "GENESYS_ADMIN_UNAUTHORIZED";
  readonly ADMIN_FORBIDDEN: "GENESYS_ADMIN_FORBIDDEN";
  readonly OAUTH_CLIENT_NOT_FOUND: "GENESYS_OAUTH_CLIENT_NOT_FOUND";
  readonly API_RATE_LIMITED: "GENESYS_API_RATE_LIMITED";
  readonly API_UNAVAILABLE: "GENESYS_API_UNAVAILABLE";
  readonly API_REQUEST_FAILED: "GENESYS_API_REQUEST_FAILED";
} = Object.freeze(
  {
    ADMIN_UNAUTHORIZED: "GENESYS_ADMIN_UNAUTHORIZED",
    ADMIN_FORBIDDEN: "GENESYS_ADMIN_FORBIDDEN",
    OAUTH_CLIENT_NOT_FOUND: "GENESYS_OAUTH_CLIENT_NOT_FOUND",
    API_RATE_LIMITED: "GENESYS_API_RATE_LIMITED",
    API_UNAVAILABLE: "GENESYS_API_UNAVAILABLE",
    API_REQUEST_FAILED: "GENESYS_API_REQUEST_FAILED",
  } as const,
);

/** One of the values of {@linkcode GenesysErrorCode}. */
export type GenesysErrorCode =
  typeof GenesysErrorCode[keyof typeof GenesysErrorCode];

/** What every admin API error knows about the failed call. */
export interface GenesysApiErrorDetails {
  /** What was attempted, such as `regenerate the secret of OAuth client X`. */
  readonly operation: string;
  /** HTTP status, when the API answered at all. */
  readonly status?: number;
  /** The `code` of the Genesys error body, such as `missing.any.permissions`. */
  readonly genesysCode?: string;
  /** The `contextId` / `inin-correlation-id`, for Genesys support. */
  readonly correlationId?: string;
}

/** The base class of every error of the admin client. */
export class GenesysApiError extends DualSecretAuthError {
  /** One of {@linkcode GenesysErrorCode}. */
  declare readonly code: GenesysErrorCode;
  /** What was attempted. */
  readonly operation: string;
  /** HTTP status, when the API answered at all. */
  readonly status?: number;
  /** The `code` of the Genesys error body, when there was one. */
  readonly genesysCode?: string;
  /** The correlation id Genesys support asks for, when there was one. */
  readonly correlationId?: string;

  /**
   * Creates the error.
   *
   * @param code The stable error code.
   * @param details What was attempted and what the API answered.
   * @param message What went wrong and what to do next.
   * @param options The underlying cause.
   */
  constructor(
    code: GenesysErrorCode,
    details: GenesysApiErrorDetails,
    message: string,
    options?: ErrorOptions,
  ) {
    const correlation = details.correlationId
      ? ` (correlation id ${details.correlationId})`
      : "";
    super(
      code,
      `Could not ${details.operation}: ${message}${correlation}`,
      options,
    );
    this.operation = details.operation;
    this.status = details.status;
    this.genesysCode = details.genesysCode;
    this.correlationId = details.correlationId;
  }
}

/** The Platform API rejected the admin access token (HTTP 401). */
export class AdminUnauthorizedError extends GenesysApiError {
  /** Always {@linkcode GenesysErrorCode.ADMIN_UNAUTHORIZED}. */
  declare readonly code: typeof GenesysErrorCode.ADMIN_UNAUTHORIZED;
  /**
   * Creates the error.
   *
   * @param details What was attempted and what the API answered.
   */
  constructor(details: GenesysApiErrorDetails) {
    super(
      GenesysErrorCode.ADMIN_UNAUTHORIZED,
      details,
      "the Platform API rejected the admin access token (HTTP 401). " +
        "The token expired or was revoked, or belongs to another region; " +
        "check GENESYS_ENVIRONMENT and the admin credential.",
    );
  }
}

/** The admin credential lacks the permission the call needs (HTTP 403). */
export class AdminForbiddenError extends GenesysApiError {
  /** Always {@linkcode GenesysErrorCode.ADMIN_FORBIDDEN}. */
  declare readonly code: typeof GenesysErrorCode.ADMIN_FORBIDDEN;
  /** The permission that is missing, such as `oauth:client:edit`. */
  readonly permission: string;

  /**
   * Creates the error.
   *
   * @param details What was attempted and what the API answered.
   * @param permission The permission the call needs.
   */
  constructor(details: GenesysApiErrorDetails, permission: string) {
    super(
      GenesysErrorCode.ADMIN_FORBIDDEN,
      details,
      `the admin credential lacks ${permission} (HTTP 403); ` +
        `grant it a role with that permission.`,
    );
    this.permission = permission;
  }
}

/** No OAuth client has the id asked for (HTTP 404). */
export class OAuthClientNotFoundError extends GenesysApiError {
  /** Always {@linkcode GenesysErrorCode.OAUTH_CLIENT_NOT_FOUND}. */
  declare readonly code: typeof GenesysErrorCode.OAUTH_CLIENT_NOT_FOUND;
  /** The client id that was not found. */
  readonly clientId: string;

  /**
   * Creates the error.
   *
   * @param details What was attempted and what the API answered.
   * @param clientId The client id.
   */
  constructor(details: GenesysApiErrorDetails, clientId: string) {
    super(
      GenesysErrorCode.OAUTH_CLIENT_NOT_FOUND,
      details,
      `there is no OAuth client with id ${clientId} in this organization (HTTP 404). ` +
        `Check the client id and the region.`,
    );
    this.clientId = clientId;
  }
}

/** The Platform API kept answering 429 and the bounded retries ran out. */
export class AdminRateLimitedError extends GenesysApiError {
  /** Always {@linkcode GenesysErrorCode.API_RATE_LIMITED}. */
  declare readonly code: typeof GenesysErrorCode.API_RATE_LIMITED;
  /** How long the server last asked to wait, in ms, when it said. */
  readonly retryAfterMs?: number;

  /**
   * Creates the error.
   *
   * @param details What was attempted and what the API answered.
   * @param retryAfterMs The wait the server asked for, if any.
   */
  constructor(details: GenesysApiErrorDetails, retryAfterMs?: number) {
    super(
      GenesysErrorCode.API_RATE_LIMITED,
      details,
      "the Platform API is rate limiting requests (HTTP 429)" +
        (retryAfterMs === undefined
          ? ""
          : `; it asked to wait ${Math.ceil(retryAfterMs / 1000)} s`) +
        ". Retry later.",
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/** The Platform API answered 5xx, could not be reached, or timed out, and retries ran out. */
export class PlatformApiUnavailableError extends GenesysApiError {
  /** Always {@linkcode GenesysErrorCode.API_UNAVAILABLE}. */
  declare readonly code: typeof GenesysErrorCode.API_UNAVAILABLE;
  /**
   * Creates the error.
   *
   * @param details What was attempted and what the API answered.
   * @param detail A short description of the last failure.
   * @param options The underlying cause.
   */
  constructor(
    details: GenesysApiErrorDetails,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(
      GenesysErrorCode.API_UNAVAILABLE,
      details,
      `the Platform API is unavailable (${detail}). ` +
        `Check the network and https://status.mypurecloud.com, then retry.`,
      options,
    );
  }
}

/**
 * The Platform API refused the request for another reason (an unexpected
 * 4xx) or answered with a body that is not what the API documents.
 */
export class PlatformApiRequestError extends GenesysApiError {
  /** Always {@linkcode GenesysErrorCode.API_REQUEST_FAILED}. */
  declare readonly code: typeof GenesysErrorCode.API_REQUEST_FAILED;
  /**
   * Creates the error.
   *
   * @param details What was attempted and what the API answered.
   * @param detail What is wrong (never quotes a body that may hold a secret).
   */
  constructor(details: GenesysApiErrorDetails, detail: string) {
    super(GenesysErrorCode.API_REQUEST_FAILED, details, detail);
  }
}
