/**
 * The Redis engine of the {@linkcode FleetStore}: every atomic step is one Lua
 * script (a lease is `SET NX PX`, then a check of the lease's own `until` for
 * a lapsed or own lease; grants and the active label are compare-and-set in
 * the script), changes are announced on one pub/sub channel (a hint: members
 * poll regardless), heartbeats are keys with an expiry plus a sorted-set
 * index, and every expiry is decided from the value, the key's own TTL only
 * collecting garbage.
 *
 * All keys of one fleet share the hash tag `{prefix}` (one cluster slot), so
 * every script and multi-key command runs on one node of a Redis Cluster; the
 * engine connects to one endpoint, a Sentinel set (always to its master) or a
 * Cluster (by seed nodes).
 *
 * @module
 */
import {
  createClient,
  createCluster,
  createSentinel,
  // deno-lint-ignore no-import-prefix
} from "npm:@redis/client@^6.3.1";
import { ConfigError, DualSecretAuthError } from "../errors.ts";
import {
  RedisAuthError,
  RedisPermissionError,
  RedisUnavailableError,
} from "./redis_errors.ts";
import type {
  ActiveRecord,
  AuditEntry,
  Fence,
  FleetStore,
  GrantKey,
  InstanceRecord,
  Lease,
  LockClaim,
  RejectionRecord,
  SlotRecord,
  StoredGrant,
  Unwatch,
} from "./store.ts";
import { checkLockTtl } from "./store.ts";

/**
 * What the engine needs of a Redis client: node-redis (`npm:redis`,
 * `npm:@redis/client`, v5 or later) fits as it is.
 */
export interface RedisClientLike {
  /** Whether the client is connected and authenticated. */
  readonly isReady: boolean;
  /**
   * Sends one command.
   *
   * @param args The command and its arguments.
   * @returns The reply.
   */
  sendCommand(args: string[]): Promise<unknown>;
  /**
   * A new client with the same options, for the pub/sub connection.
   *
   * @returns The new, unconnected client.
   */
  duplicate(): RedisSubscriberLike;
}

/** What the engine needs of the pub/sub connection it makes with `duplicate()`. */
export interface RedisSubscriberLike {
  /**
   * Connects.
   *
   * @returns When connected.
   */
  connect(): Promise<unknown>;
  /**
   * Subscribes to a channel.
   *
   * @param channel The channel.
   * @param listener Called with each message.
   * @returns When subscribed.
   */
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  /**
   * Listens for connection errors (without one, an error would be thrown).
   *
   * @param event `"error"`.
   * @param listener The listener.
   * @returns The client.
   */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Closes the connection at once. */
  destroy(): void;
}

/** Where and as whom to connect to Redis. */
export interface RedisConnectionOptions {
  /**
   * The server: `redis://[user:password@]host:port[/db]`, or `rediss://` for
   * TLS. Ignored when a `client` is given.
   *
   * @default "redis://127.0.0.1:6379"
   */
  readonly url?: string;
  /** The ACL user, when not in the URL. */
  readonly username?: string;
  /** The password, when not in the URL. */
  readonly password?: string;
  /**
   * TLS settings for `rediss://` URLs: `ca`, PEM certificates to trust (a
   * private CA), instead of the runtime's default roots.
   */
  readonly tls?: { readonly ca?: string | readonly string[] };
  /**
   * How long a connection attempt may take, in ms.
   *
   * @default 2000
   */
  readonly connectTimeoutMs?: number;
}

/**
 * A Redis Sentinel set: the fleet asks the sentinels for the current master,
 * sends every command to it, and follows a failover.
 */
export interface RedisSentinelConfig {
  /** The master's name as the sentinels know it (`sentinel monitor <name> …`). */
  readonly name: string;
  /**
   * Some sentinels of the set (three is usual; one that answers is enough),
   * as `redis://[user:password@]host:port`; credentials in the first URL are
   * the sentinels' own (if they require any) and apply to every sentinel;
   * `rediss://` for TLS to the sentinels and the nodes. The nodes'
   * credentials are `username` and `password`.
   */
  readonly sentinels: readonly string[];
}

/**
 * A Redis Cluster: the fleet discovers the slots from the seed nodes and sends
 * each command to the master of the fleet's one slot.
 */
