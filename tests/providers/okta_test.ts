/**
 * The Okta adapter against the Okta emulator: create → prove → revoke, the
 * two-secret limit, a missing scope, throttling and 5xx.
 */
import assert from "node:assert/strict";
import {
  OktaErrorCode,
  oktaSecretProvider,
  type OktaSecretProviderOptions,
} from "../../src/providers/okta.ts";
import { ProviderApiError } from "../../src/providers/admin_http.ts";
import { systemClock } from "../../src/clock.ts";
import { ConfigError } from "../../src/errors.ts";
import { Secret } from "../../src/secret.ts";
import {
  type OktaAdminScope,
  startOktaEmulator,
} from "../../src/testing/providers/okta.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";
import { faultyFetch, prove, rejected } from "./admin_support.ts";

const APP = "0oaservice";
const OLD = "old-secret-value-0001";

function start(scopes?: OktaAdminScope[], secrets: string[] = [OLD]) {
  return startOktaEmulator({
    apps: [{ clientId: APP, secrets }],
    adminTokens: [{ token: "api-token", ...(scopes ? { scopes } : {}) }],
  });
}

function provider(
  apiUrl: string,
  options: Partial<OktaSecretProviderOptions> = {},
) {
  return oktaSecretProvider({
    orgUrl: apiUrl,
    scheme: "SSWS",
    getAccessToken: () => Promise.resolve("api-token"),
    ...options,
  });
}

Deno.test("Okta: issue a second secret, prove it at the token endpoint, revoke the old one (deactivate, delete)", async () => {
  await using okta = start();
  const okt = provider(okta.apiUrl);
  assert.equal(okt.model, "two-secrets");

  const before = await okt.inspectClient(APP);
  assert.equal(before.state, "active");
  assert.equal(before.maxSecrets, 2);
  assert.equal(before.secrets?.length, 1);
  const old = before.secrets![0];
  assert.equal(old.status, "active");
  assert.equal(typeof old.createdAt, "number");

  const issued = await okt.issueSecret(APP);
  assert.equal(issued.clientId, APP);
  assert.match(issued.secretId ?? "", /^ocs/);
  const proof = { tokenUrl: okta.tokenUrl, clientId: APP, scope: "api" };
  const { grant } = await prove({
    ...proof,
    secret: issued.secret,
    clock: systemClock,
  });
  assert.equal(grant.tokenType, "Bearer");
  // Both secrets work while consumers switch.
  assert.equal(
    await rejected({ ...proof, secret: new Secret(OLD), clock: systemClock }),
    false,
  );

  const during = await okt.inspectClient(APP);
  assert.deepEqual(
    during.secrets?.map((s) => [s.secretId, s.status]),
    [[old.secretId, "active"], [issued.secretId, "active"]],
  );

  await okt.revokeSecret!(APP, old.secretId);
  assert.deepEqual(
    okta.secrets(APP).map((s) => [s.id, s.status]),
    [[issued.secretId, "ACTIVE"]],
  );
  assert.equal(
    await rejected({ ...proof, secret: new Secret(OLD), clock: systemClock }),
    true,
  );
  // Revoking again finds nothing and changes nothing.
  await okt.revokeSecret!(APP, old.secretId);
  assert.equal(okta.secrets(APP).length, 1);
});

Deno.test("Okta: a third secret is refused as Okta refuses it (E0000001), saying to revoke first; nothing is added", async () => {
  await using okta = start(undefined, [OLD, "second-secret-value-02"]);
  const error = await provider(okta.apiUrl).issueSecret(APP).catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, OktaErrorCode.LIMIT_REACHED);
  assert.equal(error.kind, "limit");
  assert.equal(error.providerCode, "E0000001");
  assert.match(
    error.message,
    /You've reached the maximum number of client secrets per client/,
  );
  assert.match(error.message, /Revoke the secret no instance uses/);
  assert.equal(okta.secrets(APP).length, 2);
  assert.equal(okta.stats().apiRequests, 1, "a refusal is not retried");
});

Deno.test("Okta: the only active secret is not revoked; Okta's reason is passed on", async () => {
  await using okta = start();
  const okt = provider(okta.apiUrl);
  const [only] = (await okt.inspectClient(APP)).secrets!;
  const error = await okt.revokeSecret!(APP, only.secretId).catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, OktaErrorCode.REFUSED);
  assert.match(error.message, /You can't deactivate the only active/);
  assert.equal(okta.secrets(APP)[0].status, "ACTIVE");
});

Deno.test("Okta: a credential with okta.apps.read only may inspect; issuing names okta.apps.manage", async () => {
  await using okta = start(["okta.apps.read"]);
  const okt = provider(okta.apiUrl);
  assert.equal((await okt.inspectClient(APP)).secrets?.length, 1);
  const error = await okt.issueSecret(APP).catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, OktaErrorCode.FORBIDDEN);
  assert.equal(error.permission, "okta.apps.manage");
  assert.equal(error.providerCode, "E0000006");
  assert.match(error.message, /lacks okta\.apps\.manage/);
  assert.equal(okta.secrets(APP).length, 1);
});

