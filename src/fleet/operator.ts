/**
 * The operator's side of a fleet store: the staged rotation's sink (sealed
 * secrets), journal and lock kept in the store, the audit trail, the shared
 * active label set by a promotion, and the revoke gate that reads the
 * heartbeats before a credential's secret is regenerated. Engine-agnostic:
 * everything goes through {@linkcode FleetStore}.
 *
 * @module
 */
import { systemClock } from "../clock.ts";
import type { CredentialInput } from "../config.ts";
import { DualSecretAuthError } from "../errors.ts";
import { delay } from "../retry.ts";
import type { Secret } from "../secret.ts";
import type { LoadRequest } from "../rotation/incident.ts";
import type {
  RotationJournal,
  RotationJournalRecord,
} from "../rotation/journal.ts";
import type { SecretSink } from "../rotation/sinks.ts";
import {
  credentialDocument,
  isSealedCredentialRecord,
  openCredential,
  publishSealedCredential,
  type SealKeyring,
} from "./distribution.ts";
import type {
  ActiveRecord,
  AuditEntry,
  FleetStore,
  InstanceRecord,
} from "./store.ts";

/** Where the operator's records live: the store and the service namespace. */
export interface FleetTarget {
  /** The store. */
  readonly store: FleetStore;
  /** The service namespace (`serviceNamespace(tokenUrl, scope)`). */
  readonly service: string;
  /** Who acts, recorded in the audit trail (such as `ops@host`). */
  readonly by: string;
  /** The current time, in ms since the epoch. */
  readonly now: () => number;
}

/**
 * Appends an audit entry; never throws (an audit trail that cannot be
 * written is reported by the caller's `onFailure`, the step goes on).
 *
 * @param target The store and who acts.
 * @param entry What happened, without `at` and `by`.
 * @param onFailure Told when the entry could not be written.
 */
export async function audit(
  target: FleetTarget,
  entry: Omit<AuditEntry, "at" | "by">,
  onFailure?: (error: unknown) => void,
): Promise<void> {
  try {
    await target.store.appendAudit(target.service, {
      at: target.now(),
      by: target.by,
      ...entry,
    });
  } catch (error) {
    onFailure?.(error);
  }
}

/**
 * A secret sink that seals the new secret into the fleet store (the next
 * generation of its label) and records it in the audit trail.
 *
 * @param target The store and who acts.
 * @param ring The seal keys (the first seals).
 * @returns The sink.
 */
export function createSealedStoreSink(
  target: FleetTarget,
  ring: SealKeyring,
): SecretSink & { readonly generations: ReadonlyMap<string, number> } {
  const generations = new Map<string, number>();
  return {
    name: "fleet store (sealed)",
    generations,
    async publish(update) {
      const generation = await publishSealedCredential({
        store: target.store,
        service: target.service,
        ring,
        by: target.by,
        now: target.now(),
      }, update);
      generations.set(update.label, generation);
      await audit(target, {
        action: "secret.publish",
        outcome: "ok",
        label: update.label,
        detail: `generation ${generation}, seal key ${ring.current.id}`,
      });
    },
    async check() {
      await target.store.readDocument(
        target.service,
        credentialDocument("check"),
      );
      return [];
    },
  };
}

/**
 * Opens the distributed secret of a label, if the store holds one.
 *
 * @param target The store.
 * @param ring The seal keys.
 * @param label The label.
 * @returns The secret and its generation, or undefined when none is stored.
 * @throws {SealKeyMismatchError} When it does not open with these keys.
 */
export async function readDistributedSecret(
  target: FleetTarget,
  ring: SealKeyring,
  label: string,
): Promise<{ secret: Secret; generation: number } | undefined> {
  const document = await target.store.readDocument(
    target.service,
    credentialDocument(label),
  );
  if (document === undefined || !isSealedCredentialRecord(document.value)) {
    return undefined;
  }
  const opened = await openCredential(ring, target.service, document.value);
  if (typeof opened === "string") {
    throw new SealKeyMismatchError(label, document.value.keyId);
  }
  return { secret: opened, generation: document.value.generation };
}

/**
 * The credentials as the fleet uses them: each secret replaced by the one
 * sealed in the store, when it holds one.
 *
 * @param target The store.
 * @param ring The seal keys.
 * @param credentials The credentials of the env file (ids and first secrets).
 * @returns The same credentials, with the store's secrets.
 * @throws {SealKeyMismatchError} When a stored secret does not open with these keys.
 */
