/**
 * The Auth0 adapter against the Auth0 emulator: a full staged rotation of
 * twin clients through the engine, a missing scope, throttling.
 */
import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../mod.ts";
import {
  createCallbackSink,
  type RotationPhase,
  runStagedRotation,
} from "../../rotation.ts";
import {
  AUTH0_PROPAGATION_MS,
  Auth0ErrorCode,
  auth0SecretProvider,
  type Auth0SecretProviderOptions,
} from "../../src/providers/auth0.ts";
import { ProviderApiError } from "../../src/providers/admin_http.ts";
import { ConfigError } from "../../src/errors.ts";
import type { Secret } from "../../src/secret.ts";
import {
  type Auth0EmulatorOptions,
  startAuth0Emulator,
} from "../../src/testing/providers/auth0.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";

const AUDIENCE = "https://orders.example";
const BLUE = { clientId: "blue-id", secret: "blue-secret" };
const GREEN = { clientId: "green-id", secret: "green-secret" };

function start(
  adminScopes: string[] = ["read:clients", "update:client_keys"],
  extra: Partial<Auth0EmulatorOptions> = {},
) {
  const auth0 = startAuth0Emulator({
    apis: [{ identifier: AUDIENCE }],
    ...extra,
  });
  for (const twin of [BLUE, GREEN]) {
    auth0.addClient({ ...twin, grants: [{ audience: AUDIENCE }] });
  }
  auth0.addClient({
    clientId: "admin-id",
    secret: "admin-secret",
    grants: [{ audience: auth0.managementAudience, scopes: adminScopes }],
  });
  return auth0;
}

function provider(
  auth0: ReturnType<typeof start>,
  options: Partial<Auth0SecretProviderOptions> = {},
) {
  return auth0SecretProvider({
    apiUrl: auth0.apiUrl,
    getAccessToken: () =>
      Promise.resolve(auth0.issueToken("admin-id", auth0.managementAudience)),
    ...options,
  });
}

/**
 * The engine's proof sends no `audience` yet (src/rotation/proof.ts), and
 * Auth0 requires one: this fetch adds it to token requests, as the engine
 * will once it takes the preset's token parameters.
 */
function withAudience(tokenUrl: string): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    if (request.url !== tokenUrl) return fetch(request);
    const form = new URLSearchParams(await request.text());
    if (!form.has("audience")) form.set("audience", AUDIENCE);
    return fetch(tokenUrl, {
      method: "POST",
      headers: request.headers,
      body: form,
      signal: init?.signal,
    });
  };
}

Deno.test("Auth0: a staged rotation of twin clients through the engine: rotate-secret on the standby, prove, promote", async () => {
  await using auth0 = start(undefined, { propagationDelayMs: 300 });
  const credentials = [
    { label: "blue", clientId: BLUE.clientId, clientSecret: BLUE.secret },
    { label: "green", clientId: GREEN.clientId, clientSecret: GREEN.secret },
  ].map((c) => ({ ...c, authMethod: "client_secret_post" as const }));
  await using auth = createDualSecretAuth({
    credentials,
    tokenUrl: auth0.tokenUrl,
    tokenParams: { audience: AUDIENCE },
  });
  await auth.getAccessToken();
  const published: { label: string; secret: Secret }[] = [];
  const completed: RotationPhase[] = [];
  const report = await runStagedRotation({
    credentials,
    active: "blue",
    tokenUrl: auth0.tokenUrl,
    fetch: withAudience(auth0.tokenUrl),
    provider: provider(auth0),
    sink: createCallbackSink(({ label, secret }) => {
      published.push({ label, secret });
      auth.setCredentials(
        credentials.map((c) =>
          c.label === label ? { ...c, clientSecret: secret } : c
        ),
      );
    }),
    testDelayMs: 50,
    promote: true,
    onPromote: async (to) => {
      await auth.rotate({ to });
    },
    onPhase: (event) => {
      if (event.status === "completed") completed.push(event.phase);
    },
  });
  assert.deepEqual(completed, [
    "plan",
    "regenerate",
    "publish",
    "test",
    "promote",
    "done",
  ]);
  assert.equal(report.active, "green");
  assert.equal(published.length, 1);
  assert.equal(published[0].label, "green");
  assert.equal(
    published[0].secret.reveal(),
    auth0.getClientSecret(GREEN.clientId),
  );
  assert.equal(auth0.getClientSecret(BLUE.clientId), BLUE.secret);
  // The proof waited through the propagation delay: a refused request first.
  const stats = auth0.stats();
  assert.ok(stats.tokenFailures >= 1, `${stats.tokenFailures} refusals`);
  assert.equal(auth.status().active, "green");
  assert.ok(await auth.getAccessToken());
});

