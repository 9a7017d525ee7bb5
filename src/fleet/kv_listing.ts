/**
 * Listings of a Deno KV fleet database across services and prefixes, for
 * the operator (`deno task fleet`, the status page, a forgotten `--prefix`):
 * kept out of the engine (`./kv_store.ts`), which implements one fleet's
 * store. Reads only.
 *
 * @module
 */
import { decodeKvValue, type KvKey, type KvLike } from "./kv_store.ts";
import {
  type AuditEntry,
  type InstanceRecord,
  isInstanceRecord,
} from "./store.ts";

/** A live heartbeat found by {@linkcode listKvInstances}, with the key prefix it lives under. */
export interface KvInstanceEntry {
  /** The service's key prefix. */
  readonly prefix: KvKey;
  /** The heartbeat. */
  readonly record: InstanceRecord;
}

/**
 * Lists the live heartbeats under a key prefix, of every service below it.
 * Reads only.
 *
 * @param kv The database.
 * @param prefix A prefix: a service's own, or one above several services.
 * @param now The current time (heartbeats with `until <= now` are left out).
 * @returns The live instances, by prefix then instance id.
 */
export async function listKvInstances(
  kv: KvLike,
  prefix: KvKey,
  now: number,
): Promise<KvInstanceEntry[]> {
  const out: KvInstanceEntry[] = [];
  for await (const entry of kv.list({ prefix })) {
    const record = decodeKvValue(entry.value);
    if (
      entry.key.at(-2) === "instance" && isInstanceRecord(record) &&
      record.until > now
    ) {
      out.push({ prefix: entry.key.slice(0, -2), record });
    }
  }
  return out.sort((a, b) =>
    String(a.prefix).localeCompare(String(b.prefix)) ||
    a.record.instanceId.localeCompare(b.record.instanceId)
  );
}

/** An audit entry found by {@linkcode listKvAudit}, with its service namespace. */
export interface KvAuditEntry {
  /** The service namespace (a digest of token URL and scope). */
  readonly service: string;
  /** The entry. */
  readonly entry: AuditEntry;
}

/**
 * Lists the latest audit entries under a key prefix (of every service below
 * it), oldest first. Reads only.
 *
 * @param kv The database.
 * @param prefix The fleet's key prefix.
 * @param limit At most this many, the most recent.
 * @returns The entries.
 */
export async function listKvAudit(
  kv: KvLike,
  prefix: KvKey,
  limit: number,
): Promise<KvAuditEntry[]> {
  const out: KvAuditEntry[] = [];
  for await (const entry of kv.list({ prefix: [...prefix, "audit"] })) {
    const value = decodeKvValue(entry.value) as AuditEntry | null;
    const service = entry.key[prefix.length + 1];
    if (value !== null && typeof service === "string") {
      out.push({ service, entry: value });
    }
  }
  return out.sort((a, b) => a.entry.at - b.entry.at).slice(-limit);
}
