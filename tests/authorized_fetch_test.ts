import assert from "node:assert/strict";
import { ClosedError } from "./support/closed_error.ts";
import {
  authorizedFetch,
  isStaleTokenChallenge,
  parseWwwAuthenticate,
} from "../src/authorized_fetch.ts";
import type { DualSecretAuthOptions } from "../src/config.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { AbortedError } from "../src/errors.ts";
import type { AuthEvent } from "../src/events.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  acceptingHandler,
  FakeTokenEndpoint,
  textResponse,
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
