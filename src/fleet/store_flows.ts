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
import { Secret } from "../secret.ts";
import { createDualSecretAuth } from "../dual_secret_auth.ts";
import { AbortedError, DualSecretAuthError } from "../errors.ts";
import { systemClock } from "../clock.ts";
import { delay } from "../retry.ts";
import { createGenesysAdminClient } from "../genesys/admin_client.ts";
import { genesysSecretProvider } from "../genesys/secret_provider.ts";
import type { SecretProvider } from "../rotation/provider.ts";
import { tokenRequestOptions } from "../rotation/proof.ts";
import {
  type RetireFailpoint,
  type RevokeRequest,
  type RotationCommands,
  type RotationFailpoint,
  type RotationReport,
  runStagedRotation,
} from "../rotation/staged_rotation.ts";
import type {
  IncidentEvent,
  IncidentJournal,
  LoadRequest,
} from "../rotation/incident.ts";
import type { SecretSink } from "../rotation/sinks.ts";
import {
  audit,
  fleetLoadProof,
  FleetNotLoadedError,
  type GateBlocker,
  judgeFleetPresence,
  type PresenceExpectation,
  readDistributedSecret,
  readStoredSecretIdentity,
  retireSealedRecord,
  type SecretStraggler,
  secretStragglers,
  type SeenInstance,
  type StoredSecretIdentity,
  storedSecretIds,
  type StoreLock,
  waitForFleet,
} from "./operator.ts";
import { SEAL_KEY_VARIABLE } from "./distribution.ts";
import { readScheduleState, scheduleTick } from "./schedule.ts";
import { type InstanceRecord, isActiveRecord } from "./store.ts";
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

/** A provider adapter as `readProviderEnv(...).createProvider()` builds it. */
export interface ProviderAdapterHandle {
  /** The adapter behind the rotation engine's port. */
  readonly provider: SecretProvider;
  /** Closes what it opened (its admin token client). */
  close(): Promise<void>;
}

/**
 * The provider of a fleet rotation for Okta, Entra ID, Keycloak, Cognito or
 * Auth0: the adapter the env file's `AUTH_PROVIDER` names (only it is
 * loaded), authenticated with the env file's own admin credential (an API
 * token, an admin client, AWS keys), so the credential the flow hands it is
 * not used: these providers never administer with a rotated label.
 *
 * @param open Builds the adapter, such as `() => config.createProvider({ fetch })`.
 * @returns The factory.
 */
export function providerAdapterFactory(
  open: () => Promise<ProviderAdapterHandle>,
): FleetProviderFactory {
  return async () => {
    const handle = await open();
    return {
      provider: handle.provider,
      [Symbol.asyncDispose]: () => handle.close(),
    };
  };
}

/** The code of {@linkcode RetireGateShutError}. */
export const RETIRE_GATE_SHUT = "RETIRE_GATE_SHUT" as const;

/**
 * A two-secret rotation's retire step on a fleet store found live instances
 * still holding or using the old label's secret: it was not revoked.
 */
export class RetireGateShutError extends DualSecretAuthError {
  /** The instances that keep it shut, and why. */
  readonly blockers: readonly GateBlocker[];

  /**
   * Creates the error.
   *
   * @param label The old label.
   * @param secretId The provider's id of its secret.
   * @param blockers The instances that keep the gate shut.
   * @param waitedMs How long the gate was watched, in ms.
   * @param storeLost Whether the store lost its data (the rotation's
   * journal, the heartbeats) since the run began.
   * @default storeLost false
   */
  constructor(
    label: string,
    secretId: string,
    blockers: readonly GateBlocker[],
    waitedMs: number,
    storeLost: boolean = false,
  ) {
    super(
      RETIRE_GATE_SHUT,
      storeLost
        ? `the old secret ${secretId} of "${label}" was not revoked: the fleet store lost its data during the rotation (its journal is gone, and the instances' heartbeats with it), so who still uses it cannot be told; check why the store lost its data, then run the rotation again (it revokes the secret behind the gate)`
        : `the old secret ${secretId} of "${label}" was not revoked: after ${
          Math.round(waitedMs / 1000)
        } s, ${blockers.length} live instance(s) still hold or use it (${
          blockers.map((b) => `${b.instanceId}: ${b.reason}`).join(", ")
        }); they keep working on the new secret meanwhile`,
    );
    this.blockers = blockers;
  }
}

