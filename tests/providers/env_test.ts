import assert from "node:assert/strict";
import {
  PROVIDER_ENV_VARS,
  PROVIDER_VARIABLES,
  ProviderAdminRejectedError,
  readProviderEnv,
  secretIdEnvVar,
} from "../../src/providers/env.ts";
import { EnvConfigError } from "../../src/rotation/env_config.ts";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import {
  REHEARSAL_PROVIDERS,
  startProviderRehearsal,
} from "../../src/testing/providers/rehearsal.ts";

function problemsOf(env: Record<string, string>): Map<string, string> {
  try {
    readProviderEnv(env);
  } catch (error) {
    assert.ok(error instanceof EnvConfigError, String(error));
    return new Map(error.problems.map((p) => [p.variable, p.problem]));
  }
  assert.fail("the configuration was accepted");
}

Deno.test("each rehearsal's env file reads, and its admin credential inspects the app through createProvider", async (t) => {
  for (const name of REHEARSAL_PROVIDERS) {
    await t.step(name, async () => {
      const rehearsal = await startProviderRehearsal(name);
      try {
        const env = Object.fromEntries(rehearsal.settings);
        const config = readProviderEnv(env);
        assert.equal(config.provider, name);
        assert.equal(config.active, "blue");
        assert.equal(config.standby, "green");
        assert.equal(
          config.model,
          name === "auth0" ? "twin-clients" : "two-secrets",
        );
        for (const variable of Object.keys(env)) {
          assert.ok(
            PROVIDER_VARIABLES[name].required.includes(variable) ||
              PROVIDER_VARIABLES[name].optional.includes(variable) ||
              // Which secret each label holds, for the next rotation.
              (config.model === "two-secrets" &&
                ["blue", "green"].map(secretIdEnvVar).includes(variable)),
            `${variable} is read for ${name}`,
          );
        }
        await using built = await config.createProvider();
        assert.equal(built.provider.model, config.model);
        const standby = config.credentials.find((c) =>
          c.label === config.standby
        )!;
        const info = await built.provider.inspectClient(standby.clientId);
        assert.equal(info.clientId, standby.clientId);
        if (config.model === "two-secrets") {
          assert.equal(info.secrets?.length, 2);
        }
      } finally {
        await rehearsal.emulator.close();
      }
    });
  }
});

Deno.test("AUTH_PROVIDER unset or genesys reads the GENESYS_* variables as readRotationEnv does", () => {
  const env = {
    GENESYS_ENVIRONMENT: "mypurecloud.ie",
    GENESYS_CLIENT_ID_BLUE: "b",
    GENESYS_CLIENT_SECRET_BLUE: "blue-secret",
    GENESYS_CLIENT_ID_GREEN: "g",
    GENESYS_CLIENT_SECRET_GREEN: "green-secret",
    GENESYS_ACTIVE: "green",
  };
  for (const provider of [undefined, "genesys", "GENESYS"]) {
    const config = readProviderEnv(
      provider === undefined ? env : { ...env, AUTH_PROVIDER: provider },
    );
    assert.equal(config.provider, "genesys");
    assert.equal(config.tokenUrl, "https://login.mypurecloud.ie/oauth/token");
    assert.equal(config.standby, "blue");
    assert.equal(config.activeVariable, "GENESYS_ACTIVE");
    assert.equal(config.admin.label, "green", "the active one administers");
    assert.equal(config.admin.secretVariable, "GENESYS_CLIENT_SECRET_GREEN");
    assert.equal(config.genesys?.apiUrl, "https://api.mypurecloud.ie");
  }
});

