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
import {
  AbortedError,
  ConfigError,
  CredentialRejectedError,
} from "../errors.ts";
import type {
  GenesysAdminClient,
  GenesysOAuthClientAdmin,
} from "../genesys/admin_client.ts";
import { Secret } from "../secret.ts";
import { delay } from "../retry.ts";
import { describeError } from "./describe_error.ts";
import { proveCredential } from "./prove_credential.ts";
import { oneTokenRequest, tokenRequestOptions } from "./proof.ts";
import {
  maybeSecretOf,
  type ProviderSecretInfo,
  type SecretProvider,
} from "./provider.ts";
import type { TokenAuthMethod } from "../token_endpoint.ts";
import type { SecretSink } from "./sinks.ts";
import {
  type RevokeRequest,
  runStagedRotation,
  StagedRotationError,
} from "./staged_rotation.ts";
import {
  createJsonFileJournal,
  fingerprintSecret,
  type RotationJournal,
  type RotationJournalRecord,
  type StepJournal,
} from "./journal.ts";
import { runSteps, StepFailedError, type StepSpec } from "./runner.ts";
import {
  awaitPresenceGate,
  type PresenceGateOptions,
} from "./presence_gate.ts";

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
   * Genesys Cloud: the admin client for the steps on each label. For
   * `"other"` (rotating the other label) and `"compromised"` (disabling,
   * regenerating and re-enabling the compromised one). Never administer the
   * compromised label with its own token under `killTokens`: disabling it
   * would kill the admin's token and nothing could re-enable it. Give this
   * or `provider`.
   *
   * @default undefined (give `provider`)
   */
  readonly adminFor?: (target: "other" | "compromised") => IncidentAdmin;
  /**
   * Another identity provider's admin API, through the rotation engine's
   * port, instead of `adminFor`. Twin clients (Auth0): the same steps as
   * Genesys, the compromised client's secret regenerated by `issueSecret`.
   * Two secrets on one client (Okta, Entra ID, Cognito, Keycloak with its
   * rotation policy): once the other label serves traffic, the compromised
   * label's secret is revoked by id at once (no revoke gate: it is
   * compromised) and no new one is issued for it, as an ordinary rotation
   * leaves the old label; the next rotation issues it. Neither can
   * invalidate tokens already issued (`killTokens` is refused; the report
   * says what the provider does with them, `issuedTokens`).
   *
   * @default undefined (Genesys Cloud through `adminFor`)
   */
  readonly provider?: SecretProvider;
  /**
   * Two-secret providers: the provider's id of each label's current secret,
   * as the target recorded it (`AUTH_SECRET_ID_<LABEL>`): which secret is
   * the compromised one, and which one the clean label uses (never revoked).
   *
   * @default {} (found from the provider's list where it is unambiguous)
   */
  readonly secretIds?: Readonly<Record<string, string>>;
  /**
   * Two-secret providers: told the compromised label's secret id once it is
   * revoked (or found gone already), before the step is journaled, such as
   * to mark a fleet store's sealed record of it retired so instances stop
   * loading it. A re-run stopped before the journal calls it again, so it
   * must be idempotent.
   *
   * @default undefined (nothing to tell)
   */
  readonly onSecretRevoked?: (
    request: { readonly label: string; readonly secretId: string },
  ) => Promise<void> | void;
  /**
   * The scope every token request of the response asks for, as the service
   * requests it (Okta and Entra ID refuse a request without one).
   *
   * @default undefined (no `scope` parameter)
   */
  readonly scope?: string;
  /**
   * Further parameters of those token requests, such as Auth0's `{ audience }`.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
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
  /**
   * Persisted progress: a response stopped half-way (Ctrl-C, a crash) is
   * resumed by the next run, which does not redo what it completed (it
   * never regenerates the clean credential again, nor a stored new secret).
   *
   * @default undefined (none: a re-run starts over)
   */
  readonly journal?: IncidentJournal;
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
   * Plan and run the pre-flight checks only (the sink's and the journal's,
   * the admin client reading the compromised client); change nothing.
   *
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * The words of "start over" in the operator's terms.
   *
   * @default { fresh: "run it again with fresh: true" }
   */
  readonly commands?: { readonly fresh?: string };
}

/**
 * What the incident journal records about one response. No secrets: a
 * salted fingerprint of the compromised secret tells a re-run whether its
 * new secret was stored already.
 */
export interface IncidentJournalRecord {
  /** Format version. */
  readonly version: 1;
  /** Always `"incident"`. */
  readonly kind: "incident";
  /** A random id of this response. */
  readonly incidentId: string;
  /** The compromised label. */
  readonly compromised: string;
  /** Its OAuth client id. */
  readonly clientId: string;
  /** The other (clean) label. */
  readonly other: string;
  /** The sink the new secrets go to. */
  readonly sink: string;
  /** The label that served traffic when the response began. */
  readonly previousActive: string;
  /** Whether the compromised label served traffic then. */
  readonly wasActive: boolean;
  /** Whether the response invalidates the compromised client's tokens. */
  readonly killTokens: boolean;
  /** When it began (ms since the epoch). */
  readonly startedAt: number;
  /** The steps completed so far, in order. */
  readonly done: readonly IncidentStep[];
  /**
   * The other label's staged rotation journal.
   *
   * @default undefined (not rotated)
   */
  readonly rotation?: RotationJournalRecord;
  /**
   * When the compromised client's regenerate call was sent.
   *
   * @default undefined (not sent)
   */
  readonly regenerateRequestedAt?: number;
  /**
   * Salted SHA-256 fingerprint of the compromised secret (see `fingerprintSecret`).
   *
   * @default undefined
   */
  readonly compromisedFingerprintBefore?: string;
  /**
   * The fingerprint's random salt.
   *
   * @default undefined
   */
  readonly fingerprintSalt?: string;
  /**
   * Two-secret providers: the id of the compromised secret once revoked (or
   * found gone), with `regenerate` in `done`.
   *
   * @default undefined (not revoked)
   */
  readonly revokedSecretId?: string;
  /**
   * When the response finished.
   *
   * @default undefined (unfinished)
   */
  readonly completedAt?: number;
}

/** Where the incident's journal is kept. */
export type IncidentJournal = StepJournal<IncidentJournalRecord>;

