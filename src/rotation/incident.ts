/**
 * Incident response for a compromised credential: take it out of service
 * first, then regenerate it at once, optionally killing every token it has
 * issued. If the compromised label serves traffic, the other one is rotated
 * first and its new secret stored where the instances read it; the
 * compromised one is touched only once the target proves every instance has
 * loaded that secret and serves the other label (`awaitLoaded`: the fleet's
 * heartbeats, or a bounded wait for services that follow an env file), so no
 * instance is ever left without a working credential. With
 * `killTokens`, the compromised OAuth client is set `disabled` (Genesys:
 * tokens created by a disabled client are invalid and no new ones can be
 * made), regenerated while disabled, and set `active` again with its new
 * secret, so the old tokens stay dead and nobody holding the old secret can
 * mint new ones in between.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import type { CredentialInput } from "../config.ts";
import { AbortedError, DualSecretAuthError } from "../errors.ts";
import type {
  GenesysAdminClient,
  GenesysOAuthClientAdmin,
} from "../genesys/admin_client.ts";
import type { Secret } from "../secret.ts";
import { delay } from "../retry.ts";
import { describeError } from "./describe_error.ts";
import { proveCredential } from "./prove_credential.ts";
import type { SecretSink } from "./sinks.ts";
import { runStagedRotation } from "./staged_rotation.ts";

/** The stable error codes of {@linkcode IncidentError}, one per step. */
export const IncidentErrorCode: {
  readonly PLAN_FAILED: "INCIDENT_PLAN_FAILED";
  readonly ROTATE_OTHER_FAILED: "INCIDENT_ROTATE_OTHER_FAILED";
  readonly PROPAGATE_FAILED: "INCIDENT_PROPAGATE_FAILED";
  readonly PROMOTE_FAILED: "INCIDENT_PROMOTE_FAILED";
  readonly DISABLE_FAILED: "INCIDENT_DISABLE_FAILED";
  readonly REGENERATE_FAILED: "INCIDENT_REGENERATE_FAILED";
  readonly STORE_FAILED: "INCIDENT_STORE_FAILED";
  readonly ENABLE_FAILED: "INCIDENT_ENABLE_FAILED";
  readonly VERIFY_FAILED: "INCIDENT_VERIFY_FAILED";
} = Object.freeze(
  {
    PLAN_FAILED: "INCIDENT_PLAN_FAILED",
    ROTATE_OTHER_FAILED: "INCIDENT_ROTATE_OTHER_FAILED",
    PROPAGATE_FAILED: "INCIDENT_PROPAGATE_FAILED",
    PROMOTE_FAILED: "INCIDENT_PROMOTE_FAILED",
    DISABLE_FAILED: "INCIDENT_DISABLE_FAILED",
    REGENERATE_FAILED: "INCIDENT_REGENERATE_FAILED",
    STORE_FAILED: "INCIDENT_STORE_FAILED",
    ENABLE_FAILED: "INCIDENT_ENABLE_FAILED",
    VERIFY_FAILED: "INCIDENT_VERIFY_FAILED",
  } as const,
);

/** One of the values of {@linkcode IncidentErrorCode}. */
export type IncidentErrorCode =
  typeof IncidentErrorCode[keyof typeof IncidentErrorCode];

/** The steps of an incident response, in order. */
export type IncidentStep =
  | "plan"
  | "rotate-other"
  | "propagate"
  | "promote"
  | "disable"
  | "regenerate"
  | "store"
  | "enable"
  | "verify";

/** One entry of the timeline. */
export interface IncidentEvent {
  /** The step. */
  readonly step: IncidentStep;
  /** How it ended. */
  readonly status: "completed" | "skipped" | "failed";
  /** A sentence for the operator; never a secret. */
  readonly detail: string;
  /** When it ended, ISO 8601. */
  readonly at: string;
  /** Milliseconds since the response started. */
  readonly elapsedMs: number;
}

/** Every {@linkcode IncidentStep}, in the order a response reaches them. */
export const INCIDENT_STEPS: readonly IncidentStep[] = Object.freeze(
  [
    "plan",
    "rotate-other",
    "propagate",
    "promote",
    "disable",
    "regenerate",
    "store",
    "enable",
    "verify",
  ] as const,
);

/** What {@linkcode IncidentOptions.awaitLoaded} is asked to prove. */
export interface LoadRequest {
  /** The clean label (the one that keeps or takes the traffic). */
  readonly label: string;
  /**
   * `false`: every instance has loaded the label's current secret (before
   * it is promoted). `true`: every instance also serves the label (before
   * the compromised one is disabled or regenerated).
   */
  readonly active: boolean;
  /** Stops the wait; it then rejects. */
  readonly signal?: AbortSignal;
}

