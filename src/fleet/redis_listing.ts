/**
 * Listings of a Redis fleet across prefixes and services, for the operator
 * (`deno task fleet --redis`, the status page, a forgotten `--prefix`): kept
 * out of the engine (`./redis_store.ts`), which implements one fleet's
 * store. Reads only.
 *
 * @module
 */
import {
  parseRedisValue,
  type RedisClientLike,
  redisKeysOf,
} from "./redis_store.ts";
import {
  type AuditEntry,
  type InstanceRecord,
  isInstanceRecord,
} from "./store.ts";

/** A live heartbeat found by {@linkcode listRedisInstances}, with its fleet's prefix. */
export interface RedisInstanceEntry {
  /** The fleet's key prefix. */
  readonly prefix: string;
  /** The heartbeat. */
  readonly record: InstanceRecord;
}

/**
 * Lists the live heartbeats of every fleet whose prefix starts with `prefix`
 * (SCAN over the fleets' instance indexes). Reads only.
 *
 * @param client A connected client.
 * @param prefix A fleet's prefix, or the start of several.
 * @param now The current time (heartbeats with `until <= now` are left out).
 * @returns The live instances, by prefix then instance id.
 */
export async function listRedisInstances(
  client: RedisClientLike,
  prefix: string,
  now: number,
): Promise<RedisInstanceEntry[]> {
  const glob = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  const indexes = new Set<string>();
  let cursor = "0";
  do {
    const [next, found] = await client.sendCommand([
      "SCAN",
      cursor,
      "MATCH",
      `{${glob}*}:instances`,
      "COUNT",
      "1000",
    ]) as [string, string[]];
    cursor = next;
    found.forEach((key) => indexes.add(key));
  } while (cursor !== "0");
  const out: RedisInstanceEntry[] = [];
  for (const index of indexes) {
    const fleetPrefix = index.slice(1, index.indexOf("}:instances"));
    const keys = redisKeysOf(fleetPrefix);
    const ids = await client.sendCommand([
      "ZRANGE",
      index,
      "0",
      "-1",
    ]) as string[];
    if (ids.length === 0) continue;
    const values = await client.sendCommand([
      "MGET",
      ...ids.map(keys.instance),
    ]) as unknown[];
    for (const value of values) {
      const record = parseRedisValue<InstanceRecord>(value);
      if (isInstanceRecord(record) && record.until > now) {
        out.push({ prefix: fleetPrefix, record });
      }
    }
  }
  return out.sort((a, b) =>
    a.prefix.localeCompare(b.prefix) ||
    a.record.instanceId.localeCompare(b.record.instanceId)
  );
}

/** An audit entry found by {@linkcode listRedisAudit}, with its service namespace. */
export interface RedisAuditEntry {
  /** The service namespace (a digest of token URL and scope). */
  readonly service: string;
  /** The entry. */
  readonly entry: AuditEntry;
}

/**
 * Lists the latest audit entries of one fleet (of every service in it),
 * oldest first, as `listKvAudit` does on Deno KV. Reads only.
 *
 * @param client A connected client.
 * @param prefix The fleet's own key prefix.
 * @param limit At most this many, the most recent.
 * @returns The entries.
 */
export async function listRedisAudit(
  client: RedisClientLike,
  prefix: string,
  limit: number,
): Promise<RedisAuditEntry[]> {
  const keys = redisKeysOf(prefix);
  const start = keys.audit("");
  const glob = start.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  const found = new Set<string>();
  let cursor = "0";
  do {
    const [next, batch] = await client.sendCommand([
      "SCAN",
      cursor,
      "MATCH",
      `${glob}*`,
      "COUNT",
      "1000",
    ]) as [string, string[]];
    cursor = next;
    batch.forEach((key) => found.add(key));
  } while (cursor !== "0");
  const out: RedisAuditEntry[] = [];
  for (const key of found) {
    const service = key.slice(start.length);
    const values = await client.sendCommand([
      "LRANGE",
      key,
      String(-limit),
      "-1",
    ]) as string[];
    for (const value of values) {
      const entry = parseRedisValue<AuditEntry>(value);
      if (entry !== undefined) out.push({ service, entry });
    }
  }
  return out.sort((a, b) => a.entry.at - b.entry.at).slice(-limit);
}
