/**
 * Scheduled rotation benchmark (part of `deno task bench`, never a timed
 * test): the harness of tests/fleet/schedule_test.ts — 6 `deno run` fleet
 * instances (tests/fleet/child.ts) on one local KV file, two schedulers
 * (`tasks/rotate.ts --kv --every 1s`, accelerated), the Genesys emulator
 * with 3 s tokens — left to run a number of full cycles (rotate the standby
 * → propagate → promote → drain) with nobody killed.
 *
 * Per cycle: its duration (the scheduler's own `cycleStartedAt` →
 * `lastCompletedAt`, in the store), the time spent in each step, and the
 * token requests the emulator saw meanwhile (all clients, and the admin
 * client's share). Over the run: API calls served and failed calls (summed
 * from the instances' summaries).
 *
 * `deno task bench` runs it after the fleet measurements and writes
 * `schedule.md` and `schedule.json` beside `latest.md`, unless
 * `--skip-schedule` (or `--quick`); alone it prints markdown (`--json`: the
 * figures) and, with `--out DIR`, writes both files there.
 *
 * Usage: `deno run -A --lock=deno.dev.lock --unstable-kv bench/scenarios/schedule.ts [--json] [--cycles 3] [--out DIR]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { serviceNamespace } from "../../src/fleet/distribution.ts";
import type { CycleStep, ScheduleState } from "../../src/fleet/schedule.ts";
import type { SpawnedTask } from "../../tests/tasks/workspace.ts";
import { type FleetChild, startKvFleet } from "../../tests/fleet/harness.ts";
import { median } from "../stats.ts";

const PROCESSES = 6;
const SCHEDULERS = 2;
const TOKEN_LIFETIME_SECONDS = 3;
const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(5)));
const BLUE = "blue-bench-secret";
const GREEN = "green-bench-secret";
const ADMIN = "admin-bench-secret";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };
const STEPS: readonly CycleStep[] = ["rotate", "propagate", "promote", "drain"];
/** The scheduler's flags, as in tests/fleet/schedule_test.ts. */
const SCHEDULE_FLAGS = [
  "--every",
  "1s",
  "--tick",
  "150ms",
  "--lease",
  "1500ms",
  "--drain-bound",
  "5s",
  "--token-lifetime",
  String(TOKEN_LIFETIME_SECONDS),
] as const;

/** One full cycle's figures. */
export interface CycleFigures {
  /** 1-based. */
  readonly cycle: number;
  /** The label rotated and then promoted. */
  readonly rotated: string;
  /** `cycleStartedAt` → `lastCompletedAt`, in ms. */
  readonly durationMs: number;
  /** Time spent in each step, in ms, as this benchmark saw the steps change. */
  readonly stepsMs: Partial<Record<CycleStep, number>>;
  /** Token requests the emulator saw during the cycle, every client. */
  readonly tokenRequests: number;
  /** Of them, the admin client's (the scheduler's own API calls). */
  readonly adminTokenRequests: number;
  /** Token requests answered with an error during the cycle. */
  readonly tokenFailures: number;
}

