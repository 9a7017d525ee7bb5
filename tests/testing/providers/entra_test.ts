import assert from "node:assert/strict";
import { createDualSecretAuth } from "@rotating/dual-secret-auth";
import {
  type EntraEmulatorOptions,
  FakeClock,
  startEntraEmulator,
} from "@rotating/dual-secret-auth/testing";
import { basic, call, postForm } from "./support.ts";

const GRAPH_SCOPE = "https://graph.microsoft.com/.default";
const API_SCOPE = "api://orders/.default";
const FIRST = "abc8Q~first-secret-value";
const SECOND = "def8Q~second-secret-value";

function start(options: EntraEmulatorOptions = {}) {
  return startEntraEmulator({
    clock: new FakeClock(),
    applications: [
      {
        appId: "service-app",
        objectId: "11111111-0000-4000-8000-000000000001",
        secrets: [FIRST],
      },
      {
        appId: "admin-app",
        secrets: ["admin-secret"],
        graphPermissions: ["Application.ReadWrite.OwnedBy"],
        owns: ["service-app"],
      },
      {
        appId: "reader-app",
        secrets: ["reader-secret"],
        graphPermissions: ["Application.Read.All"],
      },
      { appId: "bare-app", secrets: ["bare-secret"] },
    ],
    ...options,
  });
}

function form(id: string, secret: string, scope = API_SCOPE) {
  return {
    grant_type: "client_credentials",
    client_id: id,
    client_secret: secret,
    scope,
  };
}

async function graphToken(
  entra: ReturnType<typeof start>,
  id: string,
  secret: string,
): Promise<string> {
  const response = await postForm(
    entra.tokenUrl,
    form(id, secret, GRAPH_SCOPE),
  );
  assert.equal(response.status, 200);
  return `Bearer ${(await response.json()).access_token}`;
}

Deno.test("Entra token endpoint: bodies and status codes", async (t) => {
  await using entra = start();

  await t.step("v2.0 URL of the tenant", () => {
    assert.equal(
      entra.tokenUrl,
      `${entra.url}/${entra.tenantId}/oauth2/v2.0/token`,
    );
  });

  await t.step("client_secret_post success", async () => {
    const response = await postForm(entra.tokenUrl, form("service-app", FIRST));
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 3599);
    assert.equal(typeof body.access_token, "string");
    assert.equal("scope" in body, false);
  });

  await t.step("client_secret_basic success", async () => {
    const response = await postForm(
      entra.tokenUrl,
      { grant_type: "client_credentials", scope: API_SCOPE },
      basic("service-app", FIRST),
    );
    assert.equal(response.status, 200);
  });

  await t.step("wrong secret: AADSTS7000215 invalid_client", async () => {
    const response = await postForm(entra.tokenUrl, form("service-app", "no"));
    assert.equal(response.status, 401);
    const body = await response.json();
    assert.equal(body.error, "invalid_client");
    assert.deepEqual(body.error_codes, [7000215]);
    assert.match(
      body.error_description,
      /^AADSTS7000215: Invalid client secret provided/,
    );
    for (const field of ["timestamp", "trace_id", "correlation_id"]) {
      assert.equal(typeof body[field], "string", field);
    }
  });

  await t.step("scope is required", async () => {
    const { scope: _, ...noScope } = form("service-app", FIRST);
    const response = await postForm(entra.tokenUrl, noScope);
    assert.equal(response.status, 400);
    const body = await response.json();
    assert.equal(body.error, "invalid_request");
    assert.deepEqual(body.error_codes, [900144]);
  });

  await t.step("scope must be {resource}/.default, one resource", async () => {
    const plain = await postForm(
      entra.tokenUrl,
      form("service-app", FIRST, "User.Read"),
    );
    assert.equal(plain.status, 400);
    assert.deepEqual((await plain.json()).error_codes, [1002012]);
    const two = await postForm(
      entra.tokenUrl,
      form("service-app", FIRST, `${API_SCOPE} ${GRAPH_SCOPE}`),
    );
    assert.equal(two.status, 400);
    assert.equal((await two.json()).error, "invalid_scope");
  });

  await t.step("unknown application: AADSTS700016", async () => {
    const response = await postForm(entra.tokenUrl, form("nobody", FIRST));
    assert.equal(response.status, 400);
    assert.deepEqual((await response.json()).error_codes, [700016]);
  });

  await t.step("unknown tenant: AADSTS90002", async () => {
    const response = await postForm(
      `${entra.url}/other-tenant/oauth2/v2.0/token`,
      form("service-app", FIRST),
    );
    assert.equal(response.status, 400);
    assert.deepEqual((await response.json()).error_codes, [90002]);
  });

  await t.step("throttled: AADSTS90055", async () => {
    entra.throttleTokenRequests();
    const response = await postForm(entra.tokenUrl, form("service-app", FIRST));
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), "5");
    const body = await response.json();
    assert.deepEqual(body.error_codes, [90055]);
    assert.match(body.error_description, /TenantThrottlingError/);
  });
});