Deno.test("Okta: an unknown token is 401 E0000011; an unknown app is not found", async () => {
  await using okta = start();
  const wrong = provider(okta.apiUrl, {
    getAccessToken: () => Promise.resolve("not-a-token"),
  });
  const denied = await wrong.inspectClient(APP).catch((e) => e);
  assert.equal(denied.code, OktaErrorCode.UNAUTHORIZED);
  assert.equal(denied.providerCode, "E0000011");
  assert.doesNotMatch(denied.message, /not-a-token/);
  const missing = await provider(okta.apiUrl).inspectClient("0oanone").catch((
    e,
  ) => e);
  assert.equal(missing.code, OktaErrorCode.NOT_FOUND);
});

Deno.test("Okta: E0000047 waits until X-Rate-Limit-Reset, then issues", async () => {
  await using okta = start();
  const clock = new InstantClock();
  const reset = Math.ceil(clock.now() / 1000) + 7;
  const faulty = faultyFetch([() =>
    Response.json({
      errorCode: "E0000047",
      errorSummary: "API call exceeded rate limit due to too many requests.",
      errorCauses: [],
    }, {
      status: 429,
      headers: {
        "x-rate-limit-limit": "600",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": String(reset),
      },
    })]);
  const okt = provider(okta.apiUrl, {
    fetch: faulty.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  });
  const issued = await okt.issueSecret(APP);
  assert.equal(okta.secrets(APP).length, 2);
  assert.equal(okta.secrets(APP)[1].id, issued.secretId);
  assert.deepEqual(clock.waits, [reset * 1000 - Date.UTC(2026, 0, 1)]);
});

Deno.test("Okta: a 503 is retried on a read, but not on adding a secret (it may have been added)", async () => {
  await using okta = start();
  const unavailable = () =>
    Response.json({ errorCode: "E0000009", errorSummary: "Internal" }, {
      status: 503,
    });
  const clock = new InstantClock();
  const reads = faultyFetch([unavailable, unavailable]);
  const info = await provider(okta.apiUrl, {
    fetch: reads.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).inspectClient(APP);
  assert.equal(info.secrets?.length, 1);
  assert.equal(clock.waits.length, 2);

  const writes = faultyFetch([unavailable]);
  const error = await provider(okta.apiUrl, {
    fetch: writes.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).issueSecret(APP).catch((e) => e);
  assert.equal(error.code, OktaErrorCode.UNAVAILABLE);
  assert.deepEqual(writes.seen, [
    `POST /api/v1/apps/${APP}/credentials/secrets`,
  ]);
});

Deno.test("Okta: a 401 is replayed once with a fresh token when invalidateToken is given", async () => {
  await using okta = start();
  const tokens = ["stale-token", "api-token"];
  const dropped: string[] = [];
  const okt = provider(okta.apiUrl, {
    getAccessToken: () => Promise.resolve(tokens.shift() ?? "api-token"),
    invalidateToken: (token) => dropped.push(token),
  });
  assert.equal((await okt.inspectClient(APP)).secrets?.length, 1);
  assert.deepEqual(dropped, ["stale-token"]);
});

Deno.test("Okta: a token that cannot be sent in a header (a line break inside) is refused without quoting it anywhere", async () => {
  await using okta = start();
  const token = "api-token\nwith-a-line-break";
  const clock = new InstantClock();
  const error = await provider(okta.apiUrl, {
    getAccessToken: () => Promise.resolve(token),
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).inspectClient(APP).catch((e) => e);
  assert.ok(error instanceof ConfigError);
  assert.equal(error.option, "getAccessToken");
  // Fetch's own TypeError quotes the header value: it must not be the cause.
  for (
    const shown of [
      Deno.inspect(error, { depth: 10 }),
      JSON.stringify(error),
      String(error.cause),
    ]
  ) {
    assert.doesNotMatch(shown, /with-a-line-break/);
  }
  // Nothing was sent, so nothing was retried.
  assert.deepEqual(clock.waits, []);
});

Deno.test("Okta: a 201 to the add that lacks the secret's id says a secret may have been added", async () => {
  await using okta = start();
  const error = await provider(okta.apiUrl, {
    fetch: async (input, init) => {
      const response = await fetch(new Request(input, init));
      if (response.status !== 201) return response;
      const { id: _id, ...rest } = await response.json();
      return Response.json(rest, { status: 201 });
    },
  }).issueSecret(APP).catch((e) => e);
  assert.equal(error.code, OktaErrorCode.REQUEST_FAILED);
  assert.equal(okta.secrets(APP).length, 2);
  assert.match(error.message, /a secret may have been added/);
});

Deno.test("Okta: a scheme that is neither SSWS nor Bearer is refused at construction, before a header could quote the token", async () => {
  await using okta = start();
  for (const scheme of ["SSWS\n", "Token"]) {
    assert.throws(
      () =>
        provider(okta.apiUrl, {
          scheme: scheme as "SSWS",
        }),
      (error: unknown) =>
        error instanceof ConfigError && error.option === "scheme",
    );
  }
});
