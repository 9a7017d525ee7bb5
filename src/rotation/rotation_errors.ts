/**
 * The errors of a staged rotation: one code per failing phase, and the
 * journal's refusal to resume an unfinished rotation silently.
 *
 * @module
 */
import { AbortedError, DualSecretAuthError } from "../errors.ts";
import { describeError } from "./describe_error.ts";
import { StepFailedError } from "./runner.ts";
import type { RotationJournalRecord, RotationPhase } from "./journal.ts";

/** The stable codes of {@linkcode StagedRotationError}, one per failing phase. */
export const RotationErrorCode: {
  readonly PLAN_FAILED: "ROTATION_PLAN_FAILED";
  readonly REGENERATE_FAILED: "ROTATION_REGENERATE_FAILED";
  readonly TEST_FAILED: "ROTATION_TEST_FAILED";
  readonly PUBLISH_FAILED: "ROTATION_PUBLISH_FAILED";
  readonly PROMOTE_FAILED: "ROTATION_PROMOTE_FAILED";
  readonly RETIRE_FAILED: "ROTATION_RETIRE_FAILED";
  readonly DONE_FAILED: "ROTATION_DONE_FAILED";
} = Object.freeze(
  {
    PLAN_FAILED: "ROTATION_PLAN_FAILED",
    REGENERATE_FAILED: "ROTATION_REGENERATE_FAILED",
    TEST_FAILED: "ROTATION_TEST_FAILED",
    PUBLISH_FAILED: "ROTATION_PUBLISH_FAILED",
    PROMOTE_FAILED: "ROTATION_PROMOTE_FAILED",
    RETIRE_FAILED: "ROTATION_RETIRE_FAILED",
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
  retire: RotationErrorCode.RETIRE_FAILED,
  done: RotationErrorCode.DONE_FAILED,
};

/**
 * A staged rotation failed. The message says in which phase, in what state
 * things are (which credential serves traffic, whether the standby's secret
 * changed, whether it was stored) and what to run next.
 */
export class StagedRotationError extends StepFailedError {
  /** The flow: always `"rotation"`. */
  declare readonly flow: "rotation";
  /** The step that failed: the same as {@linkcode StagedRotationError.phase}. */
  declare readonly step: RotationPhase;
  /** The phase that failed. */
  readonly phase: RotationPhase;
  /** The label still serving traffic. */
  readonly active: string;
  /** The label being rotated. */
  readonly standby: string;
  /** The state things are in, for people. */
  declare readonly state: string;
  /** What to do next, for people. */
  declare readonly nextStep: string;
  /** Whether the run stopped because its signal aborted (Ctrl-C). */
  readonly interrupted: boolean;

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
    super(
      CODE_OF_PHASE[phase],
      `Rotation of "${context.standby}" failed in phase ${phase}.${reason} ` +
        `State: ${context.state} Next: ${context.nextStep}`,
      {
        flow: "rotation",
        step: phase,
        state: context.state,
        nextStep: context.nextStep,
      },
      options,
    );
    this.phase = phase;
    this.active = context.active;
    this.standby = context.standby;
    this.interrupted = options?.cause instanceof AbortedError;
  }
}

/** The codes of {@linkcode RotationJournalError}. */
export const RotationJournalErrorCode: {
  readonly STALE: "ROTATION_JOURNAL_STALE";
  readonly MISMATCH: "ROTATION_JOURNAL_MISMATCH";
} = Object.freeze(
  {
    STALE: "ROTATION_JOURNAL_STALE",
    MISMATCH: "ROTATION_JOURNAL_MISMATCH",
  } as const,
);

/** The journal holds an unfinished rotation this run must not resume silently. */
export class RotationJournalError extends DualSecretAuthError {
  /** The unfinished record. */
  readonly record: RotationJournalRecord;

  /**
   * Creates the error.
   *
   * @param code Stale or mismatch.
   * @param record The unfinished record.
   * @param message What it is and what to run.
   */
  constructor(
    code:
      typeof RotationJournalErrorCode[keyof typeof RotationJournalErrorCode],
    record: RotationJournalRecord,
    message: string,
  ) {
    super(code, message);
    this.record = record;
  }
}

/**
 * A failure in words for people: the one describer's words
 * ({@linkcode safeMessage}), after the code of the library's own errors.
 *
 * @param error What was thrown.
 * @returns One line, never a secret.
 */
export function describe(error: unknown): string {
  return error instanceof DualSecretAuthError
    ? `${error.code}: ${safeMessage(error)}`
    : safeMessage(error);
}

/**
 * A cause's message when it is known to hold no secret: the library's own
 * errors and Deno's I/O errors (which name paths, not contents). A sink's
 * own error might quote what it was given, so only its name is shown.
 *
 * @param error What was thrown.
 * @returns The message, or only the error's name.
 */
export function safeMessage(error: unknown): string {
  // One rule with the tooling's reports: operator words, no secret.
  return describeError(error).replace(/\.$/, "");
}
