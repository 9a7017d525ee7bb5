/**
 * The authenticated control plane of a fleet: when a seal key is set, every
 * control record — heartbeats, the active label, documents (the schedule's
 * state, the rotation journal, sealed credentials), audit entries and
 * published rejections — carries a MAC (HMAC-SHA-256 under a key derived
 * from the seal key with HKDF), bound to where it is stored. Records without
 * a valid MAC (a store writer without the key, another fleet's key) are left
 * out and reported, never followed.
 *
 * {@linkcode authenticateStore} wraps any engine, so the rule has one path.
 *
 * @module
 */
import type { SealKeyring } from "./distribution.ts";
import type {
  ActiveRecord,
  AuditEntry,
  FleetStore,
  InstanceRecord,
  RejectionRecord,
  StoredDocument,
} from "./store.ts";

/** The kinds of control records, as {@linkcode authenticateStore} reports a rejected one. */
export type ControlRecordKind =
  | "heartbeat"
  | "active"
  | "document"
  | "audit"
  | "rejection";

const encoder = new TextEncoder();

/** JSON with object keys sorted, so the MAC does not depend on key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    return `{${
      Object.keys(value).sort().filter((key) =>
        (value as Record<string, unknown>)[key] !== undefined
      ).map((key) =>
        `${JSON.stringify(key)}:${
          canonical((value as Record<string, unknown>)[key])
        }`
      ).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "null";
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

async function tag(
  key: CryptoKey,
  context: string,
  record: unknown,
): Promise<string> {
  return hex(
    await crypto.subtle.sign(
      "HMAC",
      key,
      encoder.encode(
        `dual-secret-auth/control/v1\n${context}\n${canonical(record)}`,
      ),
    ),
  );
}

/**
 * Signs a control record: the record with a `mac` field (`keyId.hex`) over
 * its other fields and its context (where it is stored).
 *
 * @typeParam T The record's type.
 * @param ring The keys (the current one signs).
 * @param context Where the record lives, such as `active/<service>`.
 * @param record The record (a plain object; a `mac` field is replaced).
 * @returns The signed record.
 *
 * @example
 * ```ts
 * import { importSealKeyring } from "./distribution.ts";
 * import { signRecord, verifyRecord } from "./control.ts";
 * const ring = await importSealKeyring(btoa("k".repeat(32)));
 * const signed = await signRecord(ring, "active/svc", { label: "blue" });
 * if (await verifyRecord(ring, "active/svc", signed) === undefined) throw new Error();
 * if (await verifyRecord(ring, "active/other", signed) !== undefined) throw new Error();
 * ```
 */
export async function signRecord<T extends object>(
  ring: SealKeyring,
  context: string,
  record: T,
): Promise<T & { mac: string }> {
  const { mac: _old, ...fields } = record as T & { mac?: unknown };
  return {
    ...fields,
    mac: `${ring.current.id}.${await tag(
      ring.current.control,
      context,
      fields,
    )}`,
  } as T & { mac: string };
}

/**
 * Checks a control record's MAC.
 *
 * @typeParam T The record's type.
 * @param ring The keys (any of them may have signed).
 * @param context Where the record was read from.
 * @param record The record as read.
 * @returns The record without its `mac`, or undefined when it has none, its
 * key is not in the ring, or it does not verify.
 */
export async function verifyRecord<T extends object>(
  ring: SealKeyring,
  context: string,
  record: unknown,
): Promise<T | undefined> {
  if (typeof record !== "object" || record === null) return undefined;
  const { mac, ...fields } = record as { mac?: unknown };
  if (typeof mac !== "string") return undefined;
  const dot = mac.lastIndexOf(".");
  const key = ring.keys.get(mac.slice(0, dot));
  if (dot < 0 || key === undefined) return undefined;
  const expected = await tag(key.control, context, fields);
  // Compared in full, without an early exit.
  const given = mac.slice(dot + 1);
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ (given.charCodeAt(i) || 0);
  }
  return diff === 0 ? fields as T : undefined;
}

/**
 * A keyed hash of a credential's secret, for the rejection record: without
 * the key it cannot be tested against a dictionary of candidate secrets.
 *
 * @param ring The keys (the current one).
 * @param namespace The credential namespace.
 * @param secret The secret in the clear.
 * @returns 32 hex characters.
 */