export interface RedisClusterConfig {
  /**
   * Some nodes of the cluster (three is usual; one that answers is enough), as
   * `redis://[user:password@]host:port`, `rediss://` for TLS. Credentials in
   * the first URL apply to every node unless `username` and `password` are
   * given.
   */
  readonly nodes: readonly string[];
}

/** Options of {@linkcode createRedisFleetStore}. */
export interface RedisFleetStoreOptions extends RedisConnectionOptions {
  /**
   * The key prefix of this service's records, such as
   * `dual-secret-auth:my-service`. Keys are `{prefix}:…` (one hash tag).
   */
  readonly prefix: string;
  /** An already connected client to use instead of `url`; it is not closed by the fleet. */
  readonly client?: RedisClientLike;
  /** A Sentinel set instead of `url`. */
  readonly sentinel?: RedisSentinelConfig;
  /** A Redis Cluster instead of `url`. */
  readonly cluster?: RedisClusterConfig;
}

/** A Redis {@linkcode FleetStore} that owns (or borrows) its connections. */
export interface RedisFleetStore extends FleetStore {
  /**
   * Waits until Redis answers, at most `timeoutMs`.
   *
   * @param timeoutMs How long to wait, in ms.
   * @returns When connected.
   * @throws {RedisAuthError} When the credentials are refused.
   * @throws {RedisUnavailableError} When Redis did not answer in time.
   */
  connected(timeoutMs?: number): Promise<void>;
  /** Closes the connections it opened (a given `client` stays open). */
  close(): Promise<void>;
}

/** The key TTL beyond a value's own expiry: only to collect garbage. */
const GARBAGE_GRACE_MS = 60_000;
const MAX_BACKOFF_MS = 2_000;
/** The audit trail keeps this many entries per service. */
const AUDIT_KEPT = 10_000;

// Numbers are compared in Lua but never re-encoded there: cjson would round
// 13-digit epoch milliseconds. Values go in and out as the caller's JSON.
const SCRIPTS = {
  tryLease: `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[4]) then return 1 end
local ok, current = pcall(cjson.decode, redis.call('GET', KEYS[1]) or '')
if (not ok) or type(current) ~= 'table' or tonumber(current['until']) == nil
  or current['until'] <= tonumber(ARGV[3]) or current['holder'] == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
  return 1
end
return 0`,
  writeGrant: `
local lease = redis.call('GET', KEYS[2])
if lease then
  local ok, l = pcall(cjson.decode, lease)
  if ok and type(l) == 'table' and l['holder'] == ARGV[3] then redis.call('DEL', KEYS[2]) end
end
local current = redis.call('GET', KEYS[1])
if current then
  local ok, g = pcall(cjson.decode, current)
  if ok and type(g) == 'table' and tonumber(g['expiresAt']) ~= nil
    and g['expiresAt'] > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1`,
  releaseLease: `
local lease = redis.call('GET', KEYS[1])
if lease then
  local ok, l = pcall(cjson.decode, lease)
  if ok and type(l) == 'table' and l['holder'] == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return 0`,
  dropGrant: `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, g = pcall(cjson.decode, current)
  if ok and type(g) == 'table' and g['token'] == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('PUBLISH', ARGV[2], ARGV[3])
  end
end
return 0`,
  compareAndSetActive: `
local current = redis.call('GET', KEYS[1])
local generation = 0
if current then
  local ok, a = pcall(cjson.decode, current)
  if ok and type(a) == 'table' and tonumber(a['generation']) ~= nil then generation = a['generation'] end
end
if generation ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`,
  publishRejection: `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0`,
  clearRejections: `
for _, hash in ipairs(redis.call('HKEYS', KEYS[1])) do
  if hash ~= ARGV[1] then redis.call('HDEL', KEYS[1], hash) end
end
return 0`,
  heartbeat: `
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
return 0`,
  removeInstance: `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0`,
  writeDocument: `
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0') or 0
if version ~= tonumber(ARGV[1]) then return 0 end
if KEYS[2] then
  local lock = redis.call('HMGET', KEYS[2], 'holder', 'fence')
  if lock[1] ~= ARGV[6] or lock[2] ~= ARGV[7] then return 0 end
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'value', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`,
  claimLock: `
local lock = redis.call('HMGET', KEYS[1], 'holder', 'fence', 'note', 'ttl')
if lock[1] and lock[1] ~= ARGV[1] then
  return {0, lock[1], lock[2], lock[3] or '', lock[4] or '0'}
end
local fence = lock[2]
if not lock[1] then fence = tostring(redis.call('INCR', KEYS[2])) end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'fence', fence, 'note', ARGV[3], 'ttl', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ARGV[1], fence, ARGV[3], ARGV[2]}`,
  releaseLock: `
local lock = redis.call('HMGET', KEYS[1], 'holder', 'fence')
if lock[1] == ARGV[1] and lock[2] == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 0`,
  appendAudit: `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return 0`,
} as const;

