/**
 * Properties of `parseTokenResponse`: whatever the token endpoint sends, the
 * parser either returns a grant that keeps its promises or throws
 * `InvalidTokenResponseError`, never anything else.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidTokenResponseError } from "../../src/errors.ts";
import {
  MAX_TOKEN_LIFETIME_MS,
  parseTokenResponse,
  type TokenGrant,
} from "../../src/token_endpoint.ts";
import { CaseCounter, propertyParameters } from "./fc_parameters.ts";

/** Any 2xx status, since the parser is only called for those. */
const successStatus = fc.integer({ min: 200, max: 299 });

/** "bearer" in any mix of upper and lower case. */
const bearerInAnyCase = fc.array(fc.boolean(), {
  minLength: 6,
  maxLength: 6,
}).map((upper) =>
  [..."bearer"].map((c, i) => upper[i] ? c.toUpperCase() : c).join("")
);

/** Any positive `expires_in` JSON can carry: whole, fractional, tiny, huge. */
const positiveExpiresIn = fc.oneof(
  fc.integer({ min: 1, max: 2 ** 31 }),
  fc.double({ min: Number.MIN_VALUE, max: Number.MAX_VALUE, noNaN: true }),
);

/** RFC 6750 b64token characters. */
const B64TOKEN_CHARS =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";

/** An RFC 6750 b64token: its characters, then optional `=` padding. */
const b64token = fc.tuple(
  fc.string({
    unit: fc.constantFrom(...B64TOKEN_CHARS),
    minLength: 1,
    maxLength: 80,
  }),
  fc.nat({ max: 3 }),
).map(([body, pad]) => body + "=".repeat(pad));

/** A valid token response body as an object, with optional extra fields. */
const validBody = fc.record({
  access_token: b64token,
  token_type: bearerInAnyCase,
  expires_in: positiveExpiresIn,
  scope: fc.option(fc.string(), { nil: undefined }),
  extra: fc.dictionary(
    fc.string().filter((key) =>
      !["access_token", "token_type", "expires_in", "scope"].includes(key)
    ),
    fc.jsonValue(),
    { maxKeys: 3 },
  ),
}).map(({ extra, scope, ...fields }) => ({
  ...extra,
  ...fields,
  ...(scope === undefined ? {} : { scope }),
}));

/** A field value of any JSON type. */
const anyJsonField = fc.option(fc.jsonValue(), { nil: undefined });

/** Bodies near the valid ones: every field may be missing or of any type. */
const mutatedBody = fc.record({
  access_token: fc.oneof(fc.string(), anyJsonField),
  token_type: fc.oneof(bearerInAnyCase, fc.string(), anyJsonField),
  expires_in: fc.oneof(
    positiveExpiresIn,
    fc.double(),
    fc.string(),
    anyJsonField,
  ),
  scope: anyJsonField,
}, { requiredKeys: [] });

/** Text a misconfigured endpoint, proxy or attacker might send. */
const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.json(),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  mutatedBody.map((body) => JSON.stringify(body)),
  // Bodies cut short, as a proxy that drops a connection might deliver.
  fc.tuple(validBody, fc.nat()).map(([body, cut]) => {
    const text = JSON.stringify(body);
    return text.slice(0, cut % (text.length + 1));
  }),
);

/** Whether a grant keeps every promise `TokenGrant` makes. */
function assertWellFormed(grant: TokenGrant): void {
  assert.equal(typeof grant.accessToken, "string");
  assert.match(grant.accessToken, /^[A-Za-z0-9\-._~+/]+=*$/, "not a b64token");
  // Whatever is accepted can go in a header.
  new Headers({ authorization: `Bearer ${grant.accessToken}` });
  assert.ok(grant.accessToken.length > 0, "empty access token accepted");
  assert.equal(grant.tokenType.toLowerCase(), "bearer");
  assert.ok(Number.isFinite(grant.lifetimeMs), "lifetime is not finite");
  assert.ok(grant.lifetimeMs > 0, `lifetime ${grant.lifetimeMs} ≤ 0`);
  assert.ok(
    grant.lifetimeMs <= MAX_TOKEN_LIFETIME_MS,
    `lifetime ${grant.lifetimeMs} exceeds the cap`,
  );
  assert.ok(grant.scope === undefined || typeof grant.scope === "string");
}

