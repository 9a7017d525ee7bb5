/**
 * Typed errors. Every error the library throws is a {@linkcode DualSecretAuthError}
 * with a stable `code`, an optional `cause`, and a message that says what to do
 * next. No message, property or cause ever holds a secret or a full token.
 *
 * @module
 */
/** The stable error codes, one per error class. */
export const ErrorCode: {
  readonly CONFIG_INVALID: "CONFIG_INVALID";
  readonly CREDENTIAL_REJECTED: "CREDENTIAL_REJECTED";
  readonly RATE_LIMITED: "RATE_LIMITED";
  readonly TOKEN_ENDPOINT_UNAVAILABLE: "TOKEN_ENDPOINT_UNAVAILABLE";
  readonly INVALID_TOKEN_RESPONSE: "INVALID_TOKEN_RESPONSE";
  readonly TOKEN_REQUEST_FAILED: "TOKEN_REQUEST_FAILED";
  readonly ALL_CREDENTIALS_REJECTED: "ALL_CREDENTIALS_REJECTED";
  readonly UNKNOWN_CREDENTIAL: "UNKNOWN_CREDENTIAL";
  readonly ROTATION_FAILED: "ROTATION_FAILED";
  readonly PERMISSION_DENIED: "PERMISSION_DENIED";
  readonly CLOSED: "CLOSED";
  readonly ABORTED: "ABORTED";
  readonly REDIRECT_REFUSED: "REDIRECT_REFUSED";
} = Object.freeze(
  {
    CONFIG_INVALID: "CONFIG_INVALID",
    CREDENTIAL_REJECTED: "CREDENTIAL_REJECTED",
    RATE_LIMITED: "RATE_LIMITED",
    TOKEN_ENDPOINT_UNAVAILABLE: "TOKEN_ENDPOINT_UNAVAILABLE",
    INVALID_TOKEN_RESPONSE: "INVALID_TOKEN_RESPONSE",
    TOKEN_REQUEST_FAILED: "TOKEN_REQUEST_FAILED",
    ALL_CREDENTIALS_REJECTED: "ALL_CREDENTIALS_REJECTED",
    UNKNOWN_CREDENTIAL: "UNKNOWN_CREDENTIAL",
    ROTATION_FAILED: "ROTATION_FAILED",
    PERMISSION_DENIED: "PERMISSION_DENIED",
    CLOSED: "CLOSED",
    ABORTED: "ABORTED",
    REDIRECT_REFUSED: "REDIRECT_REFUSED",
  } as const,
);

/** One of the values of {@linkcode ErrorCode}. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/**
 * The base class of every error this library throws. Switch on `code`.
 *
 * @example Handle a configuration mistake by its code
 * ```ts
 * import { createDualSecretAuth } from "../mod.ts";
 * import { DualSecretAuthError, ErrorCode } from "./errors.ts";
 * try {
 *   createDualSecretAuth({
 *     credentials: [{ label: "blue", clientId: "id", clientSecret: "" }],
 *   });
 * } catch (error) {
 *   if (!(error instanceof DualSecretAuthError)) throw error;
 *   if (error.code !== ErrorCode.CONFIG_INVALID) throw error;
 *   // error.message: "Invalid option credentials[0].clientSecret: …"
 * }
 * ```
 */
export class DualSecretAuthError extends Error {
  /**
   * A stable, machine-readable code; switch on this, not on the message.
   * Each module exports its own codes as constants (the core's are
   * {@linkcode ErrorCode}) and its classes narrow this to them.
   */
  readonly code: string;

  /**
   * Creates the error.
   *
   * @param code The stable error code.
   * @param message What went wrong and what to do next.
   * @param options The underlying `cause`, if any.
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The options are invalid; the message says which one and how to fix it. */
export class ConfigError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.CONFIG_INVALID}. */
  declare readonly code: typeof ErrorCode.CONFIG_INVALID;
  /** The option at fault, as a path such as `credentials[1].clientSecret`. */
  readonly option: string;

  /**
   * Creates the error.
   *
   * @param option The option at fault.
   * @param message What is wrong and how to fix it.
   */
  constructor(option: string, message: string) {
    super(ErrorCode.CONFIG_INVALID, `Invalid option ${option}: ${message}`);
    this.option = option;
  }
}