/** Options of {@linkcode fleetRevokeGate}. */
export interface FleetRevokeGateOptions {
  /** How long a token lives, in ms: a use within it keeps the gate shut. */
  readonly tokenLifetimeMs: number;
  /** How long to watch the heartbeats for the gate to open, in ms. */
  readonly timeoutMs: number;
  /**
   * How often the heartbeats are read, in ms.
   *
   * @default 250
   */
  readonly pollMs?: number;
  /**
   * The rotation's credentials: the old label's secret is sealed into a
   * retired record when the store holds none of it (it came from the env
   * file), so a promotion back to it is refused.
   *
   * @default undefined (a missing record stays missing)
   */
  readonly credentials?: readonly CredentialInput[];
  /**
   * Progress lines for people.
   *
   * @default none
   */
  readonly progress?: (line: string) => void;
}

/**
 * The revoke gate of a two-secret rotation's `retire` step on a fleet store
 * (`StagedRotationOptions.revokeGate`): the old label's secret may be
 * revoked only once no live instance has that label active, holds a token
 * of it, or used one within a token's lifetime (the same rule as before a
 * regeneration, `checkRevokeGate`, asked of the old label: its heartbeat
 * figures are the old secret's, since the two labels' tokens are kept apart
 * although they share a client id). It watches the heartbeats for up to
 * `timeoutMs`; once the gate opens it marks the label's sealed record
 * retired (instances stop loading it) and resolves, and the step revokes
 * the secret through the provider. Every outcome goes to the audit trail.
 *
 * @param target The store target.
 * @param options The token lifetime and the wait.
 * @returns The gate.
 * @throws {RetireGateShutError} From the gate, when it stayed shut.
 */
export function fleetRevokeGate(
  target: StoreTarget,
  options: FleetRevokeGateOptions,
): (request: RevokeRequest) => Promise<string> {
  const pollMs = options.pollMs ?? 250;
  return async (request) => {
    const started = target.now();
    // The run's journal is in the store from its start: without it the store
    // lost its data since, and the heartbeats with it, so an instance still
    // using the old secret may simply not have beaten again yet.
    const read = async () => {
      const gate = await target.gate(request, options.tokenLifetimeMs);
      const lost = await target.journal.read() === undefined;
      return lost ? { ...gate, open: false, lost } : { ...gate, lost };
    };
    let gate = await read();
    while (!gate.open && target.now() - started < options.timeoutMs) {
      options.progress?.(
        `retire: waiting for ${gate.blockers.length} live instance(s) to stop using "${request.label}" (${
          gate.blockers.map((b) => `${b.instanceId}: ${b.reason}`).join(", ")
        })`,
      );
      await delay(pollMs, systemClock, request.signal).catch((reason) => {
        throw new AbortedError({ cause: reason });
      });
      gate = await read();
    }
    if (!gate.open) {
      await audit(target, {
        action: "rotate.retire-gate",
        outcome: "refused",
        label: request.label,
        detail: `${request.secretId}: ${
          [
            ...(gate.lost ? ["the store lost its data (journal gone)"] : []),
            ...gate.blockers.map((b) => `${b.instanceId} (${b.reason})`),
          ].join(", ")
        }`,
      });
      throw new RetireGateShutError(
        request.label,
        request.secretId,
        gate.blockers,
        target.now() - started,
        gate.lost,
      );
    }
    const marked = await retireLabel(
      target,
      request.label,
      request.secretId,
      options.credentials,
    );
    await audit(target, {
      action: "rotate.retire-gate",
      outcome: "open",
      label: request.label,
      detail:
        `${request.secretId}: ${gate.instances} live instance(s), none uses it${
          marked ? "; its sealed record is marked retired" : ""
        }`,
    });
    return `${gate.instances} live instance(s), none holds or uses it`;
  };
}

