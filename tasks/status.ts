/**
 * `deno task status`: what an operator asks before and after a rotation, for
 * a single host (the env file and its journal) or a fleet (its store): the
 * active label, the last rotation of each label, each secret's age, an
 * unfinished rotation, and the next scheduled cycle. Reads only.
 *
 * @module
 */
import {
  type FleetStatus,
  type FleetStatusSource,
  kvStatusSource,
  readFleetStatus,
} from "../src/fleet/fleet_status.ts";
import { parsePeriod } from "../src/fleet/schedule.ts";
import {
  createFileJournal,
  type RotationJournalRecord,
} from "../src/rotation/journal.ts";
import {
  COMMON_OPTIONS,
  envFileOption,
  EXIT_CODES_HELP,
  parseTaskArgs,
  readOnlyOptions,
  readRotationVariables,
  redisUrlOption,
  runTask,
  table,
  type TaskOptions,
  UsageError,
  useColour,
} from "./_cli.ts";
import {
  connectOperatorRedis,
  fleetStoreArgs,
  requireExistingKvPath,
} from "./_fleet.ts";
import { openKvRetrying } from "../kv.ts";

/** The options the status parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  ...readOnlyOptions("status"),
  "env-file": { type: "string", default: ".env" },
  kv: { type: "string" },
  redis: { type: "string" },
  prefix: { type: "string", default: "dual-secret-auth" },
  every: { type: "string" },
  json: { type: "boolean", default: false },
} as const satisfies TaskOptions;

const HELP = `Usage: deno task status [options]
       deno task status --kv <path> | --redis <url|env> [options]

Shows, changing nothing: the active label; the last rotation of each label and
the age of its secret; a rotation that has not finished (and the command that
finishes it); and, for a fleet, the scheduler's step and its next cycle.

Without a store it reads the env file and its journal (<env-file>.rotation.json),
which records the last rotation only: the other label's age is then unknown.
With a store it reads the fleet's records (active label, journal, distributed
secrets, schedule), as deno task fleet does.

Options:
  --env-file <path>  the env file (default .env)
  --kv <path>        a fleet's Deno KV database (it must exist)
  --redis <url|env>  or a fleet's Redis; env reads REDIS_URL, which keeps a
                     password off the command line
  --prefix <a/b>     the fleet's key prefix (default dual-secret-auth)
  --every <period>   the scheduler's period (such as 30d), to say when the next
                     cycle is due (the store keeps when the last one finished,
                     not the period)
  --json             print JSON instead of text
  -h, --help         show this help
  -V, --version      show the version

${EXIT_CODES_HELP}
`;

/** One label's line of the status. */
export interface LabelStatus {
  /** blue or green. */
  readonly label: string;
  /** Whether it serves traffic. */
  readonly active: boolean;
  /** When its secret was last rotated (published), if known. */
  readonly rotatedAt?: number;
  /** Its secret's age in ms, if known. */
  readonly ageMs?: number;
}

/** What `deno task status` reports. */
export interface StatusReport {
  /** Where it was read from (no secret: a Redis is named by its prefix). */
  readonly source: string;
  /** The active label, if known. */
  readonly active?: string;
  /** Each label. */
  readonly labels: readonly LabelStatus[];
  /** A rotation that has not finished, and how to finish it. */
  readonly unfinished?: {
    readonly standby: string;
    readonly phase: string;
    readonly startedAt: number;
    readonly next: string;
  };
  /** The scheduler, when one ran. */
  readonly schedule?: {
    readonly step: string;
    readonly completed: number;
    readonly lastCompletedAt?: number;
    readonly nextDueAt?: number;
  };
}

/**
 * The status of a single host, from the env file's journal.
 *
 * @param active GENESYS_ACTIVE, if set.
 * @param journal The journal's record, if any.
 * @param envFile The env file, for the next step.
 * @param now The current time.
 * @returns The report.
 */
export function hostStatus(
  active: string | undefined,
  journal: RotationJournalRecord | undefined,
  envFile: string,
  now: number,
): StatusReport {
  const labels = ["blue", "green"].map((label): LabelStatus => {
    const rotatedAt = journal?.standby === label
      ? journal.publishedAt
      : undefined;
    return {
      label,
      active: label === active,
      ...(rotatedAt === undefined
        ? {}
        : { rotatedAt, ageMs: Math.max(0, now - rotatedAt) }),
    };
  });
  const finished = journal === undefined || journal.phase === "done" ||
    journal.completedAt !== undefined;
  const envArg = envFile === ".env" ? "" : ` --env-file ${envFile}`;
  return {
    source: `env file ${envFile}`,
    ...(active === undefined ? {} : { active }),
    labels,
    ...(finished ? {} : {
      unfinished: {
        standby: journal!.standby,
        phase: journal!.phase,
        startedAt: journal!.startedAt,
        next: `deno task rotate --yes${envArg} (resumes it)`,
      },
    }),
  };
}

/**
 * The status of a fleet, from what {@linkcode readFleetStatus} read.
 *
 * @param status The fleet's state.
 * @param everyMs The scheduler's period, if given.
 * @param storeArgs The store options for the next step (never a URL).
 * @returns The report (the first service namespace with records).
 */