/**
 * The incident journal in a JSON file (such as `.env.incident.json`),
 * replaced atomically on every write.
 *
 * @param path The file.
 * @returns The journal.
 *
 * @example Empty until a response writes it
 * ```ts
 * import { createFileIncidentJournal } from "@rotating/dual-secret-auth/genesys";
 *
 * const dir = await Deno.makeTempDir();
 * const journal = createFileIncidentJournal(`${dir}/.env.incident.json`);
 * await journal.check?.();
 * if ((await journal.read()) !== undefined) throw new Error("not empty");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function createFileIncidentJournal(path: string): IncidentJournal {
  return createJsonFileJournal(path, (text, file) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (!isIncidentJournalRecord(value)) {
      throw new ConfigError(
        "journal",
        `${file} is not an incident journal this version can read; check it, then delete it to start afresh`,
      );
    }
    return value;
  });
}

/**
 * Whether a value read from a journal (a file, a fleet store's document) is
 * an incident journal record this version can resume.
 *
 * @param value The value read.
 * @returns Whether it is one.
 *
 * @example
 * ```ts
 * import { isIncidentJournalRecord } from "@rotating/dual-secret-auth/genesys";
 * if (isIncidentJournalRecord({ kind: "rotation" })) throw new Error();
 * ```
 */
export function isIncidentJournalRecord(
  value: unknown,
): value is IncidentJournalRecord {
  const record = value as Partial<IncidentJournalRecord> | null | undefined;
  return typeof record === "object" && record !== null &&
    record.version === 1 && record.kind === "incident" &&
    typeof record.compromised === "string" &&
    typeof record.clientId === "string" && Array.isArray(record.done) &&
    typeof record.startedAt === "number";
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
  /** Whether this was a dry run (nothing changed). */
  readonly dryRun: boolean;
  /**
   * What an earlier, unfinished run left that this one resumed.
   *
   * @default undefined (nothing resumed)
   */
  readonly resumedFrom?: string;
  /** The timeline, in order. */
  readonly steps: readonly IncidentEvent[];
  /** What to do next, for people. */
  readonly nextStep: string;
}

/** An incident step failed; the message says what state things are in. */
export class IncidentError extends StepFailedError {
  /** One of {@linkcode IncidentErrorCode}. */
  declare readonly code: IncidentErrorCode;
  /** The flow: always `"incident"`. */
  declare readonly flow: "incident";
  /** The step that failed. */
  declare readonly step: IncidentStep;
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
      { flow: "incident", step },
      options,
    );
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
  const state: IncidentRun = {
    options,
    clock,
    killTokens: options.killTokens ?? false,
    wasActive: false,
    done: new Set(),
    lastDetail: "",
  };
  await runSteps(INCIDENT_TABLE, state, {
    // The timeline keeps how each step ended; a failure is recorded by `fail`.
    emit: (step, status, detail) => {
      if (status === "completed" || status === "skipped") {
        record(step, status, detail ?? "");
      }
    },
    journal: writeIncidentJournal,
    signal: options.signal,
    dryRun: options.dryRun === true,
    after: async (step) => {
      if (step !== "verify") await options.failpoint?.(step);
    },
    fail: (step, report, error) => {
      const interrupted = error instanceof AbortedError ||
        (error instanceof StagedRotationError && error.interrupted) ||
        (options.signal?.aborted === true && !UNINTERRUPTIBLE.has(step));
      if (interrupted) {
        return error instanceof AbortedError
          ? error
          : new AbortedError({ cause: options.signal?.reason ?? error });
      }
      const where = report.step ?? step;
      record(where, "failed", report.message);
      return new IncidentError(where, report.message, steps, {
        cause: report.cause === undefined ? error : report.cause,
      });
    },
  });
  if (!options.dryRun) {
    await writeIncidentJournal(state, { completedAt: clock.now() }).catch(
      () => {},
    );
  }
  const compromised = state.compromised!;
  const other = state.other!;
  const killTokens = state.killTokens;
  return Object.freeze({
    compromised: compromised.label,
    clientId: compromised.clientId,
    previousActive: state.record?.previousActive ?? options.active,
    active: options.dryRun ? options.active : other.label,
    promotedOther: !options.dryRun && state.wasActive,
    tokensKilled: !options.dryRun && killTokens,
    dryRun: options.dryRun === true,
    ...(state.resumedFrom ? { resumedFrom: state.resumedFrom } : {}),
    steps: Object.freeze([...steps]),
    nextStep: options.dryRun
      ? "run the same command without --dry-run to respond."
      : options.provider !== undefined
      ? providerNextStep(options.provider, compromised.label, other.label)
      : `${other.label} serves traffic and ${compromised.label} is the standby with a fresh secret` +
        (killTokens
          ? "; every token issued before the incident is invalid"
          : "; tokens issued before the incident stay valid until they expire (use --kill-tokens to end them)") +
        ". Find how the secret leaked before promoting it again.",
  });
}

/**
 * Why a provider cannot honour `killTokens`: what it does with the tokens
 * already issued with the leaked secret. The one wording of the engine's
 * refusal and the task's.
 *
 * @param provider The provider.
 * @returns The sentence.
 */
export function killTokensRefused(provider: SecretProvider): string {
  return `${provider.name} cannot invalidate the tokens already issued with the leaked secret, so --kill-tokens ` +
    `(kill tokens) cannot be honoured: ${
      provider.issuedTokens ??
        "its API has no call for it; they stay valid until they expire"
    }.`;
}

/** What is left after a response through the provider port, and what it did not do to tokens. */
function providerNextStep(
  provider: SecretProvider,
  compromised: string,
  other: string,
): string {
  const tokens = `Tokens issued with the leaked secret: ${
    provider.issuedTokens ??
      `${provider.name} documents no way to end them; they stay valid until they expire`
  }`;
  return provider.model === "two-secrets"
    ? `${other} serves traffic; the leaked secret of ${compromised} is revoked and ${compromised} holds no secret ` +
      `of ${provider.name} until the next rotation issues one (deno task rotate). ${tokens}. ` +
      `Find how the secret leaked before the next rotation.`
    : `${other} serves traffic and ${compromised} is the standby with a fresh secret. ${tokens}. ` +
      `Find how the secret leaked before promoting it again.`;
}

