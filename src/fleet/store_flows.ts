/**
 * The operator flows on a fleet store ({@linkcode StoreTarget}): the staged
 * rotation with the store as sink, journal and audit trail
 * ({@linkcode fleetRotation}); the promotion that waits until every live
 * instance proved the target's secret ({@linkcode promoteFleet}); and the
 * scheduled cycle's rotate step ({@linkcode scheduledRotation}) with the
 * loop that ticks it ({@linkcode runScheduler}). `deno task rotate|promote
 * --kv|--redis`, `rotate --every` and a `Deno.cron` scheduler call these, so
 * each rule has one path.
 *
 * @module
 */
import type { CredentialInput } from "../config.ts";
import { createDualSecretAuth } from "../dual_secret_auth.ts";
import { AbortedError } from "../errors.ts";
import { createGenesysAdminClient } from "../genesys/admin_client.ts";
import { genesysSecretProvider } from "../genesys/secret_provider.ts";
import type { SecretProvider } from "../rotation/provider.ts";
import {
  type RotationCommands,
  type RotationReport,
  runStagedRotation,
} from "../rotation/staged_rotation.ts";
import {
  audit,
  type PresenceExpectation,
  readDistributedSecret,
  readStoredSecretIdentity,
  type SecretStraggler,
  secretStragglers,
  type StoredSecretIdentity,
  waitForFleet,
} from "./operator.ts";
import { readScheduleState, scheduleTick } from "./schedule.ts";
import type { InstanceRecord } from "./store.ts";
import type { StoreTarget } from "./store_target.ts";

/** A provider opened for one run; dispose it to close what it opened (its admin token source). */
export interface OpenedProvider extends AsyncDisposable {
  /** The provider port: issues the standby's new secret. */
  readonly provider: SecretProvider;
}

/**
 * Opens the provider of one rotation, authenticated with `admin.credential`:
 * the env file's admin client, or else the active credential (never the one
 * rotated). `admin.variable` names where its secret comes from, for
 * messages.
 */
export type FleetProviderFactory = (admin: {
  readonly credential: CredentialInput;
  readonly variable: string;
}) => OpenedProvider | Promise<OpenedProvider>;

/** Options of {@linkcode genesysAdminProvider}. */
export interface GenesysAdminProviderOptions {
  /** The token endpoint of the admin credential. */
  readonly tokenUrl: string;
  /** The Platform API base URL. */
  readonly apiUrl: string;
  /**
   * Wraps the admin credential's token source, such as to turn a rejection
   * into an operator's message naming `variable`.
   *
   * @default the source as it is
   */
  readonly tokenSource?: (
    getAccessToken: (options?: { signal?: AbortSignal }) => Promise<string>,
    variable: string,
  ) => (options?: { signal?: AbortSignal }) => Promise<string>;
}

/**
 * The Genesys Cloud provider of a fleet rotation: an admin client
 * authenticated with the credential the flow hands it.
 *
 * @param options The token endpoint, the API and the token source's wrapper.
 * @returns The factory.
 */
export function genesysAdminProvider(
  options: GenesysAdminProviderOptions,
): FleetProviderFactory {
  return ({ credential, variable }) => {
    const auth = createDualSecretAuth({
      credentials: [credential],
      tokenUrl: options.tokenUrl,
    });
    const source = (o?: { signal?: AbortSignal }) => auth.getAccessToken(o);
    const admin = createGenesysAdminClient({
      apiUrl: options.apiUrl,
      getAccessToken: options.tokenSource?.(source, variable) ?? source,
      invalidateToken: (token) => auth.invalidate(token),
    });
    return {
      provider: genesysSecretProvider(admin),
      [Symbol.asyncDispose]: () => auth[Symbol.asyncDispose](),
    };
  };
}

/** Options of {@linkcode fleetRotation}. */
export interface FleetRotationOptions {
  /** The token endpoint, to prove the new secret. */
  readonly tokenUrl: string;
  /** The credentials, secrets as the store has them (`target.credentials`). */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic. */
  readonly active: string;
  /** The label to rotate. */
  readonly standby: string;
  /**
   * The env file's admin client, which authenticates the provider's calls.
   *
   * @default undefined (the active credential does)
   */
  readonly admin?: {
    readonly clientId: string;
    readonly clientSecret: CredentialInput["clientSecret"];
  };
  /** Opens the provider that issues the new secret ({@linkcode genesysAdminProvider}). */
  readonly provider: FleetProviderFactory;
  /**
   * Start over, ignoring an unfinished journal.
   *
   * @default false
   */
  readonly fresh?: boolean;
  /**
   * How long the new secret is proven for, in ms.
   *
   * @default 60_000
   */
  readonly propagationTimeoutMs?: number;
  /**
   * Progress lines for people.
   *
   * @default none
   */
  readonly progress?: (line: string) => void;
  /**
   * Promotes after the proof, when given.
   *
   * @default undefined (no promotion)
   */
  readonly onPromote?: (label: string) => Promise<void>;
  /**
   * Ctrl-C and SIGTERM: stop between phases and while proving, never
   * between the regenerate call and the new secret being sealed.
   *
   * @default undefined
   */
  readonly signal?: AbortSignal;
  /** The words of next steps. */
  readonly commands: RotationCommands;
}

