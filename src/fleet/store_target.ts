/**
 * The fleet store as a rotation target: where a fleet's new secrets (sealed),
 * its active label, its rotation journal, its lock and its audit trail live,
 * and the revoke gate read from its heartbeats. One object holds them, so the
 * tasks (`rotate`, `promote`, `rotate --every`) and a `Deno.cron` scheduler
 * assemble nothing of their own: they open an engine, make a target, and run
 * a flow of `./store_flows.ts` on it.
 *
 * @module
 */
import type { CredentialInput } from "../config.ts";
import type { RotationJournal } from "../rotation/journal.ts";
import {
  type IncidentJournal,
  isIncidentJournalRecord,
} from "../rotation/incident.ts";
import type { SecretSink } from "../rotation/sinks.ts";
import { ConfigError } from "../errors.ts";
import { authenticateStore, type ControlRecordKind } from "./control.ts";
import { SEAL_KEY_VARIABLE, type SealKeyring } from "./distribution.ts";
import {
  acquireStoreLock,
  checkRevokeGate,
  createSealedStoreSink,
  createStoreJournal,
  credentialsFromStore,
  findLostSecrets,
  type FleetTarget,
  type GateReport,
  listLive,
  type LostSecret,
  readTargetActive,
  setSharedActive,
  type StoreLock,
  type TargetActive,
} from "./operator.ts";
import type { ActiveRecord, FleetStore, InstanceRecord } from "./store.ts";

/** The incident response's journal in the store, beside the rotation's. */
const INCIDENT_JOURNAL = Object.freeze({
  key: "incident/journal",
  name: "incident journal",
  isRecord: isIncidentJournalRecord,
});

/** Options of {@linkcode createStoreTarget}. */
export interface StoreTargetOptions {
  /** The engine: `createKvFleetStore` (`./kv`), `createRedisFleetStore` (`./redis`), or memory. */
  readonly store: FleetStore;
  /** The service namespace: `serviceNamespace(tokenUrl, scope)`, as the instances compute it. */
  readonly service: string;
  /** Who acts, recorded in the audit trail and the lock (such as `operator@host`). */
  readonly by: string;
  /**
   * The seal keys (`DUAL_SECRET_SEAL_KEY`). With them, new secrets are
   * sealed with the first, control records are signed, and what is read is
   * verified (a heartbeat without a valid MAC still counts for the revoke
   * gate and the waits, and shuts the gate: its instance could not open the
   * new secret). Without them, nothing can be rotated (only promoted).
   *
   * @default undefined
   */
  readonly ring?: SealKeyring;
  /**
   * Told of each control record without a valid MAC (its kind, where, why).
   *
   * @default a warning on the console, once per kind
   */
  readonly onRejected?: (
    kind: ControlRecordKind,
    where: string,
    why: string,
  ) => void;
  /**
   * The current time, in ms since the epoch.
   *
   * @default Date.now
   */
  readonly now?: () => number;
  /**
   * An operating-system lock every acquisition of the rotation lock through
   * this target holds meanwhile (see `FleetTarget.lockProof`): a re-run
   * after a crash then takes the dead run's lock over at once.
   *
   * @default undefined (a dead run's lock is waited out)
   */
  readonly lockProof?: string;
}

