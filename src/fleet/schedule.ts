/**
 * Scheduled rotation of a fleet: each period one full cycle — rotate the
 * standby (behind the revoke gate) → propagate (every live instance reports
 * the new secret's generation) → promote (the shared active label) → drain
 * (every live instance reports it, or the heartbeat bound passed) —
 * alternating blue and green.
 *
 * Many schedulers may run (`Deno.cron` fires in every process when
 * self-hosted): a leader lease in the store lets one act. Every step is
 * written to the store before the next begins, so a leader that dies
 * mid-cycle is resumed where it stopped by whichever scheduler leads next.
 * The rotate and promote steps also hold the store's rotation lock (the one
 * `deno task rotate --kv|--redis` and `promote` take) until their outcome is
 * recorded, so a manual run refuses while a cycle is mid-rotation, and a
 * cycle waits for its next tick while a manual run holds the lock.
 * {@linkcode scheduleTick} does what is due and returns; call it on a timer
 * or from `Deno.cron`.
 *
 * @module
 */
import {
  acquireStoreLock,
  acquisitionHolder,
  audit,
  type checkRevokeGate,
  type FleetTarget,
  holderName,
  judgeFleetPresence,
  listLive,
  passRevokeGate,
  type PresenceExpectation,
  readStoredSecretIdentity,
  readTargetActive,
  secretStragglers,
  setSharedActive,
  type StoreLock,
  StoreLockedError,
} from "./operator.ts";
import { ConfigError } from "../errors.ts";
import { type Fence, type InstanceRecord, isActiveRecord } from "./store.ts";

/** The steps of a cycle, in order. */
export type CycleStep = "rotate" | "propagate" | "promote" | "drain" | "done";

/** The scheduler's record in the store (`schedule/state`). No secrets. */
export interface ScheduleState {
  /** Cycles completed so far. */
  readonly completed: number;
  /** The step of the current cycle; `done` between cycles. */
  readonly step: CycleStep;
  /** The label being rotated in the current cycle. */
  readonly standby?: string;
  /** The label that served traffic when the cycle started. */
  readonly from?: string;
  /** The secret generation the rotation published, once it did. */
  readonly generation?: number;
  /**
   * The fingerprint of the secret the rotation published, once it did: the
   * propagate step waits until every live instance reports it proved (a
   * generation alone repeats when the store lost its data).
   */
  readonly fingerprint?: string;
  /** When the current step began, in ms since the epoch. */
  readonly stepStartedAt: number;
  /** When the current cycle began. */
  readonly cycleStartedAt?: number;
  /** When the last cycle finished. */
  readonly lastCompletedAt?: number;
}

/** Options of {@linkcode scheduleTick}. */
export interface ScheduleOptions {
  /** The store and who acts (`by` is this scheduler's id: the leader's name). */
  readonly target: FleetTarget;
  /** The labels, such as `["blue", "green"]`, with their client ids. */
  readonly credentials: readonly { label: string; clientId: string }[];
  /** The label to assume active when the store has none yet. */
  readonly initialActive: string;
  /** The period between the end of one cycle and the start of the next, in ms. */
  readonly everyMs: number;
  /** How long the leader lease lasts unless renewed, in ms. */
  readonly leaseMs: number;
  /** A token's lifetime, for the revoke gate, in ms. */
  readonly tokenLifetimeMs: number;
  /**
   * The heartbeat bound: draining ends after this even if some live instance
   * never reported the new active label.
   */
  readonly drainBoundMs: number;
  /**
   * Regenerates the standby's secret and publishes it sealed into the store
   * (the staged rotation with the store as sink and journal; resumable).
   * Resolves with the generation published.
   */
  readonly rotate: (standby: string, cycleStartedAt: number) => Promise<number>;
  /** Told of each step taken (secret-free lines). */
  readonly onProgress?: (line: string) => void;
  /**
   * How to treat a namespace where no live instance reports: by default the
   * rotate step waits (a wrong prefix or scope, or a fleet that is down,
   * looks like that); `allowEmpty` rotates anyway, `expectInstances` waits
   * for at least that many.
   *
   * @default {}
   */
  readonly presence?: PresenceExpectation;
  /**
   * How long the store's rotation lock (the one `rotate` and `promote` take)
   * lasts without renewal, in ms. A rotate or promote step renews it every
   * third of this while it runs, so a scheduler killed mid-step frees it
   * about when its leader lease lapses.
   *
   * @default leaseMs
   */
  readonly lockTtlMs?: number;
  /**
   * This scheduler's monotonic clock, in ms: a cycle is also due once this
   * scheduler saw the finished state unchanged for `everyMs` on it, so a
   * skewed wall clock delays a cycle by one period at most.
   *
   * @default performance.now
   */
  readonly monotonic?: () => number;
}

