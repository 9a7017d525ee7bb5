/**
 * The fleet store: the small interface every shared engine (Deno KV, Redis,
 * memory) implements so that instances of one service share token grants,
 * the active label, rejections and heartbeats.
 *
 * The engine is deliberately dumb: it stores JSON records under keys built
 * from plain strings and offers three atomic steps (take a lease, write a
 * grant, compare-and-set the active label). Sealing, namespacing, slot
 * assignment and every timing rule live above it, in the engine-agnostic
 * fleet member, so two engines cannot disagree on them.
 *
 * Rules every engine keeps:
 * - every value is JSON and smaller than 64 KiB;
 * - expiry is decided from the `until`/`expiresAt` fields in the value, never
 *   from the engine's own key expiry (which may only be used as a hint to
 *   collect garbage);
 * - an atomic step needs at most 10 checks (Deno KV's limit);
 * - reads never write;
 * - a failed call rejects (the member treats the store as down and serves
 *   from its own cache); it never half-applies an atomic step.
 *
 * @module
 */

/**
 * Identifies one grant slot of the pool: a credential namespace (a hash of the
 * token URL, the client id and the scope, computed by the member) and the
 * pool index.
 */
export interface GrantKey {
  /** The credential namespace: a hash of token URL, client id and scope. */
  readonly credential: string;
  /** The pool index, from 0 to `tokensPerCredential - 1`. */
  readonly slot: number;
}

/** A grant as the store holds it. The token is sealed when the fleet has a seal key. */
export interface StoredGrant {
  /** The access token, or its sealed form (see `sealed`). */
  readonly token: string;
  /** Whether `token` is sealed with AES-256-GCM (`v1.` + base64url of iv and ciphertext). */
  readonly sealed: boolean;
  /** The id of the seal key that sealed it (absent: unsealed, or sealed by an older version). */
  readonly keyId?: string;
  /** The client id the token was issued to. */
  readonly clientId: string;
  /** When the token expires, in ms since the epoch. */
  readonly expiresAt: number;
  /** From when one instance of the fleet refreshes it, in ms since the epoch. */
  readonly refreshAt: number;
  /** When it was written, in ms since the epoch. */
  readonly writtenAt: number;
  /** The instance that requested it. */
  readonly writtenBy: string;
}

/** The right to request the token of one slot, held by one instance until `until`. */
export interface Lease {
  /** The instance holding it. */
  readonly holder: string;
  /** When it lapses, in ms since the epoch (decided from this value, not key expiry). */
  readonly until: number;
}

/** What one slot holds. */
export interface SlotRecord {
  /** The last grant written, if any (it may have expired: check `expiresAt`). */
  readonly grant?: StoredGrant;
  /** The lease, if one was taken and not released (it may have lapsed: check `until`). */
  readonly lease?: Lease;
}

/** The fleet's active credential. */
export interface ActiveRecord {
  /** The active label. */
  readonly label: string;
  /** Incremented by each change; the compare-and-set checks it. 0 means never set. */
  readonly generation: number;
  /** The instance that set it. */
  readonly by: string;
  /** When it was set, in ms since the epoch. */
  readonly at: number;
  /** Why: `rotate`, `failover` or `initial`. */
  readonly reason: "rotate" | "failover" | "initial";
}

const MAX_ACTIVE_GENERATION = 2 ** 48;

/**
 * Whether a value read from the store is an {@linkcode ActiveRecord}: another
 * process (an older version, or a hostile writer) may have written anything.
 *
 * @param value The value.
 * @returns Whether it has a string label and an integer generation from 0
 * to below 2^48.
 */
export function isActiveRecord(value: unknown): value is ActiveRecord {
  const record = value as Partial<ActiveRecord> | null;
  return typeof record === "object" && record !== null &&
    typeof record.label === "string" &&
    Number.isSafeInteger(record.generation) && record.generation! >= 0 &&
    // No fleet counts this far; near 2^53 a + 1 no longer changes the
    // number, and every later compare-and-set would be stuck on it.
    record.generation! < MAX_ACTIVE_GENERATION;
}

/**
 * Whether a value read from the store is a {@linkcode StoredGrant} this
 * version can serve.
 *
 * @param value The value.
 * @returns Whether its token, seal flag, client id and times have their types.
 */
