/**
 * Staged, zero-downtime rotation of a Genesys Cloud OAuth client secret with
 * two clients of the same roles (blue and green), the "alternating users"
 * strategy of AWS Secrets Manager rotation:
 *
 * `plan → regenerate → publish → test → promote → done`
 *
 * Only the standby client's secret is ever regenerated, so traffic on the
 * active one never notices. The new secret is stored in the sink the moment
 * the regenerate call returns (the standby's old secret died with that call,
 * so nothing is lost by storing the new one at once, and Genesys Cloud never
 * shows it again), then proven with real client-credentials grants for a
 * bounded propagation time; traffic moves to it only with `promote`.
 *
 * The phases are a table ({@linkcode ROTATION_PHASES}): each names when it is
 * skipped, what it runs, what it records in the journal, and, on failure,
 * the state things are in and the next step. A short runner walks it.
 *
 * Resume rules (with a journal): a run that stopped after storing the new
 * secret is resumed by proving the stored secret, never by regenerating it;
 * a run that stopped after promotion (the active label names the rotated
 * credential) is only finished; a run that stopped before the new secret was
 * stored regenerates the standby again (harmless: it serves no traffic). The
 * credential the active label names is never regenerated. A journal older
 * than `maxJournalAgeMs`, or made for another sink or OAuth client, is not
 * resumed silently: the plan fails and says to start afresh (`fresh`).
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import type { CredentialInput, ResolvedCredential } from "../config.ts";
import { AbortedError, ConfigError } from "../errors.ts";
import type { GenesysAdminClient } from "../genesys/admin_client.ts";
import {
  type IssuedSecret,
  maybeSecretOf,
  type SecretProvider,
} from "./provider.ts";
import type { Secret } from "../secret.ts";
import type { TokenGrant } from "../token_endpoint.ts";
import {
  fingerprintSecret,
  type RotationJournal,
  type RotationJournalRecord,
  type RotationPhase,
} from "./journal.ts";
import { proofTimeout, proveRotatedSecret } from "./proof.ts";
import { iso, makePlan, type Plan, type Resume } from "./rotation_plan.ts";
import {
  describe,
  RotationJournalError,
  StagedRotationError,
} from "./rotation_errors.ts";
import type { SecretSink, SecretUpdate } from "./sinks.ts";
import { runSteps, type StepSpec } from "./runner.ts";

export type { RotationPhase } from "./journal.ts";
export {
  describe,
  RotationErrorCode,
  RotationJournalError,
  RotationJournalErrorCode,
  safeMessage,
  StagedRotationError,
} from "./rotation_errors.ts";

/** What happened to a phase; `progress` is a line while a phase waits or retries. */
export type RotationPhaseStatus =
  | "started"
  | "progress"
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

/**
 * A named point inside or between phases where a test may stop the process
 * (see `failpoint`): `regenerate:after` has the new secret in hand but not yet
 * stored, `publish:after` has stored it but not journaled it, and so on.
 */
export type RotationFailpoint =
  | "plan:after"
  | "regenerate:before"
  | "regenerate:after"
  | "publish:after"
  | "test:inside"
  | "test:after"
  | "promote:after"
  | "done:before";

/** The failpoints of the `retire` phase, reached only with a two-secret provider. */
export type RetireFailpoint = "retire:before" | "retire:after";

/** Every {@linkcode RotationFailpoint}, in the order a rotation reaches them. */
export const ROTATION_FAILPOINTS: readonly RotationFailpoint[] = Object.freeze(
  [
    "plan:after",
    "regenerate:before",
    "regenerate:after",
    "publish:after",
    "test:inside",
    "test:after",
    "promote:after",
    "done:before",
  ] as const,
);

/**
 * The failpoints of a two-secret rotation ({@linkcode SecretProvider} with
 * `model: "two-secrets"`): those of {@linkcode ROTATION_FAILPOINTS}, and
 * around the revocation of the old label's secret.
 */
export const TWO_SECRET_FAILPOINTS: readonly (
  | RotationFailpoint
  | RetireFailpoint
)[] = Object
  .freeze(
    [
      "plan:after",
      "regenerate:before",
      "regenerate:after",
      "publish:after",
      "test:inside",
      "test:after",
      "promote:after",
      "retire:before",
      "retire:after",
      "done:before",
    ] as const,
  );

