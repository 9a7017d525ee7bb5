/**
 * Promotion on its own: switch the active credential to a label whose secret
 * is already in place. It proves the target with a real token request, then
 * publishes the new active label; it never regenerates anything.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import {
  type ConfigWarning,
  type CredentialInput,
  resolveConfig,
} from "../config.ts";
import {
  AbortedError,
  ConfigError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../errors.ts";
import { withRetry } from "../retry.ts";
import { requestToken } from "../token_endpoint.ts";
import type { RotationJournal } from "./journal.ts";

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
export class PromotionError extends DualSecretAuthError {
  /** The label still serving traffic. */
  readonly active: string;
  /** The label that was to be promoted. */
  readonly target: string;
  /** The state things are in, for people. */
  readonly state: string;
  /** What to do next, for people. */
  readonly nextStep: string;
  /** Whether the run stopped because its signal aborted (Ctrl-C). */
  readonly interrupted: boolean;

  /**
   * Creates the error.
   *
   * @param context The labels, state and next step.
   * @param options The failure, as cause.
   */
  constructor(
    context: {
      active: string;
      target: string;
      state: string;
      nextStep: string;
    },
    options?: ErrorOptions,
  ) {
    const reason = options?.cause instanceof DualSecretAuthError
      ? ` ${options.cause.message}`
      : "";
    super(
      PROMOTION_FAILED,
      `Promotion of "${context.target}" failed.${reason} State: ${context.state} Next: ${context.nextStep}`,
      options,
    );
    this.active = context.active;
    this.target = context.target;
    this.state = context.state;
    this.nextStep = context.nextStep;
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
  const clock = options.clock ?? systemClock;
  const warnings: ConfigWarning[] = [];
  let target = String(options.to ?? "");
  const fail = (state: string, nextStep: string) => (error: unknown): never => {
    throw new PromotionError({
      active: String(options.active),
      target,
      state,
      nextStep,
    }, { cause: error });
  };
  const unchanged =
    `Nothing was changed; "${options.active}" still serves traffic.`;
  let config;
  try {
    config = resolveConfig({
      credentials: options.credentials,
      active: options.active,
      tokenUrl: options.tokenUrl,
    }, warnings);
    if (options.to === undefined) {
      const others = config.credentials.filter((c) =>
        c.label !== config!.active
      );
      if (others.length !== 1) {
        throw new ConfigError("to", "name the label to promote");
      }
      target = others[0].label;
    }
    if (!config.credentials.some((c) => c.label === target)) {
      throw new ConfigError(
        "to",
        `"${target}" is not a configured label (${
          config.credentials.map((c) => c.label).join(", ")
        })`,
      );
    }
  } catch (error) {
    return fail(unchanged, "fix the configuration and run it again.")(error);
  }
  const credential = config.credentials.find((c) => c.label === target)!;
  if (target === config.active) {
    return Object.freeze({
      dryRun: options.dryRun === true,
      previousActive: config.active,
      active: config.active,
      changed: false,
      clientId: credential.clientId,
      nextStep: `"${target}" is already active; nothing to do.`,
    });
  }
  const fetchFn = options.fetch ??
    ((input: RequestInfo | URL, init?: RequestInit) =>
      globalThis.fetch(input, init));
  const grant = await withRetry(
    () =>
      requestToken({
        tokenUrl: config.tokenUrl,
        label: credential.label,
        clientId: credential.clientId,
        clientSecret: credential.clientSecret,
        authMethod: credential.authMethod,
        fetch: fetchFn,
        clock,
        timeoutMs: 10_000,
        signal: options.signal,
      }),
    {
      clock,
      signal: options.signal,
      maxElapsedMs: options.retryForMs ?? 30_000,
      isRetriable: (error) =>
        error instanceof RateLimitedError
          ? error.retryAfterMs ?? true
          : error instanceof TokenEndpointUnavailableError,
      onRetry: ({ attempt, delayMs, error }) =>
        options.onProgress?.(
          `proving "${target}": attempt ${attempt} failed (${
            error instanceof DualSecretAuthError ? error.code : "error"
          }); retrying in ${(delayMs / 1000).toFixed(1)} s`,
        ),
    },
  ).catch((error) => {
    const cause = options.signal?.aborted
      ? new AbortedError({ cause: options.signal.reason })
      : error;
    return fail(
      unchanged,
      cause instanceof CredentialRejectedError
        ? `"${target}" does not get a token with its configured secret; promoting it would break traffic. Check ${target}'s secret (deno task verify); if it was lost, rotate it again.`
        : "fix the cause above and run it again.",
    )(cause);
  });
  if (!options.dryRun) {
    try {
      if (options.signal?.aborted) {
        throw new AbortedError({ cause: options.signal.reason });
      }
      await options.publishActive(target);
    } catch (error) {
      return fail(
        `"${target}" works, but publishing it as active failed; "${config.active}" still serves traffic (unless the write was partly applied).`,
        "fix the cause above and run it again.",
      )(error);
    }
    await markPromoted(options.journal, target, clock.now()).catch(() => {});
  }
  return Object.freeze({
    dryRun: options.dryRun === true,
    previousActive: config.active,
    active: options.dryRun ? config.active : target,
    changed: !options.dryRun,
    clientId: credential.clientId,
    tokenLifetimeSeconds: Math.round(grant.lifetimeMs / 1000),
    nextStep: options.dryRun
      ? `"${target}" gets tokens; run again without dry run to promote it.`
      : `"${target}" serves traffic now; once every instance has switched, the next rotation regenerates "${config.active}".`,
  });
}

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
