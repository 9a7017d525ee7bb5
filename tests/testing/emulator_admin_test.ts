import assert from "node:assert/strict";
import {
  type EmulatorClient,
  type EmulatorRole,
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";

const ROLES: EmulatorRole[] = [
  { id: "role-api", name: "API caller", permissions: ["routing:queue:view"] },
  { id: "role-reports", name: "Reports", permissions: ["analytics:*:view"] },
  {
    id: "role-oauth-admin",
    name: "OAuth admin",
    permissions: ["oauth:client:add", "oauth:client:view", "oauth:client:edit"],
  },
];
/** Holds every role it may hand out: the API role in all divisions, reports in one. */
const CREATOR: EmulatorClient = {
  clientId: "creator",
  secret: "creator-secret",
  roleDivisions: [
    { roleId: "role-oauth-admin", divisionId: "*" },
    { roleId: "role-api", divisionId: "*" },
    { roleId: "role-reports", divisionId: "div-a" },
  ],
};
/** May add clients (direct permission) but holds no role. */
const NO_ROLES: EmulatorClient = {
  clientId: "no-roles",
  secret: "no-roles-secret",
  permissions: ["oauth:client:add", "oauth:client:edit", "oauth:client:view"],
};
const VIEWER: EmulatorClient = {
  clientId: "viewer",
  secret: "viewer-secret",
  permissions: ["oauth:client:view"],
};

function start(): GenesysEmulator {
  return startGenesysEmulator({
    roles: ROLES,
    clients: [CREATOR, NO_ROLES, VIEWER],
  });
}

function call(
  emulator: GenesysEmulator,
  method: string,
  path: string,
  bearer: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${emulator.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined
      ? undefined
      : typeof body === "string"
      ? body
      : JSON.stringify(body),
  });
}

