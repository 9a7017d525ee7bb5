/**
 * The one step runner of every operator flow (staged rotation, promotion,
 * incident): a flow is a table of {@linkcode StepSpec}s walked in order over
 * one state. Each step says when it is skipped, what it journals before it
 * acts (so a crash after the act is seen by the next run), what it runs,
 * what it journals after, and, on failure, the state things are in and the
 * next step. The runner emits the step events, honours the abort signal
 * between steps, and turns a failure into the flow's own error, a
 * {@linkcode StepFailedError} naming the flow and the step.
 *
 * @module
 */
import { AbortedError, DualSecretAuthError } from "../errors.ts";

/** The operator flows the one step runner runs. */
export type StepFlow = "rotation" | "promotion" | "incident" | "setup";

/**
 * A step of an operator flow failed. Every flow's error extends it
 * (`StagedRotationError`, `PromotionError`, `IncidentError`,
 * `TwinSetupError`), so one `catch` handles them all; `code` stays the
 * flow's own, and the cause is the step's failure.
 *
 * @example Catch every flow's failure with one class
 * ```ts
 * import { runSteps, StepFailedError, type StepSpec } from "@rotating/dual-secret-auth/rotation";
 *
 * const steps: StepSpec<object, "plan", never, string>[] = [
 *   { name: "plan", abortable: true, run: () => Promise.reject(new Error("boom")), onFailure: () => "nothing changed" },
 * ];
 * try {
 *   await runSteps(steps, {}, {
 *     emit: () => {},
 *     fail: (step, report, error) =>
 *       new StepFailedError("MY_FLOW_FAILED", `Step ${step} failed.`, {
 *         flow: "rotation",
 *         step,
 *         state: report,
 *         nextStep: "run it again",
 *       }, { cause: error }),
 *   });
 *   throw new Error("not reached");
 * } catch (error) {
 *   if (!(error instanceof StepFailedError) || error.step !== "plan") throw error;
 * }
 * ```
 */
export class StepFailedError extends DualSecretAuthError {
  /** The flow that failed. */
  readonly flow: StepFlow;
  /** The step that failed, as the flow names it. */
  readonly step: string;
  /**
   * The state things are in, for people; `undefined` when the flow's
   * message says it together with the next step (incident, set-up).
   */
  readonly state: string | undefined;
  /**
   * What to do next, for people; `undefined` when the flow's message says
   * it together with the state (incident, set-up).
   */
  readonly nextStep: string | undefined;

  /**
   * Creates the error.
   *
   * @param code The flow's stable code.
   * @param message What failed, the state now and what to do.
   * @param context The flow, the step, and the state and next step when
   *   known apart from the message.
   * @param options The step's failure, as cause.
   */
  constructor(
    code: string,
    message: string,
    context: {
      readonly flow: StepFlow;
      readonly step: string;
      readonly state?: string;
      readonly nextStep?: string;
    },
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.flow = context.flow;
    this.step = context.step;
    this.state = context.state;
    this.nextStep = context.nextStep;
  }
}

/** What happened to a step; `progress` is a line while a step waits or retries. */
export type StepStatus =
  | "started"
  | "progress"
  | "completed"
  | "skipped"
  | "failed";

/**
 * What a step's `run` may return: a detail line (the step completed), or
 * the detail with another status (a step that found nothing to do after
 * looking, or one whose failure is reported later by another step).
 */
export type StepOutcome = string | {
  /** The line for people. */
  readonly detail: string;
  /**
   * How the step ended.
   *
   * @default "completed"
   */
  readonly status?: "completed" | "skipped" | "failed";
};

/**
 * One step of a flow, over the flow's state `S`, with journal changes `J`
 * and failure reports `F`.
 */
export interface StepSpec<S, N extends string, J, F> {
  /** The step's name, as events and errors name it. */
  readonly name: N;
  /**
   * Whether the abort signal is checked before the step. A step whose act
   * must run to its end once sent (the call that issues a secret) checks it
   * itself before sending, never after.
   */
  readonly abortable: boolean;
  /**
   * Whether the step runs in a dry run (planning, pre-flight checks, the
   * closing line); every other step is skipped with "dry run".
   *
   * @default false
   */
  readonly inDryRun?: boolean;
  /**
   * The detail of the step's `skipped` event in a dry run (such as what it
   * would do).
   *
   * @default "dry run"
   */
  readonly dryRunDetail?: (state: S) => string;
  /**
   * Why the step is skipped now, or `undefined` to run it.
   *
   * @default never skipped
   */
  readonly skip?: (state: S) => string | undefined;
  /**
   * What to journal before the step acts; a failure to write fails the step
   * with nothing done.
   *
   * @default nothing
   */
  readonly journalBefore?: (state: S) => J;
  /** The step's work; its detail line for people. */
  readonly run: (state: S) => Promise<StepOutcome>;
  /**
   * What to journal after the step succeeded. Advisory: the work is done,
   * and a journal that cannot record it must not undo it.
   *
   * @default nothing
   */
  readonly journalAfter?: (state: S) => J;
  /**
   * The failure report: the state things are in and the next step.
   * `acted` is false when the step failed before its work began (the abort
   * check, the journal write before it).
   */
  readonly onFailure: (state: S, error: unknown, acted: boolean) => F;
}