/** Whether the response goes through a two-secret provider: the compromised secret is revoked, not regenerated. */
const twoSecrets = (run: IncidentRun): boolean =>
  run.options.provider?.model === "two-secrets";

/** The Genesys admin client for a target; the plan refused a response with neither it nor a provider. */
const genesysAdmin = (
  run: IncidentRun,
  target: "other" | "compromised",
): IncidentAdmin => run.options.adminFor!(target);

/** Steps whose work runs to its end once begun; an interrupt is not their failure. */
const UNINTERRUPTIBLE: ReadonlySet<IncidentStep> = new Set<IncidentStep>([
  "regenerate",
  "store",
  "enable",
]);

/** Everything the incident's steps share while it runs. */
interface IncidentRun {
  readonly options: IncidentOptions;
  readonly clock: Clock;
  killTokens: boolean;
  compromised?: CredentialInput;
  other?: CredentialInput;
  /** Whether the compromised label served traffic when the response began. */
  wasActive: boolean;
  /** The steps an earlier run of this response completed (from the journal). */
  done: Set<IncidentStep>;
  record?: IncidentJournalRecord;
  resumedFrom?: string;
  /** Why an unfinished journal record was not resumed. */
  note?: string;
  /** The compromised label's new secret, once regenerated in this run. */
  secret?: Secret;
  /** Whether the journal's fingerprint shows the new secret is stored already. */
  storedBefore?: boolean;
  /** Why storing the new secret failed; reported after re-enabling. */
  storeError?: unknown;
  /** Two-secret providers: the compromised secret's id, once revoked in this run. */
  revokedSecretId?: string;
  lastDetail: string;
}

/** An incident step's failure: the message, and the step it is charged to. */
interface IncidentFailure {
  readonly message: string;
  /** @default the failing step */
  readonly step?: IncidentStep;
  /** @default the error thrown */
  readonly cause?: unknown;
}

type IncidentStepSpec = StepSpec<
  IncidentRun,
  IncidentStep,
  Partial<IncidentJournalRecord>,
  IncidentFailure
>;

const untouchedWords = (run: IncidentRun) =>
  `${run.compromised!.label} is unchanged (not disabled, not regenerated)`;

const mark = (step: IncidentStep) => (run: IncidentRun) => {
  run.done.add(step);
  return { done: [...run.done] };
};

const done = (run: IncidentRun, step: IncidentStep) =>
  run.done.has(step)
    ? `already done (incident ${run.record?.incidentId})`
    : undefined;

