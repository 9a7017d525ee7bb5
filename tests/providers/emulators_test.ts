/**
 * The library against each provider emulator of `./testing` (written from
 * the facts file by other hands than the classifier): the preset's scope or
 * audience and the credentials' auth method get a token; the provider's own
 * wrong-secret answer fails over; its throttling is retried and never fails
 * over. The emulators listen on loopback http, so the token URL is the
 * emulator's; the preset's path is checked against it.
 */
import assert from "node:assert/strict";
import {
  type AuthEvent,
  createDualSecretAuth,
  type CredentialInput,
  ErrorCode,
} from "../../mod.ts";
import {
  auth0,
  cognito,
  entra,
  keycloak,
  okta,
  type ProviderPreset,
} from "../../providers.ts";
import {
  startAuth0Emulator,
  startCognitoEmulator,
  startEntraEmulator,
  startKeycloakEmulator,
  startOktaEmulator,
} from "../../testing.ts";

/** What each case needs from its emulator. */
interface Running extends AsyncDisposable {
  readonly tokenUrl: string;
  /** Makes the next `count` token requests throttled, the provider's way. */
  throttle(count: number): void;
}

interface EmulatorCase {
  readonly name: string;
  readonly preset: ProviderPreset;
  /** Starts the emulator; blue's secret is `blue-secret-value`, green's `green-secret-value`. */
  readonly start: () => Promise<Running>;
  /** Blue and green, with the given blue secret. */
  readonly credentials: (blueSecret: string) => CredentialInput[];
}

const oneClient = (
  clientId: string,
  authMethod?: "client_secret_post",
) =>
(blueSecret: string): CredentialInput[] => [
  { label: "blue", clientId, clientSecret: blueSecret, authMethod },
  { label: "green", clientId, clientSecret: "green-secret-value", authMethod },
];

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";

const CASES: readonly EmulatorCase[] = [
  {
    name: "Okta (client_secret_post, two secrets of one app)",
    preset: okta({ domain: "dev-1.okta.com", scope: "orders.read" }),
    start: async () => {
      const emulator = startOktaEmulator({
        scopes: ["orders.read"],
        apps: [{
          clientId: "0oa1",
          secrets: ["blue-secret-value", "green-secret-value"],
          tokenEndpointAuthMethod: "client_secret_post",
        }],
      });
      await emulator.ready;
      return wrap(emulator, (n) => emulator.throttleTokenRequests(n));
    },
    credentials: oneClient("0oa1", "client_secret_post"),
  },
  ...([400, 429] as const).map((throttleStatus): EmulatorCase => ({
    name: `Entra ID (AADSTS90055 on ${throttleStatus})`,
    preset: entra({ tenantId: TENANT, resource: "api://orders" }),
    start: async () => {
      const emulator = startEntraEmulator({
        tenantId: TENANT,
        resources: ["api://orders"],
        throttleStatus,
        applications: [{
          appId: "11111111-2222-3333-4444-555555555555",
          secrets: ["blue-secret-value", "green-secret-value"],
        }],
      });
      await emulator.ready;
      return wrap(emulator, (n) => emulator.throttleTokenRequests(n));
    },
    credentials: oneClient("11111111-2222-3333-4444-555555555555"),
  })),
  {
    name: "Keycloak (its 401 unauthorized_client)",
    preset: keycloak({ baseUrl: "https://sso.example.com", realm: "prod" }),
    start: async () => {
      const emulator = startKeycloakEmulator({
        realm: "prod",
        clients: [
          { clientId: "blue-id", secret: "blue-secret-value" },
          { clientId: "green-id", secret: "green-secret-value" },
        ],
      });
      await emulator.ready;
      // The preset takes a loopback http base URL: the emulator's own.
      assert.equal(
        keycloak({ baseUrl: emulator.url, realm: "prod" }).tokenUrl,
        emulator.tokenUrl,
      );
      return wrap(emulator, (n) => emulator.throttleTokenRequests(n));
    },
    credentials: (blueSecret) => [
      { label: "blue", clientId: "blue-id", clientSecret: blueSecret },
      {
        label: "green",
        clientId: "green-id",
        clientSecret: "green-secret-value",
      },
    ],
  },
  {
    name: "Cognito (400 invalid_client, Basic)",
    preset: cognito({ userPoolDomain: "orders", region: "eu-west-1" }),
    start: async () => {
      const emulator = startCognitoEmulator({
        clients: [{
          clientId: "app",
          secrets: ["blue-secret-value", "green-secret-value"],
        }],
      });
      await emulator.ready;
      return wrap(
        emulator,
        (n) => emulator.injectTokenFaults({ kind: "status", status: 429 }, n),
      );
    },
    credentials: oneClient("app"),
  },
  {
    name: "Auth0 (twin clients, audience, client_secret_post)",
    preset: auth0({
      domain: "tenant.eu.auth0.com",
      audience: "https://orders",
    }),
    start: async () => {
      const emulator = startAuth0Emulator({
        apis: [{ identifier: "https://orders" }],
        clients: ["blue", "green"].map((id) => ({
          clientId: `${id}-id`,
          secret: `${id}-secret-value`,
          tokenEndpointAuthMethod: "client_secret_post" as const,
          grants: [{ audience: "https://orders" }],
        })),
      });
      await emulator.ready;
      return wrap(
        emulator,
        (n) => emulator.injectTokenFaults({ kind: "status", status: 429 }, n),
      );
    },
    credentials: (blueSecret) =>
      [["blue", blueSecret], ["green", "green-secret-value"]].map((
        [label, clientSecret],
      ) => ({
        label,
        clientId: `${label}-id`,
        clientSecret,
        authMethod: "client_secret_post" as const,
      })),
  },
];

