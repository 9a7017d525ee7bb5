/**
 * Soak: 30 simulated days of steady traffic (one `getAccessToken` every 10 s)
 * on a `FakeClock`, with 300-second tokens and daily faults: a burst of 503s,
 * a 429, and a secret changed behind the library's back followed by a fixed
 * `setCredentials` and a rotation back. It checks that token requests follow
 * the refresh schedule computed from lifetime, margin and jitter, that every
 * call is served with a valid token, and that nothing grows: pending timers,
 * abort listeners, cached grants.
 */
import assert from "node:assert/strict";
import {
  type AuthEvent,
  type CachedGrant,
  createDualSecretAuth,
  type SharedState,
} from "../mod.ts";
import { FakeClock } from "../testing.ts";
import { seededRandom } from "./support/seeded_random.ts";

const TOKEN_URL = "https://login.example.test/oauth/token";
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const DAYS = 30;
const TICK_MS = 10 * SECOND;
const LIFETIME_SECONDS = 300;
const REFRESH_MARGIN_MS = 300 * SECOND;
/** The library takes up to this fraction off the margin at random (REFRESH_JITTER in credential_slot.ts). */
const JITTER = 0.2;
const BURST_503 = 6;

/** One token request as the fake endpoint answered it. */
interface Served {
  readonly at: number;
  readonly clientId: string;
  readonly status: number;
  /** Counts disturbances (faults, rejections, switches) before this request. */
  readonly disturbance: number;
}

/** A token endpoint with one secret per client and a queue of faults. */
class SoakTokenServer {
  readonly secrets = new Map<string, string>();
  readonly expiries = new Map<string, number>();
  readonly requests: Served[] = [];
  readonly faults: Response[] = [];
  disturbance = 0;
  #issued = 0;

  constructor(readonly clock: FakeClock) {}

  readonly fetch: typeof fetch = (_input, init) => {
    const header = new Headers(init?.headers).get("authorization") ?? "";
    const [clientId, secret] = atob(header.replace(/^Basic /, "")).split(":");
    const response = this.faults.shift() ?? this.#answer(clientId, secret);
    if (response.status !== 200) this.disturbance++;
    this.requests.push({
      at: this.clock.now(),
      clientId,
      status: response.status,
      disturbance: this.disturbance,
    });
    return Promise.resolve(response);
  };

  #answer(clientId: string, secret: string): Response {
    if (this.secrets.get(clientId) !== secret) {
      return Response.json({ error: "invalid_client" }, { status: 401 });
    }
    const token = `tok-${clientId}-${++this.#issued}`;
    this.expiries.set(token, this.clock.now() + LIFETIME_SECONDS * SECOND);
    return Response.json({
      access_token: token,
      token_type: "bearer",
      expires_in: LIFETIME_SECONDS,
    });
  }
}

/** A Map-backed token store that can say how many grants it holds. */
class CountingTokenStore implements SharedState {
  readonly #grants = new Map<string, CachedGrant>();
  #active: string | undefined;
  get size(): number {
    return this.#grants.size;
  }
  getGrant(label: string): CachedGrant | undefined {
    return this.#grants.get(label);
  }
  setGrant(label: string, grant: CachedGrant): void {
    this.#grants.set(label, grant);
  }
  deleteGrant(label: string, grant: CachedGrant): void {
    if (this.#grants.get(label) === grant) this.#grants.delete(label);
  }
  getActive(): string | undefined {
    return this.#active;
  }
  setActive(label: string): void {
    this.#active = label;
  }
}

/**
 * Counts `abort` listeners added to and removed from any `AbortSignal` while
 * installed; the net count is what is still attached.
 */
class AbortListenerCounter implements Disposable {
  net = 0;
  added = 0;
  readonly #saved = (["addEventListener", "removeEventListener"] as const).map(
    (name) =>
      [
        name,
        Object.getOwnPropertyDescriptor(AbortSignal.prototype, name),
      ] as const,
  );

