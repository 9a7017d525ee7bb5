/**
 * Fleet mode on Redis (or Valkey): instances of one service — containers
 * behind a load balancer, Node, Bun and Deno processes alike — share token
 * grants (a pool of `tokensPerCredential` per credential, one request per
 * slot for the whole fleet), the active credential, rejections and heartbeats
 * through one Redis. The same fleet contract as `./kv`, on a second engine.
 *
 * The client is node-redis (`npm:@redis/client`); give `url` (with
 * `rediss://` for TLS and `user:password@` for an ACL user), a Sentinel set
 * (`sentinel`: the master's name and some sentinels), a Redis Cluster
 * (`cluster`: some seed nodes), or an already connected node-redis `client`.
 * Every key of a fleet shares one hash tag, so on a Cluster the fleet lives
 * in one slot: its scripts and multi-key reads run on one master.
 *
 * @example Two auth instances sharing one Redis
 * ```ts ignore
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { createRedisFleet } from "@rotating/dual-secret-auth/redis";
 *
 * await using auth = createDualSecretAuth({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   environment: "mypurecloud.com",
 *   tokensPerCredential: 4,
 *   shared: createRedisFleet({
 *     url: "redis://fleet-user:password@127.0.0.1:6379",
 *     prefix: "dual-secret-auth:my-service",
 *     instanceId: "web-1",
 *   }),
 * });
 * await auth.getAccessToken();
 * ```
 *
 * @module
 */
import type { Fleet } from "./src/fleet/link.ts";
import { createFleet, type FleetOptions } from "./src/fleet/member.ts";
import {
  createRedisFleetStore,
  type RedisClientLike,
  type RedisClusterConfig,
  type RedisSentinelConfig,
} from "./src/fleet/redis_store.ts";

export {
  createRedisFleetStore,
  type RedisClientLike,
  type RedisClusterConfig,
  type RedisConnectionOptions,
  type RedisFleetStore,
  type RedisFleetStoreOptions,
  type RedisSentinelConfig,
  type RedisSubscriberLike,
} from "./src/fleet/redis_store.ts";
export {
  RedisAuthError,
  RedisErrorCode,
  RedisPermissionError,
  RedisUnavailableError,
} from "./src/fleet/redis_errors.ts";

/** Options of {@linkcode createRedisFleet}. */
export interface RedisFleetOptions extends FleetOptions {
  /**
   * The key prefix of this service's records, such as
   * `dual-secret-auth:my-service`. Keys are `{prefix}:…` (one hash tag: one
   * cluster slot).
   */
  readonly prefix: string;
  /**
   * The server: `redis://[user:password@]host:port[/db]`, or `rediss://` for
   * TLS. Ignored when `client` is given.
   *
   * @default "redis://127.0.0.1:6379"
   */
  readonly url?: string;
  /**
   * An already connected node-redis client (v5 or later) to use instead of
   * `url`. The fleet opens one more connection with `client.duplicate()` for
   * pub/sub, and closes only that one.
   */
  readonly client?: RedisClientLike;
  /**
   * A Sentinel set instead of `url`: the fleet sends every command to the
   * master the sentinels name and follows a failover. `username` and
   * `password` are the nodes' credentials; the sentinels' own (if any) go
   * in the first sentinel's URL.
   */
  readonly sentinel?: RedisSentinelConfig;
  /**
   * A Redis Cluster instead of `url`: the fleet discovers the slots from
   * these seed nodes and follows a master's replacement.
   */
  readonly cluster?: RedisClusterConfig;
  /** The ACL user, when not in the URL. */
  readonly username?: string;
  /** The password, when not in the URL. */
  readonly password?: string;
  /**
   * TLS settings for `rediss://` URLs: `ca`, PEM certificates to trust (a
   * private CA), instead of the runtime's default roots.
   */
  readonly tls?: { readonly ca?: string | readonly string[] };
}

/** A fleet on Redis: a {@linkcode Fleet} that can also say whether Redis answers. */
export interface RedisFleet extends Fleet {
  /**
   * Waits until Redis answers (for a readiness probe, or to fail a deploy on
   * wrong credentials). The fleet works without it: until Redis answers, each
   * instance serves on its own.
   *
   * @param timeoutMs How long to wait, in ms.
   * @returns When connected.
   * @throws {RedisAuthError} When Redis refuses the user or password.
   * @throws {RedisUnavailableError} When Redis did not answer in time.
   * @default timeoutMs 5000
   */
  connected(timeoutMs?: number): Promise<void>;
}

/**
 * A fleet on Redis, for the `shared` option of `createDualSecretAuth`. Connects
 * on first use; closing the auth instance closes the connections it opened.
 *
 * @param options Server (one endpoint, a Sentinel set or a Cluster), prefix,
 *   instance id, timing and seal key.
 * @returns The fleet; give each auth instance its own.
 * @throws {ConfigError} When an option is invalid, or `sentinel` or
 *   `cluster` comes with another way to reach Redis.
 *
 * @example A Sentinel set, or a Cluster
 * ```ts ignore
 * import { createRedisFleet } from "@rotating/dual-secret-auth/redis";
 * const replicated = createRedisFleet({
 *   sentinel: {
 *     name: "mymaster",
 *     sentinels: ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
 *   },
 *   username: "fleet-user",
 *   password: "password",
 *   prefix: "dual-secret-auth:my-service",
 * });
 * const sharded = createRedisFleet({
 *   cluster: { nodes: ["redis://fleet-user:password@10.0.0.1:7000", "redis://10.0.0.2:7000"] },
 *   prefix: "dual-secret-auth:my-service",
 * });
 * ```
 *
 * @example Fail a readiness probe on a wrong password
 * ```ts ignore
 * import { createRedisFleet, RedisErrorCode } from "@rotating/dual-secret-auth/redis";
 * const fleet = createRedisFleet({ url: Deno.env.get("REDIS_URL"), prefix: "my-service" });
 * try {
 *   await fleet.connected();
 * } catch (error) {
 *   if ((error as { code?: string }).code === RedisErrorCode.REDIS_AUTH_FAILED) Deno.exit(1);
 * }
 * ```
 */
export function createRedisFleet(options: RedisFleetOptions): RedisFleet {
  const store = createRedisFleetStore({
    prefix: options.prefix,
    url: options.url,
    client: options.client,
    sentinel: options.sentinel,
    cluster: options.cluster,
    username: options.username,
    password: options.password,
    tls: options.tls,
  });
  const fleet = createFleet(store, options, () => store.close());
  return Object.freeze({
    ...fleet,
    connected: (timeoutMs?: number) => store.connected(timeoutMs),
  });
}

// Types named by the signatures above, shared by every fleet entry point.
export * from "./src/fleet/entry_types.ts";
export type { DualSecretAuthError } from "./src/errors.ts";
