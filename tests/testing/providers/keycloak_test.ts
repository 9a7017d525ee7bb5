import assert from "node:assert/strict";
import { createDualSecretAuth } from "@rotating/dual-secret-auth";
import {
  FakeClock,
  type KeycloakEmulatorOptions,
  startKeycloakEmulator,
} from "@rotating/dual-secret-auth/testing";
import { basic, call, postForm } from "./support.ts";

const SECRET = "service-secret-0001";
const GRANT = { grant_type: "client_credentials" };

function start(options: KeycloakEmulatorOptions = {}) {
  return startKeycloakEmulator({
    clients: [
      { clientId: "service", secret: SECRET },
      {
        clientId: "admin",
        secret: "admin-secret",
        realmManagementRoles: ["manage-clients", "view-realm"],
      },
      {
        clientId: "viewer",
        secret: "viewer-secret",
        realmManagementRoles: ["view-clients"],
      },
      { clientId: "frontend", secret: "x", serviceAccountsEnabled: false },
    ],
    ...options,
  });
}

async function adminToken(
  keycloak: ReturnType<typeof start>,
  id = "admin",
  secret = "admin-secret",
): Promise<string> {
  const response = await postForm(keycloak.tokenUrl, GRANT, basic(id, secret));
  assert.equal(response.status, 200);
  return `Bearer ${(await response.json()).access_token}`;
}

Deno.test("Keycloak token endpoint: bodies and status codes", async (t) => {
  await using keycloak = start();

  await t.step("realm URL", () => {
    assert.equal(
      keycloak.tokenUrl,
      `${keycloak.url}/realms/emulator/protocol/openid-connect/token`,
    );
  });

  await t.step("client_secret_basic success, scope optional", async () => {
    const response = await postForm(
      keycloak.tokenUrl,
      GRANT,
      basic("service", SECRET),
    );
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 300);
    assert.equal(body.refresh_expires_in, 0);
    assert.equal(typeof body.scope, "string");
  });

  await t.step("client_secret_post success", async () => {
    const response = await postForm(keycloak.tokenUrl, {
      ...GRANT,
      client_id: "service",
      client_secret: SECRET,
      scope: "orders",
    });
    assert.equal(response.status, 200);
    assert.match((await response.json()).scope, /\borders\b/);
  });

  await t.step("form-encoded Basic credentials (RFC 6749 §2.3.1)", async () => {
    await using special = startKeycloakEmulator({
      clients: [{ clientId: "svc:1", secret: "p@ss word+/=" }],
    });
    const response = await postForm(
      special.tokenUrl,
      GRANT,
      basic("svc:1", "p@ss word+/="),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  await t.step("wrong secret: 401 unauthorized_client", async () => {
    const response = await postForm(
      keycloak.tokenUrl,
      GRANT,
      basic("service", "wrong"),
    );
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), {
      error: "unauthorized_client",
      error_description: "Invalid client or Invalid client credentials",
    });
  });

  await t.step("unknown client: 401 invalid_client", async () => {
    const response = await postForm(
      keycloak.tokenUrl,
      GRANT,
      basic("nobody", SECRET),
    );
    assert.equal(response.status, 401);
    assert.equal((await response.json()).error, "invalid_client");
  });

  await t.step("no service account: 401 unauthorized_client", async () => {
    const response = await postForm(
      keycloak.tokenUrl,
      GRANT,
      basic("frontend", "x"),
    );
    assert.equal(response.status, 401);
    assert.equal((await response.json()).error, "unauthorized_client");
  });

  await t.step("unknown realm: 404", async () => {
    const response = await postForm(
      `${keycloak.url}/realms/other/protocol/openid-connect/token`,
      GRANT,
      basic("service", SECRET),
    );
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });
});

