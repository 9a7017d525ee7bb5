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
 * form and URL encodings, the `Basic` value of the pair (encoded as RFC
 * 6749 asks, and raw, as some clients send it) and the secret's own base64,
 * each base64 form also without padding and in base64url.
 * Internal: `tests/property/redaction_property_test.ts` tests it; the example
 * on {@linkcode quoteServerText} shows what users see.
 *
 * @param clientId The client id.
 * @param secret The client secret.
 * @returns The texts to redact (the client id alone is not secret).
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
    // RFC 3986's own rule, which leaves "~" (and "!'()*") as they are.
    btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`),
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
  // The secret alone in base64 (as UTF-8), and every base64 form as servers
  // also echo it: without its "=" padding, and in base64url (RFC 4648 §5).
  forms.push(
    btoa(String.fromCharCode(...new TextEncoder().encode(secret))),
  );
  for (const base64 of forms.slice(4)) { // every base64 form above
    const unpadded = base64.replace(/=+$/, "");
    forms.push(unpadded, unpadded.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return forms;
}

/**
 * Creates a redactor over a changing set of secrets and tokens, read anew at
 * each call (it runs only on error paths).
 * Internal: `tests/property/redaction_property_test.ts` tests it; the example
 * on {@linkcode quoteServerText} shows what users see.
 *
 * @param needles Gives the texts to redact.
 * @returns The redactor.
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
 * @example The server's words are quoted, the secret is not
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "blue-id", secret: "blue-secret" }],
 * });
 * emulator.injectTokenFaults({
 *   kind: "status",
 *   status: 400,
 *   contentType: "application/json",
 *   body: JSON.stringify({ error: "invalid_request", error_description: "bad blue-secret" }),
 * });
 * await using auth = createDualSecretAuth({
 *   credentials: [{ label: "blue", clientId: "blue-id", clientSecret: "blue-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 * });
 * const error = await auth.getAccessToken().catch((e: unknown) => e);
 * if (!(error instanceof Error) || !error.message.includes("bad [redacted]")) {
 *   throw new Error(String(error));
 * }
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