type ScriptName = keyof typeof SCRIPTS;

async function sha1(text: string): Promise<string> {
  const bytes = new Uint8Array(
    await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)),
  );
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks a Redis key prefix.
 *
 * @param prefix The prefix.
 * @returns It, unchanged.
 * @throws {ConfigError} When it is empty, too long, or holds `{`, `}` or spaces.
 */
export function checkRedisPrefix(prefix: unknown): string {
  if (
    typeof prefix !== "string" || prefix === "" || prefix.length > 200 ||
    /[{}\s]/.test(prefix)
  ) {
    throw new ConfigError(
      "fleet.prefix",
      'must be 1 to 200 characters without "{", "}" or spaces, such as "dual-secret-auth:my-service"',
    );
  }
  return prefix;
}

const DEFAULT_URL = "redis://127.0.0.1:6379";

function checkRedisUrl(url: string | undefined): string {
  if (url === undefined) return DEFAULT_URL;
  if (typeof url !== "string" || !/^rediss?:\/\/[^/]/.test(url)) {
    throw new ConfigError(
      "fleet.url",
      'must start with redis:// or rediss:// (TLS), such as "redis://127.0.0.1:6379"',
    );
  }
  return url;
}

/**
 * The keys of one fleet, all under the hash tag `{prefix}`: the engine's
 * layout, shared with the listings (`./redis_listing.ts`).
 *
 * @param prefix The fleet's key prefix.
 * @returns The key of each record.
 */
export function redisKeysOf(prefix: string): RedisKeys {
  return keysOf(prefix);
}

/** The keys of one fleet (see {@linkcode redisKeysOf}). */
export interface RedisKeys {
  /** A grant slot's key. */
  readonly grant: (key: GrantKey) => string;
  /** A slot lease's key. */
  readonly lease: (key: GrantKey) => string;
  /** A service's active record. */
  readonly active: (service: string) => string;
  /** A credential's rejections. */
  readonly rejections: (credential: string) => string;
  /** An instance's heartbeat. */
  readonly instance: (id: string) => string;
  /** The index of the fleet's instances. */
  readonly instances: string;
  /** A service's named document. */
  readonly document: (service: string, name: string) => string;
  /** A service's audit list. */
  readonly audit: (service: string) => string;
  /** A service's named lock. */
  readonly lock: (service: string, name: string) => string;
  /** A lock's last fence. */
  readonly fence: (service: string, name: string) => string;
  /** The change channel. */
  readonly channel: string;
}

function keysOf(prefix: string): RedisKeys {
  const tag = `{${prefix}}`;
  return {
    grant: (key: GrantKey) => `${tag}:grant:${key.credential}:${key.slot}`,
    lease: (key: GrantKey) => `${tag}:lease:${key.credential}:${key.slot}`,
    active: (service: string) => `${tag}:active:${service}`,
    rejections: (credential: string) => `${tag}:rejections:${credential}`,
    instance: (id: string) => `${tag}:instance:${id}`,
    instances: `${tag}:instances`,
    document: (service: string, name: string) =>
      `${tag}:document:${service}:${name}`,
    audit: (service: string) => `${tag}:audit:${service}`,
    lock: (service: string, name: string) => `${tag}:lock:${service}:${name}`,
    fence: (service: string, name: string) => `${tag}:fence:${service}:${name}`,
    channel: `${tag}:changes`,
  };
}