export function isStoredGrant(value: unknown): value is StoredGrant {
  const grant = value as Partial<StoredGrant> | null;
  return typeof grant === "object" && grant !== null &&
    typeof grant.token === "string" && grant.token !== "" &&
    typeof grant.sealed === "boolean" &&
    typeof grant.clientId === "string" &&
    Number.isFinite(grant.expiresAt) && Number.isFinite(grant.refreshAt);
}

/**
 * Whether a value read from the store is an {@linkcode InstanceRecord} with
 * the fields a member relies on.
 *
 * @param value The value.
 * @returns Whether its id, active label, credentials and expiry have their types.
 */
export function isInstanceRecord(value: unknown): value is InstanceRecord {
  const record = value as Partial<InstanceRecord> | null;
  return typeof record === "object" && record !== null &&
    typeof record.instanceId === "string" &&
    typeof record.active === "string" && Number.isFinite(record.until) &&
    Array.isArray(record.credentials) &&
    record.credentials.every((credential) =>
      typeof credential === "object" && credential !== null &&
      typeof credential.label === "string" &&
      typeof credential.clientId === "string" &&
      Array.isArray(credential.slots)
    );
}

/** A published rejection: a credential the token endpoint refused. Never the secret. */
export interface RejectionRecord {
  /** The credential namespace (see {@linkcode GrantKey.credential}). */
  readonly credential: string;
  /** The credential's label at the publishing instance. */
  readonly label: string;
  /** The client id. */
  readonly clientId: string;
  /** A hash of the secret's generation (a keyed digest, never the secret). */
  readonly secretHash: string;
  /** When it was rejected, in ms since the epoch. */
  readonly at: number;
  /** The instance that saw it. */
  readonly by: string;
  /** The OAuth error code, if the endpoint sent one. */
  readonly oauthError?: string;
  /** The HTTP status. */
  readonly status?: number;
}

/** Per credential, what an instance holds and last used (for the revoke gate). */
export interface InstanceCredential {
  /** The label. */
  readonly label: string;
  /** The client id. */
  readonly clientId: string;
  /** The pool slots this instance serves from. */
  readonly slots: readonly number[];
  /** When it last served a token of this credential, in ms since the epoch (absent: never). */
  readonly lastUsedAt?: number;
  /**
   * Until when it holds a token of this credential (the latest expiry among
   * its cached tokens of this client id), in ms since the epoch; absent: it
   * holds none. What a revoke gate checks before deleting the old client.
   */
  readonly heldUntil?: number;
  /**
   * The generation of the secret distributed through the fleet that this
   * instance uses for the credential (absent: the one it was started with).
   */
  readonly secretGeneration?: number;
  /**
   * The fingerprint (`credentialFingerprint`) of the store's sealed secret
   * of this credential that the instance opened and proved, or found to be
   * the secret it already uses. Absent: it has loaded none.
   */
  readonly secretFingerprint?: string;
  /**
   * The store's sealed secret of this credential that the instance could
   * not load, and why; absent once it loads one.
   */
  readonly secretProblem?: {
    /** The fingerprint of the record it could not load. */
    readonly fingerprint: string;
    /**
     * Why, in the operator's words: `seal key mismatch` (it does not open
     * with the instance's keys), `no seal key` (the instance has none),
     * `client mismatch` (the record is for another client id), `proof
     * failed` (the token endpoint did not accept it), `proving` (the proof
     * is under way).
     */
    readonly reason:
      | "seal key mismatch"
      | "no seal key"
      | "client mismatch"
      | "proof failed"
      | "proving";
  };
}

/** One instance's heartbeat. */
export interface InstanceRecord {
  /** The instance id. */
  readonly instanceId: string;
  /** The host name, when the runtime may read it. */
  readonly host?: string;
  /** The active label the instance serves. */
  readonly active: string;
  /** The credentials it holds tokens of. */
  readonly credentials: readonly InstanceCredential[];
  /** The library version. */
  readonly version: string;
  /** When the instance joined, in ms since the epoch. */
  readonly startedAt: number;
  /** When this heartbeat was written, in ms since the epoch. */
  readonly seenAt: number;
  /** When the instance counts as gone unless it beats again (decided from this value). */
  readonly until: number;
}

/**
 * A named record of the service (a sealed credential, the rotation's
 * journal, lock or leader lease), versioned for compare-and-set.
 */
