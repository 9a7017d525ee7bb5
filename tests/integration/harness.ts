/**
 * Shared set-up for the integration tests: a Genesys emulator and an auth
 * instance on one fake clock, a recording `fetch` around the real one, a
 * clock driver that moves fake time only while no HTTP request is in flight,
 * and small assertion helpers.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type AuthEvent,
  createDualSecretAuth,
  type CredentialInput,
  type DualSecretAuth,
  DualSecretAuthError,
  type DualSecretAuthOptions,
} from "../../mod.ts";
import {
  type EmulatorClient,
  FakeClock,
  type GenesysEmulator,
  type GenesysEmulatorOptions,
  startGenesysEmulator,
} from "../../testing.ts";

/** The blue OAuth client, active by default. */
export const BLUE = {
  label: "blue",
  clientId: "blue-id",
  secret: "blue-secret",
} as const;
/** The green OAuth client, the standby by default. */
export const GREEN = {
  label: "green",
  clientId: "green-id",
  secret: "green-secret",
} as const;

/**
 * The retry policy of the scenarios: few attempts and short (fake) waits, so
 * a storm ends after a bounded number of requests.
 */
export const TEST_RETRY = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 100,
  maxDelayMs: 400,
  maxElapsedMs: 60_000,
  maxRetryAfterMs: 5_000,
});

/**
 * A request timeout no test reaches by accident: fake time only moves while
 * requests are in flight when a test asks for it.
 */
export const UNREACHED_TIMEOUT_MS = 3_600_000;

/** The jitter source of the scenarios: always the middle of the range. */
export const MID_RANDOM = (): number => 0.5;

/** Decides, per request, whether and how long to hold it before sending. */
export type RequestHook = (
  request: { url: string; clientId?: string; isToken: boolean },
) => Promise<void> | undefined;

/** Options of {@linkcode startScenario}. */
export interface ScenarioOptions {
  /** The emulator's clients; default blue and green with their secrets. */
  readonly clients?: readonly EmulatorClient[];
  /** More emulator options (the clock is always the scenario's). */
  readonly emulator?: Omit<GenesysEmulatorOptions, "clock" | "clients">;
  /** Overrides of the auth options (credentials default to blue and green). */
  readonly auth?: Partial<DualSecretAuthOptions>;
  /** The token URL to configure; default the emulator's. */
  readonly tokenUrl?: string;
  /**
   * A separate clock for the emulator, for a client whose wall clock jumps
   * while the server's does not; default the scenario's clock.
   */
  readonly serverClock?: FakeClock;
}

/** Options of {@linkcode Scenario.drive}. */
export interface DriveOptions {
  /** Fake time per step; default 250 ms. */
  readonly stepMs?: number;
  /**
   * Whether fake time may move while an HTTP request is in flight (for
   * request timeouts); default never.
   */
  readonly advanceWhileFetching?: () => boolean;
}

/** An emulator and an auth instance sharing a fake clock, with recorders. */
export interface Scenario extends AsyncDisposable {
  /** The clock of both. */
  readonly clock: FakeClock;
  /** The emulator. */
  readonly emulator: GenesysEmulator;
  /** The auth instance under test. */
  readonly auth: DualSecretAuth;
  /** Every event, in order. */
  readonly events: AuthEvent[];
  /** Every access token the token endpoint issued, with its expiry (on the emulator's clock). */
  readonly issuedTokens: Map<string, number>;
  /** Token requests the recording fetch sent (reached a server or not). */
  tokenAttempts(): number;
  /** HTTP requests sent whose response headers have not arrived yet. */
  inFlight(): number;
  /** Installs (or removes) a hook that may hold requests before they are sent. */
  setHook(hook: RequestHook | undefined): void;
  /** Events of one type. */
  eventsOf<T extends AuthEvent["type"]>(
    type: T,
  ): Extract<AuthEvent, { type: T }>[];
  /** Settles `work`, moving fake time in steps while no request is in flight. */
  drive<T>(work: Promise<T>, options?: DriveOptions): Promise<T>;
  /** Calls `/api/v2/tokens/me` through `auth.fetch`; answers the status and client id. */
  whoAmI(): Promise<{ status: number; clientId?: string }>;
}

/** The credential input of an emulator client. */
export function credentialOf(
  client: { label: string; clientId: string; secret: string },
): CredentialInput {
  return {
    label: client.label,
    clientId: client.clientId,
    clientSecret: client.secret,
  };
}

/**
 * Starts an emulator and an auth instance on one fake clock. Dispose of the
 * result (`await using`) to close both.
 */
