import assert from "node:assert/strict";
import { ConfigError, createDualSecretAuth } from "../../mod.ts";
import {
  auth0,
  cognito,
  entra,
  keycloak,
  okta,
  type ProviderPreset,
} from "../../providers.ts";

/** Asserts that `make` throws a ConfigError naming `option`. */
function refuses(make: () => unknown, option: string, text?: RegExp): void {
  assert.throws(make, (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.option, option);
    assert.match(error.message, new RegExp(`Invalid option ${option}:`));
    if (text) assert.match(error.message, text);
    return true;
  });
}

Deno.test("okta derives the custom authorization server's token URL", async (t) => {
  await t.step("domain, authServerId and the required scope", () => {
    assert.deepEqual(
      okta({
        domain: "dev-123456.okta.com",
        authServerId: "aus1x",
        scope: "a",
      }),
      {
        tokenUrl: "https://dev-123456.okta.com/oauth2/aus1x/v1/token",
        scope: "a",
      },
    );
  });
  await t.step(
    "authServerId defaults to default; a copied org URL is forgiven",
    () => {
      assert.equal(
        okta({ domain: "https://Dev-1.okta.com/", scope: ["a", "b"] }).tokenUrl,
        "https://dev-1.okta.com/oauth2/default/v1/token",
      );
    },
  );
  await t.step("bad input names the field", () => {
    refuses(() => okta({ domain: "", scope: "a" }), "okta.domain");
    refuses(
      () => okta({ domain: "http://dev-1.okta.com", scope: "a" }),
      "okta.domain",
    );
    refuses(
      () => okta({ domain: "dev-1.okta.com/oauth2", scope: "a" }),
      "okta.domain",
    );
    refuses(
      () => okta({ domain: "dev-1.okta.com", authServerId: "a/b", scope: "a" }),
      "okta.authServerId",
    );
    refuses(
      () => okta({ domain: "dev-1.okta.com", authServerId: "", scope: "a" }),
      "okta.authServerId",
    );
    // Okta answers a request without scope 400 invalid_scope: refuse it here.
    for (const scope of [undefined, "", "  ", []]) {
      refuses(
        () => okta({ domain: "dev-1.okta.com", scope } as never),
        "okta.scope",
        /invalid_scope/,
      );
    }
    refuses(() => okta(null as never), "okta");
  });
});

Deno.test("entra derives the tenant's v2.0 token URL and <resource>/.default", async (t) => {
  const tenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  await t.step("tenant and resource", () => {
    assert.deepEqual(
      entra({
        tenantId,
        resource: "api://11111111-2222-3333-4444-555555555555",
      }),
      {
        tokenUrl:
          `https://login.microsoftonline.com/${tenantId}/oauth2/v2.0/token`,
        scope: "api://11111111-2222-3333-4444-555555555555/.default",
      },
    );
  });
  await t.step(
    "a trailing slash or /.default on the resource is not doubled",
    () => {
      for (
        const resource of [
          "https://graph.microsoft.com/",
          "https://graph.microsoft.com/.default",
        ]
      ) {
        assert.equal(
          entra({ tenantId, resource }).scope,
          "https://graph.microsoft.com/.default",
        );
      }
    },
  );
  await t.step("a verified domain and a national cloud's login host", () => {
    assert.equal(
      entra({
        tenantId: "contoso.onmicrosoft.us",
        resource: "https://graph.microsoft.us",
        authorityHost: "login.microsoftonline.us",
      }).tokenUrl,
      "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token",
    );
  });
  await t.step("bad input names the field", () => {
    for (
      const bad of [
        "",
        "common",
        "Organizations",
        "consumers",
        "a/b",
        "..",
        "contoso",
        "72f988bf-86f1-41af-91ab",
      ]
    ) {
      refuses(
        () => entra({ tenantId: bad, resource: "api://x" }),
        "entra.tenantId",
      );
    }
    for (const bad of ["", "  ", "api://x y"]) {
      refuses(() => entra({ tenantId, resource: bad }), "entra.resource");
    }
    refuses(
      () => entra({ tenantId } as never),
      "entra.resource",
    );
    refuses(
      () => entra({ tenantId, resource: "api://x", authorityHost: "login/x" }),
      "entra.authorityHost",
    );
  });
});

