import assert from "node:assert/strict";
import {
  type AuthEvent,
  createDualSecretAuth,
  ErrorCode,
} from "../../../mod.ts";
import { FakeClock } from "../../../src/testing/fake_clock.ts";
import {
  type Auth0Emulator,
  type Auth0EmulatorOptions,
  startAuth0Emulator,
} from "../../../src/testing/providers/auth0.ts";

const ORDERS = "https://orders.example/api";

function start(options: Partial<Auth0EmulatorOptions> = {}): Auth0Emulator {
  const auth0 = startAuth0Emulator({
    apis: [{ identifier: ORDERS, tokenLifetimeSeconds: 7200 }],
    ...options,
  });
  for (const id of ["blue", "green"]) {
    auth0.addClient({
      clientId: id,
      secret: `${id}-secret`,
      grants: [{ audience: ORDERS, scopes: ["read:orders", "write:orders"] }],
    });
  }
  auth0.addClient({
    clientId: "basic-app",
    secret: "basic-secret",
    tokenEndpointAuthMethod: "client_secret_basic",
    grants: [{ audience: ORDERS }],
  });
  auth0.addClient({ clientId: "no-grant", secret: "no-grant-secret" });
  auth0.addClient({
    clientId: "admin",
    secret: "admin-secret",
    grants: [{
      audience: auth0.managementAudience,
      scopes: ["update:client_keys", "read:client_keys"],
    }],
  });
  auth0.addClient({
    clientId: "reader",
    secret: "reader-secret",
    grants: [{
      audience: auth0.managementAudience,
      scopes: ["read:clients", "update:clients"],
    }],
  });
  return auth0;
}

function tokenRequest(
  auth0: Auth0Emulator,
  fields: Record<string, string>,
  init: { json?: boolean; authorization?: string } = {},
): Promise<Response> {
  return fetch(auth0.tokenUrl, {
    method: "POST",
    headers: {
      "content-type": init.json
        ? "application/json"
        : "application/x-www-form-urlencoded",
      ...(init.authorization ? { authorization: init.authorization } : {}),
    },
    body: init.json
      ? JSON.stringify(fields)
      : new URLSearchParams(fields).toString(),
  });
}

function cc(id: string, secret: string, audience: string = ORDERS) {
  return {
    grant_type: "client_credentials",
    client_id: id,
    client_secret: secret,
    audience,
  };
}

