/**
 * Promotion on its own: switch the active credential to a label whose secret
 * is already in place. It proves the target with a real token request, then
 * publishes the new active label; it never regenerates anything.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import {
  type CredentialInput,
  resolveConfig,
  type ResolvedConfig,
  type ResolvedCredential,
} from "../config.ts";
import {
  AbortedError,
  ConfigError,
  CredentialRejectedError,
  DualSecretAuthError,
} from "../errors.ts";
import type { TokenGrant } from "../token_endpoint.ts";
import type { RotationJournal } from "./journal.ts";
import { proveSecret } from "./proof.ts";
import { runSteps, StepFailedError, type StepSpec } from "./runner.ts";

/** Options of {@linkcode runPromotion}. */
export interface PromotionOptions {
  /** The credentials, such as blue and green, with their current secrets. */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic now. */
  readonly active: string;
  /**
   * The label to switch to (with two credentials, the one not active).
   *
   * @default the credential that is not active
   */
  readonly to?: string;
  /** The token endpoint the target is proven against. */
  readonly tokenUrl: string;
  /**
   * The scope the proof's token request asks for, as the service requests
   * it (Okta and Entra ID refuse a request without one).
   *
   * @default undefined (no `scope` parameter)
   */
  readonly scope?: string | readonly string[];
  /**
   * Further parameters of the proof's token request, such as Auth0's
   * `{ audience }`.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /** Publishes the new active label (such as writing `GENESYS_ACTIVE`). */
  readonly publishActive: (label: string) => Promise<void> | void;
  /** The rotation journal: a finished rotation of the target is marked promoted. */
  readonly journal?: RotationJournal;
  /**
   * Check everything and prove the target, but publish nothing.
   *
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * How long transient failures of the proof (rate limits, an unreachable
   * endpoint) are retried. A rejected secret is not retried.
   *
   * @default 30_000
   */
  readonly retryForMs?: number;
  /**
   * The fetch for the token request.
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
  /** Stops the promotion before it publishes. */
  readonly signal?: AbortSignal;
  /** Receives a line before each wait of the proof's retries. */
  readonly onProgress?: (line: string) => void;
}

/** What a promotion did. No secrets. */
export interface PromotionReport {
  /** Whether this was a dry run. */
  readonly dryRun: boolean;
  /** The label that served traffic before. */
  readonly previousActive: string;
  /** The label serving traffic now. */
  readonly active: string;
  /** Whether the active label changed (false when the target was active already). */
  readonly changed: boolean;
  /** The target's OAuth client id. */
  readonly clientId: string;
  /** Lifetime of the token the proof got, in seconds. */
  readonly tokenLifetimeSeconds?: number;
  /** What to do next, for people. */
  readonly nextStep: string;
}

/** The code of {@linkcode PromotionError}. */
export const PROMOTION_FAILED = "PROMOTION_FAILED" as const;

/** A promotion failed; the active label was not changed. */
export class PromotionError extends StepFailedError {
  /** The flow: always `"promotion"`. */
  declare readonly flow: "promotion";
  /** The step that failed. */
  declare readonly step: PromotionStep;
  /** The label still serving traffic. */
  readonly active: string;
  /** The label that was to be promoted. */
  readonly target: string;
  /** The state things are in, for people. */
  declare readonly state: string;
  /** What to do next, for people. */
  declare readonly nextStep: string;
  /** Whether the run stopped because its signal aborted (Ctrl-C). */
  readonly interrupted: boolean;

  /**
   * Creates the error.
   *
   * @param context The labels, state and next step, and the failed step
   *   (`@default "plan"`, for callers that predate it).
   * @param options The failure, as cause.
   */
  constructor(
    context: {
      active: string;
      target: string;
      state: string;
      nextStep: string;
      step?: PromotionStep;
    },
    options?: ErrorOptions,
  ) {
    const reason = options?.cause instanceof DualSecretAuthError
      ? ` ${options.cause.message}`
      : "";
    super(
      PROMOTION_FAILED,
      `Promotion of "${context.target}" failed.${reason} State: ${context.state} Next: ${context.nextStep}`,
      {
        flow: "promotion",
        step: context.step ?? "plan",
        state: context.state,
        nextStep: context.nextStep,
      },
      options,
    );
    this.active = context.active;
    this.target = context.target;
    this.interrupted = options?.cause instanceof AbortedError;
  }
}

/**
 * Switches the active credential: proves the target with a real token
 * request, then publishes the new active label. Never regenerates a secret.
 *
 * @param options The credentials, the target and how to publish.
 * @returns What was done.
 * @throws {PromotionError} When the target does not get a token or the
 *   label cannot be published; the active label is then unchanged.
 *
 * @example
 * ```ts
 * import { runPromotion } from "@rotating/dual-secret-auth/rotation";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret" },
 *     { clientId: "green-id", secret: "green-secret" },
 *   ],
 * });
 * let active = "blue";
 * const report = await runPromotion({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   active,
 *   tokenUrl: emulator.tokenUrl,
 *   publishActive: (label) => void (active = label),
 * });
 * if (report.active !== "green" || active !== "green") throw new Error();
 * ```
 */
