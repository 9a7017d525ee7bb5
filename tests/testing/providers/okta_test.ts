import assert from "node:assert/strict";
import { createDualSecretAuth } from "@rotating/dual-secret-auth";
import {
  FakeClock,
  startOktaEmulator,
} from "@rotating/dual-secret-auth/testing";
import { basic, call, postForm } from "./support.ts";

const FIRST = "first-secret-value-0001";
const SECOND = "second-secret-value-0002";
const SSWS = "SSWS admin-token";

function start(clock = new FakeClock()) {
  return startOktaEmulator({
    clock,
    apps: [
      { clientId: "0oaservice", secrets: [FIRST] },
      {
        clientId: "0oapost",
        secrets: [FIRST],
        tokenEndpointAuthMethod: "client_secret_post",
      },
    ],
    adminTokens: [
      { token: "admin-token" },
      { token: "reader-token", scopes: ["okta.apps.read"] },
    ],
  });
}

Deno.test("Okta token endpoint: bodies and status codes", async (t) => {
  const clock = new FakeClock();
  await using okta = start(clock);
  const url = okta.tokenUrl;
  const grant = { grant_type: "client_credentials", scope: "api" };

  await t.step("custom authorization server URL", () => {
    assert.equal(url, `${okta.url}/oauth2/default/v1/token`);
  });

  await t.step("client_secret_basic success", async () => {
    const response = await postForm(url, grant, basic("0oaservice", FIRST));
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.deepEqual(Object.keys(body).sort(), [
      "access_token",
      "expires_in",
      "scope",
      "token_type",
    ]);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 3600);
    assert.equal(body.scope, "api");
    assert.equal(body.access_token.split(".").length, 3, "a JWT");
  });

  await t.step("client_secret_post success for a post client", async () => {
    const response = await postForm(url, {
      ...grant,
      client_id: "0oapost",
      client_secret: FIRST,
    });
    assert.equal(response.status, 200);
  });

  await t.step("the other method is refused", async () => {
    const response = await postForm(url, grant, basic("0oapost", FIRST));
    assert.equal(response.status, 401);
    assert.equal((await response.json()).error, "invalid_client");
  });

  await t.step(
    "credentials in header and body: 400 invalid_request",
    async () => {
      const response = await postForm(
        url,
        { ...grant, client_id: "0oaservice", client_secret: FIRST },
        basic("0oaservice", FIRST),
      );
      assert.equal(response.status, 400);
      assert.equal((await response.json()).error, "invalid_request");
    },
  );

  await t.step("no scope: 400 invalid_scope", async () => {
    const response = await postForm(
      url,
      { grant_type: "client_credentials" },
      basic("0oaservice", FIRST),
    );
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), {
      error: "invalid_scope",
      error_description: "No scopes were requested.",
    });
  });

  await t.step("wrong secret: 401 with Okta's text", async () => {
    const response = await postForm(url, grant, basic("0oaservice", "nope"));
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), {
      error: "invalid_client",
      error_description:
        "The client secret supplied for a confidential client is invalid.",
    });
  });

  await t.step("the org server refuses client secrets", async () => {
    const response = await postForm(
      `${okta.url}/oauth2/v1/token`,
      grant,
      basic("0oaservice", FIRST),
    );
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error, "invalid_client");
  });

  await t.step(
    "throttled: 429 E0000047 with X-Rate-Limit headers",
    async () => {
      okta.throttleTokenRequests();
      const response = await postForm(url, grant, basic("0oaservice", FIRST));
      assert.equal(response.status, 429);
      assert.equal((await response.json()).errorCode, "E0000047");
      const reset = Number(response.headers.get("x-rate-limit-reset"));
      assert.equal(reset, Math.ceil(clock.now() / 1000) + 60, "epoch seconds");
      assert.equal(response.headers.get("x-rate-limit-remaining"), "0");
      const next = await postForm(url, grant, basic("0oaservice", FIRST));
      assert.equal(next.status, 200);
    },
  );
});

