/**
 * Fleet mode on Deno KV: instances of one service share token grants (a pool
 * of `tokensPerCredential` per credential, one request per slot for the whole
 * fleet), the active credential, rejections and heartbeats through one Deno
 * KV database — a local file, Deno Deploy's bound KV, KV Connect to a
 * self-hosted `denokv`, or `openKv()` of `npm:@deno/kv` under Node.
 *
 * @example Two auth instances sharing one database
 * ```ts
 * import { createDualSecretAuth } from "./mod.ts";
 * import { createKvFleet } from "./kv.ts";
 * import { startGenesysEmulator } from "./testing.ts";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "blue-id", secret: "blue-secret" }],
 * });
 * const kv = await Deno.openKv(":memory:");
 * const make = (instanceId: string) =>
 *   createDualSecretAuth({
 *     credentials: [
 *       { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     ],
 *     tokenUrl: emulator.tokenUrl,
 *     shared: createKvFleet(kv, { prefix: ["my-service"], instanceId }),
 *   });
 * await using one = make("web-1");
 * await using two = make("web-2");
 * const token = await one.getAccessToken();
 * if (await two.getAccessToken() !== token) throw new Error("not shared");
 * if (emulator.stats().tokenRequests !== 1) throw new Error("two requests");
 * await one.close();
 * await two.close();
 * kv.close();
 * ```
 *
 * @module
 */
import type { Fleet } from "./src/fleet/link.ts";
import {
  createKvFleetStore,
  type KvKey,
  type KvLike,
  retryLocked,
} from "./src/fleet/kv_store.ts";
import { createFleet, type FleetOptions } from "./src/fleet/member.ts";
import { assertDeno } from "./src/runtime/deno.ts";

export {
  type KvAtomicLike,
  type KvEntryLike,
  type KvKey,
  type KvKeyPart,
  type KvLike,
} from "./src/fleet/kv_store.ts";

/** Options of {@linkcode createKvFleet}. */
export interface KvFleetOptions extends FleetOptions {
  /**
   * The key prefix of this service's records, such as
   * `["dual-secret-auth", "my-service"]`.
   */
  readonly prefix: KvKey;
  /**
   * How long a write is retried on `database is locked` (several processes
   * writing one local file), in ms.
   *
   * @default 3000
   */
  readonly lockedRetryMs?: number;
}

/**
 * A fleet on Deno KV, for the `shared` option of `createDualSecretAuth`.
 *
 * @param kv A `Deno.Kv`, or any object with the methods of {@linkcode KvLike}
 * (such as the `Kv` of `npm:@deno/kv`).
 * @param options Prefix, instance id, timing and seal key.
 * @returns The fleet; give each auth instance its own.
 * @throws {ConfigError} When an option is invalid.
 */
export function createKvFleet(kv: KvLike, options: KvFleetOptions): Fleet {
  const store = createKvFleetStore(kv, {
    prefix: options.prefix,
    lockedRetryMs: options.lockedRetryMs,
  });
  return createFleet(store, options);
}

/**
 * A database {@linkcode openKvRetrying} opens: what the fleet uses, and
 * `close`. Structural rather than `Deno.Kv`, so that the declarations need no
 * `Deno` global type under Node and Bun; a `Deno.Kv` and the `Kv` of
 * `npm:@deno/kv` both fit.
 */
export interface KvDatabase extends KvLike {
  /** Closes the database. */
  close(): void;
}

/**
 * Opens a Deno KV database, retrying while another process holds the file's
 * lock (several processes opening one new local file at once). A local file
 * it creates is made readable and writable by its owner only (0600), with
 * its SQLite journal files: it holds the fleet's tokens and control records.
 * Needs Deno; under Node, open one with `openKv` of `npm:@deno/kv` instead.
 *
 * @param path A file path, a KV Connect URL, or nothing for the default database.
 * @param maxElapsedMs The longest total wait, in ms.
 * @returns The database.
 * @throws {DenoRequiredError} On Node and Bun (code `DENO_REQUIRED`).
 * @default maxElapsedMs 5000
 */
export async function openKvRetrying(
  path?: string,
  maxElapsedMs = 5_000,
): Promise<KvDatabase> {
  assertDeno(
    "openKvRetrying",
    "On Node, open the database with openKv of npm:@deno/kv.",
  );
  const local = path !== undefined && path !== ":memory:" &&
    !/^[a-z][a-z0-9+.-]*:\/\//i.test(path);
  const created = local && !(await exists(path));
  const kv = await retryLocked<KvDatabase>(
    () => Deno.openKv(path),
    maxElapsedMs,
  );
  if (created) {
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      // Best effort: not on Windows, and the journal files may not exist yet
      // (SQLite gives them the database file's mode when it makes them).
      await Deno.chmod(file, 0o600).catch(() => undefined);
    }
  }
  return kv;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    return true; // Unknown: leave its mode alone.
  }
}

export {
  createKvFleetStore,
  type KvFleetStoreOptions,
} from "./src/fleet/kv_store.ts";

// Types named by the signatures above, shared by every fleet entry point.
export * from "./src/fleet/entry_types.ts";
