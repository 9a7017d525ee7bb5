/**
 * Properties of option validation: `createDualSecretAuth` (through
 * `resolveConfig`) and `setCredentials` either succeed or throw
 * `ConfigError`, and no secret ever appears in what they throw, emit or show.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AuthEvent,
  ConfigError,
  createDualSecretAuth,
  type DualSecretAuth,
  type DualSecretAuthOptions,
  GENESYS_REGIONS,
  Secret,
} from "../../mod.ts";
import { resolveConfig } from "../../src/config.ts";
import { CaseCounter, propertyParameters } from "./fc_parameters.ts";

/** Secrets carry a marker no other generated value can contain. */
const SECRET_MARKER = "SeCrEt";
const secretValue = fc.stringMatching(/^[A-Za-z0-9]{8,20}$/).map((s) =>
  `${SECRET_MARKER}${s}`
);
const whitespace = fc.constantFrom("", "", " ", "\n", "\t", " \r\n");

/** A secret as a user might pass it: padded, wrapped, empty or of a wrong type. */
const secretInput = fc.oneof(
  { weight: 6, arbitrary: secretValue },
  {
    weight: 2,
    arbitrary: fc.tuple(whitespace, secretValue, whitespace).map(
      ([before, secret, after]) => `${before}${secret}${after}`,
    ),
  },
  { weight: 2, arbitrary: secretValue.map((s) => new Secret(s)) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      whitespace,
      fc.constant(new Secret(" ")),
      fc.integer(),
      fc.constant(null),
      fc.constant(undefined),
      fc.object(),
    ),
  },
);

const labelInput = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("blue", "green", "a", "b", " x ") },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null)) },
);

const clientIdInput = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("blue-id", "green-id", " id ") },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(undefined)) },
);

const credentialInput = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      label: labelInput,
      clientId: clientIdInput,
      clientSecret: secretInput,
    }, { requiredKeys: [] }),
  },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.string()) },
);

const credentialList = fc.oneof(
  { weight: 8, arbitrary: fc.array(credentialInput, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.oneof(fc.string(), fc.object(), fc.integer()) },
);

const tokenUrlInput = fc.oneof(
  fc.constantFrom(
    "https://login.example.com/oauth/token",
    "http://127.0.0.1:8080/token",
    "http://localhost/token",
    "http://[::1]:9/token",
    "http://login.example.com/oauth/token",
    "https://user:pw@login.example.com/token",
    "ftp://login.example.com/token",
    "not a url",
    "",
  ),
  fc.webUrl(),
  fc.string(),
);

const environmentInput = fc.oneof(
  fc.constantFrom(...Object.keys(GENESYS_REGIONS)),
  fc.constantFrom(...Object.keys(GENESYS_REGIONS)).map((d) =>
    `https://login.${d.toUpperCase()}/`
  ),
  fc.string(),
);

/** A number option as a user might get it wrong. */
const numberInput = fc.oneof(
  fc.integer({ min: -10, max: 1_000_000 }),
  fc.double(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0),
  fc.string({ maxLength: 4 }),
  fc.constant(null),
);

const retryInput = fc.record({
  maxAttempts: numberInput,
  baseDelayMs: numberInput,
  maxDelayMs: numberInput,
  maxElapsedMs: numberInput,
  maxRetryAfterMs: numberInput,
}, { requiredKeys: [] });

const scopeInput = fc.oneof(
  fc.string(),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
  fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }),
);

/**
 * Options whose validation `resolveConfig` owns: every field may be absent,
 * right, or wrong in a way a user could plausibly get it wrong.
 */
const dataOptions = fc.record({
  credentials: credentialList,
  clientId: clientIdInput,
  secretA: secretInput,
  secretB: secretInput,
  tokenUrl: tokenUrlInput,
  environment: environmentInput,
  active: labelInput,
  scope: scopeInput,
  refreshMarginMs: numberInput,
  requestTimeoutMs: numberInput,
  retry: fc.oneof(retryInput, fc.constant(null)),
}, { requiredKeys: [] });