Deno.test("presets derive each provider's token URL, scope and parameters from the console's values", () => {
  const labels = (id: string, green = id) => ({
    AUTH_CLIENT_ID_BLUE: id,
    AUTH_CLIENT_SECRET_BLUE: "blue-secret-value",
    AUTH_CLIENT_ID_GREEN: green,
    AUTH_CLIENT_SECRET_GREEN: "green-secret-value",
    AUTH_ACTIVE: "blue",
  });
  const admin = {
    AUTH_ADMIN_CLIENT_ID: "admin-id",
    AUTH_ADMIN_CLIENT_SECRET: "admin-secret",
  };
  const entra = readProviderEnv({
    AUTH_PROVIDER: "entra",
    AUTH_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    AUTH_SCOPE: "api://orders",
    ...labels("app"),
    ...admin,
  });
  assert.equal(
    entra.tokenUrl,
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
  );
  assert.equal(entra.scope, "api://orders/.default");
  assert.equal(entra.admin.scope, "https://graph.microsoft.com/.default");

  const keycloak = readProviderEnv({
    AUTH_PROVIDER: "keycloak",
    AUTH_BASE_URL: "https://sso.example.com",
    AUTH_REALM: "prod",
    ...labels("blue-app", "green-app"),
    ...admin,
  });
  assert.equal(
    keycloak.tokenUrl,
    "https://sso.example.com/realms/prod/protocol/openid-connect/token",
  );
  assert.equal(keycloak.model, "twin-clients", "two clients: no policy needed");

  const cognito = readProviderEnv({
    AUTH_PROVIDER: "cognito",
    AUTH_USER_POOL_DOMAIN: "my-app",
    AUTH_USER_POOL_ID: "eu-west-1_AbCdEf123",
    AUTH_ADMIN_ACCESS_KEY_ID: "AKIAEXAMPLE",
    AUTH_ADMIN_SECRET_ACCESS_KEY: "aws-secret",
    ...labels("app"),
  });
  assert.equal(
    cognito.tokenUrl,
    "https://my-app.auth.eu-west-1.amazoncognito.com/oauth2/token",
    "the region comes from the pool id",
  );

  const auth0 = readProviderEnv({
    AUTH_PROVIDER: "auth0",
    AUTH_DOMAIN: "my-tenant.eu.auth0.com",
    AUTH_AUDIENCE: "https://api.example.com",
    ...labels("blue-app", "green-app"),
    ...admin,
  });
  assert.equal(auth0.tokenUrl, "https://my-tenant.eu.auth0.com/oauth/token");
  assert.deepEqual(auth0.tokenParams, { audience: "https://api.example.com" });
  assert.equal(auth0.credentials[0].authMethod, "client_secret_post");
  assert.deepEqual(auth0.admin.tokenParams, {
    audience: "https://my-tenant.eu.auth0.com/api/v2/",
  });
});

Deno.test("every problem is named by its variable, in one error, and no secret is quoted", () => {
  const problems = problemsOf({
    AUTH_PROVIDER: "okta",
    AUTH_CLIENT_ID_BLUE: "0oa1",
    AUTH_CLIENT_SECRET_BLUE: "secret with space",
    AUTH_CLIENT_ID_GREEN: "0oa2",
    AUTH_CLIENT_SECRET_GREEN: "green-secret-value",
    AUTH_ACTIVE: "purple",
    AUTH_TOKEN_ENDPOINT_AUTH_METHOD: "private_key_jwt",
  });
  assert.deepEqual([...problems.keys()].sort(), [
    "AUTH_ACTIVE",
    "AUTH_ADMIN_TOKEN",
    "AUTH_CLIENT_ID_GREEN",
    "AUTH_CLIENT_SECRET_BLUE",
    "AUTH_DOMAIN",
    "AUTH_SCOPE",
    "AUTH_TOKEN_ENDPOINT_AUTH_METHOD",
  ]);
  assert.match(problems.get("AUTH_CLIENT_ID_GREEN")!, /one client/);
  assert.match(problems.get("AUTH_DOMAIN")!, /or set AUTH_TOKEN_URL/);
  for (const text of problems.values()) {
    assert.doesNotMatch(text, /secret with space|green-secret-value/);
  }

  assert.match(
    problemsOf({ AUTH_PROVIDER: "ping" }).get("AUTH_PROVIDER")!,
    /okta, entra, keycloak, cognito, auth0/,
  );
  const okta = problemsOf({
    AUTH_PROVIDER: "okta",
    AUTH_TOKEN_URL: "http://okta.example/oauth2/default/v1/token",
    AUTH_CLIENT_ID_BLUE: "0oa1",
    AUTH_CLIENT_SECRET_BLUE: "b-secret",
    AUTH_CLIENT_ID_GREEN: "0oa1",
    AUTH_CLIENT_SECRET_GREEN: "g-secret",
    AUTH_ACTIVE: "blue",
    AUTH_ADMIN_TOKEN: "t",
  });
  assert.match(okta.get("AUTH_TOKEN_URL")!, /https/);
  assert.match(okta.get("AUTH_SCOPE")!, /scope/);
  assert.match(okta.get("AUTH_API_URL")!, /AUTH_DOMAIN/);
  assert.match(
    problemsOf({
      AUTH_PROVIDER: "auth0",
      AUTH_DOMAIN: "t.auth0.com",
      AUTH_AUDIENCE: "https://api",
      AUTH_CLIENT_ID_BLUE: "same",
      AUTH_CLIENT_SECRET_BLUE: "b",
      AUTH_CLIENT_ID_GREEN: "same",
      AUTH_CLIENT_SECRET_GREEN: "g",
      AUTH_ACTIVE: "blue",
      AUTH_ADMIN_CLIENT_ID: "a",
      AUTH_ADMIN_CLIENT_SECRET: "s",
    }).get("AUTH_CLIENT_ID_GREEN")!,
    /two applications/,
  );
});

