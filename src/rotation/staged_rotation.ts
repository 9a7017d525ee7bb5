/**
 * Staged, zero-downtime rotation of a Genesys Cloud OAuth client secret with
 * two clients of the same roles (blue and green), the "alternating users"
 * strategy of AWS Secrets Manager rotation:
 *
 * `plan → regenerate → test → publish → promote → done`
 *
 * Only the standby client's secret is ever regenerated, so traffic on the
 * active one never notices. The new secret is proven with a real
 * client-credentials grant before it is published, and traffic moves to it
 * only after it is published. Every phase reports to `onPhase`; progress (no
 * secrets) goes to an optional journal, so an interrupted run can be resumed.
 *
 * Resume rule: a secret is never kept anywhere but the sink. So if a run
 * stopped after regenerating but before publishing, the new secret is gone and
 * a re-run regenerates again: harmless, because the standby serves no traffic
 * and its old secret died with the first regeneration anyway. If the journal
 * says the secret was published and the configured standby secret (reloaded
 * from the sink) passes a token request, a re-run rolls forward to promotion
 * without regenerating, so instances that already loaded the published secret
 * keep a working standby.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import {
  type ConfigWarning,
  type CredentialInput,
  resolveConfig,
  type ResolvedCredential,
} from "../config.ts";
import {
  AbortedError,
  ConfigError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../errors.ts";
import type { GenesysAdminClient } from "../genesys/admin_client.ts";
import { delay } from "../retry.ts";
import type { Secret } from "../secret.ts";
import { requestToken, type TokenGrant } from "../token_endpoint.ts";
import type {
  RotationJournal,
  RotationJournalRecord,
  RotationPhase,
} from "./journal.ts";
import type { SecretSink } from "./sinks.ts";

export type { RotationPhase } from "./journal.ts";

/** What happened to a phase. */
export type RotationPhaseStatus =
  | "started"
  | "completed"
  | "skipped"
  | "failed";

/** One step of a staged rotation, as reported to `onPhase`. No secrets. */
export interface RotationPhaseEvent {
  /** The phase. */
  readonly phase: RotationPhase;
  /** What happened to it. */
  readonly status: RotationPhaseStatus;
  /** When (ms since the epoch, on the injected clock). */
  readonly at: number;
  /** The label being rotated (the standby). */
  readonly label: string;
  /** A short, secret-free description for people. */
  readonly detail?: string;
}

/** Options of {@linkcode runStagedRotation}. */
export interface StagedRotationOptions {
  /** The current credentials, such as blue and green. */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic now. */
  readonly active: string;
  /** The label to regenerate; default: the other one (there must be exactly one). */
  readonly standby?: string;
  /** The token endpoint, to test the new secret with a real client-credentials grant. */
  readonly tokenUrl: string;
  /** Regenerates the standby's secret. */
  readonly admin: GenesysAdminClient;
  /** Where the new secret is published. */
  readonly sink: SecretSink;
  /** Switch traffic to the standby after publishing. Default false. */
  readonly promote?: boolean;
  /** How promotion is applied (for example `auth.rotate({ to })`, or writing `GENESYS_ACTIVE`). Required with `promote`. */
  readonly onPromote?: (label: string) => Promise<void> | void;
  /** Verify and plan only; change nothing (no journal write either). */
  readonly dryRun?: boolean;
  /** Persisted progress, for resuming. */
  readonly journal?: RotationJournal;
  /** The fetch for token requests; default the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** The clock; default the system clock. */
  readonly clock?: Clock;
  /** Token requests tried with the new secret before giving up (it may take a moment to propagate). Default 5. */
  readonly testAttempts?: number;
  /** Wait between those attempts, in ms. Default 2,000. */
  readonly testDelayMs?: number;
  /** Receives each phase event. A throwing listener is ignored. */
  readonly onPhase?: (event: RotationPhaseEvent) => void;
  /** Stops the rotation between (or during) phases. */
  readonly signal?: AbortSignal;
}

