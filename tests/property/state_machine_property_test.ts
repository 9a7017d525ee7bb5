/**
 * Model-based test of a `DualSecretAuth` instance: random sequences of
 * acquisitions, secret changes behind the library's back, transient faults,
 * rotations, credential reloads, invalidations and clock moves, run against a
 * fake token endpoint on a `FakeClock` (no network). After every step the
 * invariants below must hold.
 *
 * - A token handed to a caller is never expired at the fake clock's now.
 * - A caller that starts while a credential stands rejected (the library saw
 *   `invalid_client`) never gets that credential's token unless it was
 *   replaced or re-verified meanwhile; after an acquisition the active
 *   credential is not a rejected one while a usable one exists.
 * - At most one token request per credential (client id and secret) is in
 *   flight at any time.
 * - Every error thrown is a `DualSecretAuthError`.
 * - Once the instance is idle, no timer is left pending and no request in
 *   flight; no secret or token appears in an error, event, status or inspect
 *   output.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AuthEvent,
  createDualSecretAuth,
  type CredentialInput,
  type DualSecretAuth,
  DualSecretAuthError,
  RotationFailedError,
} from "../../mod.ts";
import { FakeClock } from "../../testing.ts";
import { CaseCounter, propertyParameters } from "./fc_parameters.ts";
import { seededRandom } from "../support/seeded_random.ts";
import { delay } from "../../src/retry.ts";

const TOKEN_URL = "https://login.example.test/oauth/token";
const LABELS = ["blue", "green", "grey"] as const;
const REQUEST_TIMEOUT_MS = 2_000;
const RETRY = {
  maxAttempts: 3,
  baseDelayMs: 100,
  maxDelayMs: 1_000,
  maxElapsedMs: 10_000,
  maxRetryAfterMs: 5_000,
};

type Fault = "503" | "429" | "network" | "hang";

/** A token the fake endpoint issued. */
interface Issued {
  readonly clientId: string;
  readonly expiresAt: number;
}

/** Never settles until the signal aborts, like a server that hangs. */
function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) return; // The library always passes one.
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), {
      once: true,
    });
  });
}

