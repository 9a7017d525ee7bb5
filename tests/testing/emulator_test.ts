import assert from "node:assert/strict";
import {
  type EmulatorClient,
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";

const ADMIN: EmulatorClient = {
  clientId: "admin",
  secret: "admin-secret",
  name: "Admin",
  permissions: ["oauth:client:view", "oauth:client:edit"],
};
const APP: EmulatorClient = { clientId: "app", secret: "app-secret" };
const VIEWER: EmulatorClient = {
  clientId: "viewer",
  secret: "viewer-secret",
  permissions: ["oauth:client:view"],
};

function basic(id: string, secret: string, encode = true): string {
  const pair = encode
    ? `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`
    : `${id}:${secret}`;
  const bytes = new TextEncoder().encode(pair);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

function requestToken(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
  init: { encode?: boolean; body?: string; contentType?: string | null } = {},
): Promise<Response> {
  const headers = new Headers({
    authorization: basic(id, secret, init.encode ?? true),
  });
  if (init.contentType !== null) {
    headers.set(
      "content-type",
      init.contentType ?? "application/x-www-form-urlencoded",
    );
  }
  return fetch(emulator.tokenUrl, {
    method: "POST",
    headers,
    body: init.body ?? "grant_type=client_credentials",
  });
}

async function token(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
): Promise<string> {
  const response = await requestToken(emulator, id, secret);
  assert.equal(response.status, 200);
  const body = await response.json();
  return body.access_token;
}

function api(
  emulator: GenesysEmulator,
  path: string,
  bearer: string | undefined,
  method = "GET",
): Promise<Response> {
  const headers: Record<string, string> = bearer === undefined
    ? {}
    : { authorization: `Bearer ${bearer}` };
  return fetch(`${emulator.apiUrl}${path}`, { method, headers });
}

const INVALID_CLIENT = {
  error: "invalid_client",
  description: "authentication failed",
  error_description: "authentication failed",
};

Deno.test("token endpoint", async (t) => {
  await using emulator = startGenesysEmulator({
    clients: [ADMIN, APP, { ...VIEWER, state: "inactive" }],
  });

  await t.step("urls", () => {
    assert.match(emulator.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(emulator.tokenUrl, `${emulator.url}/oauth/token`);
    assert.equal(emulator.apiUrl, emulator.url);
  });

  await t.step("issues an opaque bearer token", async () => {
    const response = await requestToken(emulator, "app", "app-secret");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.match(response.headers.get("content-type")!, /application\/json/);
    const body = await response.json();
    assert.deepEqual(Object.keys(body).sort(), [
      "access_token",
      "expires_in",
      "token_type",
    ]);
    assert.equal(body.token_type, "bearer");
    assert.equal(body.expires_in, 86400);
    assert.match(body.access_token, /^[A-Za-z0-9_-]{60,}$/);
    assert.equal(body.access_token.split(".").length, 1, "not a JWT");
  });

  await t.step("bad secret: 401 invalid_client", async () => {
    const response = await requestToken(emulator, "app", "wrong");
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), INVALID_CLIENT);
  });

  await t.step("unknown client: 401 invalid_client", async () => {
    const response = await requestToken(emulator, "nobody", "app-secret");
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), INVALID_CLIENT);
  });

  await t.step("missing Authorization: 401 invalid_client", async () => {
    const response = await fetch(emulator.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
    });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), INVALID_CLIENT);
  });

  await t.step("inactive client cannot get tokens", async () => {
    const response = await requestToken(emulator, "viewer", "viewer-secret");
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), INVALID_CLIENT);
    emulator.setClientState("viewer", "active");
    await token(emulator, "viewer", "viewer-secret");
    emulator.setClientState("viewer", "inactive");
  });

  await t.step("wrong grant type: 400 unsupported_grant_type", async () => {
    const response = await requestToken(emulator, "app", "app-secret", {
      body: "grant_type=password",
    });
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error, "unsupported_grant_type");
  });

  await t.step(
    "wrong or missing content type: 400 invalid_request",
    async () => {
      for (const contentType of ["application/json", null]) {
        const response = await requestToken(emulator, "app", "app-secret", {
          contentType,
        });
        assert.equal(response.status, 400);
        assert.equal((await response.json()).error, "invalid_request");
      }
      const empty = await requestToken(emulator, "app", "app-secret", {
        body: "",
      });
      assert.equal(empty.status, 400);
      assert.equal((await empty.json()).error, "invalid_request");
    },
  );

  await t.step("other methods: 405", async () => {
    const response = await fetch(emulator.tokenUrl);
    assert.equal(response.status, 405);
    await response.body?.cancel();
  });

  await t.step("scope is optional and reported", async () => {
    const response = await requestToken(emulator, "app", "app-secret", {
      body: "grant_type=client_credentials&scope=oauth%20users",
    });
    const { access_token } = await response.json();
    const me = await api(emulator, "/api/v2/tokens/me", access_token);
    assert.deepEqual((await me.json()).authorizedScope, ["oauth", "users"]);
  });
});