export async function runPromotion(
  options: PromotionOptions,
): Promise<PromotionReport> {
  const run: PromotionRun = {
    options,
    clock: options.clock ?? systemClock,
    target: String(options.to ?? ""),
    changed: false,
  };
  await runSteps(PROMOTION_STEPS, run, {
    // A promotion reports no step events: its report and error say it all.
    emit: () => {},
    dryRun: options.dryRun === true,
    fail: (step, { state, nextStep }, error) =>
      new PromotionError({
        active: String(options.active),
        target: run.target,
        state,
        nextStep,
        step,
      }, { cause: error }),
  });
  const config = run.config!;
  const { target, credential, grant } = run;
  if (target === config.active) {
    return Object.freeze({
      dryRun: options.dryRun === true,
      previousActive: config.active,
      active: config.active,
      changed: false,
      clientId: credential!.clientId,
      nextStep: `"${target}" is already active; nothing to do.`,
    });
  }
  return Object.freeze({
    dryRun: options.dryRun === true,
    previousActive: config.active,
    active: options.dryRun ? config.active : target,
    changed: !options.dryRun,
    clientId: credential!.clientId,
    tokenLifetimeSeconds: Math.round(grant!.lifetimeMs / 1000),
    nextStep: options.dryRun
      ? `"${target}" gets tokens; run again without dry run to promote it.`
      : `"${target}" serves traffic now; once every instance has switched, the next rotation regenerates "${config.active}".`,
  });
}

/** Everything the promotion's steps share. */
interface PromotionRun {
  readonly options: PromotionOptions;
  readonly clock: Clock;
  target: string;
  config?: ResolvedConfig;
  credential?: ResolvedCredential;
  grant?: TokenGrant;
  changed: boolean;
}

/** The state and the next step of a failed promotion. */
interface PromotionFailure {
  readonly state: string;
  readonly nextStep: string;
}

/** The steps of a promotion: plan, prove, publish. */
export type PromotionStep = "plan" | "prove" | "publish";

const unchanged = (run: PromotionRun) =>
  `Nothing was changed; "${run.options.active}" still serves traffic.`;

const alreadyActive = (run: PromotionRun) =>
  run.target === run.config!.active
    ? `"${run.target}" is already active`
    : undefined;

/** The promotion as a table, run by the one step runner. */
const PROMOTION_STEPS: readonly StepSpec<
  PromotionRun,
  PromotionStep,
  never,
  PromotionFailure
>[] = [
  {
    name: "plan",
    abortable: false,
    inDryRun: true,
    run: (run) => {
      const { options } = run;
      const config = resolveConfig({
        credentials: options.credentials,
        active: options.active,
        tokenUrl: options.tokenUrl,
        scope: options.scope,
        tokenParams: options.tokenParams,
      }, []);
      if (options.to === undefined) {
        const others = config.credentials.filter((c) =>
          c.label !== config.active
        );
        if (others.length !== 1) {
          throw new ConfigError("to", "name the label to promote");
        }
        run.target = others[0].label;
      }
      if (!config.credentials.some((c) => c.label === run.target)) {
        throw new ConfigError(
          "to",
          `"${run.target}" is not a configured label (${
            config.credentials.map((c) => c.label).join(", ")
          })`,
        );
      }
      run.config = config;
      run.credential = config.credentials.find((c) => c.label === run.target)!;
      return Promise.resolve(`promote "${run.target}"`);
    },
    onFailure: (run) => ({
      state: unchanged(run),
      nextStep: "fix the configuration and run it again.",
    }),
  },
  {
    name: "prove",
    abortable: false,
    inDryRun: true,
    skip: alreadyActive,
    run: async (run) => {
      const { options } = run;
      run.grant = await proveSecret({
        tokenUrl: run.config!.tokenUrl,
        credential: run.credential!,
        secret: run.credential!.clientSecret,
        scope: run.config!.scope,
        tokenParams: run.config!.tokenParams,
        retryRejected: false,
        // The bounds promotion always had: a working secret needs few tries.
        attempts: 6,
        delayMs: 200,
        maxRetryAfterMs: 30_000,
        maxElapsedMs: options.retryForMs ?? 30_000,
        fetch: options.fetch,
        clock: run.clock,
        signal: options.signal,
        onRetry: (attempt, delayMs, error) =>
          options.onProgress?.(
            `proving "${run.target}": attempt ${attempt} failed (${
              error instanceof DualSecretAuthError ? error.code : "error"
            }); retrying in ${(delayMs / 1000).toFixed(1)} s`,
          ),
      });
      return "token request succeeded";
    },
    onFailure: (run, error) => ({
      state: unchanged(run),
      nextStep: error instanceof CredentialRejectedError
        ? `"${run.target}" does not get a token with its configured secret; promoting it would break traffic. Check ${run.target}'s secret (deno task verify); if it was lost, rotate it again.`
        : "fix the cause above and run it again.",
    }),
  },
  {
    name: "publish",
    abortable: true,
    skip: alreadyActive,
    run: async (run) => {
      await run.options.publishActive(run.target);
      run.changed = true;
      await markPromoted(run.options.journal, run.target, run.clock.now())
        .catch(() => {});
      return `"${run.target}" is active`;
    },
    onFailure: (run) => ({
      state: `"${run.target}" works, but publishing it as active failed; "${
        run.config!.active
      }" still serves traffic (unless the write was partly applied).`,
      nextStep: "fix the cause above and run it again.",
    }),
  },
];

/** Records the promotion on a finished rotation of the target, so it is not offered again. */
async function markPromoted(
  journal: RotationJournal | undefined,
  label: string,
  now: number,
): Promise<void> {
  const record = await journal?.read();
  if (
    record && record.standby === label && record.completedAt !== undefined &&
    record.promotedAt === undefined
  ) {
    await journal!.write({ ...record, promotedAt: now });
  }
}
