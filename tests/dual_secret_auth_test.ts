import assert from "node:assert/strict";
import { ClosedError } from "./support/closed_error.ts";
import type { DualSecretAuthOptions } from "../src/config.ts";
import {
  AbortedError,
  AllCredentialsRejectedError,
  ConfigError,
  CredentialRejectedError,
  ErrorCode,
  RateLimitedError,
  RotationFailedError,
  TokenEndpointUnavailableError,
} from "../src/errors.ts";
import {
  deferred,
  driveClock,
  networkError,
  oauthErrorResponse,
  textResponse,
  tokenResponse,
} from "./support/fake_token_endpoint.ts";
import {
  fixtureCredentials,
  startDualAuthFixture,
  TOKEN_PREFIX,
} from "./support/dual_auth_fixture.ts";

const BLUE_SECRET = "CANARY-SECRET-blue-91f2";
const GREEN_SECRET = "CANARY-SECRET-green-4c7d";
const CREDENTIALS = fixtureCredentials(BLUE_SECRET, GREEN_SECRET);
const { blue: BLUE, green: GREEN } = CREDENTIALS;

function setup(options: Partial<DualSecretAuthOptions> = {}) {
  return startDualAuthFixture(CREDENTIALS, options);
}

function assertNoCanary(text: string): void {
  assert.ok(!text.includes("CANARY-SECRET"), `secret leaked: ${text}`);
  assert.ok(!text.includes(TOKEN_PREFIX), `token leaked: ${text}`);
}

function describeError(error: unknown): string {
  return `${error}\n${(error as Error)?.stack}\n${
    Deno.inspect(error, { depth: 10 })
  }\n${JSON.stringify(error)}\n${
    Deno.inspect((error as Error)?.cause, { depth: 10 })
  }`;
}

async function isPending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol("pending");
  const winner = await Promise.race([
    promise.then(() => "settled", () => "settled"),
    new Promise((r) => setTimeout(() => r(marker), 0)),
  ]);
  return winner === marker;
}

Deno.test("getAccessToken: caching and single flight", async (t) => {
  await t.step("many concurrent callers share one token request", async () => {
    const { auth, endpoint } = setup();
    await using _ = auth;
    const reply = deferred();
    endpoint.queueToken(reply);
    const callers = Array.from({ length: 50 }, () => auth.getAccessToken());
    await reply.started;
    reply.resolve(tokenResponse("shared", 600));
    const tokens = await Promise.all(callers);
    assert.ok(tokens.every((token) => token === "shared"));
    assert.equal(endpoint.tokenCalls, 1);
    assert.equal(await auth.getAccessToken(), "shared");
    assert.equal(endpoint.tokenCalls, 1);
  });

  await t.step("a failed request is not cached", async () => {
    const { auth, endpoint } = setup({ retry: { maxAttempts: 1 } });
    await using _ = auth;
    endpoint.queueToken(textResponse(503));
    const error = await auth.getAccessToken().catch((e) => e);
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.match(await auth.getAccessToken(), /^CANARY-TOKEN-blue-id-/);
    assert.equal(endpoint.tokenCalls, 2);
  });

  await t.step("a caller's signal aborts only its own wait", async () => {
    const { auth, endpoint } = setup();
    await using _ = auth;
    const reply = deferred();
    endpoint.queueToken(reply);
    const controller = new AbortController();
    const mine = auth.getAccessToken({ signal: controller.signal }).catch((
      e,
    ) => e);
    const theirs = auth.getAccessToken();
    await reply.started;
    controller.abort();
    const error = await mine;
    assert.ok(error instanceof AbortedError);
    assert.equal(error.code, ErrorCode.ABORTED);
    assert.equal(reply.aborted, false);
    reply.resolve(tokenResponse("for-them"));
    assert.equal(await theirs, "for-them");
    assert.equal(endpoint.tokenCalls, 1);
  });
});