async function requestToken(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
): Promise<Response> {
  return await fetch(emulator.tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${id}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
}

async function tokenOf(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
): Promise<string> {
  const response = await requestToken(emulator, id, secret);
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

async function status(response: Promise<Response>): Promise<number> {
  const answered = await response;
  await answered.body?.cancel();
  return answered.status;
}

const TWIN = {
  name: "App (green)",
  authorizedGrantType: "CLIENT-CREDENTIALS",
  roleDivisions: [
    { roleId: "role-api", divisionId: "home" },
    { roleId: "role-reports", divisionId: "div-a" },
  ],
  accessTokenValiditySeconds: 3600,
};

Deno.test("POST /api/v2/oauth/clients", async (t) => {
  await using emulator = start();
  const creator = emulator.issueToken("creator");

  await t.step(
    "creates the client and shows its secret once; GET shows its roles",
    async () => {
      const response = await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients",
        creator,
        { ...TWIN, description: "twin" },
      );
      assert.equal(response.status, 200);
      const created = await response.json();
      assert.match(created.id, /^[0-9a-f-]{36}$/);
      assert.equal(created.name, "App (green)");
      assert.equal(created.description, "twin");
      assert.equal(created.authorizedGrantType, "CLIENT-CREDENTIALS");
      assert.equal(created.accessTokenValiditySeconds, 3600);
      assert.equal(created.state, "active");
      assert.deepEqual(created.roleDivisions, TWIN.roleDivisions);
      assert.equal(typeof created.secret, "string");
      assert.ok(created.secret.length >= 32);
      assert.equal(emulator.getClientSecret(created.id), created.secret);

      const got = await call(
        emulator,
        "GET",
        `/api/v2/oauth/clients/${created.id}`,
        creator,
      );
      const body = await got.json();
      assert.deepEqual(body.roleDivisions, TWIN.roleDivisions);
      assert.equal("secret" in body, false);

      const token = await requestToken(emulator, created.id, created.secret);
      assert.equal(token.status, 200);
      assert.equal((await token.json()).expires_in, 3600);
    },
  );

  await t.step(
    "the new client's tokens carry its roles' permissions",
    async () => {
      const id = emulator.clientIds().at(-1)!;
      // role-api grants no oauth permission: the twin cannot read clients.
      const twin = emulator.issueToken(id);
      assert.equal(
        await status(
          call(emulator, "GET", `/api/v2/oauth/clients/${id}`, twin),
        ),
        403,
      );
      // A client holding the OAuth admin role through roleDivisions can.
      assert.equal(
        await status(
          call(emulator, "GET", `/api/v2/oauth/clients/${id}`, creator),
        ),
        200,
      );
    },
  );

  await t.step("defaults: 86400 s, active, no roles", async () => {
    const response = await call(
      emulator,
      "POST",
      "/api/v2/oauth/clients",
      creator,
      { name: "plain", authorizedGrantType: "CLIENT-CREDENTIALS" },
    );
    const created = await response.json();
    assert.equal(created.accessTokenValiditySeconds, 86400);
    assert.equal(created.state, "active");
    assert.deepEqual(created.roleDivisions, []);
  });

  await t.step(
    "missing oauth:client:add: 403 missing.any.permissions",
    async () => {
      const count = emulator.clientIds().length;
      const response = await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients",
        emulator.issueToken("viewer"),
        TWIN,
      );
      assert.equal(response.status, 403);
      const body = await response.json();
      assert.equal(body.code, "missing.any.permissions");
      assert.match(body.message, /oauth:client:add/);
      assert.equal(emulator.clientIds().length, count, "nothing created");
    },
  );

  await t.step(
    "role-subset rule: a role the caller does not hold is refused, naming it",
    async () => {
      const count = emulator.clientIds().length;
      const response = await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients",
        emulator.issueToken("no-roles"),
        TWIN,
      );
      assert.equal(response.status, 403);
      const body = await response.json();
      assert.equal(body.code, "oauth.client.role.not.held");
      assert.match(body.message, /role-api \(API caller\) in division home/);
      assert.match(body.message, /role-reports \(Reports\) in division div-a/);
      assert.equal(emulator.clientIds().length, count, "nothing created");
    },
  );

  await t.step(
    "a role held in one division cannot be granted in another or in all",
    async () => {
      for (const divisionId of ["div-b", "*"]) {
        const response = await call(
          emulator,
          "POST",
          "/api/v2/oauth/clients",
          creator,
          {
            ...TWIN,
            roleDivisions: [{ roleId: "role-reports", divisionId }],
          },
        );
        assert.equal(response.status, 403, divisionId);
        assert.equal(
          (await response.json()).code,
          "oauth.client.role.not.held",
        );
      }
    },
  );

  await t.step("invalid bodies: 400 bad.request", async () => {
    const bodies: unknown[] = [
      "not json",
      [],
      { authorizedGrantType: "CLIENT-CREDENTIALS" },
      { name: "x" },
      { name: "x", authorizedGrantType: "CODE" },
      { name: "x", authorizedGrantType: "CLIENT-CREDENTIALS", roleIds: ["a"] },
      {
        name: "x",
        authorizedGrantType: "CLIENT-CREDENTIALS",
        accessTokenValiditySeconds: 299,
      },
      {
        name: "x",
        authorizedGrantType: "CLIENT-CREDENTIALS",
        accessTokenValiditySeconds: 172801,
      },
      { name: "x", authorizedGrantType: "CLIENT-CREDENTIALS", state: "gone" },
      {
        name: "x",
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleDivisions: [{ roleId: "role-api" }],
      },
      {
        name: "x",
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleDivisions: [{ roleId: "no-such-role", divisionId: "*" }],
      },
    ];
    for (const body of bodies) {
      const response = await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients",
        creator,
        body,
      );
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal((await response.json()).code, "bad.request");
    }
  });
});

