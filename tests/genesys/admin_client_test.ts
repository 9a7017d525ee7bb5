import { DEFAULT_RETRY } from "../../src/retry.ts";
import assert from "node:assert/strict";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import {
  AdminForbiddenError,
  AdminRateLimitedError,
  AdminUnauthorizedError,
  GenesysApiError,
  GenesysErrorCode,
  OAuthClientNotFoundError,
  PlatformApiRequestError,
  PlatformApiUnavailableError,
} from "../../src/genesys/errors.ts";
import { DualSecretAuthError, RedirectRefusedError } from "../../src/errors.ts";
import { Secret } from "../../src/secret.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { InstantClock, NEVER_FIRES } from "./instant_clock.ts";

const ADMIN = {
  clientId: "admin-id",
  secret: "admin-secret-CANARY",
  permissions: ["oauth:client:view", "oauth:client:edit"],
};
const VIEWER = {
  clientId: "viewer-id",
  secret: "viewer-secret-CANARY",
  permissions: ["oauth:client:view"],
};
const GREEN = {
  clientId: "green-id",
  secret: "green-secret-CANARY",
  name: "Green",
  tokenLifetimeSeconds: 3600,
};

function setup(asClient = ADMIN.clientId, clock = new InstantClock()) {
  const emulator = startGenesysEmulator({ clients: [ADMIN, VIEWER, GREEN] });
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve(emulator.issueToken(asClient)),
    clock,
    random: () => 0.5,
    requestTimeoutMs: NEVER_FIRES,
  });
  return { emulator, admin, clock };
}

function assertNoSecret(error: unknown, emulator: GenesysEmulator) {
  const text = `${(error as Error).message} ${Deno.inspect(error)}`;
  for (const id of [ADMIN.clientId, VIEWER.clientId, GREEN.clientId]) {
    assert.ok(!text.includes(emulator.getClientSecret(id)));
  }
}

