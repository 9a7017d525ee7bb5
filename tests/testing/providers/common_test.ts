import assert from "node:assert/strict";
import {
  FakeClock,
  startAuth0Emulator,
  startCognitoEmulator,
  startEntraEmulator,
  startKeycloakEmulator,
  startOktaEmulator,
} from "@rotating/dual-secret-auth/testing";
import { basic, call, postForm } from "./support.ts";

Deno.test("provider emulators share one host: resource, revocation, expiry, stats, close", async (t) => {
  const clock = new FakeClock();
  const emulator = startKeycloakEmulator({
    clock,
    clients: [{ clientId: "svc", secret: "s", tokenLifetimeSeconds: 60 }],
  });
  const grant = { grant_type: "client_credentials" };
  const mint = async () => {
    const response = await postForm(
      emulator.tokenUrl,
      grant,
      basic("svc", "s"),
    );
    return `Bearer ${(await response.json()).access_token}`;
  };

  await t.step("the resource takes live tokens only", async () => {
    const none = await call(emulator.resourceUrl, undefined);
    assert.equal(none.status, 401);
    assert.equal(
      none.headers.get("www-authenticate"),
      'Bearer realm="emulator"',
    );
    const unknown = await call(emulator.resourceUrl, "Bearer nope");
    assert.equal(unknown.status, 401);
    assert.match(unknown.headers.get("www-authenticate")!, /invalid_token/);
    const token = await mint();
    const live = await call(emulator.resourceUrl, token);
    assert.equal(live.status, 200);
    assert.deepEqual(live.body, {
      client_id: "svc",
      scope: "profile email",
      aud: "account",
    });
  });

  await t.step("tokens expire on the clock", async () => {
    const token = await mint();
    await clock.advance(59_999);
    assert.equal((await call(emulator.resourceUrl, token)).status, 200);
    await clock.advance(1);
    assert.equal((await call(emulator.resourceUrl, token)).status, 401);
  });

  await t.step("revokeTokensOf kills the client's tokens", async () => {
    const token = await mint();
    emulator.revokeTokensOf("svc");
    assert.equal((await call(emulator.resourceUrl, token)).status, 401);
  });

  await t.step("stats count and reset", () => {
    const stats = emulator.stats();
    assert.equal(stats.tokenRequests, 3);
    assert.equal(stats.tokenFailures, 0);
    assert.equal(stats.tokensIssued, 3);
    assert.deepEqual(stats.tokenRequestsByClient, { svc: 3 });
    assert.equal(stats.resourceRequests, 6);
    assert.equal(stats.resourceUnauthorized, 4);
    emulator.resetStats();
    assert.equal(emulator.stats().tokenRequests, 0);
  });

  await t.step("bad counts and options are refused", () => {
    assert.throws(() => emulator.throttleTokenRequests(0), RangeError);
    assert.throws(() => emulator.throttleTokenRequests(1.5), RangeError);
    assert.throws(
      () => startOktaEmulator({ propagationDelayMs: -1 }),
      RangeError,
    );
    assert.throws(
      () =>
        startEntraEmulator({
          applications: [{ appId: "a", tokenLifetimeSeconds: 0 }],
        }),
      RangeError,
    );
  });

  await t.step("close is idempotent", async () => {
    const first = emulator.close();
    assert.equal(emulator.close(), first);
    await first;
  });
});

Deno.test("control methods keep the provider's own limits", async () => {
  await using okta = startOktaEmulator({
    apps: [{
      clientId: "0oa",
      secrets: ["secret-value-00001", "secret-value-00002"],
    }],
  });
  assert.throws(
    () => okta.addSecret("0oa"),
    /maximum number of client secrets per client/,
  );
  assert.throws(
    () =>
      startOktaEmulator({
        apps: [{
          clientId: "0oa",
          secrets: [
            "a-secret-value-01",
            "a-secret-value-02",
            "a-secret-value-03",
          ],
        }],
      }),
    /maximum number of client secrets/,
  );
  await using keycloak = startKeycloakEmulator({
    clients: [{ clientId: "svc", secret: "old" }],
  });
  keycloak.regenerateSecret("svc", "new");
  assert.equal(
    keycloak.secretState("svc").rotated,
    undefined,
    "no policy, no rotated secret",
  );
  keycloak.setSecretRotation({});
  keycloak.regenerateSecret("svc", "newer");
  assert.equal(keycloak.secretState("svc").rotated, "new");
});