/** The incident response as a table, run by the one step runner. */
const INCIDENT_TABLE: readonly IncidentStepSpec[] = [
  {
    name: "plan",
    abortable: false,
    inDryRun: true,
    run: async (run) => {
      const { options } = run;
      const compromised = options.credentials.find((c) =>
        c.label === options.compromised
      );
      const others = options.credentials.filter((c) =>
        c.label !== options.compromised
      );
      if (!compromised || others.length !== 1) {
        throw new PlanRefusal(
          `"${options.compromised}" must be one of exactly two configured labels (${
            options.credentials.map((c) => c.label).join(", ")
          }).`,
        );
      }
      const other = others[0];
      if (
        options.active !== compromised.label && options.active !== other.label
      ) {
        throw new PlanRefusal(
          `the active label "${options.active}" is not configured.`,
        );
      }
      const provider = options.provider;
      if (provider === undefined && options.adminFor === undefined) {
        throw new PlanRefusal(
          "give the admin client (adminFor, Genesys Cloud) or a provider.",
        );
      }
      if (provider !== undefined && run.killTokens) {
        throw new PlanRefusal(
          `${
            killTokensRefused(provider)
          } Run the incident response without it; nothing was changed.`,
        );
      }
      if (
        provider?.model !== "two-secrets" &&
        compromised.clientId === other.clientId
      ) {
        // Twin clients: regenerating one label's client would end the
        // other's secret too, the clean one's.
        throw new PlanRefusal(
          `"${compromised.label}" and "${other.label}" name the same OAuth client ${compromised.clientId}, but ` +
            `${
              provider?.name ?? "Genesys Cloud"
            } keeps one secret per client: each label must be its own client ` +
            `(regenerating one would end the other's secret). Fix the client ids; nothing was changed.`,
        );
      }
      if (
        provider?.model === "two-secrets" &&
        compromised.clientId !== other.clientId
      ) {
        throw new PlanRefusal(
          `${provider.name} keeps both secrets on one OAuth client, but "${compromised.label}" names ` +
            `${compromised.clientId} and "${other.label}" ${other.clientId}; nothing was changed.`,
        );
      }
      run.compromised = compromised;
      run.other = other;
      run.wasActive = options.active === compromised.label;
      // Every file the response writes is checked before anything changes.
      await options.sink.check?.();
      await options.journal?.check?.();
      await resumeFromJournal(run);
      if (options.dryRun) {
        // Reads only: the admin client can see the compromised client.
        const client = provider
          ? await provider.inspectClient(compromised.clientId, {
            signal: options.signal,
          }).then((c) => ({ id: c.clientId, state: c.state }))
          : await genesysAdmin(run, "compromised").getClient(
            compromised.clientId,
            { signal: options.signal },
          );
        run.lastDetail = ` (OAuth client ${client.id} is ${client.state})`;
      }
      if (
        provider !== undefined && twoSecrets(run) && !run.wasActive &&
        !run.done.has("regenerate")
      ) {
        // The standby's leaked secret goes without a rotation first: which
        // one, or why not, is known now, before anything changes (the
        // regenerate step decides again on what the provider lists then).
        const { secrets = [] } = await provider.inspectClient(
          compromised.clientId,
          { signal: options.signal },
        );
        const { id, live } = leakedSecretOf(run, secrets);
        if (options.dryRun) {
          run.lastDetail += live
            ? `; would revoke ${id}`
            : `; ${compromised.label} holds no live secret: nothing to revoke`;
        }
      }
      const killTokens = run.killTokens;
      // Two secrets on one client: the compromised secret is revoked by id.
      const act = twoSecrets(run)
        ? `revoke the secret of ${compromised.label} by id at once`
        : `regenerate ${compromised.label}${
          killTokens ? " while disabled" : ""
        }`;
      // A resumed response may have promoted the other label already.
      const plan = run.wasActive && options.active !== compromised.label
        ? `${compromised.label} (${compromised.clientId}) served traffic when the response began, ${other.label} serves traffic now: ${act}`
        : run.wasActive
        ? `${compromised.label} (${compromised.clientId}) serves traffic: rotate ${other.label}, wait until every instance has loaded it, promote it, then ${act}`
        : `${compromised.label} (${compromised.clientId}) is the standby: ${act}; ${other.label} keeps serving`;
      return (run.resumedFrom ? `${run.resumedFrom}; ` : "") +
        (run.note ? `${run.note}; ` : "") + plan +
        (options.dryRun ? `${run.lastDetail}; dry run: nothing changed` : "");
    },
    journalAfter: mark("plan"),
    onFailure: (run, error) => ({
      cause: error instanceof PlanRefusal ? undefined : error,
      message: error instanceof PlanRefusal
        ? error.message
        : describeError(error) +
          ` ${
            run.compromised?.label ?? run.options.compromised
          } is unchanged; nothing was changed.`,
    }),
  },
  {
    // The one staged rotation, not promoting: traffic moves only once the
    // instances have loaded the new secret (propagate). Resumed through the
    // incident's journal, so a re-run never regenerates it again.
    name: "rotate-other",
    abortable: true,
    skip: (run) =>
      !run.wasActive
        ? `${run.other!.label} already serves traffic`
        : done(run, "rotate-other") ??
          (run.record?.rotation?.completedAt !== undefined
            ? `${
              run.other!.label
            } was rotated already (incident ${run.record.incidentId}); not regenerated again`
            : undefined),
    run: async (run) => {
      const { options } = run;
      const other = run.other!;
      const compromised = run.compromised!;
      const resumed = await runStagedRotation({
        credentials: options.credentials,
        active: compromised.label,
        standby: other.label,
        tokenUrl: options.tokenUrl,
        ...(options.provider
          ? {
            provider: options.provider,
            ...(options.secretIds ? { secretIds: options.secretIds } : {}),
          }
          : { admin: genesysAdmin(run, "other") }),
        ...tokenRequestOptions(options),
        sink: options.sink,
        fetch: options.fetch,
        clock: run.clock,
        testAttempts: options.verifyAttempts,
        testDelayMs: options.verifyDelayMs,
        signal: options.signal,
        ...(options.journal ? { journal: innerRotationJournal(run) } : {}),
      });
      return `${other.label} has a new secret, proven and stored in ${options.sink.name}` +
        (resumed.resumed ? " (resumed without regenerating)" : "");
    },
    journalAfter: mark("rotate-other"),
    onFailure: (run, error) => ({
      message:
        `Could not rotate ${run.other!.label}: ${describeError(error)} ` +
        `${
          run.compromised!.label
        } still serves traffic with its compromised secret; nothing of it was changed. ` +
        `Fix the cause and run the incident response again at once.`,
    }),
  },
  {
    name: "propagate",
    abortable: true,
    skip: (run) =>
      run.options.awaitLoaded === undefined
        ? "no instances to wait for"
        : undefined,
    run: (run) =>
      run.options.awaitLoaded!({
        label: run.other!.label,
        active: false,
        signal: run.options.signal,
      }),
    journalAfter: mark("propagate"),
    onFailure: (run, error) => ({
      message:
        `Not every instance has loaded the secret of ${run.other!.label}: ${
          describeError(error)
        } ${
          run.wasActive ? run.compromised!.label : run.other!.label
        } still serves traffic; ${untouchedWords(run)}. ` +
        `Fix the instances named above (or wait longer) and run the incident response again at once.`,
    }),
  },
  {
    // Promote, then the proof that every instance serves the clean label:
    // only then is the compromised one taken away from anybody. Run again
    // on a resume: the wait after a promotion is what keeps calls working.
    name: "promote",
    abortable: true,
    run: async (run) => {
      const { options } = run;
      const other = run.other!;
      const switching = run.wasActive && options.active !== other.label;
      try {
        if (switching) await options.onPromote(other.label);
      } catch (error) {
        throw new PromoteStepError(false, error);
      }
      let served = `${other.label} serves traffic${
        run.wasActive ? " now" : " already"
      }`;
      if (options.awaitLoaded !== undefined) {
        try {
          served = `${served}; ${await options.awaitLoaded({
            label: other.label,
            active: true,
            signal: options.signal,
          })}`;
        } catch (error) {
          throw new PromoteStepError(true, error);
        }
      }
      return {
        detail: served,
        status: run.wasActive ? "completed" : "skipped",
      };
    },
    journalAfter: mark("promote"),
    onFailure: (run, error) => {
      const promoted = error instanceof PromoteStepError && error.promoted;
      const cause = error instanceof PromoteStepError ? error.cause : error;
      const other = run.other!.label;
      return {
        cause,
        message: promoted
          ? `${other} is the active label, but not every instance serves it yet: ${
            describeError(cause)
          } ${
            untouchedWords(run)
          }. Fix the instances named above (or wait longer) and run the incident response again at once.`
          : `Could not switch traffic to ${other}: ${describeError(cause)} ` +
            `${run.compromised!.label} still serves traffic; ${
              untouchedWords(run)
            }. Fix the cause and run the incident response again at once.`,
      };
    },
  },
  {
    name: "disable",
    abortable: true,
    skip: (run) =>
      !run.killTokens
        ? "outstanding tokens were left to expire (no --kill-tokens)"
        : done(run, "disable"),
    run: async (run) => {
      const id = run.compromised!.clientId;
      // Once sent it runs to its end: an interrupt that dropped the answer
      // would leave the client disabled with no record of it (nor a word).
      await genesysAdmin(run, "compromised").setClientState(
        id,
        "disabled",
      );
      return `${
        run.compromised!.label
      } disabled: its outstanding tokens are invalid, it can get no new ones`;
    },
    journalAfter: mark("disable"),
    onFailure: (run, error) => {
      const { label, clientId } = run.compromised!;
      return {
        message:
          `Could not disable OAuth client ${clientId} (${label}): ${
            describeError(error)
          } Its tokens are NOT invalidated and its secret is unchanged. Disable it under ` +
          `Admin > Integrations > OAuth, or fix the cause and run the incident response again.`,
      };
    },
  },
  {
    name: "regenerate",
    abortable: true,
    skip: (run) =>
      twoSecrets(run)
        ? run.done.has("regenerate")
          ? `the leaked secret of ${
            run.compromised!.label
          } was revoked already (incident ${run.record?.incidentId})`
          : undefined
        : run.done.has("store") || run.storedBefore
        ? `${
          run.compromised!.label
        }'s new secret is stored already (incident ${run.record?.incidentId}); not regenerated again`
        : undefined,
    journalBefore: (run) => ({ regenerateRequestedAt: run.clock.now() }),
    run: async (run) => {
      if (twoSecrets(run)) return await revokeCompromised(run);
      const id = run.compromised!.clientId;
      const provider = run.options.provider;
      if (provider !== undefined) {
        // Twin clients: the compromised client's only secret is replaced,
        // the old one dies with this call. No signal: its answer is the
        // only copy of the new secret.
        const issued = await provider.issueSecret(id);
        if (issued.clientId !== id) {
          throw new ConfigError(
            "provider",
            `${provider.name} issued a secret for client ${issued.clientId}, not ${id}`,
          );
        }
        run.secret = issued.secret;
      } else {
        // Not abortable: the answer is the only copy of the new secret.
        run.secret =
          (await genesysAdmin(run, "compromised").regenerateSecret(id)).secret;
      }
      return `${
        run.compromised!.label
      } has a new secret; the compromised one no longer gets tokens`;
    },
    onFailure: (run, error) => {
      const { label, clientId } = run.compromised!;
      if (twoSecrets(run)) {
        return {
          message:
            `Could not revoke the leaked secret of ${label} (OAuth client ${clientId}): ${
              describeError(error)
            } It still works; ${
              run.other!.label
            } serves traffic. Fix the cause and run the incident response again at once ` +
            `(or revoke it in ${run.options.provider!.name}'s console).`,
        };
      }
      return {
        message:
          `Could not regenerate the secret of OAuth client ${clientId} (${label}): ${
            describeError(error)
          } ` +
          (run.killTokens
            ? `It stays disabled (its compromised secret is still valid, so it must not be re-enabled): `
            : `Its compromised secret still works: `) +
          `fix the cause and run the incident response again.`,
      };
    },
  },
  {
    name: "store",
    abortable: false,
    skip: (run) =>
      twoSecrets(run)
        ? `nothing to store: ${
          run.compromised!.label
        } holds no secret until the next rotation issues one`
        : run.secret === undefined
        ? `already stored in ${run.options.sink.name}`
        : undefined,
    run: async (run) => {
      const { label, clientId } = run.compromised!;
      try {
        await run.options.sink.publish({
          label,
          clientId,
          secret: run.secret!,
        });
      } catch (error) {
        if (error instanceof AbortedError) throw error;
        // The new secret is lost, but it was never exposed: re-enabling is
        // safe and lets an ordinary rotation of the standby repair it.
        run.storeError = error;
        return {
          status: "failed",
          detail:
            `the new ${label} secret could not be stored in ${run.options.sink.name}: ${
              describeError(error)
            }`,
        };
      }
      return `stored the new ${label} secret in ${run.options.sink.name}`;
    },
    journalAfter: (run) =>
      run.storeError === undefined ? mark("store")(run) : {},
    onFailure: () => ({ message: "interrupted" }),
  },
  {
    name: "enable",
    abortable: false,
    skip: (run) =>
      !run.killTokens ? "it was never disabled" : done(run, "enable"),
    run: async (run) => {
      // Not abortable either: an interrupted run must not leave it disabled.
      await genesysAdmin(run, "compromised").setClientState(
        run.compromised!.clientId,
        "active",
      );
      return `${
        run.compromised!.label
      } active again: new tokens only, the old ones stay invalid`;
    },
    journalAfter: mark("enable"),
    onFailure: (run, error) => {
      const { label, clientId } = run.compromised!;
      return {
        message:
          `OAuth client ${clientId} (${label}) has a new secret but is still disabled: ${
            describeError(error)
          } Enable it under Admin > Integrations > OAuth (state Active) before promoting it again; ` +
          `its old tokens stay invalid either way.`,
      };
    },
  },
  {
    name: "verify",
    abortable: false,
    run: async (run) => {
      const { options } = run;
      const compromised = run.compromised!;
      if (run.storeError !== undefined) {
        throw new StoreLostError(run.storeError);
      }
      if (twoSecrets(run)) return await proveRefused(run);
      await proveCredential({
        tokenUrl: options.tokenUrl,
        label: compromised.label,
        clientId: compromised.clientId,
        secret: run.secret ?? secretOf(compromised),
        ...authMethodOf(compromised),
        ...tokenRequestOptions(options),
        attempts: options.verifyAttempts,
        delayMs: options.verifyDelayMs,
        fetch: options.fetch,
        clock: run.clock,
        signal: options.signal,
      });
      return `${compromised.label} got a token with its new secret`;
    },
    onFailure: (run, error) => {
      const { label, clientId } = run.compromised!;
      const other = run.other!.label;
      if (error instanceof CleanSecretRevokedError) {
        const revoked = run.revokedSecretId ?? run.record?.revokedSecretId;
        return {
          message:
            `${other}'s secret is refused and the leaked secret of ${label} (OAuth client ${clientId}) still gets tokens: ` +
            `the secret revoked as ${label}'s${
              revoked === undefined ? "" : `, ${revoked},`
            } was the one ${other} served with (the recorded secret ids, AUTH_SECRET_ID_${label.toUpperCase()} and ` +
            `AUTH_SECRET_ID_${other.toUpperCase()}, are wrong or swapped). ${other} is failing now. Do not revoke the ` +
            `secret left: it is the only one that works. Switch traffic to ${label} at once, record the right secret ` +
            `ids, then respond to ${label} as the active label (it rotates ${other}, promotes it and revokes the leaked ` +
            `secret): ${
              run.options.commands?.fresh ?? "run it again with fresh: true"
            }.`,
        };
      }
      if (error instanceof LeakedSecretWorksError) {
        return {
          message:
            `The leaked secret of ${label} (OAuth client ${clientId}) still gets tokens after it was revoked: ${error.message} ` +
            `${other} serves traffic. Check the client's secrets in ${
              run.options.provider!.name
            } (revoke every secret ${other} does not use), then run deno task verify.`,
        };
      }
      if (error instanceof StoreLostError) {
        return {
          step: "store",
          cause: undefined,
          message:
            `The secret of OAuth client ${clientId} (${label}) was regenerated, but the new one could not be ` +
            `stored in ${run.options.sink.name}, so nobody holds it. ${other} serves traffic. Fix the cause, then ` +
            `regenerate ${label} again with an ordinary rotation of the standby.`,
        };
      }
      return {
        message:
          `The new secret of ${label} (${clientId}) is stored but got no token yet: ${
            describeError(error)
          } ${other} serves traffic, so nothing is down; check again in a minute (deno task verify).`,
      };
    },
  },
];