Deno.test("Basic credentials may be URL-encoded", async (t) => {
  const secret = "a:b%2F+c%zz";
  await using emulator = startGenesysEmulator({
    clients: [{ clientId: "id with:colon+plus", secret }],
  });

  await t.step("encoded", async () => {
    await token(emulator, "id with:colon+plus", secret);
  });

  await t.step("not encoded (secret with ':' '%' '+')", async () => {
    const plain = startGenesysEmulator({
      clients: [{ clientId: "plain", secret }],
    });
    try {
      const response = await requestToken(plain, "plain", secret, {
        encode: false,
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    } finally {
      await plain.close();
    }
  });

  await t.step("a near miss still fails", async () => {
    const response = await requestToken(emulator, "id with:colon+plus", "a:b");
    assert.equal(response.status, 401);
    await response.body?.cancel();
  });
});

Deno.test("tokens/me", async (t) => {
  await using emulator = startGenesysEmulator({
    clients: [APP],
    organization: { id: "org-1", name: "Org One" },
  });
  const bearer = await token(emulator, "app", "app-secret");

  await t.step("GET describes the token", async () => {
    const response = await api(emulator, "/api/v2/tokens/me", bearer);
    assert.equal(response.status, 200);
    for (
      const header of [
        "inin-ratelimit-allowed",
        "inin-ratelimit-count",
        "inin-ratelimit-reset",
        "inin-correlation-id",
      ]
    ) {
      assert.ok(response.headers.get(header), header);
    }
    const body = await response.json();
    assert.deepEqual(body.organization, {
      id: "org-1",
      name: "Org One",
    });
    assert.deepEqual(body.homeOrganization, body.organization);
    const { dateCreated, dateModified, ...client } = body.OAuthClient;
    assert.equal(typeof dateCreated, "string");
    assert.equal(typeof dateModified, "string");
    assert.deepEqual(client, {
      id: "app",
      name: "app",
      authorizedGrantType: "CLIENT-CREDENTIALS",
      roleDivisions: [],
      state: "active",
      organization: { id: "org-1" },
    });
    assert.deepEqual(body.authorizedScope, []);
  });

  await t.step("HEAD verifies", async () => {
    const response = await api(emulator, "/api/v2/tokens/me", bearer, "HEAD");
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "");
  });

  await t.step("missing bearer: 401 without error=", async () => {
    const response = await api(emulator, "/api/v2/tokens/me", undefined);
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get("www-authenticate"),
      'Bearer realm="genesys"',
    );
    assert.equal((await response.json()).status, 401);
  });

  await t.step("unknown token: 401 invalid_token", async () => {
    const response = await api(emulator, "/api/v2/tokens/me", "nope");
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get("www-authenticate"),
      'Bearer realm="genesys", error="invalid_token"',
    );
    const body = await response.json();
    assert.equal(body.message, "Invalid login credentials.");
    assert.equal(body.code, "bad.credentials");
    assert.equal(body.status, 401);
    assert.equal(typeof body.contextId, "string");
    assert.deepEqual(body.details, []);
    assert.deepEqual(body.errors, []);
  });

  await t.step("DELETE revokes the presented token", async () => {
    const other = await token(emulator, "app", "app-secret");
    const response = await api(emulator, "/api/v2/tokens/me", other, "DELETE");
    assert.equal(response.status, 204);
    await response.body?.cancel();
    const after = await api(emulator, "/api/v2/tokens/me", other);
    assert.equal(after.status, 401);
    await after.body?.cancel();
    const still = await api(emulator, "/api/v2/tokens/me", bearer);
    assert.equal(still.status, 200);
    await still.body?.cancel();
  });

  await t.step("revokeToken and revokeTokensOf", async () => {
    const a = await token(emulator, "app", "app-secret");
    emulator.revokeToken(a);
    const first = await api(emulator, "/api/v2/tokens/me", a);
    assert.equal(first.status, 401);
    await first.body?.cancel();
    emulator.revokeTokensOf("app");
    const second = await api(emulator, "/api/v2/tokens/me", bearer);
    assert.equal(second.status, 401);
    await second.body?.cancel();
  });

  await t.step("unknown paths: 404 Genesys error", async () => {
    for (const path of ["/api/v2/nothing", "/elsewhere"]) {
      const response = await api(emulator, path, bearer);
      assert.equal(response.status, 404);
      const body = await response.json();
      assert.equal(body.code, "not.found");
      assert.equal(body.status, 404);
    }
  });
});

