/**
 * Turns benchmark results into the markdown report and checks this module's
 * figures against its goals.
 *
 * @module
 */
import type { MachineInfo } from "./machine.ts";
import type { BenchSize, Figures, Scenario } from "./scenarios/scenario.ts";
import { DEFAULT_RETRY } from "../src/retry.ts";
import { FLEET_NOT_BUILT } from "./scenarios/all.ts";
import type { ExtraResults } from "./extras.ts";

/** One contender's outcome in one scenario. */
export type Cell =
  | {
    readonly kind: "figures";
    readonly median: Figures;
    readonly runs: Figures[];
  }
  | { readonly kind: "error"; readonly message: string };

/** Everything a run produced. */
export interface BenchResults {
  /** When it ran (ISO 8601). */
  readonly date: string;
  /** The machine. */
  readonly machine: MachineInfo;
  /** Runs per scenario and contender. */
  readonly runs: number;
  /** Whether `--quick` sizes were used. */
  readonly quick: boolean;
  /** The request counts and concurrency used. */
  readonly size: BenchSize;
  /** Contender names, in table order. */
  readonly contenders: readonly string[];
  /** Contenders that did not load, with the error. */
  readonly loadErrors: Readonly<Record<string, string>>;
  /** By scenario title, then contender name. */
  readonly cells: Readonly<Record<string, Readonly<Record<string, Cell>>>>;
  /** Memory, failover window and bundle size (one measurement each). */
  readonly extras?: ExtraResults;
}

/** The bundle goal: `deno bundle --minify mod.ts`, gzip -9. */
export const BUNDLE_GOAL_BYTES = 6_144;

/** A goal of this module and whether the run met it. */
export interface GoalCheck {
  /** What is asked. */
  readonly goal: string;
  /** The figure measured. */
  readonly measured: string;
  /** Met or not; undefined when the figure is missing. */
  readonly met: boolean | undefined;
}

/**
 * Renders the report.
 *
 * @param results The results.
 * @param scenarios The scenarios, for titles, columns and descriptions.
 * @param oneCredential Names of contenders that hold one credential.
 * @returns Markdown.
 */
export function renderMarkdown(
  results: BenchResults,
  scenarios: readonly Scenario[],
  oneCredential: ReadonlySet<string>,
): string {
  const lines: string[] = [];
  const { machine } = results;
  lines.push(
    `Run ${results.date} on ${machine.cpu} (${machine.cores} logical CPUs), ${machine.os}, ${machine.deno}; ${results.runs} run(s) per figure, medians shown${
      results.quick ? "; --quick sizes (indicative only)" : ""
    }.`,
    "",
  );
  for (const scenario of scenarios) {
    lines.push(`### ${scenario.title}`, "");
    lines.push(
      `| contender | ${scenario.figures.map((f) => f.label).join(" | ")} |`,
    );
    lines.push(`|---|${scenario.figures.map(() => "---:").join("|")}|`);
    for (const name of results.contenders) {
      lines.push(
        `| ${name} | ${
          cellTexts(
            results,
            scenario,
            name,
            oneCredential.has(name),
          ).join(" | ")
        } |`,
      );
    }
    lines.push("");
  }
  lines.push("### 7. fleet", "");
  lines.push("| contender | result |", "|---|---|");
  for (const name of results.contenders) {
    lines.push(`| ${name} | ${FLEET_NOT_BUILT} |`);
  }
  if (results.extras) lines.push(...renderExtras(results.extras));
  lines.push("", "### Goals of this module", "");
  lines.push("| goal | measured | met |", "|---|---|---|");
  for (const check of checkGoals(results)) {
    const met = check.met === undefined ? "?" : check.met ? "yes" : "NO";
    lines.push(`| ${check.goal} | ${check.measured} | ${met} |`);
  }
  return lines.join("\n") + "\n";
}