Deno.test("parseTokenResponse properties", async (t) => {
  await t.step(
    "arbitrary text: a well-formed grant or InvalidTokenResponseError, nothing else",
    () => {
      const cases = new CaseCounter();
      fc.assert(
        fc.property(anyText, successStatus, (text, status) => {
          cases.tick();
          let grant: TokenGrant;
          try {
            grant = parseTokenResponse(text, status);
          } catch (error) {
            assert.ok(
              error instanceof InvalidTokenResponseError,
              `threw ${String(error)}`,
            );
            assert.equal(error.status, status);
            assert.equal(error.code, "INVALID_TOKEN_RESPONSE");
            return;
          }
          assertWellFormed(grant);
        }),
        propertyParameters(3_000),
      );
      assert.ok(cases.count >= 3_000);
    },
  );

  await t.step("an access_token outside b64token is refused", () => {
    const cases = new CaseCounter();
    fc.assert(
      fc.property(
        fc.tuple(b64token, fc.string({ minLength: 1 }), b64token).map((
          [head, bad, tail],
        ) => head + bad + tail).filter((token) =>
          // Long enough that it cannot occur in the message by chance.
          token.length >= 16 && !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)
        ),
        successStatus,
        (token, status) => {
          cases.tick();
          assert.throws(
            () =>
              parseTokenResponse(
                JSON.stringify({
                  access_token: token,
                  token_type: "Bearer",
                  expires_in: 60,
                }),
                status,
              ),
            (error) =>
              error instanceof InvalidTokenResponseError &&
              /b64token/.test(error.message) && !error.message.includes(token),
          );
        },
      ),
      propertyParameters(1_000),
    );
    assert.ok(cases.count >= 1_000);
  });

  await t.step("valid responses round-trip", () => {
    const cases = new CaseCounter();
    fc.assert(
      fc.property(validBody, successStatus, (body, status) => {
        cases.tick();
        const grant = parseTokenResponse(JSON.stringify(body), status);
        assertWellFormed(grant);
        assert.equal(grant.accessToken, body.access_token);
        assert.equal(grant.tokenType, body.token_type);
        assert.equal(
          grant.lifetimeMs,
          Math.min(body.expires_in * 1000, MAX_TOKEN_LIFETIME_MS),
        );
        assert.equal(grant.scope, "scope" in body ? body.scope : undefined);
      }),
      propertyParameters(2_000),
    );
    assert.ok(cases.count >= 2_000);
  });

  await t.step(
    "a response missing a valid field is rejected, whatever the others hold",
    () => {
      const cases = new CaseCounter();
      const breakOneField = fc.tuple(
        validBody,
        fc.constantFrom("access_token", "token_type", "expires_in"),
        fc.oneof(
          fc.constant(undefined),
          fc.constant(null),
          fc.constant(""),
          fc.constant(0),
          fc.constant(-1),
          fc.double({ max: 0 }),
          fc.boolean(),
          fc.array(fc.jsonValue(), { maxLength: 2 }),
          fc.string().filter((s) => s.toLowerCase() !== "bearer"),
        ),
      ).filter(([, field, value]) => !isValidValue(field, onTheWire(value)));
      fc.assert(
        fc.property(
          breakOneField,
          successStatus,
          ([body, field, value], status) => {
            cases.tick();
            const broken: Record<string, unknown> = { ...body };
            if (value === undefined) delete broken[field];
            else broken[field] = value;
            assert.throws(
              () => parseTokenResponse(JSON.stringify(broken), status),
              InvalidTokenResponseError,
            );
          },
        ),
        propertyParameters(2_000),
      );
      assert.ok(cases.count >= 2_000);
    },
  );

  await t.step(
    "expires_in as decimal digits in a string means the same as the number",
    () => {
      const cases = new CaseCounter();
      fc.assert(
        fc.property(
          validBody,
          fc.integer({ min: 1, max: 2 ** 31 }),
          fc.nat({ max: 999 }),
          (body, whole, fraction) => {
            cases.tick();
            const text = fraction === 0 ? `${whole}` : `${whole}.${fraction}`;
            const asString = parseTokenResponse(
              JSON.stringify({ ...body, expires_in: text }),
              200,
            );
            const asNumber = parseTokenResponse(
              JSON.stringify({ ...body, expires_in: Number(text) }),
              200,
            );
            assert.equal(asString.lifetimeMs, asNumber.lifetimeMs);
            assert.equal(asString.lifetimeAssumed, undefined);
          },
        ),
        propertyParameters(500),
      );
      assert.ok(cases.count >= 500);
    },
  );

  await t.step(
    "a rejected response never echoes the access token in the error",
    () => {
      const cases = new CaseCounter();
      const token = fc.stringMatching(/^[A-Za-z0-9_-]{24,64}$/).map((s) =>
        `tok_${s}`
      );
      const badRest = fc.record({
        token_type: fc.oneof(fc.string(), anyJsonField),
        expires_in: fc.oneof(fc.string(), fc.double({ max: 0 }), anyJsonField),
      });
      fc.assert(
        fc.property(
          token,
          badRest,
          successStatus,
          (accessToken, rest, status) => {
            cases.tick();
            const body = { access_token: accessToken, ...rest };
            try {
              parseTokenResponse(JSON.stringify(body), status);
            } catch (error) {
              assert.ok(error instanceof InvalidTokenResponseError);
              assert.ok(
                !`${error.message} ${Deno.inspect(error)}`.includes(
                  accessToken,
                ),
                "the access token leaked into the error",
              );
              return;
            }
            // Only reachable when the random fields happen to be valid.
            assert.ok(isValidValue("token_type", onTheWire(rest.token_type)));
            assert.ok(isValidValue("expires_in", onTheWire(rest.expires_in)));
          },
        ),
        propertyParameters(1_000),
      );
      assert.ok(cases.count >= 1_000);
    },
  );
});