Deno.test("Entra switches: 400 for invalid_client and throttling", async () => {
  await using entra = start({ invalidClientStatus: 400, throttleStatus: 400 });
  const wrong = await postForm(entra.tokenUrl, form("service-app", "no"));
  assert.equal(wrong.status, 400);
  assert.deepEqual((await wrong.json()).error_codes, [7000215]);
  entra.throttleTokenRequests();
  const throttled = await postForm(entra.tokenUrl, form("service-app", FIRST));
  assert.equal(throttled.status, 400);
  assert.deepEqual((await throttled.json()).error_codes, [90055]);
});

Deno.test("Entra expired secret: AADSTS7000222", async () => {
  const clock = new FakeClock();
  await using entra = startEntraEmulator({
    clock,
    applications: [{
      appId: "app",
      secrets: [{
        value: FIRST,
        endDateTime: new Date(clock.now() + 60_000).toISOString(),
      }],
    }],
  });
  assert.equal(
    (await postForm(entra.tokenUrl, form("app", FIRST))).status,
    200,
  );
  await clock.advance(60_000);
  const response = await postForm(entra.tokenUrl, form("app", FIRST));
  assert.equal(response.status, 401);
  const body = await response.json();
  assert.equal(body.error, "invalid_client");
  assert.deepEqual(body.error_codes, [7000222]);
});

Deno.test("Graph password API: addPassword, list, removePassword, permissions", async (t) => {
  const clock = new FakeClock();
  await using entra = start({ clock, propagationDelayMs: 10_000 });
  const admin = await graphToken(entra, "admin-app", "admin-secret");
  const app = `${entra.apiUrl}/applications/${entra.objectIdOf("service-app")}`;
  let added: Record<string, unknown> = {};

  await t.step("addPassword: 200 with secretText shown once", async () => {
    const { status, body } = await call(`${app}/addPassword`, admin, "POST", {
      passwordCredential: { displayName: "rotation" },
    });
    assert.equal(status, 200);
    added = body as Record<string, unknown>;
    assert.equal(typeof added.secretText, "string");
    assert.equal(added.hint, (added.secretText as string).slice(0, 3));
    assert.equal(added.displayName, "rotation");
    const start = Date.parse(added.startDateTime as string);
    const end = Date.parse(added.endDateTime as string);
    assert.equal(end - start, 2 * 365 * 24 * 60 * 60 * 1000, "two years");
  });

  await t.step("list: no values", async () => {
    const { status, body } = await call(
      `${app}?$select=passwordCredentials`,
      admin,
    );
    assert.equal(status, 200);
    const listed = (body as { passwordCredentials: Record<string, unknown>[] })
      .passwordCredentials;
    assert.equal(listed.length, 2);
    assert.ok(listed.every((entry) => entry.secretText === null));
    assert.deepEqual(Object.keys(body as object).sort(), [
      "@odata.context",
      "passwordCredentials",
    ]);
  });

  await t.step(
    "the new secret works only after the propagation delay",
    async () => {
      const secret = added.secretText as string;
      const early = await postForm(entra.tokenUrl, form("service-app", secret));
      assert.equal(early.status, 401);
      assert.deepEqual((await early.json()).error_codes, [7000215]);
      await clock.advance(10_000);
      const late = await postForm(entra.tokenUrl, form("service-app", secret));
      assert.equal(late.status, 200);
      await late.body?.cancel();
    },
  );

  await t.step("alternate key: /applications(appId='…')", async () => {
    const { status, body } = await call(
      `${entra.apiUrl}/applications(appId='service-app')`,
      admin,
    );
    assert.equal(status, 200);
    assert.equal((body as Record<string, unknown>).appId, "service-app");
  });

  await t.step("removePassword by keyId: 204, the secret dies", async () => {
    const [old] = entra.passwordCredentials("service-app");
    const response = await fetch(`${app}/removePassword`, {
      method: "POST",
      headers: { authorization: admin, "content-type": "application/json" },
      body: JSON.stringify({ keyId: old.keyId }),
    });
    assert.equal(response.status, 204);
    assert.equal(entra.passwordCredentials("service-app").length, 1);
    assert.equal(entra.stats().secretsCreated, 1);
    assert.equal(entra.stats().secretsRevoked, 1);
    const refused = await postForm(entra.tokenUrl, form("service-app", FIRST));
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
  });

  await t.step(
    "OwnedBy without ownership: 403 Authorization_RequestDenied",
    async () => {
      const other =
        `${entra.apiUrl}/applications(appId='bare-app')/addPassword`;
      const { status, body } = await call(other, admin, "POST", {});
      assert.equal(status, 403);
      assert.equal(
        (body as { error: { code: string } }).error.code,
        "Authorization_RequestDenied",
      );
    },
  );

  await t.step("Application.Read.All reads but cannot add", async () => {
    const reader = await graphToken(entra, "reader-app", "reader-secret");
    assert.equal((await call(app, reader)).status, 200);
    const { status } = await call(`${app}/addPassword`, reader, "POST", {});
    assert.equal(status, 403);
  });

  await t.step("no permission at all: 403", async () => {
    const bare = await graphToken(entra, "bare-app", "bare-secret");
    assert.equal((await call(app, bare)).status, 403);
  });

  await t.step(
    "a token for another resource: 401 InvalidAuthenticationToken",
    async () => {
      const response = await postForm(
        entra.tokenUrl,
        form("admin-app", "admin-secret"),
      );
      const token = `Bearer ${(await response.json()).access_token}`;
      const { status, body } = await call(app, token);
      assert.equal(status, 401);
      assert.equal(
        (body as { error: { code: string } }).error.code,
        "InvalidAuthenticationToken",
      );
    },
  );

  await t.step(
    "unknown application: 404 Request_ResourceNotFound",
    async () => {
      const { status } = await call(
        `${entra.apiUrl}/applications(appId='none')`,
        await graphToken(entra, "reader-app", "reader-secret"),
      );
      assert.equal(status, 404);
    },
  );
});

