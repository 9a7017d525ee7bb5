/**
 * Adversarial runs of the core against a hostile token endpoint: echoes of
 * the credential in encodings the canary suite does not send yet.
 */
import assert from "node:assert/strict";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import type { AuthEvent } from "../src/events.ts";
import { formEncode } from "../src/redact.ts";

const TOKEN_URL = "https://login.example.test/oauth/token";
const CLIENT_ID = "svc-id";
// '?' and '>' make '/' and '+' appear in base64, so base64url differs.
const SECRET = "s3cr3t??>>~Zk";

function toBase64Url(base64: string): string {
  return base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// As sent (RFC 6749 §2.3.1), and as RFC 3986 alone encodes it (keeps "~").
const sent = btoa(`${CLIENT_ID}:${formEncode(SECRET)}`);
const basic = btoa(`${CLIENT_ID}:${encodeURIComponent(SECRET)}`);
const raw = btoa(`${CLIENT_ID}:${SECRET}`);
const ECHOES: Record<string, string> = {
  "the Basic value sent, without its = padding": sent.replace(/=+$/, ""),
  "the Basic value sent, in base64url": toBase64Url(sent),
  "an RFC 3986-encoded Basic value": basic,
  "an RFC 3986-encoded Basic value without padding": basic.replace(/=+$/, ""),
  "the raw pair's base64 without padding": raw.replace(/=+$/, ""),
  "an RFC 3986-encoded Basic value in base64url": toBase64Url(basic),
  "the raw pair in base64url": toBase64Url(raw),
  "the secret alone in base64": btoa(SECRET),
  "the secret alone in base64url": toBase64Url(btoa(SECRET)),
};

Deno.test("an echoed credential in base64 variants never leaves the instance", async (t) => {
  for (const [name, echo] of Object.entries(ECHOES)) {
    await t.step(name, async () => {
      assert.notEqual(echo, "");
      const events: AuthEvent[] = [];
      await using auth = createDualSecretAuth({
        credentials: [{
          label: "blue",
          clientId: CLIENT_ID,
          clientSecret: SECRET,
        }],
        tokenUrl: TOKEN_URL,
        onEvent: (event) => events.push(event),
        fetch: () =>
          Promise.resolve(Response.json({
            error: "invalid_request",
            error_description: `bad client ${echo}`,
          }, { status: 400 })),
      });
      const error = await auth.getAccessToken().then(
        () => assert.fail("a token"),
        (error: Error) => error,
      );
      const seen = [
        error.message,
        String((error.cause as Error | undefined)?.message),
        JSON.stringify(events),
        JSON.stringify(auth.status()),
      ].join("\n");
      assert.match(seen, /bad client/, "the description is quoted");
      assert.ok(!seen.includes(echo), `echoed ${name} leaked:\n${seen}`);
    });
  }
});
