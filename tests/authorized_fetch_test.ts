import assert from "node:assert/strict";
import { ClosedError } from "./support/closed_error.ts";
import {
  authorizedFetch,
  type AuthorizedFetchContext,
  isStaleTokenChallenge,
  MAX_REPLAYS_PER_TOKEN_LIFETIME,
  parseWwwAuthenticate,
  REPLAY_COOLDOWN_MS,
} from "../src/authorized_fetch.ts";
import type { DualSecretAuthOptions } from "../src/config.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { AbortedError } from "../src/errors.ts";
import type { AuthEvent } from "../src/events.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  acceptingHandler,
  FakeTokenEndpoint,
  jsonResponse,
  textResponse,
  tokenResponse,
} from "./support/fake_token_endpoint.ts";

Deno.test("parseWwwAuthenticate", async (t) => {
  await t.step("a Bearer challenge with quoted commas", () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm="a, b", error="invalid_token"'),
      [{ scheme: "bearer", params: { realm: "a, b", error: "invalid_token" } }],
    );
  });

  await t.step("escaped quotes and backslashes", () => {
    const [challenge] = parseWwwAuthenticate(
      String
        .raw`Bearer error_description="say \"hi\", a\\b", error=invalid_token`,
    );
    assert.equal(challenge.params.error_description, String.raw`say "hi", a\b`);
    assert.equal(challenge.params.error, "invalid_token");
  });

  await t.step("several challenges (the RFC 9110 example)", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        String
          .raw`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`,
      ),
      [
        {
          scheme: "newauth",
          params: { realm: "apps", type: "1", title: 'Login to "apps"' },
        },
        { scheme: "basic", params: { realm: "simple" } },
      ],
    );
  });

  await t.step("token68 challenges carry no params", () => {
    assert.deepEqual(
      parseWwwAuthenticate('Negotiate abc+/9==, Bearer error="invalid_token"'),
      [
        { scheme: "negotiate", params: {} },
        { scheme: "bearer", params: { error: "invalid_token" } },
      ],
    );
    assert.deepEqual(parseWwwAuthenticate("Basic dGVzdA=="), [
      { scheme: "basic", params: {} },
    ]);
  });

  await t.step("case, spaces around = and bare schemes", () => {
    assert.deepEqual(
      parseWwwAuthenticate('BEARER Error = "invalid_token" ,  Scope="a b"'),
      [{ scheme: "bearer", params: { error: "invalid_token", scope: "a b" } }],
    );
    assert.deepEqual(parseWwwAuthenticate("Bearer"), [
      { scheme: "bearer", params: {} },
    ]);
    assert.deepEqual(parseWwwAuthenticate(""), []);
    assert.deepEqual(parseWwwAuthenticate("  ,  "), []);
  });

  await t.step("an unterminated quote does not hang", () => {
    const [challenge] = parseWwwAuthenticate('Bearer realm="open');
    assert.equal(challenge.params.realm, "open");
  });
});

Deno.test("isStaleTokenChallenge", async (t) => {
  const with401 = (header?: string) =>
    new Response(null, {
      status: 401,
      headers: header === undefined ? {} : { "www-authenticate": header },
    });

  await t.step("stale: no header, empty, bare Bearer, invalid_token", () => {
    for (
      const header of [
        undefined,
        "",
        "Bearer",
        'Bearer realm="api"',
        'Bearer error="invalid_token", error_description="expired"',
        'Basic realm="x", Bearer error="invalid_token"',
      ]
    ) {
      assert.equal(isStaleTokenChallenge(with401(header)), true, header);
    }
  });

  await t.step("not stale: other errors or no Bearer challenge", () => {
    for (
      const header of [
        'Bearer error="insufficient_scope", scope="admin"',
        'Bearer error="invalid_request"',
        'Basic realm="x"',
      ]
    ) {
      assert.equal(isStaleTokenChallenge(with401(header)), false, header);
    }
  });
});

function setupAuth() {
  const endpoint = new FakeTokenEndpoint({
    tokenHandler: acceptingHandler(new Set(["blue-id:blue-secret"])),
  });
  const auth = createDualSecretAuth({
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
      { label: "green", clientId: "green-id", clientSecret: "green-secret" },
    ],
    tokenUrl: endpoint.tokenUrl,
    fetch: endpoint.fetch,
    clock: new FakeClock(0),
  });
  return { endpoint, auth };
}