/**
 * Two-secret providers: which listed secret is the compromised label's, by
 * its recorded id or as the one the clean label does not use, and whether
 * the client still holds it. Reads nothing; throws a `ConfigError` when it
 * cannot be told safely (a dry run reports the same refusal).
 */
function leakedSecretOf(
  run: IncidentRun,
  listed: readonly ProviderSecretInfo[],
): { id?: string; live: boolean; inferred: boolean } {
  const { options } = run;
  const provider = options.provider!;
  const { label, clientId } = run.compromised!;
  const other = run.other!.label;
  // What the clean label uses: the secret the other label was just rotated
  // to, or the one recorded with it.
  const clean = run.record?.rotation?.secretId ?? options.secretIds?.[other];
  const leaked = secretOf(run.compromised!).reveal();
  let id = options.secretIds?.[label];
  const inferred = id === undefined;
  if (inferred) {
    // Never one whose value, as the provider shows its beginning, is not
    // the leaked one's.
    const rest = (clean === undefined
      ? listed.length <= 1 ? [] : listed
      : listed.filter((s) =>
        s.secretId !== clean
      )).filter((s) => maybeSecretOf(s, leaked));
    if (rest.length > 1) {
      throw new ConfigError(
        "secretIds",
        `cannot tell which secret of OAuth client ${clientId} is the leaked one of "${label}" ` +
          `(${provider.name} lists ${
            listed.map((s) =>
              s.secretId
            ).join(", ")
          }; "${other}" uses ${
            clean ?? "an unrecorded one"
          }); nothing was revoked. Revoke it in ${provider.name}'s console, or record its id ` +
          `(AUTH_SECRET_ID_${label.toUpperCase()}) and run the incident response again.`,
      );
    }
    id = rest[0]?.secretId;
  }
  if (id !== undefined && id === clean) {
    // The one rule that must never break.
    throw new ConfigError(
      "secretIds",
      `refusing to revoke ${id}: "${other}" serves traffic with it`,
    );
  }
  const live = id !== undefined && listed.some((s) => s.secretId === id);
  const info = listed.find((s) => s.secretId === id);
  if (live && info !== undefined && !maybeSecretOf(info, leaked)) {
    // The provider shows the beginning of each value: the recorded id is
    // not the leaked secret (copied or swapped), whoever's it is.
    throw new ConfigError(
      "secretIds",
      `${id}, recorded for "${label}", is not its leaked secret: ${provider.name} shows the beginning of each ` +
        `secret's value, and ${id}'s is not the one "${label}" holds. The recorded ids are wrong or swapped ` +
        `(AUTH_SECRET_ID_${label.toUpperCase()}, AUTH_SECRET_ID_${other.toUpperCase()}); nothing was revoked. ` +
        `Record the right ones (${provider.name}'s console shows each secret's id), then run the incident response again.`,
    );
  }
  if (live && clean === undefined && info?.hint === undefined) {
    // A recorded id alone is no proof: copied from the other label, or never
    // updated, it names the secret the clean label serves with. (A hint of
    // its value that is the leaked one's, checked above, is.)
    throw new ConfigError(
      "secretIds",
      `cannot tell that ${id} (recorded for "${label}") is not the secret "${other}" serves with: ` +
        `which one "${other}" uses is not recorded (AUTH_SECRET_ID_${other.toUpperCase()}); nothing was revoked. ` +
        `Find the id of "${other}"'s secret in ${provider.name}'s console and record it, or revoke the leaked ` +
        `secret there, then run the incident response again.`,
    );
  }
  const cleanSecret = listed.find((s) => s.secretId === clean);
  if (
    live && cleanSecret?.status === "rotated" &&
    listed.find((s) => s.secretId === id)?.status === "active"
  ) {
    // Keycloak: a main secret ends only when a new one is issued, which
    // drops the rotated one, and the clean label serves with that one.
    throw new ConfigError(
      "secretIds",
      `the leaked secret ${id} of "${label}" is ${provider.name}'s main secret and "${other}" serves with the ` +
        `rotated one (${clean}${
          cleanSecret.expiresAt === undefined
            ? ""
            : `, valid until ${new Date(cleanSecret.expiresAt).toISOString()}`
        }): ${provider.name} ends a main secret only by issuing a new one, which drops the rotated one, so no ` +
        `step here can end it without "${other}" failing. Nothing was changed. To end it now at the cost of a short ` +
        `failure of "${other}": regenerate the client's secret in ${provider.name}'s admin console (the leaked one becomes the ` +
        `rotated one), set "${other}"'s secret to the new value at once (AUTH_CLIENT_SECRET_${other.toUpperCase()}), ` +
        `invalidate the rotated secret, then run deno task verify.`,
    );
  }
  return id === undefined ? { live, inferred } : { id, live, inferred };
}