export interface StoredDocument {
  /** Incremented by each write; 0 is never stored (it means "absent"). */
  readonly version: number;
  /** The JSON value. Never a secret in the clear. */
  readonly value: unknown;
}

/** One step of the fleet's audit trail: who, when, what, outcome. Never a secret. */
export interface AuditEntry {
  /** When, in ms since the epoch. */
  readonly at: number;
  /** Who: an instance id or an operator's host and user. */
  readonly by: string;
  /** What, such as `rotate.regenerate` or `promote`. */
  readonly action: string;
  /** How it ended, such as `ok`, `failed`, `refused` or `forced`. */
  readonly outcome: string;
  /** The label concerned, if any. */
  readonly label?: string;
  /** Secret-free details, such as a generation or an error code. */
  readonly detail?: string;
}

/**
 * A named lock of the service (the scheduler's leader lease, the rotation
 * lock) as the store sees it. Its lapse is judged by the store, never by a
 * caller's clock: Redis expires the key on the server (`PX`); Deno KV and the
 * memory store let a contender take over only after it has seen the same
 * record unchanged for `ttlMs` on its own monotonic clock.
 */
export interface LockState {
  /** Whether the claimant holds it now (false: someone else does). */
  readonly held: boolean;
  /** Its holder (the claimant, when `held`). */
  readonly holder: string;
  /**
   * The fencing token: it grows with every new holder, so a write fenced
   * with an older one (a stale holder's) is refused.
   */
  readonly fence: number;
  /** The holder's secret-free note, such as the command it runs. */
  readonly note: string;
  /** How long the holder holds it without renewal, in ms. */
  readonly ttlMs: number;
}

/** A claim of a {@linkcode LockState}: take it when free or lapsed, renew it when held. */
export interface LockClaim {
  /** The claimant. */
  readonly holder: string;
  /** How long the lock holds without renewal, in ms (1 to 2^31 - 1). */
  readonly ttlMs: number;
  /** A secret-free note for whoever finds it held, such as the command. */
  readonly note: string;
}

/** Ties a write to a held lock: the store refuses it unless the lock still has this holder and fence. */
export interface Fence {
  /** The lock's name, such as `schedule/leader`. */
  readonly lock: string;
  /** The holder. */
  readonly holder: string;
  /** The fencing token of its hold ({@linkcode LockState.fence}). */
  readonly fence: number;
}

/**
 * Checks a lock's duration.
 *
 * @param ttlMs The duration.
 * @returns It, unchanged.
 * @throws {RangeError} When it is not an integer from 1 to 2^31 - 1 ms.
 */
export function checkLockTtl(ttlMs: number): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > 2 ** 31 - 1) {
    throw new RangeError(
      `a lock lasts 1 to ${2 ** 31 - 1} ms, got ${ttlMs}`,
    );
  }
  return ttlMs;
}

/** Stops a watch. */
export type Unwatch = () => void;

/**
 * The hot path of a fleet store: the shared token grants of each credential
 * slot, the leases to refresh them, and the rejections of a credential's
 * secret. An instance reads it on its hot path's misses and at every poll.
 */