Deno.test("createDualSecretAuth on one Entra application with two secrets fails over when one is removed", async () => {
  await using entra = startEntraEmulator({
    applications: [{ appId: "service-app", secrets: [FIRST, SECOND] }],
  });
  const [first, second] = entra.passwordCredentials("service-app");
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "first", clientId: "service-app", clientSecret: FIRST },
      { label: "second", clientId: "service-app", clientSecret: SECOND },
    ],
    tokenUrl: entra.tokenUrl,
    scope: API_SCOPE,
  });
  const response = await auth.fetch(entra.resourceUrl);
  assert.equal(response.status, 200);
  assert.equal((await response.json()).aud, "api://orders");
  assert.equal(entra.stats().tokensBySecret?.[first.keyId], 1);

  entra.removePassword("service-app", first.keyId);
  auth.invalidate();
  await auth.getAccessToken();
  assert.equal(auth.status().active, "second");
  assert.equal(entra.stats().tokensBySecret?.[second.keyId], 1);
});

Deno.test("Entra propagation delay drawn per secret (the reported 4-18 s)", async () => {
  const clock = new FakeClock();
  const draws = [4_000, 18_000];
  await using entra = startEntraEmulator({
    clock,
    propagationDelayMs: () => draws.shift()!,
    applications: [{ appId: "app", secrets: [FIRST] }],
  });
  const fast = entra.addPassword("app").secretText!;
  const slow = entra.addPassword("app").secretText!;
  const status = async (secret: string) => {
    const response = await postForm(entra.tokenUrl, form("app", secret));
    await response.body?.cancel();
    return response.status;
  };
  assert.deepEqual(
    [await status(FIRST), await status(fast), await status(slow)],
    [200, 401, 401],
  );
  await clock.advance(4_000);
  assert.deepEqual([await status(fast), await status(slow)], [200, 401]);
  await clock.advance(14_000);
  assert.equal(await status(slow), 200);
  assert.deepEqual(draws, [], "one draw per new secret, none for seeds");
});

Deno.test("Entra propagation delay function must return ms >= 0", async () => {
  await using entra = startEntraEmulator({
    propagationDelayMs: () => -1,
    applications: [{ appId: "app" }],
  });
  assert.throws(() => entra.addPassword("app"), RangeError);
});
