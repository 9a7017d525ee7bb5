/**
 * What the fleet variants of the operator tasks share (`rotate --kv`,
 * `promote --kv`): opening the store, the service namespace, the seal keys
 * from `DUAL_SECRET_SEAL_KEY`, who acts, and their exit codes.
 *
 * @module
 */
import { openKvRetrying } from "../kv.ts";
import { lockPathOf } from "../src/rotation/lock.ts";
import { resolveWriteTarget } from "../src/rotation/env_file.ts";
import { createKvFleetStore } from "../src/fleet/kv_store.ts";
import { listKvInstances } from "../src/fleet/kv_listing.ts";
import {
  importSealKeyring,
  SEAL_KEY_VARIABLE,
  type SealKeyring,
  serviceNamespace,
} from "../src/fleet/distribution.ts";
import type {
  GateBlocker,
  GateReport,
  PresenceExpectation,
  SeenInstance,
} from "../src/fleet/operator.ts";
import {
  createStoreTarget,
  type StoreTarget,
} from "../src/fleet/store_target.ts";
import type { InstanceRecord } from "../src/fleet/store.ts";
import {
  fleetPresenceRefusal,
  type FleetWords,
  type PresenceRefusal,
} from "../src/fleet/store_flows.ts";
import type { FleetStore } from "../src/fleet/store.ts";
import type { RedisClientLike } from "../src/fleet/redis_store.ts";
import {
  type Cell,
  networkProblem,
  OperatorError,
  redisUrlOption,
  table,
  UsageError,
  useColour,
} from "./_cli.ts";

/**
 * Exit code: the fleet is not ready for the change (the revoke gate is shut,
 * no live instance was seen, or live instances have not proved the target's
 * secret); nothing was changed.
 */
export const EXIT_GATE_SHUT = 4;
/** Exit code: the active label was set, but some live instances did not report it in time. */
export const EXIT_STRAGGLERS = 5;

/** The exit codes the fleet variants add, for `--help` and the README. */
export const FLEET_EXIT_CODES_HELP =
  `  4    (--kv|--redis) the fleet is not ready; nothing was changed: rotate's revoke
       gate is shut (live instances still use the credential, or do not sign
       with your DUAL_SECRET_SEAL_KEY; --force overrides),
       no live instance reports in the namespace (--allow-empty or
       --expect-instances N proceeds), or (promote) live instances have not
       proved the target's secret (the table names them and why) or its
       secret was retired; (rotate --promote, two secrets on one client)
       after the switch, the old secret was kept because live instances
       still hold or use it (the same command later only revokes it)
  5    (promote --kv|--redis) the active label was set, but some live instances
       did not report it within --timeout (the table names them)`;

/** An opened fleet store with its service namespace. */
export interface OpenedFleet extends AsyncDisposable {
  /** The store as a rotation target, and who acts. */
  readonly target: StoreTarget;
  /**
   * The live instances of the store's other namespaces (other prefixes).
   * Reads only.
   *
   * @param now The current time.
   * @returns Them, with the prefix each reports under.
   */
  elsewhere(now: number): Promise<SeenInstance[]>;
}

/**
 * Refuses a Deno KV file path that does not exist: opening it would create
 * an empty database, and a command that then sees no fleet could act on
 * defaults. KV Connect URLs are left to the server.
 *
 * @param path The `--kv` value.
 * @throws {UsageError} When the file does not exist or is not a file.
 */
export async function requireExistingKvPath(path: string): Promise<void> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || path === ":memory:") return;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new UsageError(
      `The Deno KV database "${path}" does not exist; nothing was created or changed. ` +
        `Check the path: it must be the file the fleet's instances open (createKvFleet).`,
    );
  }
  if (!info.isFile) {
    throw new UsageError(
      `"${path}" is not a Deno KV database file; nothing was changed. Check the path.`,
    );
  }
}

/**
 * An unreachable Redis in an operator's words: which setting to check, named
 * as the operator gave it (`--redis`, or `REDIS_URL` behind `--redis env`),
 * never the URL (it may hold a password). The library's own words are for an
 * instance, which serves from its cache meanwhile; a command stops.
 *
 * @param error What connecting threw.
 * @param given `--redis` as given: `env` or a URL.
 * @returns The error to throw: `FLEET_STORE_UNREACHABLE`, or `error` itself
 *   when it is not an unreachable Redis.
 */
export async function redisUnreachable(
  error: unknown,
  given: string,
): Promise<unknown> {
  const { RedisUnavailableError } = await import(
    "../src/fleet/redis_errors.ts"
  );
  if (!(error instanceof RedisUnavailableError)) return error;
  const name = given === "env" ? "REDIS_URL" : "--redis";
  const where = given === "env" ? "REDIS_URL (read by --redis env)" : name;
  return new OperatorError(
    "FLEET_STORE_UNREACHABLE",
    `The Redis named with ${where} did not answer (${
      networkProblem(error) ?? "no connection"
    }); nothing was changed. Check the host, the port and TLS (rediss://) in ${name}: it must be the Redis the fleet's instances use.`,
    { cause: error },
  );
}

