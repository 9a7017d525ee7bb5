/**
 * A failure's message, for the reports of the rotation tooling, when it is
 * known to hold no secret.
 *
 * @module
 */
import { DualSecretAuthError } from "../errors.ts";

/**
 * Describes a cause in one sentence: the library's own errors and Deno's I/O
 * errors (which name paths, not contents) by their message; anything else
 * (a sink's own error might quote what it was given) only by its name.
 *
 * @param error What was thrown.
 * @returns A sentence ending with a full stop.
 */
export function describeError(error: unknown): string {
  if (error instanceof DualSecretAuthError) return error.message;
  const fromDeno = typeof Deno !== "undefined" &&
    Object.values(Deno.errors).some((type) => error instanceof type);
  if (fromDeno) return `${(error as Error).name}: ${(error as Error).message}.`;
  return error instanceof Error
    ? `${error.name} (see cause).`
    : "unknown error.";
}
