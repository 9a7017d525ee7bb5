/**
 * The core's interop contract (tests/interop/contract.ts) against each
 * provider emulator's token endpoint (Genesys Cloud's too), with the token parameters the
 * provider presets give and each provider's own rejection answer. Blue and
 * green are two clients; blue's secret is changed with the emulator's own
 * admin hooks.
 */
import {
  startAuth0Emulator,
  startCognitoEmulator,
  startEntraEmulator,
  startGenesysEmulator,
  startKeycloakEmulator,
  startOktaEmulator,
} from "@rotating/dual-secret-auth/testing";
import {
  auth0,
  cognito,
  entra,
  keycloak,
  okta,
} from "@rotating/dual-secret-auth/providers";
import { runContract } from "./contract.ts";

const TTL_SECONDS = 300;
const BLUE = "blue-secret-0123456789abcdefghijklmnop";
const GREEN = "green-secret-0123456789abcdefghijklmnop";

/** The preset's token parameters; the URL is the emulator's (loopback http). */
function shapeOf<T extends { tokenUrl: string }>(
  preset: T,
): Omit<T, "tokenUrl"> {
  const { tokenUrl: _, ...shape } = preset;
  return shape;
}

Deno.test("interop with the Okta emulator", async (t) => {
  await using emulator = startOktaEmulator({
    scopes: ["read"],
    apps: [
      { clientId: "0oablue", secrets: [BLUE], tokenLifetimeSeconds: 300 },
      { clientId: "0oagreen", secrets: [GREEN], tokenLifetimeSeconds: 300 },
    ],
  });
  await emulator.ready;
  await runContract(t, {
    tokenUrl: emulator.tokenUrl,
    ...shapeOf(okta({ domain: "dev-1.okta.com", scope: "read" })),
    blue: { clientId: "0oablue", secret: BLUE },
    green: { clientId: "0oagreen", secret: GREEN },
    grantedScope: "read",
    ttlSeconds: TTL_SECONDS,
    setBlueSecret(secret) {
      const [old] = emulator.secrets("0oablue");
      emulator.addSecret("0oablue", secret);
      emulator.removeSecret("0oablue", old.id);
    },
    rejection: { status: 401, error: "invalid_client" },
    // Not configured on the authorization server.
    invalidScope: { scope: "admin", status: 400, error: "invalid_scope" },
    invalidRequest: { status: 400, error: "invalid_request" },
  });
});

Deno.test("interop with the Entra ID emulator", async (t) => {
  const [blueId, greenId] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
  ];
  const resource = "api://interop";
  await using emulator = startEntraEmulator({
    resources: [resource],
    invalidClientStatus: 400,
    applications: [
      { appId: blueId, secrets: [BLUE], tokenLifetimeSeconds: TTL_SECONDS },
      { appId: greenId, secrets: [GREEN], tokenLifetimeSeconds: TTL_SECONDS },
    ],
  });
  await emulator.ready;
  await runContract(t, {
    tokenUrl: emulator.tokenUrl,
    ...shapeOf(entra({ tenantId: emulator.tenantId, resource })),
    blue: { clientId: blueId, secret: BLUE },
    green: { clientId: greenId, secret: GREEN },
    ttlSeconds: TTL_SECONDS,
    setBlueSecret(secret) {
      const [old] = emulator.passwordCredentials(blueId);
      emulator.addPassword(blueId, { value: secret });
      emulator.removePassword(blueId, old.keyId);
    },
    // AADSTS7000215, "Invalid client secret provided".
    rejection: { status: 400, error: "invalid_client" },
    // Client credentials need a `<resource>/.default` scope (AADSTS1002012).
    invalidScope: {
      scope: `${resource}/read`,
      status: 400,
      error: "invalid_scope",
    },
    // AADSTS900144, the missing parameter.
    invalidRequest: { status: 400, error: "invalid_request" },
  });
});