/** What a revoke gate is asked: may this secret be revoked now? */
export interface RevokeRequest {
  /** The label whose old secret it is (the label that served traffic before the promotion). */
  readonly label: string;
  /** The OAuth client. */
  readonly clientId: string;
  /** The provider's id of the secret to revoke. */
  readonly secretId: string;
  /**
   * Stops the wait; the gate then rejects.
   *
   * @default undefined
   */
  readonly signal?: AbortSignal;
}

/** The words the next steps use for "run it again", in the operator's terms. */
export interface RotationCommands {
  /**
   * Runs the same rotation again.
   *
   * @default "run the rotation again"
   */
  readonly rerun?: string;
  /**
   * Switches traffic only.
   *
   * @default "promote it"
   */
  readonly promote?: string;
  /**
   * Starts over, ignoring the journal.
   *
   * @default "run the rotation again with fresh: true"
   */
  readonly fresh?: string;
}

/** Options of {@linkcode runStagedRotation}. */
export interface StagedRotationOptions {
  /** The current credentials, such as blue and green (reloaded from the sink on a re-run). */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic now. */
  readonly active: string;
  /**
   * The label to regenerate (with two credentials, the one not active).
   *
   * @default the credential that is not active
   */
  readonly standby?: string;
  /** The token endpoint, to test the new secret with a real client-credentials grant. */
  readonly tokenUrl: string;
  /**
   * The scope every token request of the rotation asks for (the plan's
   * request with the active credential, the new secret's proof), as the
   * service requests it: Okta and Entra ID refuse a request without one.
   *
   * @default undefined (no `scope` parameter)
   */
  readonly scope?: string | readonly string[];
  /**
   * Further parameters of those token requests, such as Auth0's
   * `{ audience }` (the rules of `createDualSecretAuth`'s `tokenParams`).
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /**
   * Issues the standby's new secret: the provider port. Give this or `admin`.
   *
   * @default genesysSecretProvider(admin)
   */
  readonly provider?: SecretProvider;
  /**
   * Genesys Cloud's admin client; the same as
   * `provider: genesysSecretProvider(admin)`.
   *
   * @default undefined (give `provider`)
   */
  readonly admin?: GenesysAdminClient;
  /** Where the new secret is stored, right after it is regenerated. */
  readonly sink: SecretSink;
  /**
   * Switch traffic to the standby once its new secret is proven.
   *
   * @default false
   */
  readonly promote?: boolean;
  /** How promotion is applied (for example `auth.rotate({ to })`, or writing `GENESYS_ACTIVE`). Required with `promote`. */
  readonly onPromote?: (label: string) => Promise<void> | void;
  /**
   * Verify and plan only, including the sink's and journal's pre-flight
   * checks; change nothing (no journal write either).
   *
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Persisted progress, for resuming. Without one, a rotation stopped half-way
   * cannot be resumed.
   *
   * @default undefined (none)
   */
  readonly journal?: RotationJournal;
  /**
   * Start over: ignore an unfinished, stale or foreign journal record.
   *
   * @default false
   */
  readonly fresh?: boolean;
  /**
   * An unfinished journal record older than this is not resumed; the plan
   * fails and says to start afresh.
   *
   * @default 86_400_000 (24 h)
   */
  readonly maxJournalAgeMs?: number;
  /**
   * The fetch for token requests.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock of waits and timeouts.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * How long the new secret may take to propagate: token requests are
   * retried with backoff until one passes or this time has passed.
   *
   * @default 60_000
   */
  readonly propagationTimeoutMs?: number;
  /**
   * Most token requests tried with the new secret.
   *
   * @default unlimited within `propagationTimeoutMs`
   */
  readonly testAttempts?: number;
  /**
   * The first wait between those requests, in ms; it doubles up to 5 s.
   *
   * @default 1_000
   */
  readonly testDelayMs?: number;
  /** Receives each phase event. A throwing or rejecting listener is ignored. */
  readonly onPhase?: (event: RotationPhaseEvent) => unknown;
  /**
   * Stops the rotation in plan, between phases and while testing. Never
   * between the regenerate call and the new secret being stored: that call
   * runs to its end and the secret is stored first.
   */
  readonly signal?: AbortSignal;
  /**
   * The words of next steps (commands the operator runs); each field has its
   * own default.
   *
   * @default {}
   */
  readonly commands?: RotationCommands;
  /**
   * A test hook: awaited at each named point, such as to stop the process
   * there (a method, so a hook of {@linkcode RotationFailpoint} alone fits).
   *
   * @param point The point reached.
   */
  failpoint?(point: RotationFailpoint | RetireFailpoint): void | Promise<void>;
  /**
   * Two-secret providers: the provider's id of each label's current secret,
   * as the target stored it with the label ({@linkcode SecretUpdate.secretId}).
   * Tells the plan which secret the active label uses (never revoked), and
   * the retire step which one to revoke.
   *
   * @default {} (found from the provider's list where it is unambiguous)
   */
  readonly secretIds?: Readonly<Record<string, string>>;
  /**
   * Two-secret providers: the revoke gate. After promotion, the old label's
   * secret is revoked (the `retire` phase) only once this resolves, with a
   * line for the report, saying nothing holds or uses it any more (a
   * fleet's heartbeats; on one host, the service having reloaded). It
   * rejects, with the reason, while something still does: the rotation
   * then fails in `retire` with traffic on the new secret, and a re-run
   * only retires.
   *
   * @default undefined (the old secret is kept; the next rotation's plan
   *   names it when the client is at its limit)
   */
  readonly revokeGate?: (request: RevokeRequest) => Promise<string>;
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
  /** Whether an interrupted rotation was resumed without regenerating. */
  readonly resumed: boolean;
  /** What was resumed, for people, when something was. */
  readonly resumedFrom?: string;
  /** The sink's name. */
  readonly sink: string;
  /** When the secret was regenerated (this run or the resumed one). */
  readonly regeneratedAt?: number;
  /** When the secret was stored in the sink. */
  readonly publishedAt?: number;
  /** Lifetime of the standby's tokens, when the admin API said. */
  readonly tokenLifetimeSeconds?: number;
  /**
   * Two-secret providers: the id of the standby's new secret.
   *
   * @default undefined (twin clients)
   */
  readonly secretId?: string;
  /**
   * Two-secret providers: the id of the old label's secret, once revoked.
   *
   * @default undefined (none revoked)
   */
  readonly retiredSecretId?: string;
  /** Warnings of the pre-flight checks, such as an env file readable by others. */
  readonly warnings: readonly string[];
  /** Every phase event, in order. */
  readonly phases: readonly RotationPhaseEvent[];
  /** What to do next, for people. */
  readonly nextStep: string;
}