/** What an admin client must do for the incident response. */
export type IncidentAdmin =
  & GenesysAdminClient
  & Pick<GenesysOAuthClientAdmin, "setClientState">;

/** Options of {@linkcode respondToCompromise}. */
export interface IncidentOptions {
  /** The compromised label, such as `blue`. */
  readonly compromised: string;
  /** Both credentials, with the secrets in use now. */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic now. */
  readonly active: string;
  /** The token endpoint the new secrets are proven against. */
  readonly tokenUrl: string;
  /**
   * The admin client for the steps on each label. For `"other"` (rotating
   * the other label) and `"compromised"` (disabling, regenerating and
   * re-enabling the compromised one). Never administer the compromised
   * label with its own token under `killTokens`: disabling it would kill
   * the admin's token and nothing could re-enable it.
   */
  readonly adminFor: (target: "other" | "compromised") => IncidentAdmin;
  /** Where new secrets go. */
  readonly sink: SecretSink;
  /** How traffic is switched to the other label, when it must be. */
  readonly onPromote: (label: string) => Promise<void> | void;
  /**
   * The target's proof that the instances have loaded what was stored:
   * resolves with a line for the timeline once they have (see
   * {@linkcode LoadRequest}), rejects when they did not in time. The
   * compromised credential is disabled or regenerated only after it
   * resolved with `active: true`. A fleet store reads the heartbeats (the
   * secret generation each instance proved, its active label); an env file
   * waits until its followers have re-read it.
   *
   * @default undefined (no instances to wait for: the step is skipped)
   */
  readonly awaitLoaded?: (request: LoadRequest) => Promise<string>;
  /**
   * Also invalidate every outstanding token of the compromised client:
   * disable → regenerate → re-enable.
   *
   * @default false
   */
  readonly killTokens?: boolean;
  /**
   * Token requests made to prove each new secret.
   *
   * @default 10
   */
  readonly verifyAttempts?: number;
  /**
   * First wait between them, in ms.
   *
   * @default 1000
   */
  readonly verifyDelayMs?: number;
  /**
   * The fetch of the token requests.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock of waits and the timeline.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Stops the response between steps and during waits, never during the
   * regeneration (whose answer is the only copy of the secret), the store,
   * or the re-enabling.
   */
  readonly signal?: AbortSignal;
  /** Called after each step. */
  readonly onStep?: (event: IncidentEvent) => void;
  /** A test hook: awaited after each step is recorded, such as to stop the process there. */
  readonly failpoint?: (step: IncidentStep) => void | Promise<void>;
}

/** What the incident response did. No secrets. */
export interface IncidentReport {
  /** The compromised label. */
  readonly compromised: string;
  /** Its OAuth client id. */
  readonly clientId: string;
  /** The label that served traffic before. */
  readonly previousActive: string;
  /** The label serving traffic now (never the compromised one). */
  readonly active: string;
  /** Whether the other label was rotated and promoted first (in this run). */
  readonly promotedOther: boolean;
  /** Whether the compromised client's outstanding tokens were invalidated. */
  readonly tokensKilled: boolean;
  /** The timeline, in order. */
  readonly steps: readonly IncidentEvent[];
  /** What to do next, for people. */
  readonly nextStep: string;
}

/** An incident step failed; the message says what state things are in. */
export class IncidentError extends DualSecretAuthError {
  /** One of {@linkcode IncidentErrorCode}. */
  declare readonly code: IncidentErrorCode;
  /** The step that failed. */
  readonly step: IncidentStep;
  /** The timeline up to and including the failed step. */
  readonly steps: readonly IncidentEvent[];

  /**
   * Creates the error.
   *
   * @param step The step that failed.
   * @param message What happened, the state now, what to do.
   * @param steps The timeline so far.
   * @param options The underlying cause.
   */
  constructor(
    step: IncidentStep,
    message: string,
    steps: readonly IncidentEvent[],
    options?: ErrorOptions,
  ) {
    super(
      `INCIDENT_${
        step.toUpperCase().replace("-", "_")
      }_FAILED` as IncidentErrorCode,
      message,
      options,
    );
    this.step = step;
    this.steps = Object.freeze([...steps]);
  }
}