Deno.test("getAccessToken: refresh ahead of expiry", async (t) => {
  await t.step(
    "inside the margin: cached token at once, one background refresh",
    async () => {
      const { auth, endpoint, clock, ofType } = setup();
      await using _ = auth;
      const first = await auth.getAccessToken(); // expires at 600 s, refresh at 540 s
      await clock.advance(545_000);
      const reply = deferred();
      endpoint.queueToken(reply);
      const served = await Promise.all(
        Array.from({ length: 10 }, () => auth.getAccessToken()),
      );
      assert.ok(served.every((token) => token === first));
      await reply.started;
      assert.equal(endpoint.tokenCalls, 2);
      assert.equal(auth.status().credentials[0].state, "stale");
      reply.resolve(tokenResponse("refreshed", 600));
      await clock.advance(0);
      assert.equal(await auth.getAccessToken(), "refreshed");
      assert.equal(endpoint.tokenCalls, 2);
      const acquired = ofType("token.acquired");
      assert.deepEqual(acquired.map((e) => e.background), [false, true]);
    },
  );

  await t.step(
    "jitter moves refreshAt within 80-100 % of the margin",
    async () => {
      for (
        const [random, refreshAt] of [[0, 540_000], [0.5, 546_000], [
          0.999,
          551_988,
        ]]
      ) {
        const { auth, endpoint, clock } = setup({ random: () => random });
        await using _ = auth;
        await auth.getAccessToken();
        clock.set(refreshAt - 1);
        await auth.getAccessToken();
        assert.equal(endpoint.tokenCalls, 1, `no refresh before ${refreshAt}`);
        clock.set(Math.ceil(refreshAt));
        await auth.getAccessToken();
        await clock.advance(0);
        assert.equal(endpoint.tokenCalls, 2, `refresh from ${refreshAt}`);
      }
    },
  );

  await t.step("the margin is capped at half the lifetime", async () => {
    const { auth, endpoint, clock } = setup({ refreshMarginMs: 3_600_000 });
    await using _ = auth;
    await auth.getAccessToken(); // 600 s lifetime: refresh from 300 s
    clock.set(299_999);
    await auth.getAccessToken();
    assert.equal(endpoint.tokenCalls, 1);
    clock.set(300_000);
    await auth.getAccessToken();
    await clock.advance(0);
    assert.equal(endpoint.tokenCalls, 2);
  });

  await t.step("a token past expiry is never returned", async () => {
    const { auth, endpoint, clock } = setup();
    await using _ = auth;
    const old = await auth.getAccessToken();
    const reply = deferred();
    endpoint.queueToken(reply);
    clock.set(600_000); // a wall-clock jump straight past expiry
    const next = auth.getAccessToken();
    await reply.started;
    assert.equal(await isPending(next), true);
    assert.equal(auth.status().credentials[0].state, "fetching");
    reply.resolve(tokenResponse("new", 600));
    const token = await next;
    assert.equal(token, "new");
    assert.notEqual(token, old);
  });

  await t.step(
    "a failing background refresh keeps serving and retries later",
    async () => {
      const { auth, endpoint, clock, ofType } = setup({
        retry: { maxAttempts: 1, maxDelayMs: 5_000 },
      });
      await using _ = auth;
      const first = await auth.getAccessToken();
      clock.set(550_000);
      endpoint.queueToken(textResponse(503));
      assert.equal(await auth.getAccessToken(), first);
      await clock.advance(0);
      assert.equal(endpoint.tokenCalls, 2);
      for (let i = 0; i < 5; i++) {
        assert.equal(await auth.getAccessToken(), first);
        await clock.advance(500);
      }
      assert.equal(endpoint.tokenCalls, 2, "not on every call");
      const [blue] = auth.status().credentials;
      assert.equal(blue.state, "stale");
      assert.equal(blue.lastError?.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
      assert.equal(ofType("token.failed")[0].background, true);
      assert.equal(auth.status().active, "blue");
      clock.set(555_000);
      assert.equal(await auth.getAccessToken(), first);
      await clock.advance(0);
      assert.equal(endpoint.tokenCalls, 3);
      assert.notEqual(await auth.getAccessToken(), first);
    },
  );
});

Deno.test("failover", async (t) => {
  await t.step(
    "a rejected active: the standby serves the same caller",
    async () => {
      const { auth, accepted, clientsAsked, ofType } = setup();
      await using _ = auth;
      accepted.delete(`blue-id:${BLUE_SECRET}`);
      const token = await auth.getAccessToken();
      assert.match(token, /^CANARY-TOKEN-green-id-/);
      assert.deepEqual(clientsAsked(), ["blue-id", "green-id"]);
      const failovers = ofType("failover");
      assert.equal(failovers.length, 1);
      assert.equal(failovers[0].from, "blue");
      assert.equal(failovers[0].to, "green");
      assert.equal(failovers[0].error.code, ErrorCode.CREDENTIAL_REJECTED);
      assert.equal(failovers[0].error.oauthError, "invalid_client");
      assert.equal(auth.status().active, "green");
      assert.equal(auth.status().credentials[0].state, "rejected");
    },
  );

  await t.step("concurrent callers cause one failover", async () => {
    const { auth, accepted, clientsAsked, ofType } = setup();
    await using _ = auth;
    accepted.delete(`blue-id:${BLUE_SECRET}`);
    const tokens = await Promise.all(
      Array.from({ length: 20 }, () => auth.getAccessToken()),
    );
    assert.equal(new Set(tokens).size, 1);
    assert.deepEqual(clientsAsked(), ["blue-id", "green-id"]);
    assert.equal(ofType("failover").length, 1);
  });

  await t.step("no flap back once the first is healthy again", async () => {
    const { auth, accepted, clientsAsked, clock } = setup();
    await using _ = auth;
    accepted.delete(`blue-id:${BLUE_SECRET}`);
    await auth.getAccessToken();
    accepted.add(`blue-id:${BLUE_SECRET}`);
    auth.invalidate();
    await auth.getAccessToken();
    clock.set(10_000_000);
    await auth.getAccessToken();
    assert.deepEqual(clientsAsked(), [
      "blue-id",
      "green-id",
      "green-id",
      "green-id",
    ]);
    assert.equal(auth.status().active, "green");
  });

  const transient: [string, () => Response | Error][] = [
    ["503", () => textResponse(503)],
    ["429", () => textResponse(429, "", { "retry-after": "1" })],
    ["a network error", () => networkError()],
  ];
  for (const [name, reply] of transient) {
    await t.step(`${name} on the active: no failover`, async () => {
      const { auth, endpoint, clock, clientsAsked, ofType } = setup({
        retry: { maxAttempts: 2 },
      });
      await using _ = auth;
      endpoint.queueToken(reply(), reply());
      const error = await driveClock(clock, auth.getAccessToken()).catch((
        e,
      ) => e);
      assert.ok(
        error instanceof TokenEndpointUnavailableError ||
          error instanceof RateLimitedError,
      );
      assert.equal(
        error.code,
        name === "429"
          ? ErrorCode.RATE_LIMITED
          : ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
      );
      assert.deepEqual(clientsAsked(), ["blue-id", "blue-id"]);
      assert.equal(ofType("failover").length, 0);
      assert.equal(auth.status().active, "blue");
      assert.equal(auth.status().credentials[0].state, "unavailable");
    });
  }

  await t.step("a timeout on the active: no failover", async () => {
    const { auth, endpoint, clock, clientsAsked, ofType } = setup({
      retry: { maxAttempts: 1 },
      requestTimeoutMs: 2_000,
    });
    await using _ = auth;
    const reply = deferred();
    endpoint.queueToken(reply);
    const pending = auth.getAccessToken().catch((e) => e);
    await reply.started;
    await clock.advance(2_000);
    const error = await pending;
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.equal(reply.aborted, true);
    assert.deepEqual(clientsAsked(), ["blue-id"]);
    assert.equal(ofType("failover").length, 0);
  });

  await t.step(
    "every credential rejected: AllCredentialsRejectedError",
    async () => {
      const { auth, endpoint, clientsAsked } = setup();
      await using _ = auth;
      endpoint.queueToken(
        oauthErrorResponse(401, "invalid_client", "authentication failed"),
        oauthErrorResponse(400, "unauthorized_client"),
      );
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof AllCredentialsRejectedError);
      assert.equal(error.code, ErrorCode.ALL_CREDENTIALS_REJECTED);
      assert.deepEqual(error.credentials, [
        {
          label: "blue",
          state: "rejected",
          oauthError: "invalid_client",
          status: 401,
        },
        {
          label: "green",
          state: "rejected",
          oauthError: "unauthorized_client",
          status: 400,
        },
      ]);
      assert.match(
        error.message,
        /blue: rejected \(invalid_client, HTTP 401\)/,
      );
      assert.match(error.message, /green: rejected \(unauthorized_client/);
      assert.ok(error.cause instanceof CredentialRejectedError);
      assertNoCanary(describeError(error));
      // Rejections stand: no more token requests until replaced or re-verified.
      const again = await auth.getAccessToken().catch((e) => e);
      assert.ok(again instanceof AllCredentialsRejectedError);
      assert.equal(again.code, ErrorCode.ALL_CREDENTIALS_REJECTED);
      assert.deepEqual(clientsAsked(), ["blue-id", "green-id"]);
    },
  );

  await t.step("a rejected background refresh fails over too", async () => {
    const { auth, accepted, clock, ofType } = setup();
    await using _ = auth;
    const blueToken = await auth.getAccessToken();
    accepted.delete(`blue-id:${BLUE_SECRET}`);
    clock.set(550_000);
    assert.equal(await auth.getAccessToken(), blueToken);
    await clock.advance(0);
    assert.equal(ofType("failover").length, 1);
    assert.equal(auth.status().active, "green");
    assert.match(await auth.getAccessToken(), /^CANARY-TOKEN-green-id-/);
  });
});

Deno.test("rotate", async (t) => {
  await t.step("verifies with a fresh request, then switches", async () => {
    const { auth, clientsAsked, ofType } = setup();
    await using _ = auth;
    await auth.getAccessToken();
    const toGreen = await auth.rotate({ to: "green" });
    assert.equal(toGreen.from, "blue");
    assert.equal(toGreen.to, "green");
    assert.equal(toGreen.expiresAt, 600_000);
    assert.equal(auth.status().active, "green");
    const greenToken = await auth.getAccessToken();
    assert.match(greenToken, /^CANARY-TOKEN-green-id-/);
    // blue has a cached token, yet rotating back asks the endpoint again.
    await auth.rotate({ to: "blue" });
    assert.deepEqual(clientsAsked(), ["blue-id", "green-id", "blue-id"]);
    assert.deepEqual(
      ofType("rotated").map((e) => [e.from, e.to]),
      [["blue", "green"], ["green", "blue"]],
    );
  });

  await t.step(
    "a failed verification keeps the active credential",
    async () => {
      const { auth, accepted, ofType } = setup();
      await using _ = auth;
      accepted.delete(`green-id:${GREEN_SECRET}`);
      const error = await auth.rotate({ to: "green" }).catch((e) => e);
      assert.ok(error instanceof RotationFailedError);
      assert.equal(error.code, ErrorCode.ROTATION_FAILED);
      assert.equal(error.active, "blue");
      assert.equal(error.target, "green");
      assert.ok(error.cause instanceof CredentialRejectedError);
      assert.equal(error.cause.code, ErrorCode.CREDENTIAL_REJECTED);
      assertNoCanary(describeError(error));
      assert.equal(auth.status().active, "blue");
      assert.equal(ofType("rotated").length, 0);
      assert.equal(ofType("failover").length, 0);
    },
  );

  await t.step("a transient failure keeps the active credential", async () => {
    const { auth, endpoint } = setup({ retry: { maxAttempts: 1 } });
    await using _ = auth;
    endpoint.queueToken(textResponse(503));
    const error = await auth.rotate({ to: "green" }).catch((e) => e);
    assert.ok(error instanceof RotationFailedError);
    assert.equal(error.code, ErrorCode.ROTATION_FAILED);
    assert.ok(error.cause instanceof TokenEndpointUnavailableError);
    assert.equal(auth.status().active, "blue");
  });

  await t.step("concurrent rotations run one after the other", async () => {
    const { auth, endpoint, ofType } = setup();
    await using _ = auth;
    const first = deferred();
    const second = deferred();
    endpoint.queueToken(first, second);
    const toGreen = auth.rotate({ to: "green" });
    const toBlue = auth.rotate({ to: "blue" });
    const started = await first.started;
    assert.equal(started.clientId, "green-id");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(endpoint.tokenCalls, 1, "the second waits for the first");
    first.resolve(tokenResponse("g", 600));
    assert.equal((await second.started).clientId, "blue-id");
    second.resolve(tokenResponse("b", 600));
    assert.deepEqual(await toGreen, {
      from: "blue",
      to: "green",
      expiresAt: 600_000,
    });
    assert.deepEqual(await toBlue, {
      from: "green",
      to: "blue",
      expiresAt: 600_000,
    });
    assert.deepEqual(
      ofType("rotated").map((e) => `${e.from}->${e.to}`),
      ["blue->green", "green->blue"],
    );
  });

  await t.step(
    "an unknown label is RotationFailedError UNKNOWN_CREDENTIAL",
    async () => {
      const { auth, endpoint } = setup();
      await using _ = auth;
      const error = await auth.rotate({ to: "purple" }).catch((e) => e);
      assert.ok(error instanceof RotationFailedError);
      assert.equal(error.code, ErrorCode.UNKNOWN_CREDENTIAL);
      assert.equal(error.target, "purple");
      assert.equal(error.active, "blue");
      assert.match(error.message, /blue, green/);
      assert.equal(endpoint.tokenCalls, 0);
    },
  );

  await t.step("re-verifies a rejected credential", async () => {
    const { auth, accepted } = setup();
    await using _ = auth;
    accepted.delete(`blue-id:${BLUE_SECRET}`);
    await auth.getAccessToken();
    assert.equal(auth.status().active, "green");
    accepted.add(`blue-id:${BLUE_SECRET}`); // fixed at the server
    await auth.rotate({ to: "blue" });
    assert.equal(auth.status().active, "blue");
    assert.equal(auth.status().credentials[0].state, "ready");
    assert.match(await auth.getAccessToken(), /^CANARY-TOKEN-blue-id-/);
  });

  await t.step("an aborted rotation keeps the active credential", async () => {
    const { auth, endpoint } = setup();
    await using _ = auth;
    const reply = deferred();
    endpoint.queueToken(reply);
    const controller = new AbortController();
    const rotating = auth.rotate({ to: "green", signal: controller.signal })
      .catch((e) => e);
    await reply.started;
    controller.abort();
    const error = await rotating;
    // The abort rule: AbortedError, as in getAccessToken and auth.fetch.
    assert.ok(error instanceof AbortedError);
    assert.equal(error.code, ErrorCode.ABORTED);
    assert.equal(auth.status().active, "blue");
    reply.resolve(tokenResponse("late"));
  });
});

Deno.test("invalidate", async (t) => {
  await t.step("with a token: drops only the matching grant", async () => {
    const { auth, endpoint } = setup();
    await using _ = auth;
    const blueToken = await auth.getAccessToken();
    await auth.rotate({ to: "green" });
    const greenToken = await auth.getAccessToken();
    auth.invalidate("not-a-cached-token");
    assert.deepEqual(auth.status().credentials.map((c) => c.state), [
      "ready",
      "ready",
    ]);
    auth.invalidate(blueToken);
    assert.deepEqual(auth.status().credentials.map((c) => c.state), [
      "idle",
      "ready",
    ]);
    assert.equal(await auth.getAccessToken(), greenToken);
    assert.equal(endpoint.tokenCalls, 2);
  });

  await t.step("without a token: drops every grant", async () => {
    const { auth, endpoint } = setup();
    await using _ = auth;
    const blueToken = await auth.getAccessToken();
    await auth.rotate({ to: "green" });
    auth.invalidate();
    assert.deepEqual(auth.status().credentials.map((c) => c.state), [
      "idle",
      "idle",
    ]);
    const fresh = await auth.getAccessToken();
    assert.notEqual(fresh, blueToken);
    assert.equal(endpoint.tokenCalls, 3);
  });
});

Deno.test("setCredentials", async (t) => {
  await t.step("an unchanged credential keeps its token", async () => {
    const { auth, endpoint } = setup();
    await using _ = auth;
    const token = await auth.getAccessToken();
    auth.setCredentials([{ ...BLUE }, { ...GREEN }]);
    assert.equal(await auth.getAccessToken(), token);
    assert.equal(endpoint.tokenCalls, 1);
  });

  await t.step("a changed secret starts fresh", async () => {
    const { auth, accepted, endpoint } = setup();
    await using _ = auth;
    const old = await auth.getAccessToken();
    accepted.add("blue-id:CANARY-SECRET-blue-new");
    auth.setCredentials([
      { ...BLUE, clientSecret: "CANARY-SECRET-blue-new" },
      GREEN,
    ]);
    assert.equal(auth.status().credentials[0].state, "idle");
    const token = await auth.getAccessToken();
    assert.notEqual(token, old);
    assert.equal(
      endpoint.tokenRequests[1].clientSecret,
      "CANARY-SECRET-blue-new",
    );
  });

  await t.step(
    "a changed secret clears the rejection, without flapping",
    async () => {
      const { auth, accepted, clientsAsked } = setup();
      await using _ = auth;
      accepted.delete(`blue-id:${BLUE_SECRET}`);
      await auth.getAccessToken();
      assert.equal(auth.status().credentials[0].state, "rejected");
      accepted.add("blue-id:CANARY-SECRET-blue-new");
      auth.setCredentials([
        { ...BLUE, clientSecret: "CANARY-SECRET-blue-new" },
        GREEN,
      ]);
      assert.equal(auth.status().credentials[0].state, "idle");
      assert.equal(auth.status().active, "green");
      await auth.getAccessToken();
      assert.deepEqual(clientsAsked(), ["blue-id", "green-id"]);
      await auth.rotate({ to: "blue" });
      assert.equal(auth.status().active, "blue");
    },
  );

  await t.step(
    "removing the active one picks another with a warning",
    async () => {
      const { auth, ofType } = setup();
      await using _ = auth;
      await auth.getAccessToken();
      auth.setCredentials([GREEN, {
        label: "purple",
        clientId: "purple-id",
        clientSecret: "CANARY-SECRET-purple",
      }]);
      assert.equal(auth.status().active, "green");
      assert.deepEqual(auth.status().credentials.map((c) => c.label), [
        "green",
        "purple",
      ]);
      const warnings = ofType("warning");
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].code, "ACTIVE_REMOVED");
      assert.equal(warnings[0].label, "green");
      assert.match(await auth.getAccessToken(), /^CANARY-TOKEN-green-id-/);
    },
  );

  await t.step(
    "an invalid list throws ConfigError and changes nothing",
    async () => {
      const { auth, endpoint } = setup();
      await using _ = auth;
      const token = await auth.getAccessToken();
      const before = JSON.stringify(auth.status());
      for (
        const list of [
          [],
          [BLUE, { ...GREEN, label: "blue" }],
          [BLUE, { ...GREEN, clientSecret: "  " }],
        ]
      ) {
        const error = (() => {
          try {
            auth.setCredentials(list);
          } catch (e) {
            return e;
          }
        })();
        assert.ok(error instanceof ConfigError);
        assert.equal(error.code, ErrorCode.CONFIG_INVALID);
        assertNoCanary(describeError(error));
      }
      assert.equal(JSON.stringify(auth.status()), before);
      assert.equal(await auth.getAccessToken(), token);
      assert.equal(endpoint.tokenCalls, 1);
    },
  );

  await t.step("a replaced credential's late token is not cached", async () => {
    const { auth, accepted, endpoint } = setup();
    await using _ = auth;
    const reply = deferred();
    endpoint.queueToken(reply);
    const waiting = auth.getAccessToken();
    await reply.started;
    accepted.add("blue-id:CANARY-SECRET-blue-new");
    auth.setCredentials([
      { ...BLUE, clientSecret: "CANARY-SECRET-blue-new" },
      GREEN,
    ]);
    reply.resolve(tokenResponse("CANARY-TOKEN-old-secret", 600));
    // The waiting caller is served by the credential as configured now.
    const token = await waiting;
    assert.notEqual(token, "CANARY-TOKEN-old-secret");
    assert.equal(endpoint.tokenCalls, 2);
    assert.equal(
      endpoint.tokenRequests[1].clientSecret,
      "CANARY-SECRET-blue-new",
    );
    assert.equal(await auth.getAccessToken(), token);
    assert.equal(endpoint.tokenCalls, 2);
  });

  await t.step({
    name:
      "a replaced credential's late rejection does not fail over its successor",
    fn: async () => {
      const { auth, endpoint, ofType } = setup();
      await using _ = auth;
      auth.setCredentials([
        { ...BLUE, clientSecret: "CANARY-SECRET-blue-wrong" },
        GREEN,
      ]);
      const reply = deferred();
      endpoint.queueToken(reply);
      const waiting = auth.getAccessToken();
      await reply.started;
      auth.setCredentials([BLUE, GREEN]); // the fix arrives mid-request
      reply.resolve(oauthErrorResponse(401, "invalid_client"));
      assert.match(await waiting, /^CANARY-TOKEN-blue-id-/);
      assert.equal(ofType("failover").length, 0);
      assert.equal(auth.status().active, "blue");
    },
  });
});

