/**
 * The one rule for the URLs the library sends credentials or tokens to:
 * `https:`, or `http:` on a loopback host, and no user info.
 *
 * @module
 */
import { ConfigError } from "./errors.ts";

/**
 * Whether a URL host name is a loopback address.
 *
 * @param hostname A host name as `URL.hostname` gives it.
 * @returns True for localhost, 127.0.0.0/8 and [::1].
 *
 * @example
 * ```ts
 * import { isLoopback } from "./allowed_url.ts";
 * if (!isLoopback("127.0.0.1") || isLoopback("127.0.0.1.nip.io")) throw new Error();
 * ```
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * Parses and checks a URL the library will send a secret or a token to.
 *
 * @param option The option's name, for the error.
 * @param value The URL as given.
 * @returns The parsed URL.
 * @throws {ConfigError} When it is not a URL, not https (or http on loopback),
 *   or holds user info.
 *
 * @example
 * ```ts
 * import { resolveAllowedUrl } from "./allowed_url.ts";
 * const url = resolveAllowedUrl("tokenUrl", "http://127.0.0.1:8080/oauth/token");
 * if (url.port !== "8080") throw new Error();
 * ```
 */
export function resolveAllowedUrl(option: string, value: unknown): URL {
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(option, "must be a non-empty URL string");
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(option, "is not a valid absolute URL");
  }
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    throw new ConfigError(
      option,
      `http:// is allowed only on loopback (127.0.0.1, localhost, [::1]); use https://${url.host}${url.pathname}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(
      option,
      "must be an https:// URL (http:// only on loopback)",
    );
  }
  if (url.username || url.password) {
    throw new ConfigError(
      option,
      "must not contain user info; credentials go in their own options",
    );
  }
  return url;
}