Deno.test("token expiry follows the injected clock", async () => {
  const clock = new FakeClock();
  await using emulator = startGenesysEmulator({
    clock,
    clients: [{ ...APP, tokenLifetimeSeconds: 300 }],
  });
  const response = await requestToken(emulator, "app", "app-secret");
  const { access_token, expires_in } = await response.json();
  assert.equal(expires_in, 300);

  await clock.advance(299_999);
  const valid = await api(emulator, "/api/v2/tokens/me", access_token);
  assert.equal(valid.status, 200);
  await valid.body?.cancel();

  await clock.advance(1);
  const expired = await api(emulator, "/api/v2/tokens/me", access_token);
  assert.equal(expired.status, 401);
  assert.match(
    expired.headers.get("www-authenticate")!,
    /error="invalid_token"/,
  );
  assert.equal((await expired.json()).code, "bad.credentials");
  const stats = emulator.stats();
  assert.equal(stats.expiredTokenUses, 1);
  assert.equal(stats.apiUnauthorized, 1);
});

Deno.test("secret regeneration", async (t) => {
  await t.step("behind the back: old secret dies, new works", async () => {
    await using emulator = startGenesysEmulator({ clients: [APP] });
    const before = await token(emulator, "app", "app-secret");
    const secret = emulator.regenerateSecret("app");
    assert.notEqual(secret, "app-secret");
    assert.equal(emulator.getClientSecret("app"), secret);
    const old = await requestToken(emulator, "app", "app-secret");
    assert.equal(old.status, 401);
    assert.deepEqual(await old.json(), INVALID_CLIENT);
    await token(emulator, "app", secret);
    // Tokens from the old secret stay valid by default.
    const me = await api(emulator, "/api/v2/tokens/me", before);
    assert.equal(me.status, 200);
    await me.body?.cancel();
    assert.equal(emulator.regenerateSecret("app", "chosen"), "chosen");
    assert.equal(emulator.stats().secretRegenerations, 2);
  });

  await t.step("revokeTokensOnRegenerate revokes old tokens", async () => {
    await using emulator = startGenesysEmulator({
      clients: [APP],
      revokeTokensOnRegenerate: true,
    });
    const before = await token(emulator, "app", "app-secret");
    emulator.regenerateSecret("app");
    const me = await api(emulator, "/api/v2/tokens/me", before);
    assert.equal(me.status, 401);
    await me.body?.cancel();
  });

  await t.step("unknown clients throw", async () => {
    await using emulator = startGenesysEmulator();
    assert.throws(() => emulator.regenerateSecret("nobody"));
    assert.throws(() => emulator.getClientSecret("nobody"));
    assert.throws(() => emulator.issueToken("nobody"));
    emulator.addClient(APP);
    assert.throws(() => emulator.addClient(APP));
  });
});

