/**
 * Drives the emulator with Genesys's official JavaScript SDK
 * (`purecloud-platform-client-v2`) for every call the project or its users
 * make, and checks each answer against the SDK's own models, read from the
 * package's `index.d.ts`: every required field present, every field declared
 * and of the declared type.
 */
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- a test-only package, kept out of deno.lock (see deno.dev.lock)
import platformClient from "npm:purecloud-platform-client-v2@262.0.0";
import {
  type EmulatorClient,
  type EmulatorRole,
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";

const SDK = "npm:purecloud-platform-client-v2@262.0.0";
const SDK_TYPES = await Deno.readTextFile(
  new URL("../../index.d.ts", import.meta.resolve(SDK)),
);

interface Field {
  readonly required: boolean;
  readonly type: string;
}

/** The fields of `Models.<name>` as the SDK declares them. */
function modelFields(name: string): Map<string, Field> {
  const block = SDK_TYPES.match(
    new RegExp(`\\n\\texport interface ${name} \\{([\\s\\S]*?)\\n\\t\\}`),
  );
  assert.ok(block, `the SDK declares no model ${name}`);
  const fields = new Map<string, Field>();
  for (const line of block[1].split("\n")) {
    const field = line.match(/^\s*"([^"]+)"(\?)?: (.+);\s*$/);
    if (field) {
      fields.set(field[1], { required: field[2] !== "?", type: field[3] });
    }
  }
  return fields;
}

/** What in `value` differs from `Models.<model>`, as readable paths. */
function problems(value: unknown, model: string, path = model): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [`${path}: expected an object (${model})`];
  }
  const record = value as Record<string, unknown>;
  const fields = modelFields(model);
  const found: string[] = [];
  for (const [name, field] of fields) {
    if (field.required && record[name] === undefined) {
      found.push(`${path}.${name}: required by ${model}, missing`);
    }
  }
  for (const [name, fieldValue] of Object.entries(record)) {
    const field = fields.get(name);
    if (!field) {
      found.push(`${path}.${name}: not declared in ${model}`);
    } else {
      found.push(...typeProblems(fieldValue, field.type, `${path}.${name}`));
    }
  }
  return found;
}

function typeProblems(value: unknown, type: string, path: string): string[] {
  const array = type.match(/^Array<(.+)>$/);
  if (array) {
    return Array.isArray(value)
      ? value.flatMap((item, i) =>
        typeProblems(item, array[1], `${path}[${i}]`)
      )
      : [`${path}: expected an array`];
  }
  const model = type.match(/^Models\.(\w+)$/);
  if (model) return problems(value, model[1], path);
  if (type === "string" || type === "number" || type === "boolean") {
    const actual: string = typeof value;
    return actual === type ? [] : [`${path}: expected a ${type}`];
  }
  return typeof value === "object" && value !== null
    ? []
    : [`${path}: expected ${type}`];
}

function assertModel(value: unknown, model: string): void {
  assert.deepEqual(problems(value, model), [], JSON.stringify(value));
}

const ROLES: EmulatorRole[] = [
  { id: "role-app", name: "App", permissions: ["routing:queue:view"] },
  {
    id: "role-oauth-admin",
    name: "OAuth admin",
    permissions: [
      "oauth:client:view",
      "oauth:client:add",
      "oauth:client:edit",
      "oauth:client:delete",
    ],
  },
];
const BLUE: EmulatorClient = {
  clientId: "blue-id",
  secret: "blue-secret",
  name: "App (blue)",
  tokenLifetimeSeconds: 3600,
  roleDivisions: [{ roleId: "role-app", divisionId: "*" }],
};
const ADMIN: EmulatorClient = {
  clientId: "admin-id",
  secret: "admin-secret",
  name: "Rotation admin",
  roleDivisions: [
    { roleId: "role-oauth-admin", divisionId: "*" },
    { roleId: "role-app", divisionId: "*" },
  ],
};

type SdkClient = InstanceType<typeof platformClient.ApiClientClass>;

/** An SDK client of its own (not the shared singleton) aimed at the emulator. */
function sdkClient(emulator: GenesysEmulator, extended = false): SdkClient {
  const client = new platformClient.ApiClientClass();
  const url = new URL(emulator.url);
  // The SDK's own way to reach something other than login./api.<region>.
  client.setGateway({
    host: url.hostname,
    protocol: "http",
    port: Number(url.port),
  });
  client.setReturnExtendedResponses(extended);
  return client;
}

