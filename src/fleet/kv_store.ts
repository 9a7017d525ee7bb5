/**
 * The Deno KV engine of the fleet store. It uses only what works on every
 * Deno KV backend: the local SQLite file, Deno Deploy, `npm:@deno/kv` under
 * Node and KV Connect to a self-hosted `denokv` — `get`, `getMany` (at most
 * 10 keys), `set`, `delete`, `list`, atomic operations with at most 10
 * checks, and `watch` only as an optional hint. No queues; expiry is read
 * from the values (`expireIn` is only a hint for garbage collection).
 *
 * @module
 */
import { withRetry } from "../retry.ts";
import type {
  ActiveRecord,
  AuditEntry,
  FleetStore,
  GrantKey,
  InstanceRecord,
  Lease,
  RejectionRecord,
  SlotRecord,
  StoredDocument,
  StoredGrant,
  Unwatch,
} from "./store.ts";
import { checkLockTtl, type LockState } from "./store.ts";

/** One part of a Deno KV key. */
export type KvKeyPart =
  | string
  | number
  | bigint
  | boolean
  | symbol
  | Uint8Array;
/** A Deno KV key. */
export type KvKey = readonly KvKeyPart[];

/** An entry read from Deno KV (`versionstamp` is `null` when absent). */
export interface KvEntryLike {
  /** The key. */
  readonly key: KvKey;
  /** The value, `null` when absent. */
  readonly value: unknown;
  /** The versionstamp, `null` when absent. */
  readonly versionstamp: string | null;
}

/** The atomic operation of Deno KV, as far as the fleet uses it. */
export interface KvAtomicLike {
  /** Adds checks. */
  check(
    ...checks: { key: KvKey; versionstamp: string | null }[]
  ): KvAtomicLike;
  /** Adds a set. */
  set(
    key: KvKey,
    value: unknown,
    options?: { expireIn?: number },
  ): KvAtomicLike;
  /** Adds a delete. */
  delete(key: KvKey): KvAtomicLike;
  /** Commits; `ok` is false when a check failed. */
  commit(): Promise<{ ok: boolean }>;
}

/**
 * The methods of `Deno.Kv` the fleet uses: a `Deno.Kv` (local file, Deno
 * Deploy, KV Connect) or the `Kv` of `npm:@deno/kv` fits.
 */
export interface KvLike {
  /** Reads one key. */
  get(key: KvKey): Promise<KvEntryLike>;
  /** Reads up to 10 keys at once. */
  getMany(keys: readonly KvKey[]): Promise<KvEntryLike[]>;
  /** Writes one key. */
  set(
    key: KvKey,
    value: unknown,
    options?: { expireIn?: number },
  ): Promise<unknown>;
  /** Deletes one key. */
  delete(key: KvKey): Promise<void>;
  /**
   * Lists a prefix (the fleet passes only `prefix`; the selector has the
   * shape of `Deno.KvListSelector` so that `npm:@deno/kv`'s `Kv` fits too).
   */
  list(
    selector:
      | { prefix: KvKey }
      | { prefix: KvKey; start: KvKey }
      | { prefix: KvKey; end: KvKey }
      | { start: KvKey; end: KvKey },
  ): AsyncIterable<KvEntryLike>;
  /** Starts an atomic operation. */
  atomic(): KvAtomicLike;
  /** Watches keys (optional; a local file does not see other processes' writes). */
  watch?(keys: readonly KvKey[]): ReadableStream<unknown>;
}

/** Options of {@linkcode createKvFleetStore}. */
export interface KvFleetStoreOptions {
  /** The key prefix of this service's records. */
  readonly prefix: KvKey;
  /**
   * How long writes are retried on `database is locked` (SQLite busy), in ms.
   *
   * @default 3000
   */
  readonly lockedRetryMs?: number;
  /**
   * This process's monotonic clock, in ms. A lock held by another is taken
   * over only after this store saw its record unchanged (same versionstamp)
   * for the lock's duration on this clock, so no wall clock is trusted.
   *
   * @default performance.now
   */
  readonly monotonic?: () => number;
}