Deno.test("OAuth client administration API", async (t) => {
  await using emulator = startGenesysEmulator({
    clients: [ADMIN, APP, VIEWER],
  });
  const admin = emulator.issueToken("admin");

  await t.step("GET has no secret", async () => {
    const response = await api(emulator, "/api/v2/oauth/clients/app", admin);
    assert.equal(response.status, 200);
    assert.ok(response.headers.get("inin-ratelimit-count"));
    const body = await response.json();
    assert.equal(body.id, "app");
    assert.equal(body.name, "app");
    assert.equal(body.accessTokenValiditySeconds, 86400);
    assert.equal(body.state, "active");
    assert.equal(body.authorizedGrantType, "CLIENT-CREDENTIALS");
    assert.equal(typeof body.dateCreated, "string");
    assert.equal(body.selfUri, "/api/v2/oauth/clients/app");
    assert.equal("secret" in body, false);
  });

  await t.step("list: one page of every client, without secrets", async () => {
    const response = await api(emulator, "/api/v2/oauth/clients", admin);
    const body = await response.json();
    assert.deepEqual(
      body.entities.map((c: { id: string }) => c.id),
      ["admin", "app", "viewer"],
    );
    assert.ok(body.entities.every((c: object) => !("secret" in c)));
    const { entities: _, ...paging } = body;
    assert.deepEqual(paging, {
      pageSize: 3,
      pageNumber: 1,
      total: 3,
      firstUri: "/api/v2/oauth/clients?pageSize=3&pageNumber=1",
      selfUri: "/api/v2/oauth/clients?pageSize=3&pageNumber=1",
      lastUri: "/api/v2/oauth/clients?pageSize=3&pageNumber=1",
      pageCount: 1,
    });
  });

  await t.step("list: pageSize and pageNumber are honoured", async () => {
    const response = await api(
      emulator,
      "/api/v2/oauth/clients?pageSize=2&pageNumber=2",
      admin,
    );
    const body = await response.json();
    assert.deepEqual(body.entities.map((c: { id: string }) => c.id), [
      "viewer",
    ]);
    assert.equal(body.pageSize, 2);
    assert.equal(body.pageNumber, 2);
    assert.equal(body.total, 3);
    assert.equal(body.pageCount, 2);
    assert.equal(
      body.previousUri,
      "/api/v2/oauth/clients?pageSize=2&pageNumber=1",
    );
    assert.equal("nextUri" in body, false);
    for (const query of ["pageSize=0", "pageNumber=x", "pageSize=1.5"]) {
      const bad = await api(emulator, `/api/v2/oauth/clients?${query}`, admin);
      assert.equal(bad.status, 400, query);
      assert.equal((await bad.json()).code, "bad.request");
    }
  });

  await t.step("unknown id: 404 not.found", async () => {
    const response = await api(emulator, "/api/v2/oauth/clients/zzz", admin);
    assert.equal(response.status, 404);
    assert.equal((await response.json()).code, "not.found");
  });

  await t.step("POST secret returns the new secret", async () => {
    const response = await api(
      emulator,
      "/api/v2/oauth/clients/app/secret",
      admin,
      "POST",
    );
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.id, "app");
    assert.equal(typeof body.secret, "string");
    assert.ok(body.secret.length >= 32);
    assert.equal(emulator.getClientSecret("app"), body.secret);
    await token(emulator, "app", body.secret);
    const old = await requestToken(emulator, "app", "app-secret");
    assert.equal(old.status, 401);
    await old.body?.cancel();
  });

  await t.step("a client may regenerate its own secret", async () => {
    const response = await api(
      emulator,
      "/api/v2/oauth/clients/admin/secret",
      admin,
      "POST",
    );
    const { secret } = await response.json();
    const me = await api(emulator, "/api/v2/tokens/me", admin);
    assert.equal(me.status, 200, "own token stays valid");
    await me.body?.cancel();
    await token(emulator, "admin", secret);
  });

  await t.step("missing permission: 403", async () => {
    const none = emulator.issueToken("app");
    const get = await api(emulator, "/api/v2/oauth/clients/app", none);
    assert.equal(get.status, 403);
    const body = await get.json();
    assert.equal(body.code, "missing.any.permissions");
    assert.equal(body.status, 403);
    assert.match(body.message, /oauth:client:view/);

    const viewer = emulator.issueToken("viewer");
    const view = await api(emulator, "/api/v2/oauth/clients/app", viewer);
    assert.equal(view.status, 200);
    await view.body?.cancel();
    const edit = await api(
      emulator,
      "/api/v2/oauth/clients/app/secret",
      viewer,
      "POST",
    );
    assert.equal(edit.status, 403);
    assert.match((await edit.json()).message, /oauth:client:edit/);
  });

  await t.step("oauth:client:edit alone may not read a client", async () => {
    emulator.addClient({
      clientId: "editor",
      secret: "e",
      permissions: ["oauth:client:edit"],
    });
    const editor = emulator.issueToken("editor");
    for (const path of ["/api/v2/oauth/clients/app", "/api/v2/oauth/clients"]) {
      const response = await api(emulator, path, editor);
      assert.equal(response.status, 403, path);
      assert.match((await response.json()).message, /\[oauth:client:view\]/);
    }
  });

  await t.step("wildcard permissions", async () => {
    emulator.addClient({
      clientId: "wild",
      secret: "w",
      permissions: ["oauth:*:*"],
    });
    const wild = emulator.issueToken("wild");
    const response = await api(emulator, "/api/v2/oauth/clients/app", wild);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  await t.step("stats count regenerations", () => {
    assert.equal(emulator.stats().secretRegenerations, 2);
  });
});

Deno.test("faults", async (t) => {
  await using emulator = startGenesysEmulator({ clients: [APP] });
  const bearer = emulator.issueToken("app");
  const me = () => api(emulator, "/api/v2/tokens/me", bearer);

  await t.step("API status 429 with Retry-After and Genesys body", async () => {
    emulator.injectApiFaults({ kind: "status", status: 429, retryAfter: "7" });
    const response = await me();
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), "7");
    const body = await response.json();
    assert.equal(
      body.message,
      "Rate limit exceeded the maximum. Retry the request in [7] seconds",
    );
    assert.equal(body.code, "too.many.requests.retry.after");
    assert.equal(body.status, 429);
    assert.deepEqual(body.details, []);
    assert.deepEqual(body.errors, []);
  });

  await t.step("API 429 without retryAfter still sends one", async () => {
    emulator.injectApiFaults({ kind: "status", status: 429 });
    const response = await me();
    assert.equal(response.headers.get("retry-after"), "1");
    await response.body?.cancel();
  });

  await t.step("faults apply to the next N requests in order", async () => {
    emulator.injectApiFaults({ kind: "status", status: 503 }, 2);
    emulator.injectApiFaults({ kind: "status", status: 500 });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const response = await me();
      statuses.push(response.status);
      await response.body?.cancel();
    }
    assert.deepEqual(statuses, [503, 503, 500, 200]);
  });

  await t.step("default bodies", async () => {
    emulator.injectApiFaults({ kind: "status", status: 503 });
    const api503 = await me();
    const apiBody = await api503.json();
    assert.equal(apiBody.status, 503);
    assert.equal(apiBody.code, "service.unavailable");

    emulator.injectApiFaults({
      kind: "status",
      status: 502,
      contentType: "text/html",
    });
    const html = await me();
    assert.equal(html.status, 502);
    assert.match(html.headers.get("content-type")!, /text\/html/);
    assert.match(await html.text(), /<html>[\s\S]*Bad Gateway/);

    emulator.injectTokenFaults({ kind: "status", status: 500 });
    const token500 = await requestToken(emulator, "app", "app-secret");
    assert.equal(token500.status, 500);
    assert.equal((await token500.json()).error, "server_error");
  });

  await t.step("token 429 with Retry-After", async () => {
    emulator.injectTokenFaults({
      kind: "status",
      status: 429,
      retryAfter: "3",
    });
    const response = await requestToken(emulator, "app", "app-secret");
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), "3");
    const body = await response.json();
    assert.equal(body.error, "too_many_requests");
    assert.match(body.error_description, /\[3\] seconds/);
  });

  await t.step("status fault with explicit body and headers", async () => {
    emulator.injectApiFaults({
      kind: "status",
      status: 400,
      body: "nope",
      contentType: "text/plain",
      headers: { "x-extra": "1" },
    });
    const response = await me();
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("x-extra"), "1");
    assert.equal(await response.text(), "nope");
  });

  await t.step("body fault", async () => {
    emulator.injectTokenFaults({ kind: "body", body: '{"access_tok' });
    const response = await requestToken(emulator, "app", "app-secret");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /application\/json/);
    await assert.rejects(response.json(), SyntaxError);

    emulator.injectApiFaults({
      kind: "body",
      body: "<oops>",
      status: 502,
      contentType: "text/plain",
    });
    const apiResponse = await me();
    assert.equal(apiResponse.status, 502);
    assert.equal(await apiResponse.text(), "<oops>");
  });

  await t.step("delay fault", async () => {
    emulator.injectApiFaults({ kind: "delay", ms: 150 });
    const started = performance.now();
    const response = await me();
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.ok(performance.now() - started >= 140);
  });

  await t.step("delay fault vs. a client timeout", async () => {
    emulator.injectTokenFaults({ kind: "delay", ms: 5_000 });
    await assert.rejects(
      fetch(emulator.tokenUrl, {
        method: "POST",
        headers: {
          authorization: basic("app", "app-secret"),
          "content-type": "application/x-www-form-urlencoded",
        },
        body: "grant_type=client_credentials",
        signal: AbortSignal.timeout(50),
      }),
    );
  });

  await t.step("reset fault: fetch or the body read rejects", async () => {
    for (const inject of ["token", "api"] as const) {
      if (inject === "token") emulator.injectTokenFaults({ kind: "reset" });
      else emulator.injectApiFaults({ kind: "reset" });
      await assert.rejects(async () => {
        const response = inject === "token"
          ? await requestToken(emulator, "app", "app-secret")
          : await me();
        await response.text();
      });
    }
  });

  await t.step("clearFaults", async () => {
    emulator.injectApiFaults({ kind: "status", status: 500 }, 5);
    emulator.injectTokenFaults({ kind: "status", status: 500 }, 5);
    emulator.clearFaults();
    const response = await me();
    assert.equal(response.status, 200);
    await response.body?.cancel();
    await token(emulator, "app", "app-secret");
  });

  await t.step("invalid faults are refused", () => {
    assert.throws(
      () => emulator.injectApiFaults({ kind: "status", status: 42 }),
      RangeError,
    );
    assert.throws(
      () => emulator.injectApiFaults({ kind: "reset" }, 0),
      RangeError,
    );
    assert.throws(
      () => emulator.injectApiFaults({ kind: "delay", ms: -1 }),
      RangeError,
    );
  });
});

