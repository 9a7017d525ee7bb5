/**
 * The defects an adversarial run against the public API found (issue 10),
 * one test each: crashes from unhandled rejections, a brief fault becoming a
 * permanent outage, server text leaking secrets, unbounded input, the seams a
 * shared store hits, and abort handling.
 */
import assert from "node:assert/strict";
import { ClosedError } from "./support/closed_error.ts";
import type { DualSecretAuthOptions } from "../src/config.ts";
import {
  AbortedError,
  AllCredentialsRejectedError,
  ConfigError,
  ErrorCode,
  InvalidTokenResponseError,
  RedirectRefusedError,
  TokenRequestError,
} from "../src/errors.ts";
import { createMemorySharedState, type SharedState } from "../src/store.ts";
import {
  deferred,
  jsonResponse,
  oauthErrorResponse,
  textResponse,
  tokenResponse,
} from "./support/fake_token_endpoint.ts";
import { countUnhandledRejections } from "./integration/harness.ts";
import {
  fixtureCredentials,
  startDualAuthFixture,
  TOKEN_PREFIX,
} from "./support/dual_auth_fixture.ts";

// Characters that differ in raw, URL, form and Basic forms.
const BLUE_SECRET = "CANARY-SECRET-blue/+=&é~91f2";
const GREEN_SECRET = "CANARY-SECRET-green/+=&é~4c7d";
const CREDENTIALS = fixtureCredentials(BLUE_SECRET, GREEN_SECRET);
const { blue: BLUE, green: GREEN } = CREDENTIALS;

function setup(options: Partial<DualSecretAuthOptions> = {}) {
  return startDualAuthFixture(CREDENTIALS, {
    retry: { maxAttempts: 1 },
    ...options,
  });
}

/** Form encoding as RFC 6749 Appendix B asks, written out independently. */
function formEncoded(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function latin1Base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

/** Every form of a credential a server may echo. */
function forms(clientId: string, secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    formEncoded(secret),
    btoa(`${formEncoded(clientId)}:${formEncoded(secret)}`),
    latin1Base64(`${clientId}:${secret}`),
  ];
}

function rendered(value: unknown): string {
  return `${value}\n${(value as Error)?.stack ?? ""}\n${
    Deno.inspect(value, { depth: 10 })
  }\n${JSON.stringify(value)}`;
}

function assertNoneOf(text: string, needles: Iterable<string>): void {
  for (const needle of needles) {
    assert.ok(
      !text.toLowerCase().includes(needle.toLowerCase()),
      `leaked ${needle}: ${text.slice(0, 400)}`,
    );
  }
}

Deno.test("no unhandled rejection can crash the process", async (t) => {
  await t.step(
    "an already-aborted caller rejects at once with AbortedError and starts nothing",
    async () => {
      using rejections = countUnhandledRejections();
      const { endpoint, auth } = setup();
      const reason = new Error("caller gave up");
      const signal = AbortSignal.abort(reason);
      endpoint.queueToken(oauthErrorResponse(401, "invalid_client"));
      for (
        const work of [
          auth.getAccessToken({ signal }),
          auth.fetch(`${endpoint.apiUrl}/x`, { signal }),
          auth.fetch(new Request(`${endpoint.apiUrl}/x`, { signal })),
          auth.rotate({ to: "green", signal }),
        ]
      ) {
        const error = await work.catch((e) => e);
        assert.ok(error instanceof AbortedError, String(error));
        assert.equal(error.code, ErrorCode.ABORTED);
        assert.equal(error.cause, reason);
      }
      assert.equal(endpoint.tokenCalls, 0, "no request was started");
      assert.equal(endpoint.apiCalls, 0);
      await auth.close();
      assert.equal(await rejections.settle(), 0);
    },
  );

  await t.step(
    "a caller aborting mid-request while the shared request fails",
    async () => {
      using rejections = countUnhandledRejections();
      const { endpoint, auth, clock } = setup({ credentials: [BLUE] });
      const reply = deferred();
      endpoint.queueToken(reply);
      const controller = new AbortController();
      const waiting = auth.getAccessToken({ signal: controller.signal })
        .catch((e) => e);
      await reply.started;
      controller.abort();
      assert.ok((await waiting) instanceof AbortedError);
      reply.resolve(oauthErrorResponse(401, "invalid_client"));
      await clock.advance(0);
      await auth.close();
      assert.equal(await rejections.settle(), 0);
    },
  );

  await t.step("an async onEvent listener that rejects", async () => {
    using rejections = countUnhandledRejections();
    const { auth, endpoint } = setup({
      onEvent: () => Promise.reject(new Error("listener bug")),
    });
    endpoint.queueToken(oauthErrorResponse(401, "invalid_client"));
    const token = await auth.getAccessToken();
    assert.ok(token.startsWith(TOKEN_PREFIX), "failed over and served");
    await auth.close();
    assert.equal(await rejections.settle(), 0);
  });
});