async function managementToken(
  auth0: Auth0Emulator,
  id: string = "admin",
): Promise<string> {
  const response = await tokenRequest(
    auth0,
    cc(id, `${id}-secret`, auth0.managementAudience),
  );
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

function management(
  auth0: Auth0Emulator,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<Response> {
  return fetch(`${auth0.apiUrl}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

Deno.test("Auth0 token endpoint: form or JSON, the granted scopes, the API's lifetime", async () => {
  await using auth0 = start();
  for (const json of [false, true]) {
    const response = await tokenRequest(auth0, cc("blue", "blue-secret"), {
      json,
    });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.deepEqual(Object.keys(body).sort(), [
      "access_token",
      "expires_in",
      "scope",
      "token_type",
    ]);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 7200);
    assert.equal(body.scope, "read:orders write:orders");
  }
  const narrowed = await tokenRequest(auth0, {
    ...cc("blue", "blue-secret"),
    scope: "read:orders",
  });
  assert.equal((await narrowed.json()).scope, "read:orders");
  const basic = await tokenRequest(auth0, {
    grant_type: "client_credentials",
    audience: ORDERS,
  }, { authorization: `Basic ${btoa("basic-app:basic-secret")}` });
  const basicBody = await basic.json();
  assert.equal(basic.status, 200);
  assert.equal(basicBody.scope, undefined, "no scopes granted, none sent");
  const admin = await managementToken(auth0);
  const resource = await fetch(auth0.resourceUrl, {
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal((await resource.json()).aud, auth0.managementAudience);
});

Deno.test("Auth0 token endpoint: each refusal with Auth0's status and error", async () => {
  await using auth0 = start();
  const basic = `Basic ${btoa("blue:blue-secret")}`;
  const cases: [
    Record<string, string>,
    { authorization?: string },
    number,
    string,
    RegExp,
  ][] = [
    [cc("blue", "wrong"), {}, 401, "access_denied", /^Unauthorized$/],
    [cc("nobody", "x"), {}, 401, "access_denied", /^Unauthorized$/],
    [
      { grant_type: "client_credentials", audience: ORDERS },
      { authorization: basic },
      401,
      "access_denied",
      /^Unauthorized$/,
    ],
    [
      { ...cc("basic-app", "basic-secret") },
      {},
      401,
      "access_denied",
      /^Unauthorized$/,
    ],
    [
      { grant_type: "client_credentials", audience: ORDERS },
      {},
      400,
      "invalid_request",
      /client_id/,
    ],
    [
      { client_id: "blue", client_secret: "blue-secret" },
      {},
      400,
      "invalid_request",
      /grant_type/,
    ],
    [
      { ...cc("blue", "blue-secret"), audience: "" },
      {},
      403,
      "access_denied",
      /No audience parameter was provided/,
    ],
    [
      cc("blue", "blue-secret", "https://nowhere"),
      {},
      403,
      "access_denied",
      /^Service not found: https:\/\/nowhere$/,
    ],
    [
      cc("no-grant", "no-grant-secret"),
      {},
      403,
      "access_denied",
      /client-grant/,
    ],
    [
      { ...cc("blue", "blue-secret"), scope: "delete:orders" },
      {},
      403,
      "access_denied",
      /not been granted scopes: delete:orders/,
    ],
    [
      { ...cc("blue", "blue-secret"), grant_type: "password" },
      {},
      403,
      "unauthorized_client",
      /Grant type 'password' not allowed/,
    ],
    [
      { ...cc("blue", "blue-secret"), grant_type: "magic" },
      {},
      400,
      "unsupported_grant_type",
      /magic/,
    ],
  ];
  for (const [fields, init, status, error, description] of cases) {
    const response = await tokenRequest(auth0, fields, init);
    const body = await response.json();
    const label = JSON.stringify(fields);
    assert.equal(response.status, status, label);
    assert.equal(body.error, error, label);
    assert.match(body.error_description, description, label);
  }
  assert.equal(auth0.stats().tokenFailures, cases.length);
});

Deno.test("Auth0 rate limits: 429 with x-ratelimit-* on the token endpoint and the Management API", async () => {
  const clock = new FakeClock(1_700_000_000_000);
  await using auth0 = start({
    clock,
    tokenRateLimit: { limit: 2, windowSeconds: 10 },
    managementRateLimit: { limit: 1, windowSeconds: 60 },
  });
  const admin = await managementToken(auth0);
  const ok = await tokenRequest(auth0, cc("blue", "blue-secret"));
  assert.equal(ok.headers.get("x-ratelimit-remaining"), "0");
  await ok.body?.cancel();
  const limited = await tokenRequest(auth0, cc("blue", "blue-secret"));
  assert.equal(limited.status, 429);
  assert.deepEqual(await limited.json(), {
    error: "too_many_requests",
    error_description: "Global limit has been reached",
  });
  assert.equal(limited.headers.get("x-ratelimit-limit"), "2");
  assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
  assert.equal(limited.headers.get("x-ratelimit-reset"), "1700000010");
  await clock.advance(10_000);
  const again = await tokenRequest(auth0, cc("blue", "blue-secret"));
  assert.equal(again.status, 200);
  await again.body?.cancel();

  const first = await management(auth0, "GET", "/clients/blue", admin);
  assert.equal(first.status, 200);
  await first.body?.cancel();
  const second = await management(auth0, "GET", "/clients/blue", admin);
  assert.equal(second.status, 429);
  assert.deepEqual(await second.json(), {
    statusCode: 429,
    error: "Too Many Requests",
    message: "Global limit has been reached",
    errorCode: "too_many_requests",
  });
  assert.equal(second.headers.get("x-ratelimit-limit"), "1");
});

Deno.test("Auth0 Management API: rotate-secret kills the old secret at once; reading needs read:client_keys", async () => {
  await using auth0 = start();
  const admin = await managementToken(auth0);
  const response = await management(
    auth0,
    "POST",
    "/clients/green/rotate-secret",
    admin,
  );
  assert.equal(response.status, 200);
  const client = await response.json();
  assert.equal(client.client_id, "green");
  assert.equal(client.client_secret, auth0.getClientSecret("green"));
  const old = await tokenRequest(auth0, cc("green", "green-secret"));
  assert.equal(old.status, 401);
  await old.body?.cancel();
  const fresh = await tokenRequest(auth0, cc("green", client.client_secret));
  assert.equal(fresh.status, 200);
  await fresh.body?.cancel();
  const blue = await tokenRequest(auth0, cc("blue", "blue-secret"));
  assert.equal(blue.status, 200, "the twin is untouched");
  await blue.body?.cancel();

  const read = await management(auth0, "GET", "/clients/green", admin);
  assert.equal((await read.json()).client_secret, client.client_secret);
  const reader = await managementToken(auth0, "reader");
  const hidden = await management(auth0, "GET", "/clients/green", reader);
  const view = await hidden.json();
  assert.equal(hidden.status, 200);
  assert.equal("client_secret" in view, false);
  assert.equal(view.token_endpoint_auth_method, "client_secret_post");
});

Deno.test("Auth0 Management API: missing token, app token, missing scope, unknown client, bad body", async () => {
  await using auth0 = start();
  const reader = await managementToken(auth0, "reader");
  const appToken = (await (await tokenRequest(auth0, cc("blue", "blue-secret")))
    .json()).access_token;
  const cases: [Response, number, Record<string, unknown>][] = [
    [
      await management(
        auth0,
        "POST",
        "/clients/green/rotate-secret",
        undefined,
      ),
      401,
      {
        statusCode: 401,
        error: "Unauthorized",
        message: "Missing authentication",
      },
    ],
    [
      await management(auth0, "POST", "/clients/green/rotate-secret", "bogus"),
      401,
      { statusCode: 401, error: "Unauthorized", message: "Invalid token" },
    ],
    [
      await management(auth0, "POST", "/clients/green/rotate-secret", appToken),
      401,
      {
        statusCode: 401,
        error: "Unauthorized",
        message: `Bad audience: ${ORDERS}`,
      },
    ],
    [
      await management(auth0, "POST", "/clients/green/rotate-secret", reader),
      403,
      {
        statusCode: 403,
        error: "Forbidden",
        message: "Insufficient scope, expected any of: update:client_keys",
        errorCode: "insufficient_scope",
      },
    ],
    [
      await management(auth0, "PATCH", "/clients/green", reader, {
        client_secret: "chosen-by-caller",
      }),
      403,
      {
        statusCode: 403,
        error: "Forbidden",
        message: "Insufficient scope, expected any of: update:client_keys",
        errorCode: "insufficient_scope",
      },
    ],
    [
      await management(auth0, "GET", "/clients/nobody", reader),
      404,
      {
        statusCode: 404,
        error: "Not Found",
        message: "The client does not exist",
        errorCode: "inexistent_client",
      },
    ],
    [
      await management(auth0, "PATCH", "/clients/green", reader, {
        colour: "blue",
      }),
      400,
      {
        statusCode: 400,
        error: "Bad Request",
        message:
          "Payload validation error: 'Additional properties not allowed: colour'.",
        errorCode: "invalid_body",
      },
    ],
  ];
  for (const [response, status, body] of cases) {
    assert.equal(response.status, status);
    assert.deepEqual(await response.json(), body);
  }
  assert.equal(auth0.getClientSecret("green"), "green-secret");
});

Deno.test("Auth0 PATCH sets a caller's secret with update:client_keys", async () => {
  await using auth0 = start();
  const admin = await managementToken(auth0);
  const response = await management(auth0, "PATCH", "/clients/green", admin, {
    client_secret: "chosen-by-caller",
  });
  assert.equal(response.status, 200);
  assert.equal((await response.json()).client_secret, "chosen-by-caller");
  const works = await tokenRequest(auth0, cc("green", "chosen-by-caller"));
  assert.equal(works.status, 200);
  await works.body?.cancel();
});

Deno.test("Auth0 switches: the new secret waits propagationDelayMs (the old one is dead meanwhile); rotation can revoke tokens", async () => {
  const clock = new FakeClock(Date.now());
  await using auth0 = start({
    clock,
    propagationDelayMs: 30_000,
    revokeTokensWithSecret: true,
  });
  const before = (await (await tokenRequest(auth0, cc("green", "green-secret")))
    .json()).access_token;
  const secret = auth0.rotateSecret("green");
  for (const value of ["green-secret", secret]) {
    const refused = await tokenRequest(auth0, cc("green", value));
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
  }
  await clock.advance(29_999);
  const early = await tokenRequest(auth0, cc("green", secret));
  assert.equal(early.status, 401);
  await early.body?.cancel();
  await clock.advance(1);
  const late = await tokenRequest(auth0, cc("green", secret));
  assert.equal(late.status, 200);
  await late.body?.cancel();
  const resource = await fetch(auth0.resourceUrl, {
    headers: { authorization: `Bearer ${before}` },
  });
  assert.equal(resource.status, 401);
  await resource.body?.cancel();
});

Deno.test("Auth0 by default: tokens outlive a rotation until they expire", async () => {
  const clock = new FakeClock(Date.now());
  await using auth0 = start({ clock });
  const before = (await (await tokenRequest(auth0, cc("green", "green-secret")))
    .json()).access_token;
  auth0.rotateSecret("green");
  const during = await fetch(auth0.resourceUrl, {
    headers: { authorization: `Bearer ${before}` },
  });
  assert.equal(during.status, 200);
  await during.body?.cancel();
  await clock.advance(7200 * 1000);
  const expired = await fetch(auth0.resourceUrl, {
    headers: { authorization: `Bearer ${before}` },
  });
  assert.equal(expired.status, 401);
  assert.match(expired.headers.get("www-authenticate")!, /expired/);
  await expired.body?.cancel();
});

function twinClients(auth0: Auth0Emulator): void {
  for (const id of ["blue-basic", "green-basic"]) {
    auth0.addClient({
      clientId: id,
      secret: `${id}-secret`,
      tokenEndpointAuthMethod: "client_secret_basic",
      grants: [{ audience: ORDERS, scopes: ["read:orders"] }],
    });
  }
}

Deno.test("createDualSecretAuth on Auth0: twin clients, the standby rotated through the Management API, then proved and switched to", async () => {
  await using auth0 = start();
  twinClients(auth0);
  await using auth = createDualSecretAuth({
    credentials: [
      {
        label: "blue",
        clientId: "blue-basic",
        clientSecret: "blue-basic-secret",
      },
      {
        label: "green",
        clientId: "green-basic",
        clientSecret: "green-basic-secret",
      },
    ],
    tokenUrl: auth0.tokenUrl,
    tokenParams: { audience: ORDERS },
  });
  const first = await auth.fetch(auth0.resourceUrl);
  assert.deepEqual(await first.json(), {
    client_id: "blue-basic",
    scope: "read:orders",
    aud: ORDERS,
  });

  const admin = await managementToken(auth0);
  const rotated = await management(
    auth0,
    "POST",
    "/clients/green-basic/rotate-secret",
    admin,
  );
  const { client_secret: greenSecret } = await rotated.json();
  auth.setCredentials([
    {
      label: "blue",
      clientId: "blue-basic",
      clientSecret: "blue-basic-secret",
    },
    { label: "green", clientId: "green-basic", clientSecret: greenSecret },
  ]);
  const result = await auth.rotate({ to: "green" });
  assert.deepEqual([result.from, result.to], ["blue", "green"]);
  const after = await auth.fetch(auth0.resourceUrl);
  assert.equal((await after.json()).client_id, "green-basic");
});

Deno.test("createDualSecretAuth on Auth0: 401 access_denied is a rejection, so it fails over", async () => {
  await using auth0 = start();
  twinClients(auth0);
  const events: AuthEvent[] = [];
  await using auth = createDualSecretAuth({
    credentials: [
      {
        label: "blue",
        clientId: "blue-basic",
        clientSecret: "blue-basic-secret",
      },
      {
        label: "green",
        clientId: "green-basic",
        clientSecret: "green-basic-secret",
      },
    ],
    tokenUrl: auth0.tokenUrl,
    tokenParams: { audience: ORDERS },
    onEvent: (event) => events.push(event),
  });
  await auth.getAccessToken();
  auth0.rotateSecret("blue-basic");
  auth.invalidate();
  // Issue 20 item 2: the core classifies Auth0's 401 access_denied as a
  // rejection, so green serves.
  await auth.getAccessToken();
  assert.equal(auth.status().active, "green");
  const failovers = events.filter((e) => e.type === "failover");
  assert.equal(failovers.length, 1);
  assert.equal(failovers[0].error.code, ErrorCode.CREDENTIAL_REJECTED);
  assert.equal(failovers[0].error.oauthError, "access_denied");
});

Deno.test("Auth0 token faults: an injected 429 in Auth0's shape, a reset connection, a held response released by close()", async () => {
  const auth0 = start();
  try {
    auth0.injectTokenFaults({ kind: "status", status: 429, retryAfter: "2" });
    const limited = await tokenRequest(auth0, cc("blue", "blue-secret"));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "2");
    assert.deepEqual(await limited.json(), {
      error: "too_many_requests",
      error_description: "Global limit has been reached",
    });
    auth0.injectTokenFaults({ kind: "reset" });
    await assert.rejects(async () => {
      const reset = await tokenRequest(auth0, cc("blue", "blue-secret"));
      await reset.text();
    });
    auth0.injectTokenFaults({ kind: "delay", ms: 60_000 });
    const held = tokenRequest(auth0, cc("blue", "blue-secret"));
    // The request reaches the server before close() releases it.
    while (auth0.stats().tokenRequests < 3) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const closing = auth0.close();
    const response = await held;
    assert.equal(response.status, 200);
    await response.body?.cancel();
    await closing;
  } finally {
    await auth0.close();
  }
});