Deno.test("PUT /api/v2/oauth/clients/{id}: state changes", async (t) => {
  await using emulator = start();
  const creator = emulator.issueToken("creator");
  const response = await call(
    emulator,
    "POST",
    "/api/v2/oauth/clients",
    creator,
    TWIN,
  );
  const { id, secret } = await response.json();
  const put = (state: string, bearer = creator) =>
    call(emulator, "PUT", `/api/v2/oauth/clients/${id}`, bearer, {
      ...TWIN,
      state,
    });
  const me = (token: string) =>
    status(call(emulator, "GET", "/api/v2/tokens/me", token));

  for (const state of ["disabled", "inactive"]) {
    await t.step(
      `${state}: outstanding tokens rejected (401), new ones refused; re-enabled: new tokens only`,
      async () => {
        const before = await tokenOf(emulator, id, secret);
        assert.equal(await me(before), 200);
        const answered = await put(state);
        assert.equal(answered.status, 200);
        assert.equal((await answered.json()).state, state);
        assert.equal(emulator.getClientState(id), state);
        assert.equal(await me(before), 401);
        const refused = await requestToken(emulator, id, secret);
        assert.equal(refused.status, 401);
        assert.equal((await refused.json()).error, "invalid_client");

        assert.equal(await status(put("active")), 200);
        assert.equal(await me(before), 401, "old tokens stay dead");
        const after = await tokenOf(emulator, id, secret);
        assert.equal(await me(after), 200);
      },
    );
  }

  await t.step(
    "regenerate while disabled, then re-enable: only the new secret works",
    async () => {
      assert.equal(await status(put("disabled")), 200);
      const regenerated = await call(
        emulator,
        "POST",
        `/api/v2/oauth/clients/${id}/secret`,
        creator,
      );
      const fresh = (await regenerated.json()).secret;
      assert.equal(await status(requestToken(emulator, id, fresh)), 401);
      assert.equal(await status(put("active")), 200);
      assert.equal(await status(requestToken(emulator, id, secret)), 401);
      assert.equal(await me(await tokenOf(emulator, id, fresh)), 200);
    },
  );

  await t.step("GET shows roleDivisions after a PUT", async () => {
    const got = await call(
      emulator,
      "GET",
      `/api/v2/oauth/clients/${id}`,
      creator,
    );
    const body = await got.json();
    assert.deepEqual(body.roleDivisions, TWIN.roleDivisions);
    assert.equal(body.state, "active");
  });

  await t.step("PUT needs oauth:client:edit; unknown id: 404", async () => {
    assert.equal(
      await status(put("disabled", emulator.issueToken("viewer"))),
      403,
    );
    assert.equal(emulator.getClientState(id), "active");
    assert.equal(
      await status(
        call(emulator, "PUT", "/api/v2/oauth/clients/zzz", creator, TWIN),
      ),
      404,
    );
  });

  await t.step(
    "PUT may keep roles the caller does not hold, not add them",
    async () => {
      const noRoles = emulator.issueToken("no-roles");
      assert.equal(await status(put("active", noRoles)), 200);
      const added = await call(
        emulator,
        "PUT",
        `/api/v2/oauth/clients/${id}`,
        noRoles,
        {
          ...TWIN,
          roleDivisions: [...TWIN.roleDivisions, {
            roleId: "role-api",
            divisionId: "*",
          }],
        },
      );
      assert.equal(added.status, 403);
      assert.equal((await added.json()).code, "oauth.client.role.not.held");
    },
  );

  await t.step(
    "other methods on a client: 405 naming GET, PUT, DELETE",
    async () => {
      const response = await call(
        emulator,
        "PATCH",
        `/api/v2/oauth/clients/${id}`,
        creator,
      );
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "GET, PUT, DELETE");
      await response.body?.cancel();
    },
  );
});

Deno.test("setClientState: tokens survive inactive unless asked; disabled revokes", async () => {
  await using emulator = start();
  const viewer = await tokenOf(emulator, "viewer", "viewer-secret");
  const me = (token: string) =>
    status(call(emulator, "GET", "/api/v2/tokens/me", token));
  emulator.setClientState("viewer", "inactive");
  assert.equal(await me(viewer), 200);
  assert.equal(
    await status(requestToken(emulator, "viewer", "viewer-secret")),
    401,
  );
  emulator.setClientState("viewer", "inactive", { revokeTokens: true });
  assert.equal(await me(viewer), 401);
  emulator.setClientState("viewer", "active");
  const second = await tokenOf(emulator, "viewer", "viewer-secret");
  emulator.setClientState("viewer", "disabled");
  assert.equal(await me(second), 401);
  assert.throws(
    () =>
      emulator.addClient({
        clientId: "x",
        secret: "s",
        roleDivisions: [{ roleId: "nope", divisionId: "*" }],
      }),
    /role nope/,
  );
});