export function startScenario(options: ScenarioOptions = {}): Scenario {
  const clock = new FakeClock();
  const serverClock = options.serverClock ?? clock;
  const emulator = startGenesysEmulator({
    ...options.emulator,
    clock: serverClock,
    clients: options.clients ?? [
      { clientId: BLUE.clientId, secret: BLUE.secret },
      { clientId: GREEN.clientId, secret: GREEN.secret },
    ],
  });
  const events: AuthEvent[] = [];
  const issuedTokens = new Map<string, number>();
  const tokenUrl = options.tokenUrl ?? emulator.tokenUrl;
  let attempts = 0;
  let inFlight = 0;
  let hook: RequestHook | undefined;

  const recordingFetch: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const isToken = url === tokenUrl;
    const headers = new Headers(
      init?.headers ?? (input instanceof Request ? input.headers : undefined),
    );
    const signal = init?.signal ??
      (input instanceof Request ? input.signal : undefined);
    if (isToken) attempts++;
    inFlight++;
    try {
      const held = hook?.({
        url,
        isToken,
        clientId: isToken ? basicClientId(headers) : undefined,
      });
      if (held) await untilAborted(held, signal ?? undefined);
      const response = await fetch(input, init);
      if (isToken && response.ok) {
        await recordIssuedToken(response.clone(), serverClock, issuedTokens);
      }
      return response;
    } finally {
      inFlight--;
    }
  };

  let auth: DualSecretAuth;
  try {
    auth = createDualSecretAuth({
      credentials: [credentialOf(BLUE), credentialOf(GREEN)],
      tokenUrl,
      clock,
      fetch: recordingFetch,
      random: MID_RANDOM,
      requestTimeoutMs: UNREACHED_TIMEOUT_MS,
      retry: TEST_RETRY,
      onEvent: (event) => events.push(event),
      ...options.auth,
    });
  } catch (error) {
    // The caller never gets the emulator to close, so close it here.
    void emulator.close();
    throw error;
  }

  async function drive<T>(
    work: Promise<T>,
    driveOptions: DriveOptions = {},
  ): Promise<T> {
    let settled = false;
    work.then(() => settled = true, () => settled = true);
    const step = driveOptions.stepMs ?? 250;
    while (!settled) {
      if (inFlight > 0 && !driveOptions.advanceWhileFetching?.()) {
        await realTick();
      } else {
        await clock.advance(step);
      }
    }
    return await work;
  }

  return {
    clock,
    emulator,
    auth,
    events,
    issuedTokens,
    tokenAttempts: () => attempts,
    inFlight: () => inFlight,
    setHook: (next) => hook = next,
    eventsOf: <T extends AuthEvent["type"]>(type: T) =>
      events.filter((event): event is Extract<AuthEvent, { type: T }> =>
        event.type === type
      ),
    drive,
    async whoAmI() {
      const response = await drive(
        auth.fetch(`${emulator.apiUrl}/api/v2/tokens/me`),
      );
      if (response.status !== 200) {
        await response.body?.cancel();
        return { status: response.status };
      }
      const body = await response.json();
      return { status: response.status, clientId: body.OAuthClient.id };
    },
    async [Symbol.asyncDispose]() {
      await auth.close();
      await emulator.close();
    },
  };
}

/** One turn of the real event loop, so real I/O can progress. */
export function realTick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * Waits (in real time) until `condition` holds.
 *
 * @throws When it still does not hold after ten seconds.
 */
export async function waitFor(
  condition: () => boolean,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await realTick();
  }
}

/** Counts unhandled promise rejections until disposed. */
export interface RejectionCounter extends Disposable {
  /** The reasons of the rejections seen so far. */
  readonly reasons: unknown[];
  /** Lets pending rejections surface, then answers how many were seen. */
  settle(): Promise<number>;
}

/** Starts counting unhandled promise rejections (and keeps them from failing the run). */
export function countUnhandledRejections(): RejectionCounter {
  const reasons: unknown[] = [];
  const listener = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    reasons.push(event.reason);
  };
  globalThis.addEventListener("unhandledrejection", listener);
  return {
    reasons,
    async settle() {
      await realTick();
      await realTick();
      return reasons.length;
    },
    [Symbol.dispose]() {
      globalThis.removeEventListener("unhandledrejection", listener);
    },
  };
}

/**
 * Asserts that `error` is one of the library's typed errors with `code`.
 *
 * @returns The error, typed.
 */
export function assertTypedError(
  error: unknown,
  code: string,
): DualSecretAuthError {
  assert.ok(
    error instanceof DualSecretAuthError,
    `expected a DualSecretAuthError (${code}), got ${Deno.inspect(error)}`,
  );
  assert.equal(error.code, code, error.message);
  return error;
}

/** Awaits `work` and returns what it rejected with; fails if it resolved. */
export async function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

function basicClientId(headers: Headers): string | undefined {
  const match = headers.get("authorization")?.match(/^Basic\s+(\S+)$/i);
  if (!match) return undefined;
  const pair = atob(match[1]);
  return decodeURIComponent(pair.slice(0, pair.indexOf(":")));
}

async function recordIssuedToken(
  copy: Response,
  clock: FakeClock,
  issued: Map<string, number>,
): Promise<void> {
  try {
    const body = JSON.parse(await copy.text());
    if (typeof body?.access_token === "string") {
      const lifetime = typeof body.expires_in === "number"
        ? body.expires_in * 1000
        : 0;
      issued.set(body.access_token, clock.now() + lifetime);
    }
  } catch {
    // Not a token response (a fault's body, a reset): nothing was issued.
  }
}

/** Resolves with `work`, or rejects with the signal's reason if it aborts first. */
function untilAborted(
  work: Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (signal === undefined) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}
