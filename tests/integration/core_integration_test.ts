/**
 * The core promises against the Genesys emulator: one token request for a
 * cold herd, zero failed calls across a secret regeneration, no failover and
 * no request amplification in 503 and 429 storms, no expired token ever
 * served, and rotate() with verification and rollback.
 */
import assert from "node:assert/strict";
import { ErrorCode, RateLimitedError } from "../../mod.ts";
import {
  assertTypedError,
  BLUE,
  countUnhandledRejections,
  credentialOf,
  GREEN,
  rejectionOf,
  startScenario,
  TEST_RETRY,
  waitFor,
} from "./harness.ts";

Deno.test("a cold herd of 10,000 concurrent callers makes exactly one token request", async () => {
  using rejections = countUnhandledRejections();
  await using s = startScenario();
  const herd = 10_000;

  const tokens = await s.drive(
    Promise.all(
      Array.from({ length: herd }, () => s.auth.getAccessToken()),
    ),
  );

  assert.equal(tokens.length, herd);
  assert.equal(new Set(tokens).size, 1);
  assert.ok(s.issuedTokens.has(tokens[0]), "the token came from the emulator");
  const stats = s.emulator.stats();
  assert.equal(stats.tokenRequests, 1);
  assert.deepEqual(stats.tokenRequestsByClient, { [BLUE.clientId]: 1 });
  assert.equal(s.auth.status().active, BLUE.label);
  assert.deepEqual(s.events.map((event) => event.type), ["token.acquired"]);
  assert.equal(await rejections.settle(), 0);
});

for (const revoke of [true, false]) {
  Deno.test(`the active secret regenerated mid-traffic (revokeTokensOnRegenerate: ${revoke}): no failed call, one failover`, async () => {
    using rejections = countUnhandledRejections();
    const lifetimeSeconds = 600;
    await using s = startScenario({
      clients: [
        {
          clientId: BLUE.clientId,
          secret: BLUE.secret,
          tokenLifetimeSeconds: lifetimeSeconds,
        },
        {
          clientId: GREEN.clientId,
          secret: GREEN.secret,
          tokenLifetimeSeconds: lifetimeSeconds,
        },
      ],
      emulator: { revokeTokensOnRegenerate: revoke },
    });
    const workers = 50;
    const callsPerWorker = 20;
    const total = workers * callsPerWorker;
    const statuses: number[] = [];
    const servedBy: string[] = [];
    const me = `${s.emulator.apiUrl}/api/v2/tokens/me`;
    const worker = async () => {
      for (let i = 0; i < callsPerWorker; i++) {
        const response = await s.auth.fetch(me);
        statuses.push(response.status);
        if (response.ok) servedBy.push((await response.json()).OAuthClient.id);
        else await response.body?.cancel();
      }
    };

    const traffic = Promise.all(Array.from({ length: workers }, worker));
    await waitFor(
      () => s.emulator.stats().apiRequests >= total / 3,
      "a third of the traffic",
    );
    s.emulator.regenerateSecret(BLUE.clientId);
    if (!revoke) {
      // Blue's token stays valid, so the regeneration only shows when the
      // token is refreshed: move to a minute before it expires, well inside
      // the refresh margin.
      const blueExpiry = s.auth.status().credentials[0].expiresAt!;
      await s.clock.advance(blueExpiry - s.clock.now() - 60_000);
    }
    await traffic;

    assert.equal(statuses.length, total);
    assert.deepEqual(statuses.filter((status) => status !== 200), []);
    assert.ok(servedBy.includes(BLUE.clientId), "blue served before");
    assert.ok(servedBy.includes(GREEN.clientId), "green served after");
    const failovers = s.eventsOf("failover");
    assert.equal(failovers.length, 1);
    assert.equal(failovers[0].from, BLUE.label);
    assert.equal(failovers[0].to, GREEN.label);
    assert.equal(failovers[0].error.code, ErrorCode.CREDENTIAL_REJECTED);
    assert.equal(failovers[0].error.oauthError, "invalid_client");
    const status = s.auth.status();
    assert.equal(status.active, GREEN.label);
    assert.equal(status.credentials[0].state, "rejected");
    const stats = s.emulator.stats();
    // Blue: the first token and the one rejected request; green: one token.
    assert.deepEqual(stats.tokenRequestsByClient, {
      [BLUE.clientId]: 2,
      [GREEN.clientId]: 1,
    });
    assert.equal(stats.expiredTokenUses, 0);
    if (revoke) assert.ok(stats.apiUnauthorized >= 1, "a stale token was met");
    else assert.equal(stats.apiUnauthorized, 0);
    assert.equal(await rejections.settle(), 0);
  });
}