Deno.test("a refused admin secret names AUTH_ADMIN_CLIENT_SECRET, not the value", async () => {
  const rehearsal = await startProviderRehearsal("auth0");
  try {
    const env = Object.fromEntries(rehearsal.settings);
    const config = readProviderEnv({
      ...env,
      AUTH_ADMIN_CLIENT_SECRET: "wrong-admin-secret",
    });
    await using built = await config.createProvider({
      retry: { maxAttempts: 1 },
    });
    const error = await built.provider.inspectClient("green").then(
      () => assert.fail("inspected with a wrong admin secret"),
      (error: unknown) => error,
    );
    const rejected = error instanceof ProviderAdminRejectedError
      ? error
      : (error as { cause?: unknown }).cause;
    assert.ok(rejected instanceof ProviderAdminRejectedError, String(error));
    assert.equal(rejected.variable, "AUTH_ADMIN_CLIENT_SECRET");
    assert.doesNotMatch(String((error as Error).message), /wrong-admin-secret/);
  } finally {
    await rehearsal.emulator.close();
  }
});

Deno.test("the variable list covers every provider's variables and today's GENESYS_* ones", () => {
  for (const name of ["AUTH_PROVIDER", "AUTH_ADMIN_TOKEN", "GENESYS_ACTIVE"]) {
    assert.ok(PROVIDER_ENV_VARS.includes(name), name);
  }
  assert.equal(new Set(PROVIDER_ENV_VARS).size, PROVIDER_ENV_VARS.length);
});

/** Where each provider's example lives: Genesys keeps its .env.example at the root. */
const EXAMPLES = {
  genesys: "../../.env.example",
  okta: "../../examples/env/okta.env.example",
  entra: "../../examples/env/entra.env.example",
  keycloak: "../../examples/env/keycloak.env.example",
  cognito: "../../examples/env/cognito.env.example",
  auth0: "../../examples/env/auth0.env.example",
} as const;