/** A fleet rotation: run it once; then `generation()` is what it published. */
export interface FleetRotation {
  /**
   * Runs the staged rotation.
   *
   * @returns The report.
   * @throws {StagedRotationError} When a phase fails.
   */
  run(): Promise<RotationReport>;
  /**
   * The generation the run published.
   *
   * @returns It, or undefined when the run published none (a resumed one).
   */
  generation(): number | undefined;
}

/**
 * The staged rotation of one fleet credential: the store as sink (sealed),
 * journal and audit trail (every phase, in order).
 *
 * @param target The store target (with seal keys).
 * @param options What to rotate, and with which provider.
 * @returns The rotation.
 */
export function fleetRotation(
  target: StoreTarget,
  options: FleetRotationOptions,
): FleetRotation {
  const { active, standby } = options;
  const sink = target.sealedSink();
  return {
    generation: () => sink.generations.get(standby),
    async run() {
      const credential: CredentialInput = options.admin
        ? { label: "admin", ...options.admin }
        : options.credentials.find((c) => c.label === active)!;
      await using opened = await options.provider({
        credential,
        variable: options.admin
          ? "GENESYS_ADMIN_CLIENT_SECRET"
          : `GENESYS_CLIENT_SECRET_${active.toUpperCase()}`,
      });
      // One after the other, so the trail keeps the phases' order.
      let audits: Promise<void> = Promise.resolve();
      try {
        return await runStagedRotation({
          credentials: options.credentials,
          active,
          standby,
          tokenUrl: options.tokenUrl,
          provider: opened.provider,
          sink,
          promote: options.onPromote !== undefined,
          ...(options.onPromote ? { onPromote: options.onPromote } : {}),
          fresh: options.fresh,
          ...(options.signal ? { signal: options.signal } : {}),
          journal: target.journal,
          propagationTimeoutMs: options.propagationTimeoutMs,
          onPhase: (event) => {
            if (event.status === "progress") {
              options.progress?.(`${event.phase}: ${event.detail ?? ""}`);
            }
            if (event.status === "started" || event.status === "progress") {
              return;
            }
            const entry = {
              action: `rotate.${event.phase}`,
              outcome: event.status,
              label: standby,
              ...(event.detail ? { detail: event.detail } : {}),
            };
            audits = audits.then(() => audit(target, entry));
          },
          commands: options.commands,
        });
      } finally {
        await audits;
      }
    },
  };
}

/** What {@linkcode promoteFleet} saw. */
export type PromotionOutcome =
  | {
    /** The active label was set (or already named the label). */
    readonly kind: "promoted";
    /** The generation of the active label. */
    readonly generation: number;
    /** Whether this call changed it (false: it already named the label). */
    readonly changed: boolean;
    /** Live instances that did not report the label in time. */
    readonly stragglers: readonly InstanceRecord[];
    /** Whether the wait for the instances was cut short by the signal. */
    readonly interrupted: boolean;
  }
  | {
    /** Refused before changing anything: instances had not proved the secret. */
    readonly kind: "refused";
    /** The store's current secret of the label. */
    readonly identity: StoredSecretIdentity;
    /** The instances that had not proved it, and why. */
    readonly stragglers: readonly SecretStraggler[];
  };

/** Options of {@linkcode promoteFleet}. */
export interface PromoteFleetOptions {
  /** How long each wait for the instances lasts, in ms. */
  readonly timeoutMs: number;
  /**
   * Progress lines for people.
   *
   * @default none
   */
  readonly progress?: (line: string) => void;
  /**
   * Cuts the waits short (Ctrl-C, SIGTERM).
   *
   * @default undefined
   */
  readonly signal?: AbortSignal;
  /**
   * How often the heartbeats are read, in ms.
   *
   * @default 250
   */
  readonly pollMs?: number;
  /**
   * The live instances the caller saw before (its presence check): each
   * must report the label, so heartbeats lost with the store's data meanwhile
   * make stragglers, not a vacuous success.
   *
   * @default the live instances when the promotion starts
   */
  readonly expected?: readonly InstanceRecord[];
}

