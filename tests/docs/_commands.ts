/**
 * The operator commands as the docs name them: each `deno task` name with the
 * parser tables its flags are checked against, and the `--help` pages the
 * reference reproduces. Read from the tasks' own modules, so a flag the docs
 * name that no parser accepts, or a help page that changed, fails the docs
 * tests (tests/docs/) instead of misleading an operator.
 *
 * Run `deno run -A tests/docs/_commands.ts` to rewrite the generated part of
 * docs/reference.md after a task's `--help` changed.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import { runTask, type TaskMain, type TaskOptions } from "../../tasks/_cli.ts";
import * as demo from "../../tasks/demo.ts";
import * as emulator from "../../tasks/emulator.ts";
import * as fleet from "../../tasks/fleet.ts";
import * as incident from "../../tasks/incident.ts";
import * as promote from "../../tasks/promote.ts";
import * as promoteFleet from "../../tasks/_promote_fleet.ts";
import * as rotate from "../../tasks/rotate.ts";
import * as rotateFleet from "../../tasks/_rotate_fleet.ts";
import * as setup from "../../tasks/setup.ts";
import * as status from "../../tasks/status.ts";
import * as verify from "../../tasks/verify.ts";

/** The project's root directory, with a trailing slash. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Every option each `deno task` accepts, by task name: the union of the
 * tables of the parsers the task hands over to (`rotate --kv` to the fleet
 * rotation, `rotate --compromised` to incident mode).
 */
export const TASK_OPTIONS: Readonly<Record<string, readonly TaskOptions[]>> = {
  verify: [verify.OPTIONS],
  rotate: [rotate.OPTIONS, rotateFleet.OPTIONS, incident.OPTIONS],
  promote: [promote.OPTIONS, promoteFleet.OPTIONS],
  setup: [setup.OPTIONS],
  incident: [incident.OPTIONS],
  fleet: [fleet.OPTIONS],
  status: [status.OPTIONS],
  emulator: [emulator.OPTIONS],
  demo: [demo.OPTIONS],
};

/**
 * Tasks of deno.json with no option table in tasks/: the script whose
 * `parseArgs` table lists the flags a doc may pass them (none for `test` and
 * `compile`, whose commands take none).
 */
export const OTHER_TASK_SOURCES: Readonly<Record<string, string | undefined>> =
  {
    test: undefined,
    compile: undefined,
    npm: "scripts/build_npm.ts",
    bench: "bench/run.ts",
  };

/** The names of the tasks deno.json defines. */
export const TASK_NAMES: readonly string[] = Object.keys(denoJson.tasks);

/** One `--help` page the reference reproduces. */
export interface HelpPage {
  /** The command as typed, such as `deno task rotate --kv <path>`. */
  readonly title: string;
  /** The task name, as deno.json spells it. */
  readonly task: string;
  readonly main: TaskMain;
  /** Arguments that select a variant's page (such as `--kv x`). */
  readonly prefix: readonly string[];
}

/** The help pages, in the order the reference lists them. */
export const HELP_PAGES: readonly HelpPage[] = [
  { title: "deno task verify", task: "verify", main: verify.main, prefix: [] },
  { title: "deno task rotate", task: "rotate", main: rotate.main, prefix: [] },
  {
    title: "deno task rotate --kv <path> | --redis <url|env>",
    task: "rotate",
    main: rotate.main,
    prefix: ["--kv", "x"],
  },
  {
    title: "deno task promote",
    task: "promote",
    main: promote.main,
    prefix: [],
  },
  {
    title: "deno task promote --kv <path> | --redis <url|env>",
    task: "promote",
    main: promote.main,
    prefix: ["--kv", "x"],
  },
  { title: "deno task setup", task: "setup", main: setup.main, prefix: [] },
  {
    title: "deno task incident",
    task: "incident",
    main: incident.main,
    prefix: [],
  },
  { title: "deno task status", task: "status", main: status.main, prefix: [] },
  { title: "deno task fleet", task: "fleet", main: fleet.main, prefix: [] },
  {
    title: "deno task emulator",
    task: "emulator",
    main: emulator.main,
    prefix: [],
  },
  { title: "deno task demo", task: "demo", main: demo.main, prefix: [] },
];

/**
 * What a command prints for `--help`, run in-process as `deno task` runs it.
 *
 * @param page The page.
 * @returns The text, without a trailing newline.
 */
export async function helpText(page: HelpPage): Promise<string> {
  const out: string[] = [];
  const { log } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  try {
    const code = await runTask(page.task, page.main, [
      ...page.prefix,
      "--help",
    ]);
    if (code !== 0) throw new Error(`${page.title} --help exited ${code}`);
  } finally {
    console.log = log;
  }
  return out.join("\n").trimEnd();
}

/** The markers around the generated help pages in docs/reference.md. */
export const HELP_BEGIN =
  "<!-- help:begin (generated: deno run -A tests/docs/_commands.ts) -->";
/** The end marker. */
export const HELP_END = "<!-- help:end -->";

/**
 * The generated part of docs/reference.md: one section per help page.
 *
 * @returns The markdown between {@linkcode HELP_BEGIN} and {@linkcode HELP_END}.
 */
export async function renderHelpPages(): Promise<string> {
  const sections: string[] = [];
  for (const page of HELP_PAGES) {
    sections.push(
      `### \`${page.title}\`\n\n\`\`\`text\n${await helpText(page)}\n\`\`\``,
    );
  }
  return sections.join("\n\n");
}

/**
 * docs/reference.md with its generated part replaced by `pages`.
 *
 * @param reference The file's text.
 * @param pages What {@linkcode renderHelpPages} returns.
 * @returns The new text.
 */
export function withHelpPages(reference: string, pages: string): string {
  const begin = reference.indexOf(HELP_BEGIN);
  const end = reference.indexOf(HELP_END);
  if (begin === -1 || end < begin) {
    throw new Error("docs/reference.md lacks the help:begin/help:end markers");
  }
  return reference.slice(0, begin + HELP_BEGIN.length) + "\n\n" + pages +
    "\n\n" + reference.slice(end);
}

if (import.meta.main) {
  const path = `${ROOT}docs/reference.md`;
  const text = await Deno.readTextFile(path);
  await Deno.writeTextFile(
    path,
    withHelpPages(text, await renderHelpPages()),
  );
  console.log(`rewrote the help pages of ${path}`);
}
