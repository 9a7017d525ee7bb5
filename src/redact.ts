/**
 * Redaction at the source: every text a server sends that may be quoted in an
 * error, event, status or log goes through a {@linkcode Redactor} that knows
 * every secret and token of its owner, in every encoding a server may echo.
 *
 * @module
 */

/** Replaces every known secret and token in a text; see {@linkcode createRedactor}. */
export type Redactor = (text: string) => string;

/** What stands in for a redacted value. */
export const REDACTED = "[redacted]";

/** The longest server text quoted in a message; longer ones are cut. */
export const MAX_QUOTED_LENGTH = 200;

/** Why a text with a lone surrogate is refused, at construction and per request. */
export const UNENCODABLE =
  "holds a character that cannot be encoded (a lone UTF-16 surrogate); copy the value again from its source";

/**
 * `application/x-www-form-urlencoded` encoding, as RFC 6749 Appendix B asks
 * for client authentication.
 *
 * @param value The text.
 * @returns Its encoding.
 * @throws {URIError} When the text holds a lone surrogate.
 */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, "+").replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Every form in which a server may echo a credential: the raw secret, its
 * form and URL encodings, and the `Basic` value of the pair (encoded as RFC
 * 6749 asks, and raw, as some clients send it).
 *
 * @param clientId The client id.
 * @param secret The client secret.
 * @returns The texts to redact (the client id alone is not secret).
 *
 * @example
 * ```ts
 * import { credentialForms } from "./redact.ts";
 * const forms = credentialForms("id", "s3cr3t/+");
 * if (!forms.includes(btoa("id:s3cr3t%2F%2B"))) throw new Error();
 * ```
 */
export function credentialForms(clientId: string, secret: string): string[] {
  // Form encoding (space as +), and strict RFC 3986 percent-encoding
  // (space as %20, !'()* encoded), which other clients send.
  const strict = (text: string) => formEncode(text).replace(/\+/g, "%20");
  const forms = [
    secret,
    formEncode(secret),
    strict(secret),
    encodeURIComponent(secret),
    btoa(`${formEncode(clientId)}:${formEncode(secret)}`),
    btoa(`${strict(clientId)}:${strict(secret)}`),
    // The raw pair, as clients that skip the form encoding send it: as UTF-8
    // bytes, and as Latin-1 where it fits.
    btoa(
      String.fromCharCode(
        ...new TextEncoder().encode(`${clientId}:${secret}`),
      ),
    ),
  ];
  if (/^[^\u0100-\uffff]*$/.test(`${clientId}:${secret}`)) {
    forms.push(btoa(`${clientId}:${secret}`));
  }
  return forms;
}

/**
 * Creates a redactor over a changing set of secrets and tokens, read anew at
 * each call (it runs only on error paths).
 *
 * @param needles Gives the texts to redact.
 * @returns The redactor.
 *
 * @example
 * ```ts
 * import { createRedactor } from "./redact.ts";
 * const redact = createRedactor(() => ["s3cr3t"]);
 * if (redact("bad secret s3cr3t") !== "bad secret [redacted]") throw new Error();
 * ```
 */
export function createRedactor(needles: () => Iterable<string>): Redactor {
  return (text) => redactAll(text, needles());
}

/**
 * Replaces every one of `needles` in `text` (case-insensitively, longest
 * first) with {@linkcode REDACTED}; what a {@linkcode Redactor} does.
 *
 * @param text The text to scrub.
 * @param needles The values to take out; empty ones are ignored.
 * @returns The text without them.
 */
export function redactAll(text: string, needles: Iterable<string>): string {
  const list = [...needles].filter((n) => n.length > 0)
    // Longest first, so a secret inside its own encoding goes whole.
    .sort((a, b) => b.length - a.length);
  if (list.length === 0) return text;
  const pattern = new RegExp(
    list.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|"),
    // Percent-encodings may come back in either hex case.
    "gi",
  );
  return text.replace(pattern, REDACTED);
}

/**
 * Quotes a server-provided value in a message: only strings, redacted, cut to
 * `max` characters, control characters removed.
 *
 * @param value The value from a server's body or header.
 * @param redact The redactor of the request's owner.
 * @param max The longest quote.
 * @returns The quote, or `undefined` when the value is not a non-empty string.
 *
 * @example
 * ```ts
 * import { createRedactor, quoteServerText } from "./redact.ts";
 * const quote = quoteServerText("no\nsuch s3cr3t", createRedactor(() => ["s3cr3t"]));
 * if (quote !== "no such [redacted]") throw new Error(quote);
 * ```
 */
export function quoteServerText(
  value: unknown,
  redact: Redactor,
  max: number = MAX_QUOTED_LENGTH,
): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  // Redact before cutting, so a cut never leaves half a secret behind, and
  // again once control characters are gone, as removing one may join a
  // secret's halves.
  // deno-lint-ignore no-control-regex
  const clean = redact(redact(value).replace(/[\x00-\x1f\x7f]+/g, " "));
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