/** What a rotation did. No secrets. */
export interface RotationReport {
  /** Whether this was a dry run (nothing changed). */
  readonly dryRun: boolean;
  /** The journal's id of this rotation, unless a dry run. */
  readonly rotationId?: string;
  /** The label that served traffic before. */
  readonly previousActive: string;
  /** The label serving traffic now (the standby if promoted). */
  readonly active: string;
  /** The label whose secret was rotated. */
  readonly standby: string;
  /** The standby's OAuth client id. */
  readonly clientId: string;
  /** Whether traffic was switched to the standby. */
  readonly promoted: boolean;
  /** Whether an interrupted rotation was rolled forward without regenerating. */
  readonly resumed: boolean;
  /** The sink's name. */
  readonly sink: string;
  /** When the secret was regenerated (this run or the resumed one). */
  readonly regeneratedAt?: number;
  /** When the secret was published. */
  readonly publishedAt?: number;
  /** Lifetime of the standby's tokens, when the admin API said. */
  readonly tokenLifetimeSeconds?: number;
  /** Every phase event, in order. */
  readonly phases: readonly RotationPhaseEvent[];
  /** What to do next, for people. */
  readonly nextStep: string;
}

/** The stable codes of {@linkcode StagedRotationError}, one per failing phase. */
export const RotationErrorCode: {
  readonly PLAN_FAILED: "ROTATION_PLAN_FAILED";
  readonly REGENERATE_FAILED: "ROTATION_REGENERATE_FAILED";
  readonly TEST_FAILED: "ROTATION_TEST_FAILED";
  readonly PUBLISH_FAILED: "ROTATION_PUBLISH_FAILED";
  readonly PROMOTE_FAILED: "ROTATION_PROMOTE_FAILED";
  readonly DONE_FAILED: "ROTATION_DONE_FAILED";
} = Object.freeze(
  {
    PLAN_FAILED: "ROTATION_PLAN_FAILED",
    REGENERATE_FAILED: "ROTATION_REGENERATE_FAILED",
    TEST_FAILED: "ROTATION_TEST_FAILED",
    PUBLISH_FAILED: "ROTATION_PUBLISH_FAILED",
    PROMOTE_FAILED: "ROTATION_PROMOTE_FAILED",
    DONE_FAILED: "ROTATION_DONE_FAILED",
  } as const,
);

/** One of the values of {@linkcode RotationErrorCode}. */
export type RotationErrorCode =
  typeof RotationErrorCode[keyof typeof RotationErrorCode];

const CODE_OF_PHASE: Readonly<Record<RotationPhase, RotationErrorCode>> = {
  plan: RotationErrorCode.PLAN_FAILED,
  regenerate: RotationErrorCode.REGENERATE_FAILED,
  test: RotationErrorCode.TEST_FAILED,
  publish: RotationErrorCode.PUBLISH_FAILED,
  promote: RotationErrorCode.PROMOTE_FAILED,
  done: RotationErrorCode.DONE_FAILED,
};

/**
 * A staged rotation failed. The message says in which phase, in what state
 * things are (which credential serves traffic, whether the standby's secret
 * changed, whether it was published) and what to run next.
 */
export class StagedRotationError extends DualSecretAuthError {
  /** The phase that failed. */
  readonly phase: RotationPhase;
  /** The label still serving traffic. */
  readonly active: string;
  /** The label being rotated. */
  readonly standby: string;
  /** The state things are in, for people. */
  readonly state: string;
  /** What to do next, for people. */
  readonly nextStep: string;

  /**
   * Creates the error.
   *
   * @param phase The phase that failed.
   * @param context The labels, the state and the next step.
   * @param options The failure, as cause; its message is included.
   */
  constructor(
    phase: RotationPhase,
    context: {
      active: string;
      standby: string;
      state: string;
      nextStep: string;
    },
    options?: ErrorOptions,
  ) {
    const reason = options?.cause === undefined
      ? ""
      : ` ${safeMessage(options.cause)}`;
    // The base class types `code` as the core codes only; these are
    // distinct strings of the same kind.
    super(
      CODE_OF_PHASE[phase],
      `Rotation of "${context.standby}" failed in phase ${phase}.${reason} ` +
        `State: ${context.state} Next: ${context.nextStep}`,
      options,
    );
    this.phase = phase;
    this.active = context.active;
    this.standby = context.standby;
    this.state = context.state;
    this.nextStep = context.nextStep;
  }
}