function renderExtras(extras: ExtraResults): string[] {
  const b = (value: number | undefined) =>
    value === undefined ? "—" : `${format(value, 0)} B`;
  const ms = (value: number) => format(value, 2);
  const lines = [
    "",
    "### 8. memory",
    "",
    `Heap per instance, measured directly (no bench wrapper, no emulator: an in-process token endpoint answers 40-character tokens), ${
      extras.gcForced
        ? "after forced full collections"
        : "WITHOUT forced collections (noisy)"
    }.`,
    "",
    "| library | heap per idle instance | heap per cached token | left per instance after invalidate() |",
    "|---|---:|---:|---:|",
  ];
  for (const [name, figures] of Object.entries(extras.memory)) {
    lines.push(
      `| ${name} | ${b(figures.perInstance)} | ${b(figures.perCachedToken)} | ${
        figures.afterInvalidate === undefined
          ? "n/a (no invalidate)"
          : b(figures.afterInvalidate)
      } |`,
    );
  }
  lines.push(
    "",
    "### 9. failover window",
    "",
    "`auth.fetch` latency (ms) of this module, 20 workers on the emulator with revocation on; at 2/3 of each round the active secret is regenerated without warning. Window = the requests started after it; steady = the requests before it; recovery = ms from the regeneration until the first request sent after it succeeds (median over rounds).",
    "",
    "| warmStandby | steady p99.9 | steady max | window p99.9 | window max | window mean | recovery (median) | failed in window | token requests |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (
    const [name, f] of [["off", extras.failover.cold], [
      "on",
      extras.failover.warm,
    ]] as const
  ) {
    lines.push(
      `| ${name} | ${ms(f.steadyP999)} | ${ms(f.steadyMax)} | ${
        ms(f.windowP999)
      } | ${ms(f.windowMax)} | ${ms(f.windowMean)} | ${
        ms(f.recoveryMs)
      } | ${f.windowFailed} | ${f.tokenRequests} |`,
    );
  }
  lines.push(
    "",
    "### 10. bundle",
    "",
    "| `deno bundle --platform browser --minify mod.ts` | gzip -9 | goal |",
    "|---:|---:|---:|",
    `| ${b(extras.bundle.minified)} | ${b(extras.bundle.gzip9)} | ${
      b(BUNDLE_GOAL_BYTES)
    } |`,
  );
  return lines;
}

function cellTexts(
  results: BenchResults,
  scenario: Scenario,
  name: string,
  single: boolean,
): string[] {
  const loadError = results.loadErrors[name];
  const cell = results.cells[scenario.title]?.[name];
  return scenario.figures.map((figure, index) => {
    if (loadError !== undefined) {
      return index === 0 ? `did not load: ${oneLine(loadError)}` : "";
    }
    if (cell === undefined) return "";
    if (cell.kind === "error") {
      return index === 0 ? `error: ${oneLine(cell.message)}` : "";
    }
    if (figure.needsTwoCredentials && single) return "n/a (1 credential)";
    return format(cell.median[figure.key], figure.digits);
  });
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").replaceAll("|", "\\|").slice(0, 160);
}

function format(value: number | undefined, digits: number): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** This module's figure divided by another contender's, in the same run. */
function ratioTo(
  results: BenchResults,
  titlePrefix: string,
  key: string,
  other: string,
): number | undefined {
  const title = Object.keys(results.cells).find((t) =>
    t.startsWith(titlePrefix)
  );
  const cell = title === undefined ? undefined : results.cells[title][other];
  const mine = figure(results, titlePrefix, key);
  return cell?.kind === "figures" && mine !== undefined
    ? mine / cell.median[key]
    : undefined;
}

/** The first contender is this module. */
function figure(
  results: BenchResults,
  titlePrefix: string,
  key: string,
): number | undefined {
  const title = Object.keys(results.cells).find((t) =>
    t.startsWith(titlePrefix)
  );
  const cell = title === undefined
    ? undefined
    : results.cells[title][results.contenders[0]];
  return cell?.kind === "figures" ? cell.median[key] : undefined;
}

/**
 * This module's goals, checked against the medians.
 *
 * @param results The results; this module is the first contender.
 * @returns One check per goal.
 */
