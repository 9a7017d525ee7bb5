/**
 * The benchmark runner: every scenario for every contender, several runs,
 * medians. Writes `latest.md` and `latest.json` (to bench/results/ unless
 * `--out` says otherwise) and prints the markdown.
 *
 * Then the fleet-mode measurements (bench/scenarios/fleet.ts: this module
 * only, 16 processes) into `fleet.md` and `fleet.json`, unless `--skip-fleet`.
 *
 * Then the scheduled rotation (bench/scenarios/schedule.ts: 6 processes, two
 * schedulers, 3 full cycles) into `schedule.md` and `schedule.json`, unless
 * `--skip-schedule` or `--quick` (it runs for cycles of real time, and the
 * `--quick` smoke test must stay short).
 *
 * Then incident mode on a fleet (bench/scenarios/incident.ts: 6 processes
 * with their secrets in the store, KV and Redis) into `incident.md` and
 * `incident.json`, unless `--skip-incident` or `--quick`.
 *
 * Then a rotation per provider (bench/scenarios/provider_rotation.ts:
 * `deno task rotate` on the Okta, Entra ID, Keycloak, Cognito and Auth0
 * emulators with 4 services calling) into `providers.md` and
 * `providers.json`, unless `--skip-providers` or `--quick`.
 *
 * Usage: `deno run -A --v8-flags=--expose-gc bench/run.ts [--runs 5] [--quick] [--skip-fleet] [--skip-schedule] [--skip-incident] [--skip-providers] [--out DIR]`
 * (`deno task bench`); without `--expose-gc` the heap figures are noisier.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CONTENDERS } from "./contenders/all.ts";
import { EXTRA_SIZES, measureExtras } from "./extras.ts";
import { machineInfo } from "./machine.ts";
import { type BenchResults, type Cell, renderMarkdown } from "./report.ts";
import { SCENARIOS } from "./scenarios/all.ts";
import { type Figures, FULL_SIZE, QUICK_SIZE } from "./scenarios/scenario.ts";
import { median } from "./stats.ts";
import { runFleetBench } from "./scenarios/fleet.ts";
import { runScheduleBench } from "./scenarios/schedule.ts";
import { runIncidentBench } from "./scenarios/incident.ts";
import { runProviderRotationBench } from "./scenarios/provider_rotation.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    quick: { type: "boolean", default: false },
    "skip-fleet": { type: "boolean", default: false },
    "skip-schedule": { type: "boolean", default: false },
    "skip-incident": { type: "boolean", default: false },
    "skip-providers": { type: "boolean", default: false },
    out: {
      type: "string",
      default: new URL("./results", import.meta.url).pathname,
    },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  throw new RangeError(`--runs must be a whole number ≥ 1, got ${values.runs}`);
}
const size = values.quick ? QUICK_SIZE : FULL_SIZE;
const progress = (text: string) =>
  Deno.stderr.writeSync(new TextEncoder().encode(text + "\n"));

const loadErrors: Record<string, string> = {};
for (const contender of CONTENDERS) {
  try {
    await contender.load();
  } catch (error) {
    loadErrors[contender.name] = error instanceof Error
      ? error.message
      : String(error);
    progress(`${contender.name} did not load: ${loadErrors[contender.name]}`);
  }
}
const loaded = CONTENDERS.filter((c) => loadErrors[c.name] === undefined);

const perRun = new Map<string, Figures[]>();
const errors = new Map<string, string>();
const key = (scenario: string, contender: string) =>
  `${scenario}\u0000${contender}`;
// Runs are the outer loop, so drift over time hits every contender alike.
for (let run = 1; run <= runs; run++) {
  for (const scenario of SCENARIOS) {
    for (const contender of loaded) {
      const id = key(scenario.title, contender.name);
      if (errors.has(id)) continue;
      progress(`run ${run}/${runs} · ${scenario.title} · ${contender.name}`);
      try {
        const figures = await scenario.run(contender, size);
        perRun.set(id, [...(perRun.get(id) ?? []), figures]);
      } catch (error) {
        errors.set(id, error instanceof Error ? error.message : String(error));
        progress(`  error: ${errors.get(id)}`);
      }
    }
  }
}

const cells: Record<string, Record<string, Cell>> = {};
for (const scenario of SCENARIOS) {
  cells[scenario.title] = {};
  for (const contender of loaded) {
    const id = key(scenario.title, contender.name);
    const error = errors.get(id);
    const figures = perRun.get(id) ?? [];
    cells[scenario.title][contender.name] = error !== undefined
      ? { kind: "error", message: error }
      : {
        kind: "figures",
        runs: figures,
        median: Object.fromEntries(
          scenario.figures.map((
            f,
          ) => [f.key, median(figures.map((r) => r[f.key]))]),
        ),
      };
  }
}

const extras = await measureExtras(
  values.quick ? EXTRA_SIZES.quick : EXTRA_SIZES.full,
  progress,
);

const results: BenchResults = {
  date: new Date().toISOString(),
  machine: await machineInfo(),
  runs,
  quick: values.quick,
  size,
  contenders: CONTENDERS.map((c) => c.name),
  loadErrors,
  cells,
  extras,
};
const markdown = renderMarkdown(
  results,
  SCENARIOS,
  new Set(CONTENDERS.filter((c) => c.credentialCount === 1).map((c) => c.name)),
);
await Deno.mkdir(values.out, { recursive: true });
await Deno.writeTextFile(`${values.out}/latest.md`, markdown);
await Deno.writeTextFile(
  `${values.out}/latest.json`,
  JSON.stringify(results, null, 2) + "\n",
);
console.log(markdown);

if (!values["skip-fleet"]) {
  const fleet = await runFleetBench({ quick: values.quick, progress });
  await Deno.writeTextFile(`${values.out}/fleet.md`, fleet.markdown);
  await Deno.writeTextFile(
    `${values.out}/fleet.json`,
    JSON.stringify(fleet.figures, null, 2) + "\n",
  );
  console.log(fleet.markdown);
}

if (!values["skip-schedule"] && !values.quick) {
  progress("schedule: scheduled rotation, 3 cycles");
  const schedule = await runScheduleBench({ cycles: 3, progress });
  await Deno.writeTextFile(`${values.out}/schedule.md`, schedule.markdown);
  await Deno.writeTextFile(
    `${values.out}/schedule.json`,
    JSON.stringify(schedule.figures, null, 2) + "\n",
  );
  console.log(schedule.markdown);
}

if (!values["skip-incident"] && !values.quick) {
  progress("incident: incident mode on a 6-process fleet (KV, Redis)");
  const incident = await runIncidentBench({ progress });
  await Deno.writeTextFile(`${values.out}/incident.md`, incident.markdown);
  await Deno.writeTextFile(
    `${values.out}/incident.json`,
    JSON.stringify(incident.figures, null, 2) + "\n",
  );
  console.log(incident.markdown);
}

if (!values["skip-providers"] && !values.quick) {
  progress(
    "providers: a rotation per provider (Okta, Entra ID, Keycloak, Cognito, Auth0)",
  );
  const providers = await runProviderRotationBench({ progress });
  await Deno.writeTextFile(`${values.out}/providers.md`, providers.markdown);
  await Deno.writeTextFile(
    `${values.out}/providers.json`,
    JSON.stringify(providers.figures, null, 2) + "\n",
  );
  console.log(providers.markdown);
}