export async function keyedSecretHash(
  ring: SealKeyring,
  namespace: string,
  secret: string,
): Promise<string> {
  return (await tag(ring.current.control, `secret/${namespace}`, secret))
    .slice(0, 32);
}

/** The key id of a record's MAC (empty without one). */
function macKeyId(record: unknown): string {
  const mac = (record as { mac?: unknown } | null)?.mac;
  return typeof mac === "string"
    ? mac.slice(0, Math.max(0, mac.lastIndexOf(".")))
    : "";
}

/** Why a record did not verify, for the operator (never a key). */
function whyNot(ring: SealKeyring, record: unknown): string {
  const mac = (record as { mac?: unknown } | null)?.mac;
  if (typeof mac !== "string") return "it has no MAC";
  const id = mac.slice(0, Math.max(0, mac.lastIndexOf(".")));
  return ring.keys.has(id)
    ? `its MAC under key id ${id} does not verify`
    : `it is signed with key id ${
      JSON.stringify(id.slice(0, 40))
    }, which is not among this process's keys (${
      [...ring.keys.keys()].join(", ")
    })`;
}

/** Options of {@linkcode authenticateStore}. */
export interface AuthenticateStoreOptions {
  /**
   * Keep heartbeats without a valid MAC in `listInstances` (they are still
   * reported to `onRejected`). For an operator: the revoke gate and the
   * waits for the fleet then count them, the cautious side (an instance
   * without the key still holds the gate shut); an instance leaves them out
   * of its pool assignment.
   *
   * @default false
   */
  readonly keepUnverifiedHeartbeats?: boolean;
}

const UNVERIFIED = Symbol("unverified");

/** Heartbeats kept by `keepUnverifiedHeartbeats`, with why their MAC failed. */
const unverifiedHeartbeats = new WeakMap<object, string>();

/**
 * Why a heartbeat listed through {@linkcode authenticateStore} (with
 * `keepUnverifiedHeartbeats`) carries no valid MAC for the reader's keys:
 * its instance signs with another seal key, or has none. Such an instance
 * cannot open a secret sealed with the reader's key either, so the revoke
 * gate counts it before a credential is regenerated.
 *
 * @param record A heartbeat as listed.
 * @returns Why it did not verify, or undefined when it did (or was not
 * listed through an authenticated store).
 */
export function heartbeatProblem(record: InstanceRecord): string | undefined {
  return unverifiedHeartbeats.get(record);
}

/**
 * What a document read through {@linkcode authenticateStore} held when its
 * MAC did not verify (its `value` is then undefined): for a report, such as
 * an instance naming the record it could not load. Never to be used.
 *
 * @param document A document read through the wrapped store.
 * @returns The unverified value, if the document was refused.
 */
export function unverifiedValue(
  document: StoredDocument | undefined,
): unknown {
  return (document as { [UNVERIFIED]?: unknown } | undefined)?.[UNVERIFIED];
}

/** A document value that is not a plain object travels wrapped, so it can carry a MAC. */
const WRAPPED = "$value";

/**
 * Wraps a store so that control records are signed on the way in and
 * verified on the way out; what does not verify is left out (a heartbeat,
 * an audit entry, a rejection), read as absent (a document's value), or read
 * as a record without a label (the active record: no instance follows it,
 * and a promotion overwrites it by its generation). Grants, leases and locks
 * pass as they are (grants are sealed and bound to their times by the
 * member).
 *
 * @param store The engine.
 * @param ring The keys.
 * @param onRejected Told of each record left out: its kind, where it is and why.
 * @param options Whether unverified heartbeats are kept (still reported).
 * @returns The wrapped store.
 */