/** How {@linkcode runSteps} reports, journals and fails, for one flow. */
export interface StepRunnerHooks<S, N extends string, J, F> {
  /** Receives every step event (`started`, `completed`, `skipped`, `failed`). */
  readonly emit: (step: N, status: StepStatus, detail?: string) => void;
  /**
   * Writes journal changes. Absent: nothing is journaled.
   *
   * @default undefined (no journal)
   */
  readonly journal?: (state: S, changes: J) => Promise<void>;
  /**
   * The abort signal, checked before every abortable step.
   *
   * @default undefined
   */
  readonly signal?: AbortSignal;
  /**
   * Run only the steps marked `inDryRun`, and journal nothing.
   *
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Awaited after every step that completed or was skipped (a test's
   * failpoint: the process may be killed there).
   *
   * @default undefined
   */
  readonly after?: (step: N, state: S) => void | Promise<void>;
  /**
   * The error thrown for a failed step: the flow's own subclass of
   * {@linkcode StepFailedError}, or an {@linkcode AbortedError} when the
   * run was interrupted.
   */
  readonly fail: (
    step: N,
    report: F,
    error: unknown,
    state: S,
  ) => StepFailedError | AbortedError;
  /**
   * The line of the `failed` event.
   *
   * @default the report's text when it is a string, else the error's message
   */
  readonly failedDetail?: (error: unknown, report: F) => string;
}

/**
 * Walks a flow's step table over its state: skip, or check the signal,
 * journal before, run, journal after; a failure becomes the flow's error.
 *
 * @param steps The flow's table, in order.
 * @param state The flow's state, shared by its steps.
 * @param hooks How the flow reports, journals and fails.
 * @returns Once every step completed or was skipped.
 * @throws What `hooks.fail` returns for the first failed step.
 *
 * @example Two steps, the second skipped
 * ```ts
 * import { runSteps, StepFailedError, type StepSpec } from "@rotating/dual-secret-auth/rotation";
 *
 * type S = { done: string[] };
 * const steps: StepSpec<S, "a" | "b", never, string>[] = [
 *   { name: "a", abortable: true, run: (s) => Promise.resolve(String(s.done.push("a"))), onFailure: () => "a failed" },
 *   { name: "b", abortable: true, skip: () => "not needed", run: () => Promise.resolve("b"), onFailure: () => "b failed" },
 * ];
 * const events: string[] = [];
 * await runSteps(steps, { done: [] }, {
 *   emit: (step, status) => events.push(`${step}:${status}`),
 *   fail: (step, report) =>
 *     new StepFailedError("MY_FLOW_FAILED", report, { flow: "rotation", step }),
 * });
 * if (events.join() !== "a:started,a:completed,b:skipped") throw new Error(events.join());
 * ```
 */
export async function runSteps<S, N extends string, J, F>(
  steps: readonly StepSpec<S, N, J, F>[],
  state: S,
  hooks: StepRunnerHooks<S, N, J, F>,
): Promise<void> {
  for (const step of steps) {
    await runStep(step, state, hooks);
  }
}

async function runStep<S, N extends string, J, F>(
  step: StepSpec<S, N, J, F>,
  state: S,
  hooks: StepRunnerHooks<S, N, J, F>,
): Promise<void> {
  const skipped = hooks.dryRun && !step.inDryRun
    ? step.dryRunDetail?.(state) ?? "dry run"
    : step.skip?.(state);
  if (skipped !== undefined) {
    hooks.emit(step.name, "skipped", skipped);
    await hooks.after?.(step.name, state);
    return;
  }
  hooks.emit(step.name, "started");
  let outcome: StepOutcome;
  let acted = false;
  try {
    if (step.abortable && hooks.signal?.aborted) {
      throw new AbortedError({ cause: hooks.signal.reason });
    }
    if (step.journalBefore && hooks.journal && !hooks.dryRun) {
      await hooks.journal(state, step.journalBefore(state));
    }
    acted = true;
    outcome = await step.run(state);
  } catch (error) {
    const report = step.onFailure(state, error, acted);
    hooks.emit(
      step.name,
      "failed",
      hooks.failedDetail?.(error, report) ??
        (typeof report === "string"
          ? report
          : error instanceof Error
          ? error.message
          : String(error)),
    );
    throw hooks.fail(step.name, report, error, state);
  }
  if (step.journalAfter && hooks.journal && !hooks.dryRun) {
    // Advisory: the work is done; a journal that cannot record it must not
    // undo it (a re-run works it out from where the secrets are stored).
    await hooks.journal(state, step.journalAfter(state)).catch(() => {});
  }
  const { detail, status } = typeof outcome === "string"
    ? { detail: outcome, status: "completed" as const }
    : { detail: outcome.detail, status: outcome.status ?? "completed" };
  hooks.emit(step.name, status, detail);
  await hooks.after?.(step.name, state);
}