export function fleetReport(
  status: FleetStatus,
  everyMs: number | undefined,
  storeArgs: string,
): StatusReport {
  const service = status.services[0];
  const now = status.readAt;
  const labels = ["blue", "green"].map((label): LabelStatus => {
    const secret = service?.secrets.find((s) => s.label === label);
    return {
      label,
      active: service?.active?.label === label,
      ...(secret === undefined ? {} : {
        rotatedAt: secret.publishedAt,
        ageMs: Math.max(0, now - secret.publishedAt),
      }),
    };
  });
  const rotation = service?.rotation;
  const schedule = service?.schedule;
  return {
    source: status.source,
    ...(service?.active === undefined ? {} : { active: service.active.label }),
    labels,
    ...(rotation?.inProgress
      ? {
        unfinished: {
          standby: rotation.standby,
          phase: rotation.phase,
          startedAt: rotation.startedAt,
          next: `deno task rotate ${storeArgs} --yes (resumes it)`,
        },
      }
      : {}),
    ...(schedule === undefined ? {} : {
      schedule: {
        step: schedule.step,
        completed: schedule.completed,
        ...(schedule.lastCompletedAt === undefined
          ? {}
          : { lastCompletedAt: schedule.lastCompletedAt }),
        ...(everyMs === undefined || schedule.lastCompletedAt === undefined
          ? {}
          : { nextDueAt: schedule.lastCompletedAt + everyMs }),
      },
    }),
  };
}

function when(at: number | undefined, now: number): string {
  if (at === undefined) return "unknown";
  return `${new Date(at).toISOString()} (${ago(now - at)})`;
}

function ago(ms: number): string {
  const past = ms >= 0;
  const s = Math.abs(ms) / 1000;
  const text = s < 120
    ? `${Math.round(s)} s`
    : s < 7200
    ? `${Math.round(s / 60)} min`
    : s < 172_800
    ? `${Math.round(s / 3600)} h`
    : `${Math.round(s / 86_400)} d`;
  return past ? `${text} ago` : `in ${text}`;
}

/**
 * The report as lines for people.
 *
 * @param report The report.
 * @param now The current time.
 * @param colour Whether to paint.
 * @returns The lines.
 */
export function formatStatus(
  report: StatusReport,
  now: number,
  colour: boolean,
): string[] {
  const lines = [
    `Source: ${report.source}`,
    `Active: ${report.active ?? "unknown"}`,
    "",
    ...table(
      ["LABEL", "ACTIVE", "LAST ROTATED", "SECRET AGE"],
      report.labels.map((l) => [
        l.label,
        l.active ? "yes" : "",
        when(l.rotatedAt, now),
        l.ageMs === undefined ? "unknown" : ago(l.ageMs).replace(/ ago$/, ""),
      ]),
      colour,
    ),
    "",
  ];
  lines.push(
    report.unfinished
      ? `Unfinished rotation of "${report.unfinished.standby}" (last phase: ${report.unfinished.phase}, started ${
        when(report.unfinished.startedAt, now)
      }). Next: ${report.unfinished.next}`
      : "No unfinished rotation.",
  );
  if (report.schedule) {
    const s = report.schedule;
    lines.push(
      `Schedule: step ${s.step}, ${s.completed} cycle(s) completed, last ${
        when(s.lastCompletedAt, now)
      }; next cycle ${
        s.nextDueAt === undefined
          ? "unknown (pass --every <period>)"
          : when(s.nextDueAt, now)
      }`,
    );
  } else if (!report.source.startsWith("env file")) {
    lines.push("Schedule: no scheduler has run against this store.");
  }
  return lines;
}

/**
 * Runs the status task. Reads only.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const values = parseTaskArgs("deno task status", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  const envFile = envFileOption(values["env-file"]);
  const everyMs = values.every === undefined
    ? undefined
    : parsePeriod(values.every);
  if (values.every !== undefined && everyMs === undefined) {
    throw new UsageError(
      `--every ${values.every}: not a period; use such as 30d, 12h or 90s`,
    );
  }
  if (values.kv !== undefined && values.redis !== undefined) {
    throw new UsageError(
      "pass one fleet store: --kv <path> or --redis <url|env>, not both",
    );
  }
  const now = Date.now();
  let report: StatusReport;
  if (values.kv === undefined && values.redis === undefined) {
    const variables = await readRotationVariables(envFile);
    const journal = await createFileJournal(`${envFile}.rotation.json`)
      .read();
    report = hostStatus(variables.GENESYS_ACTIVE, journal, envFile, now);
  } else {
    let source: FleetStatusSource;
    let close: () => Promise<void> | void;
    // The next step never repeats a Redis URL (it may hold a password).
    const storeArgs = fleetStoreArgs(values);
    if (values.kv !== undefined) {
      await requireExistingKvPath(values.kv);
      const kv = await openKvRetrying(values.kv);
      source = kvStatusSource(
        kv,
        values.prefix.split("/").filter((part) => part !== ""),
        `Deno KV ${values.kv}, prefix ${values.prefix}`,
      );
      close = () => kv.close();
    } else {
      const url = redisUrlOption(values.redis!);
      const { redisStatusSource } = await import(
        "../src/fleet/fleet_status_redis.ts"
      );
      const redis = await connectOperatorRedis(url, values.redis!);
      source = redisStatusSource(
        redis.client,
        values.prefix,
        `Redis, prefix ${values.prefix}`,
      );
      close = () => redis.close();
    }
    try {
      report = fleetReport(
        await readFleetStatus(source, { now }),
        everyMs,
        storeArgs,
      );
    } finally {
      await close();
    }
  }
  if (values.json) {
    console.log(JSON.stringify({ ok: true, ...report }, null, 2));
  } else {
    console.log(formatStatus(report, now, useColour()).join("\n"));
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await runTask("status", main, Deno.args));
}