/** A fleet store as a rotation target (see {@linkcode createStoreTarget}). */
export interface StoreTarget extends FleetTarget {
  /** The seal keys, when given. */
  readonly ring?: SealKeyring;
  /** The rotation journal kept in the store: a run that dies is resumed from any host. */
  readonly journal: RotationJournal;
  /**
   * The incident journal kept in the store (`incident/journal`): an
   * incident response that dies is resumed from any host, and never
   * regenerates a secret it stored already.
   */
  readonly incidentJournal: IncidentJournal;
  /**
   * The sink that seals a new secret into the store (the next generation,
   * above the store's and the instances').
   *
   * @returns The sink; `generations` has what it published, by label.
   * @throws {ConfigError} Without seal keys.
   */
  sealedSink(): SecretSink & {
    readonly generations: ReadonlyMap<string, number>;
  };
  /**
   * Takes the store's rotation lock, held by this one acquisition.
   *
   * @param command What runs, for whoever finds it held.
   * @param ttlMs How long it holds without renewal, in ms.
   * @returns The lock; dispose it to release it.
   * @throws {StoreLockedError} When another holds it.
   */
  lock(command: string, ttlMs: number): Promise<StoreLock>;
  /**
   * The live heartbeats of the namespace. Reads only.
   *
   * @returns The readable instances whose heartbeat has not lapsed.
   */
  live(): Promise<InstanceRecord[]>;
  /**
   * The fleet's active label: the store's record, else what every live
   * instance reports; never an env file's. Reads only.
   *
   * @param live The live heartbeats.
   * @returns The label and where it was read, or undefined.
   */
  readActive(
    live: readonly InstanceRecord[],
  ): Promise<TargetActive | undefined>;
  /**
   * Sets the fleet's active label (compare-and-set on its generation).
   *
   * @param label The label.
   * @returns The record written, or the one found naming it already.
   */
  setActive(label: string): Promise<ActiveRecord>;
  /**
   * The revoke gate of a credential. Reads only.
   *
   * @param credential The label and client id about to be regenerated.
   * @param tokenLifetimeMs How long a token lives, in ms.
   * @returns The report.
   */
  gate(
    credential: { label: string; clientId: string },
    tokenLifetimeMs: number,
  ): Promise<GateReport>;
  /**
   * The credentials as the fleet uses them: each secret the store holds
   * sealed replaces the env file's. Reads only.
   *
   * @param credentials The env file's credentials.
   * @returns The same, with the store's secrets.
   * @throws {ConfigError} Without seal keys.
   * @throws {SealKeyMismatchError} When a stored secret does not open with them.
   */
  credentials(
    credentials: readonly CredentialInput[],
  ): Promise<CredentialInput[]>;
  /**
   * The labels whose sealed secret the store lost although live instances
   * loaded it. Reads only.
   *
   * @param live The live heartbeats.
   * @param labels The labels to look at.
   * @returns The lost ones.
   */
  lostSecrets(
    live: readonly InstanceRecord[],
    labels: readonly string[],
  ): Promise<LostSecret[]>;
  /**
   * The same store and keys, acting as someone else (such as a scheduler's
   * id), without a lock proof: the new actor holds no OS lock of this one's.
   *
   * @param by Who acts.
   * @returns The target.
   */
  as(by: string): StoreTarget;
}

/**
 * Makes a fleet store a rotation target: the sealed sink, the journal, the
 * lock, the active label, the revoke gate and the audit trail, over one
 * engine and one namespace, authenticated with the seal keys when given.
 *
 * @param options The engine, namespace, actor and keys.
 * @returns The target.
 *
 * @example
 * ```ts
 * import { createMemoryFleetStore, createStoreTarget, importSealKeyring } from "@rotating/dual-secret-auth/fleet";
 * import { Secret } from "@rotating/dual-secret-auth";
 * const target = createStoreTarget({
 *   store: createMemoryFleetStore(),
 *   service: "svc",
 *   by: "ops@host",
 *   ring: await importSealKeyring(btoa("k".repeat(32))),
 * });
 * await target.sealedSink().publish({ label: "green", clientId: "green-id", secret: new Secret("s") });
 * const [green] = await target.credentials([{ label: "green", clientId: "green-id", clientSecret: "old" }]);
 * if (String(green.clientSecret) === "old") throw new Error("the store's secret wins");
 * ```
 */
export function createStoreTarget(options: StoreTargetOptions): StoreTarget {
  const { ring } = options;
  const warned = new Set<ControlRecordKind>();
  const onRejected = options.onRejected ?? ((kind, where, why) => {
    if (warned.has(kind)) return;
    warned.add(kind);
    console.warn(
      `Warning: a ${kind} record in the fleet store (${where}) has no valid MAC: ${why}. Give every instance the same ${SEAL_KEY_VARIABLE}, or check who writes to the store.`,
    );
  });
  const base: FleetTarget = {
    store: ring === undefined ? options.store : authenticateStore(
      options.store,
      ring,
      onRejected,
      // An instance without the key must still hold the gate shut.
      { keepUnverifiedHeartbeats: true },
    ),
    service: options.service,
    by: options.by,
    now: options.now ?? (() => Date.now()),
    ...(options.lockProof === undefined
      ? {}
      : { lockProof: options.lockProof }),
  };
  const keys = (): SealKeyring => {
    if (ring === undefined) {
      throw new ConfigError(
        "ring",
        `the seal keys are needed: a secret enters the fleet store only sealed (${SEAL_KEY_VARIABLE})`,
      );
    }
    return ring;
  };
  return {
    ...base,
    ...(ring === undefined ? {} : { ring }),
    journal: createStoreJournal(base),
    incidentJournal: createStoreJournal(base, INCIDENT_JOURNAL),
    sealedSink: () => createSealedStoreSink(base, keys()),
    lock: (command, ttlMs) => acquireStoreLock(base, command, ttlMs),
    live: () => listLive(base),
    readActive: (live) => readTargetActive(base, live),
    setActive: (label) => setSharedActive(base, label),
    gate: (credential, tokenLifetimeMs) =>
      checkRevokeGate(base, credential, tokenLifetimeMs),
    credentials: async (credentials) =>
      await credentialsFromStore(base, keys(), credentials),
    lostSecrets: (live, labels) => findLostSecrets(base, live, labels),
    as: (by) => {
      const { lockProof: _none, ...rest } = options;
      return createStoreTarget({ ...rest, by });
    },
  };
}