function json(status: number, body: unknown, headers = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * A token endpoint that knows one secret per client id, issues unique
 * tokens, plays queued faults, and records requests in flight per credential.
 */
class FakeTokenServer {
  readonly secrets = new Map<string, string>();
  readonly issued = new Map<string, Issued>();
  readonly faults: Fault[] = [];
  readonly violations: string[] = [];
  latencyMs = 0;
  #inFlight = new Map<string, number>();
  #issuedCount = 0;

  constructor(
    readonly clock: FakeClock,
    readonly lifetimeSeconds: number,
  ) {}

  /** Requests answered by nobody yet. */
  get inFlight(): number {
    let total = 0;
    for (const count of this.#inFlight.values()) total += count;
    return total;
  }

  readonly fetch: typeof fetch = async (input, init) => {
    assert.equal(String(input), TOKEN_URL);
    const authorization = new Headers(init?.headers).get("authorization") ??
      "";
    const [clientId, secret] = atob(authorization.replace(/^Basic /, ""))
      .split(":").map((part) => decodeURIComponent(part.replace(/\+/g, " ")));
    const credential = `${clientId}:${secret}`;
    const running = (this.#inFlight.get(credential) ?? 0) + 1;
    if (running > 1) {
      this.violations.push(
        `${running} token requests in flight for ${clientId}`,
      );
    }
    this.#inFlight.set(credential, running);
    try {
      const fault = this.faults.shift();
      if (fault === "hang") await untilAborted(init?.signal ?? undefined);
      if (this.latencyMs > 0) {
        await delay(this.latencyMs, this.clock, init?.signal ?? undefined);
      }
      if (fault === "network") throw new TypeError("connection refused");
      if (fault === "503") return new Response("down", { status: 503 });
      if (fault === "429") {
        return json(429, { error: "slow_down" }, { "retry-after": "1" });
      }
      if (this.secrets.get(clientId) !== secret) {
        return json(401, {
          error: "invalid_client",
          error_description: "authentication failed",
        }, { "www-authenticate": 'Basic realm="oauth"' });
      }
      const token = `tok.${++this.#issuedCount}.${crypto.randomUUID()}`;
      this.issued.set(token, {
        clientId,
        expiresAt: this.clock.now() + this.lifetimeSeconds * 1000,
      });
      return json(200, {
        access_token: token,
        token_type: "Bearer",
        expires_in: this.lifetimeSeconds,
      });
    } finally {
      this.#inFlight.set(credential, this.#inFlight.get(credential)! - 1);
    }
  };
}

/** What can happen while an acquisition is in flight. */
type Interleaved =
  | { kind: "rotate"; to: number }
  | { kind: "setCredentials"; index: number; secret: "fix" | "wrong" | "same" }
  | { kind: "jump"; ms: number }
  | { kind: "changeSecret"; index: number | "active" }
  | { kind: "invalidate" };

/** One step of a scenario. */
type Op =
  | Interleaved
  | {
    kind: "acquire";
    callers: number;
    latencyMs: number;
    during?: Interleaved;
  }
  | { kind: "fault"; fault: Fault; count: number }
  | { kind: "advance"; ms: number };

const credentialIndex = fc.nat({ max: LABELS.length - 1 });
const interleaved: fc.Arbitrary<Interleaved> = fc.oneof(
  fc.record({ kind: fc.constant("rotate"), to: credentialIndex }),
  fc.record({
    kind: fc.constant("setCredentials"),
    index: credentialIndex,
    secret: fc.constantFrom("fix", "fix", "wrong", "same"),
  }),
  fc.record({
    kind: fc.constant("jump"),
    ms: fc.integer({ min: -3_600_000, max: 7_200_000 }),
  }),
  fc.record({
    kind: fc.constant("changeSecret"),
    index: fc.oneof(fc.constant("active" as const), credentialIndex),
  }),
  fc.record({ kind: fc.constant("invalidate") }),
) as fc.Arbitrary<Interleaved>;

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("acquire"),
      callers: fc.integer({ min: 1, max: 5 }),
      latencyMs: fc.oneof(
        fc.constant(0),
        fc.constant(0),
        fc.integer({ min: 1, max: 1_500 }),
      ),
      during: fc.option(interleaved, { nil: undefined, freq: 3 }),
    }, { requiredKeys: ["kind", "callers", "latencyMs"] }),
  },
  { weight: 3, arbitrary: interleaved },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("fault"),
      fault: fc.constantFrom<Fault>("503", "429", "network", "hang"),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance"),
      ms: fc.oneof(
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 0, max: 7_200_000 }),
      ),
    }),
  },
) as fc.Arbitrary<Op>;