/** The steps that change credentials or the active label: they hold the store's rotation lock. */
const LOCKED_STEPS: ReadonlySet<CycleStep> = new Set(["rotate", "promote"]);

/** What one tick did. */
export interface TickResult {
  /** Whether this scheduler held the leader lease. */
  readonly leader: boolean;
  /** The state after the tick. */
  readonly state?: ScheduleState;
  /** The steps completed during this tick. */
  readonly advanced: readonly CycleStep[];
}

const STATE = "schedule/state";
const LEADER = "schedule/leader";

/**
 * Takes or renews the leader lease: a lock of the store (see
 * `FleetStore.claimLock`), so its lapse is judged by the store and never by
 * a scheduler's clock; two schedulers whose clocks disagree by minutes still
 * have one leader at a time.
 *
 * @param target The store; `by` names the candidate.
 * @param leaseMs The lease's length, in ms (1 to 2^31 - 1).
 * @returns The fence of this scheduler's hold (its writes of the schedule's
 * state carry it, so a former leader's are refused), or undefined when
 * another leads.
 */
export async function takeLeadership(
  target: FleetTarget,
  leaseMs: number,
): Promise<Fence | undefined> {
  const holder = leaderHolder(target);
  const before = await target.store.readLock(target.service, LEADER);
  const state = await target.store.claimLock(target.service, LEADER, {
    holder,
    ttlMs: leaseMs,
    note: "rotate --every",
  });
  if (!state.held) return undefined;
  if (before?.holder !== holder || before.fence !== state.fence) {
    await audit(target, {
      action: "schedule.leader",
      outcome: "ok",
      detail: before === undefined || before.holder === holder
        ? `took the lead (fence ${state.fence})`
        : `took the lead over from ${
          holderName(before.holder)
        } (lease lapsed; fence ${state.fence})`,
    });
  }
  return { lock: LEADER, holder, fence: state.fence };
}

/** The leader lease's holder string of each scheduler (one per target object). */
const leaderHolders = new WeakMap<FleetTarget, string>();

/**
 * The holder string under which a scheduler claims the leader lease: its
 * name and a token drawn once per target object, so a scheduler keeps its
 * lease from tick to tick while another scheduler given the same name
 * (another process, another host) is another holder and never co-leads.
 */
function leaderHolder(target: FleetTarget): string {
  let holder = leaderHolders.get(target);
  if (holder === undefined) {
    holder = acquisitionHolder(target.by);
    leaderHolders.set(target, holder);
  }
  return holder;
}

/**
 * Reads the scheduler's state. Reads only.
 *
 * @param target The store.
 * @returns The state, or undefined before the first cycle.
 */
export async function readScheduleState(
  target: FleetTarget,
): Promise<ScheduleState | undefined> {
  const document = await target.store.readDocument(target.service, STATE);
  return document?.value as ScheduleState | undefined;
}

/**
 * Does what is due: takes or renews the leader lease, then advances the
 * cycle as far as it can without waiting (a step that waits for the fleet —
 * the revoke gate, propagation, draining — is looked at again next tick).
 *
 * @param options The store, timing and the rotation step.
 * @returns What it did.
 * @throws {ConfigError} When `leaseMs` or `lockTtlMs` is not a positive
 * number of ms up to 2^31 - 1.
 */