const DEFAULT_TEST_ATTEMPTS = 5;
const DEFAULT_TEST_DELAY_MS = 2_000;
const TOKEN_TIMEOUT_MS = 10_000;

/**
 * Runs a staged rotation of the standby credential's secret.
 *
 * @param options What to rotate, how, and where to publish.
 * @returns What was done.
 * @throws {StagedRotationError} When a phase fails; `phase`, `state` and
 *   `nextStep` say where things stand. Before promotion, traffic always stays
 *   on the active credential.
 *
 * @example Rotate green while blue serves, on the emulator
 * ```ts
 * import { runStagedRotation } from "./staged_rotation.ts";
 * import { createCallbackSink } from "./sinks.ts";
 * import { createGenesysAdminClient } from "../genesys/admin_client.ts";
 * import { startGenesysEmulator } from "../testing/emulator.ts";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret", permissions: ["oauth:client:*"] },
 *     { clientId: "green-id", secret: "green-secret" },
 *   ],
 * });
 * const published: string[] = [];
 * const report = await runStagedRotation({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   active: "blue",
 *   tokenUrl: emulator.tokenUrl,
 *   admin: createGenesysAdminClient({
 *     apiUrl: emulator.apiUrl,
 *     getAccessToken: () => Promise.resolve(emulator.issueToken("blue-id")),
 *   }),
 *   sink: createCallbackSink(({ label }) => { published.push(label); }),
 * });
 * if (report.standby !== "green" || published[0] !== "green") throw new Error();
 * ```
 */