const invalidToken = () =>
  textResponse(401, "", {
    "www-authenticate": 'Bearer error="invalid_token"',
  });

Deno.test("auth.fetch", async (t) => {
  await t.step("sends the Bearer token and keeps the request", async () => {
    const { endpoint, auth } = setupAuth();
    await using _ = auth;
    const response = await auth.fetch(
      `${endpoint.apiUrl}/api/v2/tokens/me?x=1`,
      {
        method: "PUT",
        headers: { "x-custom": "kept", authorization: "Basic overwritten" },
        body: "payload",
      },
    );
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ok");
    const [call] = endpoint.apiRequests;
    assert.equal(call.url, `${endpoint.apiUrl}/api/v2/tokens/me?x=1`);
    assert.equal(call.method, "PUT");
    assert.equal(call.headers.get("x-custom"), "kept");
    assert.equal(call.headers.get("authorization"), "Bearer tok-blue-id-1");
    assert.equal(call.body, "payload");
  });

  await t.step(
    "401 invalid_token: new token, POST replayed intact",
    async () => {
      const { endpoint, auth } = setupAuth();
      await using _ = auth;
      endpoint.queueApi(invalidToken());
      const body = JSON.stringify({ name: "ü", n: [1, 2, 3] });
      const response = await auth.fetch(`${endpoint.apiUrl}/api/v2/things`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.equal(endpoint.tokenCalls, 2);
      assert.equal(endpoint.apiCalls, 2);
      const [first, second] = endpoint.apiRequests;
      assert.equal(first.headers.get("authorization"), "Bearer tok-blue-id-1");
      assert.equal(second.headers.get("authorization"), "Bearer tok-blue-id-2");
      for (const call of [first, second]) {
        assert.equal(call.method, "POST");
        assert.equal(call.body, body);
        assert.equal(call.headers.get("content-type"), "application/json");
      }
      assert.equal(await auth.getAccessToken(), "tok-blue-id-2");
    },
  );

  await t.step("a bare 401 (no challenge) is replayed too", async () => {
    const { endpoint, auth } = setupAuth();
    await using _ = auth;
    endpoint.queueApi(textResponse(401));
    const response = await auth.fetch(`${endpoint.apiUrl}/x`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(endpoint.apiCalls, 2);
    assert.equal(endpoint.tokenCalls, 2);
  });

  await t.step("a Request with a stream body is replayed intact", async () => {
    const { endpoint, auth } = setupAuth();
    await using _ = auth;
    endpoint.queueApi(invalidToken());
    const stream = ReadableStream.from([
      new TextEncoder().encode("chunk-1,"),
      new TextEncoder().encode("chunk-2"),
    ]);
    // Stream bodies need duplex "half", which lib.dom's RequestInit lacks.
    const init: RequestInit & { duplex: "half" } = {
      method: "POST",
      body: stream,
      duplex: "half",
    };
    const response = await auth.fetch(
      new Request(`${endpoint.apiUrl}/upload`, init),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.deepEqual(endpoint.apiRequests.map((r) => r.body), [
      "chunk-1,chunk-2",
      "chunk-1,chunk-2",
    ]);
  });

  await t.step("a second 401 is returned as it is (no loop)", async () => {
    const { endpoint, auth } = setupAuth();
    await using _ = auth;
    endpoint.queueApi(invalidToken(), invalidToken(), invalidToken());
    const response = await auth.fetch(`${endpoint.apiUrl}/x`);
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get("www-authenticate"),
      'Bearer error="invalid_token"',
    );
    await response.body?.cancel();
    assert.equal(endpoint.apiCalls, 2);
    assert.equal(endpoint.tokenCalls, 2);
  });

  await t.step(
    "403 and insufficient_scope are returned untouched",
    async () => {
      for (
        const reply of [
          () => textResponse(403, "forbidden"),
          () =>
            textResponse(401, "scope", {
              "www-authenticate":
                'Bearer error="insufficient_scope", scope="admin"',
            }),
        ]
      ) {
        const { endpoint, auth } = setupAuth();
        await using _ = auth;
        const expected = reply();
        endpoint.queueApi(reply());
        const response = await auth.fetch(`${endpoint.apiUrl}/x`);
        assert.equal(response.status, expected.status);
        assert.equal(await response.text(), await expected.text());
        assert.equal(endpoint.apiCalls, 1);
        assert.equal(endpoint.tokenCalls, 1);
        // The token was not dropped.
        assert.equal(await auth.getAccessToken(), "tok-blue-id-1");
        assert.equal(endpoint.tokenCalls, 1);
      }
    },
  );

  await t.step(
    "concurrent 401s on one stale token refresh it once",
    async () => {
      const { endpoint, auth } = setupAuth();
      await using _ = auth;
      await auth.getAccessToken();
      endpoint.queueApi(invalidToken(), invalidToken());
      const responses = await Promise.all([
        auth.fetch(`${endpoint.apiUrl}/a`),
        auth.fetch(`${endpoint.apiUrl}/b`),
      ]);
      for (const response of responses) {
        assert.equal(response.status, 200);
        await response.body?.cancel();
      }
      assert.equal(endpoint.tokenCalls, 2);
      assert.deepEqual(
        endpoint.apiRequests.slice(2).map((r) =>
          r.headers.get("authorization")
        ),
        ["Bearer tok-blue-id-2", "Bearer tok-blue-id-2"],
      );
    },
  );
});

Deno.test("authorizedFetch with a minimal context", async () => {
  const invalidated: string[] = [];
  const sent: string[] = [];
  let n = 0;
  const response = await authorizedFetch(
    {
      getAccessToken: () => Promise.resolve(`t${++n}`),
      invalidate: (token) => void invalidated.push(token),
      fetch: (input, init) => {
        const request = new Request(input, init);
        sent.push(request.headers.get("authorization")!);
        return Promise.resolve(
          sent.length === 1 ? textResponse(401) : textResponse(204),
        );
      },
    },
    "https://api.example.test/x",
  );
  assert.equal(response.status, 204);
  assert.deepEqual(sent, ["Bearer t1", "Bearer t2"]);
  assert.deepEqual(invalidated, ["t1"]);
});

Deno.test("auth.fetch: API 429", async (t) => {
  const setup = (apiRateLimit?: DualSecretAuthOptions["apiRateLimit"]) => {
    const endpoint = new FakeTokenEndpoint({
      tokenHandler: acceptingHandler(new Set(["blue-id:blue-secret"])),
    });
    const clock = new FakeClock(0);
    const events: AuthEvent[] = [];
    const auth = createDualSecretAuth({
      credentials: [
        { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
      ],
      tokenUrl: endpoint.tokenUrl,
      fetch: endpoint.fetch,
      clock,
      onEvent: (event) => events.push(event),
      ...(apiRateLimit === undefined ? {} : { apiRateLimit }),
    });
    return { endpoint, clock, events, auth };
  };
  const tooMany = (retryAfter?: string) =>
    textResponse(
      429,
      "slow down",
      retryAfter === undefined ? {} : { "retry-after": retryAfter },
    );
  /** Runs `work`, moving the fake clock until it settles. */
  const drive = async <T>(clock: FakeClock, work: Promise<T>) => {
    let done = false;
    const settled = work.finally(() => done = true);
    while (!done) await clock.advance(100);
    return await settled;
  };

  await t.step("GET waits Retry-After, then sends again", async () => {
    const { endpoint, clock, auth, events } = setup();
    await using _ = auth;
    endpoint.queueApi(tooMany("2"), textResponse(200, "ok"));
    const started = clock.now();
    const response = await drive(
      clock,
      auth.fetch(`${endpoint.apiUrl}/x?q=secret`),
    );
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ok");
    assert.equal(endpoint.apiCalls, 2);
    assert.ok(clock.now() - started >= 2_000);
    const limited = events.filter((e) => e.type === "api.rate_limited");
    assert.deepEqual(limited, [{
      type: "api.rate_limited",
      method: "GET",
      url: `${endpoint.apiUrl}/x`,
      attempt: 1,
      delayMs: 2_000,
    }]);
  });

  await t.step(
    "every idempotent method is retried, POST and PATCH are not",
    async () => {
      for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]) {
        const { endpoint, clock, auth } = setup();
        endpoint.queueApi(tooMany("1"), textResponse(204));
        const response = await drive(
          clock,
          auth.fetch(`${endpoint.apiUrl}/x`, { method }),
        );
        assert.equal(response.status, 204, method);
        await auth.close();
      }
      for (const method of ["POST", "PATCH"]) {
        const { endpoint, clock, auth } = setup();
        endpoint.queueApi(tooMany("1"), textResponse(204));
        const response = await drive(
          clock,
          auth.fetch(`${endpoint.apiUrl}/x`, { method, body: "{}" }),
        );
        assert.equal(response.status, 429, method);
        assert.equal(endpoint.apiCalls, 1);
        await response.body?.cancel();
        await auth.close();
      }
    },
  );

  await t.step("a body-less POST Request is not retried either", async () => {
    const { endpoint, clock, auth } = setup();
    await using _ = auth;
    endpoint.queueApi(tooMany("1"), textResponse(204));
    const response = await drive(
      clock,
      auth.fetch(new Request(`${endpoint.apiUrl}/x`, { method: "POST" })),
    );
    assert.equal(response.status, 429);
    assert.equal(endpoint.apiRequests[0].method, "POST");
    assert.equal(endpoint.apiCalls, 1);
    await response.body?.cancel();
  });

  await t.step(
    "POST only when opted in, with its body sent again",
    async () => {
      const { endpoint, clock, auth } = setup({
        methods: ["GET", "POST"],
      });
      await using _ = auth;
      endpoint.queueApi(tooMany("1"), textResponse(201));
      const response = await drive(
        clock,
        auth.fetch(
          new Request(`${endpoint.apiUrl}/x`, {
            method: "POST",
            body: "payload",
          }),
        ),
      );
      assert.equal(response.status, 201);
      assert.deepEqual(endpoint.apiRequests.map((r) => r.body), [
        "payload",
        "payload",
      ]);
    },
  );

  await t.step(
    "the retries are bounded; the last 429 comes back readable",
    async () => {
      const { endpoint, clock, auth, events } = setup({ maxRetries: 3 });
      await using _ = auth;
      for (let i = 0; i < 10; i++) endpoint.queueApi(tooMany("1"));
      const response = await drive(clock, auth.fetch(`${endpoint.apiUrl}/x`));
      assert.equal(response.status, 429);
      assert.equal(await response.text(), "slow down");
      assert.equal(endpoint.apiCalls, 4);
      assert.equal(
        events.filter((e) => e.type === "api.rate_limited").length,
        3,
      );
    },
  );

  await t.step("a Retry-After over the cap is returned at once", async () => {
    const { endpoint, clock, auth } = setup({ maxRetryAfterMs: 5_000 });
    await using _ = auth;
    endpoint.queueApi(tooMany("3600"), textResponse(200));
    const started = clock.now();
    const response = await drive(clock, auth.fetch(`${endpoint.apiUrl}/x`));
    assert.equal(response.status, 429);
    assert.equal(endpoint.apiCalls, 1);
    assert.ok(clock.now() - started < 1_000);
    await response.body?.cancel();
  });

  await t.step("without Retry-After: a backoff from 1 s", async () => {
    const { endpoint, clock, auth, events } = setup();
    await using _ = auth;
    endpoint.queueApi(tooMany(), textResponse(200));
    const response = await drive(clock, auth.fetch(`${endpoint.apiUrl}/x`));
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [event] = events.filter((e) => e.type === "api.rate_limited");
    assert.ok(event.type === "api.rate_limited" && event.delayMs < 1_000);
  });

  await t.step(
    "the wait is abortable (AbortedError) and ends on close (ClosedError)",
    async () => {
      {
        const { endpoint, clock, auth } = setup();
        endpoint.queueApi(tooMany("30"), textResponse(200));
        const controller = new AbortController();
        const pending = auth.fetch(`${endpoint.apiUrl}/x`, {
          signal: controller.signal,
        }).catch((e) => e);
        await clock.advance(1_000);
        controller.abort();
        assert.ok((await pending) instanceof AbortedError);
        assert.equal(endpoint.apiCalls, 1);
        await auth.close();
      }
      {
        const { endpoint, clock, auth } = setup();
        endpoint.queueApi(tooMany("30"), textResponse(200));
        const pending = auth.fetch(`${endpoint.apiUrl}/x`).catch((e) => e);
        await clock.advance(1_000);
        await auth.close();
        assert.ok((await pending) instanceof ClosedError);
        assert.equal(clock.pendingTimers, 0);
      }
    },
  );

  await t.step("apiRateLimit: false returns every 429", async () => {
    const { endpoint, clock, auth } = setup(false);
    await using _ = auth;
    endpoint.queueApi(tooMany("1"), textResponse(200));
    const response = await drive(clock, auth.fetch(`${endpoint.apiUrl}/x`));
    assert.equal(response.status, 429);
    await response.body?.cancel();
  });
});

/**
 * A context over a fake token cache: `pool` tokens handed out in turn, a
 * token request (`issued`) whenever a dropped one is needed again, and an API
 * that answers every call with `reply` (a stale-token 401 by default).
 */
function replayContext(
  options: {
    clock?: FakeClock;
    pool?: number;
    reply?: (token: string) => Response;
  } = {},
) {
  const pool = options.pool ?? 1;
  const cache: (string | undefined)[] = Array(pool).fill(undefined);
  const events: AuthEvent[] = [];
  const sent: string[] = [];
  let issued = 0;
  let turn = 0;
  const context: AuthorizedFetchContext = {
    getAccessToken: () => {
      const i = turn++ % pool;
      return Promise.resolve(cache[i] ??= `t${++issued}`);
    },
    invalidate: (token) => {
      const i = cache.indexOf(token);
      if (i >= 0) cache[i] = undefined;
    },
    fetch: (_input, init) => {
      const token = new Headers(init?.headers).get("authorization")!.slice(7);
      sent.push(token);
      return Promise.resolve((options.reply ?? invalidToken)(token));
    },
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    emit: (event) => events.push(event),
  };
  const call = async () => {
    const response = await authorizedFetch(
      context,
      "https://api.example.test/bad?secret=1",
    );
    await response.body?.cancel();
    return response.status;
  };
  return {
    context,
    events,
    sent,
    call,
    /** Token requests so far. */
    issued: () => issued,
    /** A refresh ahead of expiry: a new token no replay fetched. */
    refresh: (i = 0) => void (cache[i] = `t${++issued}`),
    skipped: (): [string, number][] => replaysSkipped(events),
  };
}

/** The `api.replay_skipped` events as `[reason, replays]`. */
function replaysSkipped(events: AuthEvent[]): [string, number][] {
  return events.flatMap((e) =>
    e.type === "api.replay_skipped" ? [[e.reason, e.replays]] : []
  );
}

Deno.test("authorizedFetch: a 401 storm cannot drain the token budget", async (t) => {
  await t.step(
    "a 401 on a token a replay fetched moments ago is returned, with an event",
    async () => {
      const clock = new FakeClock(0);
      const c = replayContext({ clock });
      assert.equal(await c.call(), 401);
      // The first 401 replays once, with a fresh token that is refused too.
      assert.deepEqual(c.sent, ["t1", "t2"]);
      assert.equal(c.issued(), 2);
      await clock.advance(REPLAY_COOLDOWN_MS - 1);
      assert.equal(await c.call(), 401);
      assert.deepEqual(c.sent, ["t1", "t2", "t2"]);
      assert.equal(c.issued(), 2);
      assert.deepEqual(c.events, [{
        type: "api.replay_skipped",
        method: "GET",
        url: "https://api.example.test/bad",
        reason: "recent",
        replays: 1,
      }]);
    },
  );

  await t.step(
    "after the cooldown it replays again, up to the limit per token lifetime",
    async () => {
      const clock = new FakeClock(0);
      const c = replayContext({ clock });
      for (let i = 0; i < MAX_REPLAYS_PER_TOKEN_LIFETIME + 3; i++) {
        assert.equal(await c.call(), 401);
        await clock.advance(REPLAY_COOLDOWN_MS);
      }
      assert.equal(c.issued(), 1 + MAX_REPLAYS_PER_TOKEN_LIFETIME);
      assert.deepEqual(
        c.skipped(),
        Array(3).fill(["limit", MAX_REPLAYS_PER_TOKEN_LIFETIME]),
      );
      // A token no replay fetched (the refresh ahead of expiry) starts over.
      c.refresh();
      assert.equal(await c.call(), 401);
      assert.equal(c.issued(), 3 + MAX_REPLAYS_PER_TOKEN_LIFETIME);
    },
  );

  await t.step(
    "a pool loses at most one token per cooldown",
    async () => {
      const clock = new FakeClock(0);
      const c = replayContext({ clock, pool: 4 });
      for (let i = 0; i < 12; i++) assert.equal(await c.call(), 401);
      // One drop (t1) and its refill; every other 401 is returned.
      assert.equal(c.issued(), 5);
      assert.equal(c.skipped().length, 11);
      assert.ok(c.skipped().every(([reason]) => reason === "recent"));
      await clock.advance(REPLAY_COOLDOWN_MS);
      for (let i = 0; i < 12; i++) assert.equal(await c.call(), 401);
      assert.equal(c.issued(), 6);
    },
  );

  await t.step(
    "a real stale token is still replayed and served",
    async () => {
      const clock = new FakeClock(0);
      let first = true;
      const c = replayContext({
        clock,
        reply: () => {
          const reply = first ? invalidToken() : textResponse(200, "ok");
          first = false;
          return reply;
        },
      });
      assert.equal(await c.call(), 200);
      assert.deepEqual(c.sent, ["t1", "t2"]);
      assert.equal(c.events.length, 0);
    },
  );

  await t.step(
    "concurrent 401s on one token: one token request, every call replayed",
    async () => {
      const clock = new FakeClock(0);
      const c = replayContext({
        clock,
        reply: (token) =>
          token === "t1" ? invalidToken() : textResponse(200, "ok"),
      });
      assert.deepEqual(await Promise.all([c.call(), c.call(), c.call()]), [
        200,
        200,
        200,
      ]);
      assert.deepEqual(c.sent, ["t1", "t1", "t1", "t2", "t2", "t2"]);
      assert.equal(c.issued(), 2);
      assert.equal(c.events.length, 0);
    },
  );

  await t.step("the replays remembered stay bounded", async () => {
    const clock = new FakeClock(0);
    const c = replayContext({ clock });
    for (let i = 0; i < 400; i++) {
      c.refresh();
      await c.call();
      await clock.advance(REPLAY_COOLDOWN_MS);
    }
    // Each round replayed once; the oldest records were let go.
    assert.equal(c.issued(), 800);
    assert.equal(c.events.length, 0);
    assert.ok(c.context.replays!.size <= 256, `${c.context.replays!.size}`);
  });

  await t.step(
    "without a clock a replay-fetched token is never replayed again",
    async () => {
      const c = replayContext();
      for (let i = 0; i < 5; i++) assert.equal(await c.call(), 401);
      assert.equal(c.issued(), 2);
      assert.deepEqual(c.skipped(), Array(4).fill(["recent", 1]));
    },
  );

  await t.step(
    "a clock that went back does not stop replays for good",
    async () => {
      const clock = new FakeClock(1_000_000);
      const c = replayContext({ clock });
      await c.call();
      clock.set(0);
      // The record lies in the future: not recent, so the count alone bounds.
      assert.equal(await c.call(), 401);
      assert.equal(c.issued(), 3);
      for (let i = 0; i < 5; i++) {
        await clock.advance(REPLAY_COOLDOWN_MS);
        await c.call();
      }
      assert.equal(c.issued(), 1 + MAX_REPLAYS_PER_TOKEN_LIFETIME);
    },
  );
});

/** Token creations allowed per client per minute (Genesys Cloud's `client.credentials.token.rate.per.minute`). */
const TOKEN_CREATIONS_PER_MINUTE = 300;
/** How long a token request takes, in simulated ms. */
const TOKEN_LATENCY_MS = 20;
/** One simulated step: each caller sends one request per step. */
const STEP_MS = 50;

/**
 * Runs `durationMs` of simulated time against an API with a healthy path and,
 * if `storm`, a bad one that answers 401 to valid tokens, called once per
 * step (20 times a second) beside `healthyCallers` callers of the healthy
 * path. The token endpoint creates at most {@linkcode TOKEN_CREATIONS_PER_MINUTE}
 * tokens a minute and then answers as Genesys Cloud does (400
 * `invalid_request`, `rate limit exceeded`).
 */
async function simulateStorm(
  options: {
    storm: boolean;
    healthyCallers: number;
    durationMs: number;
    /** `tokensPerCredential`. */
    pool?: number;
    /** When to rotate from blue to green, if at all. */
    rotateAtMs?: number;
    /** Whether each bad call is aborted once its first 401 is in. */
    abortBad?: boolean;
  },
) {
  const clock = new FakeClock(0);
  const createdBy = new Map<string, number[]>();
  const valid = new Map<string, number>();
  let throttled = 0;
  const endpoint = new FakeTokenEndpoint({
    tokenHandler: (request) =>
      new Promise((resolve) =>
        clock.setTimeout(() => {
          const now = clock.now();
          const created = createdBy.get(request.clientId) ?? [];
          createdBy.set(request.clientId, created);
          if (
            created.filter((at) => now - at < 60_000).length >=
              TOKEN_CREATIONS_PER_MINUTE
          ) {
            throttled++;
            return resolve(jsonResponse(400, {
              error: "invalid_request",
              description: "rate limit exceeded; try again later",
              error_description: "rate limit exceeded; try again later",
            }));
          }
          created.push(now);
          const token = `tok-${request.clientId}-${created.length}`;
          valid.set(token, now + 3_600_000);
          resolve(tokenResponse(token, 3600));
        }, TOKEN_LATENCY_MS)
      ),
    apiHandler: (request) => {
      const token = request.headers.get("authorization")?.slice(7) ?? "";
      const good = (valid.get(token) ?? 0) > clock.now();
      return good && !request.url.endsWith("/bad")
        ? textResponse(200, "ok")
        : invalidToken();
    },
  });
  const events: AuthEvent[] = [];
  const auth = createDualSecretAuth({
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
      { label: "green", clientId: "green-id", clientSecret: "green-secret" },
    ],
    tokenUrl: endpoint.tokenUrl,
    fetch: endpoint.fetch,
    clock,
    random: () => 0.5,
    tokensPerCredential: options.pool,
    onEvent: (event) => events.push(event),
  });
  const latencies: number[] = [];
  const failures: string[] = [];
  const badStatuses = new Map<number | string, number>();
  const busy = new Set<number>();
  const inFlight: Promise<void>[] = [];
  const healthy = async (caller: number) => {
    busy.add(caller);
    const started = clock.now();
    try {
      const response = await auth.fetch(`${endpoint.apiUrl}/api/v2/ok`);
      await response.body?.cancel();
      if (response.status !== 200) failures.push(`HTTP ${response.status}`);
    } catch (error) {
      failures.push((error as { code?: string }).code ?? String(error));
    }
    latencies.push(clock.now() - started);
    busy.delete(caller);
  };
  const bad = async () => {
    let outcome: number | string;
    const controller = new AbortController();
    // Gives up 1 ms in: while a replay waits for its token, if there is one.
    const timer = options.abortBad
      ? clock.setTimeout(() => controller.abort(new Error("gave up")), 1)
      : undefined;
    try {
      const response = await auth.fetch(`${endpoint.apiUrl}/api/v2/bad`, {
        signal: controller.signal,
      });
      await response.body?.cancel();
      outcome = response.status;
    } catch (error) {
      outcome = (error as { code?: string }).code ?? String(error);
    }
    if (timer !== undefined) clock.clearTimeout(timer);
    badStatuses.set(outcome, (badStatuses.get(outcome) ?? 0) + 1);
  };
  let rotation: Promise<unknown> | undefined;
  for (let at = 0; at < options.durationMs; at += STEP_MS) {
    if (at === options.rotateAtMs) {
      rotation = auth.rotate({ to: "green" });
    }
    if (options.storm) inFlight.push(bad());
    for (let caller = 0; caller < options.healthyCallers; caller++) {
      // A caller still waiting sends nothing new (a closed loop).
      if (!busy.has(caller)) inFlight.push(healthy(caller));
    }
    await clock.advance(STEP_MS);
  }
  while (busy.size > 0) await clock.advance(STEP_MS);
  await Promise.all(inFlight);
  await rotation;
  await auth.close();
  latencies.sort((a, b) => a - b);
  return {
    p99: latencies[Math.ceil(latencies.length * 0.99) - 1],
    calls: latencies.length,
    failures,
    badStatuses,
    tokenRequests: endpoint.tokenCalls,
    tokenRequestsBy: Object.fromEntries(
      [...createdBy].map(([id, times]) => [id, times.length]),
    ),
    throttled,
    skipped: events.filter((e) => e.type === "api.replay_skipped").length,
  };
}