Deno.test("a brief all-rejected fault does not become a permanent outage", async (t) => {
  for (const credentials of [[BLUE], [BLUE, GREEN]]) {
    await t.step(`${credentials.length} credential(s)`, async () => {
      const { auth, endpoint, clock, ofType } = setup({ credentials });
      // A proxy answering a bare 401 to everything, for a moment.
      for (let i = 0; i < credentials.length; i++) {
        endpoint.queueToken(textResponse(401));
      }
      const first = await auth.getAccessToken().catch((e) => e);
      assert.ok(first instanceof AllCredentialsRejectedError);
      assert.equal(first.nextProbeAt, clock.now() + 1_000);
      assert.match(first.message, /in 1 s\) probes them again/);
      // Before the backoff: no request, the error says when.
      const calls = endpoint.tokenCalls;
      await clock.advance(999);
      const early = await auth.getAccessToken().catch((e) => e);
      assert.ok(early instanceof AllCredentialsRejectedError);
      assert.equal(early.nextProbeAt, 1_000);
      assert.match(early.message, /in 1 s\)/);
      assert.equal(endpoint.tokenCalls, calls);
      // The endpoint is healthy again: the next call after the backoff is served.
      await clock.advance(1);
      const herd = await Promise.all(
        Array.from({ length: 50 }, () => auth.getAccessToken()),
      );
      assert.ok(herd.every((token) => token === herd[0]));
      assert.equal(endpoint.tokenCalls, calls + 1, "one probe for the herd");
      // The active credential (the last one failed over to) is probed.
      assert.deepEqual(ofType("reprobe").map((e) => [e.label, e.attempt]), [[
        credentials.at(-1)!.label,
        1,
      ]]);
      const status = auth.status();
      assert.equal(status.active, credentials.at(-1)!.label);
      const active = status.credentials.find((c) => c.label === status.active);
      assert.equal(active?.state, "ready");
      await auth.close();
    });
  }

  await t.step("probes back off 1 s, 2 s, 4 s … up to 5 min", async () => {
    const { auth, endpoint, clock, accepted } = setup({ credentials: [BLUE] });
    accepted.clear();
    const probesAt: number[] = [];
    let lastCalls = endpoint.tokenCalls;
    const start = clock.now();
    for (let second = 0; second <= 1_200; second++) {
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof AllCredentialsRejectedError);
      if (endpoint.tokenCalls > lastCalls) {
        probesAt.push((clock.now() - start) / 1000);
        lastCalls = endpoint.tokenCalls;
      }
      await clock.advance(1_000);
    }
    // The first request at 0, then probes after 1, 2, 4, … s, capped at 300 s.
    const gaps = probesAt.slice(1).map((at, i) => at - probesAt[i]);
    assert.deepEqual(gaps.slice(0, 9), [1, 2, 4, 8, 16, 32, 64, 128, 256]);
    assert.ok(gaps.slice(9).every((gap) => gap === 300), String(gaps));
    await auth.close();
  });

  await t.step(
    "setCredentials and rotate still clear a rejection at once",
    async () => {
      const { auth, endpoint, accepted } = setup();
      accepted.clear();
      assert.ok(
        (await auth.getAccessToken().catch((e) => e)) instanceof
          AllCredentialsRejectedError,
      );
      accepted.add(`green-id:${GREEN_SECRET}`);
      const result = await auth.rotate({ to: "green" });
      assert.equal(result.to, "green");
      assert.ok((await auth.getAccessToken()).includes("green-id"));
      accepted.add(`blue-id:new`);
      auth.setCredentials([{ ...BLUE, clientSecret: "new" }, GREEN]);
      assert.equal(auth.status().credentials[0].state, "idle");
      assert.ok(endpoint.tokenCalls >= 3);
      await auth.close();
    },
  );
});

