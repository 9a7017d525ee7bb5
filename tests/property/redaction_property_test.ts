/**
 * Properties of redaction at the source: whatever a server wraps around a
 * secret or a token, in whatever form it echoes it, the quote that reaches an
 * error, event or status holds none of the forms, is capped, and has no
 * control characters.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  createRedactor,
  credentialForms,
  MAX_QUOTED_LENGTH,
  quoteServerText,
} from "../../src/redact.ts";
import { CaseCounter, propertyParameters } from "./fc_parameters.ts";

/** Form encoding as RFC 6749 Appendix B asks, written out independently. */
function formEncoded(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Every form a server might echo, computed here without the library. */
function echoForms(clientId: string, secret: string): string[] {
  const utf8 = String.fromCharCode(
    ...new TextEncoder().encode(`${clientId}:${secret}`),
  );
  return [
    secret,
    encodeURIComponent(secret),
    formEncoded(secret),
    `Basic ${btoa(`${formEncoded(clientId)}:${formEncoded(secret)}`)}`,
    btoa(utf8),
  ];
}

/** Realistic secrets: 8 to 64 well-formed characters, no brackets (which "[redacted]" uses). */
const secretText = fc.string({ unit: "grapheme", minLength: 8, maxLength: 64 })
  .filter((s) =>
    !/[[\]]/.test(s) && s.trim() === s && !"redacted".includes(s.toLowerCase())
  );
const clientIdText = fc.string({
  unit: "grapheme",
  minLength: 1,
  maxLength: 32,
});
const filler = fc.string({ unit: "binary", maxLength: 80 });

Deno.test("redaction properties", async (t) => {
  await t.step("no form of the secret or a held token survives a quote", () => {
    const cases = new CaseCounter();
    fc.assert(
      fc.property(
        clientIdText,
        secretText,
        fc.string({
          unit: fc.constantFrom(..."ABCDEFabcdef0123456789-._~+/"),
          minLength: 16,
          maxLength: 40,
        }),
        fc.array(fc.tuple(filler, fc.nat()), { minLength: 1, maxLength: 6 }),
        (clientId, secret, token, pieces) => {
          cases.tick();
          const forms = [...echoForms(clientId, secret), token];
          const text = pieces.map(([fill, pick]) =>
            fill + forms[pick % forms.length]
          ).join("");
          const redact = createRedactor(() => [
            ...credentialForms(clientId, secret),
            token,
          ]);
          const quote = quoteServerText(text, redact, 10_000) ?? "";
          for (const form of forms) {
            assert.ok(
              !quote.toLowerCase().includes(form.toLowerCase()),
              `${JSON.stringify(form)} survived in ${JSON.stringify(quote)}`,
            );
          }
          // deno-lint-ignore no-control-regex
          assert.ok(!/[\x00-\x1f\x7f]/.test(quote), "control characters");
        },
      ),
      propertyParameters(2_000),
    );
    assert.ok(cases.count >= 2_000);
  });

  await t.step("quotes are capped and only strings are quoted", () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const quote = quoteServerText(value, (text) => text);
        if (typeof value !== "string" || value === "") {
          assert.equal(quote, undefined);
        } else {
          assert.ok(quote !== undefined);
          assert.ok(
            quote.length <= MAX_QUOTED_LENGTH + 1,
            String(quote.length),
          );
        }
      }),
      propertyParameters(1_000),
    );
  });
});