Deno.test(
  "auth.fetch: a 401 storm beside 8 healthy callers spends a bounded number of tokens",
  async () => {
    const durationMs = 30_000;
    const baseline = await simulateStorm({
      storm: false,
      healthyCallers: 8,
      durationMs,
    });
    const storm = await simulateStorm({
      storm: true,
      healthyCallers: 8,
      durationMs,
    });
    // The healthy callers notice nothing.
    assert.deepEqual(storm.failures, []);
    assert.ok(
      storm.p99 <= baseline.p99,
      `healthy p99 ${storm.p99} ms in the storm, ${baseline.p99} ms without`,
    );
    assert.ok(storm.calls >= baseline.calls);
    // Every bad call got its 401, none an error.
    assert.deepEqual([...storm.badStatuses], [[401, durationMs / STEP_MS]]);
    // Token requests: the first, then one replay per cooldown up to the limit.
    assert.equal(storm.throttled, 0);
    assert.ok(
      storm.tokenRequests <=
        1 + Math.min(
            MAX_REPLAYS_PER_TOKEN_LIFETIME,
            Math.ceil(durationMs / REPLAY_COOLDOWN_MS),
          ),
      `${storm.tokenRequests} token requests`,
    );
    assert.equal(
      storm.skipped,
      durationMs / STEP_MS - (storm.tokenRequests - 1),
    );
  },
);