export interface GrantStore {
  /**
   * Reads slots in one round trip where the engine allows.
   *
   * @param keys The slots.
   * @returns One record per key, in order (empty when nothing is stored).
   */
  readSlots(keys: readonly GrantKey[]): Promise<SlotRecord[]>;
  /**
   * Takes the slot's lease if it is free, lapsed (`until <= now`) or already
   * `holder`'s. Atomic: of concurrent callers at most one succeeds.
   *
   * @param key The slot.
   * @param lease The lease to write.
   * @param now The caller's time, to decide whether the current lease lapsed.
   * @returns Whether `holder` holds the lease now.
   */
  tryLease(key: GrantKey, lease: Lease, now: number): Promise<boolean>;
  /**
   * Writes a grant unless the slot holds one that expires later, and releases
   * the lease if `holder` holds it. Atomic.
   *
   * @param key The slot.
   * @param grant The grant.
   * @param holder The writing instance.
   * @returns Whether the grant was written.
   */
  writeGrant(
    key: GrantKey,
    grant: StoredGrant,
    holder: string,
  ): Promise<boolean>;
  /**
   * Releases the lease if `holder` holds it (after a failed request).
   *
   * @param key The slot.
   * @param holder The releasing instance.
   */
  releaseLease(key: GrantKey, holder: string): Promise<void>;
  /**
   * Drops a slot's grant if it is the one given (by token), so an invalidated
   * token is not served again by the fleet.
   *
   * @param key The slot.
   * @param token The stored (possibly sealed) token to drop.
   */
  dropGrant(key: GrantKey, token: string): Promise<void>;
  /**
   * Records a rejection unless one with the same credential and secret hash
   * exists. Atomic.
   *
   * @param record The rejection.
   * @returns Whether this call recorded it (the first publisher).
   */
  publishRejection(record: RejectionRecord): Promise<boolean>;
  /**
   * Reads the rejections of the credentials given.
   *
   * @param credentials Credential namespaces.
   * @returns Every rejection recorded for them.
   */
  readRejections(credentials: readonly string[]): Promise<RejectionRecord[]>;
  /**
   * Drops every rejection of a credential whose secret hash is not `keep`.
   *
   * @param credential The credential namespace.
   * @param keep A secret hash to keep, if any.
   */
  clearRejections(credential: string, keep?: string): Promise<void>;
  /**
   * Calls `onChange` when the active label or a slot may have changed. Optional
   * and best-effort: members poll regardless, since a watch may not see other
   * processes' writes (Deno KV on a local file does not).
   *
   * @param service The service namespace.
   * @param keys Slots to watch.
   * @param onChange Called after a change.
   * @returns A function that stops watching.
   */
  watch?(
    service: string,
    keys: readonly GrantKey[],
    onChange: () => void,
  ): Unwatch;
}

/**
 * The control plane of a fleet store: the active label, the heartbeats,
 * versioned documents (sealed credentials, the rotation journal, the
 * schedule's state), fenced locks and the audit trail. MAC'd by
 * `authenticateStore` when a seal key is set; what the operator's flows
 * (`./operator.ts`, `./schedule.ts`, `./store_flows.ts`) use.
 */
export interface ControlStore {
  /**
   * Reads the active label.
   *
   * @param service The service namespace.
   * @returns The record, if one was ever written.
   */
  readActive(service: string): Promise<ActiveRecord | undefined>;
  /**
   * Writes the active label if the stored generation is `expected` (0: none
   * stored). Atomic.
   *
   * @param service The service namespace.
   * @param expected The generation the caller saw.
   * @param next The new record; its generation must be `expected + 1`.
   * @returns Whether it was written.
   */
  compareAndSetActive(
    service: string,
    expected: number,
    next: ActiveRecord,
  ): Promise<boolean>;
  /**
   * Writes an instance's heartbeat.
   *
   * @param record The heartbeat.
   */
  heartbeat(record: InstanceRecord): Promise<void>;
  /**
   * Lists heartbeats, lapsed ones included (the caller filters on `until`).
   *
   * @returns Every heartbeat stored.
   */
  listInstances(): Promise<InstanceRecord[]>;
  /**
   * Removes an instance's heartbeat (on close).
   *
   * @param instanceId The instance.
   */
  removeInstance(instanceId: string): Promise<void>;
  /**
   * Reads a named record of the service.
   *
   * @param service The service namespace.
   * @param name The record's name, such as `credential/green`.
   * @returns The record, if one was written.
   */
  readDocument(
    service: string,
    name: string,
  ): Promise<StoredDocument | undefined>;
  /**
   * Writes a named record if its stored version is `expected` (0: absent);
   * the written version is `expected + 1`. Atomic.
   *
   * @param service The service namespace.
   * @param name The record's name.
   * @param expected The version the caller read.
   * @param value The JSON value (under 60 KiB).
   * @param fence When given, the write is refused (false) unless the lock
   * it names still has that holder and fencing token.
   * @returns Whether it was written.
   */
  writeDocument(
    service: string,
    name: string,
    expected: number,
    value: unknown,
    fence?: Fence,
  ): Promise<boolean>;
  /**
   * Claims a named lock of the service: takes it when it is free, released
   * or lapsed as the store judges it (see {@linkcode LockState}), renews it
   * when the claimant holds it. Atomic: at most one holder at a time.
   *
   * @param service The service namespace.
   * @param name The lock's name, such as `schedule/leader`.
   * @param claim Who claims it, for how long, and why.
   * @returns The lock as it stands after the claim.
   */
  claimLock(
    service: string,
    name: string,
    claim: LockClaim,
  ): Promise<LockState>;
  /**
   * Releases a lock if `holder` still holds it with `fence` (the next holder
   * gets a higher fence).
   *
   * @param service The service namespace.
   * @param name The lock's name.
   * @param holder The holder.
   * @param fence Its fencing token.
   */
  releaseLock(
    service: string,
    name: string,
    holder: string,
    fence: number,
  ): Promise<void>;
  /**
   * Reads a lock. Reads only (`held` is always false).
   *
   * @param service The service namespace.
   * @param name The lock's name.
   * @returns The lock, if someone holds it (it may have lapsed on Deno KV).
   */
  readLock(service: string, name: string): Promise<LockState | undefined>;
  /**
   * Appends one entry to the service's audit trail.
   *
   * @param service The service namespace.
   * @param entry The entry.
   */
  appendAudit(service: string, entry: AuditEntry): Promise<void>;
  /**
   * Reads the latest entries of the audit trail, oldest first.
   *
   * @param service The service namespace.
   * @param limit At most this many, the most recent.
   * @returns The entries.
   */
  listAudit(service: string, limit: number): Promise<AuditEntry[]>;
}