function wrap(
  emulator: { tokenUrl: string; close(): Promise<void> },
  throttle: (count: number) => void,
): Running {
  return {
    tokenUrl: emulator.tokenUrl,
    throttle,
    [Symbol.asyncDispose]: () => emulator.close(),
  };
}

for (const c of CASES) {
  Deno.test(`${c.name} emulator`, async (t) => {
    await using emulator = await c.start();
    assert.equal(
      new URL(c.preset.tokenUrl).pathname,
      new URL(emulator.tokenUrl).pathname,
      "the preset's path is the emulator's",
    );
    const connect = (blueSecret: string, events: AuthEvent[]) =>
      createDualSecretAuth({
        ...c.preset,
        tokenUrl: emulator.tokenUrl,
        credentials: c.credentials(blueSecret),
        onEvent: (event) => events.push(event),
        retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 20 },
      });

    await t.step("a token with the preset's parameters", async () => {
      const events: AuthEvent[] = [];
      await using auth = connect("blue-secret-value", events);
      assert.ok(await auth.getAccessToken());
      assert.equal(auth.status().active, "blue");
      assert.equal(events.filter((e) => e.type === "failover").length, 0);
    });

    await t.step("its wrong-secret answer fails over to green", async () => {
      const events: AuthEvent[] = [];
      await using auth = connect("not-the-blue-secret", events);
      assert.ok(await auth.getAccessToken());
      assert.equal(auth.status().active, "green");
      const failovers = events.filter((e) => e.type === "failover");
      assert.equal(failovers.length, 1);
      assert.equal(failovers[0].error.code, ErrorCode.CREDENTIAL_REJECTED);
    });

    await t.step("its throttling is retried, never failed over", async () => {
      const events: AuthEvent[] = [];
      await using auth = connect("blue-secret-value", events);
      // One throttled answer: the emulators' Retry-After (up to 5 s) is waited out.
      emulator.throttle(1);
      assert.ok(await auth.getAccessToken());
      assert.equal(auth.status().active, "blue");
      const retries = events.filter((e) => e.type === "retry");
      assert.equal(retries.length, 1);
      for (const retry of retries) {
        assert.equal(retry.error.code, ErrorCode.RATE_LIMITED);
      }
      assert.equal(events.filter((e) => e.type === "failover").length, 0);
    });
  });
}
