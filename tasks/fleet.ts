/**
 * `deno task fleet --kv <path>` or `--redis <url>`: lists the live instances
 * of the fleets in a Deno KV database or a Redis from their heartbeats, as a
 * table or `--json`; `--serve` serves the fleet's status page and
 * `--alert-webhook` sends alerts when a rotation stalls (both built in
 * src/fleet). Reads only.
 *
 * @module
 */
import {
  type FleetStatusSource,
  kvStatusSource,
  readFleetStatus,
} from "../src/fleet/fleet_status.ts";
import { serveFleetStatus } from "../src/fleet/status_page.ts";
import { type AlertBounds, createAlertNotifier } from "../src/fleet/alerts.ts";
import { parsePeriod } from "../src/fleet/schedule.ts";
import type { AuditEntry } from "../fleet.ts";
import { type KvKey, openKvRetrying } from "../kv.ts";
import { listKvAudit, listKvInstances } from "../src/fleet/kv_listing.ts";
import {
  COMMON_OPTIONS,
  envFileOption,
  overrideNotice,
  parseSeconds,
  parseTaskArgs,
  readOnlyOptions,
  readRotationVariables,
  redisUrlOption,
  runTask,
  table,
  type TaskOptions,
  typedCommand,
  UsageError,
  useColour,
} from "./_cli.ts";
import { connectOperatorRedis, requireExistingKvPath } from "./_fleet.ts";

/** The options the fleet parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  ...readOnlyOptions("fleet"),
  kv: { type: "string" },
  redis: { type: "string" },
  prefix: { type: "string", default: "dual-secret-auth" },
  "env-file": { type: "string" },
  json: { type: "boolean", default: false },
  history: { type: "boolean", default: false },
  limit: { type: "string", default: "50" },
  serve: { type: "boolean", default: false },
  port: { type: "string", default: "8787" },
  host: { type: "string", default: "127.0.0.1" },
  token: { type: "string" },
  refresh: { type: "string", default: "2" },
  "alert-webhook": { type: "string" },
  "alert-step": { type: "string", default: "30m" },
  "alert-stragglers": { type: "string", default: "10m" },
  "alert-gate": { type: "string", default: "1h" },
  "max-age": { type: "string" },
} as const satisfies TaskOptions;

const HELP = `Usage: deno task fleet --kv <path> | --redis <url|env> [options]

Lists the live instances of the fleets in a Deno KV database (fleet mode,
createKvFleet) or a Redis (createRedisFleet) from their heartbeats: instance,
host, active credential, the credentials it holds tokens of with their pool
slots and last use (and why the store's sealed secret of one is not loaded:
seal key mismatch, no seal key, proof failed), the secret it holds of each
(its generation in the store and the sealed record's fingerprint), version.

Options:
  --kv <path>        the KV database: a file path (it must exist) or a KV Connect URL
  --redis <url|env>  the Redis; env reads REDIS_URL, which keeps a password off
                     the command line (else redis://host:port, rediss:// for TLS)
  --prefix <a/b>     the key prefix, KV parts separated by "/" (Redis: the
                     start of the fleets' prefixes); default dual-secret-auth
  --env-file <path>  an env file where --redis env and --token env find
                     REDIS_URL and FLEET_STATUS_TOKEN when the shell does not
                     set them (the shell wins, with a notice, as in every
                     command); default: the shell only
  --history          show the audit trail instead: every rotation step
                     and promotion, who, when, what, outcome (never a secret);
                     --prefix must then be the fleet's own prefix
  --limit <n>        with --history: the latest n entries (default 50)
  --json             print JSON instead of a table
  --serve            serve a status page that refreshes by itself (instances,
                     active label and its history, rotation in progress, gate
                     and drain, schedule, secrets' age, audit timeline; never
                     a secret or token); --prefix must be the fleet's own.
                     Runs until Ctrl-C
  --port <n>         with --serve: the port (default 8787; 0 picks a free one)
  --host <addr>      with --serve: the address (default 127.0.0.1); anything
                     but loopback needs --token
  --token <t|env>    with --serve: the viewer opens the page once with
                     ?token=<t>; env reads FLEET_STATUS_TOKEN
  --refresh <s>      with --serve or --alert-webhook: how often the store is
                     read (default 2)
  --alert-webhook <url>
                     watch the fleet (with or without --serve) and POST a JSON
                     alert, once per condition, when a step is older than
                     --alert-step, a promotion leaves stragglers past
                     --alert-stragglers, the revoke gate stays shut past
                     --alert-gate (naming the instances that hold it and when
                     their tokens expire), or a distributed secret is older
                     than --max-age. Payloads carry no secret. Each alert is
                     also an OpenTelemetry span (dual_secret_auth.fleet.alert;
                     exported with OTEL_DENO=true). The fleet
                     permission set reaches loopback only: for another host
                     add --allow-net=<host> (deno run -P=fleet ...)
  --alert-step <period>       default 30m (periods: 30d, 12h, 15m, 5s, 500ms)
  --alert-stragglers <period> default 10m
  --alert-gate <period>       default 1h
  --max-age <period>          default: no age alert
  -h, --help         show this help
  -V, --version      show the version

Exit codes:
  0    listed (or, with --serve, stopped with Ctrl-C or SIGTERM)
  1    the store could not be read (the message says why)
  2    bad option, or the store does not exist; nothing was read
`;

/**
 * Runs the task.
 *
 * @param args The command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const values = parseTaskArgs("deno task fleet", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  if ((values.kv === undefined) === (values.redis === undefined)) {
    throw new UsageError(
      `pass the KV database with --kv <path>, or the Redis with --redis env (reading REDIS_URL) or --redis <url>. Run ${
        typedCommand("deno task fleet")
      } --help for the options.`,
    );
  }
  // Reads never write: a mistyped path must not become a new, empty database.
  if (values.kv !== undefined) await requireExistingKvPath(values.kv);
  const variable = await variables(values);
  // `--redis env` without REDIS_URL stops here, before any store is read.
  const redisUrl = values.redis === undefined
    ? undefined
    : redisUrlOption(values.redis, variable);
  if (values.history) {
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      throw new UsageError("--limit needs a whole number, such as 50");
    }
    return printHistory(
      redisUrl === undefined
        ? await kvAudit(values.kv!, values.prefix, limit)
        : await redisAudit(redisUrl, values.redis!, values.prefix, limit),
      values.prefix,
      values.json,
    );
  }
  if (values.serve || values["alert-webhook"] !== undefined) {
    return await serve(values, redisUrl, variable);
  }
  const prefix = values.prefix.split("/").filter((part) => part !== "");
  const now = Date.now();
  const found = redisUrl === undefined
    ? await kvEntries(values.kv!, prefix, now)
    : await redisEntries(redisUrl, values.redis!, values.prefix, now);
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
      "SECRETS (generation, fingerprint)",
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
      // Which secret each holds: after a rotation through the store, every
      // instance shows the new generation and the same fingerprint.
      record.credentials.map((c) =>
        `${c.label} g${c.secretGeneration ?? 0}${
          c.secretFingerprint === undefined ? "" : ` ${c.secretFingerprint}`
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

/**
 * Where `--redis env` and `--token env` look their variable up: the shell,
 * then `--env-file` (the shell wins, with a notice, as in every command).
 * Only the variables those options name are read, so the permission set's
 * `--allow-env` list covers them.
 */