Deno.test("roleIds (deprecated) is still accepted", async (t) => {
  await using emulator = startGenesysEmulator({
    roles: ROLES,
    clients: [CREATOR],
    homeDivisionId: "home-div",
  });
  const creator = emulator.issueToken("creator");
  let id = "";

  await t.step("create: each role lands in the home division", async () => {
    const response = await call(
      emulator,
      "POST",
      "/api/v2/oauth/clients",
      creator,
      {
        name: "legacy",
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleIds: ["role-api", "role-api"],
      },
    );
    assert.equal(response.status, 200);
    const body = await response.json();
    id = body.id;
    assert.deepEqual(body.roleDivisions, [
      { roleId: "role-api", divisionId: "home-div" },
    ]);
    assert.deepEqual(body.roleIds, ["role-api"]);
  });

  await t.step(
    "a GET written back with both fields grants nothing new",
    async () => {
      const got = await (await call(
        emulator,
        "GET",
        `/api/v2/oauth/clients/${id}`,
        creator,
      )).json();
      const put = await call(
        emulator,
        "PUT",
        `/api/v2/oauth/clients/${id}`,
        creator,
        {
          name: got.name,
          authorizedGrantType: got.authorizedGrantType,
          roleIds: got.roleIds,
          roleDivisions: got.roleDivisions,
          state: "active",
        },
      );
      assert.equal(put.status, 200);
      assert.deepEqual((await put.json()).roleDivisions, [
        { roleId: "role-api", divisionId: "home-div" },
      ]);
    },
  );

  await t.step("roleIds still obey the role-subset rule", async () => {
    const response = await call(
      emulator,
      "POST",
      "/api/v2/oauth/clients",
      creator,
      {
        name: "too much",
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleIds: ["role-reports"],
      },
    );
    assert.equal(response.status, 403);
    assert.match((await response.json()).message, /role-reports/);
  });

  await t.step("a roleIds that is not a list of ids: 400", async () => {
    for (const roleIds of ["role-api", [""], [42]]) {
      const response = await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients",
        creator,
        { name: "x", authorizedGrantType: "CLIENT-CREDENTIALS", roleIds },
      );
      assert.equal(response.status, 400, JSON.stringify(roleIds));
      assert.equal((await response.json()).code, "bad.request");
    }
  });
});

Deno.test("DELETE /api/v2/oauth/clients/{id}", async (t) => {
  await using emulator = startGenesysEmulator({
    roles: ROLES,
    clients: [
      CREATOR,
      VIEWER,
      {
        clientId: "deleter",
        secret: "deleter-secret",
        permissions: ["oauth:client:delete"],
      },
    ],
  });
  const viewerToken = await tokenOf(emulator, "viewer", "viewer-secret");

  await t.step("without oauth:client:delete: 403 naming it", async () => {
    const response = await call(
      emulator,
      "DELETE",
      "/api/v2/oauth/clients/viewer",
      emulator.issueToken("creator"),
    );
    assert.equal(response.status, 403);
    const body = await response.json();
    assert.equal(body.code, "missing.any.permissions");
    assert.match(body.message, /\[oauth:client:delete\]/);
    assert.deepEqual(emulator.clientIds(), ["creator", "viewer", "deleter"]);
  });

  await t.step(
    "204; the client, its tokens and its secret are gone",
    async () => {
      const deleter = emulator.issueToken("deleter");
      assert.equal(
        await status(
          call(emulator, "DELETE", "/api/v2/oauth/clients/viewer", deleter),
        ),
        204,
      );
      assert.deepEqual(emulator.clientIds(), ["creator", "deleter"]);
      assert.equal(
        await status(call(emulator, "GET", "/api/v2/tokens/me", viewerToken)),
        401,
      );
      assert.equal(
        await status(requestToken(emulator, "viewer", "viewer-secret")),
        401,
      );
      const again = await call(
        emulator,
        "DELETE",
        "/api/v2/oauth/clients/viewer",
        deleter,
      );
      assert.equal(again.status, 404);
      assert.equal((await again.json()).code, "not.found");
    },
  );
});