/**
 * Takes a compromised credential out of service and regenerates it at once.
 * If it is active, the other label is rotated first; the other label's
 * secret is proved loaded (`awaitLoaded`), promoted, and proved served
 * before the compromised one is touched; with `killTokens`, its tokens are
 * invalidated by disabling it around the regeneration.
 *
 * @param options The labels, the admin clients, the sink and the I/O.
 * @returns The report with the timeline.
 * @throws {IncidentError} Naming the step, the state left, and what to do.
 *
 * @example Blue's secret leaked while blue serves traffic
 * ```ts
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 * import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
 * import { createCallbackSink } from "@rotating/dual-secret-auth/rotation";
 * import { respondToCompromise } from "@rotating/dual-secret-auth/genesys";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "leaked" },
 *     { clientId: "green-id", secret: "g" },
 *     { clientId: "admin-id", secret: "a", permissions: ["oauth:client:*"] },
 *   ],
 * });
 * const admin = createGenesysAdminClient({
 *   apiUrl: emulator.apiUrl,
 *   getAccessToken: () => Promise.resolve(emulator.issueToken("admin-id")),
 * });
 * let active = "blue";
 * const report = await respondToCompromise({
 *   compromised: "blue",
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "leaked" },
 *     { label: "green", clientId: "green-id", clientSecret: "g" },
 *   ],
 *   active,
 *   tokenUrl: emulator.tokenUrl,
 *   adminFor: () => admin,
 *   sink: createCallbackSink(() => {}),
 *   onPromote: (label) => void (active = label),
 *   killTokens: true,
 *   verifyDelayMs: 10,
 * });
 * if (active !== "green" || !report.tokensKilled) throw new Error();
 * if (emulator.getClientSecret("blue-id") === "leaked") throw new Error();
 * ```
 */