function classify(error: unknown, username: string, prefix: string): Error {
  if (error instanceof DualSecretAuthError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/^(WRONGPASS|NOAUTH)\b/.test(message)) {
    return new RedisAuthError(username, { cause: error });
  }
  if (/^NOPERM\b/.test(message)) {
    return new RedisPermissionError(prefix, { cause: error });
  }
  if (error instanceof Error && /^[A-Z]+ /.test(message)) return error; // A server reply.
  return new RedisUnavailableError(message, { cause: error });
}

function userOf(url: string, username?: string): string {
  if (username !== undefined) return username;
  try {
    return decodeURIComponent(new URL(url).username) || "default";
  } catch {
    return "default";
  }
}

const ttl = (untilMs: number, fromMs: number) =>
  String(Math.max(1, Math.ceil(untilMs - fromMs)) + GARBAGE_GRACE_MS);

/**
 * Reads a value as the engine stores it (JSON text); what is not ours (or
 * corrupt) reads as undefined, like an absent record.
 *
 * @typeParam T The type expected.
 * @param text A reply.
 * @returns The value, or undefined.
 */
export const parseRedisValue = <T>(text: unknown): T | undefined => {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // Not ours (or corrupt): treated as absent.
  }
};

/**
 * A {@linkcode FleetStore} on Redis (or Valkey).
 *
 * @param options Prefix and connection.
 * @returns The store; {@linkcode RedisFleetStore.close} it when done.
 * @throws {ConfigError} When the prefix or URL is invalid.
 */
