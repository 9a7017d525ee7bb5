import assert from "node:assert/strict";
import {
  type ConfigWarning,
  DEFAULT_REFRESH_MARGIN_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type DualSecretAuthOptions,
  isLoopback,
  resolveConfig,
} from "../src/config.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { ConfigError, ErrorCode } from "../src/errors.ts";
import type { AuthEvent } from "../src/events.ts";
import { GENESYS_REGIONS } from "../src/regions.ts";
import { DEFAULT_RETRY } from "../src/retry.ts";
import { Secret } from "../src/secret.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  acceptingHandler,
  FakeTokenEndpoint,
} from "./support/fake_token_endpoint.ts";

const SECRET_CANARY = "CANARY-SECRET-c0nf1g";

const TWO = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];

function resolve(
  options: DualSecretAuthOptions,
  warnings: ConfigWarning[] = [],
) {
  return resolveConfig(options, warnings);
}

function configError(options: unknown): ConfigError {
  try {
    resolve(options as DualSecretAuthOptions);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.code, ErrorCode.CONFIG_INVALID);
    assert.ok(!error.message.includes(SECRET_CANARY), error.message);
    return error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("resolveConfig: defaults", () => {
  const config = resolve({ credentials: TWO });
  assert.equal(config.tokenUrl, "https://login.mypurecloud.com/oauth/token");
  assert.equal(config.active, "blue");
  assert.equal(config.scope, undefined);
  assert.equal(config.refreshMarginMs, DEFAULT_REFRESH_MARGIN_MS);
  assert.equal(config.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  assert.deepEqual(config.retry, DEFAULT_RETRY);
  assert.deepEqual(config.credentials.map((c) => c.label), ["blue", "green"]);
  assert.ok(config.credentials[0].clientSecret instanceof Secret);
  assert.equal(config.credentials[0].clientSecret.reveal(), "blue-secret");
  assert.ok(Object.isFrozen(config));
});

Deno.test("resolveConfig: credentials", async (t) => {
  await t.step("missing or empty list", () => {
    for (const credentials of [undefined, [], "x", {}]) {
      assert.equal(configError({ credentials }).option, "credentials");
    }
  });

  await t.step("missing or empty secret", () => {
    for (
      const clientSecret of [undefined, "", "   ", "\n", new Secret(""), 42]
    ) {
      const error = configError({
        credentials: [{ ...TWO[0] }, { ...TWO[1], clientSecret }],
      });
      assert.equal(error.option, "credentials[1].clientSecret");
      assert.match(error.message, /"green"/);
    }
  });

  await t.step("missing label or client id", () => {
    assert.equal(
      configError({ credentials: [{ ...TWO[0], label: "" }] }).option,
      "credentials[0].label",
    );
    assert.equal(
      configError({ credentials: [{ ...TWO[0], clientId: " " }] }).option,
      "credentials[0].clientId",
    );
    assert.equal(configError({ credentials: [null] }).option, "credentials[0]");
  });

  await t.step("duplicate labels", () => {
    const error = configError({
      credentials: [
        { ...TWO[0], clientSecret: SECRET_CANARY },
        { ...TWO[1], label: "blue", clientSecret: SECRET_CANARY },
      ],
    });
    assert.equal(error.option, "credentials[1].label");
    assert.match(error.message, /duplicate/);
  });

  await t.step("a Secret is accepted as the secret", () => {
    const config = resolve({
      credentials: [{ ...TWO[0], clientSecret: new Secret("wrapped") }],
    });
    assert.equal(config.credentials[0].clientSecret.reveal(), "wrapped");
  });

  await t.step("padded secret and id are trimmed with a warning", () => {
    const warnings: ConfigWarning[] = [];
    const config = resolve({
      credentials: [{
        label: "blue",
        clientId: " blue-id\t",
        clientSecret: `  ${SECRET_CANARY}\n`,
      }],
    }, warnings);
    assert.equal(config.credentials[0].clientSecret.reveal(), SECRET_CANARY);
    assert.equal(config.credentials[0].clientId, "blue-id");
    assert.deepEqual(warnings.map((w) => [w.code, w.label]), [
      ["WHITESPACE_TRIMMED", "blue"],
      ["WHITESPACE_TRIMMED", "blue"],
    ]);
    for (const warning of warnings) {
      assert.ok(!warning.message.includes(SECRET_CANARY));
    }
  });

  await t.step("unknown active label", () => {
    const error = configError({ credentials: TWO, active: "purple" });
    assert.equal(error.option, "active");
    assert.match(error.message, /blue, green/);
  });

  await t.step("active picks the starting label", () => {
    assert.equal(
      resolve({ credentials: TWO, active: "green" }).active,
      "green",
    );
  });
});

Deno.test("resolveConfig: seed shorthand", async (t) => {
  await t.step("clientId, secretA, secretB become labels a and b", () => {
    const config = resolve({
      clientId: "app",
      secretA: "first",
      secretB: new Secret("second"),
    });
    assert.deepEqual(
      config.credentials.map((
        c,
      ) => [c.label, c.clientId, c.clientSecret.reveal()]),
      [["a", "app", "first"], ["b", "app", "second"]],
    );
    assert.equal(config.active, "a");
  });

  await t.step("needs both secrets", () => {
    assert.equal(
      configError({ clientId: "app", secretA: "first" }).option,
      "secretB",
    );
    assert.equal(
      configError({ clientId: "app", secretB: "second" }).option,
      "secretA",
    );
    assert.equal(
      configError({ secretA: "first", secretB: "second" }).option,
      "clientId",
    );
  });

  await t.step("not together with credentials", () => {
    assert.equal(
      configError({
        credentials: TWO,
        clientId: "app",
        secretA: "a",
        secretB: "b",
      })
        .option,
      "credentials",
    );
  });
});

Deno.test("resolveConfig: token endpoint", async (t) => {
  await t.step("every region resolves to its login host", () => {
    for (const environment of Object.keys(GENESYS_REGIONS)) {
      assert.equal(
        resolve({ credentials: TWO, environment }).tokenUrl,
        `https://login.${environment}/oauth/token`,
      );
    }
  });

  await t.step("an unknown region lists the valid ones", () => {
    const error = configError({
      credentials: TWO,
      environment: "purecloud.xx",
    });
    assert.equal(error.option, "environment");
    for (const domain of Object.keys(GENESYS_REGIONS)) {
      assert.ok(error.message.includes(domain), domain);
    }
  });

  await t.step("both tokenUrl and environment", () => {
    const error = configError({
      credentials: TWO,
      tokenUrl: "https://idp.example/token",
      environment: "mypurecloud.com",
    });
    assert.equal(error.option, "tokenUrl");
  });

  await t.step("https anywhere, http only on loopback", () => {
    for (
      const tokenUrl of [
        "https://idp.example/oauth2/token",
        "http://127.0.0.1:8080/token",
        "http://127.10.0.1/token",
        "http://localhost:3000/token",
        "http://[::1]:4000/token",
      ]
    ) {
      assert.equal(resolve({ credentials: TWO, tokenUrl }).tokenUrl, tokenUrl);
    }
    for (
      const tokenUrl of [
        "http://idp.example/token",
        "http://10.0.0.1/token",
        "http://128.0.0.1/token",
        "http://localhost.evil.example/token",
      ]
    ) {
      const error = configError({ credentials: TWO, tokenUrl });
      assert.equal(error.option, "tokenUrl");
      assert.match(error.message, /https:\/\//);
    }
  });

  await t.step("not a URL, another scheme, or user info", () => {
    for (
      const tokenUrl of [
        "login.mypurecloud.com/oauth/token",
        "ftp://idp.example/token",
        "https://user:pass@idp.example/token",
      ]
    ) {
      assert.equal(
        configError({ credentials: TWO, tokenUrl }).option,
        "tokenUrl",
      );
    }
  });

  await t.step("isLoopback", () => {
    assert.equal(isLoopback("127.0.0.1"), true);
    assert.equal(isLoopback("localhost"), true);
    assert.equal(isLoopback("[::1]"), true);
    assert.equal(isLoopback("127.0.0.1.nip.io"), false);
    assert.equal(isLoopback("example.com"), false);
  });
});

Deno.test("resolveConfig: scope, timing and retry", async (t) => {
  await t.step("a scope list is joined by spaces", () => {
    assert.equal(
      resolve({ credentials: TWO, scope: ["a", "b:c"] }).scope,
      "a b:c",
    );
    assert.equal(resolve({ credentials: TWO, scope: "  a   b " }).scope, "a b");
    assert.equal(resolve({ credentials: TWO, scope: [] }).scope, undefined);
    assert.equal(resolve({ credentials: TWO, scope: " " }).scope, undefined);
    assert.equal(
      configError({ credentials: TWO, scope: ["a", 1] }).option,
      "scope",
    );
  });

  await t.step("bad numbers name their option", () => {
    const cases: [DualSecretAuthOptions, string][] = [
      [{ refreshMarginMs: -1 }, "refreshMarginMs"],
      [{ refreshMarginMs: NaN }, "refreshMarginMs"],
      [{ requestTimeoutMs: 0 }, "requestTimeoutMs"],
      [{ requestTimeoutMs: Infinity }, "requestTimeoutMs"],
      [{ defaultExpiresInSeconds: 0 }, "defaultExpiresInSeconds"],
      [{ defaultExpiresInSeconds: -1 }, "defaultExpiresInSeconds"],
      [{ defaultExpiresInSeconds: 0.5 }, "defaultExpiresInSeconds"],
      [{ defaultExpiresInSeconds: NaN }, "defaultExpiresInSeconds"],
      [{ defaultExpiresInSeconds: Infinity }, "defaultExpiresInSeconds"],
      [
        { defaultExpiresInSeconds: "300" as unknown as number },
        "defaultExpiresInSeconds",
      ],
      [{ retry: { maxAttempts: 0 } }, "retry.maxAttempts"],
      [{ retry: { maxAttempts: 1.5 } }, "retry.maxAttempts"],
      [{ retry: { baseDelayMs: -5 } }, "retry.baseDelayMs"],
      [{ retry: { maxDelayMs: -5 } }, "retry.maxDelayMs"],
      [{ retry: { maxElapsedMs: -5 } }, "retry.maxElapsedMs"],
      [{ retry: { maxRetryAfterMs: -5 } }, "retry.maxRetryAfterMs"],
    ];
    for (const [options, option] of cases) {
      assert.equal(
        configError({ credentials: TWO, ...options }).option,
        option,
      );
    }
  });

  await t.step("defaultExpiresInSeconds: 300 unless given", () => {
    assert.equal(resolve({ credentials: TWO }).defaultExpiresInSeconds, 300);
    assert.equal(
      resolve({ credentials: TWO, defaultExpiresInSeconds: 3600 })
        .defaultExpiresInSeconds,
      3600,
    );
  });

  await t.step("retry options merge over the defaults", () => {
    const config = resolve({ credentials: TWO, retry: { maxAttempts: 2 } });
    assert.deepEqual(config.retry, { ...DEFAULT_RETRY, maxAttempts: 2 });
  });

  await t.step("options must be an object", () => {
    assert.equal(configError(null).option, "options");
  });
});

Deno.test("createDualSecretAuth: config in practice", async (t) => {
  await t.step(
    "a trimmed secret emits WHITESPACE_TRIMMED and is sent trimmed",
    async () => {
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(new Set([`blue-id:${SECRET_CANARY}`])),
      });
      const events: AuthEvent[] = [];
      await using auth = createDualSecretAuth({
        credentials: [
          {
            label: "blue",
            clientId: "blue-id",
            clientSecret: `${SECRET_CANARY}\n`,
          },
          TWO[1],
        ],
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock: new FakeClock(0),
        onEvent: (event) => events.push(event),
      });
      const warnings = events.filter((e) => e.type === "warning");
      assert.equal(warnings.length, 1);
      assert.equal(
        warnings[0].type === "warning" && warnings[0].code,
        "WHITESPACE_TRIMMED",
      );
      assert.equal(warnings[0].type === "warning" && warnings[0].label, "blue");
      assert.ok(!JSON.stringify(events).includes(SECRET_CANARY));
      await auth.getAccessToken();
      assert.equal(endpoint.tokenRequests[0].clientSecret, SECRET_CANARY);
    },
  );

  await t.step("a scope list reaches the token request joined", async () => {
    const endpoint = new FakeTokenEndpoint({
      tokenHandler: acceptingHandler(new Set(["blue-id:blue-secret"])),
    });
    await using auth = createDualSecretAuth({
      credentials: TWO,
      scope: ["analytics", "users:readonly"],
      tokenUrl: endpoint.tokenUrl,
      fetch: endpoint.fetch,
      clock: new FakeClock(0),
    });
    await auth.getAccessToken();
    assert.equal(
      endpoint.tokenRequests[0].form.get("scope"),
      "analytics users:readonly",
    );
  });

  await t.step("the seed shorthand works end to end", async () => {
    const endpoint = new FakeTokenEndpoint({
      tokenHandler: acceptingHandler(new Set(["app:second"])),
    });
    await using auth = createDualSecretAuth({
      clientId: "app",
      secretA: "first",
      secretB: "second",
      tokenUrl: endpoint.tokenUrl,
      fetch: endpoint.fetch,
      clock: new FakeClock(0),
    });
    assert.deepEqual(auth.status().credentials.map((c) => c.label), ["a", "b"]);
    await auth.getAccessToken();
    assert.equal(auth.status().active, "b");
  });

  await t.step("invalid options throw before anything starts", () => {
    assert.throws(
      () => createDualSecretAuth({ credentials: TWO, environment: "nowhere" }),
      (error) =>
        error instanceof ConfigError &&
        error.code === ErrorCode.CONFIG_INVALID &&
        error.option === "environment",
    );
  });
});

Deno.test("resolveConfig: client authentication and token parameters", async (t) => {
  await t.step("authMethod per credential; absent means Basic", () => {
    const config = resolve({
      credentials: [
        { ...TWO[0], authMethod: "client_secret_post" },
        { ...TWO[1], authMethod: "client_secret_basic" },
        { label: "c", clientId: "c-id", clientSecret: "c-secret" },
      ],
    });
    assert.deepEqual(
      config.credentials.map((c) => c.authMethod),
      ["client_secret_post", "client_secret_basic", undefined],
    );
  });

  await t.step("an unknown authMethod names the credential", () => {
    for (const authMethod of ["private_key_jwt", "post", "", 1]) {
      const error = configError({
        credentials: [TWO[0], { ...TWO[1], authMethod }],
      });
      assert.equal(error.option, "credentials[1].authMethod");
      assert.match(error.message, /client_secret_basic or client_secret_post/);
    }
  });

  await t.step("tokenParams: strings, frozen, a copy", () => {
    const params = { audience: "https://api.example.com", resource: "r" };
    const config = resolve({ credentials: TWO, tokenParams: params });
    assert.deepEqual(config.tokenParams, params);
    assert.notEqual(config.tokenParams, params);
    assert.ok(Object.isFrozen(config.tokenParams));
    assert.equal(resolve({ credentials: TWO }).tokenParams, undefined);
  });

  await t.step(
    "tokenParams refuses what the library sets, and non-strings",
    () => {
      const cases: [unknown, string][] = [
        [{ grant_type: "password" }, "tokenParams.grant_type"],
        [{ scope: "a" }, "tokenParams.scope"],
        [{ client_id: "x" }, "tokenParams.client_id"],
        [{ client_secret: SECRET_CANARY }, "tokenParams.client_secret"],
        [{ audience: 1 }, "tokenParams.audience"],
        [{ audience: "" }, "tokenParams.audience"],
        [{ audience: "\ud800" }, "tokenParams.audience"],
        ["audience=x", "tokenParams"],
        [null, "tokenParams"],
      ];
      for (const [tokenParams, option] of cases) {
        assert.equal(
          configError({ credentials: TWO, tokenParams }).option,
          option,
          JSON.stringify(tokenParams),
        );
      }
    },
  );

  await t.step(
    "setCredentials changing only authMethod takes effect",
    async () => {
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(new Set(["blue-id:blue-secret"])),
      });
      await using auth = createDualSecretAuth({
        credentials: [TWO[0]],
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock: new FakeClock(0),
      });
      await auth.getAccessToken();
      auth.setCredentials([{ ...TWO[0], authMethod: "client_secret_post" }]);
      await auth.getAccessToken();
      assert.deepEqual(
        endpoint.tokenRequests.map((r) => r.authMethod),
        ["client_secret_basic", "client_secret_post"],
      );
    },
  );
});
