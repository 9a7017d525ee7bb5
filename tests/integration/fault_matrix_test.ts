/**
 * The fault matrix: one test per way the token endpoint, the API, the clock
 * or the caller can misbehave, each against the Genesys emulator. Every test
 * checks the outcome for callers, the token requests made, the active
 * credential and the events, and then the same closing rules: failover only
 * on a rejection, no unhandled rejection, no expired token sent, every
 * failure a typed error with its stable code, and (sanitizers) no leak.
 */
import assert from "node:assert/strict";
import {
  AllCredentialsRejectedError,
  ErrorCode,
  RateLimitedError,
  RotationFailedError,
  TokenEndpointUnavailableError,
} from "../../mod.ts";
import {
  type EmulatorFault,
  FakeClock,
  startGenesysEmulator,
} from "../../testing.ts";
import { backoffDelay } from "../../src/retry.ts";
import { MAX_TOKEN_LIFETIME_MS } from "../../src/token_endpoint.ts";
import {
  assertTypedError,
  BLUE,
  countUnhandledRejections,
  credentialOf,
  type DriveOptions,
  GREEN,
  MID_RANDOM,
  rejectionOf,
  type Scenario,
  type ScenarioOptions,
  startScenario,
  TEST_RETRY,
  waitFor,
} from "./harness.ts";

const { maxAttempts } = TEST_RETRY;
const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** One row of the matrix. */
interface FaultCase {
  readonly name: string;
  readonly options?: ScenarioOptions;
  /** How many failovers the case causes (each must follow a rejection). */
  readonly failovers?: number;
  /** Whether the instance still serves afterwards (false once closed). */
  readonly servesAfterwards?: boolean;
  run(s: Scenario): Promise<void>;
}

/**
 * A transient fault: `maxAttempts` of them make a caller fail with `code`
 * after exactly `maxAttempts` requests; one fewer and the last attempt serves.
 */
function transientCase(
  name: string,
  fault: (s: Scenario) => EmulatorFault,
  code: ErrorCode,
  checks: {
    error?: (error: Error, s: Scenario) => void;
    retryDelays?: (delays: number[]) => void;
    options?: ScenarioOptions;
    drive?: (s: Scenario) => DriveOptions;
  } = {},
): FaultCase {
  return {
    name,
    options: checks.options,
    async run(s) {
      const drive = checks.drive?.(s);
      s.emulator.injectTokenFaults(fault(s), maxAttempts);
      const error = assertTypedError(
        await rejectionOf(s.drive(s.auth.getAccessToken(), drive)),
        code,
      );
      checks.error?.(error, s);
      assert.equal(s.emulator.stats().tokenRequests, maxAttempts);
      const retries = s.eventsOf("retry");
      assert.equal(retries.length, maxAttempts - 1);
      assert.ok(retries.every((retry) => retry.error.code === code));
      checks.retryDelays?.(retries.map((retry) => retry.delayMs));
      const failed = s.eventsOf("token.failed");
      assert.equal(failed.length, 1);
      assert.equal(failed[0].error.code, code);
      assert.equal(s.auth.status().credentials[0].state, "unavailable");
      assert.equal(s.auth.status().active, BLUE.label);

      s.emulator.injectTokenFaults(fault(s), maxAttempts - 1);
      const token = await s.drive(s.auth.getAccessToken(), drive);
      assert.ok(s.issuedTokens.has(token));
      assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
        [BLUE.clientId]: 2 * maxAttempts,
      });
      assert.equal(s.eventsOf("retry").length, 2 * (maxAttempts - 1));
      assert.equal(s.eventsOf("token.acquired").length, 1);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  };
}

/**
 * A fault that retrying would not fix: the caller fails with `code` after one
 * request, without failover; the next call makes a new request and is served.
 */
function permanentCase(
  name: string,
  fault: EmulatorFault,
  code: ErrorCode,
  check?: (error: Error) => void,
): FaultCase {
  return {
    name,
    async run(s) {
      s.emulator.injectTokenFaults(fault);
      const error = assertTypedError(
        await rejectionOf(s.drive(s.auth.getAccessToken())),
        code,
      );
      check?.(error);
      assert.equal(s.emulator.stats().tokenRequests, 1);
      assert.equal(s.eventsOf("retry").length, 0);
      assert.deepEqual(
        s.eventsOf("token.failed").map((event) => event.error.code),
        [code],
      );
      assert.equal(s.auth.status().active, BLUE.label);

      const token = await s.drive(s.auth.getAccessToken());
      assert.ok(s.issuedTokens.has(token));
      assert.equal(s.emulator.stats().tokenRequests, 2);
      assert.equal(s.eventsOf("token.acquired").length, 1);
    },
  };
}