Deno.test("server text is redacted at the source", async (t) => {
  const needles = [
    ...forms(BLUE.clientId, BLUE_SECRET),
    ...forms(GREEN.clientId, GREEN_SECRET),
  ];

  await t.step(
    "an error_description echoing the Authorization header, raw and encoded secrets, and a token held",
    async () => {
      const { auth, endpoint, clock, ofType } = setup();
      const blueToken = await auth.getAccessToken();
      await auth.rotate({ to: "green" });
      const greenToken = await auth.getAccessToken();
      // Green's refresh ahead of expiry fails while both tokens are held.
      await clock.advance(541_000);
      endpoint.queueToken(
        jsonResponse(400, {
          error: "invalid_request",
          error_description: `echo Authorization: Basic ${
            btoa(`${formEncoded("green-id")}:${formEncoded(GREEN_SECRET)}`)
          } raw=${GREEN_SECRET} url=${encodeURIComponent(BLUE_SECRET)} form=${
            formEncoded(BLUE_SECRET)
          } basic-raw=${
            latin1Base64(`blue-id:${BLUE_SECRET}`)
          } held=${blueToken} ${greenToken}`,
        }),
      );
      assert.equal(await auth.getAccessToken(), greenToken);
      await clock.advance(0);
      const failed = ofType("token.failed").at(-1)!;
      assert.equal(failed.background, true);
      assert.equal(failed.error.code, ErrorCode.TOKEN_REQUEST_FAILED);
      assert.match(failed.error.message, /\[redacted\]/);
      const status = auth.status();
      assert.equal(
        status.credentials.find((c) => c.label === "green")?.lastError?.code,
        ErrorCode.TOKEN_REQUEST_FAILED,
      );
      for (const text of [rendered(failed), rendered(status)]) {
        assertNoneOf(text, [...needles, blueToken, greenToken]);
      }
      // The same text thrown to a caller once the token is gone.
      endpoint.queueToken(
        jsonResponse(400, {
          error: "invalid_request",
          error_description: `raw=${GREEN_SECRET} held=${blueToken}`,
        }),
      );
      await clock.advance(60_000);
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof TokenRequestError, String(error));
      assertNoneOf(rendered(error), [...needles, blueToken]);
      await auth.close();
    },
  );

  await t.step("an OAuth error code that is the secret", async () => {
    const secret = "CANARY-SECRET-ascii-only-77f1";
    const { auth, endpoint } = setup({
      credentials: [{ ...BLUE, clientSecret: secret }],
    });
    endpoint.queueToken(jsonResponse(400, { error: secret }));
    const error = await auth.getAccessToken().catch((e) => e);
    assert.ok(error instanceof TokenRequestError);
    assert.equal(error.oauthError, undefined);
    assertNoneOf(rendered(error), forms(BLUE.clientId, secret));
    await auth.close();
  });

  await t.step(
    "quoted text is capped and stripped of control characters",
    async () => {
      const { auth, endpoint } = setup({ credentials: [BLUE] });
      endpoint.queueToken(
        jsonResponse(400, {
          error: "invalid_request",
          error_description: `line\r\nInjected: yes ${"x".repeat(10_000)}`,
        }),
      );
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof TokenRequestError);
      assert.ok(error.message.length < 500, String(error.message.length));
      assert.ok(!/[\r\n]/.test(error.message));
      await auth.close();
    },
  );
});