export function createRedisFleetStore(
  options: RedisFleetStoreOptions,
): RedisFleetStore {
  const prefix = checkRedisPrefix(options.prefix);
  checkTopology(options);
  const url = options.client === undefined && options.sentinel === undefined &&
      options.cluster === undefined
    ? checkRedisUrl(options.url)
    : DEFAULT_URL;
  const keys = keysOf(prefix);
  const connection = openRedisConnection({ ...options, url }, prefix);
  const { client, send } = connection;
  const shas = new Map<ScriptName, string>();
  const script = async (
    name: ScriptName,
    scriptKeys: string[],
    args: string[],
  ): Promise<unknown> => {
    let sha = shas.get(name);
    if (sha === undefined) shas.set(name, sha = await sha1(SCRIPTS[name]));
    const tail = [String(scriptKeys.length), ...scriptKeys, ...args];
    try {
      return await send(["EVALSHA", sha, ...tail]);
    } catch (error) {
      // A restarted (or flushed) server forgot its scripts: send it whole.
      if (!(error instanceof Error) || !/^NOSCRIPT\b/.test(error.message)) {
        throw error;
      }
      return await send(["EVAL", SCRIPTS[name], ...tail]);
    }
  };

  let subscriber: RedisSubscriberLike | undefined;
  const listeners = new Set<(message: string) => void>();
  const subscribe = () => {
    if (subscriber !== undefined || connection.closed) return;
    subscriber = client.duplicate();
    subscriber.on("error", () => {
      // Pub/sub is a hint; the member's polling covers a lost connection.
    });
    const onMessage = (message: string) =>
      listeners.forEach((listener) => listener(message));
    subscriber.connect()
      .then(() => subscriber?.subscribe(keys.channel, onMessage))
      .catch(() => undefined);
  };

  const message = {
    slot: (key: GrantKey) => `s:${key.credential}:${key.slot}`,
    active: (service: string) => `a:${service}`,
    rejection: (credential: string) => `r:${credential}`,
  };

  return {
    async readSlots(slotKeys: readonly GrantKey[]): Promise<SlotRecord[]> {
      if (slotKeys.length === 0) return [];
      const values = await send([
        "MGET",
        ...slotKeys.map(keys.grant),
        ...slotKeys.map(keys.lease),
      ]) as unknown[];
      return slotKeys.map((_, i) => {
        const grant = parseRedisValue<StoredGrant>(values[i]);
        const lease = parseRedisValue<Lease>(values[slotKeys.length + i]);
        return {
          ...(grant === undefined ? {} : { grant }),
          ...(lease === undefined ? {} : { lease }),
        };
      });
    },
    async tryLease(key: GrantKey, lease: Lease, now: number) {
      return await script("tryLease", [keys.lease(key)], [
        JSON.stringify(lease),
        lease.holder,
        String(now),
        ttl(lease.until, now),
      ]) === 1;
    },
    async writeGrant(key: GrantKey, grant: StoredGrant, holder: string) {
      return await script("writeGrant", [keys.grant(key), keys.lease(key)], [
        JSON.stringify(grant),
        String(grant.expiresAt),
        holder,
        ttl(grant.expiresAt, grant.writtenAt),
        keys.channel,
        message.slot(key),
      ]) === 1;
    },
    async releaseLease(key: GrantKey, holder: string) {
      await script("releaseLease", [keys.lease(key)], [holder]);
    },
    async dropGrant(key: GrantKey, token: string) {
      await script("dropGrant", [keys.grant(key)], [
        token,
        keys.channel,
        message.slot(key),
      ]);
    },
    async readActive(service: string) {
      return parseRedisValue<ActiveRecord>(
        await send(["GET", keys.active(service)]),
      );
    },
    async compareAndSetActive(
      service: string,
      expected: number,
      next: ActiveRecord,
    ) {
      return await script("compareAndSetActive", [keys.active(service)], [
        String(expected),
        JSON.stringify(next),
        keys.channel,
        message.active(service),
      ]) === 1;
    },
    async publishRejection(record: RejectionRecord) {
      return await script(
        "publishRejection",
        [keys.rejections(record.credential)],
        [
          record.secretHash,
          JSON.stringify(record),
          keys.channel,
          message.rejection(record.credential),
        ],
      ) === 1;
    },
    async readRejections(credentials: readonly string[]) {
      const all = await Promise.all(
        credentials.map((credential) =>
          send(["HVALS", keys.rejections(credential)]) as Promise<unknown[]>
        ),
      );
      return all.flat().map((value) => parseRedisValue<RejectionRecord>(value))
        .filter((record): record is RejectionRecord => record !== undefined);
    },
    async clearRejections(credential: string, keep?: string) {
      await script("clearRejections", [keys.rejections(credential)], [
        keep ?? "",
      ]);
    },
    async heartbeat(record: InstanceRecord) {
      await script(
        "heartbeat",
        [keys.instance(record.instanceId), keys.instances],
        [
          record.instanceId,
          JSON.stringify(record),
          String(record.until),
          ttl(record.until, record.seenAt),
          String(record.seenAt - GARBAGE_GRACE_MS),
        ],
      );
    },
    async listInstances() {
      const ids = await send(["ZRANGE", keys.instances, "0", "-1"]) as string[];
      if (ids.length === 0) return [];
      const values = await send([
        "MGET",
        ...ids.map(keys.instance),
      ]) as unknown[];
      return values.map((value) => parseRedisValue<InstanceRecord>(value))
        .filter((record): record is InstanceRecord => record !== undefined);
    },
    async removeInstance(instanceId: string) {
      await script(
        "removeInstance",
        [keys.instance(instanceId), keys.instances],
        [instanceId],
      );
    },
    async readDocument(service: string, name: string) {
      const [version, value] = await send([
        "HMGET",
        keys.document(service, name),
        "version",
        "value",
      ]) as (string | null)[];
      if (version === null || value === null) return undefined;
      return { version: Number(version), value: JSON.parse(value) };
    },
    async writeDocument(
      service: string,
      name: string,
      expected: number,
      value: unknown,
      fence?: Fence,
    ) {
      return await script("writeDocument", [
        keys.document(service, name),
        ...(fence === undefined ? [] : [keys.lock(service, fence.lock)]),
      ], [
        String(expected),
        String(expected + 1),
        JSON.stringify(value),
        keys.channel,
        message.active(service),
        ...(fence === undefined ? [] : [fence.holder, String(fence.fence)]),
      ]) === 1;
    },
    async claimLock(service: string, name: string, claim: LockClaim) {
      checkLockTtl(claim.ttlMs);
      // The server expires the lock (PEXPIRE): no caller's clock decides.
      const [held, holder, fence, note, ttlMs] = await script("claimLock", [
        keys.lock(service, name),
        keys.fence(service, name),
      ], [claim.holder, String(claim.ttlMs), claim.note]) as unknown[];
      return {
        held: held === 1,
        holder: String(holder),
        fence: Number(fence),
        note: String(note),
        ttlMs: Number(ttlMs),
      };
    },
    async releaseLock(
      service: string,
      name: string,
      holder: string,
      fence: number,
    ) {
      await script("releaseLock", [keys.lock(service, name)], [
        holder,
        String(fence),
      ]);
    },
    async readLock(service: string, name: string) {
      const [holder, fence, note, ttlMs] = await send([
        "HMGET",
        keys.lock(service, name),
        "holder",
        "fence",
        "note",
        "ttl",
      ]) as (string | null)[];
      if (holder === null || fence === null) return undefined;
      return {
        held: false,
        holder,
        fence: Number(fence),
        note: note ?? "",
        ttlMs: Number(ttlMs ?? 0),
      };
    },
    async appendAudit(service: string, entry: AuditEntry) {
      await script("appendAudit", [keys.audit(service)], [
        JSON.stringify(entry),
        String(AUDIT_KEPT),
      ]);
    },
    async listAudit(service: string, limit: number) {
      const values = await send([
        "LRANGE",
        keys.audit(service),
        String(-limit),
        "-1",
      ]) as string[];
      return values.map((value) => parseRedisValue<AuditEntry>(value))
        .filter((entry): entry is AuditEntry => entry !== undefined);
    },
    watch(
      service: string,
      slotKeys: readonly GrantKey[],
      onChange: () => void,
    ): Unwatch {
      const wanted = new Set([
        message.active(service),
        ...slotKeys.map(message.slot),
      ]);
      const listener = (text: string) => {
        if (wanted.has(text) || text.startsWith("r:")) onChange();
      };
      listeners.add(listener);
      subscribe();
      return () => void listeners.delete(listener);
    },
    connected: (timeoutMs = 5_000) => connection.ready(timeoutMs),
    async close() {
      listeners.clear();
      subscriber?.destroy();
      subscriber = undefined;
      await connection.close();
    },
  };
}

