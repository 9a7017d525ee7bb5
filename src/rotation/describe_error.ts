/**
 * The one operator-message describer of the rotation tooling: a failure in
 * an operator's words (variables to check, commands to run, never library
 * calls such as `setCredentials()`), never a secret and never text a server
 * chose. {@linkcode explainError} gives the code and the words; the
 * sentence form ({@linkcode describeError}), the rotation errors'
 * `describe` and `safeMessage`, and the tasks' `explain` are built on it.
 *
 * @module
 */
import {
  AbortedError,
  AllCredentialsRejectedError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../errors.ts";
import { clientSecretEnvVar } from "./env_config.ts";

/** A failure in an operator's words. */
export interface OperatorExplanation {
  /** The stable code: the error's own, or `UNEXPECTED`. */
  readonly code: string;
  /** What happened and what to check, lower case, without a final full stop. */
  readonly message: string;
}

/**
 * How a connection failed, in an operator's words, found along the cause
 * chain.
 *
 * @param error What was thrown.
 * @returns DNS, refused, TLS or timeout words; `undefined` when none fits.
 */
export function networkProblem(error: unknown): string | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; depth++) {
    const text = `${at.name} ${at.message}`;
    if (
      /dns error|failed to lookup|name or service not known|no such host/i.test(
        text,
      )
    ) {
      return "DNS: the host name does not resolve";
    }
    if (/connection refused|ECONNREFUSED/i.test(text)) {
      return "connection refused: nothing listens at that address and port";
    }
    if (/certificate|tls|ssl|handshake/i.test(text)) {
      return "TLS: the server's certificate was not accepted";
    }
    if (/TimeoutError|timed out|timeout/i.test(text)) {
      return "timeout: no answer in time";
    }
    at = at.cause;
  }
  return undefined;
}

/** The env file's names an explanation uses (another provider's `AUTH_*`). */
export interface OperatorNames {
  /**
   * The variable of a label's secret (`"admin"`: the admin client's).
   *
   * @default the `GENESYS_*` names
   */
  readonly secretVariable?: (label: string) => string;
  /**
   * The variables that set the token endpoint.
   *
   * @default "GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL"
   */
  readonly endpointVariables?: string;
}

function variableOf(label: string, names: OperatorNames): string {
  if (names.secretVariable !== undefined) return names.secretVariable(label);
  return label === "admin"
    ? "GENESYS_ADMIN_CLIENT_SECRET"
    : clientSecretEnvVar(label);
}

/** Codes whose messages may quote the server, which may echo what was sent. */
const SERVER_WORDS: ReadonlySet<string> = new Set([
  "TOKEN_REQUEST_FAILED",
  "INVALID_TOKEN_RESPONSE",
]);

/**
 * Explains a failure to an operator: the token errors of the core by the
 * variables to check (their own messages speak to a developer), network
 * failures by what failed, the library's other errors and Deno's I/O errors
 * (which name paths, not contents) by their message; anything else (a
 * sink's own error might quote what it was given) only by its name.
 *
 * @param error What was thrown (a cause, usually).
 * @param names The env file's variable names, when not Genesys Cloud's.
 * @returns The code and the words.
 *
 * @example
 * ```ts
 * import { explainError } from "@rotating/dual-secret-auth/rotation";
 * import { RateLimitedError } from "@rotating/dual-secret-auth";
 *
 * const { message } = explainError(new RateLimitedError(1_000));
 * if (!message.includes("wait a minute")) throw new Error(message);
 * ```
 */
export function explainError(
  error: unknown,
  names: OperatorNames = {},
): OperatorExplanation {
  const endpoint = names.endpointVariables ??
    "GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL";
  if (error instanceof AbortedError) {
    return { code: error.code, message: "interrupted (Ctrl-C or SIGTERM)" };
  }
  if (error instanceof CredentialRejectedError) {
    // The OAuth error code comes from the server: shown only when it looks
    // like one (RFC 6749 codes are short snake_case words).
    const oauth = /^[a-z_]{1,40}$/.test(error.oauthError)
      ? error.oauthError
      : "an unrecognised error code";
    return {
      code: error.code,
      message:
        `the token endpoint rejected the credential "${error.label}" (${oauth}, HTTP ${error.status}); ` +
        `check ${
          variableOf(error.label, names)
        } and the client id beside it, and that the region is right`,
    };
  }
  if (error instanceof TokenEndpointUnavailableError) {
    const problem = networkProblem(error) ??
      (error.status ? `HTTP ${error.status}` : "no usable answer");
    return {
      code: error.code,
      message:
        `the token endpoint could not be reached (${problem}); check ${endpoint} and the network, then run the command again`,
    };
  }
  if (error instanceof AllCredentialsRejectedError) {
    return {
      code: error.code,
      message: `every credential was rejected by the token endpoint; check ${
        error.credentials.map((c) => variableOf(c.label, names)).join(" and ")
      } (and the client ids beside them), and that the region is right`,
    };
  }
  if (error instanceof RateLimitedError) {
    return {
      code: error.code,
      message:
        "the token endpoint is rate limiting requests (HTTP 429); wait a minute, then run the command again",
    };
  }
  if (error instanceof DualSecretAuthError && SERVER_WORDS.has(error.code)) {
    const status = (error as { status?: number }).status;
    return {
      code: error.code,
      message: `the token endpoint answered with an error (${error.code}${
        status ? `, HTTP ${status}` : ""
      }); check ${endpoint}, then run the command again`,
    };
  }
  if (error instanceof DualSecretAuthError) {
    const network = error.code === "GENESYS_API_UNAVAILABLE"
      ? networkProblem(error)
      : undefined;
    return {
      code: error.code,
      message: network
        ? `the Platform API could not be reached (${network}); check GENESYS_ENVIRONMENT or GENESYS_API_URL and the network, then run the command again`
        : error.message,
    };
  }
  const fromDeno = typeof Deno !== "undefined" &&
    Object.values(Deno.errors).some((type) => error instanceof type);
  if (fromDeno) {
    return {
      code: "UNEXPECTED",
      message: `${(error as Error).name}: ${(error as Error).message}`,
    };
  }
  return {
    code: "UNEXPECTED",
    message: error instanceof Error ? `${error.name} (see cause)` : "error",
  };
}

/**
 * A failure in one sentence for the flows' reports: {@linkcode explainError}'s
 * words, capitalised, ending with a full stop.
 *
 * @param error What was thrown.
 * @returns A sentence ending with a full stop.
 */
export function describeError(error: unknown): string {
  const { message } = explainError(error);
  // Only the describer's own words start lower case; an error's own
  // message (which may begin with an instance id) is kept as it is.
  const own = message !== (error as Error | undefined)?.message;
  const sentence = own
    ? message.charAt(0).toUpperCase() + message.slice(1)
    : message;
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}