Deno.test("Keycloak without the rotation policy: regenerating kills the old secret at once", async () => {
  await using keycloak = start();
  const admin = await adminToken(keycloak);
  const client = `${keycloak.apiUrl}/clients/${keycloak.uuidOf("service")}`;
  const { status, body } = await call(`${client}/client-secret`, admin, "POST");
  assert.equal(status, 200);
  const fresh = body as { type: string; value: string };
  assert.equal(fresh.type, "secret");
  const old = await postForm(
    keycloak.tokenUrl,
    GRANT,
    basic("service", SECRET),
  );
  assert.equal(old.status, 401);
  assert.equal((await old.json()).error, "unauthorized_client");
  const rotated = await call(`${client}/client-secret/rotated`, admin);
  assert.equal(rotated.status, 404);
  assert.deepEqual(rotated.body, {
    error: "Client does not have a rotated secret",
  });
  const stats = keycloak.stats();
  assert.equal(stats.secretsCreated, 1);
  assert.equal(stats.secretsRevoked, 1, "the old secret died at once");
  const policies = await call(
    `${keycloak.apiUrl}/client-policies/policies`,
    admin,
  );
  assert.deepEqual(policies.body, { policies: [] });
  const works = await postForm(
    keycloak.tokenUrl,
    GRANT,
    basic("service", fresh.value),
  );
  assert.equal(works.status, 200);
  await works.body?.cancel();
});