/** Options of {@linkcode fleetRotation}. */
export interface FleetRotationOptions {
  /** The token endpoint, to prove the new secret. */
  readonly tokenUrl: string;
  /**
   * The scope the service requests (Okta and Entra ID require one): the
   * plan's token request and the new secret's proof send it.
   *
   * @default undefined (none)
   */
  readonly scope?: string;
  /**
   * Further token request parameters, such as Auth0's `{ audience }`.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /** The credentials, secrets as the store has them (`target.credentials`). */
  readonly credentials: readonly CredentialInput[];
  /**
   * Two-secret providers, with `onPromote`: after promotion the old label's
   * secret is revoked once {@linkcode fleetRevokeGate} opens (waiting up
   * to `timeoutMs`).
   *
   * @default undefined (the old secret is kept; the next rotation of that
   *   label revokes it before issuing when the client is at its limit)
   */
  readonly retire?: FleetRevokeGateOptions;
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
   * The env file's variable of a label's secret (`"admin"` for the admin
   * client's), named when the provider refuses it.
   *
   * @default the `GENESYS_*` names
   */
  readonly secretVariable?: (label: string) => string;
  /**
   * Two-secret providers: the env file's `AUTH_SECRET_ID_<LABEL>`, for a
   * label the store holds no record of (its secret is the env file's).
   *
   * @default {} (the store's records only)
   */
  readonly envFileSecretIds?: Readonly<Record<string, string>>;
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
  /**
   * A test hook, awaited at each of the engine's named points (such as to
   * stop the process after the new secret was sealed: `publish:after`).
   *
   * @param point The point reached.
   */
  failpoint?(point: RotationFailpoint | RetireFailpoint): void | Promise<void>;
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
 * With a two-secret provider (Okta, Entra ID, Cognito, Keycloak with its
 * rotation policy) both labels are secrets of one client: each sealed
 * record carries its secret's id, which the run hands the engine
 * (`secretIds`); the standby's old secret is revoked before its new one is
 * issued, so the caller must have passed the store's revoke gate for the
 * standby (`passRevokeGate`), as `rotate --kv|--redis` and the scheduler
 * do; with `onPromote` and `retire`, the old label's secret is revoked
 * after the promotion behind {@linkcode fleetRevokeGate}.
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
        variable: options.secretVariable?.(options.admin ? "admin" : active) ??
          (options.admin
            ? "GENESYS_ADMIN_CLIENT_SECRET"
            : `GENESYS_CLIENT_SECRET_${active.toUpperCase()}`),
      });
      const twoSecrets = opened.provider.model === "two-secrets";
      // Which secret each label uses, as the store's records carry it: the
      // plan never revokes the active one, retire revokes the old label's.
      const secretIds = twoSecrets
        ? await storedSecretIds(
          target,
          options.credentials.map((c) => c.label),
          options.envFileSecretIds,
        )
        : {};
      if (
        twoSecrets && secretIds[standby] === undefined &&
        secretIds[active] !== undefined
      ) {
        // The standby's secret predates the store (the env file's first
        // one): when the client lists exactly one secret besides the
        // active label's, it is the standby's, revoked before issuing (the
        // gate passed for the standby).
        const standbyId = await inferStandbySecretId(
          opened.provider,
          options.credentials.find((c) => c.label === standby)?.clientId,
          secretIds[active],
          options.signal,
        );
        if (standbyId !== undefined) secretIds[standby] = standbyId;
      }
      // One after the other, so the trail keeps the phases' order.
      let audits: Promise<void> = Promise.resolve();
      try {
        return await runStagedRotation({
          credentials: options.credentials,
          active,
          standby,
          tokenUrl: options.tokenUrl,
          ...tokenRequestOptions(options),
          provider: opened.provider,
          // The engine revokes the standby's recorded old secret before
          // issuing, as a twin client's dies: every caller passed the
          // store's revoke gate for the standby first (rotate --kv|--redis,
          // the scheduler).
          ...(twoSecrets ? { secretIds } : {}),
          ...(twoSecrets && options.retire !== undefined
            ? {
              revokeGate: fleetRevokeGate(target, {
                ...options.retire,
                credentials: options.credentials,
                ...(options.progress ? { progress: options.progress } : {}),
              }),
            }
            : {}),
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
          ...(options.failpoint
            ? { failpoint: (point) => options.failpoint!(point) }
            : {}),
        });
      } finally {
        await audits;
      }
    },
  };
}

/**
 * Marks a label's sealed record retired once its provider secret is
 * revoked; where the store holds no record of it (its secret came from the
 * env file), one retired from the start is sealed from `credentials`, so a
 * promotion to it is refused as well.
 */
function retireLabel(
  target: StoreTarget,
  label: string,
  secretId: string,
  credentials: readonly CredentialInput[] | undefined,
): Promise<boolean> {
  const credential = credentials?.find((c) => c.label === label);
  return retireSealedRecord(
    target,
    label,
    secretId,
    credential === undefined || target.ring === undefined ? undefined : {
      ring: target.ring,
      clientId: credential.clientId,
      secret: typeof credential.clientSecret === "string"
        ? new Secret(credential.clientSecret)
        : credential.clientSecret,
    },
  );
}