Deno.test("status", async (t) => {
  await t.step("walks through every state", async () => {
    const { auth, endpoint, clock, accepted } = setup({
      retry: { maxAttempts: 1 },
    });
    await using _ = auth;
    const state = (i = 0) => auth.status().credentials[i].state;
    assert.equal(state(), "idle");
    const reply = deferred();
    endpoint.queueToken(reply);
    const pending = auth.getAccessToken();
    await reply.started;
    assert.equal(state(), "fetching");
    reply.resolve(tokenResponse("CANARY-TOKEN-status", 600));
    await pending;
    assert.equal(state(), "ready");
    assert.equal(auth.status().credentials[0].expiresAt, 600_000);
    clock.set(545_000);
    assert.equal(state(), "stale");
    clock.set(600_000);
    assert.equal(state(), "expired");
    assert.equal(auth.status().credentials[0].expiresAt, undefined);
    endpoint.queueToken(textResponse(503));
    await auth.getAccessToken().catch(() => undefined);
    // An expired token whose refresh failed still reports "expired", with
    // the failure in lastError.
    assert.equal(state(), "expired");
    assert.equal(
      auth.status().credentials[0].lastError?.code,
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    );
    auth.invalidate();
    assert.equal(state(), "unavailable");
    accepted.delete(`blue-id:${BLUE_SECRET}`);
    await auth.getAccessToken();
    assert.equal(state(0), "rejected");
    assert.equal(state(1), "ready");
    assert.equal(auth.status().active, "green");
  });

  await t.step(
    "no secret or token in status, inspect, events or errors",
    async () => {
      const { auth, accepted, events, clock } = setup();
      const token = await auth.getAccessToken();
      assert.ok(token.startsWith(TOKEN_PREFIX));
      clock.set(550_000);
      accepted.delete(`blue-id:${BLUE_SECRET}`);
      await auth.getAccessToken();
      await clock.advance(0);
      const greenToken = await auth.getAccessToken();
      assert.ok(greenToken.startsWith(TOKEN_PREFIX));
      accepted.clear();
      auth.invalidate();
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof AllCredentialsRejectedError);
      const rotateError = await auth.rotate({ to: "blue" }).catch((e) => e);
      assert.ok(rotateError instanceof RotationFailedError);
      assertNoCanary(JSON.stringify(auth.status()));
      assertNoCanary(Deno.inspect(auth.status(), { depth: 10 }));
      assertNoCanary(Deno.inspect(auth, { depth: 10 }));
      assertNoCanary(`${auth}`);
      assertNoCanary(JSON.stringify(events));
      assertNoCanary(describeError(error));
      assertNoCanary(describeError(rotateError));
      await auth.close();
      assertNoCanary(Deno.inspect(auth, { depth: 10 }));
    },
  );
});