/** Everything the phases share while a rotation runs. */
interface RunState {
  readonly options: StagedRotationOptions;
  readonly clock: Clock;
  readonly fetchFn: typeof fetch;
  readonly commands: Required<RotationCommands>;
  readonly emit: (
    phase: RotationPhase,
    status: RotationPhaseStatus,
    detail?: string,
  ) => void;
  plan?: Plan;
  record?: RotationJournalRecord;
  /** The new secret, once regenerated in this run. */
  secret?: Secret;
  /** What the provider said of it. */
  issued?: IssuedSecret;
  grant?: TokenGrant;
  promoted: boolean;
  /** The old label's secret, once revoked. */
  retiredSecretId?: string;
}

/** What a phase's failure means: the state things are in and what to run next. */
interface FailureReport {
  readonly state: string;
  readonly nextStep: string;
}

/** One row of the phase table: a step of the one runner ({@linkcode runSteps}). */
type PhaseSpec = StepSpec<
  RunState,
  RotationPhase,
  Partial<RotationJournalRecord>,
  FailureReport
>;

const labels = (run: RunState) => ({
  active: run.plan?.active.label ?? String(run.options.active),
  standby: run.plan?.standby.label ?? standbyLabelOf(run.options),
});

const untouched = (run: RunState): FailureReport => ({
  state: `Nothing was changed; "${labels(run).active}" still serves traffic.`,
  nextStep: `fix the cause above and ${run.commands.rerun}.`,
});