function tokenBody(fields: Record<string, unknown>): EmulatorFault {
  return { kind: "body", body: JSON.stringify(fields) };
}

function statusOf(error: Error): number | undefined {
  return (error as { status?: number }).status;
}

const shortLived = (seconds: number): ScenarioOptions => ({
  clients: [
    {
      clientId: BLUE.clientId,
      secret: BLUE.secret,
      tokenLifetimeSeconds: seconds,
    },
    {
      clientId: GREEN.clientId,
      secret: GREEN.secret,
      tokenLifetimeSeconds: seconds,
    },
  ],
});

/** A gate a test opens by hand. */
function gate(): { opened: Promise<void>; open(): void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { opened: promise, open: () => resolve() };
}

const STALE_TOKEN_CHALLENGE = 'Bearer realm="genesys", error="invalid_token"';

const CASES: readonly FaultCase[] = [
  ...[500, 502, 503, 504].map((status) =>
    transientCase(
      `HTTP ${status}`,
      () => ({ kind: "status", status }),
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
      { error: (error) => assert.equal(statusOf(error), status) },
    )
  ),
  transientCase(
    "HTTP 408",
    () => ({ kind: "status", status: 408 }),
    ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    { error: (error) => assert.equal(statusOf(error), 408) },
  ),
  transientCase(
    "an HTML error page from a proxy (502 text/html)",
    () => ({ kind: "status", status: 502, contentType: "text/html" }),
    ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    {
      error: (error) => {
        assert.equal(statusOf(error), 502);
        assert.doesNotMatch(error.message, /<html|<\/h1>/i);
      },
    },
  ),
  transientCase(
    "429 with Retry-After in seconds",
    () => ({ kind: "status", status: 429, retryAfter: "2" }),
    ErrorCode.RATE_LIMITED,
    {
      error: (error) => {
        assert.ok(error instanceof RateLimitedError);
        assert.equal(error.retryAfterMs, 2_000);
      },
      retryDelays: (delays) => assert.ok(delays.every((ms) => ms === 2_000)),
    },
  ),
  transientCase(
    "429 with Retry-After as an HTTP date",
    // The date is fixed when the faults are queued, so only the first wait
    // is the full three seconds; later ones are what is left of it.
    (s) => ({
      kind: "status",
      status: 429,
      retryAfter: new Date(s.clock.now() + 3_000).toUTCString(),
    }),
    ErrorCode.RATE_LIMITED,
    {
      error: (error) => {
        assert.ok(error instanceof RateLimitedError);
        assert.ok(error.retryAfterMs !== undefined);
        assert.ok(error.retryAfterMs <= 3_000);
      },
      retryDelays: (delays) => {
        assert.equal(delays[0], 3_000);
        assert.ok(delays.every((ms) => ms >= 0 && ms <= 3_000));
      },
    },
  ),
  transientCase(
    "429 without Retry-After",
    () => ({ kind: "status", status: 429 }),
    ErrorCode.RATE_LIMITED,
    {
      error: (error) => {
        assert.ok(error instanceof RateLimitedError);
        assert.equal(error.retryAfterMs, undefined);
      },
      retryDelays: (delays) =>
        assert.deepEqual(
          delays,
          delays.map((_, i) => backoffDelay(i + 1, TEST_RETRY, MID_RANDOM)),
        ),
    },
  ),
  transientCase(
    "429 with an absurd Retry-After (capped by retry.maxRetryAfterMs)",
    () => ({ kind: "status", status: 429, retryAfter: "999999999" }),
    ErrorCode.RATE_LIMITED,
    {
      error: (error) => {
        assert.ok(error instanceof RateLimitedError);
        assert.equal(error.retryAfterMs, 999_999_999_000);
      },
      retryDelays: (delays) =>
        assert.ok(delays.every((ms) => ms === TEST_RETRY.maxRetryAfterMs)),
    },
  ),
  transientCase(
    "the connection reset mid-response",
    () => ({ kind: "reset" }),
    ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    {
      error: (error) => {
        assert.equal(statusOf(error), undefined);
        assert.ok(error.cause !== undefined, "the network error as cause");
      },
    },
  ),
  transientCase(
    "a response slower than requestTimeoutMs",
    () => ({ kind: "delay", ms: 60_000 }),
    ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    {
      options: { auth: { requestTimeoutMs: 1_000 } },
      // Fake time moves during the held requests (so they time out), but not
      // during the last one of the second wave, which is answered.
      drive: (s) => ({
        advanceWhileFetching: () => s.tokenAttempts() < 2 * maxAttempts,
      }),
      error: (error) => {
        assert.ok(error instanceof TokenEndpointUnavailableError);
        assert.match(error.message, /timed out/);
      },
    },
  ),
  permanentCase(
    "a body that is not JSON",
    { kind: "body", body: "<<this is not json>>" },
    ErrorCode.INVALID_TOKEN_RESPONSE,
    (error) => assert.match(error.message, /not JSON/),
  ),
  permanentCase(
    "an HTML page with 200 from a captive proxy",
    {
      kind: "body",
      body: "<html><body>Please log in</body></html>",
      contentType: "text/html",
    },
    ErrorCode.INVALID_TOKEN_RESPONSE,
  ),
  permanentCase(
    "JSON without access_token",
    tokenBody({ token_type: "bearer", expires_in: 3600 }),
    ErrorCode.INVALID_TOKEN_RESPONSE,
    (error) => assert.match(error.message, /access_token/),
  ),
  ...([
    ["zero", 0],
    ["negative", -60],
    ["a string that is no number", "soon"],
  ] as const).map(([what, value]) =>
    permanentCase(
      `expires_in ${what}`,
      tokenBody({
        access_token: "never-served",
        token_type: "bearer",
        expires_in: value,
      }),
      ErrorCode.INVALID_TOKEN_RESPONSE,
      (error) => assert.match(error.message, /expires_in/),
    )
  ),
  permanentCase(
    "token_type not bearer",
    tokenBody({
      access_token: "never-served",
      token_type: "mac",
      expires_in: 3600,
    }),
    ErrorCode.INVALID_TOKEN_RESPONSE,
    (error) => assert.match(error.message, /token_type/),
  ),
  permanentCase(
    "invalid_scope (a request error no credential would fix)",
    {
      kind: "status",
      status: 400,
      body: JSON.stringify({ error: "invalid_scope" }),
    },
    ErrorCode.TOKEN_REQUEST_FAILED,
    (error) => assert.equal(statusOf(error), 400),
  ),
  permanentCase(
    "a redirect from the token endpoint (refused once, not retried)",
    {
      kind: "status",
      status: 302,
      headers: { location: "https://sso.example.org/login" },
    },
    ErrorCode.REDIRECT_REFUSED,
    (error) => assert.match(error.message, /redirect to sso\.example\.org/),
  ),
  permanentCase(
    "a token response over 64 KiB (cancelled, not buffered)",
    tokenBody({
      access_token: "never-served",
      token_type: "bearer",
      expires_in: 3600,
      padding: "x".repeat(200_000),
    }),
    ErrorCode.INVALID_TOKEN_RESPONSE,
    (error) => assert.match(error.message, /larger than 65536 bytes/),
  ),
  permanentCase(
    "an access_token with CR/LF (not an RFC 6750 b64token)",
    tokenBody({
      access_token: "never\r\nX-Injected: served",
      token_type: "bearer",
      expires_in: 3600,
    }),
    ErrorCode.INVALID_TOKEN_RESPONSE,
    (error) => assert.match(error.message, /b64token/),
  ),
  {
    name: "a bare 401 on both credentials for a moment (a proxy), then healthy",
    failovers: 1,
    async run(s) {
      s.emulator.injectTokenFaults(
        { kind: "status", status: 401, body: "" },
        2,
      );
      const error = assertTypedError(
        await rejectionOf(s.drive(s.auth.getAccessToken())),
        ErrorCode.ALL_CREDENTIALS_REJECTED,
      );
      assert.ok(error instanceof AllCredentialsRejectedError);
      assert.equal(error.nextProbeAt, s.clock.now() + 1_000);
      // Within the backoff: no request.
      assertTypedError(
        await rejectionOf(s.auth.getAccessToken()),
        ErrorCode.ALL_CREDENTIALS_REJECTED,
      );
      assert.equal(s.emulator.stats().tokenRequests, 2);
      // After it, the endpoint is healthy again: one probe serves everyone.
      await s.clock.advance(1_000);
      const tokens = await s.drive(
        Promise.all(Array.from({ length: 100 }, () => s.auth.getAccessToken())),
      );
      assert.ok(tokens.every((token) => s.issuedTokens.has(token)));
      assert.equal(s.emulator.stats().tokenRequests, 3);
      assert.equal(s.eventsOf("reprobe").length, 1);
      assert.equal(s.auth.status().active, GREEN.label);
    },
  },
  {
    name: "the API answers 429 with Retry-After (auth.fetch waits, bounded)",
    async run(s) {
      s.emulator.injectApiFaults(
        { kind: "status", status: 429, retryAfter: "2" },
        2,
      );
      const started = s.clock.now();
      assert.equal((await s.whoAmI()).status, 200);
      assert.ok(s.clock.now() - started >= 4_000);
      assert.deepEqual(
        s.eventsOf("api.rate_limited").map((e) => [e.attempt, e.delayMs]),
        [[1, 2_000], [2, 2_000]],
      );
      // More 429s than the retries allow: the last one comes back.
      s.emulator.injectApiFaults(
        { kind: "status", status: 429, retryAfter: "1" },
        10,
      );
      assert.equal((await s.whoAmI()).status, 429);
      s.emulator.clearFaults();
    },
  },
  ...([
    ["missing (the default lifetime, one warning)", undefined, 300],
    ["a numeric string", "3600", 3600],
  ] as const).map(([what, value, seconds]): FaultCase => ({
    name: `expires_in ${what}`,
    async run(s) {
      for (let i = 1; i <= 2; i++) {
        s.emulator.injectTokenFaults(tokenBody({
          access_token: `served-${i}`,
          token_type: "bearer",
          expires_in: value,
        }));
        assert.equal(await s.drive(s.auth.getAccessToken()), `served-${i}`);
        assert.equal(
          s.auth.status().credentials[0].expiresAt,
          s.clock.now() + seconds * 1000,
        );
        await s.clock.advance(seconds * 1000);
      }
      assert.equal(s.emulator.stats().tokenRequests, 2);
      assert.equal(
        s.eventsOf("warning").filter((w) => w.code === "EXPIRES_IN_MISSING")
          .length,
        value === undefined ? 1 : 0,
      );
      assert.equal(s.eventsOf("token.failed").length, 0);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  })),
  {
    name: "expires_in huge (capped, then refreshed)",
    async run(s) {
      s.emulator.injectTokenFaults(tokenBody({
        access_token: "long-lived-token",
        token_type: "bearer",
        expires_in: 1e12,
      }));
      assert.equal(
        await s.drive(s.auth.getAccessToken()),
        "long-lived-token",
      );
      assert.equal(
        s.auth.status().credentials[0].expiresAt,
        s.clock.now() + MAX_TOKEN_LIFETIME_MS,
      );
      await s.clock.advance(MAX_TOKEN_LIFETIME_MS);
      const next = await s.drive(s.auth.getAccessToken());
      assert.notEqual(next, "long-lived-token");
      assert.ok(s.issuedTokens.has(next));
      assert.equal(s.emulator.stats().tokenRequests, 2);
      assert.equal(s.eventsOf("token.acquired").length, 2);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  },
  {
    name: "invalid_client on the active credential only",
    failovers: 1,
    async run(s) {
      s.emulator.regenerateSecret(BLUE.clientId);
      const token = await s.drive(s.auth.getAccessToken());
      assert.ok(s.issuedTokens.has(token));
      assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
        [BLUE.clientId]: 1,
        [GREEN.clientId]: 1,
      });
      const [failover] = s.eventsOf("failover");
      assert.equal(failover.from, BLUE.label);
      assert.equal(failover.to, GREEN.label);
      assert.equal(failover.error.oauthError, "invalid_client");
      const status = s.auth.status();
      assert.equal(status.active, GREEN.label);
      assert.equal(status.credentials[0].state, "rejected");
      assert.equal((await s.whoAmI()).clientId, GREEN.clientId);
    },
  },
  {
    name: "invalid_client with HTTP 400 on the active credential",
    failovers: 1,
    async run(s) {
      s.emulator.injectTokenFaults({
        kind: "status",
        status: 400,
        body: JSON.stringify({
          error: "invalid_client",
          error_description: "authentication failed",
        }),
      });
      const token = await s.drive(s.auth.getAccessToken());
      assert.ok(s.issuedTokens.has(token));
      assert.equal(s.eventsOf("failover")[0].error.status, 400);
      assert.equal(s.auth.status().active, GREEN.label);
      assert.equal(s.emulator.stats().tokenRequests, 2);
    },
  },
  {
    name: "invalid_client on the standby credential only",
    async run(s) {
      s.emulator.regenerateSecret(GREEN.clientId);
      const token = await s.drive(s.auth.getAccessToken());
      assert.ok(s.issuedTokens.has(token));
      assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
        [BLUE.clientId]: 1,
      });
      const error = assertTypedError(
        await rejectionOf(s.drive(s.auth.rotate({ to: GREEN.label }))),
        ErrorCode.ROTATION_FAILED,
      );
      assertTypedError(error.cause, ErrorCode.CREDENTIAL_REJECTED);
      const status = s.auth.status();
      assert.equal(status.active, BLUE.label);
      assert.equal(status.credentials[1].state, "rejected");
      assert.equal(s.eventsOf("rotated").length, 0);
      assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
      assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
        [BLUE.clientId]: 1,
        [GREEN.clientId]: 1,
      });
    },
  },
  {
    name: "invalid_client on both credentials",
    failovers: 1,
    async run(s) {
      s.emulator.regenerateSecret(BLUE.clientId);
      s.emulator.regenerateSecret(GREEN.clientId);
      const error = assertTypedError(
        await rejectionOf(s.drive(s.auth.getAccessToken())),
        ErrorCode.ALL_CREDENTIALS_REJECTED,
      );
      assert.ok(error instanceof AllCredentialsRejectedError);
      assert.deepEqual(
        error.credentials.map((c) => [c.label, c.state, c.oauthError]),
        [
          [BLUE.label, "rejected", "invalid_client"],
          [GREEN.label, "rejected", "invalid_client"],
        ],
      );
      assertTypedError(error.cause, ErrorCode.CREDENTIAL_REJECTED);
      assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
        [BLUE.clientId]: 1,
        [GREEN.clientId]: 1,
      });
      // Rejections stick: another call fails at once, without a request.
      assertTypedError(
        await rejectionOf(s.drive(s.auth.getAccessToken())),
        ErrorCode.ALL_CREDENTIALS_REJECTED,
      );
      assert.equal(s.emulator.stats().tokenRequests, 2);

      s.auth.setCredentials([
        credentialOf({
          ...BLUE,
          secret: s.emulator.getClientSecret(BLUE.clientId),
        }),
        credentialOf({
          ...GREEN,
          secret: s.emulator.getClientSecret(GREEN.clientId),
        }),
      ]);
      const token = await s.drive(s.auth.getAccessToken());
      assert.ok(s.issuedTokens.has(token));
    },
  },
  {
    name: "the active secret regenerated while 1,000 requests are in flight",
    options: { emulator: { revokeTokensOnRegenerate: true } },
    failovers: 1,
    async run(s) {
      assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
      const inFlight = 1_000;
      const held = gate();
      let arrived = 0;
      s.setHook(({ isToken }) => {
        if (isToken) return undefined;
        arrived++;
        return held.opened;
      });
      const me = `${s.emulator.apiUrl}/api/v2/tokens/me`;
      const calls = Array.from({ length: inFlight }, async () => {
        const response = await s.auth.fetch(me);
        return response.ok
          ? (await response.json()).OAuthClient.id
          : (await response.body?.cancel(), response.status);
      });
      await waitFor(() => arrived === inFlight, "every request in flight");
      s.setHook(undefined);
      s.emulator.regenerateSecret(BLUE.clientId);
      held.open();

      const servedBy = await s.drive(Promise.all(calls));
      assert.deepEqual(
        [...new Set(servedBy)],
        [GREEN.clientId],
        "every call replayed with green's token",
      );
      const stats = s.emulator.stats();
      assert.equal(stats.apiUnauthorized, inFlight);
      assert.deepEqual(stats.tokenRequestsByClient, {
        [BLUE.clientId]: 2,
        [GREEN.clientId]: 1,
      });
      assert.equal(s.auth.status().active, GREEN.label);
    },
  },
  {
    name: "a token revoked server-side before it expires",
    async run(s) {
      const revoked = await s.drive(s.auth.getAccessToken());
      s.emulator.revokeToken(revoked);
      const me = await s.whoAmI();
      assert.deepEqual(me, { status: 200, clientId: BLUE.clientId });
      const fresh = await s.drive(s.auth.getAccessToken());
      assert.notEqual(fresh, revoked);
      const stats = s.emulator.stats();
      assert.equal(stats.apiUnauthorized, 1);
      assert.equal(stats.apiRequests, 2, "one replay");
      assert.equal(stats.tokenRequests, 2);
      assert.equal(s.eventsOf("token.acquired").length, 2);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  },
  {
    name:
      "the API keeps answering 401: one replay, then the 401 is the caller's",
    async run(s) {
      await s.drive(s.auth.getAccessToken());
      s.emulator.injectApiFaults({
        kind: "status",
        status: 401,
        headers: { "www-authenticate": STALE_TOKEN_CHALLENGE },
      }, 2);
      const response = await s.drive(
        s.auth.fetch(`${s.emulator.apiUrl}/api/v2/tokens/me`),
      );
      assert.equal(response.status, 401);
      await response.body?.cancel();
      const stats = s.emulator.stats();
      assert.equal(stats.apiRequests, 2);
      assert.equal(stats.tokenRequests, 2, "one fresh token, no more");
      assert.equal(s.eventsOf("token.acquired").length, 2);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  },
  {
    name: "the clock jumps forward past expiry",
    options: shortLived(600),
    async run(s) {
      const first = await s.drive(s.auth.getAccessToken());
      s.clock.set(s.issuedTokens.get(first)! + 100_000);
      const second = await s.drive(s.auth.getAccessToken());
      assert.notEqual(second, first);
      assert.ok(s.clock.now() < s.issuedTokens.get(second)!);
      assert.equal((await s.whoAmI()).status, 200);
      assert.equal(s.emulator.stats().tokenRequests, 2);
      assert.equal(s.eventsOf("token.acquired").length, 2);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  },
  {
    name: "the clock jumps backward, then forward past expiry",
    options: shortLived(600),
    async run(s) {
      const first = await s.drive(s.auth.getAccessToken());
      s.clock.set(s.clock.now() - 3_600_000);
      // Cached expiry times are wall-clock times: after a step back the
      // cache is dropped (with a warning) rather than trusted.
      const second = await s.drive(s.auth.getAccessToken());
      assert.notEqual(second, first);
      assert.deepEqual(
        s.eventsOf("warning").map((event) => event.code),
        ["CLOCK_WENT_BACK"],
      );
      assert.equal((await s.whoAmI()).status, 200);
      assert.equal(s.emulator.stats().tokenRequests, 2);
      s.clock.set(s.issuedTokens.get(second)!);
      const third = await s.drive(s.auth.getAccessToken());
      assert.notEqual(third, second);
      assert.equal((await s.whoAmI()).status, 200);
      assert.equal(s.emulator.stats().tokenRequests, 3);
      assert.equal(s.eventsOf("token.acquired").length, 3);
      assert.equal(s.auth.status().active, BLUE.label);
    },
  },
  {
    name: "the standby removed by setCredentials while rotate() verifies it",
    async run(s) {
      await s.drive(s.auth.getAccessToken());
      const held = gate();
      s.setHook(({ clientId }) =>
        clientId === GREEN.clientId ? held.opened : undefined
      );
      const rotation = rejectionOf(s.auth.rotate({ to: GREEN.label }));
      await waitFor(() => s.tokenAttempts() === 2, "green's verification");
      s.auth.setCredentials([credentialOf(BLUE)]);
      held.open();

      // Replaced while it was verified: the rotation fails because the
      // target is no longer configured (one class, RotationFailedError).
      const error = assertTypedError(
        await s.drive(rotation),
        ErrorCode.UNKNOWN_CREDENTIAL,
      );
      assert.ok(error instanceof RotationFailedError);
      const status = s.auth.status();
      assert.equal(status.active, BLUE.label);
      assert.deepEqual(status.credentials.map((c) => c.label), [BLUE.label]);
      assert.equal(s.eventsOf("rotated").length, 0);
      assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
    },
  },
  {
    name: "the standby removed by setCredentials while a failover uses it",
    failovers: 1,
    async run(s) {
      s.emulator.regenerateSecret(BLUE.clientId);
      const held = gate();
      s.setHook(({ clientId }) =>
        clientId === GREEN.clientId ? held.opened : undefined
      );
      const call = s.auth.getAccessToken();
      call.catch(() => undefined);
      await waitFor(() => s.tokenAttempts() === 2, "the failover's request");
      s.auth.setCredentials([
        credentialOf({
          ...BLUE,
          secret: s.emulator.getClientSecret(BLUE.clientId),
        }),
      ]);
      held.open();

      const token = await s.drive(call);
      assert.ok(s.clock.now() < (s.issuedTokens.get(token) ?? 0));
      assert.ok(
        s.eventsOf("warning").some((w) => w.code === "ACTIVE_REMOVED"),
      );
      const status = s.auth.status();
      assert.equal(status.active, BLUE.label);
      assert.deepEqual(status.credentials.map((c) => c.label), [BLUE.label]);
      assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
    },
  },
  {
    name: "close() while requests are in flight",
    servesAfterwards: false,
    async run(s) {
      s.emulator.injectTokenFaults({ kind: "delay", ms: 60_000 }, 2);
      const me = `${s.emulator.apiUrl}/api/v2/tokens/me`;
      const waiting = [
        ...Array.from({ length: 100 }, () => s.auth.getAccessToken()),
        ...Array.from({ length: 10 }, () => s.auth.fetch(me)),
      ].map(rejectionOf);
      const rotation = rejectionOf(s.auth.rotate({ to: GREEN.label }));
      await waitFor(
        () => s.emulator.stats().tokenRequests === 2,
        "blue's request and green's verification to arrive",
      );

      await s.auth.close();

      for (const error of await Promise.all(waiting)) {
        assertTypedError(error, ErrorCode.CLOSED);
      }
      const rotationError = assertTypedError(
        await rotation,
        ErrorCode.ROTATION_FAILED,
      );
      assertTypedError(rotationError.cause, ErrorCode.CLOSED);
      assertTypedError(
        await rejectionOf(s.auth.getAccessToken()),
        ErrorCode.CLOSED,
      );
      assertTypedError(
        await rejectionOf(s.auth.rotate({ to: GREEN.label })),
        ErrorCode.CLOSED,
      );
      assert.throws(
        () => s.auth.setCredentials([credentialOf(BLUE)]),
        (error) => assertTypedError(error, ErrorCode.CLOSED) !== undefined,
      );
      await s.auth.close(); // idempotent
      assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
        [BLUE.clientId]: 1,
        [GREEN.clientId]: 1,
      });
      assert.equal(s.eventsOf("retry").length, 0);
      assert.equal(s.eventsOf("token.acquired").length, 0);
      assert.equal(s.eventsOf("rotated").length, 0);
      assert.equal(s.auth.status().active, BLUE.label);
      assert.equal(s.inFlight(), 0, "no request left behind");
    },
  },
];