async function login(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
  extended = false,
): Promise<SdkClient> {
  const client = sdkClient(emulator, extended);
  await client.loginClientCredentialsGrant(id, secret);
  return client;
}

/** What the SDK rejects with for an API error: the error body itself. */
async function apiError(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded");
}

/** What the SDK's login rejects with: an HTTP client error with `response`. */
async function loginError(
  call: Promise<unknown>,
): Promise<{ status: number; data: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    const response = (error as {
      response?: { status: number; data: Record<string, unknown> };
    }).response;
    assert.ok(response, String(error));
    return response;
  }
  assert.fail("the login succeeded");
}

Deno.test("official SDK: login and tokens/me", async (t) => {
  await using emulator = startGenesysEmulator({
    roles: ROLES,
    clients: [BLUE, ADMIN],
    organization: { id: "org-sdk", name: "SDK org" },
  });
  await emulator.ready;

  await t.step("loginClientCredentialsGrant reads expires_in", async () => {
    const client = sdkClient(emulator);
    const before = Date.now();
    const auth = await client.loginClientCredentialsGrant(
      "blue-id",
      "blue-secret",
    );
    assert.equal(typeof auth.accessToken, "string");
    assert.ok(auth.tokenExpiryTime >= before + 3600_000);
    assert.ok(auth.tokenExpiryTime <= Date.now() + 3600_000);
  });

  await t.step("a wrong secret: invalid_client", async () => {
    const { status, data } = await loginError(
      sdkClient(emulator).loginClientCredentialsGrant("blue-id", "wrong"),
    );
    assert.ok(status === 400 || status === 401, String(status));
    assert.equal(data.error, "invalid_client");
  });

  await t.step(
    "getTokensMe: a TokenInfo with a whole OrgOAuthClient",
    async () => {
      const client = await login(emulator, "blue-id", "blue-secret");
      const me = await new platformClient.TokensApi(client).getTokensMe();
      assertModel(me, "TokenInfo");
      assert.equal(me.OAuthClient?.id, "blue-id");
      assert.equal(me.OAuthClient?.name, "App (blue)");
      assert.equal(me.OAuthClient?.authorizedGrantType, "CLIENT-CREDENTIALS");
      assert.equal(me.OAuthClient?.state, "active");
      assert.deepEqual(me.OAuthClient?.roleDivisions, BLUE.roleDivisions);
      assert.deepEqual(me.organization, { id: "org-sdk", name: "SDK org" });
    },
  );

  await t.step("headTokensMe, then deleteTokensMe revokes", async () => {
    const client = await login(emulator, "blue-id", "blue-secret", true);
    const tokens = new platformClient.TokensApi(client);
    const head = await tokens.headTokensMe() as unknown as { status: number };
    assert.equal(head.status, 200);
    const deleted = await tokens.deleteTokensMe() as unknown as {
      status: number;
    };
    assert.equal(deleted.status, 204);
    const after = await apiError(tokens.getTokensMe()) as {
      status: number;
      body: unknown;
    };
    assert.equal(after.status, 401);
    assertModel(after.body, "ErrorBody");
  });
});