async function variables(values: {
  redis?: string;
  token?: string;
  "env-file"?: string;
}): Promise<(name: string) => string | undefined> {
  const names = [
    ...(values.redis === "env" ? ["REDIS_URL"] : []),
    ...(values.token === "env" ? ["FLEET_STATUS_TOKEN"] : []),
  ];
  const envFile = values["env-file"] === undefined
    ? undefined
    : envFileOption(values["env-file"]);
  if (envFile !== undefined) {
    // Reads never write, and a mistyped path must not pass for an empty file.
    try {
      await Deno.stat(envFile);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      throw new UsageError(
        `--env-file ${envFile}: no such file; nothing was read`,
      );
    }
  }
  const found = await readRotationVariables(
    envFile,
    (override) => console.error(overrideNotice(override)),
    names,
  );
  return (name) => found[name];
}

function period(flag: string, text: string): number {
  const ms = parsePeriod(text);
  if (ms === undefined) {
    throw new UsageError(
      `${flag} needs a period such as 30d, 12h, 15m or 5s (got "${text}")`,
    );
  }
  return ms;
}

async function serve(
  values: {
    kv?: string;
    prefix: string;
    serve: boolean;
    port: string;
    host: string;
    token?: string;
    refresh: string;
    "alert-webhook"?: string;
    "alert-step": string;
    "alert-stragglers": string;
    "alert-gate": string;
    "max-age"?: string;
    redis?: string;
  },
  redisUrl: string | undefined,
  variable: (name: string) => string | undefined,
): Promise<number> {
  const webhook = values["alert-webhook"];
  if (webhook !== undefined && !URL.canParse(webhook)) {
    throw new UsageError(
      `--alert-webhook needs a URL such as http://127.0.0.1:9000/alerts (got "${webhook}")`,
    );
  }
  const bounds: AlertBounds = {
    stepMs: period("--alert-step", values["alert-step"]),
    stragglerMs: period("--alert-stragglers", values["alert-stragglers"]),
    gateMs: period("--alert-gate", values["alert-gate"]),
    ...(values["max-age"] === undefined
      ? {}
      : { maxAgeMs: period("--max-age", values["max-age"]) }),
  };
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError("--port needs a port number, such as 8787");
  }
  // Bounded like every duration: past 2^31 - 1 ms a timer fires at once,
  // and the watch loop would read the store without pause.
  const refresh = (parseSeconds("--refresh", values.refresh) ?? 0) / 1000;
  if (!(refresh > 0)) {
    throw new UsageError("--refresh needs a number of seconds, such as 2");
  }
  const token = values.token === "env"
    ? variable("FLEET_STATUS_TOKEN")
    : values.token;
  if (values.token === "env" && token === undefined) {
    throw new UsageError(
      "--token env reads FLEET_STATUS_TOKEN, which is unset",
    );
  }
  let source: FleetStatusSource;
  let closeStore: () => Promise<void> | void;
  if (redisUrl === undefined) {
    const kv = await openKvRetrying(values.kv!);
    source = kvStatusSource(
      kv,
      values.prefix.split("/").filter((part) => part !== ""),
      `Deno KV ${values.kv}, prefix ${values.prefix}`,
    );
    closeStore = () => kv.close();
  } else {
    const { redisStatusSource } = await import(
      "../src/fleet/fleet_status_redis.ts"
    );
    const redis = await connectOperatorRedis(redisUrl, values.redis!);
    // The page names the Redis by its prefix only: the URL may hold a password.
    source = redisStatusSource(
      redis.client,
      values.prefix,
      `Redis, prefix ${values.prefix}`,
    );
    closeStore = () => redis.close();
  }
  const read = () => readFleetStatus(source, { now: Date.now() });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  try {
    await using server = values.serve
      ? serveFleetStatus({
        read,
        hostname: values.host,
        port,
        ...(token === undefined ? {} : { token }),
        refreshMs: refresh * 1000,
      })
      : undefined;
    if (server !== undefined) console.log(`Fleet status page: ${server.url}`);
    if (webhook !== undefined) {
      // Loaded only with --alert-webhook: the OpenTelemetry API is not
      // needed to list or serve.
      const { recordAlertEvent } = await import(
        "../src/fleet/alert_telemetry.ts"
      );
      const notifier = createAlertNotifier({
        bounds,
        webhookUrl: webhook,
        onAlert: (alert) => {
          console.error(`ALERT ${alert.kind}: ${alert.summary}`);
          recordAlertEvent(alert);
        },
        onError: (error, alert) =>
          console.error(
            `alert ${alert.kind} not delivered (${
              error instanceof Error ? error.message : String(error)
            }); retried at the next read`,
          ),
      });
      console.log(
        `Watching the fleet every ${refresh} s; alerts go to the webhook.`,
      );
      const watch = async () => {
        try {
          await notifier.check(await read());
        } catch (error) {
          console.error(
            `the fleet store could not be read (${
              error instanceof Error ? error.message : String(error)
            }); retried in ${refresh} s`,
          );
        }
        if (!stopped) timer = setTimeout(watch, refresh * 1000);
      };
      await watch();
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        Deno.removeSignalListener("SIGINT", stop);
        Deno.removeSignalListener("SIGTERM", stop);
        resolve();
      };
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
    });
  } finally {
    stopped = true;
    clearTimeout(timer);
    await source.close();
    await closeStore();
  }
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

async function redisAudit(
  url: string,
  given: string,
  prefix: string,
  limit: number,
) {
  const { listRedisAudit } = await import("../src/fleet/redis_listing.ts");
  const redis = await connectOperatorRedis(url, given);
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

async function redisEntries(
  url: string,
  given: string,
  prefix: string,
  now: number,
) {
  // Loaded only for --redis, so --kv does not load the Redis client.
  const { listRedisInstances } = await import(
    "../src/fleet/redis_listing.ts"
  );
  const redis = await connectOperatorRedis(url, given);
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