Deno.test("input is bounded", async (t) => {
  await t.step("a 200 MB token response is cancelled at 64 KiB", async () => {
    let sent = 0;
    let cancelled = false;
    const chunk = new Uint8Array(16_384).fill(0x20);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.byteLength;
        if (sent > 200_000_000) controller.close();
        else controller.enqueue(chunk);
      },
      cancel() {
        cancelled = true;
      },
    });
    const { auth, endpoint } = setup({ credentials: [BLUE] });
    endpoint.queueToken(new Response(endless, { status: 200 }));
    const error = await auth.getAccessToken().catch((e) => e);
    assert.ok(error instanceof InvalidTokenResponseError, String(error));
    assert.match(error.message, /larger than 65536 bytes/);
    assert.ok(cancelled, "the body was cancelled");
    assert.ok(sent < 200_000, `${sent} bytes were pulled`);
    assert.equal(endpoint.tokenCalls, 1, "not retried");
    await auth.close();
  });

  await t.step(
    "the limit is configurable, and Content-Length is checked first",
    async () => {
      const { auth, endpoint } = setup({
        credentials: [BLUE],
        maxResponseBytes: 50,
      });
      endpoint.queueToken(tokenResponse("t".repeat(100), 600));
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof InvalidTokenResponseError);
      assert.match(error.message, /larger than 50 bytes/);
      await auth.close();
      assert.throws(
        () => setup({ maxResponseBytes: 0 }),
        (e) => e instanceof ConfigError && e.option === "maxResponseBytes",
      );
    },
  );

  await t.step(
    "an access_token with CR/LF is refused, never cached",
    async () => {
      const { auth, endpoint } = setup({ credentials: [BLUE] });
      endpoint.queueToken(tokenResponse("abc\r\nX-Injected: 1", 600));
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof InvalidTokenResponseError);
      assert.match(error.message, /b64token/);
      assert.ok(!error.message.includes("X-Injected"));
      endpoint.queueApi(textResponse(200, "ok"));
      const response = await auth.fetch(`${endpoint.apiUrl}/x`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
      await auth.close();
    },
  );

  await t.step(
    "a redirect is refused once, naming the target host",
    async () => {
      const { auth, endpoint } = setup({
        credentials: [BLUE],
        retry: { maxAttempts: 5 },
      });
      endpoint.queueToken(
        textResponse(302, "", { location: "https://sso.example.org/login" }),
      );
      const error = await auth.getAccessToken().catch((e) => e);
      assert.ok(error instanceof RedirectRefusedError, String(error));
      assert.equal(error.code, ErrorCode.REDIRECT_REFUSED);
      assert.equal(error.targetHost, "sso.example.org");
      assert.match(error.message, /redirect to sso\.example\.org/);
      assert.equal(endpoint.tokenCalls, 1, "not retried as a network failure");
      assert.equal(endpoint.tokenRequests[0].redirect, "manual");
      await auth.close();
    },
  );

  await t.step(
    "a secret or client id that cannot be encoded is a ConfigError",
    async () => {
      const lone = "abc\uD800def";
      for (
        const credential of [
          { ...BLUE, clientSecret: lone },
          { ...BLUE, clientId: lone },
        ]
      ) {
        assert.throws(
          () => setup({ credentials: [credential] }),
          (e) =>
            e instanceof ConfigError && /surrogate/.test(e.message) &&
            !e.message.includes(lone),
        );
        const { auth, endpoint } = setup();
        assert.throws(
          () => auth.setCredentials([credential, GREEN]),
          (e) => e instanceof ConfigError && /surrogate/.test(e.message),
        );
        assert.equal(endpoint.tokenCalls, 0);
        await auth.close();
      }
    },
  );
});

