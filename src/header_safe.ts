/**
 * A credential checked before it goes into an HTTP header.
 *
 * @module
 */
import { ConfigError } from "./errors.ts";

/**
 * Checks a credential before it goes into a header: fetch refuses a line
 * break or a non-Latin-1 character there with a `TypeError` that quotes the
 * whole header value, so such a credential would reach error causes.
 *
 * @param option The option that gave it, for the error.
 * @param value The credential.
 * @returns The credential.
 * @throws {import("../errors.ts").ConfigError} When it holds anything but printable ASCII, space and tab (never quoted).
 */
export function headerSafe(option: string, value: string): string {
  if (/[^\t\x20-\x7e]/.test(value)) {
    throw new ConfigError(
      option,
      "gave a credential holding a line break, control or non-ASCII character, " +
        "which cannot be sent in a header; check how it is read (a file or " +
        "variable with stray characters)",
    );
  }
  return value;
}