export async function respondToCompromise(
  options: IncidentOptions,
): Promise<IncidentReport> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const killTokens = options.killTokens ?? false;
  const steps: IncidentEvent[] = [];
  const record = (
    step: IncidentStep,
    status: IncidentEvent["status"],
    detail: string,
  ) => {
    const now = clock.now();
    const event = Object.freeze({
      step,
      status,
      detail,
      at: new Date(now).toISOString(),
      elapsedMs: now - started,
    });
    steps.push(event);
    options.onStep?.(event);
  };
  const fail = (step: IncidentStep, message: string, cause: unknown): never => {
    if (cause instanceof AbortedError) throw cause;
    record(step, "failed", message);
    throw new IncidentError(step, message, steps, { cause });
  };

  // plan
  const compromised = options.credentials.find((c) =>
    c.label === options.compromised
  );
  const others = options.credentials.filter((c) =>
    c.label !== options.compromised
  );
  if (!compromised || others.length !== 1) {
    return fail(
      "plan",
      `"${options.compromised}" must be one of exactly two configured labels (${
        options.credentials.map((c) => c.label).join(", ")
      }).`,
      undefined,
    );
  }
  const other = others[0];
  if (options.active !== compromised.label && options.active !== other.label) {
    return fail(
      "plan",
      `the active label "${options.active}" is not configured.`,
      undefined,
    );
  }
  const wasActive = options.active === compromised.label;
  record(
    "plan",
    "completed",
    wasActive
      ? `${compromised.label} (${compromised.clientId}) serves traffic: rotate ${other.label}, wait until every instance has loaded it, promote it, then regenerate ${compromised.label}${
        killTokens ? " while disabled" : ""
      }`
      : `${compromised.label} (${compromised.clientId}) is the standby: regenerate it${
        killTokens ? " while disabled" : ""
      }; ${other.label} keeps serving`,
  );

  await options.failpoint?.("plan");

  // rotate-other: the one staged rotation, not promoting: traffic moves
  // only once the instances have loaded the new secret (propagate).
  checkAborted(options.signal);
  if (wasActive) {
    try {
      await runStagedRotation({
        credentials: options.credentials,
        active: compromised.label,
        standby: other.label,
        tokenUrl: options.tokenUrl,
        admin: options.adminFor("other"),
        sink: options.sink,
        fetch: options.fetch,
        clock,
        testAttempts: options.verifyAttempts,
        testDelayMs: options.verifyDelayMs,
        signal: options.signal,
      });
    } catch (error) {
      return fail(
        "rotate-other",
        `Could not rotate ${other.label}: ${describeError(error)} ` +
          `${compromised.label} still serves traffic with its compromised secret; nothing of it was changed. ` +
          `Fix the cause and run the incident response again at once.`,
        error,
      );
    }
    record(
      "rotate-other",
      "completed",
      `${other.label} has a new secret, proven and stored in ${options.sink.name}`,
    );
  } else {
    record(
      "rotate-other",
      "skipped",
      `${other.label} already serves traffic`,
    );
  }
  await options.failpoint?.("rotate-other");

  // propagate: every instance holds the clean label's current secret.
  const untouched =
    `${compromised.label} is unchanged (not disabled, not regenerated)`;
  const awaitLoaded = options.awaitLoaded;
  checkAborted(options.signal);
  if (awaitLoaded === undefined) {
    record("propagate", "skipped", "no instances to wait for");
  } else {
    let detail: string;
    try {
      detail = await awaitLoaded({
        label: other.label,
        active: false,
        signal: options.signal,
      });
    } catch (error) {
      checkAborted(options.signal);
      return fail(
        "propagate",
        `Not every instance has loaded the secret of ${other.label}: ${
          describeError(error)
        } ${
          wasActive ? compromised.label : other.label
        } still serves traffic; ${untouched}. ` +
          `Fix the instances named above (or wait longer) and run the incident response again at once.`,
        error,
      );
    }
    record("propagate", "completed", detail);
  }
  await options.failpoint?.("propagate");

  // promote, then the proof that every instance serves the clean label:
  // only then is the compromised one taken away from anybody.
  checkAborted(options.signal);
  try {
    if (wasActive) await options.onPromote(other.label);
  } catch (error) {
    checkAborted(options.signal);
    return fail(
      "promote",
      `Could not switch traffic to ${other.label}: ${describeError(error)} ` +
        `${compromised.label} still serves traffic; ${untouched}. Fix the cause and run the incident response again at once.`,
      error,
    );
  }
  let served = `${other.label} serves traffic${
    wasActive ? " now" : " already"
  }`;
  if (awaitLoaded !== undefined) {
    try {
      served = `${served}; ${await awaitLoaded({
        label: other.label,
        active: true,
        signal: options.signal,
      })}`;
    } catch (error) {
      checkAborted(options.signal);
      return fail(
        "promote",
        `${other.label} is the active label, but not every instance serves it yet: ${
          describeError(error)
        } ${untouched}. Fix the instances named above (or wait longer) and run the incident response again at once.`,
        error,
      );
    }
  }
  record("promote", wasActive ? "completed" : "skipped", served);
  await options.failpoint?.("promote");

  const admin = options.adminFor("compromised");
  const id = compromised.clientId;

  // disable
  checkAborted(options.signal);
  if (killTokens) {
    try {
      await admin.setClientState(id, "disabled", { signal: options.signal });
    } catch (error) {
      return fail(
        "disable",
        `Could not disable OAuth client ${id} (${compromised.label}): ${
          describeError(error)
        } Its tokens are NOT invalidated and its secret is unchanged. Disable it under ` +
          `Admin > Integrations > OAuth, or fix the cause and run the incident response again.`,
        error,
      );
    }
    record(
      "disable",
      "completed",
      `${compromised.label} disabled: its outstanding tokens are invalid, it can get no new ones`,
    );
  } else {
    record(
      "disable",
      "skipped",
      "outstanding tokens were left to expire (no --kill-tokens)",
    );
  }
  await options.failpoint?.("disable");

  // regenerate
  checkAborted(options.signal);
  let secret: Secret;
  try {
    // Not abortable: the answer is the only copy of the new secret.
    secret = (await admin.regenerateSecret(id)).secret;
  } catch (error) {
    return fail(
      "regenerate",
      `Could not regenerate the secret of OAuth client ${id} (${compromised.label}): ${
        describeError(error)
      } ` +
        (killTokens
          ? `It stays disabled (its compromised secret is still valid, so it must not be re-enabled): `
          : `Its compromised secret still works: `) +
        `fix the cause and run the incident response again.`,
      error,
    );
  }
  record(
    "regenerate",
    "completed",
    `${compromised.label} has a new secret; the compromised one no longer gets tokens`,
  );
  await options.failpoint?.("regenerate");

  // store
  let stored = true;
  try {
    await options.sink.publish({
      label: compromised.label,
      clientId: id,
      secret,
    });
    record(
      "store",
      "completed",
      `stored the new ${compromised.label} secret in ${options.sink.name}`,
    );
  } catch (error) {
    if (error instanceof AbortedError) throw error;
    stored = false;
    // The new secret is lost, but it was never exposed: re-enabling is safe
    // and lets an ordinary rotation of the standby repair it.
    record(
      "store",
      "failed",
      `the new ${compromised.label} secret could not be stored in ${options.sink.name}: ${
        describeError(error)
      }`,
    );
  }

  await options.failpoint?.("store");

  // enable
  if (killTokens) {
    try {
      // Not abortable either: an interrupted run must not leave it disabled.
      await admin.setClientState(id, "active");
    } catch (error) {
      return fail(
        "enable",
        `OAuth client ${id} (${compromised.label}) has a new secret but is still disabled: ${
          describeError(error)
        } Enable it under Admin > Integrations > OAuth (state Active) before promoting it again; ` +
          `its old tokens stay invalid either way.`,
        error,
      );
    }
    record(
      "enable",
      "completed",
      `${compromised.label} active again: new tokens only, the old ones stay invalid`,
    );
  } else {
    record("enable", "skipped", "it was never disabled");
  }
  await options.failpoint?.("enable");

  if (!stored) {
    return fail(
      "store",
      `The secret of OAuth client ${id} (${compromised.label}) was regenerated, but the new one could not be ` +
        `stored in ${options.sink.name}, so nobody holds it. ${other.label} serves traffic. Fix the cause, then ` +
        `regenerate ${compromised.label} again with an ordinary rotation of the standby.`,
      undefined,
    );
  }

  // verify
  try {
    await proveCredential({
      tokenUrl: options.tokenUrl,
      label: compromised.label,
      clientId: id,
      secret,
      attempts: options.verifyAttempts,
      delayMs: options.verifyDelayMs,
      fetch: options.fetch,
      clock,
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal?.aborted) {
      throw new AbortedError({ cause: options.signal.reason });
    }
    return fail(
      "verify",
      `The new secret of ${compromised.label} (${id}) is stored but got no token yet: ${
        describeError(error)
      } ${other.label} serves traffic, so nothing is down; check again in a minute (deno task verify).`,
      error,
    );
  }
  record(
    "verify",
    "completed",
    `${compromised.label} got a token with its new secret`,
  );

  return Object.freeze({
    compromised: compromised.label,
    clientId: id,
    previousActive: options.active,
    active: other.label,
    promotedOther: wasActive,
    tokensKilled: killTokens,
    steps: Object.freeze([...steps]),
    nextStep:
      `${other.label} serves traffic and ${compromised.label} is the standby with a fresh secret` +
      (killTokens
        ? "; every token issued before the incident is invalid"
        : "; tokens issued before the incident stay valid until they expire (use --kill-tokens to end them)") +
      ". Find how the secret leaked before promoting it again.",
  });
}

