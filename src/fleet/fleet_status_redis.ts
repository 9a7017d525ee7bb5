/**
 * The status source of a fleet on Redis (kept apart so that `--kv` never
 * loads the Redis client).
 *
 * @module
 */
import type { FleetStatusSource } from "./fleet_status.ts";
import { createRedisFleetStore, type RedisClientLike } from "./redis_store.ts";
import { listRedisAudit, listRedisInstances } from "./redis_listing.ts";

/**
 * A status source over a connected Redis client.
 *
 * @param client The client (closed by the caller).
 * @param prefix The fleet's own key prefix.
 * @param name A secret-free name for the page (never the URL: it may hold a password).
 * @returns The source; its `close` closes only what it opened itself.
 */
export function redisStatusSource(
  client: RedisClientLike,
  prefix: string,
  name: string,
): FleetStatusSource {
  const store = createRedisFleetStore({ prefix, client });
  return {
    name,
    instances: (now) => listRedisInstances(client, prefix, now),
    audit: (limit) => listRedisAudit(client, prefix, limit),
    store,
    close: () => store.close(),
  };
}