export async function runStagedRotation(
  options: StagedRotationOptions,
): Promise<RotationReport> {
  const clock = options.clock ?? systemClock;
  const fetchFn = options.fetch ??
    ((input: RequestInfo | URL, init?: RequestInit) =>
      globalThis.fetch(input, init));
  const phases: RotationPhaseEvent[] = [];
  const activeLabel = String(options.active);
  const standbyLabel = String(
    options.standby ??
      options.credentials?.find((c) => c?.label !== activeLabel)?.label,
  );
  let label = standbyLabel;

  const emit = (
    phase: RotationPhase,
    status: RotationPhaseStatus,
    detail?: string,
  ) => {
    const event: RotationPhaseEvent = Object.freeze({
      phase,
      status,
      at: clock.now(),
      label,
      ...(detail === undefined ? {} : { detail }),
    });
    phases.push(event);
    try {
      options.onPhase?.(event);
    } catch {
      // A listener's bug must not break a half-done rotation.
    }
  };

  // ---- plan -------------------------------------------------------------
  emit("plan", "started");
  let plan: Plan;
  try {
    plan = await makePlan(options, clock, fetchFn);
  } catch (error) {
    emit("plan", "failed", describe(error));
    throw new StagedRotationError("plan", {
      active: activeLabel,
      standby: standbyLabel,
      state: `Nothing was changed; "${activeLabel}" still serves traffic.`,
      nextStep: "fix the cause above and run the rotation again.",
    }, { cause: error });
  }
  label = plan.standby.label;
  const { active, standby, resumeFrom } = plan;
  const sinkName = options.sink.name;
  emit(
    "plan",
    "completed",
    resumeFrom
      ? `resuming: "${standby.label}" was published at ${
        iso(resumeFrom.publishedAt!)
      } and its configured secret works; rolling forward without regenerating`
      : `regenerate "${standby.label}" (${standby.clientId}) while "${active.label}" serves traffic; publish to ${sinkName}` +
        (options.promote ? `; then promote "${standby.label}"` : ""),
  );

  if (options.dryRun) {
    for (const phase of ["regenerate", "test", "publish", "promote"] as const) {
      emit(phase, "skipped", "dry run");
    }
    emit("done", "completed", "dry run: nothing was changed");
    return Object.freeze({
      dryRun: true,
      previousActive: active.label,
      active: active.label,
      standby: standby.label,
      clientId: standby.clientId,
      promoted: false,
      resumed: resumeFrom !== undefined,
      sink: sinkName,
      tokenLifetimeSeconds: plan.tokenLifetimeSeconds,
      phases: Object.freeze([...phases]),
      nextStep: "run again without dry run to rotate.",
    });
  }

  let record: RotationJournalRecord = resumeFrom ?? {
    version: 1,
    rotationId: crypto.randomUUID(),
    active: active.label,
    standby: standby.label,
    clientId: standby.clientId,
    sink: sinkName,
    phase: "plan",
    startedAt: clock.now(),
  };
  const journal = async (changes: Partial<RotationJournalRecord>) => {
    record = { ...record, ...changes };
    await options.journal?.write(record);
  };
  const failure =
    (phase: RotationPhase, state: string, nextStep: string) =>
    (error: unknown): never => {
      emit(phase, "failed", describe(error));
      throw new StagedRotationError(phase, {
        active: active.label,
        standby: standby.label,
        state,
        nextStep,
      }, { cause: error });
    };
  const rerun = options.journal
    ? "run the rotation again"
    : "run the rotation again (without a journal it cannot tell this run happened)";

  if (resumeFrom) {
    emit("regenerate", "skipped", "already regenerated");
    emit("test", "skipped", "the published secret passed a token request");
    emit("publish", "skipped", `already published to ${resumeFrom.sink}`);
  } else {
    // ---- regenerate ------------------------------------------------------
    let secret: Secret;
    await journal({}).catch(
      failure(
        "plan",
        `Nothing was changed; "${active.label}" still serves traffic.`,
        "make the rotation journal writable and run the rotation again.",
      ),
    );
    try {
      checkAborted(options.signal);
      emit("regenerate", "started");
      const regenerated = await options.admin.regenerateSecret(
        standby.clientId,
        { signal: options.signal },
      );
      if (regenerated.id !== standby.clientId) {
        throw new ConfigError(
          "admin",
          `the API regenerated client ${regenerated.id}, not ${standby.clientId}`,
        );
      }
      secret = regenerated.secret;
    } catch (error) {
      return failure(
        "regenerate",
        `The secret of "${standby.label}" (${standby.clientId}) may or may not have been regenerated; ` +
          `"${standby.label}" is the standby and serves no traffic; "${active.label}" still serves traffic.`,
        `fix the cause above and ${rerun}; it regenerates "${standby.label}" again.`,
      )(error);
    }
    await journal({ phase: "regenerate", regeneratedAt: clock.now() }).catch(
      () => {
        // The journal is advisory here: the secret is in hand, and losing it
        // would cost a working standby; carry on and publish it.
      },
    );
    emit("regenerate", "completed", `new secret for ${standby.clientId}`);

    // ---- test ------------------------------------------------------------
    const lost =
      `The secret of "${standby.label}" was regenerated, so its old secret no longer works, ` +
      `and the new one was discarded without being published; "${active.label}" still serves traffic ` +
      `and has no working standby until the rotation completes.`;
    try {
      checkAborted(options.signal);
      emit("test", "started");
      const grant = await testSecret(options, standby, secret, clock, fetchFn);
      await journal({ phase: "test", testedAt: clock.now() }).catch(() => {});
      emit(
        "test",
        "completed",
        `token request succeeded (lifetime ${
          Math.round(grant.lifetimeMs / 1000)
        } s)`,
      );
    } catch (error) {
      return failure(
        "test",
        lost,
        `${rerun}; it regenerates "${standby.label}" again. If this keeps failing, check the client's state and the token URL's region.`,
      )(error);
    }

    // ---- publish ---------------------------------------------------------
    try {
      checkAborted(options.signal);
      emit("publish", "started");
      await options.sink.publish({
        label: standby.label,
        clientId: standby.clientId,
        secret,
      });
    } catch (error) {
      return failure(
        "publish",
        `${lost} It could not be stored in ${sinkName}.`,
        `fix ${sinkName} (permissions, disk space) and ${rerun}; it regenerates "${standby.label}" again.`,
      )(error);
    }
    await journal({ phase: "publish", publishedAt: clock.now() }).catch(
      () => {},
    );
    emit("publish", "completed", `stored in ${sinkName}`);
  }

  // ---- promote ------------------------------------------------------------
  let promoted = false;
  if (options.promote) {
    try {
      checkAborted(options.signal);
      emit("promote", "started");
      await options.onPromote!(standby.label);
      promoted = true;
    } catch (error) {
      return failure(
        "promote",
        `The new secret of "${standby.label}" is verified and published in ${sinkName}; ` +
          `the switch to "${standby.label}" failed, so "${active.label}" still serves traffic ` +
          `(unless the promotion was partly applied).`,
        options.journal
          ? `fix the cause above and run the rotation again with promotion; the journal lets it skip regeneration and only promote.`
          : `switch by hand (set the active credential to "${standby.label}") or run the rotation again with promotion.`,
      )(error);
    }
    await journal({ phase: "promote", promotedAt: clock.now() }).catch(
      () => {},
    );
    emit("promote", "completed", `"${standby.label}" is active`);
  } else {
    emit("promote", "skipped", "promotion not requested");
  }

  // ---- done ---------------------------------------------------------------
  await journal({ phase: "done", completedAt: clock.now() }).catch(() => {});
  const nextStep = promoted
    ? `"${standby.label}" serves traffic now; once every instance has switched, the next rotation regenerates "${active.label}".`
    : `"${active.label}" still serves traffic; "${standby.label}" holds the new secret. Promote "${standby.label}" when every instance has loaded it.`;
  emit("done", "completed", nextStep);
  return Object.freeze({
    dryRun: false,
    rotationId: record.rotationId,
    previousActive: active.label,
    active: promoted ? standby.label : active.label,
    standby: standby.label,
    clientId: standby.clientId,
    promoted,
    resumed: resumeFrom !== undefined,
    sink: sinkName,
    regeneratedAt: record.regeneratedAt,
    publishedAt: record.publishedAt,
    tokenLifetimeSeconds: plan.tokenLifetimeSeconds,
    phases: Object.freeze([...phases]),
    nextStep,
  });
}