export async function scheduleTick(
  options: ScheduleOptions,
): Promise<TickResult> {
  const { target } = options;
  // The lock's renewal is an interval timer of a third of its lifetime, and
  // a timer past 2^31 - 1 ms fires at once: a busy loop of store writes.
  for (
    const [name, ms] of [
      ["leaseMs", options.leaseMs],
      ["lockTtlMs", options.lockTtlMs ?? options.leaseMs],
    ] as const
  ) {
    if (!Number.isFinite(ms) || ms <= 0 || ms > 2 ** 31 - 1) {
      throw new ConfigError(
        `schedule.${name}`,
        `must be a positive number of ms up to 2147483647 (about 24.8 days), got ${ms}`,
      );
    }
  }
  const advanced: CycleStep[] = [];
  const fence = await takeLeadership(target, options.leaseMs);
  if (fence === undefined) return { leader: false, advanced };
  // A step may outlast the lease (a rotation waits on the token endpoint):
  // renew it meanwhile, so only a scheduler that stopped loses the lead.
  await using _renewal = keepLeading(target, fence, options.leaseMs);
  for (let guard = 0; guard < 6; guard++) {
    const document = await target.store.readDocument(target.service, STATE);
    const state = (document?.value as ScheduleState | undefined) ?? {
      completed: 0,
      step: "done" as const,
      stepStartedAt: 0,
    };
    // A manual rotate or promote holds the lock while it changes anything,
    // and so does this step, until its outcome is recorded: neither runs
    // beside the other.
    let lock: StoreLock | undefined;
    if (LOCKED_STEPS.has(state.step)) {
      try {
        lock = await holdStoreLock(
          target,
          `rotate --every (scheduled ${state.step} of "${state.standby}")`,
          options.lockTtlMs ?? options.leaseMs,
        );
      } catch (error) {
        if (!(error instanceof StoreLockedError)) throw error;
        options.onProgress?.(
          `schedule: waiting for the rotation lock (${error.holder.command} by ${error.holder.holder}); ${state.step} retried at the next tick`,
        );
        return { leader: true, state, advanced };
      }
    }
    await using _lock = lock;
    const next = await advance(options, state, document?.version ?? 0);
    if (next === undefined) return { leader: true, state, advanced };
    // Fenced: refused when another scheduler took the lead meanwhile (this
    // one was paused past its lease), so a stale leader records nothing.
    const written = await target.store.writeDocument(
      target.service,
      STATE,
      document?.version ?? 0,
      next,
      fence,
    );
    if (!written) {
      const lock = await target.store.readLock(target.service, LEADER);
      return {
        leader: lock?.holder === fence.holder && lock.fence === fence.fence,
        state,
        advanced,
      };
    }
    advanced.push(state.step);
    await audit(target, {
      action: state.step === "done"
        ? "schedule.start"
        : `schedule.${state.step}`,
      outcome: "completed",
      ...(next.standby ?? state.standby
        ? { label: next.standby ?? state.standby }
        : {}),
      detail: `cycle ${
        next.step === "done" ? next.completed : next.completed + 1
      }${next.generation ? `, generation ${next.generation}` : ""}`,
    });
    options.onProgress?.(
      state.step === "done"
        ? `schedule: cycle ${
          next.completed + 1
        } started: rotating "${next.standby}"`
        : `schedule: ${state.step} done (cycle ${
          next.completed + (next.step === "done" ? 0 : 1)
        })${next.step === "done" ? "; cycle complete" : `, next ${next.step}`}`,
    );
    if (next.step === "done") return { leader: true, state: next, advanced };
  }
  return { leader: true, advanced };
}

/** Renews the leader lease every third of its length until disposed. */
function keepLeading(
  target: FleetTarget,
  fence: Fence,
  leaseMs: number,
): AsyncDisposable {
  let renewing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    // A lost lead is found by the fenced write after the step.
    renewing = target.store.claimLock(target.service, fence.lock, {
      holder: fence.holder,
      ttlMs: leaseMs,
      note: "rotate --every",
    }).catch(() => undefined);
  }, Math.max(1, Math.floor(leaseMs / 3)));
  return {
    async [Symbol.asyncDispose]() {
      clearInterval(timer);
      await renewing;
    },
  };
}