/** What the token endpoint said when it refused a request. */
export interface OAuthErrorDetails {
  /** HTTP status of the response. */
  readonly status: number;
  /** The OAuth `error` code, such as `invalid_client`, when the body had one. */
  readonly oauthError?: string;
  /** The `error_description`, when the body had one (never holds a secret). */
  readonly description?: string;
}

/**
 * The token endpoint rejected a credential (`invalid_client`,
 * `unauthorized_client` or `invalid_grant`). Only this error causes failover.
 */
export class CredentialRejectedError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.CREDENTIAL_REJECTED}. */
  declare readonly code: typeof ErrorCode.CREDENTIAL_REJECTED;
  /** The label of the rejected credential. */
  readonly label: string;
  /** HTTP status of the rejection. */
  readonly status: number;
  /** The OAuth error code. */
  readonly oauthError: string;

  /**
   * Creates the error.
   *
   * @param label The credential's label.
   * @param details What the token endpoint answered.
   */
  constructor(label: string, details: OAuthErrorDetails) {
    const oauthError = details.oauthError ?? "invalid_client";
    super(
      ErrorCode.CREDENTIAL_REJECTED,
      `The token endpoint rejected credential "${label}" (HTTP ${details.status}, ${oauthError}). ` +
        `Check its client id and secret, or replace it with setCredentials().`,
    );
    this.label = label;
    this.status = details.status;
    this.oauthError = oauthError;
  }
}

/** The token endpoint answered 429 and retries ran out. */
export class RateLimitedError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.RATE_LIMITED}. */
  declare readonly code: typeof ErrorCode.RATE_LIMITED;
  /** How long the server asked to wait, in ms, when it said. */
  readonly retryAfterMs?: number;

  /**
   * Creates the error.
   *
   * @param retryAfterMs The wait the server asked for, if any.
   * @param options The underlying cause.
   */
  constructor(retryAfterMs: number | undefined, options?: ErrorOptions) {
    super(
      ErrorCode.RATE_LIMITED,
      `The token endpoint is rate limiting requests (HTTP 429)` +
        (retryAfterMs === undefined
          ? ". "
          : `; it asked to wait ${Math.ceil(retryAfterMs / 1000)} s. `) +
        `Retry later or raise retry.maxElapsedMs; the credential was not failed over.`,
      options,
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The token endpoint could not be reached or answered 5xx, or the request timed
 * out, and retries ran out. Transient: no failover happened.
 */
export class TokenEndpointUnavailableError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE}. */
  declare readonly code: typeof ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE;
  /** HTTP status, when the endpoint answered at all. */
  readonly status?: number;

  /**
   * Creates the error.
   *
   * @param detail A short description of the last failure.
   * @param status The HTTP status, if there was a response.
   * @param options The underlying cause.
   */
  constructor(detail: string, status?: number, options?: ErrorOptions) {
    super(
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
      `The token endpoint is unavailable (${detail}). ` +
        `Check the network and the endpoint's status; the library retries on the next call.`,
      options,
    );
    this.status = status;
  }
}

/** The token endpoint answered 2xx with a body that is not a valid token response. */
export class InvalidTokenResponseError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.INVALID_TOKEN_RESPONSE}. */
  declare readonly code: typeof ErrorCode.INVALID_TOKEN_RESPONSE;
  /** HTTP status of the response. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param detail What is wrong with the body.
   * @param status The HTTP status.
   * @param options The underlying cause.
   */
  constructor(detail: string, status: number, options?: ErrorOptions) {
    super(
      ErrorCode.INVALID_TOKEN_RESPONSE,
      `The token endpoint sent an invalid token response (HTTP ${status}: ${detail}). ` +
        `Check that tokenUrl points at an OAuth 2.0 token endpoint and not at a proxy or web page.`,
      options,
    );
    this.status = status;
  }
}