Deno.test("the seams a shared store hits", async (t) => {
  await t.step(
    "a cached grant of another client id is never served",
    async () => {
      const shared = createMemorySharedState();
      shared.setGrant("blue", {
        accessToken: "foreign-token",
        expiresAt: 10_000_000,
        refreshAt: 9_000_000,
        clientId: "someone-else",
      });
      const { auth } = setup({ shared });
      assert.equal(auth.status().credentials[0].state, "idle");
      const token = await auth.getAccessToken();
      assert.notEqual(token, "foreign-token");
      assert.ok(token.includes("blue-id"));
      await auth.close();
    },
  );

  await t.step("status() shows expiresAt for a ready credential", async () => {
    const { auth } = setup();
    await auth.getAccessToken();
    const blue = auth.status().credentials[0];
    assert.equal(blue.state, "ready");
    assert.equal(blue.expiresAt, 600_000);
    await auth.close();
  });

  await t.step(
    "status() never writes the active store; serving repairs it with a warning",
    async () => {
      const activeStore = createMemorySharedState("blue");
      const writes: string[] = [];
      const recording: SharedState = {
        getGrant: (key) => activeStore.getGrant(key),
        setGrant: (key, grant) => activeStore.setGrant(key, grant),
        deleteGrant: (key, grant) => activeStore.deleteGrant(key, grant),
        getActive: () => activeStore.getActive(),
        setActive: (label, why) => {
          writes.push(label);
          return activeStore.setActive(label, why);
        },
      };
      const { auth, ofType } = setup({ shared: recording });
      // Another configuration wrote the shared state.
      activeStore.setActive("purple", "rotate");
      assert.equal(auth.status().active, "blue");
      assert.equal(auth.status().active, "blue");
      assert.equal(activeStore.getActive(), "purple");
      assert.deepEqual(writes, []);
      assert.equal(ofType("warning").length, 0);
      await auth.getAccessToken();
      assert.equal(activeStore.getActive(), "blue");
      assert.deepEqual(writes, ["blue"]);
      const [warning] = ofType("warning");
      assert.equal(warning.code, "ACTIVE_UNKNOWN");
      assert.match(warning.message, /"purple"/);
      await auth.close();
    },
  );
});

Deno.test("abort follows one rule", async (t) => {
  await t.step(
    "a cached token is not returned to an aborted caller",
    async () => {
      const { auth } = setup();
      await auth.getAccessToken();
      const error = await auth.getAccessToken({ signal: AbortSignal.abort() })
        .catch((e) => e);
      assert.ok(error instanceof AbortedError);
      await auth.close();
    },
  );

  await t.step(
    "auth.fetch: an abort during the API call is AbortedError",
    async () => {
      const { auth, endpoint } = setup();
      const reply = deferred();
      endpoint.queueApi(reply);
      const controller = new AbortController();
      const pending = auth.fetch(`${endpoint.apiUrl}/x`, {
        signal: controller.signal,
      }).catch((e) => e);
      await reply.started;
      const reason = new Error("stop");
      controller.abort(reason);
      const error = await pending;
      assert.ok(error instanceof AbortedError, String(error));
      assert.equal(error.cause, reason);
      await auth.close();
    },
  );

  await t.step(
    "auth.fetch: an abort during the token wait is AbortedError",
    async () => {
      const { auth, endpoint } = setup();
      const reply = deferred();
      endpoint.queueToken(reply);
      const controller = new AbortController();
      const pending = auth.fetch(`${endpoint.apiUrl}/x`, {
        signal: controller.signal,
      }).catch((e) => e);
      await reply.started;
      controller.abort();
      assert.ok((await pending) instanceof AbortedError);
      reply.resolve(tokenResponse("t", 600));
      await auth.close();
    },
  );

  await t.step(
    "close() aborts auth.fetch calls in flight with ClosedError",
    async () => {
      const { auth, endpoint } = setup();
      const replies = [deferred(), deferred(), deferred()];
      endpoint.queueApi(...replies);
      const pending = [
        auth.fetch(`${endpoint.apiUrl}/a`),
        auth.fetch(`${endpoint.apiUrl}/b`, {
          signal: new AbortController().signal,
        }),
        // A Request always carries a signal of its own.
        auth.fetch(new Request(`${endpoint.apiUrl}/c`)),
      ].map((p) => p.catch((e) => e));
      await Promise.all(replies.map((r) => r.started));
      await auth.close();
      for (const error of await Promise.all(pending)) {
        assert.ok(error instanceof ClosedError, String(error));
      }
      assert.ok(
        replies.every((r) => r.aborted),
        "the API requests were aborted",
      );
    },
  );
});