/** What the connection needs of a client it opened itself, of any kind. */
interface OwnedRedis {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  on(event: string, listener: (value: unknown) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
}

/**
 * Sentinel and Cluster clients wrap a node's error ("Master Client (…): …");
 * the node's own reply (WRONGPASS, NOPERM) says what to do.
 */
function innermost(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5; depth++) {
    if (!(current instanceof Error) || !(current.cause instanceof Error)) break;
    if (/^[A-Z]+ /.test(current.message)) break; // Already a server reply.
    current = current.cause;
  }
  return current;
}

interface ParsedNode {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
}

function parseNodeUrl(url: unknown, option: string): ParsedNode {
  const fail = () =>
    new ConfigError(
      option,
      'must be redis://[user:password@]host:port or rediss:// (TLS), such as "redis://10.0.0.1:26379"',
    );
  if (typeof url !== "string" || !/^rediss?:\/\/[^/]/.test(url)) throw fail();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw fail();
  }
  const port = Number(parsed.port || 6379);
  if (parsed.hostname === "" || !Number.isInteger(port)) throw fail();
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    tls: parsed.protocol === "rediss:",
    ...(parsed.username === ""
      ? {}
      : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === ""
      ? {}
      : { password: decodeURIComponent(parsed.password) }),
  };
}

function parseNodeList(
  list: unknown,
  option: string,
): ParsedNode[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(
      option,
      'must list at least one node, such as ["redis://10.0.0.1:26379"]',
    );
  }
  const nodes = list.map((url, i) => parseNodeUrl(url, `${option}[${i}]`));
  if (nodes.some((node) => node.tls !== nodes[0].tls)) {
    throw new ConfigError(
      option,
      "must be all redis:// or all rediss:// (TLS is on for every node or none)",
    );
  }
  return nodes;
}

/**
 * Checks that exactly one way to reach Redis is given.
 *
 * @throws {ConfigError} When `sentinel` or `cluster` comes with another of
 *   `url`, `client`, `sentinel` and `cluster`, or is malformed.
 */
function checkTopology(options: RedisFleetStoreOptions): void {
  // `url` with `client` stays allowed (the client wins), as before.
  const given = (["url", "client", "sentinel", "cluster"] as const)
    .filter((name) => options[name] !== undefined);
  const clustered = options.sentinel !== undefined ||
    options.cluster !== undefined;
  if (clustered && given.length > 1) {
    throw new ConfigError(
      `fleet.${given[1]}`,
      `give one of url, client, sentinel or cluster, not ${
        given.join(" and ")
      }`,
    );
  }
  if (options.sentinel !== undefined) {
    const name = options.sentinel.name;
    if (typeof name !== "string" || name === "" || /\s/.test(name)) {
      throw new ConfigError(
        "fleet.sentinel.name",
        'must be the master\'s name as the sentinels know it, such as "mymaster"',
      );
    }
    parseNodeList(options.sentinel.sentinels, "fleet.sentinel.sentinels");
  }
  if (options.cluster !== undefined) {
    parseNodeList(options.cluster.nodes, "fleet.cluster.nodes");
  }
}