/**
 * How long services that follow an env file (`envFileSource`: a watch plus
 * a re-read every second, then a token request before switching labels) may
 * take to serve what it says, with slack: the default of
 * {@linkcode envFileLoadProof}.
 */
export const DEFAULT_RELOAD_WAIT_MS = 3_000;

/** Options of {@linkcode envFileLoadProof}. */
export interface EnvFileLoadProofOptions {
  /**
   * How long the services take to re-read the file and serve it, in ms.
   *
   * @default DEFAULT_RELOAD_WAIT_MS
   */
  readonly reloadWaitMs?: number;
  /**
   * The clock of the wait (wall-clock time: it is compared with the file's
   * modification time).
   *
   * @default systemClock
   */
  readonly clock?: Clock;
}

/**
 * The incident's load proof for services that follow an env file: they
 * cannot report what they loaded, so the proof is time. `active: true`
 * resolves once `reloadWaitMs` has passed since the file was last written
 * (at once when that was longer ago, such as on a re-run); `active: false`
 * resolves at once, since a follower reads a secret and the active label in
 * one read and the `active: true` wait follows the promotion.
 *
 * @param path The env file the services follow.
 * @param options The wait and the clock.
 * @returns The `awaitLoaded` port of {@linkcode respondToCompromise}.
 *
 * @example The wait after a write
 * ```ts
 * import { envFileLoadProof } from "@rotating/dual-secret-auth/genesys";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "GENESYS_ACTIVE=green\n");
 * const proof = envFileLoadProof(path, { reloadWaitMs: 50 });
 * const started = Date.now();
 * await proof({ label: "green", active: true });
 * if (Date.now() - started < 20) throw new Error("did not wait");
 * await Deno.remove(path);
 * ```
 */
export function envFileLoadProof(
  path: string,
  options: EnvFileLoadProofOptions = {},
): (request: LoadRequest) => Promise<string> {
  const reloadWaitMs = options.reloadWaitMs ?? DEFAULT_RELOAD_WAIT_MS;
  const clock = options.clock ?? systemClock;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return async ({ label, active, signal }) => {
    if (!active) {
      return `services that follow ${path} read ${label}'s secret with the active label (the wait follows the promotion)`;
    }
    const written = (await Deno.stat(path)).mtime?.getTime() ?? clock.now();
    const wait = Math.max(0, written + reloadWaitMs - clock.now());
    if (wait > 0) await delay(wait, clock, signal);
    return `services that follow ${path} re-read it within ${
      seconds(reloadWaitMs)
    } (--reload-wait): waited ${seconds(wait)}`;
  };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
}