Deno.test("close releases delayed responses", async () => {
  const emulator = startGenesysEmulator({ clients: [APP] });
  const bearer = emulator.issueToken("app");
  emulator.injectApiFaults({ kind: "delay", ms: 60_000 });
  const pending = api(emulator, "/api/v2/tokens/me", bearer);
  // Let the request reach the server before closing.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const started = performance.now();
  await emulator.close();
  assert.ok(performance.now() - started < 5_000);
  const response = await pending;
  assert.equal(response.status, 200);
  await response.body?.cancel();
  await emulator.close(); // idempotent
});

Deno.test("rate limit", async (t) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  await using emulator = startGenesysEmulator({
    clock,
    clients: [APP],
    apiRateLimitPerMinute: 3,
  });
  const bearer = emulator.issueToken("app");
  const other = emulator.issueToken("app");

  await t.step("429 past the per-token limit", async () => {
    for (let i = 1; i <= 3; i++) {
      const response = await api(emulator, "/api/v2/tokens/me", bearer);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("inin-ratelimit-allowed"), "3");
      assert.equal(response.headers.get("inin-ratelimit-count"), String(i));
      await response.body?.cancel();
    }
    await clock.advance(15_000);
    const limited = await api(emulator, "/api/v2/tokens/me", bearer);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "45");
    const body = await limited.json();
    assert.equal(
      body.message,
      "Rate limit exceeded the maximum. Retry the request in [45] seconds",
    );
    assert.equal(body.code, "too.many.requests.retry.after");
    assert.equal(body.status, 429);
    assert.equal(typeof body.contextId, "string");
  });

  await t.step("the limit is per token", async () => {
    const response = await api(emulator, "/api/v2/tokens/me", other);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  await t.step("the window resets after a minute", async () => {
    await clock.advance(45_000);
    const response = await api(emulator, "/api/v2/tokens/me", bearer);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("inin-ratelimit-count"), "1");
    await response.body?.cancel();
  });
});