/** Extra time a key is kept after its value says it lapsed (a garbage-collection hint). */
const KEEP_AFTER_MS = 60_000;
const GET_MANY_LIMIT = 10;
const CONFLICT_LAPS = 8;

/**
 * Whether an error is SQLite's "database is locked" (another process holds
 * the write lock), which a retry after a short wait resolves.
 *
 * @param error What a KV call threw.
 * @returns Whether it is worth retrying.
 */
export function isDatabaseLocked(error: unknown): boolean {
  return error instanceof Error &&
    /database is locked|SQLITE_BUSY|database table is locked/i.test(
      error.message,
    );
}

/**
 * Retries a KV call on `database is locked` with jittered backoff.
 *
 * @typeParam T What the call resolves to.
 * @param fn The call.
 * @param maxElapsedMs The longest total wait.
 * @returns What the call resolved to.
 */
export function retryLocked<T>(
  fn: () => Promise<T>,
  maxElapsedMs = 3_000,
): Promise<T> {
  return withRetry(fn, {
    maxAttempts: 30,
    baseDelayMs: 10,
    maxDelayMs: 250,
    maxElapsedMs,
    isRetriable: isDatabaseLocked,
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Values are stored as UTF-8 JSON bytes, not as structured clones: Deno KV
 * stores those in V8's serialization format, which an older V8 (Node's, with
 * npm:@deno/kv) cannot read. Bytes read the same in every runtime.
 */
function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/**
 * Reads a value as the engine stores it (UTF-8 JSON bytes); what is not
 * ours reads as null, like an absent record. For the listings
 * (`./kv_listing.ts`), which read the same keys.
 *
 * @param value A value from `kv.get` or `kv.list`.
 * @returns The JSON value, or null.
 */
export function decodeKvValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (!(value instanceof Uint8Array)) return value;
  try {
    return JSON.parse(decoder.decode(value));
  } catch {
    return null; // Not ours: ignored like an absent record.
  }
}

/** A lock record read back: undefined when absent, released or not ours. */
function readLock(value: unknown): Omit<LockState, "held"> | undefined {
  const record = decodeKvValue(value) as Partial<LockState> | null;
  if (
    typeof record !== "object" || record === null ||
    typeof record.holder !== "string" || record.holder === "" ||
    !Number.isSafeInteger(record.fence) ||
    !Number.isSafeInteger(record.ttlMs)
  ) return undefined;
  return {
    holder: record.holder,
    fence: record.fence!,
    note: typeof record.note === "string" ? record.note : "",
    ttlMs: record.ttlMs!,
  };
}

/** The fence of a lock record, held or released, if it has one. */
function lastFence(value: unknown): number | undefined {
  const fence = (decodeKvValue(value) as { fence?: unknown } | null)?.fence;
  return Number.isSafeInteger(fence) ? fence as number : undefined;
}

const hint = (until: number) =>
  Math.max(1_000, until - Date.now() + KEEP_AFTER_MS);

/**
 * A {@linkcode FleetStore} on Deno KV.
 *
 * @param kv The database: a `Deno.Kv` or any object with the methods of {@linkcode KvLike}.
 * @param options The key prefix.
 * @returns The store.
 *
 * @example
 * ```ts
 * import { createKvFleetStore } from "./kv_store.ts";
 * const kv = await Deno.openKv(":memory:");
 * const store = createKvFleetStore(kv, { prefix: ["svc"] });
 * if (!await store.tryLease({ credential: "c", slot: 0 }, { holder: "a", until: 2 }, 1)) {
 *   throw new Error();
 * }
 * kv.close();
 * ```
 */
export function createKvFleetStore(
  kv: KvLike,
  options: KvFleetStoreOptions,
): FleetStore {
  const prefix = [...options.prefix];
  const lockedMs = options.lockedRetryMs ?? 3_000;
  const write = <T>(fn: () => Promise<T>) => retryLocked(fn, lockedMs);
  const grantKey = (key: GrantKey): KvKey => [
    ...prefix,
    "slot",
    key.credential,
    key.slot,
    "grant",
  ];
  const leaseKey = (key: GrantKey): KvKey => [
    ...prefix,
    "slot",
    key.credential,
    key.slot,
    "lease",
  ];
  const activeKey = (service: string): KvKey => [...prefix, "active", service];
  const rejectionPrefix = (credential: string): KvKey => [
    ...prefix,
    "rejection",
    credential,
  ];
  const instancePrefix: KvKey = [...prefix, "instance"];
  const documentKey = (service: string, name: string): KvKey => [
    ...prefix,
    "document",
    service,
    name,
  ];
  const auditPrefix = (service: string): KvKey => [...prefix, "audit", service];
  const lockKey = (service: string, name: string): KvKey => [
    ...prefix,
    "lock",
    service,
    name,
  ];
  const monotonic = options.monotonic ?? (() => performance.now());
  /** Per lock and claimant: the versionstamp last seen and since when (monotonic). */
  const observed = new Map<string, { versionstamp: string; since: number }>();

  async function getMany(keys: KvKey[]): Promise<KvEntryLike[]> {
    const out: KvEntryLike[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY_LIMIT) {
      out.push(...await kv.getMany(keys.slice(i, i + GET_MANY_LIMIT)));
    }
    return out;
  }

  async function list<T>(selector: KvKey): Promise<T[]> {
    const out: T[] = [];
    for await (const entry of kv.list({ prefix: selector })) {
      out.push(decodeKvValue(entry.value) as T);
    }
    return out;
  }

  /** Runs a read-check-commit lap until it commits or decides. */
  async function optimistic<T>(
    lap: () => Promise<{ op?: () => KvAtomicLike; result: T }>,
  ): Promise<T> {
    for (let i = 0; i < CONFLICT_LAPS; i++) {
      const { op, result } = await lap();
      if (op === undefined) return result;
      if ((await write(() => op().commit())).ok) return result;
    }
    throw new Error(
      "the fleet store kept changing under a write; check for a runaway writer",
    );
  }

  return {
    async readSlots(keys) {
      const entries = await getMany(
        keys.flatMap((key) => [grantKey(key), leaseKey(key)]),
      );
      return keys.map((_, i) => {
        const grant = decodeKvValue(entries[2 * i].value) as StoredGrant | null;
        const lease = decodeKvValue(entries[2 * i + 1].value) as Lease | null;
        const record: { grant?: StoredGrant; lease?: Lease } = {};
        if (grant !== null) record.grant = grant;
        if (lease !== null) record.lease = lease;
        return record as SlotRecord;
      });
    },
    async tryLease(key, lease, now) {
      const current = await kv.get(leaseKey(key));
      const held = decodeKvValue(current.value) as Lease | null;
      if (held !== null && held.until > now && held.holder !== lease.holder) {
        return false;
      }
      const result = await write(() =>
        kv.atomic()
          .check({ key: leaseKey(key), versionstamp: current.versionstamp })
          .set(leaseKey(key), encode(lease), { expireIn: hint(lease.until) })
          .commit()
      );
      return result.ok;
    },
    writeGrant(key, grant, holder) {
      return optimistic(async () => {
        const [current, lease] = await kv.getMany([
          grantKey(key),
          leaseKey(key),
        ]);
        const mine =
          (decodeKvValue(lease.value) as Lease | null)?.holder === holder;
        const later =
          (decodeKvValue(current.value) as StoredGrant | null)?.expiresAt ?? 0;
        const written = later <= grant.expiresAt;
        if (!written && !mine) return { result: false };
        const op = () => {
          let atomic = kv.atomic().check(
            { key: grantKey(key), versionstamp: current.versionstamp },
            { key: leaseKey(key), versionstamp: lease.versionstamp },
          );
          if (written) {
            atomic = atomic.set(grantKey(key), encode(grant), {
              expireIn: hint(grant.expiresAt),
            });
          }
          return mine ? atomic.delete(leaseKey(key)) : atomic;
        };
        return { op, result: written };
      });
    },
    releaseLease(key, holder) {
      return optimistic(async () => {
        const lease = await kv.get(leaseKey(key));
        if ((decodeKvValue(lease.value) as Lease | null)?.holder !== holder) {
          return { result: undefined };
        }
        return {
          op: () =>
            kv.atomic().check({
              key: leaseKey(key),
              versionstamp: lease.versionstamp,
            }).delete(leaseKey(key)),
          result: undefined,
        };
      });
    },
    dropGrant(key, token) {
      return optimistic(async () => {
        const current = await kv.get(grantKey(key));
        if (
          (decodeKvValue(current.value) as StoredGrant | null)?.token !== token
        ) {
          return { result: undefined };
        }
        return {
          op: () =>
            kv.atomic().check({
              key: grantKey(key),
              versionstamp: current.versionstamp,
            }).delete(grantKey(key)),
          result: undefined,
        };
      });
    },
    async readActive(service) {
      const entry = await kv.get(activeKey(service));
      return (decodeKvValue(entry.value) as ActiveRecord | null) ?? undefined;
    },
    async compareAndSetActive(service, expected, next) {
      const current = await kv.get(activeKey(service));
      const generation =
        (decodeKvValue(current.value) as ActiveRecord | null)?.generation ??
          0;
      if (generation !== expected) return false;
      const result = await write(() =>
        kv.atomic()
          .check({
            key: activeKey(service),
            versionstamp: current.versionstamp,
          })
          .set(activeKey(service), encode(next))
          .commit()
      );
      return result.ok;
    },
    async publishRejection(record: RejectionRecord) {
      const key = [...rejectionPrefix(record.credential), record.secretHash];
      const result = await write(() =>
        kv.atomic()
          .check({ key, versionstamp: null })
          .set(key, encode(record), { expireIn: 7 * 24 * 3_600_000 })
          .commit()
      );
      return result.ok;
    },
    async readRejections(credentials) {
      const out: RejectionRecord[] = [];
      for (const credential of credentials) {
        out.push(...await list<RejectionRecord>(rejectionPrefix(credential)));
      }
      return out;
    },
    async clearRejections(credential, keep) {
      for await (
        const entry of kv.list({ prefix: rejectionPrefix(credential) })
      ) {
        if (
          (decodeKvValue(entry.value) as RejectionRecord).secretHash !== keep
        ) {
          await write(() => kv.delete(entry.key));
        }
      }
    },
    async heartbeat(record: InstanceRecord) {
      await write(() =>
        kv.set([...instancePrefix, record.instanceId], encode(record), {
          expireIn: hint(record.until),
        })
      );
    },
    listInstances: () => list<InstanceRecord>(instancePrefix),
    async removeInstance(instanceId) {
      await write(() => kv.delete([...instancePrefix, instanceId]));
    },
    async readDocument(service, name) {
      const entry = await kv.get(documentKey(service, name));
      return (decodeKvValue(entry.value) as StoredDocument | null) ?? undefined;
    },
    async writeDocument(service, name, expected, value, fence) {
      const key = documentKey(service, name);
      const [current, lock] = await kv.getMany([
        key,
        fence === undefined ? key : lockKey(service, fence.lock),
      ]);
      const version = (decodeKvValue(current.value) as StoredDocument | null)
        ?.version ?? 0;
      if (version !== expected) return false;
      if (fence !== undefined) {
        const held = readLock(lock.value);
        if (held?.holder !== fence.holder || held.fence !== fence.fence) {
          return false;
        }
      }
      const result = await write(() =>
        kv.atomic()
          .check(
            { key, versionstamp: current.versionstamp },
            // The lock unchanged since it was read: no one took it over.
            ...(fence === undefined
              ? []
              : [{ key: lock.key, versionstamp: lock.versionstamp }]),
          )
          .set(key, encode({ version: expected + 1, value }))
          .commit()
      );
      return result.ok;
    },
    claimLock(service, name, claim) {
      checkLockTtl(claim.ttlMs);
      const key = lockKey(service, name);
      // Keyed by the lock, not by the claimant: every acquisition is a new
      // holder (`name~token`), and a dead holder's record must lapse for
      // the next one too.
      const seen = JSON.stringify([service, name]);
      return optimistic<LockState>(async () => {
        const entry = await kv.get(key);
        const current = readLock(entry.value);
        if (
          current !== undefined && current.holder !== claim.holder &&
          entry.versionstamp !== null
        ) {
          // Lapsed only once this process saw the very same record for its
          // whole duration: the holder's renewals change the versionstamp.
          const now = monotonic();
          const last = observed.get(seen);
          if (last?.versionstamp !== entry.versionstamp) {
            observed.set(seen, {
              versionstamp: entry.versionstamp,
              since: now,
            });
            return { result: { held: false, ...current } };
          }
          if (now - last.since < current.ttlMs) {
            return { result: { held: false, ...current } };
          }
        }
        const fence = current?.holder === claim.holder
          ? current.fence
          : (lastFence(entry.value) ?? 0) + 1;
        const next = { ...claim, fence };
        return {
          op: () =>
            kv.atomic().check({ key, versionstamp: entry.versionstamp })
              .set(key, encode(next)),
          result: { held: true, ...next },
        };
      }).then((state) => {
        if (state.held) observed.delete(seen);
        return state;
      });
    },
    releaseLock(service, name, holder, fence) {
      const key = lockKey(service, name);
      return optimistic(async () => {
        const entry = await kv.get(key);
        const current = readLock(entry.value);
        if (current?.holder !== holder || current.fence !== fence) {
          return { result: undefined };
        }
        // The fence stays in a released record, so the next holder's grows.
        return {
          op: () =>
            kv.atomic().check({ key, versionstamp: entry.versionstamp })
              .set(key, encode({ released: true, fence })),
          result: undefined,
        };
      });
    },
    async readLock(service, name) {
      const current = readLock((await kv.get(lockKey(service, name))).value);
      return current === undefined ? undefined : { held: false, ...current };
    },
    async appendAudit(service, entry) {
      // The time first, so the list reads in order; a random tail keeps
      // entries of one millisecond apart.
      const key = [...auditPrefix(service), entry.at, crypto.randomUUID()];
      await write(() => kv.set(key, encode(entry)));
    },
    async listAudit(service, limit) {
      const all = await list<AuditEntry>(auditPrefix(service));
      return all.slice(-limit);
    },
    ...(typeof kv.watch === "function"
      ? {
        watch(
          service: string,
          keys: readonly GrantKey[],
          onChange: () => void,
        ) {
          return watchKeys(
            kv,
            [activeKey(service), ...keys.map(grantKey)],
            onChange,
          );
        },
      }
      : {}),
  };
}

/** Deno KV's watch takes at most 10 keys; the first delivery is the current state. */
function watchKeys(
  kv: KvLike,
  keys: KvKey[],
  onChange: () => void,
): Unwatch {
  const readers: ReadableStreamDefaultReader<unknown>[] = [];
  for (let i = 0; i < keys.length; i += GET_MANY_LIMIT) {
    let stream: ReadableStream<unknown>;
    try {
      stream = kv.watch!(keys.slice(i, i + GET_MANY_LIMIT));
    } catch {
      continue; // Watch is a hint: polling carries on without it.
    }
    const reader = stream.getReader();
    readers.push(reader);
    (async () => {
      let first = true;
      while (true) {
        const { done } = await reader.read();
        if (done) return;
        if (!first) onChange();
        first = false;
      }
    })().catch(() => undefined);
  }
  return () => {
    for (const reader of readers) reader.cancel().catch(() => undefined);
  };
}