/**
 * The shared store of a fleet: its {@linkcode GrantStore} and its
 * {@linkcode ControlStore}, in one engine. Engines:
 * {@linkcode createMemoryFleetStore} (one process, tests), Deno KV (`./kv`),
 * Redis (`./redis`).
 *
 * `service` names the service-wide namespace (a hash of the token URL and the
 * scope, computed by the member); keys are further prefixed by the engine's
 * own prefix.
 */
export interface FleetStore extends GrantStore, ControlStore {}

const clone = <T>(value: T): T => structuredClone(value);
const slotId = (key: GrantKey) => `${key.credential}/${key.slot}`;

/** Options of {@linkcode createMemoryFleetStore}. */
export interface MemoryFleetStoreOptions {
  /**
   * The store's own monotonic clock, in ms: it judges when a lock lapses
   * (the memory store is its own server).
   *
   * @default performance.now
   */
  readonly monotonic?: () => number;
}

/**
 * A {@linkcode FleetStore} in this process's memory: for tests and for
 * several auth instances in one process. Values are cloned in and out, as a
 * real engine would serialise them.
 *
 * @param options The store's clock.
 * @returns A new empty store.
 *
 * @example
 * ```ts
 * import { createMemoryFleetStore } from "./store.ts";
 * const store = createMemoryFleetStore();
 * const key = { credential: "c", slot: 0 };
 * if (!await store.tryLease(key, { holder: "a", until: 2 }, 1)) throw new Error();
 * if (await store.tryLease(key, { holder: "b", until: 2 }, 1)) throw new Error();
 * ```
 */