/** The rules every row must keep, checked once the row has run. */
async function closingChecks(
  s: Scenario,
  failovers: number,
  servesAfterwards: boolean,
): Promise<void> {
  if (servesAfterwards) {
    s.emulator.clearFaults();
    assert.equal((await s.whoAmI()).status, 200, "served afterwards");
  }
  const seen = s.eventsOf("failover");
  assert.equal(seen.length, failovers, "failovers");
  for (const failover of seen) {
    assert.equal(failover.error.code, ErrorCode.CREDENTIAL_REJECTED);
  }
  for (const event of [...s.eventsOf("token.failed"), ...s.eventsOf("retry")]) {
    assert.ok(KNOWN_CODES.has(event.error.code), event.error.code);
  }
  assert.equal(s.emulator.stats().expiredTokenUses, 0);
}

for (const row of CASES) {
  Deno.test(`fault: ${row.name}`, async () => {
    using rejections = countUnhandledRejections();
    {
      await using s = startScenario(row.options);
      await row.run(s);
      await closingChecks(s, row.failovers ?? 0, row.servesAfterwards ?? true);
    }
    assert.equal(await rejections.settle(), 0, "unhandled rejections");
  });
}

/** A port nothing listens on any more. */
async function closedPort(): Promise<number> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(),
  );
  const { port } = server.addr;
  await server.shutdown();
  return port;
}