Deno.test("keycloak derives the realm's token URL", async (t) => {
  await t.step("base URL with or without a path, realm encoded", () => {
    const cases: [string, string, string][] = [
      [
        "https://sso.example.com",
        "prod",
        "https://sso.example.com/realms/prod/protocol/openid-connect/token",
      ],
      [
        "https://sso.example.com/auth/",
        "my realm",
        "https://sso.example.com/auth/realms/my%20realm/protocol/openid-connect/token",
      ],
      [
        "http://127.0.0.1:8080",
        "test",
        "http://127.0.0.1:8080/realms/test/protocol/openid-connect/token",
      ],
    ];
    for (const [baseUrl, realm, tokenUrl] of cases) {
      assert.deepEqual(keycloak({ baseUrl, realm }), { tokenUrl });
    }
    assert.equal(
      keycloak({ baseUrl: "https://sso.example.com", realm: "r", scope: "x" })
        .scope,
      "x",
    );
  });
  await t.step("bad input names the field", () => {
    // Plain http only on loopback, as every URL the library sends secrets to.
    refuses(
      () => keycloak({ baseUrl: "http://sso.example.com", realm: "r" }),
      "keycloak.baseUrl",
    );
    refuses(
      () => keycloak({ baseUrl: "https://u:p@sso.example.com", realm: "r" }),
      "keycloak.baseUrl",
    );
    refuses(
      () => keycloak({ baseUrl: "https://sso.example.com/?x=1", realm: "r" }),
      "keycloak.baseUrl",
    );
    refuses(() => keycloak({ baseUrl: "sso", realm: "r" }), "keycloak.baseUrl");
    for (const realm of [" ", ".", "..", undefined]) {
      refuses(
        () => keycloak({ baseUrl: "https://sso.example.com", realm } as never),
        "keycloak.realm",
      );
    }
  });
});

Deno.test("cognito derives the user pool domain's token URL", async (t) => {
  await t.step("prefix and region, or the domain whole", () => {
    assert.deepEqual(
      cognito({ userPoolDomain: "my-app", region: "eu-west-1" }),
      {
        tokenUrl:
          "https://my-app.auth.eu-west-1.amazoncognito.com/oauth2/token",
      },
    );
    assert.deepEqual(
      cognito({ domain: "auth.example.com", scope: ["api/read"] }),
      {
        tokenUrl: "https://auth.example.com/oauth2/token",
        scope: ["api/read"],
      },
    );
    assert.equal(
      cognito({ userPoolDomain: "p", region: "us-gov-west-1" }).tokenUrl,
      "https://p.auth.us-gov-west-1.amazoncognito.com/oauth2/token",
    );
  });
  await t.step("bad input names the field", () => {
    refuses(
      () => cognito({ userPoolDomain: "My_App", region: "eu-west-1" }),
      "cognito.userPoolDomain",
    );
    refuses(
      () => cognito({ userPoolDomain: "-app", region: "eu-west-1" }),
      "cognito.userPoolDomain",
    );
    refuses(
      () => cognito({ userPoolDomain: "app", region: "Ireland" }),
      "cognito.region",
    );
    refuses(
      () => cognito({ userPoolDomain: "app" } as never),
      "cognito.region",
    );
    refuses(() => cognito({} as never), "cognito.userPoolDomain");
    refuses(
      () =>
        cognito(
          { domain: "auth.example.com", region: "eu-west-1" } as never,
        ),
      "cognito.domain",
      /not both/,
    );
    refuses(() => cognito({ domain: "auth example" }), "cognito.domain");
  });
});

Deno.test("auth0 derives the tenant's token URL and sends the audience", async (t) => {
  await t.step("domain and audience", () => {
    assert.deepEqual(
      auth0({
        domain: "my-tenant.eu.auth0.com",
        audience: "https://api.example.com",
      }),
      {
        tokenUrl: "https://my-tenant.eu.auth0.com/oauth/token",
        tokenParams: { audience: "https://api.example.com" },
      },
    );
  });
  await t.step("bad input names the field", () => {
    refuses(
      () => auth0({ domain: "my-tenant.eu.auth0.com", audience: " " }),
      "auth0.audience",
    );
    refuses(
      () => auth0({ domain: "my-tenant.eu.auth0.com" } as never),
      "auth0.audience",
    );
    refuses(
      () => auth0({ domain: "my-tenant", audience: "x" }),
      "auth0.domain",
    );
  });
});

Deno.test("every preset spreads into createDualSecretAuth and is frozen", async () => {
  const presets: ProviderPreset[] = [
    okta({ domain: "dev-1.okta.com", scope: "a" }),
    entra({ tenantId: "contoso.onmicrosoft.com", resource: "api://x" }),
    keycloak({ baseUrl: "https://sso.example.com", realm: "r" }),
    cognito({ userPoolDomain: "p", region: "eu-west-1" }),
    auth0({ domain: "t.auth0.com", audience: "https://api" }),
  ];
  for (const preset of presets) {
    assert.ok(Object.isFrozen(preset));
    await using auth = createDualSecretAuth({
      ...preset,
      credentials: [{ label: "a", clientId: "id", clientSecret: "s" }],
    });
    assert.equal(auth.status().active, "a");
  }
});