Deno.test("close", async (t) => {
  await t.step(
    "in-flight callers get ClosedError; later calls throw it",
    async () => {
      const { auth, endpoint, clock } = setup();
      const reply = deferred();
      endpoint.queueToken(reply);
      const waiting = auth.getAccessToken().catch((e) => e);
      await reply.started;
      await auth.close();
      const error = await waiting;
      assert.ok(error instanceof ClosedError);
      assert.equal(error.code, ErrorCode.CLOSED);
      assert.equal(reply.aborted, true);
      for (
        const call of [
          () => auth.getAccessToken(),
          () => auth.rotate({ to: "green" }),
          () => auth.fetch(`${endpoint.apiUrl}/x`),
          () =>
            Promise.resolve().then(() => auth.setCredentials([BLUE, GREEN])),
        ]
      ) {
        const later = await call().catch((e) => e);
        assert.ok(later instanceof ClosedError);
        assert.equal(later.code, ErrorCode.CLOSED);
      }
      assert.equal(endpoint.apiCalls, 0);
      assert.equal(clock.pendingTimers, 0, "no timer left behind");
      await auth.close(); // twice is fine
    },
  );

  await t.step("a retry wait ends with ClosedError", async () => {
    const { auth, endpoint, clock } = setup();
    endpoint.queueToken(textResponse(503));
    const waiting = auth.getAccessToken().catch((e) => e);
    while (clock.pendingTimers === 0) await clock.advance(0);
    await auth.close();
    const error = await waiting;
    assert.ok(error instanceof ClosedError);
    assert.equal(error.code, ErrorCode.CLOSED);
    assert.equal(clock.pendingTimers, 0);
  });

  await t.step("close waits for a background refresh", async () => {
    const { auth, endpoint, clock } = setup();
    await auth.getAccessToken();
    clock.set(550_000);
    const reply = deferred();
    endpoint.queueToken(reply);
    await auth.getAccessToken();
    await reply.started;
    await auth.close();
    assert.equal(reply.aborted, true);
    assert.equal(clock.pendingTimers, 0);
  });

  await t.step("await using closes at the end of the block", async () => {
    const { auth, endpoint } = setup();
    const reply = deferred();
    endpoint.queueToken(reply);
    let waiting: Promise<unknown>;
    {
      await using scoped = auth;
      waiting = scoped.getAccessToken().catch((e) => e);
      await reply.started;
    }
    const error = await waiting;
    assert.ok(error instanceof ClosedError);
    assert.equal(error.code, ErrorCode.CLOSED);
    assert.ok(
      (await auth.getAccessToken().catch((e) => e)) instanceof ClosedError,
    );
  });
});
