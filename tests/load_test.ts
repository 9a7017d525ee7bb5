/**
 * Load against the Genesys Cloud emulator on loopback: a stampede of
 * concurrent callers shares one token request, and sustained `auth.fetch`
 * traffic keeps succeeding while credentials are rotated and one secret is
 * regenerated behind the library's back. Memory stays bounded.
 */
import assert from "node:assert/strict";
import { type AuthEvent, createDualSecretAuth } from "../mod.ts";
import { startGenesysEmulator } from "../testing.ts";

const CLIENTS = [
  { clientId: "blue-id", secret: "blue-secret" },
  { clientId: "green-id", secret: "green-secret" },
];
/** Generous: the point is catching unbounded growth, not measuring. */
const HEAP_GROWTH_LIMIT = 200 * 1024 * 1024;

function heapUsed(): number {
  return Deno.memoryUsage().heapUsed;
}

Deno.test("load: 50,000 concurrent callers share one token request", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
      { label: "green", clientId: "green-id", clientSecret: "green-secret" },
    ],
    tokenUrl: emulator.tokenUrl,
  });
  const callers = 50_000;
  const heapBefore = heapUsed();
  const tokens = await Promise.all(
    Array.from({ length: callers }, () => auth.getAccessToken()),
  );
  assert.equal(tokens.length, callers);
  assert.equal(new Set(tokens).size, 1, "callers got different tokens");
  assert.ok(tokens[0].length > 0);
  assert.equal(emulator.stats().tokenRequests, 1);
  assert.ok(heapUsed() - heapBefore < HEAP_GROWTH_LIMIT, "heap grew too much");
});

Deno.test("load: sustained auth.fetch while rotating and regenerating a secret", async () => {
  await using emulator = startGenesysEmulator({ clients: CLIENTS });
  const events: AuthEvent[] = [];
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
      { label: "green", clientId: "green-id", clientSecret: "green-secret" },
    ],
    tokenUrl: emulator.tokenUrl,
    onEvent: (event) => events.push(event),
  });
  const total = 20_000;
  const concurrency = 200;
  const url = `${emulator.apiUrl}/api/v2/tokens/me`;

  /**
   * What happens during the load, once `after` calls completed, and how many
   * token requests each step costs: a rotation verifies with one request; a
   * regenerated active secret plus a dropped cache costs the rejected request
   * and the standby's.
   */
  const plan: { after: number; tokenRequests: number; run(): unknown }[] = [
    { after: 2_000, tokenRequests: 1, run: () => auth.rotate({ to: "green" }) },
    { after: 5_000, tokenRequests: 1, run: () => auth.rotate({ to: "blue" }) },
    {
      after: 8_000,
      tokenRequests: 2,
      run: () => {
        assert.equal(auth.status().active, "blue");
        emulator.regenerateSecret("blue-id", "blue-secret-2");
        // As if blue's token had expired: the next caller must get a new one.
        auth.invalidate();
      },
    },
    {
      after: 9_000,
      tokenRequests: 0,
      run: () =>
        auth.setCredentials([
          { label: "blue", clientId: "blue-id", clientSecret: "blue-secret-2" },
          {
            label: "green",
            clientId: "green-id",
            clientSecret: "green-secret",
          },
        ]),
    },
    { after: 11_000, tokenRequests: 1, run: () => auth.rotate({ to: "blue" }) },
    {
      after: 14_000,
      tokenRequests: 1,
      run: () => auth.rotate({ to: "green" }),
    },
    { after: 17_000, tokenRequests: 1, run: () => auth.rotate({ to: "blue" }) },
  ];
  let actions: Promise<unknown> = Promise.resolve();
  let nextAction = 0;
  let started = 0;
  let completed = 0;
  const failures: string[] = [];

  async function worker(): Promise<void> {
    while (started < total) {
      started++;
      try {
        const response = await auth.fetch(url);
        await response.body?.cancel();
        if (response.status !== 200) failures.push(`HTTP ${response.status}`);
      } catch (error) {
        failures.push(String(error));
      }
      completed++;
      while (nextAction < plan.length && completed >= plan[nextAction].after) {
        const step = plan[nextAction++];
        // Steps run in order, each after the one before, beside the traffic.
        actions = actions.then(() => step.run());
      }
    }
  }

  const heapBefore = heapUsed();
  await Promise.all(Array.from({ length: concurrency }, worker));
  await actions;
  const heapGrowth = heapUsed() - heapBefore;

  assert.deepEqual(failures, []);
  assert.equal(completed, total);
  assert.equal(nextAction, plan.length, "not every planned step ran");
  const stats = emulator.stats();
  assert.equal(stats.apiRequests, total, "no request was replayed");
  assert.equal(stats.apiUnauthorized, 0);
  assert.equal(
    stats.tokenRequests,
    1 + plan.reduce((sum, step) => sum + step.tokenRequests, 0),
  );
  assert.equal(stats.tokenFailures, 1, "only the regenerated secret failed");
  assert.ok(stats.apiRequestsByClient["blue-id"] > 0);
  assert.ok(stats.apiRequestsByClient["green-id"] > 0);
  const failovers = events.filter((event) => event.type === "failover");
  assert.equal(failovers.length, 1);
  assert.deepEqual(
    failovers.map((event) =>
      event.type === "failover" && [event.from, event.to]
    ),
    [["blue", "green"]],
  );
  assert.equal(events.filter((event) => event.type === "rotated").length, 5);
  assert.equal(auth.status().active, "blue");
  assert.ok(
    heapGrowth < HEAP_GROWTH_LIMIT,
    `heap grew ${Math.round(heapGrowth / 1024 / 1024)} MB`,
  );
});