const storedNotProven = (run: RunState, why: string): FailureReport => {
  const { active, standby } = labels(run);
  return {
    state:
      `The new secret of "${standby}" is stored in ${run.options.sink.name} and kept, but ${why}; ` +
      `"${active}" still serves traffic.`,
    nextStep:
      `${run.commands.rerun}: it proves the stored secret again without regenerating. ` +
      `If it keeps failing, check the OAuth client in Genesys Cloud and the token URL's region; ` +
      `${run.commands.fresh} regenerates it again.`,
  };
};

/**
 * The staged rotation as a table: phase, when it is skipped, what it runs,
 * what it journals, and on failure the state and the next step.
 */
export const ROTATION_PHASES: readonly RotationPhase[] = Object.freeze(
  [
    "plan",
    "regenerate",
    "publish",
    "test",
    "promote",
    "done",
  ] as const,
);

const PHASES: readonly PhaseSpec[] = [
  {
    name: "plan",
    abortable: true,
    inDryRun: true,
    run: async (run) => {
      run.plan = await makePlan({
        options: run.options,
        clock: run.clock,
        fetchFn: run.fetchFn,
        freshWords: run.commands.fresh,
      });
      const { active, standby, resume } = run.plan;
      if (resume.kind !== "none") run.record = resume.record;
      await run.options.failpoint?.("plan:after");
      if (resume.kind === "prove") {
        return `resuming: the new secret of "${standby.label}" was stored at ${
          iso(resume.record.publishedAt ?? resume.record.regenerateRequestedAt)
        }; proving it again without regenerating`;
      }
      if (resume.kind === "promote-only") {
        return `"${standby.label}" was rotated at ${
          iso(resume.record.completedAt)
        } and not promoted; proving and promoting it without regenerating`;
      }
      if (resume.kind === "promoted") {
        return `resuming: "${standby.label}" was rotated and promoted (${ACTIVE_WORDS} names it); finishing without regenerating`;
      }
      return `${
        resume.note ? `${resume.note}; ` : ""
      }regenerate "${standby.label}" (${standby.clientId}) while "${active.label}" serves traffic; store in ${run.options.sink.name}` +
        (run.options.promote ? `; then promote "${standby.label}"` : "");
    },
    onFailure: (run, error) =>
      error instanceof RotationJournalError
        ? {
          ...untouched(run),
          nextStep:
            `check the unfinished rotation described above; to start over, ${run.commands.fresh}.`,
        }
        : untouched(run),
  },
  {
    name: "regenerate",
    abortable: true,
    skip: (run) =>
      run.plan!.resume.kind === "none" ? undefined : "already regenerated",
    journalBefore: (run) => ({ regenerateRequestedAt: run.clock.now() }),
    run: async (run) => {
      const { active, standby } = run.plan!;
      if (standby.label === active.label) {
        // Unreachable by construction; the one rule that must never break.
        throw new ConfigError(
          "standby",
          "refusing to regenerate the active credential",
        );
      }
      await run.options.failpoint?.("regenerate:before");
      const provider = run.plan!.provider;
      if (run.plan!.orphanSecretId !== undefined) {
        // Issued by a run that died before storing it: nobody holds it.
        await provider.revokeSecret!(
          standby.clientId,
          run.plan!.orphanSecretId,
          { signal: run.options.signal },
        );
      }
      if (run.plan!.standbyOldSecretId !== undefined) {
        // The standby's old secret goes first, as a twin client's does when
        // regenerated (at a limit of two it makes room). A run that dies
        // here finds it gone and only issues.
        await provider.revokeSecret!(
          standby.clientId,
          run.plan!.standbyOldSecretId,
          { signal: run.options.signal },
        );
      }
      // No signal: once sent, the call must return so its secret is stored.
      const issued = await provider.issueSecret(standby.clientId);
      if (issued.clientId !== standby.clientId) {
        throw new ConfigError(
          "provider",
          `${
            run.plan!.provider.name
          } issued a secret for client ${issued.clientId}, not ${standby.clientId}`,
        );
      }
      run.secret = issued.secret;
      run.issued = issued;
      if (provider.model === "two-secrets") {
        if (issued.secretId !== undefined && !run.options.dryRun) {
          // Its id before anything else: a run that dies before storing
          // the secret leaves an orphan the next run revokes by this id.
          await writeJournal(run, { secretId: issued.secretId }).catch(
            () => {},
          );
        }
      }
      await run.options.failpoint?.("regenerate:after");
      return `new secret for ${standby.clientId}` +
        (issued.secretId === undefined ? "" : ` (id ${issued.secretId})`);
    },
    onFailure: (run, error, acted) => {
      const { active, standby } = labels(run);
      // Interrupted before anything was sent: the journal is fine.
      if (!acted && error instanceof AbortedError) return untouched(run);
      if (!acted) {
        return {
          state: `Nothing was changed; "${active}" still serves traffic.`,
          nextStep:
            `make the rotation journal writable and ${run.commands.rerun}.`,
        };
      }
      return {
        state:
          `The secret of "${standby}" (${run.plan?.standby.clientId}) may or may not have been regenerated; ` +
          `"${standby}" is the standby and serves no traffic; "${active}" still serves traffic.`,
        nextStep:
          `fix the cause above and ${run.commands.rerun}; it regenerates "${standby}" again.`,
      };
    },
  },
  {
    name: "publish",
    abortable: false,
    skip: (run) =>
      run.secret === undefined
        ? `already stored in ${run.options.sink.name}`
        : undefined,
    run: async (run) => {
      const { standby } = run.plan!;
      const update: SecretUpdate = {
        label: standby.label,
        clientId: standby.clientId,
        secret: run.secret!,
        ...(run.issued?.secretId === undefined
          ? {}
          : { secretId: run.issued.secretId }),
      };
      await run.options.sink.publish(update);
      await run.options.failpoint?.("publish:after");
      return `stored in ${run.options.sink.name} (not yet proven)`;
    },
    journalAfter: (run) => ({
      phase: "publish",
      regeneratedAt: run.record?.regeneratedAt ?? run.clock.now(),
      publishedAt: run.clock.now(),
    }),
    onFailure: (run) => {
      const { active, standby } = labels(run);
      return {
        state:
          `The secret of "${standby}" was regenerated, so its old secret no longer works, ` +
          `and the new one could not be stored in ${run.options.sink.name}, so it is lost; ` +
          `"${active}" still serves traffic and has no working standby until a rotation completes.`,
        nextStep:
          `fix ${run.options.sink.name} (permissions, disk space) and ${run.commands.rerun}; it regenerates "${standby}" again.`,
      };
    },
  },
  {
    name: "test",
    abortable: true,
    skip: (run) =>
      run.plan!.resume.kind === "promoted"
        ? "the rotated credential is already active"
        : undefined,
    run: async (run) => {
      const { standby } = run.plan!;
      await run.options.failpoint?.("test:inside");
      run.grant = await proveRotatedSecret(
        run.options,
        standby,
        run.secret ?? standby.clientSecret,
        {
          clock: run.clock,
          fetchFn: run.fetchFn,
          onProgress: (detail) => run.emit("test", "progress", detail),
          propagationMs: run.issued?.propagationMs,
          request: run.plan!.tokenRequest,
        },
      );
      await run.options.failpoint?.("test:after");
      return `token request succeeded (lifetime ${
        Math.round(run.grant.lifetimeMs / 1000)
      } s)`;
    },
    journalAfter: (run) => ({ phase: "test", testedAt: run.clock.now() }),
    onFailure: (run, error) =>
      storedNotProven(
        run,
        error instanceof AbortedError
          ? "the run was interrupted before it was proven"
          : `it did not pass a token request within ${
            Math.round(
              proofTimeout(run.options, run.issued?.propagationMs) / 1000,
            )
          } s`,
      ),
  },
  {
    name: "promote",
    abortable: true,
    skip: (run) =>
      run.plan!.resume.kind === "promoted"
        ? `already promoted: "${run.plan!.standby.label}" is active`
        : run.options.promote
        ? undefined
        : "promotion not requested",
    run: async (run) => {
      const { standby } = run.plan!;
      await run.options.onPromote!(standby.label);
      run.promoted = true;
      await run.options.failpoint?.("promote:after");
      return `"${standby.label}" is active`;
    },
    journalAfter: (run) => ({ phase: "promote", promotedAt: run.clock.now() }),
    onFailure: (run, error) => {
      const { active, standby } = labels(run);
      if (error instanceof AbortedError) {
        return {
          state:
            `The new secret of "${standby}" is proven and stored in ${run.options.sink.name}; ` +
            `the run was interrupted before promotion, so "${active}" still serves traffic.`,
          nextStep: `${run.commands.promote} when you are ready.`,
        };
      }
      return {
        state:
          `The new secret of "${standby}" is verified and published in ${run.options.sink.name}; ` +
          `the switch to "${standby}" failed, so "${active}" still serves traffic ` +
          `(unless the promotion was partly applied).`,
        nextStep:
          `fix the cause above and ${run.commands.promote}; nothing is regenerated.`,
      };
    },
  },
  {
    name: "done",
    abortable: false,
    inDryRun: true,
    run: async (run) => {
      if (run.options.dryRun) return "dry run: nothing was changed";
      await run.options.failpoint?.("done:before");
      return nextStepOf(run);
    },
    journalAfter: (run) => ({
      phase: "done",
      completedAt: run.clock.now(),
      ...(run.plan!.resume.kind === "promoted" && !run.record?.promotedAt
        ? { promotedAt: run.clock.now() }
        : {}),
    }),
    onFailure: (run) => ({
      state: "The rotation's work is done; recording it failed.",
      nextStep: `check the journal file and ${run.commands.rerun}.`,
    }),
  },
];