const scenario = fc.record({
  credentials: fc.integer({ min: 2, max: LABELS.length }),
  lifetimeSeconds: fc.constantFrom(30, 300, 3_600),
  refreshMarginMs: fc.constantFrom(0, 10_000, 300_000),
  randomSeed: fc.integer(),
  ops: fc.array(op, { minLength: 1, maxLength: 25 }),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never;

/** One run: the instance, the fake server, and the model of what it knows. */
class Run {
  readonly clock = new FakeClock();
  readonly server: FakeTokenServer;
  readonly auth: DualSecretAuth;
  readonly labels: readonly string[];
  /** The secret the library is configured with, per label. */
  readonly configured = new Map<string, string>();
  /** Labels the library saw rejected and that were not replaced or re-verified since. */
  readonly rejected = new Set<string>();
  /** Bumped whenever a label gets a token or a new secret. */
  readonly epoch = new Map<string, number>();
  readonly events: AuthEvent[] = [];
  readonly errors: unknown[] = [];
  readonly secrets = new Set<string>();
  readonly violations: string[] = [];
  readonly #pending = new Set<Promise<unknown>>();
  #secretCount = 0;

  constructor(readonly scenario: Scenario) {
    this.server = new FakeTokenServer(this.clock, scenario.lifetimeSeconds);
    this.labels = LABELS.slice(0, scenario.credentials);
    for (const label of this.labels) {
      const secret = this.newSecret(label);
      this.server.secrets.set(clientIdOf(label), secret);
      this.configured.set(label, secret);
      this.epoch.set(label, 0);
    }
    this.auth = createDualSecretAuth({
      credentials: this.credentialList(),
      tokenUrl: TOKEN_URL,
      fetch: this.server.fetch,
      clock: this.clock,
      random: seededRandom(scenario.randomSeed),
      refreshMarginMs: scenario.refreshMarginMs,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      retry: RETRY,
      onEvent: (event) => this.#observe(event),
    });
  }

  newSecret(label: string): string {
    const secret = `sec-${label}-${++this.#secretCount}-${
      crypto.randomUUID().slice(0, 8)
    }`;
    this.secrets.add(secret);
    return secret;
  }

  credentialList(): CredentialInput[] {
    return this.labels.map((label) => ({
      label,
      clientId: clientIdOf(label),
      clientSecret: this.configured.get(label)!,
    }));
  }

  #observe(event: AuthEvent): void {
    this.events.push(event);
    if (event.type === "token.failed") {
      if (event.error.code === "CREDENTIAL_REJECTED") {
        this.rejected.add(event.label);
      }
    } else if (event.type === "token.acquired") {
      this.#clear(event.label);
    }
  }

  #clear(label: string): void {
    this.rejected.delete(label);
    this.epoch.set(label, this.epoch.get(label)! + 1);
  }

  /** Runs `work` as a caller and checks what it returns or throws. */
  track<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    const rejectedAtStart = new Map(
      [...this.rejected].map((label) => [label, this.epoch.get(label)!]),
    );
    const checked = work().then((value) => {
      if (typeof value === "string") this.#checkToken(value, rejectedAtStart);
      return value;
    }, (error: unknown) => {
      this.errors.push(error);
      if (!(error instanceof DualSecretAuthError)) {
        this.violations.push(`${what} threw a non-library error: ${error}`);
      }
      return undefined;
    });
    this.#pending.add(checked);
    checked.finally(() => this.#pending.delete(checked));
    return checked;
  }

  #checkToken(token: string, rejectedAtStart: Map<string, number>): void {
    const issued = this.server.issued.get(token);
    if (issued === undefined) {
      this.violations.push("a caller got a token the server never issued");
      return;
    }
    if (!(issued.expiresAt > this.clock.now())) {
      this.violations.push(
        `a caller got a token that expired ${
          this.clock.now() - issued.expiresAt
        } ms ago`,
      );
    }
    const label = labelOf(issued.clientId);
    if (
      rejectedAtStart.has(label) && this.rejected.has(label) &&
      rejectedAtStart.get(label) === this.epoch.get(label)
    ) {
      this.violations.push(
        `a caller got a token of "${label}", rejected before it started`,
      );
    }
  }

  /** Moves fake time until no caller, request or timer is left. */
  async drain(): Promise<void> {
    for (let idle = 0;;) {
      await flushMicrotasks();
      if (this.clock.pendingTimers > 0) {
        idle = 0;
        // advance(0) first fires timers a forward jump left overdue, which
        // runAll() cannot (see the ignored FakeClock test below).
        await this.clock.advance(0);
        await this.clock.runAll();
        continue;
      }
      if (this.#pending.size === 0 && this.server.inFlight === 0) return;
      if (++idle > 20) {
        throw new Error(
          `stuck: ${this.#pending.size} callers and ${this.server.inFlight} requests pending without a timer`,
        );
      }
    }
  }

  /** Applies a step that may overlap requests in flight (not awaited). */
  interleave(step: Interleaved): void {
    switch (step.kind) {
      case "rotate": {
        const to = this.labels[step.to % this.labels.length];
        void this.track("rotate", () => this.auth.rotate({ to }));
        return;
      }
      case "setCredentials": {
        const label = this.labels[step.index % this.labels.length];
        if (step.secret !== "same") {
          const secret = step.secret === "fix"
            ? this.server.secrets.get(clientIdOf(label))!
            : this.newSecret(label);
          if (secret !== this.configured.get(label)) {
            this.configured.set(label, secret);
            this.#clear(label);
          }
        }
        this.auth.setCredentials(this.credentialList());
        return;
      }
      case "jump":
        this.clock.set(this.clock.now() + step.ms);
        return;
      case "changeSecret": {
        const label = step.index === "active"
          ? this.auth.status().active
          : this.labels[step.index % this.labels.length];
        this.server.secrets.set(clientIdOf(label), this.newSecret(label));
        return;
      }
      case "invalidate":
        this.auth.invalidate();
        return;
    }
  }

  async apply(step: Op): Promise<void> {
    switch (step.kind) {
      case "acquire": {
        this.server.latencyMs = step.latencyMs;
        for (let i = 0; i < step.callers; i++) {
          void this.track("getAccessToken", () => this.auth.getAccessToken());
        }
        if (step.during !== undefined) {
          await flushMicrotasks();
          this.interleave(step.during);
        }
        await this.drain();
        this.server.latencyMs = 0;
        // A rotation or reload that ends after the callers may leave a
        // rejected credential active until the next call fails over.
        const kind = step.during?.kind;
        if (kind !== "setCredentials" && kind !== "rotate") this.#checkActive();
        return;
      }
      case "rotate": {
        const before = this.auth.status().active;
        const to = this.labels[step.to % this.labels.length];
        const result = this.track("rotate", () => this.auth.rotate({ to }));
        await this.drain();
        const outcome = await result;
        const after = this.auth.status().active;
        if (outcome === undefined) {
          const error = this.errors.at(-1);
          if (!(error instanceof RotationFailedError)) {
            this.violations.push(`rotate threw ${error}`);
          }
          if (after !== before) {
            this.violations.push(
              `a failed rotation moved ${before} to ${after}`,
            );
          }
        } else if (after !== to || outcome.to !== to) {
          this.violations.push(`rotation to ${to} left ${after} active`);
        }
        return;
      }
      case "fault":
        for (let i = 0; i < step.count; i++) {
          this.server.faults.push(step.fault);
        }
        return;
      case "advance":
        // With nothing pending, set() is the same move as advance() without
        // a real macrotask per call; with timers pending, fire them on the way.
        if (this.clock.pendingTimers === 0) {
          this.clock.set(this.clock.now() + step.ms);
        } else await this.clock.advance(step.ms);
        await this.drain();
        return;
      default:
        this.interleave(step);
        await this.drain();
    }
  }

  #checkActive(): void {
    const { active } = this.auth.status();
    const usable = this.labels.some((label) => !this.rejected.has(label));
    if (this.rejected.has(active) && usable) {
      this.violations.push(
        `"${active}" stays active after its rejection while another credential is usable`,
      );
    }
  }

  /** Invariants that hold whenever the instance is idle. */
  checkIdle(): void {
    this.violations.push(...this.server.violations.splice(0));
    if (this.clock.pendingTimers !== 0) {
      this.violations.push(`${this.clock.pendingTimers} timers left pending`);
    }
    const status = this.auth.status();
    if (!this.labels.includes(status.active)) {
      this.violations.push(`unknown active label ${status.active}`);
    }
    const visible = [
      JSON.stringify(status),
      Deno.inspect(this.auth),
      JSON.stringify(this.events),
      ...this.errors.map((error) => Deno.inspect(error)),
    ].join("\n");
    for (const secret of this.secrets) {
      if (visible.includes(secret)) this.violations.push("a secret leaked");
    }
    for (const token of this.server.issued.keys()) {
      if (visible.includes(token)) this.violations.push("a token leaked");
    }
  }
}