/**
 * Opens the client of the fleet's own: one endpoint, a Sentinel set or a
 * Cluster, all with the same per-node behaviour. Commands fail at once while
 * disconnected (no offline queue): the member then serves from its own cache
 * instead of waiting on a dead server.
 */
function openOwnedClient(
  options: Omit<RedisFleetStoreOptions, "prefix"> & { url: string },
  slotKey: string,
): { redis: OwnedRedis; client: RedisClientLike; readyEvent: string } {
  const nodeOptions = (tls: boolean) => ({
    disableOfflineQueue: true,
    pingInterval: 5_000,
    socket: {
      ...(tls
        ? {
          tls: true as const,
          ...(options.tls?.ca === undefined
            ? {}
            : { ca: [options.tls.ca].flat() as string[] }),
        }
        : {}),
      connectTimeout: options.connectTimeoutMs ?? 2_000,
      reconnectStrategy: (retries: number) =>
        Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(retries, 6)) *
        (0.5 + Math.random() / 2),
    },
  });
  const credentials = (username?: string, password?: string) => ({
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  });
  if (options.sentinel !== undefined) {
    const sentinels = parseNodeList(
      options.sentinel.sentinels,
      "fleet.sentinel.sentinels",
    );
    const sentinel = createSentinel({
      name: options.sentinel.name,
      sentinelRootNodes: sentinels.map(({ host, port }) => ({ host, port })),
      nodeClientOptions: {
        ...nodeOptions(sentinels[0].tls),
        ...credentials(options.username, options.password),
      } as never,
      sentinelClientOptions: {
        ...nodeOptions(sentinels[0].tls),
        ...credentials(sentinels[0].username, sentinels[0].password),
      } as never,
      // Node errors reach the "error" listener, for WRONGPASS and the like.
      passthroughClientErrorEvents: true,
    });
    return {
      redis: sentinel as unknown as OwnedRedis,
      readyEvent: "ready",
      client: {
        get isReady() {
          return sentinel.isReady;
        },
        // Never a replica: a lagging one would undo compare-and-set.
        sendCommand: (args) => sentinel.sendCommand(false, args),
        duplicate: () => sentinel.duplicate() as unknown as RedisSubscriberLike,
      },
    };
  }
  if (options.cluster !== undefined) {
    const nodes = parseNodeList(options.cluster.nodes, "fleet.cluster.nodes");
    const cluster = createCluster({
      rootNodes: options.cluster.nodes.map((url) => ({ url })),
      defaults: {
        ...nodeOptions(nodes[0].tls),
        ...credentials(
          options.username ?? nodes[0].username,
          options.password ?? nodes[0].password,
        ),
      } as never,
      // A master that stops answering is probably being replaced: ask the
      // cluster for the new slot owner after 1 s instead of the default 5 s.
      topologyRefreshOnReconnectionAttemptStrategy: 1_000,
    });
    return {
      redis: cluster as unknown as OwnedRedis,
      readyEvent: "connect",
      client: {
        get isReady() {
          return cluster.isReady;
        },
        // Every key of the fleet is in the slot of `{prefix}`: routing each
        // command (keyless ones too, such as TIME) by it keeps the whole
        // fleet on that slot's master, whatever the command.
        sendCommand: (args) => cluster.sendCommand(slotKey, false, args),
        duplicate: () =>
          // Pub/sub needs one node, not a connection to every master.
          cluster.duplicate({
            minimizeConnections: true,
          }) as unknown as RedisSubscriberLike,
      },
    };
  }
  const single = createClient({
    url: options.url,
    ...credentials(options.username, options.password),
    ...nodeOptions(options.url.startsWith("rediss:")),
  });
  return {
    redis: single as unknown as OwnedRedis,
    readyEvent: "ready",
    client: single as unknown as RedisClientLike,
  };
}