Deno.test("official SDK: the OAuth client calls of setup, rotate and incident", async (t) => {
  await using emulator = startGenesysEmulator({
    roles: ROLES,
    clients: [BLUE, ADMIN],
  });
  await emulator.ready;
  const admin = new platformClient.OAuthApi(
    await login(emulator, "admin-id", "admin-secret"),
  );
  let greenId = "";
  let greenSecret = "";

  await t.step("getOauthClients: an OAuthClientEntityListing", async () => {
    const listing = await admin.getOauthClients();
    assertModel(listing, "OAuthClientEntityListing");
    assert.deepEqual(listing.entities?.map((c) => c.id), [
      "blue-id",
      "admin-id",
    ]);
    assert.equal(listing.total, 2);
    assert.equal(listing.pageNumber, 1);
    assert.equal(listing.pageCount, 1);
    assert.equal(listing.pageSize, 2);
  });

  await t.step(
    "getOauthClient: an OAuthClient without its secret",
    async () => {
      const blue = await admin.getOauthClient("blue-id");
      assertModel(blue, "OAuthClient");
      assert.equal(blue.secret, undefined);
      assert.equal(blue.accessTokenValiditySeconds, 3600);
    },
  );

  await t.step("postOauthClients: the twin, copied from blue", async () => {
    const blue = await admin.getOauthClient("blue-id");
    const green = await admin.postOauthClients({
      name: "App (green)",
      authorizedGrantType: blue.authorizedGrantType,
      roleDivisions: blue.roleDivisions,
      accessTokenValiditySeconds: blue.accessTokenValiditySeconds,
      state: "active",
    });
    assertModel(green, "OAuthClient");
    assert.equal(typeof green.id, "string");
    assert.equal(typeof green.secret, "string");
    assert.deepEqual(green.roleDivisions, blue.roleDivisions);
    greenId = green.id!;
    greenSecret = green.secret!;
    const me = await new platformClient.TokensApi(
      await login(emulator, greenId, greenSecret),
    ).getTokensMe();
    assert.equal(me.OAuthClient?.id, greenId);
  });

  await t.step("postOauthClients with the deprecated roleIds", async () => {
    const legacy = await admin.postOauthClients({
      name: "legacy",
      authorizedGrantType: "CLIENT-CREDENTIALS",
      roleIds: ["role-app"],
    });
    assertModel(legacy, "OAuthClient");
    assert.deepEqual(legacy.roleIds, ["role-app"]);
    assert.equal(legacy.roleDivisions?.length, 1);
    assert.equal(legacy.roleDivisions?.[0].roleId, "role-app");
  });

  await t.step(
    "postOauthClientSecret: the new secret, the old one dead",
    async () => {
      const regenerated = await admin.postOauthClientSecret(greenId);
      assertModel(regenerated, "OAuthClient");
      assert.equal(typeof regenerated.secret, "string");
      assert.notEqual(regenerated.secret, greenSecret);
      const { data } = await loginError(
        sdkClient(emulator).loginClientCredentialsGrant(greenId, greenSecret),
      );
      assert.equal(data.error, "invalid_client");
      greenSecret = regenerated.secret!;
      await login(emulator, greenId, greenSecret);
    },
  );

  await t.step(
    "putOauthClient (GET, change state, PUT): disabled kills tokens",
    async () => {
      const greenApp = await login(emulator, greenId, greenSecret, true);
      const current = await admin.getOauthClient(greenId);
      const updated = await admin.putOauthClient(greenId, {
        name: current.name,
        authorizedGrantType: current.authorizedGrantType,
        roleDivisions: current.roleDivisions,
        accessTokenValiditySeconds: current.accessTokenValiditySeconds,
        state: "disabled",
      });
      assertModel(updated, "OAuthClient");
      assert.equal(updated.state, "disabled");
      const refused = await apiError(
        new platformClient.TokensApi(greenApp).getTokensMe(),
      ) as { status: number };
      assert.equal(refused.status, 401);
      const { data } = await loginError(
        sdkClient(emulator).loginClientCredentialsGrant(greenId, greenSecret),
      );
      assert.equal(data.error, "invalid_client");
    },
  );

  await t.step("deleteOauthClient: 204, then 404", async () => {
    const extended = new platformClient.OAuthApi(
      await login(emulator, "admin-id", "admin-secret", true),
    );
    const deleted = await extended.deleteOauthClient(greenId) as unknown as {
      status: number;
    };
    assert.equal(deleted.status, 204);
    const gone = await apiError(admin.getOauthClient(greenId));
    assertModel(gone, "ErrorBody");
    assert.equal((gone as { status: number }).status, 404);
  });

  await t.step("a missing permission: 403 ErrorBody naming it", async () => {
    const blueApi = new platformClient.OAuthApi(
      await login(emulator, "blue-id", "blue-secret"),
    );
    for (
      const [call, permission] of [
        [blueApi.getOauthClient("blue-id"), "oauth:client:view"],
        [blueApi.postOauthClientSecret("blue-id"), "oauth:client:edit"],
        [blueApi.deleteOauthClient("blue-id"), "oauth:client:delete"],
      ] as const
    ) {
      const error = await apiError(call);
      assertModel(error, "ErrorBody");
      const body = error as { status: number; message: string };
      assert.equal(body.status, 403);
      assert.ok(body.message.includes(permission), body.message);
    }
  });
});