function clientIdOf(label: string): string {
  return `${label}-id`;
}

function labelOf(clientId: string): string {
  return clientId.replace(/-id$/, "");
}

/** Lets chains of already-settled promises run to their end. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

Deno.test("DualSecretAuth model-based property", async () => {
  const cases = new CaseCounter();
  let steps = 0;
  const seen = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(scenario, async (generated) => {
      cases.tick();
      const run = new Run(generated);
      try {
        for (const [index, step] of generated.ops.entries()) {
          await run.apply(step);
          steps++;
          run.checkIdle();
          assert.deepEqual(
            run.violations,
            [],
            `after step ${index} ${JSON.stringify(step)}`,
          );
        }
      } finally {
        await run.auth.close();
        await run.drain();
        for (const event of run.events) {
          const key = event.type === "token.failed"
            ? `token.failed:${event.error.code}`
            : event.type;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
      assert.equal(run.clock.pendingTimers, 0);
    }),
    propertyParameters(150),
  );
  assert.ok(cases.count >= 150);
  assert.ok(steps >= cases.count, "scenarios ran no steps");
  // The scenarios must reach the paths the invariants are about.
  for (
    const key of [
      "token.acquired",
      "failover",
      "rotated",
      "retry",
      "token.failed:CREDENTIAL_REJECTED",
      "token.failed:TOKEN_ENDPOINT_UNAVAILABLE",
    ]
  ) {
    assert.ok((seen.get(key) ?? 0) > 0, `no ${key} event in any scenario`);
  }
});

Deno.test({
  name: "FakeClock.runAll fires timers that a forward set() left overdue",
  fn: async () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.setTimeout(() => fired = true, 1_000);
    clock.set(5_000);
    await clock.runAll();
    assert.ok(fired);
    assert.equal(clock.pendingTimers, 0);
  },
});
