/**
 * `deno task fleet --kv <path>` or `--redis <url>`: lists the live instances
 * of the fleets in a Deno KV database or a Redis from their heartbeats, as a
 * table or `--json`. Reads only.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { AuditEntry } from "../fleet.ts";
import { type KvKey, openKvRetrying } from "../kv.ts";
import { listKvAudit, listKvInstances } from "../src/fleet/kv_store.ts";
import { runTask, table, UsageError, useColour } from "./_cli.ts";
import { requireExistingKvPath } from "./_fleet.ts";

const HELP = `Usage: deno task fleet --kv <path> | --redis <url> [options]

Lists the live instances of the fleets in a Deno KV database (fleet mode,
createKvFleet) or a Redis (createRedisFleet) from their heartbeats: instance,
host, active credential, the credentials it holds tokens of with their pool
slots and last use (and why the store's sealed secret of one is not loaded:
seal key mismatch, no seal key, proof failed), version.

Options:
  --kv <path>        the KV database: a file path (it must exist) or a KV Connect URL
  --redis <url>      the Redis: redis://[user:password@]host:port, rediss:// for TLS
                     (or set REDIS_URL and pass --redis env)
  --prefix <a/b>     the key prefix, KV parts separated by "/" (Redis: the
                     start of the fleets' prefixes); default dual-secret-auth
  --history          show the audit trail instead: every rotation step
                     and promotion, who, when, what, outcome (never a secret);
                     --prefix must then be the fleet's own prefix
  --limit <n>        with --history: the latest n entries (default 50)
  --json             print JSON instead of a table
  -h, --help         show this help
`;

/**
 * Runs the task.
 *
 * @param args The command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      kv: { type: "string" },
      redis: { type: "string" },
      prefix: { type: "string", default: "dual-secret-auth" },
      json: { type: "boolean", default: false },
      history: { type: "boolean", default: false },
      limit: { type: "string", default: "50" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if ((values.kv === undefined) === (values.redis === undefined)) {
    throw new UsageError(
      "pass the KV database with --kv <path> or the Redis with --redis <url>; see --help",
    );
  }
  // Reads never write: a mistyped path must not become a new, empty database.
  if (values.kv !== undefined) await requireExistingKvPath(values.kv);
  if (values.history) {
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      throw new UsageError("--limit needs a whole number, such as 50");
    }
    return printHistory(
      values.redis === undefined
        ? await kvAudit(values.kv!, values.prefix, limit)
        : await redisAudit(values.redis, values.prefix, limit),
      values.prefix,
      values.json,
    );
  }
  const prefix = values.prefix.split("/").filter((part) => part !== "");
  const now = Date.now();
  const found = values.redis === undefined
    ? await kvEntries(values.kv!, prefix, now)
    : await redisEntries(values.redis, values.prefix, now);
  const entries = found.map(({ prefix, record }) => ({
    prefix: typeof prefix === "string" ? [prefix] : prefix,
    jsonPrefix: prefix,
    record,
  }));
  if (values.json) {
    console.log(JSON.stringify(
      entries.map((entry) => ({
        prefix: entry.jsonPrefix,
        ...entry.record,
      })),
      null,
      2,
    ));
    return 0;
  }
  if (entries.length === 0) {
    console.log(`No live instances under ${JSON.stringify(prefix)}.`);
    return 0;
  }
  const ago = (at: number | undefined) =>
    at === undefined
      ? "never"
      : `${Math.max(0, Math.round((now - at) / 1000))} s ago`;
  const lines = table(
    [
      "PREFIX",
      "INSTANCE",
      "HOST",
      "ACTIVE",
      "CREDENTIALS (slots, last used)",
      "VERSION",
      "SEEN",
    ],
    entries.map(({ prefix, record }) => [
      prefix.map(String).join("/"),
      record.instanceId,
      record.host ?? "-",
      record.active,
      record.credentials.map((c) =>
        `${c.label} [${c.slots.join(",")}] ${ago(c.lastUsedAt)}${
          c.secretProblem === undefined
            ? ""
            : ` (store's secret not loaded: ${c.secretProblem.reason})`
        }`
      ).join("; "),
      record.version,
      ago(record.seenAt),
    ]),
    useColour(),
  );
  console.log(lines.join("\n"));
  return 0;
}

function printHistory(
  entries: readonly { service: string; entry: AuditEntry }[],
  prefix: string,
  json: boolean,
): number {
  if (json) {
    console.log(JSON.stringify(
      entries.map(({ service, entry }) => ({ service, ...entry })),
      null,
      2,
    ));
    return 0;
  }
  if (entries.length === 0) {
    console.log(`No audit entries under ${prefix}.`);
    return 0;
  }
  console.log(
    table(
      ["TIME", "BY", "ACTION", "OUTCOME", "LABEL", "DETAIL"],
      entries.map(({ entry }) => [
        new Date(entry.at).toISOString(),
        entry.by,
        entry.action,
        entry.outcome,
        entry.label ?? "-",
        entry.detail ?? "",
      ]),
      useColour(),
    ).join("\n"),
  );
  return 0;
}

async function kvAudit(path: string, prefix: string, limit: number) {
  const kv = await openKvRetrying(path);
  try {
    return await listKvAudit(
      kv,
      prefix.split("/").filter((part) => part !== ""),
      limit,
    );
  } finally {
    kv.close();
  }
}

async function redisAudit(url: string, prefix: string, limit: number) {
  const { connectRedis, listRedisAudit } = await import(
    "../src/fleet/redis_store.ts"
  );
  const redis = await connectRedis({
    url: url === "env" ? Deno.env.get("REDIS_URL") : url,
  });
  try {
    return await listRedisAudit(redis.client, prefix, limit);
  } finally {
    await redis.close();
  }
}

async function kvEntries(path: string, prefix: KvKey, now: number) {
  const kv = await openKvRetrying(path);
  try {
    return await listKvInstances(kv, prefix, now);
  } finally {
    kv.close();
  }
}

async function redisEntries(url: string, prefix: string, now: number) {
  // Loaded only for --redis, so --kv does not load the Redis client.
  const { connectRedis, listRedisInstances } = await import(
    "../src/fleet/redis_store.ts"
  );
  const redis = await connectRedis({
    url: url === "env" ? Deno.env.get("REDIS_URL") : url,
  });
  try {
    return await listRedisInstances(redis.client, prefix, now);
  } finally {
    await redis.close();
  }
}

if (import.meta.main) {
  Deno.exit(
    await runTask(
      "fleet",
      main,
      Deno.args,
      "The fleet task reads the KV database named with --kv or the Redis named with --redis; run it with deno task fleet, whose permission set allows reading and writing files (SQLite needs both), the network (Redis) and REDIS_URL.",
    ),
  );
}