/**
 * Promotes a label on a fleet store: waits until every live instance proved
 * the store's current secret of it (when the store holds one), refusing
 * with the stragglers and their reasons otherwise; then sets the active
 * label (a no-op when it names the label already) and waits for the
 * heartbeats to show it.
 *
 * @param target The store target.
 * @param to The label.
 * @param options The waits.
 * @returns What happened.
 * @throws {AbortedError} When interrupted before the active label was set.
 */
export async function promoteFleet(
  target: StoreTarget,
  to: string,
  options: PromoteFleetOptions,
): Promise<PromotionOutcome> {
  const pollMs = options.pollMs ?? 250;
  const expected = options.expected ?? await target.live();
  const before = await target.store.readActive(target.service);
  // Already active: nothing to switch, so nothing to hold back; the wait
  // below still reports who follows.
  const identity = before?.label === to
    ? undefined
    : await readStoredSecretIdentity(target, to);
  if (identity === undefined && before?.label !== to) {
    // The store lost the label's secret that instances loaded from it: none
    // may have proved the one in use (a secret regenerated since), so there
    // is nothing to promote on until an instance seals it back.
    // The heartbeats seen before count too: lost with the store, they would
    // hide the loss.
    const now = await target.live();
    const known = [
      ...now,
      ...expected.filter((r) =>
        !now.some((n) => n.instanceId === r.instanceId)
      ),
    ];
    const [lost] = await target.lostSecrets(known, [to]);
    if (lost !== undefined) {
      const stragglers = known.filter((r) =>
        lost.instances.includes(r.instanceId)
      ).map((r) => ({
        instanceId: r.instanceId,
        ...(r.host === undefined ? {} : { host: r.host }),
        active: r.active,
        reason: "the store lost its secret; not sealed back yet",
      }));
      await audit(target, {
        action: "promote.ready",
        outcome: "refused",
        label: to,
        detail: `the store lost its secret (generation ${lost.generation})`,
      });
      return {
        kind: "refused",
        identity: { fingerprint: "", generation: lost.generation },
        stragglers,
      };
    }
  }
  if (identity !== undefined) {
    const behind = await waitForFleet(target, {
      reached: (instance) =>
        secretStragglers([instance], to, identity.fingerprint).length === 0,
      timeoutMs: options.timeoutMs,
      pollMs,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (reached, live) =>
        options.progress?.(
          `promote: ${reached}/${live} live instances proved the secret of "${to}" (generation ${identity.generation})`,
        ),
    });
    if (options.signal?.aborted) {
      throw new AbortedError({ cause: options.signal.reason });
    }
    if (behind.length > 0) {
      const stragglers = secretStragglers(behind, to, identity.fingerprint);
      await audit(target, {
        action: "promote.ready",
        outcome: "refused",
        label: to,
        detail: `not proved: ${
          stragglers.map((s) => `${s.instanceId} (${s.reason})`).join(", ")
        }`,
      });
      return { kind: "refused", identity, stragglers };
    }
  }
  const record = await target.setActive(to);
  const changed = before?.label !== to;
  if (changed) {
    await audit(target, {
      action: "promote",
      outcome: "ok",
      label: to,
      detail: `active generation ${record.generation}`,
    });
  }
  const stragglers = await waitForFleet(target, {
    reached: (instance) => instance.active === to,
    timeoutMs: options.timeoutMs,
    pollMs,
    expected,
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (reached, live) =>
      options.progress?.(
        `promote: ${reached}/${live} live instances on "${to}"`,
      ),
  });
  await audit(target, {
    action: "promote.wait",
    outcome: stragglers.length === 0 ? "ok" : "stragglers",
    label: to,
    ...(stragglers.length === 0 ? {} : {
      detail: `not on "${to}": ${
        stragglers.map((s) => s.instanceId).join(", ")
      }`,
    }),
  });
  return {
    kind: "promoted",
    generation: record.generation,
    changed,
    stragglers,
    interrupted: options.signal?.aborted === true,
  };
}

/** Options of {@linkcode scheduledRotation}. */
export interface ScheduledRotationOptions {
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The env file's credentials (ids and first secrets); the store's secrets win. */
  readonly credentials: readonly CredentialInput[];
  /**
   * The env file's admin client.
   *
   * @default undefined (the active credential authenticates the provider)
   */
  readonly admin?: {
    readonly clientId: string;
    readonly clientSecret: CredentialInput["clientSecret"];
  };
  /** Opens the provider. */
  readonly provider: FleetProviderFactory;
  /**
   * How long the new secret is proven for, in ms.
   *
   * @default 60_000
   */
  readonly propagationTimeoutMs?: number;
  /**
   * Stops a rotation between phases (a regenerated secret is sealed first).
   *
   * @default undefined
   */
  readonly signal?: AbortSignal;
  /**
   * Progress lines for people.
   *
   * @default none
   */
  readonly progress?: (line: string) => void;
  /**
   * The command that starts over, for the words of a failure.
   *
   * @default "rotate the fleet with --fresh"
   */
  readonly freshCommand?: string;
}

