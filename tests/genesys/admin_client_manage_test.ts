import assert from "node:assert/strict";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import {
  AdminForbiddenError,
  AdminRateLimitedError,
  GenesysErrorCode,
  PlatformApiUnavailableError,
  RoleGrantRefusedError,
} from "../../src/genesys/errors.ts";
import { ConfigError } from "../../src/errors.ts";
import { Secret } from "../../src/secret.ts";
import {
  type EmulatorClient,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { InstantClock, NEVER_FIRES } from "./instant_clock.ts";

const ROLES = [
  { id: "role-api", name: "API caller", permissions: ["routing:queue:view"] },
  {
    id: "role-admin",
    name: "OAuth admin",
    permissions: ["oauth:client:add", "oauth:client:view", "oauth:client:edit"],
  },
];
const ADMIN: EmulatorClient = {
  clientId: "admin-id",
  secret: "admin-secret-CANARY",
  roleDivisions: [
    { roleId: "role-admin", divisionId: "*" },
    { roleId: "role-api", divisionId: "*" },
  ],
};
const EDITOR: EmulatorClient = {
  clientId: "editor-id",
  secret: "editor-secret-CANARY",
  permissions: ["oauth:client:view", "oauth:client:edit"],
};
const ADDER: EmulatorClient = {
  clientId: "adder-id",
  secret: "adder-secret-CANARY",
  permissions: ["oauth:client:add", "oauth:client:view"],
};
const BLUE: EmulatorClient = {
  clientId: "blue-id",
  secret: "blue-secret-CANARY",
  name: "Orders",
  description: "orders service",
  tokenLifetimeSeconds: 3600,
  roleDivisions: [{ roleId: "role-api", divisionId: "home" }],
};

function setup(asClient = ADMIN.clientId, clock = new InstantClock()) {
  const emulator = startGenesysEmulator({
    roles: ROLES,
    clients: [ADMIN, EDITOR, ADDER, BLUE],
  });
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve(emulator.issueToken(asClient)),
    clock,
    random: () => 0.5,
    requestTimeoutMs: NEVER_FIRES,
  });
  return { emulator, admin, clock };
}