Deno.test("token-creation limit per client", async (t) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  await using emulator = startGenesysEmulator({
    clock,
    clients: [APP, ADMIN],
    tokenRateLimitPerMinute: 2,
  });

  await t.step(
    "past the limit: 400 invalid_request, rate limit exceeded;",
    async () => {
      await token(emulator, "app", "app-secret");
      const wrong = await requestToken(emulator, "app", "wrong");
      assert.equal(wrong.status, 401, "a failed login takes no slot");
      await wrong.body?.cancel();
      await token(emulator, "app", "app-secret");
      const limited = await requestToken(emulator, "app", "app-secret");
      assert.equal(limited.status, 400);
      const body = await limited.json();
      assert.equal(body.error, "invalid_request");
      assert.match(body.error_description, /^rate limit exceeded;/);
      assert.equal(body.description, body.error_description);
      // What Genesys's Terraform provider matches, formatted as the Go SDK does.
      assert.ok(
        `400 - ${body.error} (${body.error_description})`.startsWith(
          "400 - invalid_request (rate limit exceeded;",
        ),
      );
    },
  );

  await t.step("the limit is per client", async () => {
    await token(emulator, "admin", "admin-secret");
  });

  await t.step("the window ends a minute after it began", async () => {
    await clock.advance(59_999);
    const still = await requestToken(emulator, "app", "app-secret");
    assert.equal(still.status, 400);
    await still.body?.cancel();
    await clock.advance(1);
    await token(emulator, "app", "app-secret");
  });

  await t.step("options are checked", () => {
    assert.throws(
      () => startGenesysEmulator({ tokenRateLimitPerMinute: 0 }),
      /tokenRateLimitPerMinute must be a positive integer/,
    );
    assert.throws(
      () =>
        startGenesysEmulator({
          tokenRateLimitStatus: 503 as unknown as 429,
        }),
      /tokenRateLimitStatus must be 400 or 429/,
    );
  });
});