Deno.test("a 503 storm: no failover, typed errors then service, no request amplification", async () => {
  using rejections = countUnhandledRejections();
  await using s = startScenario();
  const callers = 1_000;
  const { maxAttempts } = TEST_RETRY;
  // The first wave exhausts its attempts; the second is served by its last.
  s.emulator.injectTokenFaults(
    { kind: "status", status: 503 },
    2 * maxAttempts - 1,
  );
  const wave = () =>
    s.drive(
      Promise.allSettled(
        Array.from({ length: callers }, () => s.auth.getAccessToken()),
      ),
    );

  const first = await wave();
  for (const outcome of first) {
    assert.equal(outcome.status, "rejected");
    const error = assertTypedError(
      (outcome as PromiseRejectedResult).reason,
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    );
    assert.equal((error as { status?: number }).status, 503);
  }
  assert.equal(s.emulator.stats().tokenRequests, maxAttempts);
  assert.equal(s.auth.status().credentials[0].state, "unavailable");

  const second = await wave();
  const tokens = second.map((outcome) => {
    assert.equal(outcome.status, "fulfilled");
    return (outcome as PromiseFulfilledResult<string>).value;
  });
  assert.equal(new Set(tokens).size, 1);
  assert.ok(s.issuedTokens.has(tokens[0]));

  const stats = s.emulator.stats();
  assert.equal(stats.tokenRequests, 2 * maxAttempts, "waves × maxAttempts");
  assert.deepEqual(stats.tokenRequestsByClient, {
    [BLUE.clientId]: 2 * maxAttempts,
  });
  assert.equal(s.eventsOf("failover").length, 0);
  assert.equal(s.eventsOf("retry").length, 2 * (maxAttempts - 1));
  assert.equal(s.eventsOf("token.failed").length, 1);
  assert.equal(s.eventsOf("token.acquired").length, 1);
  assert.equal(s.auth.status().active, BLUE.label);
  assert.equal(await rejections.settle(), 0);
});

Deno.test("a 429 storm with Retry-After: waits as asked, no failover, no request amplification", async () => {
  using rejections = countUnhandledRejections();
  await using s = startScenario();
  const callers = 1_000;
  const { maxAttempts } = TEST_RETRY;
  const retryAfterSeconds = 2;
  s.emulator.injectTokenFaults(
    { kind: "status", status: 429, retryAfter: String(retryAfterSeconds) },
    2 * maxAttempts - 1,
  );
  const started = s.clock.now();
  const wave = () =>
    s.drive(
      Promise.allSettled(
        Array.from({ length: callers }, () => s.auth.getAccessToken()),
      ),
    );

  const first = await wave();
  for (const outcome of first) {
    assert.equal(outcome.status, "rejected");
    const error = assertTypedError(
      (outcome as PromiseRejectedResult).reason,
      ErrorCode.RATE_LIMITED,
    );
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.retryAfterMs, retryAfterSeconds * 1000);
  }
  assert.equal(s.emulator.stats().tokenRequests, maxAttempts);

  const second = await wave();
  assert.ok(second.every((outcome) => outcome.status === "fulfilled"));

  const retries = s.eventsOf("retry");
  assert.equal(retries.length, 2 * (maxAttempts - 1));
  for (const retry of retries) {
    assert.equal(retry.delayMs, retryAfterSeconds * 1000);
    assert.equal(retry.error.code, ErrorCode.RATE_LIMITED);
  }
  assert.ok(
    s.clock.now() - started >= retries.length * retryAfterSeconds * 1000,
    "every Retry-After was waited out",
  );
  assert.equal(s.emulator.stats().tokenRequests, 2 * maxAttempts);
  assert.equal(s.eventsOf("failover").length, 0);
  assert.equal(s.auth.status().active, BLUE.label);
  assert.equal(await rejections.settle(), 0);
});