Deno.test("interop with the Keycloak emulator", async (t) => {
  await using emulator = startKeycloakEmulator({
    clients: [
      { clientId: "blue", secret: BLUE, tokenLifetimeSeconds: TTL_SECONDS },
      { clientId: "green", secret: GREEN, tokenLifetimeSeconds: TTL_SECONDS },
    ],
  });
  await emulator.ready;
  await runContract(t, {
    tokenUrl: emulator.tokenUrl,
    ...shapeOf(keycloak({ baseUrl: "https://sso.example.com", realm: "r" })),
    blue: { clientId: "blue", secret: BLUE },
    green: { clientId: "green", secret: GREEN },
    // Keycloak adds its default client scopes.
    grantedScope: "profile email",
    ttlSeconds: TTL_SECONDS,
    // Without the secret-rotation policy the old secret stops at once.
    setBlueSecret: (secret) => void emulator.regenerateSecret("blue", secret),
    rejection: { status: 401, error: "unauthorized_client" },
    invalidScope: {
      skip:
        "the Keycloak emulator grants any requested scope (with profile email) and has no invalid_scope answer",
    },
    invalidRequest: { status: 400, error: "invalid_request" },
  });
});

Deno.test("interop with the Cognito emulator", async (t) => {
  await using emulator = startCognitoEmulator({
    clients: [
      {
        clientId: "blueclient",
        secrets: [BLUE],
        allowedScopes: ["api/read"],
        tokenLifetimeSeconds: TTL_SECONDS,
      },
      {
        clientId: "greenclient",
        secrets: [GREEN],
        allowedScopes: ["api/read"],
        tokenLifetimeSeconds: TTL_SECONDS,
      },
    ],
  });
  await emulator.ready;
  await runContract(t, {
    tokenUrl: emulator.tokenUrl,
    ...shapeOf(cognito({ domain: "auth.example.com", scope: "api/read" })),
    blue: { clientId: "blueclient", secret: BLUE },
    green: { clientId: "greenclient", secret: GREEN },
    ttlSeconds: TTL_SECONDS,
    setBlueSecret(secret) {
      const [old] = emulator.secrets("blueclient");
      emulator.addSecret("blueclient", secret);
      emulator.deleteSecret("blueclient", old.secretId);
    },
    rejection: { status: 400, error: "invalid_client" },
    // Not among the app client's allowed scopes.
    invalidScope: { scope: "api/admin", status: 400, error: "invalid_scope" },
    invalidRequest: { status: 400, error: "invalid_request" },
  });
});

Deno.test("interop with the Auth0 emulator", async (t) => {
  const audience = "https://api.interop.example/";
  const grants = [{ audience, scopes: ["read:orders"] }];
  await using emulator = startAuth0Emulator({
    apis: [{ identifier: audience, tokenLifetimeSeconds: TTL_SECONDS }],
    clients: [
      { clientId: "blue", secret: BLUE, grants },
      { clientId: "green", secret: GREEN, grants },
    ],
  });
  await emulator.ready;
  await runContract(t, {
    tokenUrl: emulator.tokenUrl,
    ...shapeOf(auth0({ domain: "tenant.eu.auth0.com", audience })),
    authMethod: "client_secret_post",
    blue: { clientId: "blue", secret: BLUE },
    green: { clientId: "green", secret: GREEN },
    grantedScope: "read:orders",
    ttlSeconds: TTL_SECONDS,
    setBlueSecret: (secret) => void emulator.rotateSecret("blue", secret),
    rejection: { status: 401, error: "access_denied" },
    invalidScope: {
      skip:
        "Auth0 answers an ungranted scope 403 access_denied, not invalid_scope",
    },
    invalidRequest: { status: 400, error: "invalid_request" },
  });
});

Deno.test("interop with the Genesys Cloud emulator", async (t) => {
  await using emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue", secret: BLUE, tokenLifetimeSeconds: TTL_SECONDS },
      { clientId: "green", secret: GREEN, tokenLifetimeSeconds: TTL_SECONDS },
    ],
  });
  await runContract(t, {
    tokenUrl: emulator.tokenUrl,
    blue: { clientId: "blue", secret: BLUE },
    green: { clientId: "green", secret: GREEN },
    ttlSeconds: TTL_SECONDS,
    setBlueSecret: (secret) => void emulator.regenerateSecret("blue", secret),
    rejection: {
      status: 401,
      error: "invalid_client",
      wwwAuthenticate: /^Basic /i,
    },
    invalidScope: {
      skip:
        "the Genesys Cloud emulator takes any scope and has no invalid_scope answer",
    },
    invalidRequest: { status: 400, error: "invalid_request" },
  });
});
