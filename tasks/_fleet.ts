/**
 * What the fleet variants of the operator tasks share (`rotate --kv`,
 * `promote --kv`): opening the store, the service namespace, the seal keys
 * from `DUAL_SECRET_SEAL_KEY`, who acts, and their exit codes.
 *
 * @module
 */
import { openKvRetrying } from "../kv.ts";
import { createKvFleetStore } from "../src/fleet/kv_store.ts";
import {
  importSealKeyring,
  SEAL_KEY_VARIABLE,
  type SealKeyring,
  serviceNamespace,
} from "../src/fleet/distribution.ts";
import type { FleetTarget, GateBlocker } from "../src/fleet/operator.ts";
import type { FleetStore } from "../src/fleet/store.ts";
import { type Cell, table, UsageError, useColour } from "./_cli.ts";

/** Exit code: the revoke gate is shut (live instances still use the credential); nothing was changed. */
export const EXIT_GATE_SHUT = 4;
/** Exit code: the active label was set, but some live instances did not report it in time. */
export const EXIT_STRAGGLERS = 5;

/** The exit codes the fleet variants add, for `--help` and the README. */
export const FLEET_EXIT_CODES_HELP =
  `  4    (--kv) the revoke gate is shut: live instances still use the credential;
       nothing was changed (the table names them; --force overrides)
  5    (promote --kv) the active label was set, but some live instances did not
       report it within --timeout (the table names them)`;

/** An opened fleet store with its service namespace. */
export interface OpenedFleet extends AsyncDisposable {
  /** The store and who acts. */
  readonly target: FleetTarget;
}

/**
 * Opens the fleet store named on the command line: a Deno KV database
 * (`--kv`) or a Redis (`--redis`, loaded only then).
 *
 * @param options The KV path or Redis URL (`env`: `REDIS_URL`), the key prefix (KV: parts
 * separated by `/`; Redis: as the fleet's `prefix`), the token URL and scope
 * of the service (its namespace), and who acts.
 * @returns The store; dispose it to close the connection.
 */
export async function openFleetStore(options: {
  kv?: string;
  redis?: string;
  prefix: string;
  tokenUrl: string;
  scope?: string;
  by: string;
}): Promise<OpenedFleet> {
  const service = await serviceNamespace(options.tokenUrl, options.scope);
  const target = (store: FleetStore) => ({
    store,
    service,
    by: options.by,
    now: () => Date.now(),
  });
  if (options.redis !== undefined) {
    const { createRedisFleetStore } = await import(
      "../src/fleet/redis_store.ts"
    );
    const url = options.redis === "env"
      ? Deno.env.get("REDIS_URL")
      : options.redis;
    if (url === undefined || url.trim() === "") {
      throw new UsageError(
        "--redis env: REDIS_URL is not set; export it or pass --redis redis://host:port",
      );
    }
    const store = createRedisFleetStore({
      url,
      prefix: options.prefix,
    });
    try {
      await store.connected(5_000);
    } catch (error) {
      await store.close();
      throw error;
    }
    return {
      target: target(store),
      [Symbol.asyncDispose]: () => store.close(),
    };
  }
  if (options.kv === undefined || options.kv.trim() === "") {
    throw new UsageError(
      "pass the fleet's store: --kv <path> or --redis <url>",
    );
  }
  const prefix = options.prefix.split("/").filter((part) => part !== "");
  if (prefix.length === 0) throw new UsageError("--prefix needs a key prefix");
  const kv = await openKvRetrying(options.kv);
  return {
    target: target(createKvFleetStore(kv, { prefix })),
    [Symbol.asyncDispose]() {
      kv.close();
      return Promise.resolve();
    },
  };
}

/**
 * Reads the seal keys from `DUAL_SECRET_SEAL_KEY`.
 *
 * @param required Whether a missing variable is a usage error.
 * @returns The keyring, or undefined when not set and not required.
 */
export async function sealKeysFromEnv(
  required: boolean,
): Promise<SealKeyring | undefined> {
  const text = Deno.env.get(SEAL_KEY_VARIABLE);
  if (text === undefined || text.trim() === "") {
    if (!required) return undefined;
    throw new UsageError(
      `${SEAL_KEY_VARIABLE} is not set: the new secret enters the fleet store only sealed. ` +
        `Generate a key with \`openssl rand -base64 32\`, give the same key to every instance ` +
        `(the secretSealKeys fleet option), and export it here.`,
    );
  }
  try {
    return await importSealKeyring(text);
  } catch (error) {
    throw new UsageError(
      error instanceof Error ? error.message : String(error),
    );
  }
}

/**
 * Who runs the task, for the audit trail: the host (the operator permission
 * set grants `sys: hostname`, not the user's variables).
 *
 * @returns Such as `operator@host-1`.
 */
export function operatorName(): string {
  try {
    return `operator@${Deno.hostname()}`;
  } catch {
    return "operator"; // Not granted.
  }
}

/**
 * The table of instances that keep the gate shut (or did not follow).
 *
 * @param rows The instances.
 * @param now The current time.
 * @returns The lines.
 */
export function instanceTable(
  rows: readonly (GateBlocker | {
    instanceId: string;
    host?: string;
    active: string;
    reason?: string;
  })[],
  now: number,
): string[] {
  const ago = (at: number | undefined) =>
    at === undefined
      ? "-"
      : `${Math.max(0, Math.round((now - at) / 1000))} s ago`;
  const until = (at: number | undefined) =>
    at === undefined ? "-" : `${Math.max(0, Math.round((at - now) / 1000))} s`;
  const cells: Cell[][] = rows.map((row) => [
    row.instanceId,
    row.host ?? "-",
    row.active,
    ("reason" in row && row.reason) || "-",
    ago("lastUsedAt" in row ? row.lastUsedAt : undefined),
    until("heldUntil" in row ? row.heldUntil : undefined),
  ]);
  return table(
    ["INSTANCE", "HOST", "ACTIVE", "REASON", "LAST USED", "TOKEN LEFT"],
    cells,
    useColour(),
  );
}

/** The store options that `rotate --kv|--redis` and `promote --kv|--redis` take. */
export interface FleetStoreArgs {
  /** `--kv`: the Deno KV database. */
  readonly kv?: string | undefined;
  /** `--redis`: the Redis URL. */
  readonly redis?: string | undefined;
  /** `--prefix`: the fleet's key prefix. */
  readonly prefix: string;
  /** `--scope`: the service's OAuth scope, part of its namespace. */
  readonly scope?: string | undefined;
}

/**
 * Refuses a command line that names no fleet store, or both.
 *
 * @param args The parsed store options.
 * @throws {UsageError} Unless exactly one of `--kv` and `--redis` is given.
 */
export function requireOneFleetStore(args: FleetStoreArgs): void {
  if ((args.kv === undefined) === (args.redis === undefined)) {
    throw new UsageError(
      "pass the fleet's store: --kv <path> (Deno KV) or --redis <url> (Redis)",
    );
  }
}

/**
 * Opens the fleet store an operator task names, acting as
 * {@linkcode operatorName}.
 *
 * @param args The parsed store options.
 * @param tokenUrl The service's token URL (its namespace).
 * @returns The store; dispose it to close the connection.
 */
export function openOperatorFleet(
  args: FleetStoreArgs,
  tokenUrl: string,
): Promise<OpenedFleet> {
  return openFleetStore({
    ...(args.kv === undefined ? {} : { kv: args.kv }),
    ...(args.redis === undefined ? {} : { redis: args.redis }),
    prefix: args.prefix,
    tokenUrl,
    scope: args.scope,
    by: operatorName(),
  });
}