/** The store lock, renewed every third of `ttlMs` until disposed. */
async function holdStoreLock(
  target: FleetTarget,
  command: string,
  ttlMs: number,
): Promise<StoreLock> {
  const lock = await acquireStoreLock(target, command, ttlMs);
  // A failed renewal is not fatal here: the leader check after the step
  // finds out whether another took over.
  const timer = setInterval(
    () => lock.renew().catch(() => undefined),
    Math.max(1, Math.floor(ttlMs / 3)),
  );
  const release = async () => {
    clearInterval(timer);
    await lock.release();
  };
  return {
    token: lock.token,
    renew: () => lock.renew(),
    ...(lock.fence === undefined ? {} : { fence: lock.fence }),
    release,
    [Symbol.asyncDispose]: release,
  };
}

/** One step: the next state, or undefined when the step must wait. */
async function advance(
  options: ScheduleOptions,
  state: ScheduleState,
  version: number,
): Promise<ScheduleState | undefined> {
  const { target } = options;
  const now = target.now();
  const live = () => listLive(target, now);
  switch (state.step) {
    case "done": {
      if (
        state.lastCompletedAt !== undefined &&
        now < state.lastCompletedAt + options.everyMs &&
        !idleFor(options, version)
      ) return undefined;
      const from = (await readTargetActive(target, await live()))?.label ??
        options.initialActive;
      const standby = options.credentials.find((c) => c.label !== from)?.label;
      if (standby === undefined) return undefined;
      // Starting a cycle is itself a step ("done" → "rotate").
      return {
        completed: state.completed,
        step: "rotate",
        standby,
        from,
        stepStartedAt: now,
        cycleStartedAt: now,
        ...(state.lastCompletedAt === undefined
          ? {}
          : { lastCompletedAt: state.lastCompletedAt }),
      };
    }
    case "rotate": {
      const credential = options.credentials.find((c) =>
        c.label === state.standby
      );
      if (credential === undefined) return undefined;
      const activeRecord = await target.store.readActive(target.service);
      // Never the label the fleet serves, whatever the recorded state says
      // (a forged or stale `schedule/state` must not regenerate it).
      if (
        isActiveRecord(activeRecord) && activeRecord.label === credential.label
      ) {
        options.onProgress?.(
          `schedule: "${credential.label}" is the fleet's active credential (generation ${activeRecord.generation}); it is not regenerated. Promote the other label or repair schedule/state.`,
        );
        return undefined;
      }
      const verdict = judgeFleetPresence({
        live: (await live()).length,
        ...(isActiveRecord(activeRecord) ? { activeRecord } : {}),
        elsewhere: [],
      }, options.presence ?? {});
      if (!verdict.proceed) {
        options.onProgress?.(
          `schedule: not rotating "${credential.label}": ${verdict.reason}; waiting (--allow-empty rotates anyway)`,
        );
        return undefined;
      }
      // Looked at again every tick: only its opening is recorded.
      const gate = await passRevokeGate(target, credential, {
        tokenLifetimeMs: options.tokenLifetimeMs,
        auditRefusal: false,
        note: "scheduled",
      });
      if (!gate.passes) {
        tellWait(
          options,
          `schedule: waiting for the gate of "${credential.label}" (${
            gate.blockers.map((b) => gateWait(b, options.tokenLifetimeMs))
              .join(", ")
          }), since ${new Date(state.stepStartedAt).toISOString()}`,
        );
        return undefined;
      }
      const generation = await options.rotate(
        credential.label,
        state.cycleStartedAt ?? state.stepStartedAt,
      );
      const identity = await readStoredSecretIdentity(
        target,
        credential.label,
      );
      return {
        ...state,
        step: "propagate",
        generation,
        ...(identity === undefined
          ? {}
          : { fingerprint: identity.fingerprint }),
        stepStartedAt: now,
      };
    }
    case "propagate": {
      // Never promote while a live instance has not proved the new secret:
      // it would be left on a dead credential. A dead instance drops out of
      // the heartbeats within their bound, so this wait is bounded by the
      // live.
      const instances = await live();
      const behind = state.fingerprint !== undefined
        ? secretStragglers(instances, state.standby!, state.fingerprint)
          .map((s) => `${s.instanceId} (${s.reason})`)
        : instances.filter((r) =>
          secretGenerationOf(r, state.standby!) !== state.generation
        ).map((r) => r.instanceId);
      if (behind.length > 0) {
        options.onProgress?.(
          `schedule: waiting for ${behind.length} instance(s) to prove generation ${state.generation} of "${state.standby}": ${
            behind.join(", ")
          }`,
        );
        return undefined;
      }
      return { ...state, step: "promote", stepStartedAt: now };
    }
    case "promote": {
      await setSharedActive(target, state.standby!);
      return { ...state, step: "drain", stepStartedAt: now };
    }
    case "drain": {
      const instances = await live();
      const behind = instances.filter((r) => r.active !== state.standby);
      if (
        behind.length > 0 && now - state.stepStartedAt < options.drainBoundMs
      ) return undefined;
      return {
        completed: state.completed + 1,
        step: "done",
        stepStartedAt: now,
        lastCompletedAt: now,
      };
    }
  }
}