Deno.test("Auth0: rotate-secret returns the new secret with Auth0's thirty seconds of propagation; inspect asks only for the id and name", async () => {
  await using auth0 = start([
    "read:clients",
    "read:client_keys",
    "update:client_keys",
  ]);
  const seen: URL[] = [];
  const adapter = provider(auth0, {
    fetch: (input, init) => {
      seen.push(new URL(new Request(input, init).url));
      return fetch(input, init);
    },
  });
  const info = await adapter.inspectClient(GREEN.clientId);
  assert.deepEqual(info, { clientId: GREEN.clientId, state: "active" });
  // Only these fields: Auth0 leaves the secret out even for read:client_keys
  // (the emulator does not filter fields, so the request is what is checked).
  assert.equal(seen[0].searchParams.get("fields"), "client_id,name");
  assert.equal(seen[0].searchParams.get("include_fields"), "true");
  const issued = await adapter.issueSecret(GREEN.clientId);
  assert.equal(issued.propagationMs, AUTH0_PROPAGATION_MS);
  assert.equal(issued.secret.reveal(), auth0.getClientSecret(GREEN.clientId));
  assert.equal(adapter.revokeSecret, undefined);
});

Deno.test("Auth0: an admin with read:clients only is refused rotate-secret, naming update:client_keys", async () => {
  await using auth0 = start(["read:clients"]);
  const adapter = provider(auth0);
  await adapter.inspectClient(GREEN.clientId);
  const error = await adapter.issueSecret(GREEN.clientId).catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, Auth0ErrorCode.FORBIDDEN);
  assert.equal(error.permission, "update:client_keys");
  assert.equal(error.providerCode, "insufficient_scope");
  assert.match(error.message, /lacks update:client_keys/);
  assert.equal(auth0.getClientSecret(GREEN.clientId), GREEN.secret);
  const missing = await adapter.inspectClient("nobody").catch((e) => e);
  assert.equal(missing.code, Auth0ErrorCode.NOT_FOUND);
});

Deno.test("Auth0: a 429 of the Management API is waited out as Retry-After asks; a 503 is retried", async () => {
  const clock = new InstantClock();
  await using auth0 = start(undefined, {
    clock,
    managementRateLimit: { limit: 1, windowSeconds: 2 },
  });
  const adapter = provider(auth0, { clock, requestTimeoutMs: NEVER_FIRES });
  await adapter.inspectClient(GREEN.clientId);
  const issued = await adapter.issueSecret(GREEN.clientId);
  assert.deepEqual(clock.waits, [2000]);
  assert.equal(issued.secret.reveal(), auth0.getClientSecret(GREEN.clientId));

  await using steady = start();
  let failures = 1;
  const flaky = provider(steady, {
    clock,
    requestTimeoutMs: NEVER_FIRES,
    fetch: (input, init) =>
      failures-- > 0
        ? Promise.resolve(
          Response.json({ statusCode: 503, error: "Service Unavailable" }, {
            status: 503,
          }),
        )
        : fetch(input, init),
  });
  clock.waits.length = 0;
  assert.equal(
    (await flaky.inspectClient(GREEN.clientId)).clientId,
    GREEN.clientId,
  );
  assert.equal(clock.waits.length, 1);
});

Deno.test("Auth0: a client id that is a dot segment never sends a request (it would address another path)", async () => {
  await using auth0 = start();
  const sent: string[] = [];
  const idp = provider(auth0, {
    fetch: (input, init) => {
      const request = new Request(input, init);
      sent.push(`${request.method} ${new URL(request.url).pathname}`);
      return fetch(request);
    },
  });
  // "/api/v2/clients/../rotate-secret" is "/api/v2/rotate-secret" once parsed.
  for (const id of ["..", "."]) {
    const error = await idp.issueSecret(id).catch((e) => e);
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.option, "clientId");
    await assert.rejects(idp.inspectClient(id), ConfigError);
  }
  assert.deepEqual(sent, []);
});

Deno.test("Auth0: the tenant domain is read as the preset reads it (a trailing slash forgiven; http:// or a path refused)", async () => {
  const urls: string[] = [];
  const recording: typeof fetch = (input, init) => {
    urls.push(new Request(input, init).url);
    return Promise.resolve(
      Response.json({ client_id: "blue-id", name: "blue" }),
    );
  };
  const token = () => Promise.resolve("management-token");
  await auth0SecretProvider({
    domain: "My-Tenant.eu.auth0.com/",
    getAccessToken: token,
    fetch: recording,
  }).inspectClient("blue-id");
  assert.equal(
    new URL(urls[0]).origin + new URL(urls[0]).pathname,
    "https://my-tenant.eu.auth0.com/api/v2/clients/blue-id",
  );
  // "https://http://tenant…" would send the token to a host named "http".
  for (
    const domain of [
      "http://my-tenant.eu.auth0.com",
      "my-tenant.eu.auth0.com/api/v2",
      "evil.example/@my-tenant.eu.auth0.com",
    ]
  ) {
    assert.throws(
      () => auth0SecretProvider({ domain, getAccessToken: token }),
      (error: unknown) =>
        error instanceof ConfigError && error.option === "domain",
      domain,
    );
  }
  assert.equal(urls.length, 1);
});
