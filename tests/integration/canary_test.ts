/**
 * Secret canaries: every secret is a unique marker string, and a run through
 * success, transient faults, rejection, failover, rotation, reloads, aborts,
 * config errors and close renders everything a caller can observe (errors
 * and their whole cause chain, events, status, public objects) every way a
 * program might print it. No secret and no issued access token may appear.
 */
import assert from "node:assert/strict";
import {
  type AuthEvent,
  createDualSecretAuth,
  type DualSecretAuthOptions,
  ErrorCode,
  Secret,
} from "../../mod.ts";
import { createGenesysAdminClient } from "../../genesys.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { canary, LeakCollector } from "../support/canary.ts";
import {
  assertTypedError,
  BLUE,
  countUnhandledRejections,
  GREEN,
  rejectionOf,
  startScenario,
  TEST_RETRY,
  waitFor,
} from "./harness.ts";

const { maxAttempts } = TEST_RETRY;

/** Form encoding as RFC 6749 Appendix B asks (written out here, not imported). */
function formEncoded(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * What a secret may turn into on its way out: itself, its URL and form
 * encodings, and the Basic authorization values built from it (encoded as
 * RFC 6749 asks, and raw).
 */
function secretForms(clientId: string, secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    formEncoded(secret),
    btoa(`${formEncoded(clientId)}:${formEncoded(secret)}`),
    btoa(
      String.fromCharCode(...new TextEncoder().encode(`${clientId}:${secret}`)),
    ),
  ];
}

/** Every way a server might echo a credential back in its error text. */
function echoes(clientId: string, secret: string): string {
  return [
    `Authorization: Basic ${
      btoa(`${formEncoded(clientId)}:${formEncoded(secret)}`)
    }`,
    `raw ${secret}`,
    `url ${encodeURIComponent(secret)}`,
    `form client_secret=${formEncoded(secret)}`,
  ].join("; ");
}