Deno.test("admin client against the emulator", async (t) => {
  await t.step("getClient reads id, name, state and lifetime", async () => {
    const { emulator, admin } = setup();
    await using _ = emulator;
    const client = await admin.getClient(GREEN.clientId);
    assert.deepEqual(client, {
      id: GREEN.clientId,
      name: GREEN.name,
      state: "active",
      accessTokenValiditySeconds: GREEN.tokenLifetimeSeconds,
    });
  });

  await t.step(
    "regenerateSecret returns the new secret, wrapped, and the old one dies",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      const regenerated = await admin.regenerateSecret(GREEN.clientId);
      assert.ok(regenerated.secret instanceof Secret);
      assert.equal(
        regenerated.secret.reveal(),
        emulator.getClientSecret(GREEN.clientId),
      );
      assert.notEqual(regenerated.secret.reveal(), GREEN.secret);
      assert.equal(regenerated.id, GREEN.clientId);
      assert.ok(
        !JSON.stringify(regenerated).includes(regenerated.secret.reveal()),
      );
      assert.ok(
        !Deno.inspect(regenerated).includes(regenerated.secret.reveal()),
      );
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );

  await t.step("401: the token is rejected", async () => {
    const { emulator, admin } = setup();
    await using _ = emulator;
    emulator.injectApiFaults({ kind: "status", status: 401 });
    const error = await admin.getClient(GREEN.clientId).catch((e) => e);
    assert.ok(error instanceof AdminUnauthorizedError);
    assert.ok(error instanceof DualSecretAuthError);
    assert.equal(error.code, GenesysErrorCode.ADMIN_UNAUTHORIZED);
    assert.equal(error.status, 401);
  });

  await t.step(
    "401 with invalidateToken: replayed once with a fresh token",
    async () => {
      await using emulator = startGenesysEmulator({ clients: [ADMIN, GREEN] });
      const invalidated: string[] = [];
      let token = emulator.issueToken(ADMIN.clientId);
      const admin = createGenesysAdminClient({
        apiUrl: emulator.apiUrl,
        getAccessToken: () => Promise.resolve(token),
        invalidateToken: (stale) => {
          invalidated.push(stale);
          token = emulator.issueToken(ADMIN.clientId);
        },
        clock: new InstantClock(),
        requestTimeoutMs: NEVER_FIRES,
      });
      const stale = token;
      emulator.revokeToken(stale);
      const client = await admin.getClient(GREEN.clientId);
      assert.equal(client.id, GREEN.clientId);
      assert.deepEqual(invalidated, [stale]);
    },
  );

  await t.step(
    "403 names the missing permission and how to fix it",
    async () => {
      const { emulator, admin } = setup(VIEWER.clientId);
      await using _ = emulator;
      const error = await admin.regenerateSecret(GREEN.clientId).catch((e) =>
        e
      );
      assert.ok(error instanceof AdminForbiddenError);
      assert.equal(error.code, GenesysErrorCode.ADMIN_FORBIDDEN);
      assert.equal(error.permission, "oauth:client:edit");
      assert.match(
        error.message,
        /lacks oauth:client:edit .*grant it a role with that permission/,
      );
      assert.equal(error.genesysCode, "missing.any.permissions");
      assert.ok(error.correlationId);
      assert.equal(emulator.getClientSecret(GREEN.clientId), GREEN.secret);
      assertNoSecret(error, emulator);
    },
  );

  await t.step("404: no such client", async () => {
    const { emulator, admin } = setup();
    await using _ = emulator;
    const error = await admin.regenerateSecret("nobody").catch((e) => e);
    assert.ok(error instanceof OAuthClientNotFoundError);
    assert.equal(error.code, GenesysErrorCode.OAUTH_CLIENT_NOT_FOUND);
    assert.equal(error.clientId, "nobody");
    assert.match(error.message, /no OAuth client with id nobody/);
  });

  await t.step(
    "429 with Retry-After waits that long, then succeeds",
    async () => {
      const { emulator, admin, clock } = setup();
      await using _ = emulator;
      emulator.injectApiFaults(
        { kind: "status", status: 429, retryAfter: "42" },
        2,
      );
      const regenerated = await admin.regenerateSecret(GREEN.clientId);
      assert.deepEqual(clock.waits, [42_000, 42_000]);
      assert.equal(
        regenerated.secret.reveal(),
        emulator.getClientSecret(GREEN.clientId),
      );
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );

  await t.step(
    "429 without the header: the wait is read from the Genesys message",
    async () => {
      const { emulator, admin, clock } = setup();
      await using _ = emulator;
      emulator.injectApiFaults({ kind: "status", status: 429, retryAfter: "" });
      const client = await admin.getClient(GREEN.clientId);
      assert.equal(client.id, GREEN.clientId);
      // The emulator's default body says "Retry the request in [1] seconds".
      assert.deepEqual(clock.waits, [1_000]);
    },
  );

  await t.step("429 retries are bounded", async () => {
    const { emulator, admin, clock } = setup();
    await using _ = emulator;
    emulator.injectApiFaults(
      { kind: "status", status: 429, retryAfter: "3" },
      100,
    );
    const error = await admin.getClient(GREEN.clientId).catch((e) => e);
    assert.ok(error instanceof AdminRateLimitedError);
    assert.equal(error.code, GenesysErrorCode.API_RATE_LIMITED);
    assert.equal(error.retryAfterMs, 3_000);
    const attempts = DEFAULT_RETRY.maxAttempts;
    assert.equal(clock.waits.length, attempts - 1);
    assert.equal(emulator.stats().apiRequests, attempts);
  });

  await t.step("429 asking for longer than allowed fails at once", async () => {
    const { emulator, admin, clock } = setup();
    await using _ = emulator;
    emulator.injectApiFaults({
      kind: "status",
      status: 429,
      retryAfter: "3600",
    });
    const error = await admin.getClient(GREEN.clientId).catch((e) => e);
    assert.ok(error instanceof AdminRateLimitedError);
    assert.match(error.message, /wait 3600 s/);
    assert.deepEqual(clock.waits, []);
  });

  await t.step("5xx is retried with backoff, then reported", async () => {
    const { emulator, admin, clock } = setup();
    await using _ = emulator;
    emulator.injectApiFaults({ kind: "status", status: 503 }, 1);
    const client = await admin.getClient(GREEN.clientId);
    assert.equal(client.id, GREEN.clientId);
    assert.equal(clock.waits.length, 1);

    emulator.injectApiFaults({ kind: "status", status: 502 }, 10);
    const error = await admin.getClient(GREEN.clientId).catch((e) => e);
    assert.ok(error instanceof PlatformApiUnavailableError);
    assert.equal(error.code, GenesysErrorCode.API_UNAVAILABLE);
    assert.equal(error.status, 502);
  });

  await t.step(
    "a lost regenerate response is retried and the last secret wins",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      emulator.injectApiFaults({ kind: "reset" });
      const regenerated = await admin.regenerateSecret(GREEN.clientId);
      assert.equal(emulator.stats().secretRegenerations, 2);
      assert.equal(
        regenerated.secret.reveal(),
        emulator.getClientSecret(GREEN.clientId),
      );
    },
  );

  await t.step(
    "a 200 without a secret is an error that quotes nothing",
    async () => {
      const { emulator, admin } = setup();
      await using _ = emulator;
      emulator.injectApiFaults({
        kind: "body",
        body: JSON.stringify({ id: GREEN.clientId, note: "CANARY-BODY" }),
      });
      const error = await admin.regenerateSecret(GREEN.clientId).catch((e) =>
        e
      );
      assert.ok(error instanceof PlatformApiRequestError);
      assert.ok(!error.message.includes("CANARY-BODY"));
      assert.match(error.message, /no secret/);
    },
  );

  await t.step("no error message ever holds a secret", async () => {
    const { emulator, admin } = setup();
    await using _ = emulator;
    const secretBody = JSON.stringify({ message: "x", secret: "CANARY-LEAK" });
    emulator.injectApiFaults({ kind: "body", status: 400, body: secretBody });
    const error = await admin.regenerateSecret(GREEN.clientId).catch((e) => e);
    assert.ok(error instanceof GenesysApiError);
    assert.ok(!Deno.inspect(error).includes("CANARY-LEAK"));
    emulator.injectApiFaults({ kind: "body", body: "not json CANARY-LEAK" });
    const invalid = await admin.regenerateSecret(GREEN.clientId).catch((e) =>
      e
    );
    assert.ok(invalid instanceof PlatformApiRequestError);
    assert.ok(!Deno.inspect(invalid).includes("CANARY-LEAK"));
  });

  await t.step("an insecure apiUrl is refused", () => {
    assert.throws(
      () =>
        createGenesysAdminClient({
          apiUrl: "http://api.mypurecloud.com",
          getAccessToken: () => Promise.resolve("t"),
        }),
      /https/,
    );
  });

  await t.step("an aborted call rejects with ABORTED", async () => {
    const { emulator, admin } = setup();
    await using _ = emulator;
    const controller = new AbortController();
    controller.abort();
    const error = await admin.getClient(GREEN.clientId, {
      signal: controller.signal,
    }).catch((e) => e);
    assert.equal(error.code, "ABORTED");
  });
});