/**
 * The token endpoint refused the request for a reason that is not the
 * credential's (for example `invalid_scope`, `invalid_request`, a 403 or 404).
 * Not retried and no failover: the same request would fail with any credential.
 */
export class TokenRequestError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.TOKEN_REQUEST_FAILED}. */
  declare readonly code: typeof ErrorCode.TOKEN_REQUEST_FAILED;
  /** HTTP status of the response. */
  readonly status: number;
  /** The OAuth error code, when the body had one. */
  readonly oauthError?: string;

  /**
   * Creates the error.
   *
   * @param label The credential the request was made with.
   * @param details What the token endpoint answered.
   */
  constructor(label: string, details: OAuthErrorDetails) {
    super(
      ErrorCode.TOKEN_REQUEST_FAILED,
      `The token endpoint refused the request for "${label}" (HTTP ${details.status}` +
        (details.oauthError ? `, ${details.oauthError}` : "") +
        (details.description ? `: ${details.description}` : "") +
        `). Check tokenUrl and scope.`,
    );
    this.status = details.status;
    this.oauthError = details.oauthError;
  }
}

/** One entry of {@linkcode AllCredentialsRejectedError.credentials}. */
export interface RejectedCredentialSummary {
  /** The credential's label. */
  readonly label: string;
  /** Its state when the error was thrown. */
  readonly state: string;
  /** The OAuth error code of its rejection, if it was rejected. */
  readonly oauthError?: string;
  /** The HTTP status of its rejection, if it was rejected. */
  readonly status?: number;
}

/**
 * Every configured credential has been rejected by the token endpoint. The
 * library probes them again with backoff, so this lasts no longer than the
 * fault: `nextProbeAt` says when the next probe may run.
 */
export class AllCredentialsRejectedError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.ALL_CREDENTIALS_REJECTED}. */
  declare readonly code: typeof ErrorCode.ALL_CREDENTIALS_REJECTED;
  /** Each credential with its state and rejection. */
  readonly credentials: readonly RejectedCredentialSummary[];
  /** When a call may next probe a rejected credential (ms since the epoch), if known. */
  readonly nextProbeAt?: number;

  /**
   * Creates the error.
   *
   * @param credentials Each credential's summary.
   * @param options The last rejection, as cause.
   * @param probe When the next probe may run, and the time now.
   */
  constructor(
    credentials: readonly RejectedCredentialSummary[],
    options?: ErrorOptions,
    probe?: { readonly at: number; readonly now: number },
  ) {
    const list = credentials.map((c) =>
      `${c.label}: ${c.state}` +
      (c.oauthError ? ` (${c.oauthError}, HTTP ${c.status})` : "")
    ).join("; ");
    super(
      ErrorCode.ALL_CREDENTIALS_REJECTED,
      `All credentials were rejected [${list}]. ` +
        (probe
          ? `The next call after ${new Date(probe.at).toISOString()} (in ${
            Math.max(0, Math.ceil((probe.at - probe.now) / 1000))
          } s) probes them again. `
          : "") +
        `Provide a working secret with setCredentials() or re-verify one with rotate().`,
      options,
    );
    this.credentials = credentials;
    this.nextProbeAt = probe?.at;
  }
}

/**
 * `rotate()` did not switch; the active credential stays. `code` says why:
 * {@linkcode ErrorCode.ROTATION_FAILED} when the target's token request
 * failed (`cause` says how), {@linkcode ErrorCode.UNKNOWN_CREDENTIAL} when
 * the target is not configured (or was replaced meanwhile).
 */