Deno.test("shared promises never outlive their grant", async (t) => {
  await t.step(
    "a cold herd shares one acquisition; invalidate() drops it",
    async () => {
      const { auth, endpoint } = setup();
      const reply = deferred();
      endpoint.queueToken(reply);
      const herd = Array.from({ length: 1_000 }, () => auth.getAccessToken());
      assert.ok(herd.every((p) => p === herd[0]), "one promise for the herd");
      await reply.started;
      auth.invalidate();
      const after = auth.getAccessToken();
      assert.notEqual(
        after,
        herd[0],
        "invalidate() dropped the shared promise",
      );
      reply.resolve(tokenResponse("CANARY-TOKEN-first", 600));
      await Promise.all(herd);
      assert.ok((await after).startsWith(TOKEN_PREFIX));
      await auth.close();
    },
  );

  await t.step(
    "the cached token's settled promise is dropped by invalidate()",
    async () => {
      const { auth, endpoint } = setup();
      const first = auth.getAccessToken();
      const token = await first;
      assert.equal(auth.getAccessToken(), auth.getAccessToken());
      auth.invalidate(token);
      const next = await auth.getAccessToken();
      assert.notEqual(next, token);
      assert.equal(endpoint.tokenCalls, 2);
      await auth.close();
    },
  );

  await t.step(
    "close() drops them: later calls reject with ClosedError",
    async () => {
      const { auth } = setup();
      await auth.getAccessToken();
      await auth.close();
      assert.ok(
        (await auth.getAccessToken().catch((e) => e)) instanceof ClosedError,
      );
    },
  );
});

Deno.test("warmStandby keeps the standby's token cached for failover", async (t) => {
  await t.step("off by default: one token request", async () => {
    const { auth, endpoint, clock } = setup();
    await auth.getAccessToken();
    await clock.advance(0);
    assert.equal(endpoint.tokenCalls, 1);
    await auth.close();
  });

  await t.step(
    "on: the standby is fetched too, and a failover serves from cache",
    async () => {
      const { auth, endpoint, clock, accepted, ofType } = setup({
        warmStandby: true,
      });
      const blueToken = await auth.getAccessToken();
      await clock.advance(0);
      assert.deepEqual(endpoint.tokenRequests.map((r) => r.clientId), [
        "blue-id",
        "green-id",
      ]);
      assert.equal(auth.status().credentials[1].state, "ready");
      // Blue's secret dies; the next caller fails over to green's cached token
      // after exactly one (rejected) token request.
      accepted.delete(`blue-id:${BLUE_SECRET}`);
      auth.invalidate(blueToken);
      const calls = endpoint.tokenCalls;
      const token = await auth.getAccessToken();
      assert.ok(token.includes("green-id"));
      assert.equal(endpoint.tokenCalls, calls + 1);
      assert.equal(ofType("failover").length, 1);
      await auth.close();
    },
  );

  await t.step(
    "the standby is refreshed along with the active one",
    async () => {
      const { auth, endpoint, clock } = setup({ warmStandby: true });
      await auth.getAccessToken();
      await clock.advance(541_000); // inside the refresh margin of both
      await auth.getAccessToken();
      await clock.advance(0);
      assert.deepEqual(endpoint.tokenRequests.map((r) => r.clientId), [
        "blue-id",
        "green-id",
        "blue-id",
        "green-id",
      ]);
      await auth.close();
    },
  );

  await t.step("warmStandby must be a boolean", () => {
    assert.throws(
      () => setup({ warmStandby: "yes" as unknown as boolean }),
      (e) => e instanceof ConfigError && e.option === "warmStandby",
    );
  });
});