Deno.test(
  "auth.fetch: a 401 storm stays bounded with a pool, a rotation, and aborted calls",
  async (t) => {
    const durationMs = 12_000;
    const drops = Math.ceil(durationMs / REPLAY_COOLDOWN_MS);
    const run = async (variant: Parameters<typeof simulateStorm>[0]) => {
      const result = await simulateStorm(variant);
      assert.deepEqual(result.failures, []);
      // At the 99th percentile a healthy call waits for one token request at most.
      assert.ok(result.p99 <= TOKEN_LATENCY_MS, `p99 ${result.p99} ms`);
      assert.equal(result.throttled, 0);
      return result;
    };
    const storm = { storm: true, healthyCallers: 8, durationMs };

    await t.step(
      "a pool of 4 loses at most one token per cooldown",
      async () => {
        const result = await run({ ...storm, pool: 4 });
        assert.ok(
          result.tokenRequests <= 4 + drops,
          `${result.tokenRequests} token requests`,
        );
        assert.deepEqual([...result.badStatuses], [[
          401,
          durationMs / STEP_MS,
        ]]);
      },
    );

    await t.step("a rotation mid-storm starts one new chain", async () => {
      const result = await run({ ...storm, rotateAtMs: durationMs / 2 });
      const { "blue-id": blue, "green-id": green } = result.tokenRequestsBy;
      assert.ok(blue <= 1 + drops, `blue ${blue}`);
      // The proof of green, then its own replays.
      assert.ok(green >= 1 && green <= 1 + drops, `green ${green}`);
    });

    await t.step("bad calls aborted during their replay", async () => {
      const result = await run({ ...storm, pool: 4, abortBad: true });
      assert.ok(result.tokenRequests <= 4 + drops);
      const outcomes = [...result.badStatuses.keys()].sort();
      assert.ok(
        outcomes.every((outcome) => outcome === 401 || outcome === "ABORTED"),
        `${outcomes}`,
      );
      assert.equal(
        [...result.badStatuses.values()].reduce((a, b) => a + b),
        durationMs / STEP_MS,
      );
      assert.ok((result.badStatuses.get("ABORTED") ?? 0) > 0);
    });
  },
);
