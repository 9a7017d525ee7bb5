import assert from "node:assert/strict";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";

const DAY_MS = 86_400_000;
const MONTH = 31 * 86_400;
/** Wednesday 2026-01-07, 10:00 UTC. */
const START = Date.UTC(2026, 0, 7, 10);

function call(
  emulator: GenesysEmulator,
  method: string,
  path: string,
  bearer: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${emulator.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function drain(response: Promise<Response>): Promise<number> {
  const answered = await response;
  await answered.body?.cancel();
  return answered.status;
}

function setup(options: { usageQueryRunningPolls?: number } = {}) {
  const clock = new FakeClock(START);
  const emulator = startGenesysEmulator({
    clock,
    organization: { id: "org-u", name: "Usage org" },
    // Tokens that outlive the days the clock skips.
    clients: [
      {
        clientId: "app",
        secret: "s",
        name: "App",
        tokenLifetimeSeconds: MONTH,
      },
      {
        clientId: "auditor",
        secret: "a",
        permissions: ["usage:client:view"],
        tokenLifetimeSeconds: MONTH,
      },
    ],
    ...options,
  });
  return { clock, emulator };
}

/** Starts a query and polls its results until they are complete. */
async function run(
  emulator: GenesysEmulator,
  bearer: string,
  start: Response,
): Promise<{ results: Record<string, unknown>[]; polls: number }> {
  assert.equal(start.status, 202);
  const { executionId, resultsUri } = await start.json();
  assert.equal(typeof executionId, "string");
  assert.equal(
    resultsUri,
    `/api/v2/oauth/clients/app/usage/query/results/${executionId}`,
  );
  for (let polls = 1; polls <= 5; polls++) {
    const response = await call(emulator, "GET", resultsUri, bearer);
    assert.equal(response.status, 200);
    const body = await response.json();
    if (body.queryStatus === "Complete") {
      return { results: body.results, polls };
    }
    assert.deepEqual(body, { queryStatus: "Running" });
  }
  throw new Error("the query never completed");
}

Deno.test("usage: counts show up only once their day is over", async (t) => {
  const { clock, emulator } = setup();
  await using _ = emulator;
  const app = emulator.issueToken("app");
  const auditor = emulator.issueToken("auditor");
  for (let i = 0; i < 3; i++) {
    assert.equal(
      await drain(call(emulator, "GET", "/api/v2/tokens/me", app)),
      200,
    );
  }
  assert.equal(
    await drain(call(emulator, "GET", "/api/v2/oauth/clients/app", app)),
    403,
  );
  const interval = `${new Date(START - 7 * DAY_MS).toISOString()}/${
    new Date(START + 7 * DAY_MS).toISOString()
  }`;
  const query = (bearer: string) =>
    call(emulator, "POST", "/api/v2/oauth/clients/app/usage/query", bearer, {
      interval,
      groupBy: ["TemplateUri", "HttpMethod"],
    });

  await t.step("the same day: nothing yet; the client must poll", async () => {
    assert.equal(await drain(query(app)), 403, "app may not read usage");
    const { results, polls } = await run(
      emulator,
      auditor,
      await query(auditor),
    );
    assert.deepEqual(results, []);
    assert.equal(polls, 2, "one Running answer, then Complete");
  });

  await t.step("after midnight: yesterday's counts, by route", async () => {
    await clock.advance(DAY_MS);
    const { results } = await run(emulator, auditor, await query(auditor));
    const byRoute = Object.fromEntries(
      results.map((row) => [`${row.httpMethod} ${row.templateUri}`, row]),
    );
    assert.deepEqual(byRoute["GET api/v2/tokens/me"], {
      templateUri: "api/v2/tokens/me",
      httpMethod: "GET",
      status200: 3,
      status300: 0,
      status400: 0,
      status500: 0,
      status429: 0,
      requests: 3,
    });
    assert.equal(
      byRoute["GET api/v2/oauth/clients/{clientId}"].status400,
      1,
      "refused requests count too",
    );
    // Usage is the caller's: the auditor's queries are not the app's.
    assert.deepEqual(
      Object.keys(byRoute).sort(),
      [
        "GET api/v2/oauth/clients/{clientId}",
        "GET api/v2/tokens/me",
        "POST api/v2/oauth/clients/{clientId}/usage/query",
      ],
    );
  });

  await t.step("granularity, metrics and OAuthClientId", async () => {
    const { results } = await run(
      emulator,
      auditor,
      await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients/app/usage/query",
        auditor,
        {
          interval,
          granularity: "Week",
          metrics: ["Requests"],
          groupBy: ["OAuthClientId", "OrganizationId"],
        },
      ),
    );
    assert.deepEqual(results, [{
      clientId: "app",
      clientName: "App",
      organizationId: "org-u",
      date: "2026-01-05T00:00:00.000Z",
      requests: 5,
    }]);
  });

  await t.step("a day outside the interval is left out", async () => {
    const { results } = await run(
      emulator,
      auditor,
      await call(
        emulator,
        "POST",
        "/api/v2/oauth/clients/app/usage/query",
        auditor,
        { interval: "2026-01-08T00:00:00Z/2026-01-09T00:00:00Z" },
      ),
    );
    assert.deepEqual(results, []);
  });
});

Deno.test("usage summary: the last N whole days", async (t) => {
  const { clock, emulator } = setup({ usageQueryRunningPolls: 0 });
  await using _ = emulator;
  const app = emulator.issueToken("app");
  const auditor = emulator.issueToken("auditor");
  await drain(call(emulator, "GET", "/api/v2/tokens/me", app));
  await clock.advance(3 * DAY_MS);
  await drain(call(emulator, "HEAD", "/api/v2/tokens/me", app));
  await clock.advance(DAY_MS);

  await t.step("days=2 sees only the recent day", async () => {
    const { results, polls } = await run(
      emulator,
      auditor,
      await call(
        emulator,
        "GET",
        "/api/v2/oauth/clients/app/usage/summary?days=2",
        auditor,
      ),
    );
    assert.equal(polls, 1, "usageQueryRunningPolls: 0 completes at once");
    assert.deepEqual(
      results.map((row) => [row.httpMethod, row.templateUri, row.requests]),
      [["HEAD", "api/v2/tokens/me", 1]],
    );
  });

  await t.step("the default (7 days) sees both", async () => {
    const { results } = await run(
      emulator,
      auditor,
      await call(
        emulator,
        "GET",
        "/api/v2/oauth/clients/app/usage/summary",
        auditor,
      ),
    );
    assert.deepEqual(
      results.map((row) => row.httpMethod).sort(),
      ["GET", "HEAD"],
    );
  });

  await t.step("bad days: 400", async () => {
    for (const days of ["0", "x", "1.5", "367"]) {
      const response = await call(
        emulator,
        "GET",
        `/api/v2/oauth/clients/app/usage/summary?days=${days}`,
        auditor,
      );
      assert.equal(response.status, 400, days);
      assert.equal((await response.json()).code, "bad.request");
    }
  });
});

Deno.test("usage: permissions, unknown ids and bad queries", async (t) => {
  const { emulator } = setup();
  await using _ = emulator;
  const app = emulator.issueToken("app");
  const auditor = emulator.issueToken("auditor");
  const post = (body: unknown, bearer = auditor, client = "app") =>
    call(
      emulator,
      "POST",
      `/api/v2/oauth/clients/${client}/usage/query`,
      bearer,
      body,
    );
  const interval = "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z";

  await t.step(
    "without oauth:client:view or usage:client:view: 403",
    async () => {
      const response = await post({ interval }, app);
      assert.equal(response.status, 403);
      assert.match(
        (await response.json()).message,
        /\[oauth:client:view, usage:client:view\]/,
      );
    },
  );

  await t.step("unknown client: 404", async () => {
    const response = await post({ interval }, auditor, "ghost");
    assert.equal(response.status, 404);
    assert.equal((await response.json()).code, "not.found");
  });

  await t.step("unknown execution, or another client's: 404", async () => {
    emulator.addClient({ clientId: "other", secret: "o" });
    const started = await (await post({ interval })).json();
    for (
      const path of [
        "/api/v2/oauth/clients/app/usage/query/results/nope",
        `/api/v2/oauth/clients/other/usage/query/results/${started.executionId}`,
      ]
    ) {
      const response = await call(emulator, "GET", path, auditor);
      assert.equal(response.status, 404, path);
      assert.equal((await response.json()).code, "not.found");
    }
  });

  await t.step("invalid queries: 400 bad.request", async () => {
    const bodies: unknown[] = [
      [],
      {},
      { interval: "2026-01-01" },
      { interval: "2026-01-02T00:00:00Z/2026-01-01T00:00:00Z" },
      { interval: "a/b" },
      { interval, granularity: "Hour" },
      { interval, metrics: ["Latency"] },
      { interval, metrics: "Requests" },
      { interval, groupBy: ["Queue"] },
    ];
    for (const body of bodies) {
      const response = await post(body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal((await response.json()).code, "bad.request");
    }
  });

  await t.step("other methods: 405", async () => {
    assert.equal(
      await drain(
        call(emulator, "GET", "/api/v2/oauth/clients/app/usage/query", auditor),
      ),
      405,
    );
  });
});