  constructor() {
    const add = AbortSignal.prototype.addEventListener;
    const remove = AbortSignal.prototype.removeEventListener;
    // deno-lint-ignore no-this-alias
    const counter = this;
    AbortSignal.prototype.addEventListener = function (
      this: AbortSignal,
      ...args: Parameters<typeof add>
    ) {
      if (args[0] === "abort") {
        counter.net++;
        counter.added++;
      }
      return add.apply(this, args);
    };
    AbortSignal.prototype.removeEventListener = function (
      this: AbortSignal,
      ...args: Parameters<typeof remove>
    ) {
      if (args[0] === "abort") counter.net--;
      return remove.apply(this, args);
    };
  }

  [Symbol.dispose](): void {
    for (const [name, descriptor] of this.#saved) {
      if (descriptor === undefined) delete AbortSignal.prototype[name];
      else Object.defineProperty(AbortSignal.prototype, name, descriptor);
    }
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

Deno.test("soak: 30 simulated days of traffic, refreshes and faults", async () => {
  const clock = new FakeClock();
  const start = clock.now();
  const server = new SoakTokenServer(clock);
  const store = new CountingTokenStore();
  const events: AuthEvent[] = [];
  const secretOf = { blue: "blue-secret-0", green: "green-secret-0" };
  server.secrets.set("blue-id", secretOf.blue);
  server.secrets.set("green-id", secretOf.green);
  const credentials = () => [
    { label: "blue", clientId: "blue-id", clientSecret: secretOf.blue },
    { label: "green", clientId: "green-id", clientSecret: secretOf.green },
  ];
  const switches = [{ label: "blue", at: start }];
  using listeners = new AbortListenerCounter();
  await using auth = createDualSecretAuth({
    credentials: credentials(),
    tokenUrl: TOKEN_URL,
    fetch: server.fetch,
    clock,
    random: seededRandom(20260101),
    refreshMarginMs: REFRESH_MARGIN_MS,
    shared: store,
    onEvent: (event) => {
      events.push(event);
      if (event.type === "failover" || event.type === "rotated") {
        server.disturbance++;
        switches.push({ label: event.to, at: clock.now() });
      }
    },
  });

  /** Daily schedule, as offsets into the day. */
  const daily: { at: number; run: () => Promise<void> | void }[] = [
    {
      at: 3 * HOUR,
      run: () => {
        for (let i = 0; i < BURST_503; i++) {
          server.faults.push(new Response("unavailable", { status: 503 }));
        }
      },
    },
    {
      at: 9 * HOUR,
      run: () =>
        void server.faults.push(
          new Response("", { status: 429, headers: { "retry-after": "2" } }),
        ),
    },
    {
      // The active secret is regenerated behind the library's back.
      at: 15 * HOUR,
      run: () => {
        const active = auth.status().active as "blue" | "green";
        server.secrets.set(`${active}-id`, `${active}-secret-${clock.now()}`);
      },
    },
    {
      // Long after the next refresh noticed it: the operator ships the fix.
      at: 15 * HOUR + 10 * MINUTE,
      run: () => {
        secretOf.blue = server.secrets.get("blue-id")!;
        secretOf.green = server.secrets.get("green-id")!;
        server.disturbance++;
        auth.setCredentials(credentials());
      },
    },
    {
      at: 20 * HOUR,
      run: async () => {
        const active = auth.status().active;
        await auth.rotate({ to: active === "blue" ? "green" : "blue" });
      },
    },
  ];

  const failures: string[] = [];
  const idleSamples: { timers: number; listeners: number; cached: number }[] =
    [];
  let calls = 0;
  for (let now = start + TICK_MS; now <= start + DAYS * DAY; now += TICK_MS) {
    // With no timer pending, set() is advance() without a real macrotask.
    if (clock.pendingTimers === 0) clock.set(now);
    else await clock.advance(now - clock.now());
    const offset = (now - start) % DAY;
    if (offset === 0) {
      idleSamples.push({
        timers: clock.pendingTimers,
        listeners: listeners.net,
        cached: store.size,
      });
    }
    for (const action of daily) if (action.at === offset) await action.run();
    try {
      const token = await auth.getAccessToken();
      calls++;
      const expiresAt = server.expiries.get(token);
      if (expiresAt === undefined || expiresAt <= clock.now()) {
        failures.push(`expired or unknown token at ${now - start} ms`);
      }
    } catch (error) {
      failures.push(`call at ${now - start} ms threw ${error}`);
    }
    await flushMicrotasks();
  }
  while (clock.pendingTimers > 0) await clock.advance(SECOND);

  assert.deepEqual(failures, []);
  assert.equal(calls, DAYS * DAY / TICK_MS);

  // Nothing accumulates: sampled at every midnight, far from any fault.
  assert.equal(idleSamples.length, DAYS);
  assert.ok(listeners.added > 0, "the listener count saw no listener at all");
  for (const sample of idleSamples) {
    assert.deepEqual(sample, {
      timers: 0,
      listeners: 0,
      cached: sample.cached,
    });
    assert.ok(sample.cached <= credentials().length, `${sample.cached} cached`);
  }

  // Every fault was consumed once, each rejection cost exactly one request.
  const count = (predicate: (served: Served) => boolean) =>
    server.requests.filter(predicate).length;
  assert.equal(server.faults.length, 0);
  assert.equal(count((r) => r.status === 503), DAYS * BURST_503);
  assert.equal(count((r) => r.status === 429), DAYS);
  assert.equal(count((r) => r.status === 401), DAYS);
  const eventCount = (type: AuthEvent["type"]) =>
    events.filter((event) => event.type === type).length;
  assert.equal(eventCount("failover"), DAYS);
  assert.equal(eventCount("rotated"), DAYS);

  // The refresh schedule: a refresh is due `lifetime - margin` after a token
  // was requested, where margin = min(refreshMarginMs, lifetime / 2) minus up
  // to JITTER of itself; traffic notices it at the next tick.
  const lifetimeMs = LIFETIME_SECONDS * SECOND;
  const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
  const shortestGap = lifetimeMs - margin;
  const longestGap = lifetimeMs - (1 - JITTER) * margin + TICK_MS;
  let cleanGaps = 0;
  for (const clientId of ["blue-id", "green-id"]) {
    const successes = server.requests.filter((r) =>
      r.clientId === clientId && r.status === 200
    );
    for (let i = 1; i < successes.length; i++) {
      const [before, after] = [successes[i - 1], successes[i]];
      if (before.disturbance !== after.disturbance) continue;
      cleanGaps++;
      const gap = after.at - before.at;
      assert.ok(
        gap >= shortestGap && gap < longestGap,
        `${clientId} refreshed after ${gap} ms, outside [${shortestGap}, ${longestGap})`,
      );
    }
  }
  const successes = count((r) => r.status === 200);
  assert.ok(
    cleanGaps >= successes * 0.9,
    `only ${cleanGaps} of ${successes} refreshes were undisturbed`,
  );

  // Totals per credential, from the time each one was active. A stretch of
  // length S holds between ceil(S / longestGap) and ceil(S / shortestGap)
  // requests, and S / meanGap on average with the jitter uniform; allow ±1
  // request per switch and per fault burst.
  const meanGap = lifetimeMs - (1 - JITTER / 2) * margin + TICK_MS / 2;
  const stretches = activeStretches(switches, start + DAYS * DAY);
  for (const label of ["blue", "green"]) {
    const own = stretches.filter((s) => s.label === label);
    const slack = own.length + DAYS;
    const low = own.reduce((n, s) => n + Math.ceil(s.ms / longestGap), 0);
    const high = own.reduce((n, s) => n + Math.ceil(s.ms / shortestGap), 0);
    const expected = own.reduce((n, s) => n + s.ms / meanGap, 0);
    const actual = count((r) =>
      r.clientId === `${label}-id` && r.status === 200
    );
    assert.ok(
      actual >= low - slack && actual <= high + slack,
      `${label}: ${actual} token requests, outside ${low}..${high} ± ${slack}`,
    );
    assert.ok(
      Math.abs(actual - expected) <= slack,
      `${label}: ${actual} token requests, expected ${
        Math.round(expected)
      } ± ${slack}`,
    );
  }
});

/** How long each label was active, from the switches seen. */
function activeStretches(
  switches: readonly { label: string; at: number }[],
  end: number,
): { label: string; ms: number }[] {
  return switches.map((s, i) => ({
    label: s.label,
    ms: (switches[i + 1]?.at ?? end) - s.at,
  }));
}