/** Each provider: one token, then its secret removed the provider's way. */
const REMOVALS: {
  name: string;
  run: (revoke: boolean) => Promise<{ before: number; after: number }>;
}[] = [
  {
    name: "Okta (deactivate)",
    run: async (revokeTokensWithSecret) => {
      await using okta = startOktaEmulator({
        revokeTokensWithSecret,
        apps: [{
          clientId: "0oa",
          secrets: ["secret-value-00001", "secret-value-00002"],
        }],
        adminTokens: [{ token: "t" }],
      });
      const response = await postForm(
        okta.tokenUrl,
        { grant_type: "client_credentials", scope: "api" },
        basic("0oa", "secret-value-00001"),
      );
      const token = `Bearer ${(await response.json()).access_token}`;
      const before = (await call(okta.resourceUrl, token)).status;
      const [first] = okta.secrets("0oa");
      await call(
        `${okta.apiUrl}/api/v1/apps/0oa/credentials/secrets/${first.id}/lifecycle/deactivate`,
        "SSWS t",
        "POST",
      );
      return { before, after: (await call(okta.resourceUrl, token)).status };
    },
  },
  {
    name: "Entra ID (removePassword)",
    run: async (revokeTokensWithSecret) => {
      await using entra = startEntraEmulator({
        revokeTokensWithSecret,
        applications: [{ appId: "app", secrets: ["s1", "s2"] }],
      });
      const response = await postForm(entra.tokenUrl, {
        grant_type: "client_credentials",
        client_id: "app",
        client_secret: "s1",
        scope: "api://app/.default",
      });
      const token = `Bearer ${(await response.json()).access_token}`;
      const before = (await call(entra.resourceUrl, token)).status;
      const [first] = entra.passwordCredentials("app");
      entra.removePassword("app", first.keyId);
      return { before, after: (await call(entra.resourceUrl, token)).status };
    },
  },
  {
    name: "Keycloak (delete rotated)",
    run: async (revokeTokensWithSecret) => {
      await using keycloak = startKeycloakEmulator({
        revokeTokensWithSecret,
        secretRotation: {},
        clients: [{ clientId: "svc", secret: "old" }, {
          clientId: "admin",
          secret: "admin",
          realmManagementRoles: ["manage-clients"],
        }],
      });
      keycloak.regenerateSecret("svc");
      const admin = await postForm(
        keycloak.tokenUrl,
        { grant_type: "client_credentials" },
        basic("admin", "admin"),
      );
      const adminToken = `Bearer ${(await admin.json()).access_token}`;
      const response = await postForm(
        keycloak.tokenUrl,
        { grant_type: "client_credentials" },
        basic("svc", "old"),
      );
      const token = `Bearer ${(await response.json()).access_token}`;
      const before = (await call(keycloak.resourceUrl, token)).status;
      const uuid = keycloak.uuidOf("svc");
      await call(
        `${keycloak.apiUrl}/clients/${uuid}/client-secret/rotated`,
        adminToken,
        "DELETE",
      );
      return {
        before,
        after: (await call(keycloak.resourceUrl, token)).status,
      };
    },
  },
];

for (const removal of REMOVALS) {
  Deno.test(`${removal.name}: tokens survive a removed secret unless revokeTokensWithSecret`, async () => {
    assert.deepEqual(await removal.run(false), { before: 200, after: 200 });
    assert.deepEqual(await removal.run(true), { before: 200, after: 401 });
  });
}

/** The claims of a JWT-shaped token, unchecked. */
function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
  return JSON.parse(atob(payload));
}

Deno.test("Cognito and Auth0 run on the same host: throttling, JWT-shaped tokens, tokens by secret, the resource", async () => {
  const cognitoSecret = "cognito-secret-value-00001";
  await using cognito = startCognitoEmulator({
    clients: [{ clientId: "app", secrets: [cognitoSecret] }],
  });
  const cognitoLogin = () =>
    postForm(
      cognito.tokenUrl,
      { grant_type: "client_credentials" },
      basic("app", cognitoSecret),
    );
  cognito.throttleTokenRequests();
  const throttled = await cognitoLogin();
  assert.equal(throttled.status, 429);
  assert.deepEqual(await throttled.json(), { error: "too_many_requests" });
  const issued = await cognitoLogin();
  assert.equal(issued.status, 200);
  const cognitoToken = (await issued.json()).access_token;
  assert.equal(claimsOf(cognitoToken).token_use, "access");
  assert.equal(claimsOf(cognitoToken).client_id, "app");
  const [first] = cognito.secrets("app");
  const stats = cognito.stats();
  assert.deepEqual(stats.tokensBySecret, { [first.secretId]: 1 });
  assert.equal(stats.tokenRequests, 2);
  assert.equal(stats.tokenFailures, 1);
  const resource = await call(cognito.resourceUrl, `Bearer ${cognitoToken}`);
  assert.equal(resource.status, 200);
  // Cognito's client-credentials tokens carry no audience.
  assert.deepEqual(resource.body, { client_id: "app", scope: "default/m2m" });

  const audience = "https://api.example/";
  await using auth0 = startAuth0Emulator({
    apis: [{ identifier: audience }],
    clients: [{
      clientId: "svc",
      secret: "auth0-secret-1",
      grants: [{ audience, scopes: ["read"] }],
    }],
  });
  const auth0Login = (secret: string) =>
    postForm(auth0.tokenUrl, {
      grant_type: "client_credentials",
      client_id: "svc",
      client_secret: secret,
      audience,
    });
  auth0.throttleTokenRequests();
  const limited = await auth0Login("auth0-secret-1");
  assert.equal(limited.status, 429);
  assert.equal((await limited.json()).error, "too_many_requests");
  assert.equal((await auth0Login("auth0-secret-1")).status, 200);
  const rotated = auth0.rotateSecret("svc");
  const after = await auth0Login(rotated);
  assert.equal(after.status, 200);
  const auth0Token = (await after.json()).access_token;
  assert.equal(claimsOf(auth0Token).sub, "svc@clients");
  assert.equal(claimsOf(auth0Token).aud, audience);
  // A client's one secret is known by its rotation count.
  assert.deepEqual(auth0.stats().tokensBySecret, { "0": 1, "1": 1 });
  // The throttled request was answered before its form was read, so only
  // the two read ones name their client.
  assert.equal(auth0.stats().tokenRequests, 3);
  assert.deepEqual(auth0.stats().tokenRequestsByClient, { svc: 2 });
  const live = await call(auth0.resourceUrl, `Bearer ${auth0Token}`);
  assert.deepEqual(live.body, {
    client_id: "svc",
    scope: "read",
    aud: audience,
  });
});