/** The label that served traffic before the promotion, and its client. */
const oldLabelOf = (run: RunState): string =>
  run.plan!.resume.kind === "promoted"
    ? run.plan!.resume.record.active
    : run.plan!.active.label;

/**
 * Two-secret providers: after promotion, the old label's secret is revoked
 * by id, once the caller's revoke gate says nothing holds or uses it. Never
 * the secret of the label that serves traffic.
 */
const RETIRE_PHASE: PhaseSpec = {
  name: "retire",
  abortable: true,
  skip: (run) => {
    const promoted = run.promoted || run.plan!.resume.kind === "promoted";
    if (!promoted) {
      return `not promoted: the secret of "${
        run.plan!.active.label
      }" serves traffic and is kept`;
    }
    if (run.record?.retiredAt !== undefined) {
      return `already revoked (${run.record.oldSecretId})`;
    }
    if (run.options.revokeGate === undefined) {
      return `no revoke gate given: the old secret of "${
        oldLabelOf(run)
      }" is kept; the next rotation's plan names it when the client is at its limit`;
    }
    return undefined;
  },
  run: async (run) => {
    const { options, plan } = run;
    const provider = plan!.provider;
    const clientId = plan!.standby.clientId;
    const oldLabel = oldLabelOf(run);
    const newLabel = plan!.resume.kind === "promoted"
      ? plan!.resume.record.standby
      : plan!.standby.label;
    const inUse = run.record?.secretId ?? run.issued?.secretId ??
      options.secretIds?.[newLabel];
    const client = await provider.inspectClient(clientId, {
      signal: options.signal,
    });
    const listed = client.secrets ?? [];
    let oldId = run.record?.oldSecretId ?? options.secretIds?.[oldLabel];
    if (oldId === undefined) {
      const others = inUse === undefined
        ? []
        : listed.filter((s) => s.secretId !== inUse);
      if (others.length !== 1) {
        throw new ConfigError(
          "secretIds",
          `cannot tell which secret of OAuth client ${clientId} "${oldLabel}" used ` +
            `(${provider.name} lists ${
              listed.map((s) => s.secretId).join(", ") || "none"
            }; "${newLabel}" uses ${
              inUse ?? "an unrecorded one"
            }); nothing was revoked`,
        );
      }
      oldId = others[0].secretId;
    }
    if (oldId === inUse) {
      // The one rule that must never break.
      throw new ConfigError(
        "secretIds",
        `refusing to revoke ${oldId}: "${newLabel}" serves traffic with it`,
      );
    }
    const oldInfo = listed.find((s) => s.secretId === oldId);
    const oldValue = options.credentials.find((c) => c.label === oldLabel)
      ?.clientSecret;
    if (
      oldInfo !== undefined && oldValue !== undefined &&
      !maybeSecretOf(
        oldInfo,
        typeof oldValue === "string" ? oldValue : oldValue.reveal(),
      )
    ) {
      // Recorded wrongly (another service's secret, say): the provider's
      // hint of its value is not the old label's.
      throw new ConfigError(
        "secretIds",
        `${oldId}, recorded for "${oldLabel}", is not its secret: ${provider.name} shows the beginning of each ` +
          `secret's value, and ${oldId}'s is not that of "${oldLabel}"'s; nothing was revoked. Record the id of ` +
          `"${oldLabel}"'s secret, then run the rotation again`,
      );
    }
    await options.failpoint?.("retire:before");
    const verdict = await options.revokeGate!({
      label: oldLabel,
      clientId,
      secretId: oldId,
      signal: options.signal,
    });
    // Revoked by a run that died before journaling it: nothing to call.
    if (listed.some((s) => s.secretId === oldId)) {
      await provider.revokeSecret!(clientId, oldId, { signal: options.signal });
    }
    run.retiredSecretId = oldId;
    await options.failpoint?.("retire:after");
    return `revoked ${oldId}, the old secret of "${oldLabel}" (${verdict})`;
  },
  journalAfter: (run) => ({
    phase: "retire",
    retiredAt: run.clock.now(),
    ...(run.retiredSecretId === undefined
      ? {}
      : { oldSecretId: run.retiredSecretId }),
  }),
  onFailure: (run, error) => {
    const newLabel = labels(run).standby;
    return {
      state:
        `"${newLabel}" serves traffic with its new, proven secret; the old secret of "${
          run.plan ? oldLabelOf(run) : labels(run).active
        }" was not revoked and still works` +
        (error instanceof AbortedError ? " (interrupted)." : "."),
      nextStep:
        `once nothing uses the old secret, ${run.commands.rerun}: it only revokes it, nothing is regenerated.`,
    };
  },
};