export async function credentialsFromStore(
  target: FleetTarget,
  ring: SealKeyring,
  credentials: readonly CredentialInput[],
): Promise<CredentialInput[]> {
  const out: CredentialInput[] = [];
  for (const credential of credentials) {
    const distributed = await readDistributedSecret(
      target,
      ring,
      credential.label,
    );
    out.push(
      distributed === undefined
        ? credential
        : { ...credential, clientSecret: distributed.secret },
    );
  }
  return out;
}

/** The code of {@linkcode SealKeyMismatchError}. */
export const SEAL_KEY_MISMATCH = "SEAL_KEY_MISMATCH" as const;

/** A distributed secret does not open with the seal keys given. */
export class SealKeyMismatchError extends DualSecretAuthError {
  /** The label. */
  readonly label: string;
  /** The id of the key it was sealed with. */
  readonly keyId: string;

  /**
   * Creates the error.
   *
   * @param label The label.
   * @param keyId The key id of the record.
   */
  constructor(label: string, keyId: string) {
    super(
      SEAL_KEY_MISMATCH,
      `The fleet store's secret of "${label}" is sealed with key id ${keyId} and does not open with DUAL_SECRET_SEAL_KEY. Set DUAL_SECRET_SEAL_KEY to the key the fleet uses (several, comma-separated, while changing keys).`,
    );
    this.label = label;
    this.keyId = keyId;
  }
}

const JOURNAL = "rotation/journal";
const LOCK = "rotation/lock";

/**
 * The staged rotation's journal, kept in the store (one per service): a
 * rotation that dies is resumed by the next run, from any host.
 *
 * @param target The store.
 * @returns The journal.
 */
export function createStoreJournal(target: FleetTarget): RotationJournal {
  return {
    async read() {
      const document = await target.store.readDocument(target.service, JOURNAL);
      return document?.value as RotationJournalRecord | undefined;
    },
    async write(record) {
      for (let lap = 0; lap < 10; lap++) {
        const current = await target.store.readDocument(
          target.service,
          JOURNAL,
        );
        if (
          await target.store.writeDocument(
            target.service,
            JOURNAL,
            current?.version ?? 0,
            record,
          )
        ) return;
      }
      throw new Error("the rotation journal in the fleet store kept changing");
    },
    async check() {
      await target.store.readDocument(target.service, JOURNAL);
    },
  };
}

/** The store's rotation lock, as recorded. */
export interface StoreLockRecord {
  /** Who holds it. */
  readonly holder: string;
  /** What it runs, such as `rotate --kv fleet.db`. */
  readonly command: string;
  /** Until when it holds it unless renewed, in ms since the epoch. */
  readonly until: number;
}

/** The code of {@linkcode StoreLockedError}. */
export const FLEET_ROTATION_LOCKED = "FLEET_ROTATION_LOCKED" as const;

/** Another rotation or promotion holds the fleet store's lock. */
export class StoreLockedError extends DualSecretAuthError {
  /** The holder's record. */
  readonly holder: StoreLockRecord;

  /**
   * Creates the error.
   *
   * @param holder The lock record.
   */
  constructor(holder: StoreLockRecord) {
    super(
      FLEET_ROTATION_LOCKED,
      `"${holder.command}" by ${holder.holder} holds the fleet's rotation lock until ${
        new Date(holder.until).toISOString()
      }. Nothing was changed. Wait for it to finish (or for the lock to lapse) and run the command again.`,
    );
    this.holder = holder;
  }
}

/** A held store lock. */
export interface StoreLock extends AsyncDisposable {
  /** Extends the lock by its length again. */
  renew(): Promise<void>;
}

/**
 * Takes the fleet's rotation lock (a document with compare-and-set, its
 * expiry in the value, so a killed holder's lock lapses after `ttlMs`).
 *
 * @param target The store and who acts (`by` is the holder).
 * @param command What runs, for the message of whoever finds it held.
 * @param ttlMs How long it holds without renewal.
 * @returns The lock; dispose it to release it.
 * @throws {StoreLockedError} When someone else holds it.
 */