export function authenticateStore(
  store: FleetStore,
  ring: SealKeyring,
  onRejected: (kind: ControlRecordKind, where: string, why: string) => void,
  options: AuthenticateStoreOptions = {},
): FleetStore {
  const verified = async <T extends object>(
    kind: ControlRecordKind,
    context: string,
    record: unknown,
  ): Promise<T | undefined> => {
    const fields = await verifyRecord<T>(ring, context, record);
    if (fields === undefined) onRejected(kind, context, whyNot(ring, record));
    return fields;
  };
  const documentContext = (service: string, name: string, version: number) =>
    `document/${service}/${name}/${version}`;
  return {
    ...store,
    readSlots: (keys) => store.readSlots(keys),
    tryLease: (key, lease, now) => store.tryLease(key, lease, now),
    writeGrant: (key, grant, holder) => store.writeGrant(key, grant, holder),
    releaseLease: (key, holder) => store.releaseLease(key, holder),
    dropGrant: (key, token) => store.dropGrant(key, token),
    async readActive(service) {
      const record = await store.readActive(service);
      if (record === undefined) return undefined;
      const fields = await verified<ActiveRecord>(
        "active",
        `active/${service}`,
        record,
      );
      if (fields !== undefined) return fields;
      // Its generation only: the compare-and-set of a promotion replaces it.
      const generation = (record as { generation?: unknown }).generation;
      return {
        generation: Number.isSafeInteger(generation) ? generation : 0,
      } as ActiveRecord;
    },
    async compareAndSetActive(service, expected, next) {
      return store.compareAndSetActive(
        service,
        expected,
        await signRecord(ring, `active/${service}`, next),
      );
    },
    async publishRejection(record) {
      return store.publishRejection(
        await signRecord(ring, `rejection/${record.credential}`, record),
      );
    },
    async readRejections(credentials) {
      const out: RejectionRecord[] = [];
      for (const record of await store.readRejections(credentials)) {
        const fields = await verified<RejectionRecord>(
          "rejection",
          `rejection/${record.credential}`,
          record,
        );
        if (fields !== undefined) out.push(fields);
      }
      return out;
    },
    clearRejections: (credential, keep) =>
      store.clearRejections(credential, keep),
    async heartbeat(record) {
      await store.heartbeat(
        await signRecord(ring, `instance/${record.instanceId}`, record),
      );
    },
    async listInstances() {
      const out: InstanceRecord[] = [];
      for (const record of await store.listInstances()) {
        const id = (record as { instanceId?: unknown }).instanceId;
        const fields = await verified<InstanceRecord>(
          "heartbeat",
          `instance/${String(id)}`,
          record,
        );
        if (fields !== undefined) {
          const keyId = macKeyId(record);
          if (options.keepUnverifiedHeartbeats && keyId !== ring.current.id) {
            // Signed with a key the reader keeps only to open old records
            // (a key change): its instance may lack the key new secrets are
            // sealed with, and would keep a regenerated, dead secret.
            unverifiedHeartbeats.set(
              fields,
              `it signs with key id ${
                JSON.stringify(keyId.slice(0, 40))
              }, not ${ring.current.id}, which new secrets are sealed with: it may not hold that key (give it ${ring.current.id} first in its keys)`,
            );
          }
          out.push(fields);
        } else if (options.keepUnverifiedHeartbeats) {
          unverifiedHeartbeats.set(record, whyNot(ring, record));
          out.push(record);
        }
      }
      return out;
    },
    removeInstance: (instanceId) => store.removeInstance(instanceId),
    claimLock: (service, name, claim) => store.claimLock(service, name, claim),
    releaseLock: (service, name, holder, fence) =>
      store.releaseLock(service, name, holder, fence),
    readLock: (service, name) => store.readLock(service, name),
    async readDocument(service, name) {
      const document = await store.readDocument(service, name);
      if (document === undefined) return undefined;
      const fields = await verified<Record<string, unknown>>(
        "document",
        documentContext(service, name, document.version),
        document.value,
      );
      if (fields === undefined) {
        // Read as absent, at its version: the next write replaces it. What
        // was there stays reachable for a report (never for use).
        return {
          version: document.version,
          value: undefined,
          [UNVERIFIED]: document.value,
        } as StoredDocument;
      }
      return {
        version: document.version,
        value: WRAPPED in fields ? fields[WRAPPED] : fields,
      };
    },
    async writeDocument(service, name, expected, value, fence) {
      const plain = typeof value === "object" && value !== null &&
        !Array.isArray(value);
      const signed = await signRecord(
        ring,
        documentContext(service, name, expected + 1),
        plain ? value : { [WRAPPED]: value },
      );
      return store.writeDocument(service, name, expected, signed, fence);
    },
    async appendAudit(service, entry) {
      await store.appendAudit(
        service,
        await signRecord(ring, `audit/${service}`, entry),
      );
    },
    async listAudit(service, limit) {
      const out: AuditEntry[] = [];
      for (const entry of await store.listAudit(service, limit)) {
        const fields = await verified<AuditEntry>(
          "audit",
          `audit/${service}`,
          entry,
        );
        if (fields !== undefined) out.push(fields);
      }
      return out;
    },
  };
}