/**
 * The rotate step of a scheduled cycle (`ScheduleOptions.rotate`): the
 * staged rotation of the standby on the store. An unfinished rotation is
 * resumed; one of this label that completed after the cycle began (its
 * leader died before recording the step) is not done twice: the store's
 * generation is taken as it is.
 *
 * @param target The store target (with seal keys).
 * @param options The provider and the env's credentials.
 * @returns The step: it resolves with the generation published.
 */
export function scheduledRotation(
  target: StoreTarget,
  options: ScheduledRotationOptions,
): (standby: string, cycleStartedAt: number) => Promise<number> {
  return async (standby, cycleStartedAt) => {
    const previous = await target.journal.read();
    const ring = target.ring;
    if (
      ring !== undefined && previous?.standby === standby &&
      previous.completedAt !== undefined &&
      previous.startedAt >= cycleStartedAt
    ) {
      const stored = await readDistributedSecret(target, ring, standby);
      if (stored !== undefined) return stored.generation;
    }
    const credentials = await target.credentials(options.credentials);
    const active = credentials.find((c) => c.label !== standby)!.label;
    const rotation = fleetRotation(target, {
      tokenUrl: options.tokenUrl,
      credentials,
      active,
      standby,
      ...(options.admin ? { admin: options.admin } : {}),
      provider: options.provider,
      // An unfinished rotation from before this cycle is resumed; a
      // finished one (an earlier cycle's) starts over.
      fresh: previous?.completedAt !== undefined,
      ...(options.propagationTimeoutMs === undefined
        ? {}
        : { propagationTimeoutMs: options.propagationTimeoutMs }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.progress ? { progress: options.progress } : {}),
      commands: {
        rerun: "let the scheduler retry at its next tick",
        promote: "let the scheduler promote",
        fresh: options.freshCommand ?? "rotate the fleet with --fresh",
      },
    });
    await rotation.run();
    const generation = rotation.generation() ??
      (ring === undefined
        ? undefined
        : (await readDistributedSecret(target, ring, standby))?.generation);
    if (generation === undefined) {
      throw new Error(`the rotation of "${standby}" published no secret`);
    }
    return generation;
  };
}

/** Options of {@linkcode runScheduler}. */
export interface RunSchedulerOptions extends ScheduledRotationOptions {
  /** The label to assume active when the store has none yet. */
  readonly initialActive: string;
  /** The period of a cycle, in ms. */
  readonly everyMs: number;
  /** How often a tick runs, in ms (1 to 2^31 - 1). */
  readonly tickMs: number;
  /** The leader lease, in ms. */
  readonly leaseMs: number;
  /** A token's lifetime, for the gate, in ms. */
  readonly tokenLifetimeMs: number;
  /** The heartbeat bound for draining, in ms. */
  readonly drainBoundMs: number;
  /**
   * Stop once the store counts this many completed cycles.
   *
   * @default unlimited
   */
  readonly cycles?: number;
  /**
   * `--allow-empty` and `--expect-instances`.
   *
   * @default {}
   */
  readonly presence?: PresenceExpectation;
  /** Stops the loop after the step in progress (a rotation seals its secret first). */
  readonly signal: AbortSignal;
}

/**
 * Ticks the scheduler until the signal aborts (or `cycles` are done): each
 * tick takes or renews the leader lease and advances the cycle; a step that
 * fails is retried at the next tick (the store keeps where the cycle is).
 *
 * @param target The store target; `by` is this scheduler's id.
 * @param options Timing, the provider and the credentials.
 * @returns The completed cycles the store counts when it stops.
 */
export async function runScheduler(
  target: StoreTarget,
  options: RunSchedulerOptions,
): Promise<number> {
  const progress = options.progress ?? (() => {});
  const rotate = scheduledRotation(target, options);
  while (!options.signal.aborted) {
    const state = await readScheduleState(target);
    if (
      options.cycles !== undefined && (state?.completed ?? 0) >= options.cycles
    ) break;
    try {
      await scheduleTick({
        target,
        credentials: options.credentials,
        initialActive: options.initialActive,
        everyMs: options.everyMs,
        leaseMs: options.leaseMs,
        tokenLifetimeMs: options.tokenLifetimeMs,
        drainBoundMs: options.drainBoundMs,
        onProgress: progress,
        ...(options.presence ? { presence: options.presence } : {}),
        rotate,
      });
    } catch (error) {
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
        options.signal.removeEventListener("abort", wake);
        resolve();
      }, options.tickMs);
      options.signal.addEventListener("abort", wake, { once: true });
    });
  }
  return (await readScheduleState(target))?.completed ?? 0;
}