/** The one secret a two-secret client lists besides `activeId`, if exactly one. */
async function inferStandbySecretId(
  provider: SecretProvider,
  clientId: string | undefined,
  activeId: string,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  if (clientId === undefined) return undefined;
  const client = await provider.inspectClient(clientId, {
    ...(signal ? { signal } : {}),
  });
  const listed = client.secrets ?? [];
  if (!listed.some((s) => s.secretId === activeId)) return undefined;
  const others = listed.filter((s) => s.secretId !== activeId);
  return others.length === 1 ? others[0].secretId : undefined;
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
  if (identity?.retiredAt !== undefined) {
    // Its provider secret was revoked: promoting would break every call.
    await audit(target, {
      action: "promote.ready",
      outcome: "refused",
      label: to,
      detail: `its secret was retired (generation ${identity.generation})`,
    });
    return {
      kind: "refused",
      identity,
      stragglers: (await target.live()).map((r) => ({
        instanceId: r.instanceId,
        ...(r.host === undefined ? {} : { host: r.host }),
        active: r.active,
        reason:
          `the secret of "${to}" was retired (revoked); rotate "${to}" first`,
      })),
    };
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
  /**
   * The scope the service requests, for the plan and the proof.
   *
   * @default undefined (none)
   */
  readonly scope?: string;
  /**
   * Further token request parameters, such as Auth0's `{ audience }`.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
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
      ...tokenRequestOptions(options),
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

/** A fleet command's refusal before it changed anything: the words and what was seen. */
export interface PresenceRefusal {
  /** For people: what was seen, the list, and the flags that proceed. */
  readonly message: string;
  /** The live instances of other namespaces. */
  readonly elsewhere: readonly SeenInstance[];
}

/** How a fleet command reads for people: the words its tasks print. */
export interface FleetWords {
  /**
   * The store options as a next step repeats them, such as `--kv fleet.db
   * --prefix svc` (never a Redis URL: `--redis env`).
   */
  readonly storeArgs: string;
  /** The env file, as the operator named it. */
  readonly envFile: string;
  /**
   * The env file's variable of the active label.
   *
   * @default "GENESYS_ACTIVE"
   */
  readonly activeVariable?: string;
  /**
   * Renders live instances as a table (one line each, with a header).
   *
   * @param rows The instances.
   * @param now The current time, for their ages.
   * @returns The lines.
   */
  instanceTable(rows: readonly InstanceRecord[], now: number): string[];
  /**
   * Renders the live instances of other namespaces as a table.
   *
   * @param rows The instances, with their prefixes.
   * @returns The lines (none for no rows).
   */
  elsewhereTable(rows: readonly SeenInstance[]): string[];
}

/**
 * Refuses to change a fleet whose namespace shows no live instance (or
 * fewer than `--expect-instances`), unless told to proceed: the verdict of
 * `judgeFleetPresence` in an operator's words. Reads only.
 *
 * @param target The store target.
 * @param live The live heartbeats of the namespace.
 * @param expectation The operator's flags.
 * @param verb What the command would do, such as `regenerate a credential of this fleet`.
 * @param seen The live instances of the store's other namespaces, and how to show them.
 * @returns The refusal, or undefined to proceed.
 */
export async function fleetPresenceRefusal(
  target: StoreTarget,
  live: readonly InstanceRecord[],
  expectation: PresenceExpectation,
  verb: string,
  seen: {
    /** The live instances of other namespaces (read only when none is live here). */
    readonly elsewhere: (now: number) => Promise<SeenInstance[]>;
    /** Renders them. */
    readonly table: (rows: readonly SeenInstance[]) => string[];
  },
): Promise<PresenceRefusal | undefined> {
  const stored = await target.store.readActive(target.service);
  const activeRecord = isActiveRecord(stored) ? stored : undefined;
  const elsewhere = live.length > 0 ? [] : await seen.elsewhere(target.now());
  const verdict = judgeFleetPresence({
    live: live.length,
    ...(activeRecord === undefined ? {} : { activeRecord }),
    elsewhere,
  }, expectation);
  if (verdict.proceed) return undefined;
  const lines = elsewhere.length === 0 ? [] : seen.table(elsewhere);
  return {
    message: `Refusing to ${verb}: ${verdict.reason}. Nothing was changed.\n` +
      (lines.length > 0 ? `${lines.join("\n")}\n` : "") +
      `Next: check --kv/--redis, --prefix and --scope (they must be the fleet's own); ` +
      `if the fleet really has no live instance, pass --allow-empty; ` +
      `to require a number of live instances, pass --expect-instances N.`,
    elsewhere,
  };
}

/** Options of {@linkcode planFleetRotation}. */
export interface FleetRotationPlanOptions {
  /** The env file's credentials (ids and first secrets); the store's secrets win. */
  readonly credentials: readonly CredentialInput[];
  /**
   * The env file's `GENESYS_ACTIVE`: taken only when the store has no
   * active label, no live instance reports, and the operator allowed that.
   */
  readonly envActive: string;
  /**
   * The label to rotate (`--to`).
   *
   * @default the label the fleet does not use
   */
  readonly to?: string;
  /** `--allow-empty` and `--expect-instances`. */
  readonly expectation: PresenceExpectation;
  /** The live instances of the store's other namespaces. */
  readonly elsewhere: (now: number) => Promise<SeenInstance[]>;
  /** How the refusals read. */
  readonly words: FleetWords;
}

/** What {@linkcode planFleetRotation} decided, before anything changed. */
export type FleetRotationPlan =
  | {
    /** Refused: the fleet does not look like one to rotate (exit 4 in the tasks). */
    readonly kind: "refused";
    /** `FLEET_ACTIVE_UNKNOWN`, `FLEET_NOT_SEEN` or `FLEET_SECRET_LOST`. */
    readonly code:
      | "FLEET_ACTIVE_UNKNOWN"
      | "FLEET_NOT_SEEN"
      | "FLEET_SECRET_LOST";
    /** What was seen, that nothing was changed, and the next step. */
    readonly message: string;
    /** What a JSON report adds (`elsewhere`, `lost`). */
    readonly details?: Readonly<Record<string, unknown>>;
  }
  | {
    /** The command line asks for what cannot be (exit 2 in the tasks). */
    readonly kind: "usage";
    /** What is wrong and what to do. */
    readonly message: string;
  }
  | {
    /** Ready to rotate. */
    readonly kind: "ready";
    /** The live heartbeats of the namespace. */
    readonly live: readonly InstanceRecord[];
    /** The label serving the fleet. */
    readonly active: string;
    /** The label to rotate. */
    readonly standby: string;
    /** The credentials, secrets as the store has them. */
    readonly credentials: readonly CredentialInput[];
    /** The standby's credential among them. */
    readonly standbyCredential: CredentialInput;
    /**
     * A line for people, when the active label was not the target's.
     *
     * @default undefined
     */
    readonly notice?: string;
  };

/**
 * Plans a rotation of a fleet from its target, reading only: the active
 * label from the store (its record, or what every live instance reports;
 * the env file's only when the operator allowed an empty namespace),
 * refusing when the live instances disagree and the store names none, when
 * no live instance reports (a forgotten `--prefix`, a mistyped store), and
 * when the store lost the active label's sealed secret; then the standby and
 * the credentials as the store has them.
 *
 * @param target The store target (with seal keys).
 * @param options The env file's word, the flags and the words.
 * @returns The plan, or why not.
 * @throws {SealKeyMismatchError} When a stored secret does not open with the keys.
 */
export async function planFleetRotation(
  target: StoreTarget,
  options: FleetRotationPlanOptions,
): Promise<FleetRotationPlan> {
  const { words } = options;
  const { storeArgs } = words;
  const live = await target.live();
  const fromTarget = await target.readActive(live);
  if (fromTarget === undefined && live.length > 0) {
    const labels = [...new Set(live.map((r) => r.active))].sort();
    return {
      kind: "refused",
      code: "FLEET_ACTIVE_UNKNOWN",
      message:
        `The fleet store has no active label and its ${live.length} live instances disagree (${
          labels.join(", ")
        }); nothing was changed.\n${
          words.instanceTable(live, target.now()).join("\n")
        }\nNext: promote one label (deno task promote ${storeArgs} --to <label>), then rotate the other.`,
    };
  }
  const refusal = await fleetPresenceRefusal(
    target,
    live,
    options.expectation,
    "regenerate a credential of this fleet",
    { elsewhere: options.elsewhere, table: words.elsewhereTable },
  );
  if (refusal !== undefined) {
    return {
      kind: "refused",
      code: "FLEET_NOT_SEEN",
      message: refusal.message,
      details: { elsewhere: refusal.elsewhere },
    };
  }
  // Only an empty namespace the operator allowed gets here without a label
  // from the store: its GENESYS_ACTIVE is the only word there is.
  const active = fromTarget?.label ?? options.envActive;
  const notice = fromTarget === undefined
    ? `Notice: the fleet store holds no active label and no live instance reports; taking "${active}" as active from ${
      words.activeVariable ?? "GENESYS_ACTIVE"
    } in ${words.envFile}.`
    : undefined;
  // A store that lost its data has no sealed secret of the active label,
  // and the env file's is older than the one the instances use: the plan's
  // proof of the active credential would fail on it.
  const [lost] = await target.lostSecrets(live, [active]);
  if (lost !== undefined) {
    return {
      kind: "refused",
      code: "FLEET_SECRET_LOST",
      message:
        `The fleet store holds no sealed secret of the active label "${active}", but ${lost.instances.length} live instance(s) report one loaded from it (generation ${lost.generation}): the store lost its data (a Redis restarted without persistence, FLUSHALL, a restored backup). ` +
        `The instances keep serving with the secrets they hold; nothing was changed.\n` +
        `Next: wait a few seconds and run the same command again: instances seal the secret they use back into the store within a heartbeat lifetime (see the audit trail: deno task fleet ${storeArgs} --history). ` +
        `If it stays lost (instances of an older version, or without ${SEAL_KEY_VARIABLE}), and ${words.envFile} still holds a working secret of the other label, promote that label (deno task promote ${storeArgs} --to <label>) and rotate this one.`,
      details: { lost },
    };
  }
  const standby = options.to ??
    options.credentials.find((c) => c.label !== active)!.label;
  if (standby === active) {
    return {
      kind: "usage",
      message:
        `"${standby}" is the fleet's active label; rotate the other one, or promote first (deno task promote ${storeArgs})`,
    };
  }
  const credentials = await target.credentials(options.credentials);
  const standbyCredential = credentials.find((c) => c.label === standby);
  if (standbyCredential === undefined) {
    return { kind: "usage", message: `"${standby}" is not blue or green` };
  }
  return {
    kind: "ready",
    live,
    active,
    standby,
    credentials,
    standbyCredential,
    ...(notice === undefined ? {} : { notice }),
  };
}

/**
 * Whether the next rotation of `standby` resumes one already past its
 * regenerate call (it then has nothing left to gate). Reads only.
 *
 * @param target The store target.
 * @param standby The label to rotate.
 * @param fresh Whether the operator starts over (`--fresh`).
 * @returns Whether it resumes such a run.
 */
export async function resumesPastRegenerate(
  target: StoreTarget,
  standby: string,
  fresh: boolean,
): Promise<boolean> {
  const unfinished = await target.journal.read();
  if (fresh || unfinished === undefined) return false;
  if (unfinished.completedAt !== undefined) return false;
  // Promoted and not finished (a two-secret rotation whose retire step
  // waits for the old secret to go unused): only retire is left, behind
  // its own gate; nothing is regenerated.
  if (unfinished.promotedAt !== undefined) return true;
  return unfinished.standby === standby &&
    unfinished.regenerateRequestedAt !== undefined;
}

/** Options of {@linkcode fleetIncidentPorts}. */
export interface FleetIncidentPortsOptions {
  /** The compromised label, named by every audit entry of the response. */
  readonly compromised: string;
  /** How long each wait for the heartbeats lasts, in ms (`--timeout`). */
  readonly timeoutMs: number;
  /**
   * Go on after `timeoutMs` although some live instances did not report
   * (`--force`): recorded in the audit trail.
   *
   * @default false
   */
  readonly force?: boolean;
  /**
   * Told when `force` went on past stragglers, before it is audited (a
   * task's warning with their table).
   *
   * @default nothing
   */
  readonly onForced?: (error: FleetNotLoadedError) => void;
  /**
   * Progress lines for people while the heartbeats are awaited.
   *
   * @default none
   */
  readonly progress?: (line: string) => void;
  /**
   * The store's rotation lock the response holds: renewed after every step
   * is audited, so a long response keeps it and a killed one's lapses.
   *
   * @default undefined
   */
  readonly lock?: StoreLock;
  /**
   * The response's credentials: the compromised label's revoked secret is
   * sealed into a retired record when the store holds none of it (it came
   * from the env file, or the store lost it), so a promotion to it is
   * refused.
   *
   * @default undefined (a missing record stays missing)
   */
  readonly credentials?: readonly CredentialInput[];
}

/** The ports of `respondToCompromise` on a fleet store (see {@linkcode fleetIncidentPorts}). */
export interface FleetIncidentPorts {
  /** Seals each new secret into the store (the next generation of its label). */
  readonly sink: SecretSink;
  /** The incident journal in the store: a re-run resumes from any host. */
  readonly journal: IncidentJournal;
  /**
   * Sets the fleet's active label, audited as the incident's promotion.
   *
   * @param label The clean label.
   */
  onPromote(label: string): Promise<void>;
  /**
   * The load proof: every live instance's heartbeat reports the label's
   * sealed secret (and, for `active`, names it active).
   *
   * @param request What to prove.
   * @returns The line for the timeline.
   * @throws {FleetNotLoadedError} Naming the stragglers, unless `force`.
   */
  awaitLoaded(request: LoadRequest): Promise<string>;
  /**
   * Two-secret providers: marks the compromised label's sealed record
   * retired once its secret is revoked (instances stop loading it, and a
   * promotion to it is refused until it is rotated again), audited.
   * Idempotent: a re-run marks nothing twice.
   *
   * @param request The label and the revoked secret's id.
   * @returns When the record is marked (or was, or carries another secret).
   */
  onSecretRevoked(
    request: { readonly label: string; readonly secretId: string },
  ): Promise<void>;
  /**
   * Appends a step of the response to the audit trail (in order, one after
   * the other) and renews the lock; never throws.
   *
   * @param event The step.
   */
  recordStep(event: IncidentEvent): void;
  /**
   * Resolves once every step recorded so far is written.
   *
   * @returns When they are.
   */
  settled(): Promise<void>;
}

/**
 * Incident mode on a fleet store: the new secrets sealed into the store,
 * the journal kept there, the promotion set as the store's active label,
 * the load proof read from the heartbeats, and every step in the audit
 * trail. `deno task incident --kv|--redis` hands these to
 * `respondToCompromise`.
 *
 * @param target The store target (with seal keys).
 * @param options The compromised label, the waits and the lock.
 * @returns The ports.
 * @throws {ConfigError} Without seal keys.
 */
export function fleetIncidentPorts(
  target: StoreTarget,
  options: FleetIncidentPortsOptions,
): FleetIncidentPorts {
  const proof = fleetLoadProof(target, {
    timeoutMs: options.timeoutMs,
    ...(options.progress ? { onProgress: options.progress } : {}),
  });
  // The audit trail keeps the steps in order: one write after the other.
  let audits: Promise<void> = Promise.resolve();
  return {
    sink: target.sealedSink(),
    journal: target.incidentJournal,
    async onPromote(label) {
      const record = await target.setActive(label);
      await audit(target, {
        action: "promote",
        outcome: "ok",
        label,
        detail: `active generation ${record.generation} (incident)`,
      });
    },
    async onSecretRevoked({ label, secretId }) {
      const marked = await retireLabel(
        target,
        label,
        secretId,
        options.credentials,
      );
      await audit(target, {
        action: "incident.retire",
        outcome: marked ? "ok" : "skipped",
        label,
        detail: marked
          ? `${secretId} revoked; its sealed record is marked retired`
          : `${secretId} revoked; the sealed record of "${label}" carries another secret`,
      });
    },
    async awaitLoaded(request) {
      if (!options.force) return await proof(request);
      try {
        return await proof(request);
      } catch (error) {
        if (!(error instanceof FleetNotLoadedError)) throw error;
        options.onForced?.(error);
        await audit(target, {
          action: "incident.wait",
          outcome: "forced",
          label: request.label,
          detail: error.message,
        });
        return `--force: went on although ${error.message}`;
      }
    },
    recordStep(event) {
      audits = audits.then(async () => {
        await audit(target, {
          action: `incident.${event.step}`,
          outcome: event.status,
          label: options.compromised,
          detail: event.detail,
        });
        await options.lock?.renew().catch(() => undefined);
      });
    },
    settled: () => audits,
  };
}