/** Per service and scheduler: the state version last seen between cycles, and since when (monotonic). */
const idleSince = new Map<string, { version: number; since: number }>();

/**
 * Whether this scheduler saw the same finished state for a whole period on
 * its own monotonic clock: then the cycle is due even if the finishing
 * leader's clock was ahead of this one's (its `lastCompletedAt` lies in
 * this one's future), so clock skew delays a cycle by at most one period.
 */
function idleFor(options: ScheduleOptions, version: number): boolean {
  const { target } = options;
  const key = `${target.service}\n${target.by}`;
  const now = (options.monotonic ?? (() => performance.now()))();
  const seen = idleSince.get(key);
  if (seen?.version !== version) {
    idleSince.set(key, { version, since: now });
    return false;
  }
  return now - seen.since >= options.everyMs;
}

function secretGenerationOf(
  record: InstanceRecord,
  label: string,
): number | undefined {
  return record.credentials.find((c) => c.label === label)?.secretGeneration;
}

/** The last waiting line told to each listener, and when. */
const lastWaits = new WeakMap<
  (line: string) => void,
  { line: string; at: number }
>();

/**
 * Tells a waiting line unless the same listener was told the same line less
 * than a minute ago: a scheduler ticking every second at a shut gate says so
 * once a minute, not once a tick.
 */
function tellWait(options: ScheduleOptions, line: string): void {
  const listener = options.onProgress;
  if (listener === undefined) return;
  const now = options.target.now();
  const last = lastWaits.get(listener);
  if (last?.line === line && now - last.at < 60_000) return;
  lastWaits.set(listener, { line, at: now });
  listener(line);
}

/** What one gate blocker waits for, and until when, in the scheduler's words. */
function gateWait(
  blocker: Awaited<ReturnType<typeof checkRevokeGate>>["blockers"][number],
  tokenLifetimeMs: number,
): string {
  const at = (ms: number) => new Date(ms).toISOString();
  switch (blocker.reason) {
    case "active":
      return `${blocker.instanceId}: serves it (until a promotion moves it)`;
    case "holds-token":
      return `${blocker.instanceId}: holds a token of it until ${
        at(blocker.heldUntil!)
      }`;
    case "seal-key":
      return `${blocker.instanceId}: cannot open a secret sealed with this scheduler's key (${blocker.problem})`;
    case "used-recently":
      return `${blocker.instanceId}: used it at ${
        at(blocker.lastUsedAt!)
      }, clear at ${at(blocker.lastUsedAt! + tokenLifetimeMs)}`;
  }
}

/**
 * Parses a period such as `30d`, `12h`, `15m`, `5s` or `500ms`.
 *
 * @param text The period.
 * @returns Milliseconds, or undefined when it is not a period.
 */
export function parsePeriod(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (match === null) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    match[2] as "ms" | "s" | "m" | "h" | "d"
  ];
  const ms = Number(match[1]) * unit;
  return ms > 0 ? ms : undefined;
}