export function checkGoals(results: BenchResults): GoalCheck[] {
  const check = (
    goal: string,
    value: number | undefined,
    show: (v: number) => string,
    ok: (v: number) => boolean,
  ): GoalCheck => ({
    goal,
    measured: value === undefined ? "missing" : show(value),
    met: value === undefined ? undefined : ok(value),
  });
  const storm = figure(results, "4.", "tokenRequests");
  // Every waiting caller shares one retry sequence of at most maxAttempts
  // requests; a sequence that gives up fails every worker waiting on it. So
  // without amplification, token requests stay within maxAttempts per
  // sequence, whatever the number of callers.
  const sequences = 1 +
    (figure(results, "4.", "failed") ?? 0) / results.size.stormWorkers;
  const stormBound = DEFAULT_RETRY.maxAttempts * Math.ceil(sequences);
  return [
    check(
      "hot path ≤ 1.1× the awaited baseline (Map.get + clock floor)",
      figure(results, "1.", "ratio"),
      (v) => `${v.toFixed(2)}×`,
      (v) => v <= 1.1,
    ),
    check(
      "hot path within 2× the sync baseline (stricter reading)",
      figure(results, "1.", "ratioSync"),
      (v) => `${v.toFixed(2)}×`,
      (v) => v <= 2,
    ),
    check(
      "cold herd: exactly 1 token request",
      figure(results, "2.", "tokenRequests"),
      String,
      (v) => v === 1,
    ),
    check(
      "cold herd: time no worse than @badgateway/oauth2-client (ratio)",
      ratioTo(results, "2.", "ms", "@badgateway/oauth2-client"),
      (v) => `${v.toFixed(2)}×`,
      (v) => v <= 1,
    ),
    check(
      "cold herd: peak heap no worse than @badgateway/oauth2-client (ratio)",
      ratioTo(results, "2.", "peakHeapMb", "@badgateway/oauth2-client"),
      (v) => `${v.toFixed(2)}×`,
      (v) => v <= 1,
    ),
    check(
      "0 failed requests during rotations (old tokens revoked)",
      figure(results, "3a.", "failed"),
      String,
      (v) => v === 0,
    ),
    check(
      "0 failed requests during rotations (old tokens kept)",
      figure(results, "3b.", "failed"),
      String,
      (v) => v === 0,
    ),
    check(
      "storm: 0 wrong failovers",
      figure(results, "4.", "wrongFailovers"),
      String,
      (v) => v === 0,
    ),
    check(
      `storm: no amplification (token requests ≤ ${DEFAULT_RETRY.maxAttempts} attempts × retry sequences, not growing with the ${results.size.stormWorkers} callers)`,
      storm,
      (v) => `${v} token requests, bound ${stormBound}`,
      (v) => v <= stormBound,
    ),
    check(
      "storm: 0 failed requests (not a stated goal; shown for honesty)",
      figure(results, "4.", "failed"),
      String,
      (v) => v === 0,
    ),
    check(
      "0 requests with an expired token",
      figure(results, "5.", "expired"),
      String,
      (v) => v === 0,
    ),
    ...(["ratio", "ratioHeaders", "ratioPost", "ratioRequest"] as const).map(
      (key) =>
        check(
          `auth.fetch ≥ 95 % of raw fetch throughput (${
            {
              ratio: "URL",
              ratioHeaders: "URL + headers",
              ratioPost: "POST with body",
              ratioRequest: "Request",
            }[key]
          })`,
          figure(results, "6.", key),
          (v) => `${v.toFixed(1)} %`,
          (v) => v >= 95,
        ),
    ),
    check(
      "heap per instance ≤ 1,500 B",
      results.extras?.memory["this module"]?.perInstance,
      (v) => `${v.toFixed(0)} B`,
      (v) => v <= 1_500,
    ),
    check(
      "heap per cached token ≤ 200 B",
      results.extras?.memory["this module"]?.perCachedToken,
      (v) => `${v.toFixed(0)} B`,
      (v) => v <= 200,
    ),
    check(
      "warmStandby shortens the failover (recovery, median over rounds)",
      results.extras === undefined
        ? undefined
        : results.extras.failover.warm.recoveryMs /
          results.extras.failover.cold.recoveryMs,
      (v) => `${v.toFixed(2)}× of without`,
      (v) => v < 1,
    ),
    check(
      `bundle ≤ ${
        BUNDLE_GOAL_BYTES.toLocaleString("en-US")
      } B (minified, gzip -9)`,
      results.extras?.bundle.gzip9,
      (v) => `${v.toLocaleString("en-US")} B`,
      (v) => v <= BUNDLE_GOAL_BYTES,
    ),
  ];
}