export async function acquireStoreLock(
  target: FleetTarget,
  command: string,
  ttlMs: number,
): Promise<StoreLock> {
  const { store, service, by } = target;
  const take = async (release: boolean) => {
    for (let lap = 0; lap < 10; lap++) {
      const current = await store.readDocument(service, LOCK);
      const held = current?.value as StoreLockRecord | undefined;
      if (
        held !== undefined && held.holder !== by && held.until > target.now()
      ) {
        if (release) return;
        throw new StoreLockedError(held);
      }
      if (release && held?.holder !== by) return;
      const next: StoreLockRecord = {
        holder: by,
        command,
        until: release ? 0 : target.now() + ttlMs,
      };
      if (
        await store.writeDocument(service, LOCK, current?.version ?? 0, next)
      ) {
        return;
      }
    }
    throw new Error("the fleet's rotation lock kept changing");
  };
  await take(false);
  return {
    renew: () => take(false),
    async [Symbol.asyncDispose]() {
      await take(true).catch(() => undefined);
    },
  };
}

/** Why an instance holds the revoke gate shut. */
export interface GateBlocker {
  /** The instance. */
  readonly instanceId: string;
  /** Its host, if it reported one. */
  readonly host?: string;
  /** The label it serves. */
  readonly active: string;
  /** Why it blocks. */
  readonly reason: "active" | "holds-token" | "used-recently";
  /** When it last used a token of the credential, if ever. */
  readonly lastUsedAt?: number;
  /** Until when it holds a token of the credential, if it does. */
  readonly heldUntil?: number;
}

/** What the revoke gate found. */
export interface GateReport {
  /** Whether the credential may be regenerated now. */
  readonly open: boolean;
  /** The live instances that keep it shut. */
  readonly blockers: readonly GateBlocker[];
  /** How many live instances were read. */
  readonly instances: number;
}

/**
 * The safe revoke gate: a credential may be regenerated only when no live
 * instance has it active, holds an unexpired token of it, or used a token of
 * it within a token's lifetime. Reads only.
 *
 * @param target The store.
 * @param credential The label and client id about to be regenerated.
 * @param tokenLifetimeMs How long a token lives (Genesys default: 24 h).
 * @returns The report.
 */
export async function checkRevokeGate(
  target: FleetTarget,
  credential: { label: string; clientId: string },
  tokenLifetimeMs: number,
): Promise<GateReport> {
  const now = target.now();
  const live = (await target.store.listInstances()).filter((record) =>
    record.until > now
  );
  const blockers: GateBlocker[] = [];
  for (const record of live) {
    const held = record.credentials.find((c) =>
      c.label === credential.label && c.clientId === credential.clientId
    );
    const base = {
      instanceId: record.instanceId,
      ...(record.host === undefined ? {} : { host: record.host }),
      active: record.active,
      ...(held?.lastUsedAt === undefined
        ? {}
        : { lastUsedAt: held.lastUsedAt }),
      ...(held?.heldUntil === undefined ? {} : { heldUntil: held.heldUntil }),
    };
    if (record.active === credential.label) {
      blockers.push({ ...base, reason: "active" });
    } else if (held?.heldUntil !== undefined && held.heldUntil > now) {
      blockers.push({ ...base, reason: "holds-token" });
    } else if (
      held?.lastUsedAt !== undefined &&
      now - held.lastUsedAt < tokenLifetimeMs
    ) {
      blockers.push({ ...base, reason: "used-recently" });
    }
  }
  return { open: blockers.length === 0, blockers, instances: live.length };
}

/**
 * Sets the fleet's active label (compare-and-set on its generation).
 *
 * @param target The store and who acts.
 * @param to The label.
 * @returns The record written (or the one found, when it already names `to`).
 */
export async function setSharedActive(
  target: FleetTarget,
  to: string,
): Promise<ActiveRecord> {
  for (let lap = 0; lap < 10; lap++) {
    const current = await target.store.readActive(target.service);
    if (current?.label === to) return current;
    const generation = current?.generation ?? 0;
    const next: ActiveRecord = {
      label: to,
      generation: generation + 1,
      by: target.by,
      at: target.now(),
      reason: "rotate",
    };
    if (
      await target.store.compareAndSetActive(target.service, generation, next)
    ) {
      return next;
    }
  }
  throw new Error("the fleet's active label kept changing under this write");
}