Deno.test("each provider's env example names every variable the reader reads, sets every one it needs, and nothing else", async (t) => {
  for (const [provider, path] of Object.entries(EXAMPLES)) {
    await t.step(provider, async () => {
      const text = await Deno.readTextFile(new URL(path, import.meta.url));
      const set = readEnvValues(text);
      const commented = [...text.matchAll(/^#\s*([A-Z][A-Z0-9_]*)=/gm)].map((
        m,
      ) => m[1]);
      const { required, optional } =
        PROVIDER_VARIABLES[provider as keyof typeof EXAMPLES];
      const known = new Set([...required, ...optional]);
      for (const name of [...Object.keys(set), ...commented]) {
        assert.ok(known.has(name), `${name} is not read for ${provider}`);
      }
      for (const name of required) {
        assert.ok(Object.hasOwn(set, name), `${name} is set`);
      }
      for (const name of optional) {
        if (name === "AUTH_PROVIDER" && provider === "genesys") continue;
        assert.ok(
          Object.hasOwn(set, name) || commented.includes(name),
          `${name} is shown`,
        );
      }
      if (provider === "genesys") return;
      // The values as shipped make a configuration the reader accepts.
      const config = readProviderEnv(set);
      assert.equal(config.provider, provider);
      assert.match(config.tokenUrl, /^https:\/\//);
    });
  }
});

Deno.test("env.ts loads no provider's adapter until createProvider: each is reached only through a dynamic import", async () => {
  const entry = new URL("../../src/providers/env.ts", import.meta.url);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--lock=deno.dev.lock", "--json", entry.pathname],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: {
        code?: { specifier?: string };
        isDynamic?: boolean;
      }[];
    }[];
  };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  // What runs when env.ts is imported: code (not type-only) imports, not dynamic.
  const loaded = new Set<string>();
  const visit = (specifier: string) => {
    if (loaded.has(specifier)) return;
    loaded.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      const target = dependency.code?.specifier;
      if (target !== undefined && !dependency.isDynamic) visit(target);
    }
  };
  visit(entry.href);
  assert.ok(
    [...loaded].some((s) => s.endsWith("providers/presets.ts")),
    "the walk follows static imports",
  );
  const adapters = [
    "providers/okta.ts",
    "providers/entra.ts",
    "providers/keycloak.ts",
    "providers/cognito.ts",
    "providers/sigv4.ts",
    "providers/auth0.ts",
    "genesys/admin_client.ts",
  ];
  for (const adapter of adapters) {
    assert.ok(
      ![...loaded].some((s) => s.endsWith(adapter)),
      `${adapter} is loaded with env.ts`,
    );
    assert.ok(
      graph.modules.some((m) => m.specifier.endsWith(adapter)),
      `${adapter} is in the graph (dynamically)`,
    );
  }
});

Deno.test("the recorded secret ids come from readProviderEnv: two-secret providers only, each label that has one", () => {
  const okta = {
    AUTH_PROVIDER: "okta",
    AUTH_DOMAIN: "dev-123456.okta.com",
    AUTH_SCOPE: "orders.read",
    AUTH_CLIENT_ID_BLUE: "0oa1",
    AUTH_CLIENT_SECRET_BLUE: "first-secret-value",
    AUTH_CLIENT_ID_GREEN: "0oa1",
    AUTH_CLIENT_SECRET_GREEN: "second-secret-value",
    AUTH_ACTIVE: "blue",
    AUTH_ADMIN_TOKEN: "00api-token",
  };
  assert.deepEqual(readProviderEnv(okta).secretIds, {});
  assert.deepEqual(
    readProviderEnv({ ...okta, AUTH_SECRET_ID_GREEN: " ocs2 " }).secretIds,
    { green: "ocs2" },
  );
  // Twin clients record none, whatever the file says.
  const auth0 = readProviderEnv({
    AUTH_PROVIDER: "auth0",
    AUTH_DOMAIN: "tenant.eu.auth0.com",
    AUTH_AUDIENCE: "https://orders.example/",
    AUTH_CLIENT_ID_BLUE: "blue",
    AUTH_CLIENT_SECRET_BLUE: "first-secret-value",
    AUTH_CLIENT_ID_GREEN: "green",
    AUTH_CLIENT_SECRET_GREEN: "second-secret-value",
    AUTH_ACTIVE: "blue",
    AUTH_ADMIN_CLIENT_ID: "admin",
    AUTH_ADMIN_CLIENT_SECRET: "admin-secret-value",
    AUTH_SECRET_ID_BLUE: "stray",
  });
  assert.deepEqual(auth0.secretIds, {});
});