/**
 * Options that are valid but for what the random fields change: keeps the
 * success path reached on every seed, however strict validation gets.
 */
const mostlyValidOptions = fc.record({
  credentials: fc.constant([
    { label: "blue", clientId: "blue-id", clientSecret: "SeCrEtBlue1" },
    { label: "green", clientId: "green-id", clientSecret: " SeCrEtGreen2\n" },
  ]),
  tokenUrl: fc.constantFrom(
    "https://login.example.com/oauth/token",
    "http://127.0.0.1:8080/oauth/token",
  ),
  active: fc.constantFrom("blue", "green"),
  scope: fc.oneof(fc.string(), fc.array(fc.string({ maxLength: 6 }))),
  refreshMarginMs: fc.nat(),
  requestTimeoutMs: fc.integer({ min: 1, max: 60_000 }),
}, { requiredKeys: ["credentials", "tokenUrl"] });

/** Every secret-looking string anywhere inside a generated value. */
function secretsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (value instanceof Secret) {
    secretsIn(value.reveal(), found);
  } else if (typeof value === "string") {
    for (const match of value.matchAll(/SeCrEt[A-Za-z0-9]+/g)) {
      found.add(match[0]);
    }
  } else if (typeof value === "object" && value !== null) {
    for (const item of Object.values(value)) secretsIn(item, found);
  }
  return found;
}

function assertNoSecret(text: string, secrets: Set<string>, where: string) {
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `a secret leaked into ${where}`);
  }
  // Catches a secret cut short or otherwise mangled, too.
  assert.ok(!text.includes(SECRET_MARKER), `secret material in ${where}`);
}

/** Creates an instance with a fetch that must never be called. */
function create(
  options: Record<string, unknown>,
  events: AuthEvent[],
): DualSecretAuth {
  return createDualSecretAuth({
    ...options,
    fetch: () => Promise.reject(new Error("no request expected")),
    onEvent: (event) => events.push(event),
  } as DualSecretAuthOptions);
}

