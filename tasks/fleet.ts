/**
 * `deno task fleet --kv <path>`: lists the live instances of the fleets in a
 * Deno KV database from their heartbeats, as a table or `--json`. Reads only.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { listKvInstances, openKvRetrying } from "../kv.ts";
import { runTask, table, UsageError, useColour } from "./_cli.ts";

const HELP = `Usage: deno task fleet --kv <path> [options]

Lists the live instances of the fleets in a Deno KV database (fleet mode,
createKvFleet) from their heartbeats: instance, host, active credential, the
credentials it holds tokens of with their pool slots and last use, version.

Options:
  --kv <path>        the KV database: a file path or a KV Connect URL (required)
  --prefix <a/b>     the key prefix, parts separated by "/"; default dual-secret-auth
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
      prefix: { type: "string", default: "dual-secret-auth" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.kv === undefined) {
    throw new UsageError("pass the KV database with --kv <path>; see --help");
  }
  const prefix = values.prefix.split("/").filter((part) => part !== "");
  const kv = await openKvRetrying(values.kv);
  try {
    const now = Date.now();
    const entries = await listKvInstances(kv, prefix, now);
    if (values.json) {
      console.log(JSON.stringify(
        entries.map((entry) => ({ prefix: entry.prefix, ...entry.record })),
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
          `${c.label} [${c.slots.join(",")}] ${ago(c.lastUsedAt)}`
        ).join("; "),
        record.version,
        ago(record.seenAt),
      ]),
      useColour(),
    );
    console.log(lines.join("\n"));
    return 0;
  } finally {
    kv.close();
  }
}

if (import.meta.main) {
  Deno.exit(
    await runTask(
      "fleet",
      main,
      Deno.args,
      "The fleet task reads the KV database named with --kv; run it with deno task fleet, whose permission set allows reading and writing files (SQLite needs both).",
    ),
  );
}
