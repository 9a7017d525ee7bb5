/**
 * Plumbing shared by the verify and rotate tasks: reading only the named
 * environment variables, leveled logging to stderr (LogTape), aligned tables
 * with colour only on a terminal and never with `NO_COLOR`, and turning
 * errors into one clear line and an exit code, never a stack trace.
 *
 * @module
 */
import {
  configure,
  getLogger,
  getTextFormatter,
  type Logger,
} from "@logtape/logtape";
import { DualSecretAuthError } from "../src/errors.ts";
import { readEnvValues } from "../src/rotation/env_file.ts";
import { ROTATION_ENV_VARS } from "../src/rotation/env_config.ts";

/** Exit code for a failed operation (the active credential unusable, a failed rotation). */
export const EXIT_FAILED = 1;
/** Exit code for bad input: arguments, configuration, missing permissions. */
export const EXIT_USAGE = 2;

/** A mistake in how the task was called; reported without a stack trace. */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong and how to fix it.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Reads the rotation variables: from the process environment (which `deno
 * task` filled from `.env` with `--env-file`), then, for the keys present in
 * `envFile`, from that file, since it is the file the rotation rewrites.
 * Only the named variables are read, so `--allow-env` can list them.
 *
 * @param envFile The env file, or undefined to use the process environment only.
 * @returns The values by name.
 */
export async function readRotationVariables(
  envFile: string | undefined,
): Promise<Record<string, string | undefined>> {
  const values: Record<string, string | undefined> = {};
  for (const name of ROTATION_ENV_VARS) values[name] = Deno.env.get(name);
  if (envFile === undefined) return values;
  let text: string;
  try {
    text = await Deno.readTextFile(envFile);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return values;
    throw error;
  }
  const fromFile = readEnvValues(text);
  for (const name of ROTATION_ENV_VARS) {
    if (Object.hasOwn(fromFile, name)) values[name] = fromFile[name];
  }
  return values;
}

/** Whether stdout gets colour: only on a terminal, never with `NO_COLOR`. */
export function useColour(): boolean {
  return Deno.stdout.isTerminal() && !Deno.noColor;
}

/** A colour to paint a cell with. */
export type Colour = "green" | "red" | "yellow" | "dim" | "bold";

const CODES: Readonly<Record<Colour, [number, number]>> = {
  green: [32, 39],
  red: [31, 39],
  yellow: [33, 39],
  dim: [2, 22],
  bold: [1, 22],
};

/**
 * Paints text when colour is on.
 *
 * @param text The text.
 * @param colour The colour.
 * @param enabled Whether colour is on.
 * @returns The text, painted or not.
 */
export function paint(text: string, colour: Colour, enabled: boolean): string {
  if (!enabled) return text;
  const [open, close] = CODES[colour];
  return `\x1b[${open}m${text}\x1b[${close}m`;
}

/** A table cell: text, and optionally a colour. */
export type Cell = string | { readonly text: string; readonly colour?: Colour };

/**
 * Formats rows as an aligned table with a header row.
 *
 * @param header The column titles.
 * @param rows The rows.
 * @param colour Whether to paint cells.
 * @returns The lines of the table.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly Cell[])[],
  colour: boolean,
): string[] {
  const text = (cell: Cell) => typeof cell === "string" ? cell : cell.text;
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => text(row[column] ?? "").length))
  );
  const line = (cells: readonly Cell[], bold: boolean) =>
    cells.map((cell, column) => {
      const padded = column === cells.length - 1
        ? text(cell)
        : text(cell).padEnd(widths[column]);
      const tint = bold
        ? "bold"
        : typeof cell === "string"
        ? undefined
        : cell.colour;
      return tint ? paint(padded, tint, colour) : padded;
    }).join("  ").trimEnd();
  return [line(header, true), ...rows.map((row) => line(row, false))];
}

/**
 * Sets up LogTape: records at `level` and above go to stderr as text.
 *
 * @param category The logger category, such as `rotate`.
 * @param level The lowest level logged.
 * @returns The task's logger.
 */