/**
 * Connects to the Redis an operator's command reads (`deno task fleet`,
 * `status`), wording a failure with {@linkcode redisUnreachable}.
 *
 * @param url The URL, `--redis env` resolved.
 * @param given `--redis` as given, for the message.
 * @returns The connection.
 */
export async function connectOperatorRedis(
  url: string,
  given: string,
): Promise<{ client: RedisClientLike; close(): Promise<void> }> {
  const { connectRedis } = await import("../src/fleet/redis_store.ts");
  try {
    return await connectRedis({ url });
  } catch (error) {
    throw await redisUnreachable(error, given);
  }
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
  lockProof?: string;
}): Promise<OpenedFleet> {
  const service = await serviceNamespace(options.tokenUrl, options.scope);
  // With the seal key, what this task reads is authenticated and what it
  // writes is signed: instances ignore control records without a valid MAC.
  const ring = await sealKeysFromEnv(false);
  const warned = new Set<string>();
  const target = (store: FleetStore) =>
    createStoreTarget({
      store,
      service,
      by: options.by,
      ...(ring === undefined ? {} : { ring }),
      ...(options.lockProof === undefined
        ? {}
        : { lockProof: options.lockProof }),
      onRejected(kind, where, why) {
        if (warned.has(kind)) return;
        warned.add(kind);
        console.error(
          kind === "heartbeat"
            ? `Warning: a heartbeat in the fleet store (${where}) has no valid MAC: ${why}. It still counts for the revoke gate and the waits (the cautious side). Give every instance ${SEAL_KEY_VARIABLE}, or check who writes to the store.`
            : `Warning: a ${kind} record in the fleet store (${where}) is ignored: ${why}. It was written without ${SEAL_KEY_VARIABLE} or with another key; check who writes to the store.`,
        );
      },
    });
  if (options.redis !== undefined) {
    const { createRedisFleetStore } = await import(
      "../src/fleet/redis_store.ts"
    );
    const url = redisUrlOption(options.redis);
    const store = createRedisFleetStore({
      url,
      prefix: options.prefix,
    });
    try {
      await store.connected(5_000);
    } catch (error) {
      await store.close();
      throw await redisUnreachable(error, options.redis);
    }
    return {
      target: target(store),
      async elsewhere(now) {
        const { listRedisInstances } = await import(
          "../src/fleet/redis_listing.ts"
        );
        const redis = await connectOperatorRedis(url, options.redis!);
        try {
          return (await listRedisInstances(redis.client, "", now))
            .filter((entry) => entry.prefix !== options.prefix)
            .map((entry) => seen(entry.prefix, entry.record));
        } finally {
          await redis.close();
        }
      },
      [Symbol.asyncDispose]: () => store.close(),
    };
  }
  if (options.kv === undefined || options.kv.trim() === "") {
    throw new UsageError(
      "pass the fleet's store: --kv <path>, or --redis env (reading REDIS_URL)",
    );
  }
  const prefix = options.prefix.split("/").filter((part) => part !== "");
  if (prefix.length === 0) throw new UsageError("--prefix needs a key prefix");
  await requireExistingKvPath(options.kv);
  const kv = await openKvRetrying(options.kv);
  return {
    target: target(createKvFleetStore(kv, { prefix })),
    async elsewhere(now) {
      const own = JSON.stringify(prefix);
      return (await listKvInstances(kv, [], now))
        .filter((entry) => JSON.stringify(entry.prefix) !== own)
        .map((entry) => seen(entry.prefix.map(String).join("/"), entry.record));
    },
    [Symbol.asyncDispose]() {
      kv.close();
      return Promise.resolve();
    },
  };
}