/** One Redis connection as the fleet uses it: fail-fast commands, typed errors. */
interface RedisConnection {
  /** The client. */
  readonly client: RedisClientLike;
  /** Whether {@linkcode RedisConnection.close} was called. */
  readonly closed: boolean;
  /** Waits until ready, at most `timeoutMs`; rejects with a typed error. */
  ready(timeoutMs: number): Promise<void>;
  /** Sends one command; rejects at once, typed, while not connected. */
  send(args: string[]): Promise<unknown>;
  /** Closes the client if it was opened here. */
  close(): Promise<void>;
}

function openRedisConnection(
  options: Omit<RedisFleetStoreOptions, "prefix"> & { url: string },
  prefix: string,
): RedisConnection {
  const username = userOf(
    options.cluster?.nodes[0] ?? options.url,
    options.username,
  );
  const owned = options.client === undefined
    ? openOwnedClient(options, `{${prefix}}`)
    : undefined;
  const ownedClient = owned?.redis;
  const client = options.client ?? owned!.client;
  let lastError: Error | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  const stateWaiters = new Set<() => void>();
  const wake = () => stateWaiters.forEach((fn) => fn());
  // A reply on the connection itself (a Sentinel set that knows no such
  // master) means Redis is unusable, not that one command failed.
  const connectionError = (error: unknown): Error => {
    const classified = classify(innermost(error), username, prefix);
    return classified instanceof DualSecretAuthError
      ? classified
      : new RedisUnavailableError(classified.message, { cause: error });
  };
  ownedClient?.on("error", (error: unknown) => {
    lastError = connectionError(error);
    wake();
  });
  ownedClient?.on(owned!.readyEvent, () => {
    lastError = undefined;
    wake();
  });

  /** Connects once (owned client); later reconnects are the client's own. */
  const start = () => {
    if (ownedClient === undefined || connecting !== undefined) return;
    connecting = ownedClient.connect().then(
      () => undefined,
      (error: unknown) => {
        lastError = connectionError(error);
        wake();
      },
    );
  };

  const ready = async (timeoutMs: number): Promise<void> => {
    start();
    const end = Date.now() + timeoutMs;
    while (!client.isReady) {
      if (closed) throw new RedisUnavailableError("the fleet was closed");
      if (lastError instanceof RedisAuthError) throw lastError;
      const left = end - Date.now();
      if (left <= 0) {
        throw lastError ?? new RedisUnavailableError("still connecting");
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      let waiter: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        waiter = resolve;
        stateWaiters.add(resolve);
        timer = setTimeout(resolve, Math.min(left, 50));
      });
      clearTimeout(timer);
      stateWaiters.delete(waiter!);
    }
  };

  return {
    client,
    get closed() {
      return closed;
    },
    ready,
    async send(args) {
      if (closed) throw new RedisUnavailableError("the fleet was closed");
      // A first call waits for the first connection; afterwards a
      // disconnected client fails fast with why it is disconnected.
      await ready(
        connecting === undefined || lastError === undefined ? 2_000 : 0,
      );
      try {
        return await client.sendCommand(args);
      } catch (error) {
        throw classify(error, username, prefix);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (ownedClient !== undefined) {
        if (ownedClient.isReady) {
          await ownedClient.close().catch(() => ownedClient.destroy());
        } else if (ownedClient.isOpen) {
          // A Sentinel client's destroy() is async: wait for its sockets.
          await ownedClient.destroy();
        }
        await connecting;
      }
      wake();
    },
  };
}

/**
 * Connects to Redis for a one-off read (such as `deno task fleet --redis`).
 *
 * @param options The server and credentials.
 * @param timeoutMs How long to wait for the connection, in ms.
 * @returns A ready client and a function that closes it.
 * @throws {RedisAuthError} When Redis refuses the user or password.
 * @throws {RedisUnavailableError} When Redis did not answer in time.
 * @default timeoutMs 5000
 */
export async function connectRedis(
  options: RedisConnectionOptions,
  timeoutMs = 5_000,
): Promise<{ client: RedisClientLike; close(): Promise<void> }> {
  const url = checkRedisUrl(options.url);
  const connection = openRedisConnection({ ...options, url }, "");
  try {
    await connection.ready(timeoutMs);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return { client: connection.client, close: () => connection.close() };
}