/**
 * Two-secret providers: revokes the compromised label's secret by id, at
 * once (no revoke gate: it is compromised), never the one the clean label
 * uses, and journals it before anything else. Gone already (a re-run, or
 * a rotation revoked it): nothing to call.
 */
async function revokeCompromised(run: IncidentRun): Promise<string> {
  const { options } = run;
  const provider = options.provider!;
  const { label, clientId } = run.compromised!;
  const signal = options.signal;
  const client = await provider.inspectClient(clientId, { signal });
  const found = leakedSecretOf(run, client.secrets ?? []);
  const { id } = found;
  // Not recorded, only the secret the clean label does not use: another
  // service's, say, when the leaked one is dead already. With a hint of its
  // value that is the leaked one's, it is that one (a token request could
  // be refused while a new secret propagates, Entra ID); without a hint,
  // only while the leaked secret still gets a token.
  const hinted = client.secrets?.find((s) => s.secretId === id)?.hint !==
    undefined;
  const live = found.live &&
    (!found.inferred || hinted ||
      !await secretRefused(run, run.compromised!));
  if (found.live && !live) {
    run.done.add("regenerate");
    await writeIncidentJournal(run, { done: [...run.done] }).catch(() => {});
    return `the leaked secret of ${label} gets no token already, so ${id} (not recorded for ${label}, ` +
      `the one ${run.other!.label} does not use) is not it: nothing revoked`;
  }
  if (live) await provider.revokeSecret!(clientId, id!, { signal });
  // Before the journal: a run stopped in between tells it again.
  if (id !== undefined) {
    await options.onSecretRevoked?.({ label, secretId: id });
  }
  run.revokedSecretId = id;
  run.done.add("regenerate");
  await writeIncidentJournal(run, {
    done: [...run.done],
    ...(id === undefined ? {} : { revokedSecretId: id }),
  }).catch(() => {});
  return live
    ? `revoked ${id}, the leaked secret of ${label}, at once (no revoke gate: it is compromised); ` +
      `${label} holds no secret until the next rotation issues one`
    : `${label} holds no live secret of ${provider.name}${
      id === undefined ? "" : ` (${id} is gone already)`
    }: nothing to revoke`;
}