Deno.test("fault: connection refused, then the endpoint comes back", async () => {
  using rejections = countUnhandledRejections();
  {
    const port = await closedPort();
    await using s = startScenario({
      tokenUrl: `http://127.0.0.1:${port}/oauth/token`,
    });

    const error = assertTypedError(
      await rejectionOf(s.drive(s.auth.getAccessToken())),
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    );
    assert.equal(statusOf(error), undefined);
    assert.ok(error.cause !== undefined, "the network error as cause");
    assert.equal(s.tokenAttempts(), maxAttempts);
    assert.equal(s.eventsOf("retry").length, maxAttempts - 1);
    assert.equal(s.auth.status().credentials[0].state, "unavailable");
    assert.equal(s.auth.status().active, BLUE.label);

    await using revived = startGenesysEmulator({
      port,
      clock: s.clock,
      clients: [{ clientId: BLUE.clientId, secret: BLUE.secret }],
    });
    const token = await s.drive(s.auth.getAccessToken());
    assert.ok(s.issuedTokens.has(token));
    assert.equal(s.tokenAttempts(), maxAttempts + 1);
    assert.equal(revived.stats().tokenRequests, 1);
    const response = await s.drive(
      s.auth.fetch(`${revived.apiUrl}/api/v2/tokens/me`),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(revived.stats().expiredTokenUses, 0);
    await closingChecks(s, 0, false);
  }
  assert.equal(await rejections.settle(), 0, "unhandled rejections");
});

/**
 * The client's wall clock jumps back an hour while the server's does not,
 * then both move past the token's real expiry.
 */
async function clientClockJumpsBack(s: Scenario, serverClock: FakeClock) {
  const first = await s.drive(s.auth.getAccessToken());
  s.clock.set(s.clock.now() - 3_600_000);
  const pastExpiry = s.issuedTokens.get(first)! - serverClock.now() + 1_000;
  await serverClock.advance(pastExpiry);
  await s.clock.advance(pastExpiry);
  return first;
}

Deno.test("fault: the client's clock alone jumps backward: callers of fetch are still served", async () => {
  using rejections = countUnhandledRejections();
  {
    const serverClock = new FakeClock();
    await using s = startScenario({ ...shortLived(600), serverClock });
    const first = await clientClockJumpsBack(s, serverClock);

    // The server rejects the token the client still trusts; the stale-token
    // replay gets a fresh one.
    assert.deepEqual(await s.whoAmI(), {
      status: 200,
      clientId: BLUE.clientId,
    });
    const fresh = await s.drive(s.auth.getAccessToken());
    assert.notEqual(fresh, first);
    assert.ok(serverClock.now() < s.issuedTokens.get(fresh)!);
    assert.equal(s.emulator.stats().tokenRequests, 2);
    assert.equal(s.eventsOf("token.acquired").length, 2);
    assert.equal(s.eventsOf("failover").length, 0);
    assert.equal(s.auth.status().active, BLUE.label);
  }
  assert.equal(await rejections.settle(), 0, "unhandled rejections");
});

Deno.test({
  name:
    "fault: the client's clock alone jumps backward: no expired token is returned",
  async fn() {
    const serverClock = new FakeClock();
    await using s = startScenario({ ...shortLived(600), serverClock });
    const first = await clientClockJumpsBack(s, serverClock);
    const token = await s.drive(s.auth.getAccessToken());
    assert.notEqual(token, first, "the server expired this token");
    assert.equal((await s.whoAmI()).status, 200);
    assert.equal(s.emulator.stats().expiredTokenUses, 0);
  },
});