/** The scheduled-rotation figures and their markdown section. */
export interface ScheduleBenchResult {
  /** Every figure. */
  readonly figures: {
    readonly processes: number;
    readonly schedulers: number;
    readonly tokenLifetimeSeconds: number;
    readonly schedulerFlags: string;
    readonly cycles: CycleFigures[];
    readonly medianCycleMs: number;
    readonly tokenRequestsTotal: number;
    readonly tokenRequestsDuringCycles: number;
    readonly tokenRequestsBeforeFirstCycle: number;
    readonly secretRegenerations: number;
    readonly apiCallsServed: number;
    readonly getAccessTokenCalls: number;
    readonly failedCalls: number;
    readonly apiNotServed: number;
    readonly api429: number;
    readonly api401: number;
    readonly expiredTokenUses: number;
    readonly wallClockMs: number;
  };
  /** The section for BENCHMARKS.md. */
  readonly markdown: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the fleet and the schedulers for `cycles` full cycles.
 *
 * @param options `cycles`: how many (default 3); `progress`: a status line sink.
 * @returns The figures and their markdown.
 */
export async function runScheduleBench(
  options: { cycles?: number; progress?: (text: string) => void } = {},
): Promise<ScheduleBenchResult> {
  const cycles = options.cycles ?? 3;
  const progress = options.progress ??
    ((text: string) =>
      void Deno.stderr.writeSync(new TextEncoder().encode(text + "\n")));
  const began = Date.now();
  progress(`schedule: starting ${PROCESSES} instances`);
  await using fleet = await startKvFleet(SECRETS, KEY, {
    n: PROCESSES,
    heartbeatMs: 900,
    tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS,
  });
  const { emulator, ws, kvPath } = fleet;
  const children: FleetChild[] = fleet.children;
  const kv = await Deno.openKv(kvPath);
  const store = createKvFleetStore(kv, { prefix: ["fleet-test"] });
  const service = await serviceNamespace(emulator.tokenUrl);
  const readState = async () =>
    (await store.readDocument(service, "schedule/state"))?.value as
      | ScheduleState
      | undefined;
  const schedulers: SpawnedTask[] = [];
  const measured: CycleFigures[] = [];
  let summaries: (Record<string, unknown> | undefined)[] = [];
  let beforeFirstCycle = 0;
  try {
    for (const child of children) {
      await child.send({ cmd: "traffic", intervalMs: 20, api: true });
    }
    for (let s = 1; s <= SCHEDULERS; s++) {
      schedulers.push(ws.spawn([
        "run",
        "-q",
        "-P=operator",
        "tasks/rotate.ts",
        "--kv",
        "fleet.db",
        "--prefix",
        "fleet-test",
        "--yes",
        ...SCHEDULE_FLAGS,
        "--cycles",
        String(cycles),
        "--scheduler-id",
        `s${s}`,
      ], { DUAL_SECRET_SEAL_KEY: KEY }));
    }
    // Poll the scheduler's record; snapshot the emulator's counters as the
    // step changes. A poll every 20 ms: each boundary is seen within that.
    let atCycleStart = emulator.stats();
    // The last record seen inside the current cycle: the "done" record
    // keeps neither the cycle's start nor its label.
    let current: ScheduleState | undefined;
    let lastInCycle: ScheduleState | undefined;
    let stepsMs: Partial<Record<CycleStep, number>> = {};
    let completed = 0;
    const deadline = Date.now() + 60_000 * cycles;
    while (completed < cycles) {
      const state = await readState();
      if (state !== undefined && state.step !== (current?.step ?? "done")) {
        if (current !== undefined) {
          // A step shorter than one poll is counted in the one before it.
          stepsMs[current.step] = (stepsMs[current.step] ?? 0) +
            state.stepStartedAt - current.stepStartedAt;
        }
        if (current === undefined && state.step !== "done") {
          atCycleStart = emulator.stats();
          if (measured.length === 0) {
            beforeFirstCycle = atCycleStart.tokenRequests;
          }
          stepsMs = {};
        }
        current = state.step === "done" ? undefined : state;
      }
      if (state !== undefined && state.completed > completed) {
        const atEnd = emulator.stats();
        completed = state.completed;
        const cycle: CycleFigures = {
          cycle: completed,
          rotated: lastInCycle?.standby ?? "?",
          durationMs: state.lastCompletedAt! -
            (lastInCycle?.cycleStartedAt ?? state.lastCompletedAt!),
          stepsMs,
          tokenRequests: atEnd.tokenRequests - atCycleStart.tokenRequests,
          adminTokenRequests: (atEnd.tokenRequestsByClient["admin-id"] ?? 0) -
            (atCycleStart.tokenRequestsByClient["admin-id"] ?? 0),
          tokenFailures: atEnd.tokenFailures - atCycleStart.tokenFailures,
        };
        measured.push(cycle);
        progress(
          `schedule: cycle ${completed}/${cycles} (${cycle.rotated}) ${cycle.durationMs} ms, ${cycle.tokenRequests} token requests`,
        );
      }
      if (state !== undefined && state.step !== "done") lastInCycle = state;
      if (Date.now() > deadline) {
        throw new Error(
          `schedule: ${completed} of ${cycles} cycles in time: ${
            JSON.stringify(state)
          }\n${schedulers.map((s) => s.stderr()).join("\n")}`,
        );
      }
      await sleep(20);
    }
    for (const scheduler of schedulers) {
      const run = await scheduler.finished();
      if (run.code !== 0) {
        throw new Error(`a scheduler exited ${run.code}: ${run.stderr}`);
      }
    }
  } finally {
    for (const scheduler of schedulers) {
      try {
        scheduler.child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await scheduler.finished();
    }
    kv.close();
    summaries = await Promise.all(children.map((c) => c.stop()));
  }
  const stats = emulator.stats();
  const sum = (key: string) =>
    summaries.reduce((n, s) => n + Number(s?.[key] ?? 0), 0);
  // An instance that gave no summary died: count it as failed.
  const failedCalls = sum("failed") +
    summaries.filter((s) => s === undefined).length;
  if (failedCalls > 0) {
    progress(
      `  warning: ${failedCalls} failed calls: ${
        summaries.flatMap((s) => (s?.errors as string[]) ?? []).join("; ")
      }`,
    );
  }
  const figures = {
    processes: PROCESSES,
    schedulers: SCHEDULERS,
    tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS,
    schedulerFlags: SCHEDULE_FLAGS.join(" "),
    cycles: measured,
    medianCycleMs: median(measured.map((c) => c.durationMs)),
    tokenRequestsTotal: stats.tokenRequests,
    tokenRequestsDuringCycles: measured.reduce(
      (n, c) => n + c.tokenRequests,
      0,
    ),
    tokenRequestsBeforeFirstCycle: beforeFirstCycle,
    secretRegenerations: stats.secretRegenerations,
    apiCallsServed: sum("apiOk"),
    getAccessTokenCalls: sum("ok"),
    failedCalls,
    // Every successful getAccessToken() is followed by one API call.
    apiNotServed: sum("ok") - sum("apiOk") - sum("api429"),
    api429: sum("api429"),
    api401: stats.apiUnauthorized,
    expiredTokenUses: stats.expiredTokenUses,
    wallClockMs: Date.now() - began,
  };
  return { figures, markdown: renderMarkdown(figures) };
}

function renderMarkdown(f: ScheduleBenchResult["figures"]): string {
  const s = (ms: number | undefined) =>
    ms === undefined ? "–" : (ms / 1000).toFixed(2);
  const rows = f.cycles.map((c) =>
    `| ${c.cycle} | ${c.rotated} | ${s(c.durationMs)} | ${
      STEPS.map((step) => s(c.stepsMs[step])).join(" | ")
    } | ${c.tokenRequests} | ${c.adminTokenRequests} |`
  ).join("\n");
  return `## Scheduled rotation (${f.processes} processes, ${f.schedulers} schedulers, one local KV file)

\`rotate --kv --every ${
    f.schedulerFlags.replace(/^--every /, "")
  }\`; ${f.tokenLifetimeSeconds} s tokens; every process makes a token call and an API call every 20 ms.

A step shown as – took less than one 20 ms poll; its time is counted in the step before it.

| cycle | rotated | duration s | rotate s | propagate s | promote s | drain s | token requests | of them admin |
|---|---|---|---|---|---|---|---|---|
${rows}

| over the run (${
    (f.wallClockMs / 1000).toFixed(1)
  } s, ${f.cycles.length} cycles) | |
|---|---|
| median cycle duration | ${s(f.medianCycleMs)} s |
| token requests, whole run (start-up and idle periods included) | ${f.tokenRequestsTotal} |
| token requests during the cycles | ${f.tokenRequestsDuringCycles} |
| token requests before the first cycle (cold start) | ${f.tokenRequestsBeforeFirstCycle} |
| secrets regenerated | ${f.secretRegenerations} |
| API calls served | ${f.apiCallsServed} |
| getAccessToken() calls | ${f.getAccessTokenCalls} |
| failed calls (getAccessToken() or the API call threw) | ${f.failedCalls} |
| API calls not served (neither 2xx nor 429, or threw) / 429s | ${f.apiNotServed} / ${f.api429} |
| API 401s / expired-token uses | ${f.api401} / ${f.expiredTokenUses} |
`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      cycles: { type: "string", default: "3" },
      out: { type: "string" },
    },
  });
  const cycles = Number(values.cycles);
  if (!Number.isInteger(cycles) || cycles < 1) {
    throw new RangeError(
      `--cycles must be a whole number ≥ 1, got ${values.cycles}`,
    );
  }
  const { figures, markdown } = await runScheduleBench({ cycles });
  if (values.out !== undefined) {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(`${values.out}/schedule.md`, markdown);
    await Deno.writeTextFile(
      `${values.out}/schedule.json`,
      JSON.stringify(figures, null, 2) + "\n",
    );
  }
  console.log(values.json ? JSON.stringify(figures, null, 2) : markdown);
}