Deno.test("Okta secret API: lifecycle, limits and permissions", async (t) => {
  await using okta = start();
  const secrets = `${okta.apiUrl}/api/v1/apps/0oaservice/credentials/secrets`;
  const grant = { grant_type: "client_credentials", scope: "api" };
  let created = "";
  let oldId = "";

  await t.step("list: the seeded secret, value included", async () => {
    const { status, body } = await call(secrets, SSWS);
    assert.equal(status, 200);
    const list = body as {
      id: string;
      status: string;
      client_secret: string;
    }[];
    assert.equal(list.length, 1);
    assert.equal(list[0].status, "ACTIVE");
    assert.equal(list[0].client_secret, FIRST);
    assert.match(list[0].id, /^ocs/);
    oldId = list[0].id;
  });

  await t.step("POST {} creates a second ACTIVE secret: 201", async () => {
    const { status, body } = await call(secrets, SSWS, "POST", {});
    assert.equal(status, 201);
    const secret = body as Record<string, unknown>;
    assert.equal(secret.status, "ACTIVE");
    assert.equal(typeof secret.client_secret, "string");
    assert.ok("deactivate" in (secret._links as object));
    created = secret.client_secret as string;
    const response = await postForm(
      okta.tokenUrl,
      grant,
      basic("0oaservice", created),
    );
    assert.equal(response.status, 200, "both secrets work");
  });

  await t.step("a third secret is refused", async () => {
    const { status, body } = await call(secrets, SSWS, "POST", {
      client_secret: "a-third-secret-value",
      status: "ACTIVE",
    });
    assert.equal(status, 400);
    const error = body as Record<string, unknown>;
    assert.equal(error.errorCode, "E0000001");
    assert.equal(
      error.errorSummary,
      "Api validation failed: OAuth2ClientSecretMediated",
    );
    assert.deepEqual(error.errorCauses, [{
      errorSummary:
        "You've reached the maximum number of client secrets per client.",
    }]);
  });

  await t.step("an active secret cannot be deleted", async () => {
    const { status, body } = await call(`${secrets}/${oldId}`, SSWS, "DELETE");
    assert.equal(status, 400);
    assert.equal(
      (body as Record<string, unknown>).errorSummary,
      "Deactivate the secret before deleting it.",
    );
  });

  await t.step("missing okta.apps.manage: 403 E0000006", async () => {
    const deactivate = `${secrets}/${oldId}/lifecycle/deactivate`;
    const denied = await call(deactivate, "SSWS reader-token", "POST");
    assert.equal(denied.status, 403);
    assert.equal(
      (denied.body as Record<string, unknown>).errorCode,
      "E0000006",
    );
    const read = await call(secrets, "SSWS reader-token");
    assert.equal(read.status, 200, "reading needs okta.apps.read only");
    const unknown = await call(secrets, "SSWS who");
    assert.equal(unknown.status, 401);
    assert.equal(
      (unknown.body as Record<string, unknown>).errorCode,
      "E0000011",
    );
  });

  await t.step("deactivate then delete the old secret", async () => {
    const deactivated = await call(
      `${secrets}/${oldId}/lifecycle/deactivate`,
      SSWS,
      "POST",
    );
    assert.equal(deactivated.status, 200);
    assert.equal(
      (deactivated.body as Record<string, unknown>).status,
      "INACTIVE",
    );
    const refused = await postForm(
      okta.tokenUrl,
      grant,
      basic("0oaservice", FIRST),
    );
    assert.equal(refused.status, 401, "an INACTIVE secret is refused");
    const deleted = await fetch(`${secrets}/${oldId}`, {
      method: "DELETE",
      headers: { authorization: SSWS },
    });
    assert.equal(deleted.status, 204);
    assert.equal(okta.secrets("0oaservice").length, 1);
    const stats = okta.stats();
    assert.equal(stats.secretsCreated, 1, "the API's one created secret");
    assert.equal(stats.secretsRevoked, 1, "deactivated, then deleted");
  });

  await t.step("the only active secret cannot be deactivated", async () => {
    const [only] = okta.secrets("0oaservice");
    const { status, body } = await call(
      `${secrets}/${only.id}/lifecycle/deactivate`,
      SSWS,
      "POST",
    );
    assert.equal(status, 400);
    assert.equal(
      (body as Record<string, unknown>).errorSummary,
      "You can't deactivate the only active client secret.",
    );
  });

  await t.step(
    "a caller's value must be 14-100 printable characters",
    async () => {
      const { status } = await call(secrets, SSWS, "POST", {
        client_secret: "short",
      });
      assert.equal(status, 400);
    },
  );

  await t.step("unknown app: 404 E0000007", async () => {
    const { status, body } = await call(
      `${okta.apiUrl}/api/v1/apps/0oanone/credentials/secrets`,
      SSWS,
    );
    assert.equal(status, 404);
    assert.equal((body as Record<string, unknown>).errorCode, "E0000007");
  });
});

Deno.test("Okta switches: propagation delay and tokens dying with their secret", async () => {
  const clock = new FakeClock();
  await using okta = startOktaEmulator({
    clock,
    propagationDelayMs: 5_000,
    revokeTokensWithSecret: true,
    apps: [{ clientId: "0oaservice", secrets: [FIRST] }],
  });
  const grant = { grant_type: "client_credentials", scope: "api" };
  const added = okta.addSecret("0oaservice", SECOND);
  const early = await postForm(
    okta.tokenUrl,
    grant,
    basic("0oaservice", SECOND),
  );
  assert.equal(early.status, 401, "refused during the delay");
  await clock.advance(5_000);
  const late = await postForm(
    okta.tokenUrl,
    grant,
    basic("0oaservice", SECOND),
  );
  assert.equal(late.status, 200);
  const token = (await late.json()).access_token;
  const ok = await call(okta.resourceUrl, `Bearer ${token}`);
  assert.equal(ok.status, 200);
  okta.removeSecret("0oaservice", added.id);
  const dead = await call(okta.resourceUrl, `Bearer ${token}`);
  assert.equal(dead.status, 401);
});

Deno.test("createDualSecretAuth on one Okta client with two secrets fails over when one is removed", async () => {
  await using okta = startOktaEmulator({
    apps: [{ clientId: "0oaservice", secrets: [FIRST, SECOND] }],
  });
  const [first, second] = okta.secrets("0oaservice");
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "first", clientId: "0oaservice", clientSecret: FIRST },
      { label: "second", clientId: "0oaservice", clientSecret: SECOND },
    ],
    tokenUrl: okta.tokenUrl,
    scope: "api",
  });
  const response = await auth.fetch(okta.resourceUrl);
  assert.equal(response.status, 200);
  assert.equal((await response.json()).client_id, "0oaservice");
  assert.equal(okta.stats().tokensBySecret?.[first.id], 1);

  okta.removeSecret("0oaservice", first.id);
  auth.invalidate();
  await auth.getAccessToken();
  assert.equal(auth.status().active, "second");
  assert.equal(okta.stats().tokensBySecret?.[second.id], 1);
  const after = await auth.fetch(okta.resourceUrl);
  assert.equal(after.status, 200);
  await after.body?.cancel();
});