export function createMemoryFleetStore(
  options: MemoryFleetStoreOptions = {},
): FleetStore {
  const monotonic = options.monotonic ?? (() => performance.now());
  const locks = new Map<
    string,
    { holder: string; fence: number; note: string; ttlMs: number; at: number }
  >();
  /** The last fence of each lock, kept after a release so fences only grow. */
  const fences = new Map<string, number>();
  const slots = new Map<string, { grant?: StoredGrant; lease?: Lease }>();
  const active = new Map<string, ActiveRecord>();
  const rejections = new Map<string, Map<string, RejectionRecord>>();
  const instances = new Map<string, InstanceRecord>();
  const documents = new Map<string, StoredDocument>();
  const audit = new Map<string, AuditEntry[]>();
  const listeners = new Set<() => void>();
  const changed = () => queueMicrotask(() => listeners.forEach((f) => f()));
  const slot = (key: GrantKey) => {
    const id = slotId(key);
    let record = slots.get(id);
    if (record === undefined) slots.set(id, record = {});
    return record;
  };
  return {
    readSlots: (keys) =>
      Promise.resolve(keys.map((key) => clone(slots.get(slotId(key)) ?? {}))),
    tryLease(key, lease, now) {
      const record = slot(key);
      const current = record.lease;
      if (
        current !== undefined && current.until > now &&
        current.holder !== lease.holder
      ) {
        return Promise.resolve(false);
      }
      record.lease = clone(lease);
      return Promise.resolve(true);
    },
    writeGrant(key, grant, holder) {
      const record = slot(key);
      if (record.lease?.holder === holder) delete record.lease;
      if (
        record.grant !== undefined && record.grant.expiresAt > grant.expiresAt
      ) {
        return Promise.resolve(false);
      }
      record.grant = clone(grant);
      changed();
      return Promise.resolve(true);
    },
    releaseLease(key, holder) {
      const record = slots.get(slotId(key));
      if (record?.lease?.holder === holder) delete record.lease;
      return Promise.resolve();
    },
    dropGrant(key, token) {
      const record = slots.get(slotId(key));
      if (record?.grant?.token === token) {
        delete record.grant;
        changed();
      }
      return Promise.resolve();
    },
    readActive: (service) => Promise.resolve(clone(active.get(service))),
    compareAndSetActive(service, expected, next) {
      if ((active.get(service)?.generation ?? 0) !== expected) {
        return Promise.resolve(false);
      }
      active.set(service, clone(next));
      changed();
      return Promise.resolve(true);
    },
    publishRejection(record) {
      let byHash = rejections.get(record.credential);
      if (byHash === undefined) {
        rejections.set(record.credential, byHash = new Map());
      }
      if (byHash.has(record.secretHash)) return Promise.resolve(false);
      byHash.set(record.secretHash, clone(record));
      changed();
      return Promise.resolve(true);
    },
    readRejections: (credentials) =>
      Promise.resolve(
        credentials.flatMap((credential) =>
          [
            ...(rejections.get(credential)?.values() ?? []),
          ].map(clone)
        ),
      ),
    clearRejections(credential, keep) {
      const byHash = rejections.get(credential);
      for (const hash of [...(byHash?.keys() ?? [])]) {
        if (hash !== keep) byHash!.delete(hash);
      }
      return Promise.resolve();
    },
    heartbeat(record) {
      instances.set(record.instanceId, clone(record));
      return Promise.resolve();
    },
    listInstances: () => Promise.resolve([...instances.values()].map(clone)),
    removeInstance(instanceId) {
      instances.delete(instanceId);
      return Promise.resolve();
    },
    readDocument: (service, name) =>
      Promise.resolve(clone(documents.get(`${service}/${name}`))),
    claimLock(service, name, claim) {
      checkLockTtl(claim.ttlMs);
      const id = `${service}/${name}`;
      const now = monotonic();
      const current = locks.get(id);
      if (
        current !== undefined && current.holder !== claim.holder &&
        now - current.at < current.ttlMs
      ) {
        const { holder, fence, note, ttlMs } = current;
        return Promise.resolve({ held: false, holder, fence, note, ttlMs });
      }
      const fence = current?.holder === claim.holder
        ? current.fence
        : (fences.get(id) ?? 0) + 1;
      fences.set(id, fence);
      locks.set(id, { ...claim, fence, at: now });
      return Promise.resolve({ held: true, ...claim, fence });
    },
    releaseLock(service, name, holder, fence) {
      const id = `${service}/${name}`;
      const current = locks.get(id);
      if (current?.holder === holder && current.fence === fence) {
        locks.delete(id);
      }
      return Promise.resolve();
    },
    readLock(service, name) {
      const current = locks.get(`${service}/${name}`);
      if (current === undefined) return Promise.resolve(undefined);
      const { holder, fence, note, ttlMs } = current;
      return Promise.resolve({ held: false, holder, fence, note, ttlMs });
    },
    writeDocument(service, name, expected, value, fence) {
      const id = `${service}/${name}`;
      if ((documents.get(id)?.version ?? 0) !== expected) {
        return Promise.resolve(false);
      }
      if (fence !== undefined) {
        const lock = locks.get(`${service}/${fence.lock}`);
        if (
          lock?.holder !== fence.holder || lock.fence !== fence.fence ||
          monotonic() - lock.at >= lock.ttlMs
        ) {
          return Promise.resolve(false);
        }
      }
      documents.set(id, { version: expected + 1, value: clone(value) });
      changed();
      return Promise.resolve(true);
    },
    appendAudit(service, entry) {
      let list = audit.get(service);
      if (list === undefined) audit.set(service, list = []);
      list.push(clone(entry));
      return Promise.resolve();
    },
    listAudit: (service, limit) =>
      Promise.resolve(clone((audit.get(service) ?? []).slice(-limit))),
    watch(_service, _keys, onChange) {
      listeners.add(onChange);
      return () => void listeners.delete(onChange);
    },
  };
}
