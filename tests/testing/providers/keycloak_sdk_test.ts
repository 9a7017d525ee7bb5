import assert from "node:assert/strict";
import KeycloakAdminClient from "../../deps/keycloak_admin_client.ts";
import { startKeycloakEmulator } from "@rotating/dual-secret-auth/testing";
import { basic, postForm } from "./support.ts";

Deno.test("@keycloak/keycloak-admin-client drives the Keycloak emulator through a rotation under the policy", async () => {
  await using keycloak = startKeycloakEmulator({
    realm: "acme",
    secretRotation: {},
    clients: [
      { clientId: "service", secret: "old-secret-value" },
      {
        clientId: "rotator",
        secret: "rotator-secret",
        realmManagementRoles: ["manage-clients", "view-realm"],
      },
    ],
  });
  const admin = new KeycloakAdminClient({
    baseUrl: keycloak.url,
    realmName: "acme",
  });
  await admin.auth({
    grantType: "client_credentials",
    clientId: "rotator",
    clientSecret: "rotator-secret",
  });

  // What the Keycloak adapter reads before regenerating (view-realm).
  const policies = await admin.clientPolicies.listPolicies({
    includeGlobalPolicies: true,
  });
  assert.deepEqual(policies.globalPolicies, []);
  assert.deepEqual(
    policies.policies?.map((p) => [p.name, p.enabled, p.profiles]),
    [["secret-rotation-policy", true, ["secret-rotation-profile"]]],
  );
  assert.deepEqual(policies.policies?.[0].conditions, [{
    condition: "client-access-type",
    configuration: { type: ["confidential"] },
  }]);
  const profiles = await admin.clientPolicies.listProfiles({
    includeGlobalProfiles: true,
  });
  assert.deepEqual(profiles.globalProfiles, []);
  const [profile] = profiles.profiles ?? [];
  assert.equal(profile.name, "secret-rotation-profile");
  assert.deepEqual(profile.executors?.map((e) => e.executor), [
    "secret-rotation",
  ]);
  assert.equal(
    (profile.executors?.[0].configuration as Record<string, string>)[
      "rotated-expiration-period"
    ],
    "172800",
  );

  const [found] = await admin.clients.find({ clientId: "service" });
  assert.equal(found.id, keycloak.uuidOf("service"));
  const current = await admin.clients.getClientSecret({ id: found.id! });
  assert.deepEqual(current, { type: "secret", value: "old-secret-value" });

  const fresh = await admin.clients.generateNewClientSecret({ id: found.id! });
  assert.equal(fresh.type, "secret");
  for (const value of ["old-secret-value", fresh.value!]) {
    const response = await postForm(
      keycloak.tokenUrl,
      { grant_type: "client_credentials" },
      basic("service", value),
    );
    assert.equal(response.status, 200, "main and rotated both work");
    await response.body?.cancel();
  }

  await admin.clients.invalidateSecret({ id: found.id! });
  const old = await postForm(
    keycloak.tokenUrl,
    { grant_type: "client_credentials" },
    basic("service", "old-secret-value"),
  );
  assert.equal(old.status, 401);
  assert.equal((await old.json()).error, "unauthorized_client");
  assert.equal(keycloak.secretState("service").rotated, undefined);

  await assert.rejects(
    admin.clients.find({ clientId: "service", realm: "other" }),
    (error: { response?: { status: number } }) =>
      error.response?.status === 404,
  );
});