Deno.test("Keycloak with the rotation policy: main + rotated, expirations, delete rotated", async (t) => {
  const clock = new FakeClock();
  await using keycloak = start({
    clock,
    secretRotation: {
      expirationPeriodSeconds: 3_600,
      rotatedExpirationPeriodSeconds: 600,
    },
  });
  let admin = await adminToken(keycloak);
  const client = `${keycloak.apiUrl}/clients/${keycloak.uuidOf("service")}`;
  let fresh = "";

  await t.step("the policy is visible to view-realm", async () => {
    const { body } = await call(
      `${keycloak.apiUrl}/client-policies/profiles`,
      admin,
    );
    const [profile] = (body as { profiles: { executors: unknown[] }[] })
      .profiles;
    assert.deepEqual(profile.executors, [{
      executor: "secret-rotation",
      configuration: {
        "expiration-period": "3600",
        "rotated-expiration-period": "600",
        "remaining-rotation-period": "864000",
      },
    }]);
  });

  await t.step("find by clientId, then read the secret", async () => {
    const found = await call(
      `${keycloak.apiUrl}/clients?clientId=service`,
      admin,
    );
    const [representation] = found.body as Record<string, unknown>[];
    assert.equal(representation.id, keycloak.uuidOf("service"));
    const attributes = representation.attributes as Record<string, string>;
    assert.equal(
      Number(attributes["client.secret.expiration.time"]) -
        Number(attributes["client.secret.creation.time"]),
      3_600,
    );
    const secret = await call(`${client}/client-secret`, admin);
    assert.deepEqual(secret.body, { type: "secret", value: SECRET });
  });

  await t.step(
    "regenerate: the old secret becomes rotated and both work",
    async () => {
      const { body } = await call(`${client}/client-secret`, admin, "POST");
      fresh = (body as { value: string }).value;
      const rotated = await call(`${client}/client-secret/rotated`, admin);
      assert.deepEqual(rotated.body, { type: "secret", value: SECRET });
      for (const value of [SECRET, fresh]) {
        const response = await postForm(
          keycloak.tokenUrl,
          GRANT,
          basic("service", value),
        );
        assert.equal(response.status, 200, value === SECRET ? "old" : "new");
        await response.body?.cancel();
      }
      const state = keycloak.secretState("service");
      assert.equal(
        state.rotatedExpirationTime,
        Math.floor(clock.now() / 1000) + 600,
      );
    },
  );

  await t.step("the rotated secret expires on its own", async () => {
    await clock.advance(600_000);
    const response = await postForm(
      keycloak.tokenUrl,
      GRANT,
      basic("service", SECRET),
    );
    assert.equal(response.status, 401);
    await response.body?.cancel();
    // The admin's own token (300 s) has expired meanwhile.
    admin = await adminToken(keycloak);
    const rotated = await call(`${client}/client-secret/rotated`, admin);
    assert.equal(rotated.status, 404);
  });

  await t.step("DELETE rotated: 204, idempotent", async () => {
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${client}/client-secret/rotated`, {
        method: "DELETE",
        headers: { authorization: admin },
      });
      assert.equal(response.status, 204);
    }
  });

  await t.step(
    "the main secret is refused after its expiration, even right",
    async () => {
      const before = await postForm(
        keycloak.tokenUrl,
        GRANT,
        basic("service", fresh),
      );
      assert.equal(before.status, 200);
      await before.body?.cancel();
      await clock.advance(3_000_000);
      const after = await postForm(
        keycloak.tokenUrl,
        GRANT,
        basic("service", fresh),
      );
      assert.equal(after.status, 401);
      assert.equal((await after.json()).error, "unauthorized_client");
    },
  );
});

Deno.test("Keycloak admin permissions", async (t) => {
  await using keycloak = start({ secretRotation: {} });
  const client = `${keycloak.apiUrl}/clients/${keycloak.uuidOf("service")}`;

  await t.step("no token: 401", async () => {
    const { status } = await call(`${client}/client-secret`, undefined);
    assert.equal(status, 401);
  });

  await t.step("view-clients reads but cannot regenerate", async () => {
    const viewer = await adminToken(keycloak, "viewer", "viewer-secret");
    assert.equal((await call(`${client}/client-secret`, viewer)).status, 200);
    const denied = await call(`${client}/client-secret`, viewer, "POST");
    assert.equal(denied.status, 403);
    assert.equal(keycloak.secretState("service").secret, SECRET);
    const policies = await call(
      `${keycloak.apiUrl}/client-policies/policies`,
      viewer,
    );
    assert.equal(policies.status, 403, "view-realm is needed");
  });

  await t.step("no realm-management role: 403", async () => {
    const plain = await adminToken(keycloak, "service", SECRET);
    assert.equal((await call(`${client}/client-secret`, plain)).status, 403);
  });

  await t.step("unknown uuid: 404 Could not find client", async () => {
    const admin = await adminToken(keycloak);
    const { status, body } = await call(
      `${keycloak.apiUrl}/clients/00000000-0000-0000-0000-000000000000/client-secret`,
      admin,
    );
    assert.equal(status, 404);
    assert.deepEqual(body, { error: "Could not find client" });
  });
});

Deno.test("createDualSecretAuth on one Keycloak client (main + rotated) fails over when the rotated one is deleted", async () => {
  await using keycloak = start({ secretRotation: {} });
  const fresh = keycloak.regenerateSecret("service");
  const state = keycloak.secretState("service");
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "old", clientId: "service", clientSecret: SECRET },
      { label: "new", clientId: "service", clientSecret: fresh },
    ],
    tokenUrl: keycloak.tokenUrl,
  });
  const response = await auth.fetch(keycloak.resourceUrl);
  assert.equal(response.status, 200);
  assert.equal((await response.json()).client_id, "service");
  assert.equal(keycloak.stats().tokensBySecret?.[state.rotatedSecretId!], 1);

  const admin = await adminToken(keycloak);
  const deleted = await fetch(
    `${keycloak.apiUrl}/clients/${
      keycloak.uuidOf("service")
    }/client-secret/rotated`,
    { method: "DELETE", headers: { authorization: admin } },
  );
  assert.equal(deleted.status, 204);
  auth.invalidate();
  await auth.getAccessToken();
  assert.equal(auth.status().active, "new");
  assert.equal(keycloak.stats().tokensBySecret?.[state.secretId], 1);
});

Deno.test("Keycloak client policies: the policy and profile served to view-realm, with the global lists on request", async () => {
  await using keycloak = start({ secretRotation: {} });
  const admin = await adminToken(keycloak);
  const policies = await call(
    `${keycloak.apiUrl}/client-policies/policies?include-global-policies=true`,
    admin,
  );
  assert.equal(policies.status, 200);
  assert.deepEqual(policies.body, {
    policies: [{
      name: "secret-rotation-policy",
      enabled: true,
      conditions: [{
        condition: "client-access-type",
        configuration: { type: ["confidential"] },
      }],
      profiles: ["secret-rotation-profile"],
    }],
    globalPolicies: [],
  });
  const profiles = await call(
    `${keycloak.apiUrl}/client-policies/profiles?include-global-profiles=true`,
    admin,
  );
  const body = profiles.body as {
    profiles: { name: string }[];
    globalProfiles: unknown[];
  };
  assert.deepEqual(body.profiles.map((p) => p.name), [
    "secret-rotation-profile",
  ]);
  assert.deepEqual(body.globalProfiles, []);
  const plain = await call(
    `${keycloak.apiUrl}/client-policies/profiles`,
    admin,
  );
  assert.equal("globalProfiles" in (plain.body as object), false);
  const viewer = await adminToken(keycloak, "viewer", "viewer-secret");
  const denied = await call(
    `${keycloak.apiUrl}/client-policies/profiles`,
    viewer,
  );
  assert.equal(denied.status, 403, "view-realm is needed");
});

Deno.test("Keycloak: removing the policy leaves client.secret.expiration.time and the rotated secret, and regenerating then kills the secret in use", async () => {
  await using keycloak = start({ secretRotation: {} });
  const admin = await adminToken(keycloak);
  const client = `${keycloak.apiUrl}/clients/${keycloak.uuidOf("service")}`;
  const first = keycloak.regenerateSecret("service");
  const expiration = keycloak.secretState("service").expirationTime;
  assert.notEqual(expiration, undefined);

  keycloak.setSecretRotation(false);
  const found = await call(
    `${keycloak.apiUrl}/clients?clientId=service`,
    admin,
  );
  const [representation] = found.body as {
    attributes: Record<string, string>;
  }[];
  assert.equal(
    representation.attributes["client.secret.expiration.time"],
    String(expiration),
    "Keycloak removes no attribute when the policy goes",
  );
  assert.equal(representation.attributes["client.secret.rotated"], SECRET);
  const policies = await call(
    `${keycloak.apiUrl}/client-policies/policies`,
    admin,
  );
  assert.deepEqual(policies.body, { policies: [] });
  for (const value of [SECRET, first]) {
    const response = await postForm(
      keycloak.tokenUrl,
      GRANT,
      basic("service", value),
    );
    assert.equal(response.status, 200, "both still work");
    await response.body?.cancel();
  }

  const { body } = await call(`${client}/client-secret`, admin, "POST");
  const fresh = (body as { value: string }).value;
  const dead = await postForm(
    keycloak.tokenUrl,
    GRANT,
    basic("service", first),
  );
  assert.equal(dead.status, 401, "the secret in use died at once");
  await dead.body?.cancel();
  const state = keycloak.secretState("service");
  assert.equal(state.secret, fresh);
  assert.equal(state.expirationTime, expiration, "the value alone changed");
  assert.equal(state.rotated, SECRET, "the older rotated secret stays");
});

Deno.test("Keycloak: a rotated-expiration-period of 0 keeps no rotated secret; a longer one than the main is refused", async () => {
  await using keycloak = start({
    secretRotation: { rotatedExpirationPeriodSeconds: 0 },
  });
  const admin = await adminToken(keycloak);
  const { body } = await call(
    `${keycloak.apiUrl}/client-policies/profiles`,
    admin,
  );
  const [profile] = (body as {
    profiles: { executors: { configuration: Record<string, string> }[] }[];
  }).profiles;
  assert.equal(
    profile.executors[0].configuration["rotated-expiration-period"],
    "0",
  );
  keycloak.regenerateSecret("service");
  assert.equal(keycloak.secretState("service").rotated, undefined);
  const old = await postForm(
    keycloak.tokenUrl,
    GRANT,
    basic("service", SECRET),
  );
  assert.equal(old.status, 401);
  await old.body?.cancel();
  assert.equal(keycloak.stats().secretsRevoked, 1);
  assert.throws(
    () =>
      keycloak.setSecretRotation({
        expirationPeriodSeconds: 60,
        rotatedExpirationPeriodSeconds: 61,
      }),
    RangeError,
  );
});

Deno.test("Keycloak: without the policy a regenerated secret inherits the left-over expiration time and is refused after it", async () => {
  const clock = new FakeClock();
  await using keycloak = start({
    clock,
    secretRotation: {
      expirationPeriodSeconds: 600,
      rotatedExpirationPeriodSeconds: 60,
    },
  });
  const expiration = keycloak.secretState("service").expirationTime!;
  keycloak.setSecretRotation(false);
  await clock.advance(100_000);
  keycloak.regenerateSecret("service", "replacement");
  assert.equal(keycloak.secretState("service").expirationTime, expiration);
  const token = () =>
    postForm(keycloak.tokenUrl, GRANT, basic("service", "replacement"));
  const before = await token();
  assert.equal(before.status, 200);
  await before.body?.cancel();
  await clock.advance(500_000);
  const after = await token();
  assert.equal(after.status, 401, "past the left-over expiration time");
  assert.equal((await after.json()).error, "unauthorized_client");
});