/**
 * One token request with a label's secret as the response holds it: whether
 * the token endpoint refuses it. Any other failure is thrown: it says
 * nothing of the secret.
 */
async function secretRefused(
  run: IncidentRun,
  credential: CredentialInput,
): Promise<boolean> {
  const { options } = run;
  try {
    await oneTokenRequest(
      options.tokenUrl,
      { ...credential, ...authMethodOf(credential) },
      secretOf(credential),
      {
        clock: run.clock,
        fetchFn: options.fetch ??
          ((input: RequestInfo | URL, init?: RequestInit) =>
            globalThis.fetch(input, init)),
        signal: options.signal,
        ...tokenRequestOptions(options),
      },
    );
    return false;
  } catch (error) {
    if (error instanceof CredentialRejectedError) return true;
    throw error;
  }
}

/**
 * Two-secret providers: the proof that the leaked secret no longer gets a
 * token, retried while a revocation may still be propagating.
 */
async function proveRefused(run: IncidentRun): Promise<string> {
  const { options } = run;
  const compromised = run.compromised!;
  const attempts = Math.max(1, options.verifyAttempts ?? 10);
  let wait = Math.max(0, options.verifyDelayMs ?? 1000);
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      if (await secretRefused(run, compromised)) {
        return `the token endpoint refuses the leaked secret of ${compromised.label}`;
      }
      last = new LeakedSecretWorksError(
        `a token request with it succeeded (${attempt} of ${attempts} tried).`,
      );
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      last = error;
    }
    if (attempt < attempts) {
      await delay(wait, run.clock, options.signal);
      wait = Math.min(wait * 2, 5_000);
    }
  }
  if (
    last instanceof LeakedSecretWorksError && !run.wasActive &&
    await secretRefused(run, run.other!).catch(() => false)
  ) {
    // The clean label kept its own secret (nothing was rotated) and it is
    // refused now: the id revoked was its secret, not the leaked one (the
    // recorded ids were wrong or swapped), and the secret left is the only
    // one that works.
    throw new CleanSecretRevokedError();
  }
  // The last answer: the secret worked, or the endpoint did not say.
  throw last;
}

/** The leaked secret still got a token after it was revoked. */
class LeakedSecretWorksError extends Error {}

/** After the revocation the clean label's secret is refused and the leaked one works. */
class CleanSecretRevokedError extends Error {}

/** The credential's token endpoint auth method, when it has one. */
function authMethodOf(
  credential: CredentialInput,
): { authMethod?: TokenAuthMethod } {
  return credential.authMethod === undefined
    ? {}
    : { authMethod: credential.authMethod };
}

/** A credential's secret, given as text or as a {@linkcode Secret}. */
function secretOf(credential: CredentialInput): Secret {
  const secret = credential.clientSecret;
  return typeof secret === "string" ? new Secret(secret) : secret;
}

/** The plan refuses: its message is the whole story (no cause). */
class PlanRefusal extends Error {}

/** The promote step's failure: before the switch, or while waiting for the instances after it. */
class PromoteStepError extends Error {
  constructor(readonly promoted: boolean, cause: unknown) {
    super("promote step failed", { cause });
  }
}

/** The new secret of the compromised label was not stored; reported once it is re-enabled. */
class StoreLostError extends Error {
  constructor(cause: unknown) {
    super("the new secret was not stored", { cause });
  }
}

/**
 * Reads the journal: an unfinished response of the same compromised
 * credential is resumed (what it completed is not done again); another one
 * is refused unless `fresh`.
 */