interface Plan {
  readonly active: ResolvedCredential;
  readonly standby: ResolvedCredential;
  readonly resumeFrom?: RotationJournalRecord;
  readonly tokenLifetimeSeconds?: number;
}

/** Validates everything and checks that rotating is safe. Changes nothing. */
async function makePlan(
  options: StagedRotationOptions,
  clock: Clock,
  fetchFn: typeof fetch,
): Promise<Plan> {
  const warnings: ConfigWarning[] = [];
  const config = resolveConfig({
    credentials: options.credentials,
    active: options.active,
    tokenUrl: options.tokenUrl,
  }, warnings);
  const active = config.credentials.find((c) => c.label === config.active)!;
  const standby = pickStandby(config.credentials, active, options.standby);
  if (standby.clientId === active.clientId) {
    throw new ConfigError(
      "standby",
      `"${standby.label}" and "${active.label}" share OAuth client ${active.clientId}; ` +
        `regenerating its secret would break traffic. Use two OAuth clients with the same roles.`,
    );
  }
  if (!options.admin || typeof options.admin.regenerateSecret !== "function") {
    throw new ConfigError("admin", "give a GenesysAdminClient");
  }
  if (!options.sink || typeof options.sink.publish !== "function") {
    throw new ConfigError("sink", "give a SecretSink");
  }
  if (options.promote && typeof options.onPromote !== "function") {
    throw new ConfigError(
      "onPromote",
      "promote needs onPromote to say how traffic is switched",
    );
  }
  checkAborted(options.signal);
  // Regenerating the standby while the active one is broken would leave no
  // working credential at all.
  await oneTokenRequest(config.tokenUrl, active, active.clientSecret, {
    clock,
    fetchFn,
    signal: options.signal,
  });
  const client = await options.admin.getClient(standby.clientId, {
    signal: options.signal,
  });
  if (client.state !== "active") {
    throw new ConfigError(
      "standby",
      `OAuth client ${standby.clientId} of "${standby.label}" is ${client.state}; ` +
        `an inactive client cannot get tokens. Activate it first.`,
    );
  }
  const previous = await options.journal?.read();
  let resumeFrom: RotationJournalRecord | undefined;
  if (
    previous && previous.completedAt === undefined &&
    previous.publishedAt !== undefined &&
    previous.standby === standby.label &&
    previous.clientId === standby.clientId
  ) {
    const published = await oneTokenRequest(
      config.tokenUrl,
      standby,
      standby.clientSecret,
      { clock, fetchFn, signal: options.signal },
    ).then(() => true, () => false);
    if (published) resumeFrom = previous;
  }
  return {
    active,
    standby,
    resumeFrom,
    tokenLifetimeSeconds: client.accessTokenValiditySeconds,
  };
}

