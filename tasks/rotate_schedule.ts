/**
 * `deno task rotate --kv <path> --every 30d`: the unattended scheduler. Each
 * tick takes (or renews) the leader lease in the store and advances the
 * cycle; many may run, one acts; one killed mid-cycle is resumed by the next
 * leader from the store's journal. Stops on SIGINT/SIGTERM (or after
 * `--cycles N` completed cycles in the store, for tests and drills).
 *
 * @module
 */
import type { SealKeyring } from "../src/fleet/distribution.ts";
import {
  createStoreJournal,
  credentialsFromStore,
  type FleetTarget,
  type PresenceExpectation,
  readDistributedSecret,
} from "../src/fleet/operator.ts";
import { readScheduleState, scheduleTick } from "../src/fleet/schedule.ts";
import type { RotationEnvConfig } from "../src/rotation/env_config.ts";
import { stagedFleetRotation } from "./rotate_fleet.ts";

/** The scheduler's settings, from the command line. */
export interface ScheduleSettings {
  /** The period, in ms. */
  readonly everyMs: number;
  /** How often a tick runs, in ms. */
  readonly tickMs: number;
  /** The leader lease, in ms. */
  readonly leaseMs: number;
  /** A token's lifetime, for the gate, in ms. */
  readonly tokenLifetimeMs: number;
  /** The heartbeat bound for draining, in ms. */
  readonly drainBoundMs: number;
  /** Stop once the store counts this many completed cycles. */
  readonly cycles?: number;
  /** How long the new secret is proven for, in ms. */
  readonly propagationTimeoutMs?: number;
  /** The command's store arguments, for next steps. */
  readonly storeArgs: string;
  /**
   * Ctrl-C and SIGTERM (`onInterrupt`): the scheduler stops after the step
   * in progress, and a rotation in progress seals its secret first.
   */
  readonly signal: AbortSignal;
  /** `--allow-empty` and `--expect-instances`. */
  readonly presence: PresenceExpectation;
}

/**
 * Runs the scheduler until interrupted (or `cycles` are done).
 *
 * @param target The store; `by` is this scheduler's id.
 * @param ring The seal keys.
 * @param config The env configuration.
 * @param settings Timing.
 * @returns The exit code.
 */
export async function runSchedule(
  target: FleetTarget,
  ring: SealKeyring,
  config: RotationEnvConfig,
  settings: ScheduleSettings,
): Promise<number> {
  const progress = (line: string) => console.error(line);
  console.error(
    `Scheduler ${target.by}: a cycle every ${
      settings.everyMs / 1000
    } s; leader lease ${settings.leaseMs / 1000} s.`,
  );
  while (!settings.signal.aborted) {
    const state = await readScheduleState(target);
    if (
      settings.cycles !== undefined &&
      (state?.completed ?? 0) >= settings.cycles
    ) break;
    try {
      await scheduleTick({
        target,
        credentials: config.credentials,
        initialActive: config.active,
        everyMs: settings.everyMs,
        leaseMs: settings.leaseMs,
        tokenLifetimeMs: settings.tokenLifetimeMs,
        drainBoundMs: settings.drainBoundMs,
        onProgress: progress,
        presence: settings.presence,
        rotate: (standby, cycleStartedAt) =>
          rotateForCycle(
            target,
            ring,
            config,
            settings,
            standby,
            cycleStartedAt,
          ),
      });
    } catch (error) {
      // The next tick retries; the store keeps where the cycle is.
      progress(
        `schedule: a step failed (${
          error instanceof Error ? error.message : String(error)
        }); retried at the next tick`,
      );
    }
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        settings.signal.removeEventListener("abort", wake);
        resolve();
      }, settings.tickMs);
      settings.signal.addEventListener("abort", wake, { once: true });
    });
  }
  const state = await readScheduleState(target);
  console.log(
    `Scheduler ${target.by} stopped: ${
      state?.completed ?? 0
    } cycle(s) completed in the store; next step ${state?.step ?? "none"}.`,
  );
  return 0;
}

/**
 * The rotate step of a cycle. A rotation of this label that completed after
 * the cycle began (its leader died before recording the step) is not done
 * twice: the store's generation is taken as it is.
 */
async function rotateForCycle(
  target: FleetTarget,
  ring: SealKeyring,
  config: RotationEnvConfig,
  settings: ScheduleSettings,
  standby: string,
  cycleStartedAt: number,
): Promise<number> {
  const journal = createStoreJournal(target);
  const previous = await journal.read();
  if (
    previous?.standby === standby && previous.completedAt !== undefined &&
    previous.startedAt >= cycleStartedAt
  ) {
    const stored = await readDistributedSecret(target, ring, standby);
    if (stored !== undefined) return stored.generation;
  }
  const credentials = await credentialsFromStore(
    target,
    ring,
    config.credentials,
  );
  const active = credentials.find((c) => c.label !== standby)!.label;
  const rotation = stagedFleetRotation({
    target,
    ring,
    config,
    credentials,
    active,
    standby,
    journal,
    // An unfinished rotation from before this cycle is resumed; a finished
    // one (an earlier cycle's) starts over.
    fresh: previous?.completedAt !== undefined,
    propagationTimeoutMs: settings.propagationTimeoutMs,
    signal: settings.signal,
    progress: (line) => console.error(line),
    commands: {
      rerun: "let the scheduler retry at its next tick",
      promote: "let the scheduler promote",
      fresh: `run deno task rotate ${settings.storeArgs} --yes --fresh`,
    },
  });
  await rotation.run();
  const generation = rotation.generation() ??
    (await readDistributedSecret(target, ring, standby))?.generation;
  if (generation === undefined) {
    throw new Error(`the rotation of "${standby}" published no secret`);
  }
  return generation;
}