Deno.test("admin client: server text and input are bounded", async (t) => {
  const TOKEN = "CANARY-ADMIN-TOKEN-5a1e";
  const client = (reply: () => Response) =>
    createGenesysAdminClient({
      apiUrl: "https://api.example.test",
      getAccessToken: () => Promise.resolve(TOKEN),
      fetch: () => Promise.resolve(reply()),
      clock: new InstantClock(),
      requestTimeoutMs: NEVER_FIRES,
    });

  await t.step(
    "a message, code or correlation id echoing the bearer token is redacted",
    async () => {
      const admin = client(() =>
        new Response(
          JSON.stringify({
            message: `Bad header Authorization: Bearer ${TOKEN}`,
            code: TOKEN,
            contextId: `ctx-${TOKEN}`,
          }),
          { status: 400, headers: { "inin-correlation-id": TOKEN } },
        )
      );
      const error = await admin.getClient("green-id").catch((e) => e);
      assert.ok(error instanceof PlatformApiRequestError);
      assert.match(error.message, /Bearer \[redacted\]/);
      const text = `${error.message} ${Deno.inspect(error)} ${
        JSON.stringify(error)
      }`;
      assert.ok(!text.includes(TOKEN), text);
      assert.equal(error.genesysCode, "[redacted]");
    },
  );

  await t.step("a redirect is refused once, naming the host", async () => {
    let calls = 0;
    const admin = client(() => {
      calls++;
      return new Response(null, {
        status: 301,
        headers: { location: "https://api.elsewhere.example/api/v2" },
      });
    });
    const error = await admin.getClient("green-id").catch((e) => e);
    assert.ok(error instanceof RedirectRefusedError, String(error));
    assert.equal(error.targetHost, "api.elsewhere.example");
    assert.equal(calls, 1);
  });

  await t.step("a body over 64 KiB is refused, not buffered", async () => {
    const admin = client(() =>
      new Response(JSON.stringify({ id: "x", pad: "y".repeat(100_000) }))
    );
    const error = await admin.getClient("green-id").catch((e) => e);
    assert.ok(error instanceof PlatformApiRequestError, String(error));
    assert.match(error.message, /larger than 65536 bytes/);
  });
});

Deno.test("admin client: a token unfit for a header is refused unsent and unquoted", async () => {
  const emulator = startGenesysEmulator({ clients: [ADMIN, GREEN] });
  await using _ = emulator;
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve("token\nTOKEN-CANARY"),
    clock: new InstantClock(),
    requestTimeoutMs: NEVER_FIRES,
  });
  const before = emulator.stats();
  const error = await admin.getClient(GREEN.clientId).catch((e) => e);
  assert.ok(error instanceof DualSecretAuthError);
  assert.equal(error.code, "CONFIG_INVALID");
  assert.match(error.message, /getAccessToken/);
  assert.doesNotMatch(
    `${error.message} ${Deno.inspect(error)}`,
    /TOKEN-CANARY/,
  );
  assert.deepEqual(emulator.stats(), before);
});