Deno.test("token-creation limit answered as a 429", async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  await using emulator = startGenesysEmulator({
    clock,
    clients: [APP],
    tokenRateLimitPerMinute: 1,
    tokenRateLimitStatus: 429,
  });
  await token(emulator, "app", "app-secret");
  await clock.advance(20_000);
  const limited = await requestToken(emulator, "app", "app-secret");
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "40");
  const body = await limited.json();
  assert.equal(body.error, "invalid_request");
  assert.match(body.error_description, /^rate limit exceeded;/);
});

Deno.test("stats", async () => {
  await using emulator = startGenesysEmulator({ clients: [APP, ADMIN] });
  const bearer = await token(emulator, "app", "app-secret");
  await token(emulator, "admin", "admin-secret");
  const bad = await requestToken(emulator, "app", "wrong");
  await bad.body?.cancel();
  const unknown = await requestToken(emulator, "ghost", "x");
  await unknown.body?.cancel();
  for (const credential of [bearer, bearer, "bogus"]) {
    const response = await api(emulator, "/api/v2/tokens/me", credential);
    await response.body?.cancel();
  }
  emulator.regenerateSecret("admin");

  const stats = emulator.stats();
  assert.deepEqual(stats, {
    tokenRequests: 4,
    tokenRequestsByClient: { app: 2, admin: 1, ghost: 1 },
    tokenFailures: 2,
    apiRequests: 3,
    apiRequestsByClient: { app: 2 },
    apiUnauthorized: 1,
    expiredTokenUses: 0,
    secretRegenerations: 1,
  });
  stats.tokenRequestsByClient.app = 99;
  assert.equal(emulator.stats().tokenRequestsByClient.app, 2, "a snapshot");

  emulator.resetStats();
  assert.deepEqual(emulator.stats(), {
    tokenRequests: 0,
    tokenRequestsByClient: {},
    tokenFailures: 0,
    apiRequests: 0,
    apiRequestsByClient: {},
    apiUnauthorized: 0,
    expiredTokenUses: 0,
    secretRegenerations: 0,
  });
});