Deno.test("option validation properties", async (t) => {
  await t.step(
    "createDualSecretAuth: succeeds or throws ConfigError, never leaking a secret",
    async () => {
      const cases = new CaseCounter();
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            { arbitrary: dataOptions, weight: 4 },
            { arbitrary: mostlyValidOptions, weight: 1 },
          ),
          async (options) => {
            cases.tick();
            const secrets = secretsIn(options);
            const events: AuthEvent[] = [];
            let auth: DualSecretAuth;
            try {
              auth = create(options, events);
            } catch (error) {
              assert.ok(error instanceof ConfigError, `threw ${String(error)}`);
              assert.equal(error.code, "CONFIG_INVALID");
              assert.ok(error.option.length > 0);
              assertNoSecret(
                `${error.message}\n${Deno.inspect(error)}\n${
                  JSON.stringify(error)
                }`,
                secrets,
                "the ConfigError",
              );
              return;
            }
            accepted++;
            try {
              const status = auth.status();
              assert.ok(
                status.credentials.some((c) => c.label === status.active),
                "the active label is not a configured credential",
              );
              assertNoSecret(
                `${JSON.stringify(status)}\n${Deno.inspect(auth)}\n${
                  JSON.stringify(events)
                }`,
                secrets,
                "status, inspect or events",
              );
            } finally {
              await auth.close();
            }
          },
        ),
        propertyParameters(2_000),
      );
      assert.ok(cases.count >= 2_000);
      // The generators must reach the success path, not only the errors.
      assert.ok(accepted > 0, "no generated options were valid");
    },
  );

  await t.step(
    "resolveConfig: accepted numbers are finite and in range",
    () => {
      const cases = new CaseCounter();
      const valid = fc.record({
        credentials: fc.constant([
          { label: "blue", clientId: "blue-id", clientSecret: "s1" },
        ]),
        tokenUrl: fc.constant("https://login.example.com/token"),
        refreshMarginMs: numberInput,
        requestTimeoutMs: numberInput,
        retry: retryInput,
      }, { requiredKeys: ["credentials", "tokenUrl"] });
      fc.assert(
        fc.property(valid, (options) => {
          cases.tick();
          let config;
          try {
            config = resolveConfig(options as DualSecretAuthOptions, []);
          } catch (error) {
            assert.ok(error instanceof ConfigError, `threw ${String(error)}`);
            return;
          }
          assert.ok(Number.isFinite(config.refreshMarginMs));
          assert.ok(config.refreshMarginMs >= 0);
          assert.ok(Number.isFinite(config.requestTimeoutMs));
          assert.ok(config.requestTimeoutMs > 0);
          const { retry } = config;
          assert.ok(Number.isInteger(retry.maxAttempts));
          assert.ok(retry.maxAttempts >= 1);
          for (
            const value of [
              retry.baseDelayMs,
              retry.maxDelayMs,
              retry.maxElapsedMs,
              retry.maxRetryAfterMs,
            ]
          ) {
            assert.ok(Number.isFinite(value) && value >= 0, String(value));
          }
        }),
        propertyParameters(1_000),
      );
      assert.ok(cases.count >= 1_000);
    },
  );

  await t.step(
    "setCredentials: succeeds or throws ConfigError and changes nothing",
    async () => {
      const cases = new CaseCounter();
      await fc.assert(
        fc.asyncProperty(credentialList, async (list) => {
          cases.tick();
          const events: AuthEvent[] = [];
          await using auth = create({
            credentials: [
              { label: "blue", clientId: "blue-id", clientSecret: "s-blue" },
              { label: "green", clientId: "green-id", clientSecret: "s-green" },
            ],
            tokenUrl: "https://login.example.com/token",
          }, events);
          const before = JSON.stringify(auth.status());
          const secrets = secretsIn(list);
          try {
            auth.setCredentials(list as never);
          } catch (error) {
            assert.ok(error instanceof ConfigError, `threw ${String(error)}`);
            assertNoSecret(
              `${error.message}\n${Deno.inspect(error)}`,
              secrets,
              "the ConfigError",
            );
            assert.equal(JSON.stringify(auth.status()), before);
            return;
          }
          const status = auth.status();
          assert.ok(status.credentials.some((c) => c.label === status.active));
          assertNoSecret(
            `${JSON.stringify(status)}\n${Deno.inspect(auth)}\n${
              JSON.stringify(events)
            }`,
            secrets,
            "status, inspect or events",
          );
        }),
        propertyParameters(1_000),
      );
      assert.ok(cases.count >= 1_000);
    },
  );
});

Deno.test({
  name:
    "createDualSecretAuth: options of a wrong type throw ConfigError, not TypeError",
  fn: async () => {
    const cases = new CaseCounter();
    const wrongType = fc.oneof(
      fc.integer(),
      fc.constant(null),
      fc.object(),
      fc.boolean(),
      fc.constant(Symbol("x")),
    );
    const option = fc.constantFrom(
      "scope",
      "environment",
      "active",
      "activeStore",
      "tokenStore",
      "clock",
      "fetch",
      "random",
      "onEvent",
    );
    await fc.assert(
      fc.asyncProperty(option, wrongType, async (name, value) => {
        cases.tick();
        const options: Record<string, unknown> = {
          credentials: [
            { label: "blue", clientId: "blue-id", clientSecret: "s1" },
          ],
          [name]: value,
        };
        if (name !== "environment") options.tokenUrl = "https://x.test/token";
        let auth: DualSecretAuth | undefined;
        try {
          auth = createDualSecretAuth(options as DualSecretAuthOptions);
        } catch (error) {
          assert.ok(error instanceof ConfigError, `${name}: ${String(error)}`);
          return;
        }
        await auth.close();
      }),
      propertyParameters(500),
    );
    assert.ok(cases.count >= 500);
  },
});
