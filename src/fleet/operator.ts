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
import { ConfigError, DualSecretAuthError } from "../errors.ts";
import { delay } from "../retry.ts";
import type { Secret } from "../secret.ts";
import type { LoadRequest } from "../rotation/incident.ts";
import type {
  RotationJournalRecord,
  StepJournal,
} from "../rotation/journal.ts";
import type { SecretSink } from "../rotation/sinks.ts";
import type { FencedLock } from "../rotation/lock.ts";
import { heartbeatProblem } from "./control.ts";
import {
  credentialDocument,
  credentialFingerprint,
  isSealedCredentialRecord,
  openCredential,
  publishSealedCredential,
  reseedSealedCredential,
  type SealKeyring,
} from "./distribution.ts";
import {
  type ActiveRecord,
  type AuditEntry,
  type ControlStore,
  type Fence,
  type InstanceRecord,
  isActiveRecord,
  isInstanceRecord,
} from "./store.ts";

/** Where the operator's records live: the store and the service namespace. */
export interface FleetTarget {
  /** The store's control plane: operator flows never touch the grants. */
  readonly store: ControlStore;
  /** The service namespace (`serviceNamespace(tokenUrl, scope)`). */
  readonly service: string;
  /** Who acts, recorded in the audit trail (such as `ops@host`). */
  readonly by: string;
  /** The current time, in ms since the epoch. */
  readonly now: () => number;
  /**
   * Names an operating-system lock that every acquisition of the store's
   * rotation lock through this target holds meanwhile (the env file's lock,
   * with the host: `host:/abs/.env`). A later acquisition with the same name
   * and proof takes over a store lock left by a killed run at once, since
   * holding that OS lock proves the earlier holder dead; without it (or with
   * another proof) a held lock is waited out until it lapses.
   *
   * @default undefined
   */
  readonly lockProof?: string;
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
      // Above what the instances loaded too: after the store lost its data,
      // the counter goes on from theirs instead of starting at 1 again.
      const minGeneration = reportedGeneration(
        await listLive(target).catch(() => []),
        update.label,
      );
      const generation = await publishSealedCredential({
        store: target.store,
        service: target.service,
        ring,
        by: target.by,
        now: target.now(),
        minGeneration,
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

const LOCK = "rotation/lock";

/** Which journal of a store: the document it is kept in, and how its records are told apart. */
export interface StoreJournalKind<R> {
  /** The document's name in the service namespace, such as `rotation/journal`. */
  readonly key: string;
  /** The journal's name in a refusal, such as `incident journal`. */
  readonly name: string;
  /**
   * Whether a stored value is a record of this journal; one that is not is
   * refused on read, so a flow stops at its plan instead of resuming it
   * (`--fresh` skips the read and replaces it).
   *
   * @default every value is taken as it is
   */
  readonly isRecord?: (value: unknown) => value is R;
}

/** The staged rotation's journal: `rotation/journal`. */
export const ROTATION_JOURNAL: StoreJournalKind<RotationJournalRecord> = Object
  .freeze({ key: "rotation/journal", name: "rotation journal" });

/**
 * A flow's journal kept in the store (one per service and kind): a flow
 * that dies is resumed by the next run, from any host. The one store
 * journal: the staged rotation's ({@linkcode ROTATION_JOURNAL}) and the
 * incident's are documents of this one implementation.
 *
 * @param target The store.
 * @param kind Which journal; default {@linkcode ROTATION_JOURNAL}.
 * @returns The journal.
 * @throws {ConfigError} From `read`, when the document holds a value that
 * is not a record of this kind.
 *
 * @example
 * ```ts
 * import { createMemoryFleetStore, createStoreJournal } from "@rotating/dual-secret-auth/fleet";
 * const journal = createStoreJournal<{ step: string }>({
 *   store: createMemoryFleetStore(),
 *   service: "svc",
 *   by: "ops@host",
 *   now: () => Date.now(),
 * }, { key: "demo/journal", name: "demo journal" });
 * await journal.write({ step: "a" });
 * if ((await journal.read())?.step !== "a") throw new Error("not kept");
 * ```
 */
export function createStoreJournal<R = RotationJournalRecord>(
  target: FleetTarget,
  kind: StoreJournalKind<R> = ROTATION_JOURNAL as unknown as StoreJournalKind<
    R
  >,
): StepJournal<R> {
  const { key } = kind;
  return {
    async read() {
      const document = await target.store.readDocument(target.service, key);
      const value = document?.value;
      if (value === undefined || value === null) return undefined;
      if (kind.isRecord !== undefined && !kind.isRecord(value)) {
        throw new ConfigError(
          "journal",
          `the fleet store's ${kind.name} (${target.service}/${key}) is not one this version can read; check it, then start afresh (--fresh)`,
        );
      }
      return value as R;
    },
    async write(record) {
      for (let lap = 0; lap < 10; lap++) {
        const current = await target.store.readDocument(target.service, key);
        if (
          await target.store.writeDocument(
            target.service,
            key,
            current?.version ?? 0,
            record,
          )
        ) return;
      }
      throw new Error(
        `the ${kind.name} in the fleet store kept changing`,
      );
    },
    async check() {
      await target.store.readDocument(target.service, key);
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

/**
 * The holder string of one acquisition of a store lock: the actor's name
 * and a random token. The store lets a claim renew a lock only when its
 * holder string is the same, so two processes that share a name (two
 * operators on one host, two schedulers given the same id) are two holders,
 * and a lock is held by the one acquisition that took it.
 *
 * @param by Who acts, such as `operator@host`.
 * @param proofTag A digest of the target's `lockProof`, carried so that a
 * later run holding the same OS lock can tell this holder dead.
 * @returns Such as `operator@host~3f9a0c21d7e4`.
 *
 * @example
 * ```ts
 * import { acquisitionHolder, holderName } from "./operator.ts";
 * const a = acquisitionHolder("ops@host");
 * if (a === acquisitionHolder("ops@host")) throw new Error("one name, two holders");
 * if (holderName(a) !== "ops@host") throw new Error();
 * ```
 */
export function acquisitionHolder(by: string, proofTag?: string): string {
  return `${by}${HOLDER_TOKEN}${proofTag === undefined ? "" : `${proofTag}.`}${
    crypto.randomUUID().replaceAll("-", "").slice(0, 12)
  }`;
}

const HOLDER_TOKEN = "~";
const ACQUISITION = /^(?:([0-9a-f]{8})\.)?[0-9a-f]{12}$/;

/** The proof tag an acquisition's holder string carries, if any. */
function proofTagOf(holder: string): string | undefined {
  const at = holder.lastIndexOf(HOLDER_TOKEN);
  return at > 0
    ? ACQUISITION.exec(holder.slice(at + 1))?.[1] ?? undefined
    : undefined;
}

/** A short digest of a lock proof (never the path itself in the store). */
async function proofTag(proof: string): Promise<string> {
  const bytes = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(`dual-secret-auth/lock-proof/v1\n${proof}`),
    ),
  );
  return [...bytes.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * The actor's name in a lock's holder string (without the token of its
 * acquisition), for messages and the audit trail.
 *
 * @param holder A holder string, from {@linkcode acquisitionHolder} or older.
 * @returns The name.
 */
export function holderName(holder: string): string {
  const at = holder.lastIndexOf(HOLDER_TOKEN);
  return at > 0 && ACQUISITION.test(holder.slice(at + 1))
    ? holder.slice(0, at)
    : holder;
}

/**
 * A held store lock. Its `token` is the store's fence of this hold
 * (`fence.fence`): the store raises it with every new holder.
 */
export interface StoreLock extends FencedLock {
  /**
   * Extends the lock by its length again.
   *
   * @throws {StoreLockedError} When another took it over meanwhile.
   */
  renew(): Promise<void>;
  /** The fence of this hold: writes that carry it are refused once another holds the lock. */
  readonly fence?: Fence;
}

/**
 * Takes the fleet's rotation lock: a lock of the store (see
 * `FleetStore.claimLock`), whose lapse the store judges, so a killed
 * holder's lock lapses after `ttlMs` and no caller's clock decides it. The
 * lock is held by this one acquisition ({@linkcode acquisitionHolder}): a
 * re-run after a crash, even by the same name, waits for the lapse.
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
  const { store, service } = target;
  // Held by this acquisition, not by the name: a second process with the
  // same name (another env file on this host, a scheduler given the same
  // id) is refused like anyone else.
  const tag = target.lockProof === undefined
    ? undefined
    : await proofTag(target.lockProof);
  const by = acquisitionHolder(target.by, tag);
  const claim = (holder: string) =>
    store.claimLock(service, LOCK, { holder, ttlMs, note: command });
  const take = async (first: boolean) => {
    let state = await claim(by);
    if (
      first && !state.held && tag !== undefined &&
      proofTagOf(state.holder) === tag &&
      holderName(state.holder) === target.by
    ) {
      // Left by a run that held the OS lock this process holds now: that
      // run is dead. Its hold is taken as its own (the store lets the same
      // holder string in), released, and claimed afresh with a higher fence.
      const dead = await claim(state.holder);
      if (dead.held) {
        await store.releaseLock(service, LOCK, dead.holder, dead.fence);
      }
      state = await claim(by);
    }
    if (!state.held) {
      throw new StoreLockedError({
        holder: holderName(state.holder),
        command: state.note,
        // As this process reckons it: the store decides the real lapse.
        until: target.now() + state.ttlMs,
      });
    }
    return state.fence;
  };
  const fence = await take(true);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await store.releaseLock(service, LOCK, by, fence).catch(() => undefined);
  };
  return {
    token: fence,
    fence: { lock: LOCK, holder: by, fence },
    async renew() {
      // A renewal never takes over: only a new run proves the old one dead.
      if (await take(false) !== fence) {
        throw new Error("the fleet's rotation lock was taken over meanwhile");
      }
    },
    release,
    [Symbol.asyncDispose]: release,
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
  /**
   * Why it blocks. `seal-key`: its heartbeat carries no valid MAC for the
   * operator's seal keys, so it signs with another key or has none, and it
   * could not open the new secret sealed with the operator's key: it would
   * keep the credential's old, dead secret (see `problem`).
   */
  readonly reason: "active" | "holds-token" | "used-recently" | "seal-key";
  /** With `seal-key`: why its heartbeat did not verify, in the operator's words. */
  readonly problem?: string;
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
 * it within a token's lifetime, and (read through an authenticated store,
 * `keepUnverifiedHeartbeats`) every live instance signs its heartbeat with
 * the operator's seal key, so it can open the new secret. Reads only.
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
  const live = await listLive(target, now);
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
    const problem = heartbeatProblem(record);
    if (problem !== undefined) {
      // Checked first: on a namespace's first rotation there is no sealed
      // record to compare keys with, and this is the one sign of a wrong key.
      blockers.push({ ...base, reason: "seal-key", problem });
    } else if (record.active === credential.label) {
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

/** Options of {@linkcode passRevokeGate}. */
export interface PassRevokeGateOptions {
  /** How long a token lives, in ms (Genesys default: 24 h). */
  readonly tokenLifetimeMs: number;
  /**
   * Pass although the gate is shut (the operator's `--force`), recorded as
   * `forced`.
   *
   * @default false
   */
  readonly force?: boolean;
  /**
   * Record a refusal in the audit trail (a scheduler that looks again every
   * tick does not).
   *
   * @default true
   */
  readonly auditRefusal?: boolean;
  /**
   * Words added to the entry's detail, such as `scheduled`.
   *
   * @default none
   */
  readonly note?: string;
}

/**
 * The revoke gate as a step of a rotation: checks it and records the
 * outcome in the audit trail (`rotate.gate`: `open`, `refused` or
 * `forced`), the same for a manual rotation and a scheduled one.
 *
 * @param target The store and who acts.
 * @param credential The label and client id about to be regenerated.
 * @param options The token lifetime, `force`, and what to record.
 * @returns The report, and whether it passes (open, or forced).
 */
export async function passRevokeGate(
  target: FleetTarget,
  credential: { label: string; clientId: string },
  options: PassRevokeGateOptions,
): Promise<GateReport & { readonly passes: boolean }> {
  const gate = await checkRevokeGate(
    target,
    credential,
    options.tokenLifetimeMs,
  );
  const note = options.note === undefined ? "" : ` (${options.note})`;
  const who = gate.blockers.map((b) => `${b.instanceId} (${b.reason})`).join(
    ", ",
  );
  if (gate.open) {
    await audit(target, {
      action: "rotate.gate",
      outcome: "open",
      label: credential.label,
      detail: `${gate.instances} live instance(s), none uses it${note}`,
    });
    return { ...gate, passes: true };
  }
  if (options.force) {
    await audit(target, {
      action: "rotate.gate",
      outcome: "forced",
      label: credential.label,
      detail: `--force over ${gate.blockers.length} instance(s): ${who}${note}`,
    });
    return { ...gate, passes: true };
  }
  if (options.auditRefusal !== false) {
    await audit(target, {
      action: "rotate.gate",
      outcome: "refused",
      label: credential.label,
      detail:
        `${gate.blockers.length} of ${gate.instances} live instances keep it shut: ${who}${note}`,
    });
  }
  return { ...gate, passes: false };
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
  /** Ends the wait early (Ctrl-C): the stragglers of the last read are returned. */
  readonly signal?: AbortSignal;
  /**
   * Instances seen before the wait: each counts as heard from, so one whose
   * heartbeat is missing (lost with the store's data, lapsed) is a
   * straggler, never a silent success.
   *
   * @default []
   */
  readonly expected?: readonly InstanceRecord[];
}

/**
 * Waits until every live instance's heartbeat shows the wanted state, or
 * the time is up. An instance heard from during the wait whose heartbeat then
 * lapses stays a straggler (as last heard), since silence proves nothing.
 * Reads only.
 *
 * @param target The store.
 * @param options What to wait for, and how long.
 * @returns The stragglers (empty when every live instance reached it).
 */
export async function waitForFleet(
  target: FleetTarget,
  options: WaitForFleetOptions,
): Promise<InstanceRecord[]> {
  const deadline = target.now() + options.timeoutMs;
  let lastReport = "";
  // An instance heard from during the wait stays counted when its heartbeat
  // lapses (a loaded host renews late): silence proves nothing was loaded.
  const heard = new Map<string, InstanceRecord>(
    (options.expected ?? []).map((record) => [record.instanceId, record]),
  );
  for (;;) {
    const current = await listLive(target);
    for (const record of current) heard.set(record.instanceId, record);
    const listed = new Set(current.map((record) => record.instanceId));
    const live = [
      ...current,
      ...[...heard.values()].filter((r) => !listed.has(r.instanceId)),
    ];
    const stragglers = live.filter((record) =>
      listed.has(record.instanceId) ? !options.reached(record) : true
    );
    const report = `${live.length - stragglers.length}/${live.length}`;
    if (report !== lastReport) {
      lastReport = report;
      options.onProgress?.(live.length - stragglers.length, live.length);
    }
    if (
      stragglers.length === 0 || target.now() >= deadline ||
      options.signal?.aborted
    ) {
      return stragglers;
    }
    await new Promise<void>((resolve) => {
      const { signal } = options;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        resolve();
      };
      signal?.addEventListener("abort", finish, { once: true });
      if (options.sleep) options.sleep(options.pollMs).then(finish, finish);
      else timer = setTimeout(finish, options.pollMs);
    });
  }
}

/** The code of {@linkcode FleetNotLoadedError}. */
export const FLEET_NOT_LOADED = "FLEET_NOT_LOADED" as const;

/** Some live instances did not report a secret generation or an active label in time. */
export class FleetNotLoadedError extends DualSecretAuthError {
  /**
   * The live instances that did not, each with its reason when its
   * heartbeat gives one (`seal key mismatch`, `proof failed`, …), so a table
   * of them says what the message says.
   */
  readonly stragglers: readonly (InstanceRecord & {
    readonly reason?: string;
  })[];

  /**
   * Creates the error.
   *
   * @param message What they did not report.
   * @param stragglers The instances, with their reasons.
   */
  constructor(
    message: string,
    stragglers: readonly (InstanceRecord & { readonly reason?: string })[],
  ) {
    super(FLEET_NOT_LOADED as never, message);
    this.stragglers = stragglers;
  }
}

/** Options of {@linkcode fleetLoadProof}. */
export interface FleetLoadProofOptions {
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
 * instance's heartbeat reports the fingerprint of the label's secret sealed
 * in the store (reported only once the instance proved it with a token
 * request; a fingerprint, unlike a generation, cannot repeat after the store
 * lost its data) and, for `active: true`, names the label active. Reads only.
 *
 * @param target The store.
 * @param options The wait.
 * @returns The `awaitLoaded` port of `respondToCompromise`; it rejects with
 * {@linkcode FleetNotLoadedError} naming the stragglers after `timeoutMs`.
 */
export function fleetLoadProof(
  target: FleetTarget,
  options: FleetLoadProofOptions,
): (request: LoadRequest) => Promise<string> {
  return async ({ label, active, signal }) => {
    const stored = await readStoredSecretIdentity(target, label);
    const what = [
      ...(stored === undefined
        ? []
        : [`secret ${stored.fingerprint} of "${label}"`]),
      ...(active ? [`"${label}" active`] : []),
    ].join(" and ");
    let seen = { reached: 0, live: 0 };
    const stragglers = await waitForFleet(target, {
      reached: (record) =>
        (stored === undefined ||
          secretStragglers([record], label, stored.fingerprint).length ===
            0) &&
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
      const reasons = stored === undefined
        ? []
        : secretStragglers(stragglers, label, stored.fingerprint);
      const named = stragglers.map((s) => {
        const reason = reasons.find((r) => r.instanceId === s.instanceId)
          ?.reason;
        return reason === undefined ? s : { ...s, reason };
      });
      throw new FleetNotLoadedError(
        `${stragglers.length} of ${seen.live} live instances did not report ${what} within ${
          Math.round(options.timeoutMs / 1000)
        } s: ${
          named.map((s) =>
            "reason" in s ? `${s.instanceId} (${s.reason})` : s.instanceId
          ).join(", ")
        }.`,
        named,
      );
    }
    return what === ""
      ? "nothing stored to wait for"
      : `${seen.live}/${seen.live} live instances report ${what}`;
  };
}

/** A live instance the operator did not expect to find, or did not find where expected. */
export interface SeenInstance {
  /** The key prefix (namespace) it reports under, as the command line names it. */
  readonly namespace: string;
  /** The instance. */
  readonly instanceId: string;
  /** Its host, if it reported one. */
  readonly host?: string;
  /** The label it serves. */
  readonly active: string;
}

/** What a command saw of the fleet before it changes anything. */
export interface FleetPresence {
  /** Live instances in the namespace the command acts on. */
  readonly live: number;
  /** The namespace's active record, if any (instances write one when they join). */
  readonly activeRecord?: ActiveRecord;
  /** Live instances of other namespaces of the same store. */
  readonly elsewhere: readonly SeenInstance[];
}

/** How the operator said to treat an empty namespace. */
export interface PresenceExpectation {
  /** Proceed only when at least this many live instances are seen (0: proceed with none). */
  readonly expectInstances?: number;
  /** Proceed although no live instance is seen. */
  readonly allowEmpty?: boolean;
}

/** The verdict of {@linkcode judgeFleetPresence}. */
export type PresenceVerdict =
  | { readonly proceed: true }
  | {
    readonly proceed: false;
    /** Why, for people (the caller adds the list and the flags). */
    readonly reason: string;
  };

/**
 * Whether a command that changes a fleet's credentials may go on with the
 * live instances it sees. Seeing none is refused unless the operator said so
 * (`allowEmpty`, or `expectInstances` of 0): a forgotten `--prefix` or
 * `--scope`, a mistyped store, or a fleet that is down all look like that,
 * and in each of them the active label cannot be read from the instances.
 * With `expectInstances`, fewer live instances than expected are refused.
 *
 * @param presence What the command saw.
 * @param expectation The operator's flags.
 * @returns Proceed, or why not.
 *
 * @example
 * ```ts
 * import { judgeFleetPresence } from "./operator.ts";
 * const verdict = judgeFleetPresence({ live: 0, elsewhere: [] }, {});
 * if (verdict.proceed) throw new Error("an empty namespace must be refused");
 * ```
 */
export function judgeFleetPresence(
  presence: FleetPresence,
  expectation: PresenceExpectation,
): PresenceVerdict {
  const { live, activeRecord, elsewhere } = presence;
  if (expectation.expectInstances !== undefined) {
    return live >= expectation.expectInstances ? { proceed: true } : {
      proceed: false,
      reason:
        `${live} live instance(s) report in this namespace; --expect-instances ${expectation.expectInstances} asked for at least that many`,
    };
  }
  if (live > 0 || expectation.allowEmpty) return { proceed: true };
  const where = elsewhere.length > 0
    ? `; ${elsewhere.length} live instance(s) report under another prefix of this store (a forgotten or mistyped --prefix or --scope?)`
    : "";
  const history = activeRecord === undefined
    ? "no instance has ever reported in this namespace"
    : `instances reported here before (the active label "${activeRecord.label}" was set by ${activeRecord.by}${
      Number.isFinite(activeRecord.at) &&
        Math.abs(activeRecord.at) < 8.64e15
        ? ` at ${new Date(activeRecord.at).toISOString()}`
        : ""
    }), so they may all be down or restarting`;
  return {
    proceed: false,
    reason: `no live instance reports in this namespace: ${history}${where}`,
  };
}

/** The fleet's active label as the target says it, and where it was read. */
export interface TargetActive {
  /** The label. */
  readonly label: string;
  /** `store`: the active record; `instances`: the live heartbeats, all naming it. */
  readonly source: "store" | "instances";
}

/**
 * The fleet's active label from the target: its active record, or else the
 * label every live instance reports. Never from an env file, whose
 * `GENESYS_ACTIVE` a fleet does not follow. Reads only.
 *
 * @param target The store.
 * @param live The live heartbeats of the namespace.
 * @returns The label, or undefined when the store has no (readable) record
 * and the instances (if any) do not agree.
 */
export async function readTargetActive(
  target: FleetTarget,
  live: readonly InstanceRecord[],
): Promise<TargetActive | undefined> {
  const record = await target.store.readActive(target.service);
  // A record this version cannot read (another version's, a hostile
  // writer's) says nothing: the instances' word is taken instead.
  if (isActiveRecord(record)) return { label: record.label, source: "store" };
  const labels = new Set(live.map((r) => r.active));
  return labels.size === 1
    ? { label: [...labels][0], source: "instances" }
    : undefined;
}

/**
 * The live heartbeats of the target's namespace: every operator step and
 * the scheduler read them here. A record this version cannot read (another
 * version's, a corrupted or hostile write) is left out, as instances leave
 * it out of the pool assignment, instead of failing the step. Reads only.
 *
 * @param target The store.
 * @param now The current time; default `target.now()`.
 * @returns The readable instances whose heartbeat has not lapsed.
 */
export async function listLive(
  target: FleetTarget,
  now: number = target.now(),
): Promise<InstanceRecord[]> {
  return (await target.store.listInstances()).filter((record) =>
    isInstanceRecord(record) && record.until > now
  );
}

/** The store's current sealed secret of a label, named by its fingerprint. */
export interface StoredSecretIdentity {
  /** The record's fingerprint (`credentialFingerprint`). */
  readonly fingerprint: string;
  /** The record's generation. */
  readonly generation: number;
  /**
   * When its provider secret was retired (revoked by a two-secret rotation).
   *
   * @default undefined (in service)
   */
  readonly retiredAt?: number;
}

/**
 * The fingerprint of the store's current sealed secret of a label: what a
 * live instance's heartbeat must report before it counts as having loaded
 * it. Reads only; needs no seal key.
 *
 * @param target The store.
 * @param label The label.
 * @returns The fingerprint and generation, or undefined when the store holds
 * no sealed secret of the label.
 */
export async function readStoredSecretIdentity(
  target: FleetTarget,
  label: string,
): Promise<StoredSecretIdentity | undefined> {
  const document = await target.store.readDocument(
    target.service,
    credentialDocument(label),
  );
  if (document === undefined || !isSealedCredentialRecord(document.value)) {
    return undefined;
  }
  return {
    fingerprint: await credentialFingerprint(document.value),
    generation: document.value.generation,
    ...(document.value.retiredAt === undefined
      ? {}
      : { retiredAt: document.value.retiredAt }),
  };
}

/**
 * Two-secret providers: the provider's id of each label's secret, as the
 * store's sealed records carry it (`secretId`), for the staged rotation's
 * `secretIds`. Reads only; needs no seal key.
 *
 * @param target The store.
 * @param labels The labels.
 * @param envFileIds The env file's ids (`AUTH_SECRET_ID_<LABEL>`), taken
 *   only for a label the store holds no document of: its secret is still
 *   the env file's. A record without an id, or one that does not verify,
 *   leaves the label out, since the env file's id may name another secret.
 * @returns The ids by label (a label without one is left out).
 */
export async function storedSecretIds(
  target: FleetTarget,
  labels: readonly string[],
  envFileIds: Readonly<Record<string, string>> = {},
): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const label of labels) {
    const document = await target.store.readDocument(
      target.service,
      credentialDocument(label),
    );
    const value = document?.value;
    if (isSealedCredentialRecord(value)) {
      if (value.secretId !== undefined) ids[label] = value.secretId;
    } else if (document === undefined && envFileIds[label]) {
      ids[label] = envFileIds[label];
    }
  }
  return ids;
}

/**
 * Marks the store's sealed record of a label retired, when it carries the
 * provider secret about to be revoked (or carries no id): instances stop
 * loading it, and a promotion to the label is refused until it is rotated
 * again. Compare-and-set on the document; the secret, generation and
 * fingerprint stay, so instances that loaded it report the same secret and
 * the store does not look as if it lost it.
 *
 * With `absent`, a label the store holds no record of (its secret came
 * from the env file, or the store lost it) gets one, sealed and retired
 * from the start, so a promotion to it is refused as well.
 *
 * @param target The store and who acts.
 * @param label The label whose secret is retired.
 * @param secretId The provider's id of that secret.
 * @param absent The seal keys, client id and secret of the label, to write
 * a retired record where there is none.
 * @default absent undefined (a missing record stays missing)
 * @returns Whether a record was marked (false: none, or another secret's).
 */
export async function retireSealedRecord(
  target: FleetTarget,
  label: string,
  secretId: string,
  absent?: { ring: SealKeyring; clientId: string; secret: Secret },
): Promise<boolean> {
  const name = credentialDocument(label);
  for (let lap = 0; lap < 10; lap++) {
    const document = await target.store.readDocument(target.service, name);
    const value = document?.value;
    if (document === undefined && absent !== undefined) {
      // Compare-and-set on absent: a record written meanwhile (an instance
      // sealing its secret back) is read and marked on the next lap.
      if (
        await reseedSealedCredential({
          store: target.store,
          service: target.service,
          ring: absent.ring,
          by: target.by,
          now: target.now(),
        }, {
          label,
          clientId: absent.clientId,
          secret: absent.secret,
          generation: Math.max(
            1,
            reportedGeneration(await listLive(target), label),
          ),
          secretId,
          retiredAt: target.now(),
        })
      ) return true;
      continue;
    }
    if (
      document === undefined || !isSealedCredentialRecord(value) ||
      (value.secretId !== undefined && value.secretId !== secretId)
    ) return false;
    if (value.retiredAt !== undefined) return true;
    const retired = { ...value, secretId, retiredAt: target.now() };
    if (
      await target.store.writeDocument(
        target.service,
        name,
        document.version,
        retired,
      )
    ) return true;
  }
  throw new Error(
    `the fleet store kept changing ${name} under this write; check for another rotation running`,
  );
}

/** A live instance that has not proved a secret, and why. */
export interface SecretStraggler {
  /** The instance. */
  readonly instanceId: string;
  /** Its host, if it reported one. */
  readonly host?: string;
  /** The label it serves. */
  readonly active: string;
  /**
   * Why: the reason its heartbeat gives (`seal key mismatch`, `proof
   * failed`, ...), `not loaded yet` when it gives none, or `loaded another
   * secret` when it proved an older one.
   */
  readonly reason: string;
}

/**
 * The live instances whose heartbeat does not report the proved fingerprint
 * of a label's current secret, each with its reason.
 *
 * @param live The live heartbeats.
 * @param label The label.
 * @param fingerprint The fingerprint of the store's current secret of it.
 * @returns The stragglers (empty when every live instance proved it).
 */
export function secretStragglers(
  live: readonly InstanceRecord[],
  label: string,
  fingerprint: string,
): SecretStraggler[] {
  const out: SecretStraggler[] = [];
  for (const record of live) {
    const credential = record.credentials.find((c) => c.label === label);
    if (credential?.secretFingerprint === fingerprint) continue;
    const problem = credential?.secretProblem;
    out.push({
      instanceId: record.instanceId,
      ...(record.host === undefined ? {} : { host: record.host }),
      active: record.active,
      reason: credential === undefined
        ? `no credential "${label}"`
        : problem?.fingerprint === fingerprint
        ? problem.reason
        : credential.secretFingerprint !== undefined
        ? "loaded another secret"
        : "not loaded yet",
    });
  }
  return out;
}

/** No fleet counts secrets this far; a larger figure in a heartbeat is not believed. */
const MAX_SECRET_GENERATION = 2 ** 48;

/**
 * The highest generation of a label's distributed secret that live
 * instances report loaded, counting only heartbeats that verified (a store
 * writer without the key cannot push the counter).
 *
 * @param live The live heartbeats.
 * @param label The label.
 * @returns The generation, or 0 when none reports one.
 */
export function reportedGeneration(
  live: readonly InstanceRecord[],
  label: string,
): number {
  let highest = 0;
  for (const record of live) {
    if (heartbeatProblem(record) !== undefined) continue;
    const generation = record.credentials.find((c) => c.label === label)
      ?.secretGeneration;
    if (
      Number.isSafeInteger(generation) && generation! > highest &&
      generation! < MAX_SECRET_GENERATION
    ) highest = generation!;
  }
  return highest;
}

/** A distributed secret the store no longer holds, though instances loaded it. */
export interface LostSecret {
  /** The label. */
  readonly label: string;
  /** The highest generation the instances report loaded. */
  readonly generation: number;
  /** The live instances that report it. */
  readonly instances: readonly string[];
}

/**
 * The labels whose sealed secret the store no longer holds although live
 * instances report one loaded from it: the store lost its data (a Redis
 * restarted without persistence, `FLUSHALL`, a restored backup), and an env
 * file's secret of such a label is older than the one in use. Instances of
 * this version seal theirs back within a heartbeat lifetime. Reads only.
 *
 * @param target The store.
 * @param live The live heartbeats.
 * @param labels The labels to look at.
 * @returns The lost ones (empty when the store holds each, or no instance
 * loaded it).
 */
export async function findLostSecrets(
  target: FleetTarget,
  live: readonly InstanceRecord[],
  labels: readonly string[],
): Promise<LostSecret[]> {
  const lost: LostSecret[] = [];
  for (const label of labels) {
    const document = await target.store.readDocument(
      target.service,
      credentialDocument(label),
    );
    // A record that does not verify is read as absent but is not lost.
    if (document !== undefined) continue;
    const reporting = live.filter((record) =>
      heartbeatProblem(record) === undefined &&
      record.credentials.some((c) =>
        c.label === label && c.secretFingerprint !== undefined
      )
    );
    if (reporting.length === 0) continue;
    lost.push({
      label,
      generation: reportedGeneration(reporting, label),
      instances: reporting.map((r) => r.instanceId),
    });
  }
  return lost;
}