/** The codes of an error and of every cause below it. */
function codesInChain(error: unknown): string[] {
  const codes: string[] = [];
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

function reportLeaks(collector: LeakCollector, needles: Iterable<string>) {
  const leaks = collector.leaks(needles);
  assert.deepEqual(
    leaks.slice(0, 5).map(({ source, excerpt }) => `${source}: …${excerpt}…`),
    [],
    `${leaks.length} leak(s)`,
  );
}

Deno.test("the leak scan finds a canary wherever it is rendered", () => {
  const marker = canary("SECRET");
  const collector = new LeakCollector();
  collector.add(
    "an error with the marker three causes down",
    new Error("a", {
      cause: new Error("b", {
        cause: new Error("c", { cause: `x${marker}y` }),
      }),
    }),
  );
  const leaks = collector.leaks([marker, canary("SECRET")]);
  assert.ok(leaks.length > 0);
  assert.ok(leaks.every((leak) => leak.needle === marker));
  assert.ok(
    leaks.some((leak) => leak.source.endsWith(".cause.cause.cause (String)")),
  );
});

Deno.test("no secret or access token appears in errors, causes, events, status or inspect output", async () => {
  using rejections = countUnhandledRejections();
  const collector = new LeakCollector();
  const needles = new Set<string>();
  const codes = new Set<string>();
  const newSecret = (clientId: string) => {
    // Characters that encode differently in URL, form and Basic forms.
    const value = `${canary("SECRET")}/+=&é~`;
    secretForms(clientId, value).forEach((form) => needles.add(form));
    return value;
  };
  const fakeToken = () => {
    const value = canary("TOKEN");
    needles.add(value);
    return value;
  };
  const blueSecret = newSecret(BLUE.clientId);
  const greenSecret = newSecret(GREEN.clientId);
  const padded = (secret: string) => `  ${secret}\n`;

  await using s = startScenario({
    clients: [
      { clientId: BLUE.clientId, secret: blueSecret },
      { clientId: GREEN.clientId, secret: greenSecret },
    ],
    auth: {
      credentials: [
        {
          label: BLUE.label,
          clientId: BLUE.clientId,
          clientSecret: new Secret(blueSecret),
        },
        {
          label: GREEN.label,
          clientId: GREEN.clientId,
          clientSecret: padded(greenSecret),
        },
      ],
      requestTimeoutMs: 1_000,
    },
  });
  const me = `${s.emulator.apiUrl}/api/v2/tokens/me`;
  const observe = (when: string) => {
    collector.add(`status() ${when}`, s.auth.status());
    collector.add(`auth ${when}`, s.auth);
  };
  const failure = async (
    what: string,
    work: Promise<unknown>,
    code: ErrorCode,
    drive: { advanceWhileFetching?: () => boolean } = {},
  ) => {
    const error = await rejectionOf(s.drive(work, drive));
    assertTypedError(error, code);
    codesInChain(error).forEach((c) => codes.add(c));
    collector.add(what, error);
  };
  const served = async (what: string) => {
    const token = await s.drive(s.auth.getAccessToken());
    assert.ok(s.issuedTokens.has(token), what);
  };

  // Success, and the secrets as the caller holds them.
  await served("first token");
  assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
  collector.add("a Secret", new Secret(blueSecret));
  collector.addText("a Secret in a template", `${new Secret(greenSecret)}`);
  collector.add("a Secret in an object", { secret: new Secret(blueSecret) });
  observe("after success");

  // Transient faults: recovered, then exhausted.
  s.auth.invalidate();
  s.emulator.injectTokenFaults({ kind: "status", status: 503 }, 2);
  await served("after two 503s");
  s.auth.invalidate();
  for (
    const fault of [
      { kind: "status", status: 503 },
      { kind: "status", status: 502, contentType: "text/html" },
      { kind: "status", status: 429, retryAfter: "1" },
      { kind: "reset" },
    ] as const
  ) {
    s.emulator.injectTokenFaults(fault, maxAttempts);
    await failure(
      `${fault.kind} ${"status" in fault ? fault.status : ""}`,
      s.auth.getAccessToken(),
      fault.kind === "status" && fault.status === 429
        ? ErrorCode.RATE_LIMITED
        : ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    );
  }
  s.emulator.injectTokenFaults({ kind: "delay", ms: 60_000 }, maxAttempts);
  await failure(
    "timeouts",
    s.auth.getAccessToken(),
    ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    { advanceWhileFetching: () => true },
  );
  // Malformed token responses that carry a token of their own.
  for (
    const body of [
      `{"access_token":"${fakeToken()}","token_type":"bea`,
      JSON.stringify({
        access_token: fakeToken(),
        token_type: "bearer",
        expires_in: "soon",
      }),
      JSON.stringify({
        access_token: fakeToken(),
        token_type: "mac",
        expires_in: 3600,
      }),
      JSON.stringify({ token: fakeToken(), expires_in: 3600 }),
    ]
  ) {
    s.emulator.injectTokenFaults({ kind: "body", body });
    await failure(
      "invalid token response",
      s.auth.getAccessToken(),
      ErrorCode.INVALID_TOKEN_RESPONSE,
    );
  }
  s.emulator.injectTokenFaults({
    kind: "status",
    status: 400,
    body: JSON.stringify({
      error: "invalid_scope",
      error_description: "scope not allowed",
    }),
  });
  await failure(
    "request error",
    s.auth.getAccessToken(),
    ErrorCode.TOKEN_REQUEST_FAILED,
  );
  // A server (or proxy) echoing the request back in its error text: the
  // Basic header, the raw, URL- and form-encoded secrets of both
  // credentials, and a secret as the OAuth error code itself.
  for (
    const body of [
      {
        error: "invalid_scope",
        error_description: `${echoes(BLUE.clientId, blueSecret)} ${
          echoes(GREEN.clientId, greenSecret)
        }`,
      },
      { error: blueSecret, error_description: "x" },
      { error: "invalid_request", error_description: greenSecret.repeat(40) },
    ]
  ) {
    s.emulator.injectTokenFaults({
      kind: "status",
      status: 400,
      body: JSON.stringify(body),
    });
    await failure(
      "an echoing error description",
      s.auth.getAccessToken(),
      ErrorCode.TOKEN_REQUEST_FAILED,
    );
  }
  // Bounded input: a redirect, an oversized body, a header-breaking token.
  s.emulator.injectTokenFaults({
    kind: "status",
    status: 302,
    headers: { location: "https://elsewhere.example/oauth/token" },
  });
  await failure(
    "a redirect",
    s.auth.getAccessToken(),
    ErrorCode.REDIRECT_REFUSED,
  );
  for (
    const body of [
      JSON.stringify({
        access_token: fakeToken(),
        token_type: "bearer",
        expires_in: 3600,
        padding: "x".repeat(70_000),
      }),
      JSON.stringify({
        access_token: `${fakeToken()}\r\nX-Injected: 1`,
        token_type: "bearer",
        expires_in: 3600,
      }),
    ]
  ) {
    s.emulator.injectTokenFaults({ kind: "body", body });
    await failure(
      "an unbounded or header-breaking token response",
      s.auth.getAccessToken(),
      ErrorCode.INVALID_TOKEN_RESPONSE,
    );
  }
  await served("after the faults");
  observe("after transient faults");

  // A caller's abort.
  s.auth.invalidate();
  await failure(
    "aborted",
    s.auth.getAccessToken({ signal: AbortSignal.abort() }),
    ErrorCode.ABORTED,
  );
  await served("after the abort");

  // Rejection and failover.
  s.emulator.regenerateSecret(BLUE.clientId, newSecret(BLUE.clientId));
  s.auth.invalidate();
  await served("after failover");
  assert.equal(s.auth.status().active, GREEN.label);
  observe("after failover");

  // Rotation that fails, to an unknown label, then one that works after a
  // reload with whitespace-padded secrets.
  await failure(
    "rotation to a rejected credential",
    s.auth.rotate({ to: BLUE.label }),
    ErrorCode.ROTATION_FAILED,
  );
  await failure(
    "rotation to an unknown label",
    s.auth.rotate({ to: "purple" }),
    ErrorCode.UNKNOWN_CREDENTIAL,
  );
  s.auth.setCredentials([
    {
      label: BLUE.label,
      clientId: BLUE.clientId,
      clientSecret: `\t${s.emulator.getClientSecret(BLUE.clientId)} \n`,
    },
    {
      label: GREEN.label,
      clientId: GREEN.clientId,
      clientSecret: padded(greenSecret),
    },
  ]);
  collector.add(
    "rotation result",
    await s.drive(s.auth.rotate({ to: BLUE.label })),
  );
  observe("after rotation");

  // A token revoked server-side: the API call is replayed once.
  s.emulator.revokeToken(await s.drive(s.auth.getAccessToken()));
  assert.equal((await s.whoAmI()).status, 200);

  // Every credential rejected, then a reload with Secret instances.
  s.emulator.regenerateSecret(BLUE.clientId, newSecret(BLUE.clientId));
  s.emulator.regenerateSecret(GREEN.clientId, newSecret(GREEN.clientId));
  s.auth.invalidate();
  await failure(
    "all rejected",
    s.auth.getAccessToken(),
    ErrorCode.ALL_CREDENTIALS_REJECTED,
  );
  observe("with every credential rejected");
  // Once the backoff passes, a call probes again (and is rejected again).
  await s.clock.advance(1_000);
  await failure(
    "all rejected after a probe",
    s.auth.getAccessToken(),
    ErrorCode.ALL_CREDENTIALS_REJECTED,
  );
  const invalidReload = [
    {
      label: BLUE.label,
      clientId: BLUE.clientId,
      clientSecret: new Secret(newSecret(BLUE.clientId)),
    },
    {
      label: BLUE.label,
      clientId: GREEN.clientId,
      clientSecret: newSecret(GREEN.clientId),
    },
  ];
  try {
    s.auth.setCredentials(invalidReload);
    assert.fail("a duplicate label must be refused");
  } catch (error) {
    assertTypedError(error, ErrorCode.CONFIG_INVALID);
    codes.add(ErrorCode.CONFIG_INVALID);
    collector.add("invalid reload", error);
  }
  s.auth.setCredentials([BLUE, GREEN].map(({ label, clientId }) => ({
    label,
    clientId,
    clientSecret: new Secret(s.emulator.getClientSecret(clientId)),
  })));
  await served("after the reload");
  assert.equal((await s.whoAmI()).status, 200);
  observe("after the reload");

  // close() with requests in flight.
  s.auth.invalidate();
  s.emulator.injectTokenFaults({ kind: "delay", ms: 60_000 });
  const requestsBefore = s.emulator.stats().tokenRequests;
  const inFlight = [s.auth.getAccessToken(), s.auth.fetch(me)].map(
    rejectionOf,
  );
  await waitFor(
    () => s.emulator.stats().tokenRequests > requestsBefore,
    "the token request to arrive",
  );
  await s.auth.close();
  for (const error of await Promise.all(inFlight)) {
    assertTypedError(error, ErrorCode.CLOSED);
    collector.add("closed in flight", error);
  }
  await failure("after close", s.auth.getAccessToken(), ErrorCode.CLOSED);
  observe("after close");
  s.events.forEach((event, i) =>
    collector.add(`event ${i} ${event.type}`, event)
  );

  // The runtime refusing the connection (a missing --allow-net).
  {
    await using denied = createDualSecretAuth({
      credentials: [{
        label: BLUE.label,
        clientId: BLUE.clientId,
        clientSecret: blueSecret,
      }],
      tokenUrl: s.emulator.tokenUrl,
      fetch: () =>
        Promise.reject(
          new Deno.errors.NotCapable('Requires net access to "127.0.0.1:1"'),
        ),
    });
    const error = await rejectionOf(denied.getAccessToken());
    assertTypedError(error, ErrorCode.PERMISSION_DENIED);
    codesInChain(error).forEach((c) => codes.add(c));
    collector.add("permission denied", error);
    collector.add("auth after permission denied", denied);
    collector.add("status after permission denied", denied.status());
  }

  for (const token of s.issuedTokens.keys()) needles.add(token);
  reportLeaks(collector, needles);

  // The run covered what it claims to.
  assert.ok(s.issuedTokens.size >= 8, `${s.issuedTokens.size} tokens issued`);
  for (const code of Object.values(ErrorCode)) {
    assert.ok(codes.has(code), `no ${code} error was observed`);
  }
  const types = new Set(s.events.map((event) => event.type));
  const expectedTypes: AuthEvent["type"][] = [
    "token.acquired",
    "token.failed",
    "retry",
    "reprobe",
    "failover",
    "rotated",
    "warning",
  ];
  for (const type of expectedTypes) {
    assert.ok(types.has(type), `no ${type} event`);
  }
  assert.ok(
    s.eventsOf("warning").some((w) => w.code === "WHITESPACE_TRIMMED"),
    "the padded secrets were trimmed with a warning",
  );
  assert.equal(s.emulator.stats().expiredTokenUses, 0);
  assert.equal(await rejections.settle(), 0);
});

Deno.test("config errors never echo a secret", () => {
  const collector = new LeakCollector();
  const needles: string[] = [];
  const secret = () => {
    const value = canary("SECRET");
    needles.push(value);
    return value;
  };
  const pair = (): DualSecretAuthOptions["credentials"] => [
    { label: "a", clientId: "id-a", clientSecret: secret() },
    { label: "b", clientId: "id-b", clientSecret: new Secret(secret()) },
  ];
  const invalid: [string, DualSecretAuthOptions][] = [
    ["duplicate labels", {
      credentials: [
        { label: "a", clientId: "id-a", clientSecret: secret() },
        { label: "a", clientId: "id-b", clientSecret: secret() },
      ],
    }],
    ["an empty secret next to a real one", {
      credentials: [
        { label: "a", clientId: "id-a", clientSecret: secret() },
        { label: "b", clientId: "id-b", clientSecret: "   " },
      ],
    }],
    ["a password in an https tokenUrl", {
      credentials: pair(),
      tokenUrl: `https://user:${secret()}@login.example.com/oauth/token`,
    }],
    ["a password in a loopback tokenUrl", {
      credentials: pair(),
      tokenUrl: `http://user:${secret()}@127.0.0.1:1/oauth/token`,
    }],
    ["a password in a plain-http tokenUrl", {
      credentials: pair(),
      tokenUrl: `http://user:${secret()}@login.example.com/oauth/token`,
    }],
    ["a secret pasted as tokenUrl", {
      credentials: pair(),
      tokenUrl: secret(),
    }],
    ["tokenUrl and environment", {
      credentials: pair(),
      tokenUrl: "https://login.example.com/oauth/token",
      environment: "mypurecloud.com",
    }],
    ["an unknown active label", { credentials: pair(), active: "c" }],
    ["the shorthand without secretB", {
      clientId: "id",
      secretA: secret(),
    }],
    ["the shorthand and a list", {
      clientId: "id",
      secretA: secret(),
      secretB: secret(),
      credentials: pair(),
    }],
    ["a negative timeout", { credentials: pair(), requestTimeoutMs: -1 }],
    ["zero attempts", { credentials: pair(), retry: { maxAttempts: 0 } }],
  ];
  for (const [what, options] of invalid) {
    assert.throws(
      () => createDualSecretAuth(options),
      (error) => {
        assertTypedError(error, ErrorCode.CONFIG_INVALID);
        collector.add(what, error);
        return true;
      },
      what,
    );
  }
  assert.equal(collector.size > invalid.length, true);
  reportLeaks(collector, needles);
});

Deno.test({
  name: "a password in an environment URL is not echoed",
  fn() {
    const password = canary("SECRET");
    const collector = new LeakCollector();
    assert.throws(
      () =>
        createDualSecretAuth({
          credentials: [
            { label: "a", clientId: "id-a", clientSecret: "a" },
            { label: "b", clientId: "id-b", clientSecret: "b" },
          ],
          environment: `https://user:${password}@login.mypurecloud.com`,
        }),
      (error) => {
        assertTypedError(error, ErrorCode.CONFIG_INVALID);
        collector.add("environment with user info", error);
        return true;
      },
    );
    reportLeaks(collector, [password]);
  },
});

Deno.test("the admin API echoing the bearer token or a secret in its text is redacted", async () => {
  const collector = new LeakCollector();
  const secret = canary("SECRET");
  await using emulator = startGenesysEmulator({
    clients: [
      {
        clientId: "admin-id",
        secret,
        permissions: ["oauth:client:view", "oauth:client:edit"],
      },
      { clientId: "green-id", secret: canary("SECRET") },
    ],
  });
  const token = emulator.issueToken("admin-id");
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve(token),
    retry: { maxAttempts: 1 },
  });
  for (
    const body of [
      {
        message: `Invalid header: Authorization: Bearer ${token}`,
        code: "bad",
      },
      { message: "x", code: token, contextId: `ctx ${token}` },
      { message: `token=${encodeURIComponent(token)} ${token.slice(0, 8)}` },
    ]
  ) {
    emulator.injectApiFaults({
      kind: "status",
      status: 400,
      body: JSON.stringify(body),
    });
    const error = await rejectionOf(admin.getClient("green-id"));
    assertTypedError(error, "GENESYS_API_REQUEST_FAILED");
    collector.add("admin error echoing the token", error);
  }
  emulator.injectApiFaults({
    kind: "status",
    status: 302,
    headers: { location: `https://${token.slice(0, 20)}.example/x` },
  });
  const redirect = await rejectionOf(admin.getClient("green-id"));
  assertTypedError(redirect, ErrorCode.REDIRECT_REFUSED);
  collector.add("admin redirect", redirect);
  reportLeaks(collector, [token, secret]);
});