async function resumeFromJournal(run: IncidentRun): Promise<void> {
  const { options } = run;
  const compromised = run.compromised!;
  const previous = options.fresh ? undefined : await options.journal?.read();
  if (previous === undefined || previous.completedAt !== undefined) return;
  const started = `started ${new Date(previous.startedAt).toISOString()}`;
  const maxAge = options.maxJournalAgeMs ?? 86_400_000;
  const same = previous.compromised === compromised.label &&
    previous.clientId === compromised.clientId &&
    previous.sink === options.sink.name;
  const stale = run.clock.now() - previous.startedAt > maxAge;
  if (!same || stale) {
    const why = same ? "too old to resume safely" : "not the one asked for now";
    if (
      previous.done.includes("disable") && !previous.done.includes("enable")
    ) {
      // That response left its client disabled: finishing it comes first.
      throw new PlanRefusal(
        `The incident journal holds an unfinished response (${started}) for "${previous.compromised}" ` +
          `(OAuth client ${previous.clientId}, ${previous.sink}), ${why}; it left OAuth client ${previous.clientId} ` +
          `disabled. Finish that response first (run it again for "${previous.compromised}"), or enable the client ` +
          `under Admin > Integrations > OAuth; to start over anyway, ${
            options.commands?.fresh ?? "run it again with fresh: true"
          }.`,
      );
    }
    if (
      !same &&
      (previous.rotation?.regenerateRequestedAt !== undefined ||
        previous.rotation?.regeneratedAt !== undefined ||
        previous.done.includes("rotate-other"))
    ) {
      // It rotated the other label (the clean one): another response would
      // regenerate that secret again, and leave this one's leaked credential
      // serving traffic.
      throw new PlanRefusal(
        `The incident journal holds an unfinished response (${started}) for "${previous.compromised}" ` +
          `(OAuth client ${previous.clientId}, ${previous.sink}), ${why}; it rotated "${previous.other}" already ` +
          `(done: ${previous.done.join(", ")}). ` +
          `Finish that response first (run it again for "${previous.compromised}"); to start over anyway, ${
            options.commands?.fresh ?? "run it again with fresh: true"
          }.`,
      );
    }
    run.note =
      `an unfinished response for "${previous.compromised}" (${started}) is not resumed (${why}); starting afresh`;
    return;
  }
  run.record = previous;
  run.done = new Set(previous.done);
  run.wasActive = previous.wasActive;
  // Disabled by the earlier run: it must be enabled again by this one.
  run.killTokens = run.killTokens ||
    (previous.killTokens && run.done.has("disable"));
  run.storedBefore = previous.fingerprintSalt !== undefined &&
    previous.compromisedFingerprintBefore !== undefined &&
    await fingerprintSecret(
        secretOf(compromised).reveal(),
        previous.fingerprintSalt,
      ) !== previous.compromisedFingerprintBefore;
  run.resumedFrom =
    `resuming incident ${previous.incidentId} (${started}; done: ${
      previous.done.join(", ") || "nothing"
    })`;
}

/** Merges changes into the incident's journal record, creating it on the first write. */
async function writeIncidentJournal(
  run: IncidentRun,
  changes: Partial<IncidentJournalRecord>,
): Promise<void> {
  const { options } = run;
  const compromised = run.compromised!;
  let base = run.record;
  if (base === undefined) {
    const salt = crypto.randomUUID();
    base = {
      version: 1,
      kind: "incident",
      incidentId: crypto.randomUUID(),
      compromised: compromised.label,
      clientId: compromised.clientId,
      other: run.other!.label,
      sink: options.sink.name,
      previousActive: options.active,
      wasActive: run.wasActive,
      killTokens: run.killTokens,
      startedAt: run.clock.now(),
      done: [],
      fingerprintSalt: salt,
      compromisedFingerprintBefore: await fingerprintSecret(
        secretOf(compromised).reveal(),
        salt,
      ),
    };
  }
  const next: IncidentJournalRecord = Object.freeze({ ...base, ...changes });
  run.record = next;
  await options.journal?.write(next);
}

/** The other label's staged rotation keeps its journal inside the incident's. */
function innerRotationJournal(run: IncidentRun): RotationJournal {
  return {
    read: () => Promise.resolve(run.record?.rotation),
    write: (rotation) => writeIncidentJournal(run, { rotation }),
  };
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
  const reload = reloadWait(path, options);
  return async ({ label, active, signal }) => {
    if (!active) {
      return `services that follow ${path} read ${label}'s secret with the active label (the wait follows the promotion)`;
    }
    return await reload(signal);
  };
}

/** Options of {@linkcode envFileRevokeGate}. */
export interface EnvFileRevokeGateOptions
  extends EnvFileLoadProofOptions, PresenceGateOptions {}

/**
 * The revoke gate of a two-secret rotation for services that follow an env
 * file. Its floor is the reload wait (the same as
 * {@linkcode envFileLoadProof}: `reloadWaitMs` after the file's last
 * write). Then the evidence: the presence files of the processes that
 * announce themselves (`followSource`'s `presence`, in
 * `<env file>.presence/`). It waits, up to `gateTimeoutMs`, while a live
 * one serves with the old secret or served a token of it that still lives, and then
 * rejects with `REVOKE_GATE_IN_USE` naming them; a stale file whose
 * process is gone is ignored and reported. With no presence at all, the
 * reload wait alone opens it, and its line says so.
 *
 * @param path The env file the services follow.
 * @param options The wait, the gate's timeout, the variable names, progress
 *   and the clock.
 * @returns The `revokeGate` of `runStagedRotation`.
 *
 * @example The gate resolves once the reload wait has passed
 * ```ts
 * import { envFileRevokeGate } from "@rotating/dual-secret-auth/rotation";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "GENESYS_ACTIVE=green\n");
 * const gate = envFileRevokeGate(path, { reloadWaitMs: 50 });
 * const line = await gate({ label: "blue", clientId: "c", secretId: "s1" });
 * if (!line.includes("re-read it") || !line.includes("no live process")) {
 *   throw new Error(line);
 * }
 * await Deno.remove(path);
 * ```
 */
export function envFileRevokeGate(
  path: string,
  options: EnvFileRevokeGateOptions = {},
): (request: RevokeRequest) => Promise<string> {
  const reload = reloadWait(path, options);
  return async ({ label, signal }) => {
    const waited = await reload(signal);
    return `${waited}; ${await awaitPresenceGate(
      path,
      label,
      options,
      signal,
    )}`;
  };
}

/** The one reload wait of env-file followers: `reloadWaitMs` after the file's last write. */
function reloadWait(
  path: string,
  options: EnvFileLoadProofOptions,
): (signal?: AbortSignal) => Promise<string> {
  const reloadWaitMs = options.reloadWaitMs ?? DEFAULT_RELOAD_WAIT_MS;
  const clock = options.clock ?? systemClock;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return async (signal) => {
    const written = (await Deno.stat(path)).mtime?.getTime() ?? clock.now();
    const wait = Math.max(0, written + reloadWaitMs - clock.now());
    if (wait > 0) await delay(wait, clock, signal);
    return `services that follow ${path} re-read it within ${
      seconds(reloadWaitMs)
    } (--reload-wait): waited ${seconds(wait)}`;
  };
}