function seen(
  namespace: string,
  record: { instanceId: string; host?: string; active: string },
): SeenInstance {
  return {
    namespace,
    instanceId: record.instanceId,
    ...(record.host === undefined ? {} : { host: record.host }),
    active: record.active,
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
    ("problem" in row && row.problem ? `seal key: ${row.problem}` : "") ||
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
  /**
   * `--env-file`: the commands that change the fleet hold its OS lock while
   * they hold the store's rotation lock, so a re-run after a crash (which
   * gets that OS lock, freed by the death) takes the dead run's store lock
   * over at once.
   */
  readonly "env-file"?: string | undefined;
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
      "pass the fleet's store: --kv <path> (Deno KV), or --redis env (Redis, reading REDIS_URL)",
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
export async function openOperatorFleet(
  args: FleetStoreArgs,
  tokenUrl: string,
): Promise<OpenedFleet> {
  const envFile = args["env-file"];
  return await openFleetStore({
    ...(args.kv === undefined ? {} : { kv: args.kv }),
    ...(args.redis === undefined ? {} : { redis: args.redis }),
    prefix: args.prefix,
    tokenUrl,
    scope: args.scope,
    by: operatorName(),
    ...(envFile === undefined
      ? {}
      : { lockProof: await envLockProof(envFile) }),
  });
}

/**
 * The OS lock an operator command holds while it holds the store's rotation
 * lock: the env file's (`lockUnchanged`), named by host and lock file.
 */
async function envLockProof(envFile: string): Promise<string> {
  const path = lockPathOf(
    await resolveWriteTarget(envFile).catch(() => envFile),
  );
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch {
    // Not granted: every run on this host says the same.
  }
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  return `${host}:${absolute}`;
}

/** The `--expect-instances` and `--allow-empty` options, parsed. */
export function presenceExpectation(values: {
  readonly "expect-instances"?: string | undefined;
  readonly "allow-empty"?: boolean | undefined;
}): PresenceExpectation {
  const text = values["expect-instances"];
  let expectInstances: number | undefined;
  if (text !== undefined) {
    expectInstances = Number(text);
    if (
      text.trim() === "" || !Number.isSafeInteger(expectInstances) ||
      expectInstances < 0
    ) {
      throw new UsageError(
        "--expect-instances needs a whole number of instances, such as 6 (0: none)",
      );
    }
  }
  return {
    ...(expectInstances === undefined ? {} : { expectInstances }),
    allowEmpty: values["allow-empty"] === true,
  };
}

/**
 * Refuses to change a fleet whose namespace shows no live instance (or
 * fewer than `--expect-instances`), unless told to proceed (the words are
 * `fleetPresenceRefusal`'s). Reads only.
 *
 * @param fleet The opened store.
 * @param live The live heartbeats of the namespace.
 * @param expectation The operator's flags.
 * @param verb What the command would do, such as `regenerate "green"`.
 * @returns The refusal, or undefined to proceed.
 */
export async function checkFleetPresence(
  fleet: OpenedFleet,
  live: readonly InstanceRecord[],
  expectation: PresenceExpectation,
  verb: string,
): Promise<PresenceRefusal | undefined> {
  return await fleetPresenceRefusal(fleet.target, live, expectation, verb, {
    elsewhere: (now) => fleet.elsewhere(now),
    table: elsewhereTable,
  });
}

/** The live instances of other namespaces, as a table for people. */
function elsewhereTable(rows: readonly SeenInstance[]): string[] {
  return rows.length === 0 ? [] : table(
    ["PREFIX", "INSTANCE", "HOST", "ACTIVE"],
    rows.map((e) => [e.namespace, e.instanceId, e.host ?? "-", e.active]),
    useColour(),
  );
}

/**
 * How the fleet flows' refusals read in a task: the store options of its
 * next steps, the env file, and the instance tables.
 *
 * @param storeArgs The store options ({@linkcode fleetStoreArgs}).
 * @param envFile The env file, as given.
 * @returns The words.
 */
export function fleetWords(storeArgs: string, envFile: string): FleetWords {
  return { storeArgs, envFile, instanceTable, elsewhereTable };
}

/**
 * The store options as a next step repeats them. A Redis URL is never
 * repeated (it may hold a password): the step says `--redis env`, which reads
 * REDIS_URL.
 *
 * @param args The parsed store options.
 * @returns Such as `--kv fleet.db --prefix svc`.
 */
export function fleetStoreArgs(args: FleetStoreArgs): string {
  return [
    args.kv === undefined ? "--redis env" : `--kv ${args.kv}`,
    ...(args.prefix === "dual-secret-auth" ? [] : [`--prefix ${args.prefix}`]),
    ...(args.scope === undefined ? [] : [`--scope ${args.scope}`]),
  ].join(" ");
}

/**
 * What a shut revoke gate means and what to do, for people.
 *
 * @param gate The gate's report (shut).
 * @param standby The label that was to be regenerated.
 * @param storeArgs The store options, for the next step.
 * @returns The lines before the table and the next step after it.
 */
export function gateShutWords(
  gate: GateReport,
  standby: string,
  storeArgs: string,
): { head: string; next: string } {
  const keys = gate.blockers.filter((b) => b.reason === "seal-key");
  const users = gate.blockers.length - keys.length;
  const parts = [
    ...(users > 0
      ? [`${users} of ${gate.instances} live instances still use "${standby}"`]
      : []),
    ...(keys.length > 0
      ? [
        `${keys.length} of ${gate.instances} live instances do not sign with your ${SEAL_KEY_VARIABLE} (another key, or none), so they could not open the new secret of "${standby}" and would keep its old, dead one`,
      ]
      : []),
  ];
  const steps = [
    ...(keys.length > 0
      ? [
        `give those instances the ${SEAL_KEY_VARIABLE} you rotate with (or export theirs here, if yours is the wrong one)`,
      ]
      : []),
    ...(users > 0
      ? [
        `promote the other label (deno task promote ${storeArgs}) and wait for the instances to drain`,
      ]
      : []),
  ];
  return {
    head: `The revoke gate is shut: ${parts.join("; ")}.`,
    next: `Next: ${steps.join("; ")}; or pass --force to regenerate anyway.`,
  };
}