export async function setUpLogging(
  category: string,
  level: "debug" | "info" | "warning",
): Promise<Logger> {
  const format = getTextFormatter({ timestamp: "time", value: "bare" });
  await configure({
    sinks: { stderr: (record) => console.error(format(record).trimEnd()) },
    loggers: [
      { category: ["dual-secret-auth"], lowestLevel: level, sinks: ["stderr"] },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["stderr"],
      },
    ],
  });
  return getLogger(["dual-secret-auth", category]);
}

/** The permission error Deno raised, found along the `cause` chain. */
function deniedPermission(error: unknown): Error | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; depth++) {
    if (at instanceof Deno.errors.NotCapable) return at;
    at = at.cause;
  }
  return undefined;
}

/**
 * Turns an error into a message for people and an exit code. Never a stack
 * trace; never a secret (the library's errors hold none).
 *
 * @param error What was thrown.
 * @param task The task's name, for the permission hint.
 * @param permissionHint What to say about a denied permission instead of the
 * `deno task` advice, for an entry point whose permissions are set elsewhere.
 * @returns The message and the exit code.
 */
export function describeFailure(
  error: unknown,
  task: string,
  permissionHint?: string,
): { message: string; exitCode: number } {
  const denied = deniedPermission(error);
  if (denied) {
    const hint = permissionHint ??
      `The ${task} task runs with the permission set "${task}" in deno.json ` +
        `(deno task ${task}); it allows only the .env file next to deno.json, the GENESYS_* variables ` +
        `and the Genesys Cloud hosts. For another file or host, add the flag Deno names ` +
        `(for example --allow-read=<file> --allow-write=<file>) to a deno run -P=${task} command.`;
    return {
      exitCode: EXIT_USAGE,
      message: `Deno denied a permission: ${
        denied.message.replace(/, run again with.*$/, "")
      }. ${hint}`,
    };
  }
  if (error instanceof UsageError) {
    return { exitCode: EXIT_USAGE, message: error.message };
  }
  if (isParseArgsError(error)) {
    return {
      exitCode: EXIT_USAGE,
      message: `${(error as Error).message}. Run with --help for the options.`,
    };
  }
  if (
    error instanceof DualSecretAuthError &&
    (error.code === "CONFIG_INVALID" ||
      error.code === "ENV_CONFIG_INVALID")
  ) {
    return { exitCode: EXIT_USAGE, message: error.message };
  }
  if (error instanceof DualSecretAuthError) {
    return { exitCode: EXIT_FAILED, message: error.message };
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return {
      exitCode: EXIT_FAILED,
      message: `The operating system denied access: ${error.message}`,
    };
  }
  const name = error instanceof Error ? error.name : "error";
  const detail = error instanceof Error ? `: ${error.message}` : "";
  return { exitCode: EXIT_FAILED, message: `Unexpected ${name}${detail}` };
}

/** A task's entry: runs with the given arguments and resolves to an exit code. */
export type TaskMain = (args: readonly string[]) => Promise<number>;

/**
 * Runs a task's entry and turns whatever it throws into one line on stderr
 * and an exit code, so every entry point (the task modules themselves and
 * tasks/cli.ts) reports failures the same way. It never exits the process.
 *
 * @param task The task's name, such as `rotate`.
 * @param main The task's entry.
 * @param args The task's arguments.
 * @param permissionHint See {@linkcode describeFailure}.
 * @returns The exit code.
 */
export async function runTask(
  task: string,
  main: TaskMain,
  args: readonly string[],
  permissionHint?: string,
): Promise<number> {
  try {
    return await main(args);
  } catch (error) {
    const failure = describeFailure(error, task, permissionHint);
    console.error(failure.message);
    return failure.exitCode;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}