function pickStandby(
  credentials: readonly ResolvedCredential[],
  active: ResolvedCredential,
  wanted: string | undefined,
): ResolvedCredential {
  if (wanted !== undefined) {
    if (wanted === active.label) {
      throw new ConfigError(
        "standby",
        `"${wanted}" is the active credential; only the standby may be regenerated`,
      );
    }
    const found = credentials.find((c) => c.label === wanted);
    if (!found) {
      throw new ConfigError(
        "standby",
        `"${wanted}" is not a configured label (${
          credentials.map((c) => c.label).join(", ")
        })`,
      );
    }
    return found;
  }
  const others = credentials.filter((c) => c.label !== active.label);
  if (others.length !== 1) {
    throw new ConfigError(
      "standby",
      others.length === 0
        ? "there is no standby credential; configure two (blue and green)"
        : `several standby candidates (${
          others.map((c) => c.label).join(", ")
        }); name one`,
    );
  }
  return others[0];
}

/** Proves the new secret, allowing for it to take a moment to propagate. */
async function testSecret(
  options: StagedRotationOptions,
  standby: ResolvedCredential,
  secret: Secret,
  clock: Clock,
  fetchFn: typeof fetch,
): Promise<TokenGrant> {
  const attempts = Math.max(1, options.testAttempts ?? DEFAULT_TEST_ATTEMPTS);
  const wait = Math.max(0, options.testDelayMs ?? DEFAULT_TEST_DELAY_MS);
  for (let attempt = 1;; attempt++) {
    try {
      return await oneTokenRequest(options.tokenUrl, standby, secret, {
        clock,
        fetchFn,
        signal: options.signal,
      });
    } catch (error) {
      const worthRetrying = error instanceof CredentialRejectedError ||
        error instanceof RateLimitedError ||
        error instanceof TokenEndpointUnavailableError;
      if (!worthRetrying || attempt >= attempts) throw error;
      await delay(wait, clock, options.signal).catch((reason) => {
        throw new AbortedError({ cause: reason });
      });
    }
  }
}

function oneTokenRequest(
  tokenUrl: string,
  credential: ResolvedCredential,
  secret: Secret,
  io: { clock: Clock; fetchFn: typeof fetch; signal?: AbortSignal },
): Promise<TokenGrant> {
  return requestToken({
    tokenUrl,
    label: credential.label,
    clientId: credential.clientId,
    clientSecret: secret,
    fetch: io.fetchFn,
    clock: io.clock,
    timeoutMs: TOKEN_TIMEOUT_MS,
    signal: io.signal,
  });
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
}

function describe(error: unknown): string {
  return error instanceof DualSecretAuthError
    ? `${error.code}: ${error.message}`
    : safeMessage(error);
}

/**
 * A cause's message when it is known to hold no secret: the library's own
 * errors and Deno's I/O errors (which name paths, not contents). A sink's
 * own error might quote what it was given, so only its name is shown.
 */
function safeMessage(error: unknown): string {
  if (error instanceof DualSecretAuthError) return error.message;
  const fromDeno = typeof Deno !== "undefined" &&
    Object.values(Deno.errors).some((type) => error instanceof type);
  if (fromDeno) return `${(error as Error).name}: ${(error as Error).message}`;
  return error instanceof Error
    ? `${error.name} (see cause)`
    : "unknown error (see cause)";
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