/** Options of {@linkcode waitForFleet}. */
export interface WaitForFleetOptions {
  /** Whether an instance has reached the wanted state. */
  readonly reached: (record: InstanceRecord) => boolean;
  /** The longest wait, in ms. */
  readonly timeoutMs: number;
  /** How often the heartbeats are read, in ms. */
  readonly pollMs: number;
  /** Told after each read: how many of how many reached it. */
  readonly onProgress?: (reached: number, live: number) => void;
  /** Sleeps (injected for tests). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Waits until every live instance's heartbeat shows the wanted state, or
 * the time is up. Reads only.
 *
 * @param target The store.
 * @param options What to wait for, and how long.
 * @returns The stragglers (empty when every live instance reached it).
 */
export async function waitForFleet(
  target: FleetTarget,
  options: WaitForFleetOptions,
): Promise<InstanceRecord[]> {
  const sleep = options.sleep ??
    ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = target.now() + options.timeoutMs;
  let lastReport = "";
  for (;;) {
    const now = target.now();
    const live = (await target.store.listInstances()).filter((record) =>
      record.until > now
    );
    const stragglers = live.filter((record) => !options.reached(record));
    const report = `${live.length - stragglers.length}/${live.length}`;
    if (report !== lastReport) {
      lastReport = report;
      options.onProgress?.(live.length - stragglers.length, live.length);
    }
    if (stragglers.length === 0 || target.now() >= deadline) {
      return stragglers;
    }
    await sleep(options.pollMs);
  }
}

/** The code of {@linkcode FleetNotLoadedError}. */
export const FLEET_NOT_LOADED = "FLEET_NOT_LOADED" as const;

/** Some live instances did not report a secret generation or an active label in time. */
export class FleetNotLoadedError extends DualSecretAuthError {
  /** The live instances that did not. */
  readonly stragglers: readonly InstanceRecord[];

  /**
   * Creates the error.
   *
   * @param message What they did not report.
   * @param stragglers The instances.
   */
  constructor(message: string, stragglers: readonly InstanceRecord[]) {
    super(FLEET_NOT_LOADED as never, message);
    this.stragglers = stragglers;
  }
}

/** Options of {@linkcode fleetLoadProof}. */
export interface FleetLoadProofOptions {
  /**
   * The seal keys, to read the generation of the label's stored secret.
   * Without them (or when the store holds none), only the active label is
   * checked.
   */
  readonly ring?: SealKeyring;
  /** The longest wait for the heartbeats, in ms. */
  readonly timeoutMs: number;
  /**
   * How often the heartbeats are read, in ms.
   *
   * @default 250
   */
  readonly pollMs?: number;
  /** Progress lines for people. */
  readonly onProgress?: (line: string) => void;
}

/**
 * The incident's load proof on a fleet store: waits until every live
 * instance's heartbeat reports the generation of the label's secret sealed
 * in the store (the one it proved with a token request before using it)
 * and, for `active: true`, names the label active. Reads only.
 *
 * @param target The store.
 * @param options The seal keys and the wait.
 * @returns The `awaitLoaded` port of `respondToCompromise`; it rejects with
 * {@linkcode FleetNotLoadedError} naming the stragglers after `timeoutMs`.
 */
export function fleetLoadProof(
  target: FleetTarget,
  options: FleetLoadProofOptions,
): (request: LoadRequest) => Promise<string> {
  return async ({ label, active, signal }) => {
    const stored = options.ring === undefined
      ? undefined
      : await readDistributedSecret(target, options.ring, label);
    const generation = stored?.generation;
    const what = [
      ...(generation === undefined
        ? []
        : [`generation ${generation} of "${label}"`]),
      ...(active ? [`"${label}" active`] : []),
    ].join(" and ");
    let seen = { reached: 0, live: 0 };
    const stragglers = await waitForFleet(target, {
      reached: (record) =>
        (generation === undefined ||
          record.credentials.find((c) => c.label === label)
              ?.secretGeneration === generation) &&
        (!active || record.active === label),
      timeoutMs: options.timeoutMs,
      pollMs: options.pollMs ?? 250,
      onProgress: (reached, live) => {
        seen = { reached, live };
        if (what !== "") {
          options.onProgress?.(
            `${reached}/${live} live instances report ${what}`,
          );
        }
      },
      sleep: (ms) => delay(ms, systemClock, signal),
    });
    if (stragglers.length > 0) {
      throw new FleetNotLoadedError(
        `${stragglers.length} of ${seen.live} live instances did not report ${what} within ${
          Math.round(options.timeoutMs / 1000)
        } s: ${stragglers.map((s) => s.instanceId).join(", ")}.`,
        stragglers,
      );
    }
    return what === ""
      ? "nothing stored to wait for"
      : `${seen.live}/${seen.live} live instances report ${what}`;
  };
}