Deno.test("official SDK: usage query and summary", async (t) => {
  const clock = new FakeClock(Date.UTC(2026, 2, 3, 12));
  await using emulator = startGenesysEmulator({
    clock,
    roles: ROLES,
    clients: [
      { ...BLUE, tokenLifetimeSeconds: 7 * 86_400 },
      { ...ADMIN, tokenLifetimeSeconds: 7 * 86_400 },
    ],
  });
  await emulator.ready;
  const blue = await login(emulator, "blue-id", "blue-secret");
  for (let i = 0; i < 4; i++) {
    await new platformClient.TokensApi(blue).getTokensMe();
  }
  await clock.advance(86_400_000);
  const admin = new platformClient.OAuthApi(
    await login(emulator, "admin-id", "admin-secret"),
  );

  /** Polls an execution as the SDK's docs say to, until it completes. */
  async function results(executionId: string) {
    for (let poll = 0; poll < 5; poll++) {
      const result = await admin.getOauthClientUsageQueryResult(
        executionId,
        "blue-id",
      );
      assertModel(result, "ApiUsageQueryResult");
      if (result.queryStatus === "Complete") return result.results ?? [];
    }
    assert.fail("the usage query never completed");
  }

  await t.step("postOauthClientUsageQuery, then the results", async () => {
    const execution = await admin.postOauthClientUsageQuery("blue-id", {
      interval: "2026-03-01T00:00:00Z/2026-03-05T00:00:00Z",
      granularity: "Day",
      metrics: ["Requests", "Status200"],
      groupBy: ["TemplateUri", "HttpMethod"],
    });
    assertModel(execution, "UsageExecutionResult");
    assert.equal(typeof execution.executionId, "string");
    assert.deepEqual(await results(execution.executionId!), [{
      templateUri: "api/v2/tokens/me",
      httpMethod: "GET",
      date: "2026-03-03T00:00:00.000Z",
      requests: 4,
      status200: 4,
    }]);
  });

  await t.step("getOauthClientUsageSummary, then the results", async () => {
    const execution = await admin.getOauthClientUsageSummary("blue-id", {
      days: "7",
    });
    assertModel(execution, "UsageExecutionResult");
    const rows = await results(execution.executionId!);
    assert.equal(rows.length, 1);
    assertModel(rows[0], "ApiUsageRow");
    assert.equal(rows[0].requests, 4);
  });
});

Deno.test("official SDK: the limits", async (t) => {
  const clock = new FakeClock(Date.UTC(2026, 2, 3, 12));
  await using emulator = startGenesysEmulator({
    clock,
    clients: [BLUE],
    roles: ROLES,
    apiRateLimitPerMinute: 2,
    tokenRateLimitPerMinute: 2,
  });
  await emulator.ready;

  await t.step("per token: 429 ErrorBody with Retry-After", async () => {
    const client = await login(emulator, "blue-id", "blue-secret", true);
    const tokens = new platformClient.TokensApi(client);
    await tokens.getTokensMe();
    await tokens.getTokensMe();
    const limited = await apiError(tokens.getTokensMe()) as {
      status: number;
      headers: Record<string, string>;
      body: unknown;
    };
    assert.equal(limited.status, 429);
    assert.equal(limited.headers["retry-after"], "60");
    assertModel(limited.body, "ErrorBody");
    assert.equal(
      (limited.body as { code: string }).code,
      "too.many.requests.retry.after",
    );
  });

  await t.step(
    "token creation: 400 invalid_request, rate limit exceeded;",
    async () => {
      await login(emulator, "blue-id", "blue-secret");
      const { status, data } = await loginError(
        sdkClient(emulator).loginClientCredentialsGrant(
          "blue-id",
          "blue-secret",
        ),
      );
      assert.equal(status, 400);
      assert.equal(data.error, "invalid_request");
      assert.match(String(data.error_description), /^rate limit exceeded;/);
      await clock.advance(60_000);
      await login(emulator, "blue-id", "blue-secret");
    },
  );
});
