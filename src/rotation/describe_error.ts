/**
 * A failure's message, for the reports of the rotation tooling, when it is
 * known to hold no secret: in an operator's words (variables to check,
 * never library calls such as `setCredentials()`).
 *
 * @module
 */
import {
  AllCredentialsRejectedError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../errors.ts";
import { clientIdEnvVar, clientSecretEnvVar } from "./env_config.ts";

/**
 * Describes a cause in one sentence: the token errors of the core by the
 * variables to check (their own messages speak to a developer: "replace it
 * with setCredentials()", "the library retries on the next call", wrong
 * words in a one-shot command), the library's other errors and Deno's I/O
 * errors (which name paths, not contents) by their message; anything else
 * (a sink's own error might quote what it was given) only by its name.
 *
 * @param error What was thrown.
 * @returns A sentence ending with a full stop.
 */
export function describeError(error: unknown): string {
  const words = operatorWords(error);
  if (words !== undefined) return words;
  if (error instanceof DualSecretAuthError) return error.message;
  const fromDeno = typeof Deno !== "undefined" &&
    Object.values(Deno.errors).some((type) => error instanceof type);
  if (fromDeno) return `${(error as Error).name}: ${(error as Error).message}.`;
  return error instanceof Error
    ? `${error.name} (see cause).`
    : "unknown error.";
}

function variablesOf(label: string): string {
  return label === "admin"
    ? "GENESYS_ADMIN_CLIENT_ID and GENESYS_ADMIN_CLIENT_SECRET"
    : `${clientIdEnvVar(label)} and ${clientSecretEnvVar(label)}`;
}

function operatorWords(error: unknown): string | undefined {
  if (error instanceof CredentialRejectedError) {
    // Server-chosen: shown only when it looks like an RFC 6749 code.
    const oauth = /^[a-z_]{1,40}$/.test(error.oauthError)
      ? `${error.oauthError}, `
      : "";
    return `The token endpoint rejected the credential "${error.label}" (${oauth}HTTP ${error.status}): ` +
      `check ${variablesOf(error.label)}, and that the region is right.`;
  }
  if (error instanceof AllCredentialsRejectedError) {
    return `The token endpoint rejected every credential tried: check ${
      error.credentials.map((c) => variablesOf(c.label)).join("; ")
    }, and that the region is right.`;
  }
  if (error instanceof TokenEndpointUnavailableError) {
    return `The token endpoint could not be reached (${
      error.status ? `HTTP ${error.status}` : "no answer"
    }): check GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL and the network.`;
  }
  if (error instanceof RateLimitedError) {
    return "The token endpoint is rate limiting requests (HTTP 429): wait a minute.";
  }
  return undefined;
}