/** A value as JSON carries it: a non-finite number becomes `null`. */
function onTheWire(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function isValidValue(field: string, value: unknown): boolean {
  switch (field) {
    case "access_token":
      return typeof value === "string" && value.length > 0;
    case "token_type":
      return typeof value === "string" && value.toLowerCase() === "bearer";
    default: {
      // expires_in may be absent (the default lifetime is assumed), or a
      // positive number of seconds, as JSON or as decimal digits in a string.
      if (value === undefined || value === null) return true;
      const seconds =
        typeof value === "string" && /^[0-9]+(\.[0-9]+)?$/.test(value)
          ? Number(value)
          : value;
      return typeof seconds === "number" && Number.isFinite(seconds) &&
        seconds > 0;
    }
  }
}

Deno.test({
  name:
    "parseTokenResponse: a field object with a toString or valueOf member gives InvalidTokenResponseError",
  fn: () => {
    const cases = new CaseCounter();
    const hostile = fc.dictionary(
      fc.constantFrom("toString", "valueOf"),
      fc.jsonValue(),
      { minKeys: 1 },
    );
    fc.assert(
      fc.property(
        hostile,
        fc.constantFrom("token_type", "expires_in"),
        (value, field) => {
          cases.tick();
          const body = {
            access_token: "t",
            token_type: "Bearer",
            expires_in: 60,
            [field]: value,
          };
          assert.throws(
            () => parseTokenResponse(JSON.stringify(body), 200),
            InvalidTokenResponseError,
          );
        },
      ),
      propertyParameters(200),
    );
    assert.ok(cases.count >= 200);
  },
});