/** The two-secret rotation: the same phases, with `retire` before `done`. */
const TWO_SECRET_PHASES: readonly PhaseSpec[] = [
  ...PHASES.slice(0, -1),
  RETIRE_PHASE,
  PHASES[PHASES.length - 1],
];

const ACTIVE_WORDS = "the active label";

/**
 * Runs a staged rotation of the standby credential's secret.
 *
 * @param options What to rotate, how, and where to store the new secret.
 * @returns What was done.
 * @throws {StagedRotationError} When a phase fails; `phase`, `state` and
 *   `nextStep` say where things stand. Before promotion, traffic always stays
 *   on the active credential, and a regenerated secret is never discarded.
 *
 * @example Rotate green while blue serves, on the emulator
 * ```ts
 * import { runStagedRotation } from "@rotating/dual-secret-auth/rotation";
 * import { createCallbackSink } from "@rotating/dual-secret-auth/rotation";
 * import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
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
  const phases: RotationPhaseEvent[] = [];
  const state: RunState = {
    options,
    clock,
    fetchFn: options.fetch ??
      ((input: RequestInfo | URL, init?: RequestInit) =>
        globalThis.fetch(input, init)),
    commands: {
      rerun: options.commands?.rerun ?? "run the rotation again",
      promote: options.commands?.promote ?? "promote it",
      fresh: options.commands?.fresh ??
        "run the rotation again with fresh: true",
    },
    emit: (phase, status, detail) => {
      const event: RotationPhaseEvent = Object.freeze({
        phase,
        status,
        at: clock.now(),
        label: labels(state).standby,
        ...(detail === undefined ? {} : { detail }),
      });
      phases.push(event);
      notify(options.onPhase, event);
    },
    promoted: false,
  };

  const twoSecrets = options.provider?.model === "two-secrets";
  await runSteps(twoSecrets ? TWO_SECRET_PHASES : PHASES, state, {
    emit: state.emit,
    signal: options.signal,
    dryRun: options.dryRun === true,
    journal: writeJournal,
    failedDetail: (error) => describe(error),
    fail: (phase, { state: where, nextStep }, error, run) =>
      new StagedRotationError(phase, {
        ...labels(run),
        state: where,
        nextStep,
      }, { cause: error }),
  });

  const plan = state.plan!;
  const record = state.record;
  const resume = plan.resume;
  return Object.freeze({
    dryRun: options.dryRun === true,
    ...(record ? { rotationId: record.rotationId } : {}),
    previousActive: resume.kind === "promoted"
      ? resume.record.active
      : plan.active.label,
    // Resumed after promotion, the plan's active label is the rotated one.
    active: resume.kind === "promoted"
      ? resume.record.standby
      : state.promoted
      ? plan.standby.label
      : plan.active.label,
    standby: resume.kind === "promoted"
      ? resume.record.standby
      : plan.standby.label,
    clientId: resume.kind === "promoted"
      ? resume.record.clientId
      : plan.standby.clientId,
    promoted: state.promoted || resume.kind === "promoted",
    resumed: resume.kind !== "none",
    ...(resume.kind !== "none"
      ? { resumedFrom: resumeWords(resume) }
      : resume.note
      ? { resumedFrom: resume.note }
      : {}),
    sink: options.sink.name,
    regeneratedAt: record?.regeneratedAt,
    publishedAt: record?.publishedAt,
    tokenLifetimeSeconds: plan.tokenLifetimeSeconds,
    ...(record?.secretId === undefined ? {} : { secretId: record.secretId }),
    ...(state.retiredSecretId === undefined
      ? {}
      : { retiredSecretId: state.retiredSecretId }),
    warnings: plan.warnings,
    phases: Object.freeze([...phases]),
    nextStep: options.dryRun
      ? "run again without dry run to rotate."
      : nextStepOf(state),
  });
}

async function writeJournal(
  run: RunState,
  changes: Partial<RotationJournalRecord>,
): Promise<void> {
  const plan = run.plan!;
  const next = {
    ...(run.record ?? {
      version: 1,
      rotationId: crypto.randomUUID(),
      active: plan.active.label,
      standby: plan.standby.label,
      clientId: plan.standby.clientId,
      sink: run.options.sink.name,
      phase: "plan",
      startedAt: run.clock.now(),
      promoteRequested: run.options.promote === true,
      ...(plan.activeSecretId === undefined
        ? {}
        : { oldSecretId: plan.activeSecretId }),
      ...(await fingerprintOf(plan.standby)),
    }),
    ...changes,
  } as RotationJournalRecord;
  try {
    await run.options.journal?.write(next);
  } finally {
    // Kept in memory even when the write failed, for the report.
    run.record = next;
  }
}

async function fingerprintOf(
  credential: ResolvedCredential,
): Promise<
  Pick<RotationJournalRecord, "standbyFingerprintBefore" | "fingerprintSalt">
> {
  const salt = crypto.randomUUID();
  return {
    fingerprintSalt: salt,
    standbyFingerprintBefore: await fingerprintSecret(
      credential.clientSecret.reveal(),
      salt,
    ),
  };
}

/** Calls a listener; its throw or rejection never reaches the rotation. */
function notify<E>(
  listener: ((event: E) => unknown) | undefined,
  event: E,
): void {
  try {
    const result = listener?.(event) as unknown;
    if (
      result !== null && typeof result === "object" &&
      typeof (result as PromiseLike<unknown>).then === "function"
    ) {
      (result as Promise<unknown>).then(undefined, () => {});
    }
  } catch {
    // A listener's bug must not break a half-done rotation.
  }
}

function nextStepOf(run: RunState): string {
  const { active, standby, resume } = run.plan!;
  if (resume.kind === "promoted") {
    return `"${resume.record.standby}" serves traffic now; once every instance has switched, the next rotation regenerates "${resume.record.active}".`;
  }
  return run.promoted
    ? `"${standby.label}" serves traffic now; once every instance has switched, the next rotation regenerates "${active.label}".`
    : `"${active.label}" still serves traffic; "${standby.label}" holds the new, proven secret. Once every instance has loaded it, ${run.commands.promote}.`;
}

function resumeWords(resume: Exclude<Resume, { kind: "none" }>): string {
  switch (resume.kind) {
    case "prove":
      return `rotation ${resume.record.rotationId}: the new secret was stored; proved it without regenerating`;
    case "promote-only":
      return `rotation ${resume.record.rotationId}: finished without promotion; promoted without regenerating`;
    case "promoted":
      return `rotation ${resume.record.rotationId}: already promoted; finished it`;
  }
}

function standbyLabelOf(options: StagedRotationOptions): string {
  return String(
    options.standby ??
      options.credentials?.find?.((c) => c?.label !== options.active)?.label,
  );
}
