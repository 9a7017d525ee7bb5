/**
 * Incident-mode benchmark (part of `deno task bench`, never a timed test):
 * the harness of tests/fleet/incident_fleet_test.ts — 6 `deno run` fleet
 * instances that take their secrets from the store (`secretSealKeys`), on
 * one local Deno KV file and then on one Redis, each calling the emulator's
 * token endpoint and Platform API every 20 ms — and one
 * `deno task incident --compromised blue --kill-tokens --yes --kv|--redis`.
 *
 * Per engine: the incident task's wall time and the time of each step (from
 * its own timeline), the token requests the emulator saw while it ran (every
 * client, and the admin client's share), and the calls the instances made
 * over the run and how many failed.
 *
 * `deno task bench` runs it after the scheduled rotation and writes
 * `incident.md` and `incident.json` beside `latest.md`, unless
 * `--skip-incident` (or `--quick`); alone it prints markdown (`--json`: the
 * figures) and, with `--out DIR`, writes both files there. Redis is measured
 * when `redis-server` is installed.
 *
 * Usage: `deno run -A --lock=deno.dev.lock --unstable-kv bench/scenarios/incident.ts [--json] [--out DIR]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { INCIDENT_STEPS } from "../../src/rotation/incident.ts";
import {
  findRedisServer,
  startRedisServer,
} from "../../tests/support/redis_server.ts";
import { runFleetIncident } from "../../tests/fleet/incident_scenario.ts";

const PROCESSES = 6;

/** One engine's figures. */
export interface IncidentFigures {
  /** `kv` or `redis`. */
  readonly engine: string;
  /** The exit code of the incident task. */
  readonly exitCode: number;
  /** Wall time of the task (process start to exit), in ms. */
  readonly durationMs: number;
  /** Each step's end, in seconds since the response started (its timeline). */
  readonly stepsAtS: Readonly<Record<string, number>>;
  /** Token requests the emulator saw while the task ran, every client. */
  readonly tokenRequests: number;
  /** Of them, the admin client's (the task's own API calls). */
  readonly adminTokenRequests: number;
  /** Of them, answered with an error. */
  readonly tokenFailures: number;
  /** getAccessToken() calls the instances made over the run. */
  readonly calls: number;
  /** Calls that failed: getAccessToken() threw or the API answered an error. */
  readonly failedCalls: number;
  /** The warning codes the instances emitted over the run. */
  readonly instanceWarnings: readonly string[];
}

/**
 * Runs the incident on each engine.
 *
 * @param options Where progress lines go.
 * @returns The figures and their markdown section.
 */
export async function runIncidentBench(
  options: { progress?: (line: string) => void } = {},
): Promise<{ figures: IncidentFigures[]; markdown: string }> {
  const figures: IncidentFigures[] = [];
  const engines: ("kv" | "redis")[] = findRedisServer() === undefined
    ? ["kv"]
    : ["kv", "redis"];
  for (const engine of engines) {
    options.progress?.(`incident: ${PROCESSES} processes on ${engine}`);
    await using redis = engine === "redis"
      ? await startRedisServer()
      : undefined;
    const outcome = await runFleetIncident({
      engine,
      processes: PROCESSES,
      ...(redis ? { redisUrl: redis.url } : {}),
    });
    const stepsAtS: Record<string, number> = {};
    for (
      const match of outcome.run.stdout.matchAll(
        /^\+(\d+\.\d+) s\s+(\S+)\s+\S+/gm,
      )
    ) stepsAtS[match[2]] = Number(match[1]);
    figures.push({
      engine,
      exitCode: outcome.run.code,
      durationMs: Math.round(outcome.durationMs),
      stepsAtS,
      tokenRequests: outcome.tokenRequests,
      adminTokenRequests: outcome.tokenRequestsByClient["admin-id"] ?? 0,
      tokenFailures: outcome.tokenFailures,
      calls: outcome.calls,
      failedCalls: outcome.failed,
      instanceWarnings: [
        ...new Set(
          outcome.summaries.flatMap((summary) => summary.warnings as string[]),
        ),
      ].sort(),
    });
  }
  return { figures, markdown: renderMarkdown(figures) };
}

function renderMarkdown(figures: readonly IncidentFigures[]): string {
  const at = (f: IncidentFigures, step: string) =>
    f.stepsAtS[step] === undefined ? "–" : f.stepsAtS[step].toFixed(2);
  const rows = figures.map((f) =>
    `| ${f.engine} | ${f.exitCode} | ${(f.durationMs / 1000).toFixed(2)} | ${
      INCIDENT_STEPS.map((step) => at(f, step)).join(" | ")
    } | ${f.tokenRequests} | ${f.adminTokenRequests} | ${f.tokenFailures} | ${f.calls} | ${f.failedCalls} | ${
      f.instanceWarnings.join(", ") || "none"
    } |`
  ).join("\n");
  return `## Incident on a fleet (${PROCESSES} processes, secrets from the store)

\`deno task incident --compromised blue --kill-tokens --yes --kv|--redis\` while every process makes a token call and an API call every 20 ms; blue serves traffic when it starts. Step columns: when the step ended, in seconds since the response started (its own timeline).

| engine | exit | duration s | ${
    INCIDENT_STEPS.join(" | ")
  } | token requests | of them admin | token failures | calls | failed calls | instance warnings |
|---|---|---|${
    INCIDENT_STEPS.map(() => "---").join("|")
  }|---|---|---|---|---|---|
${rows}
`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      out: { type: "string" },
    },
  });
  const { figures, markdown } = await runIncidentBench({
    progress: (line) => console.error(line),
  });
  if (values.out !== undefined) {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(`${values.out}/incident.md`, markdown);
    await Deno.writeTextFile(
      `${values.out}/incident.json`,
      JSON.stringify(figures, null, 2) + "\n",
    );
  }
  console.log(values.json ? JSON.stringify(figures, null, 2) : markdown);
}