export class RotationFailedError extends DualSecretAuthError {
  /** {@linkcode ErrorCode.ROTATION_FAILED} or {@linkcode ErrorCode.UNKNOWN_CREDENTIAL}. */
  declare readonly code:
    | typeof ErrorCode.ROTATION_FAILED
    | typeof ErrorCode.UNKNOWN_CREDENTIAL;
  /** The credential that stays active. */
  readonly active: string;
  /** The credential that was asked for. */
  readonly target: string;

  /**
   * Creates the error.
   *
   * @param active The label that stays active.
   * @param target The label asked for.
   * @param options The verification failure, as cause; or `known`, the
   *   configured labels, when the target is not one of them.
   */
  constructor(
    active: string,
    target: string,
    options?: ErrorOptions & { readonly known?: readonly string[] },
  ) {
    const known = options?.known;
    const reason = options?.cause instanceof Error
      ? options.cause.message
      : "verification failed";
    super(
      known ? ErrorCode.UNKNOWN_CREDENTIAL : ErrorCode.ROTATION_FAILED,
      known
        ? `No credential is labelled "${target}" (configured: ${
          known.join(", ")
        }); "${active}" stays active.`
        : `Rotation to "${target}" failed; "${active}" stays active. ${reason}`,
      options,
    );
    this.active = active;
    this.target = target;
  }
}

/**
 * The runtime refused network access to the token endpoint (in Deno, a
 * missing `--allow-net`). Not retried: no retry can succeed.
 */
export class PermissionDeniedError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.PERMISSION_DENIED}. */
  declare readonly code: typeof ErrorCode.PERMISSION_DENIED;
  /**
   * Creates the error.
   *
   * @param detail The runtime's own words, such as `Requires net access to "host:443"`.
   * @param options The runtime's error, as cause.
   */
  constructor(detail: string, options?: ErrorOptions) {
    super(
      ErrorCode.PERMISSION_DENIED,
      `The runtime denied access to the token endpoint: ${detail}. ` +
        `Grant that permission (for Deno: --allow-net=<host>, or the permission set of the task).`,
      options,
    );
  }
}

/**
 * The call was stopped on purpose: the caller's `AbortSignal` aborted it
 * ({@linkcode ErrorCode.ABORTED}, `cause`: the signal's reason), or the
 * instance was closed ({@linkcode ErrorCode.CLOSED}: create a new one).
 */
export class AbortedError extends DualSecretAuthError {
  /** {@linkcode ErrorCode.ABORTED} or {@linkcode ErrorCode.CLOSED}. */
  declare readonly code: typeof ErrorCode.ABORTED | typeof ErrorCode.CLOSED;
  /**
   * Creates the error.
   *
   * @param options The abort reason, as cause; `closed` when `close()` stopped it.
   */
  constructor(options?: ErrorOptions & { readonly closed?: boolean }) {
    super(
      options?.closed ? ErrorCode.CLOSED : ErrorCode.ABORTED,
      options?.closed
        ? "This auth instance is closed. Create a new one with createDualSecretAuth()."
        : "The operation was aborted by its signal.",
      options,
    );
  }
}

/**
 * The server answered with a redirect. Credentials and tokens never follow
 * one, so the request is refused at once (not retried, no failover).
 */
export class RedirectRefusedError extends DualSecretAuthError {
  /** Always {@linkcode ErrorCode.REDIRECT_REFUSED}. */
  declare readonly code: typeof ErrorCode.REDIRECT_REFUSED;
  /** The host the server redirected to, when it said. */
  readonly targetHost?: string;

  /**
   * Creates the error.
   *
   * @param from The host that answered with the redirect.
   * @param targetHost The host it redirected to (already redacted), if known.
   */
  constructor(from: string, targetHost: string | undefined) {
    super(
      ErrorCode.REDIRECT_REFUSED,
      `${from} answered with a redirect${
        targetHost ? ` to ${targetHost}` : ""
      }; credentials and tokens never follow a redirect. ` +
        `Configure the final URL instead (tokenUrl, environment or apiUrl).`,
    );
    this.targetHost = targetHost;
  }
}