Deno.test("an expired token is never returned, even while the token endpoint is down", async () => {
  using rejections = countUnhandledRejections();
  const lifetimeMs = 400_000;
  await using s = startScenario({
    clients: [
      {
        clientId: BLUE.clientId,
        secret: BLUE.secret,
        tokenLifetimeSeconds: lifetimeMs / 1000,
      },
      { clientId: GREEN.clientId, secret: GREEN.secret },
    ],
  });
  const start = s.clock.now();
  // The outage starts before the first token's refresh is due and lasts past
  // its expiry, so there is a stale-but-valid phase and an expired phase.
  const outageFrom = start + lifetimeMs / 2;
  const outageUntil = start + lifetimeMs + lifetimeMs / 5;
  let outage = false;
  let servedDuringOutage = 0;
  let failedDuringOutage = 0;
  let served = 0;

  while (s.clock.now() < start + 3 * lifetimeMs) {
    if (!outage && s.clock.now() >= outageFrom && s.clock.now() < outageUntil) {
      s.emulator.injectTokenFaults({ kind: "status", status: 503 }, 10_000);
      outage = true;
    }
    if (outage && s.clock.now() >= outageUntil) {
      s.emulator.clearFaults();
      outage = false;
    }
    try {
      const token = await s.drive(s.auth.getAccessToken());
      const expiresAt = s.issuedTokens.get(token);
      assert.ok(expiresAt !== undefined, "an issued token");
      assert.ok(s.clock.now() < expiresAt, "an unexpired token");
      const me = await s.whoAmI();
      assert.equal(me.status, 200);
      served++;
      if (outage) servedDuringOutage++;
    } catch (error) {
      assertTypedError(error, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
      assert.ok(outage, "failures only during the outage");
      failedDuringOutage++;
    }
    await s.clock.advance(lifetimeMs / 20);
  }

  assert.ok(servedDuringOutage > 0, "the valid token was served meanwhile");
  assert.ok(failedDuringOutage > 0, "callers failed once it expired");
  assert.ok(served > servedDuringOutage, "and were served after");
  const stats = s.emulator.stats();
  assert.equal(stats.expiredTokenUses, 0);
  assert.ok(
    s.eventsOf("token.failed").some((event) => event.background),
    "refreshes ahead of expiry failed in the background",
  );
  assert.equal(s.eventsOf("failover").length, 0);
  assert.equal(s.auth.status().active, BLUE.label);
  assert.equal(await rejections.settle(), 0);
});

Deno.test("rotate() verifies the target with a real token request, then switches", async () => {
  using rejections = countUnhandledRejections();
  await using s = startScenario();
  assert.equal((await s.whoAmI()).clientId, BLUE.clientId);

  const result = await s.drive(s.auth.rotate({ to: GREEN.label }));

  assert.equal(result.from, BLUE.label);
  assert.equal(result.to, GREEN.label);
  const green = s.auth.status().credentials[1];
  assert.equal(green.state, "ready");
  assert.equal(result.expiresAt, green.expiresAt);
  assert.equal(s.auth.status().active, GREEN.label);
  assert.deepEqual(
    s.eventsOf("rotated").map(({ from, to }) => ({ from, to })),
    [
      { from: BLUE.label, to: GREEN.label },
    ],
  );
  // Callers now get green's verified token, without another request.
  assert.equal((await s.whoAmI()).clientId, GREEN.clientId);
  assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
    [BLUE.clientId]: 1,
    [GREEN.clientId]: 1,
  });
  assert.equal(s.eventsOf("failover").length, 0);
  assert.equal(await rejections.settle(), 0);
});

Deno.test("rotate() to a broken credential rolls back: the active one stays and keeps serving", async () => {
  using rejections = countUnhandledRejections();
  await using s = startScenario();
  assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
  const newGreenSecret = s.emulator.regenerateSecret(GREEN.clientId);

  const error = await rejectionOf(
    s.drive(s.auth.rotate({ to: GREEN.label })),
  );

  const rotationError = assertTypedError(error, ErrorCode.ROTATION_FAILED);
  assert.equal((rotationError as { active?: string }).active, BLUE.label);
  assert.equal((rotationError as { target?: string }).target, GREEN.label);
  assertTypedError(rotationError.cause, ErrorCode.CREDENTIAL_REJECTED);
  assert.equal(s.auth.status().active, BLUE.label);
  assert.equal(s.eventsOf("rotated").length, 0);
  assert.equal(s.eventsOf("failover").length, 0);
  assert.equal((await s.whoAmI()).clientId, BLUE.clientId);
  assert.deepEqual(s.emulator.stats().tokenRequestsByClient, {
    [BLUE.clientId]: 1,
    [GREEN.clientId]: 1,
  });

  // Fixing the standby's secret makes the same rotation succeed.
  s.auth.setCredentials([
    credentialOf(BLUE),
    credentialOf({ ...GREEN, secret: newGreenSecret }),
  ]);
  const result = await s.drive(s.auth.rotate({ to: GREEN.label }));
  assert.equal(result.to, GREEN.label);
  assert.equal((await s.whoAmI()).clientId, GREEN.clientId);
  assert.equal(s.emulator.stats().expiredTokenUses, 0);
  assert.equal(await rejections.settle(), 0);
});