async function tokenStatus(
  url: string,
  id: string,
  secret: string,
): Promise<number> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${id}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("admin client: describe, create, set state", async (t) => {
  await t.step(
    "describeClient reads grant type, roles and description",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      assert.deepEqual(await admin.describeClient(BLUE.clientId), {
        id: BLUE.clientId,
        name: "Orders",
        state: "active",
        accessTokenValiditySeconds: 3600,
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleDivisions: [{ roleId: "role-api", divisionId: "home" }],
        description: "orders service",
      });
    },
  );

  await t.step(
    "createClient returns the client and its secret, wrapped",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      const created = await admin.createClient({
        name: "Orders (green)",
        roleDivisions: [{ roleId: "role-api", divisionId: "home" }],
        accessTokenValiditySeconds: 3600,
      });
      assert.ok(created.secret instanceof Secret);
      assert.equal(created.name, "Orders (green)");
      assert.equal(created.state, "active");
      assert.equal(created.authorizedGrantType, "CLIENT-CREDENTIALS");
      assert.deepEqual(created.roleDivisions, [
        { roleId: "role-api", divisionId: "home" },
      ]);
      assert.equal(created.accessTokenValiditySeconds, 3600);
      assert.equal(
        await tokenStatus(
          emulator.tokenUrl,
          created.id,
          created.secret.reveal(),
        ),
        200,
      );
      assert.ok(!JSON.stringify(created).includes(created.secret.reveal()));
    },
  );

  await t.step(
    "missing oauth:client:add: AdminForbiddenError naming it",
    async () => {
      const { emulator, admin } = setup(EDITOR.clientId);
      await using _ = emulator;
      const error = await admin.createClient({ name: "x" }).catch((e) => e);
      assert.ok(error instanceof AdminForbiddenError);
      assert.equal(error.code, GenesysErrorCode.ADMIN_FORBIDDEN);
      assert.equal(error.permission, "oauth:client:add");
      assert.match(error.message, /lacks oauth:client:add.*grant it a role/);
    },
  );

  await t.step(
    "a role the admin does not hold: RoleGrantRefusedError naming the roles",
    async () => {
      const { emulator, admin } = setup(ADDER.clientId);
      await using _ = emulator;
      const before = emulator.clientIds().length;
      const error = await admin.createClient({
        name: "x",
        roleDivisions: [{ roleId: "role-api", divisionId: "home" }],
      }).catch((e) => e);
      assert.ok(error instanceof RoleGrantRefusedError);
      assert.equal(error.code, "GENESYS_ROLE_GRANT_REFUSED");
      assert.equal(error.status, 403);
      assert.equal(error.genesysCode, "oauth.client.role.not.held");
      assert.deepEqual(error.roleDivisions, [
        { roleId: "role-api", divisionId: "home" },
      ]);
      assert.match(error.message, /may grant only roles it holds itself/);
      assert.match(error.message, /role role-api in division home/);
      assert.match(error.message, /role-api \(API caller\)/, "the API's words");
      assert.equal(emulator.clientIds().length, before);
    },
  );

  await t.step(
    "a role refusal as a 400 naming roles is recognised too",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      emulator.injectApiFaults({
        kind: "status",
        status: 400,
        body: JSON.stringify({
          message: "Cannot grant role role-api in division home",
          code: "bad.request",
          status: 400,
        }),
      });
      const error = await admin.createClient({
        name: "x",
        roleDivisions: [{ roleId: "role-api", divisionId: "home" }],
      }).catch((e) => e);
      assert.ok(error instanceof RoleGrantRefusedError, String(error));
    },
  );

  await t.step(
    "create is retried after a 429 only, never after a 5xx",
    async () => {
      const { emulator, admin, clock } = setup();
      await using _ = emulator;
      emulator.injectApiFaults({
        kind: "status",
        status: 429,
        retryAfter: "2",
      });
      const created = await admin.createClient({ name: "after 429" });
      assert.equal(created.name, "after 429");
      assert.deepEqual(clock.waits, [2000]);

      const before = emulator.clientIds().length;
      emulator.injectApiFaults({ kind: "status", status: 503 }, 5);
      const error = await admin.createClient({ name: "after 503" }).catch((e) =>
        e
      );
      assert.ok(error instanceof PlatformApiUnavailableError);
      assert.equal(
        emulator.stats().apiRequests,
        3,
        "one attempt after the 503",
      );
      assert.equal(emulator.clientIds().length, before);
      emulator.clearFaults();

      emulator.injectApiFaults(
        { kind: "status", status: 429, retryAfter: "1" },
        50,
      );
      const limited = await admin.createClient({ name: "z" }).catch((e) => e);
      assert.ok(limited instanceof AdminRateLimitedError);
    },
  );

  await t.step(
    "invalid input is a ConfigError before anything is sent",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      for (
        const bad of [
          { name: "" },
          { name: "x", accessTokenValiditySeconds: 10 },
          { name: "x", roleDivisions: [{ roleId: "r", divisionId: "" }] },
          { name: "x", state: "gone" as "active" },
        ]
      ) {
        const error = await admin.createClient(bad).catch((e) => e);
        assert.ok(error instanceof ConfigError, JSON.stringify(bad));
      }
      assert.equal(emulator.stats().apiRequests, 0);
    },
  );

  await t.step(
    "setClientState disabled: tokens die, none are issued; active again: new ones only",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      const outstanding = emulator.issueToken(BLUE.clientId);
      const me = async (token: string) => {
        const response = await fetch(`${emulator.apiUrl}/api/v2/tokens/me`, {
          headers: { authorization: `Bearer ${token}` },
        });
        await response.body?.cancel();
        return response.status;
      };
      assert.equal(await me(outstanding), 200);
      const disabled = await admin.setClientState(BLUE.clientId, "disabled");
      assert.equal(disabled.state, "disabled");
      assert.equal(await me(outstanding), 401);
      assert.equal(
        await tokenStatus(emulator.tokenUrl, BLUE.clientId, BLUE.secret),
        401,
      );
      const enabled = await admin.setClientState(BLUE.clientId, "active");
      assert.equal(enabled.state, "active");
      // Everything else about the client is kept by the read-modify-write.
      assert.deepEqual(
        { ...enabled, state: "disabled" },
        { ...disabled },
      );
      assert.equal(await me(outstanding), 401);
      assert.equal(
        await tokenStatus(emulator.tokenUrl, BLUE.clientId, BLUE.secret),
        200,
      );
    },
  );

  await t.step(
    "setClientState without oauth:client:edit: forbidden",
    async () => {
      const { emulator, admin } = setup(ADDER.clientId);
      await using _ = emulator;
      const error = await admin.setClientState(BLUE.clientId, "disabled").catch(
        (e) => e,
      );
      assert.ok(error instanceof AdminForbiddenError);
      assert.equal(error.permission, "oauth:client:edit");
      assert.equal(emulator.getClientState(BLUE.clientId), "active");
    },
  );
});

Deno.test("setClientState with oauth:client:edit alone: forbidden on the read, naming oauth:client:view", async () => {
  const emulator = startGenesysEmulator({
    roles: ROLES,
    clients: [BLUE, {
      clientId: "edit-only-id",
      secret: "edit-only-CANARY",
      permissions: ["oauth:client:edit"],
    }],
  });
  await using _ = emulator;
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve(emulator.issueToken("edit-only-id")),
    clock: new InstantClock(),
    requestTimeoutMs: NEVER_FIRES,
  });
  // Genesys's PUT takes the whole client, so it is read first: a real org
  // refuses that read to an admin without oauth:client:view.
  const error = await admin.setClientState(BLUE.clientId, "disabled").catch(
    (e) => e,
  );
  assert.ok(error instanceof AdminForbiddenError);
  assert.equal(error.permission, "oauth:client:view");
  assert.match(error.message, /lacks oauth:client:view/);
  assert.equal(emulator.getClientState(BLUE.clientId), "active");
});
