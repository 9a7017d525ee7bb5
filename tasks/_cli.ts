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
import {
  AllCredentialsRejectedError,
  CredentialRejectedError,
  DualSecretAuthError,
} from "../src/errors.ts";
import { isAbsolute, relative, resolve, sep as SEPARATOR } from "node:path";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import denoJson from "../deno.json" with { type: "json" };
import { readEnvValues } from "../src/rotation/env_file.ts";
import {
  explainError,
  type OperatorNames,
} from "../src/rotation/describe_error.ts";
import { ROTATION_ENV_VARS } from "../src/rotation/env_config.ts";

/** Exit code for a failed operation (the active credential unusable, a failed rotation). */
export const EXIT_FAILED = 1;
/** Exit code for bad input: arguments, configuration, missing permissions, a file that cannot be written. */
export const EXIT_USAGE = 2;
/** Exit code when another rotate, promote, setup or incident holds the env file's lock, or changed the file meanwhile. */
export const EXIT_LOCKED = 3;
/** Exit code when interrupted by SIGINT or SIGTERM (128 + 2, as shells report Ctrl-C). */
export const EXIT_INTERRUPTED = 130;

/** The exit codes as `--help` and docs/reference.md list them. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    the operation failed (the message says the state and the next step)
  2    configuration or usage error, or a file that cannot be written; nothing was changed
  3    another rotate, promote, setup or incident holds the env file's lock
       (or changed the file while this one started); nothing was changed
  130  interrupted (Ctrl-C or SIGTERM); the message says the state things are in`;

/**
 * The test hook of the rotate and promote tasks: when set (and readable under
 * the permission set), the named failpoint prints a line to stderr and waits
 * to be killed, so crash tests can SIGKILL the process at an exact point.
 */
export const FAILPOINT_ENV_VAR = "DUAL_SECRET_AUTH_FAILPOINT";

/**
 * A failure explained in the operator's words, with a stable code: which
 * variable, file or command to fix.
 */
export class OperatorError extends DualSecretAuthError {
  /**
   * Creates the error.
   *
   * @param code The stable code, such as `GENESYS_ADMIN_UNAUTHORIZED`.
   * @param message What happened and what to fix.
   * @param options The underlying error, as cause.
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(code as never, message, options);
  }
}

export { networkProblem } from "../src/rotation/describe_error.ts";

/**
 * The operator's explanation of an error: variable names and commands, not
 * library calls. Never a secret, never server error text. The one describer
 * (`explainError`), so every command and every flow words a failure alike.
 *
 * @param error What was thrown (a cause, usually).
 * @param names The env file's variable names, when not Genesys Cloud's.
 * @returns The code and the words.
 */
export function explain(
  error: unknown,
  names?: OperatorNames,
): { code: string; message: string } {
  return explainError(error, names);
}

/**
 * Wraps the admin credential's token source: a rejected admin secret becomes
 * `GENESYS_ADMIN_UNAUTHORIZED`, naming the variable to fix.
 *
 * @param getAccessToken The admin credential's token source.
 * @param variable The variable holding the admin secret.
 * @returns The same source, with operator errors.
 */
export function adminTokenSource(
  getAccessToken: (options?: { signal?: AbortSignal }) => Promise<string>,
  variable: string,
): (options?: { signal?: AbortSignal }) => Promise<string> {
  return async (options) => {
    try {
      return await getAccessToken(options);
    } catch (error) {
      const rejected = error instanceof CredentialRejectedError ||
        error instanceof AllCredentialsRejectedError;
      if (!rejected) throw error;
      throw new OperatorError(
        "GENESYS_ADMIN_UNAUTHORIZED",
        `the admin credential was rejected by the token endpoint; check ${variable} ` +
          `(and the client id beside it). It needs a role with oauth:client:view and oauth:client:edit.`,
        { cause: error },
      );
    }
  };
}

/**
 * A fetch that reports each 429 it sees (with the wait the server asked
 * for), so an operator watching a rate-limited run sees why it waits.
 *
 * @param report Receives one line per 429.
 * @param inner The fetch to wrap.
 * @returns The wrapped fetch.
 */
export function reportingRateLimits(
  report: (line: string) => void,
  inner: typeof fetch = (input, init) => globalThis.fetch(input, init),
): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    if (response.status === 429) {
      const after = response.headers.get("retry-after");
      report(
        `the Genesys Cloud API is rate limiting (HTTP 429); waiting ${
          after ? `${after} s as it asked` : "a moment"
        } before trying again`,
      );
    }
    return response;
  };
}

/**
 * Waits forever at a failpoint named by {@linkcode FAILPOINT_ENV_VAR}, after
 * saying so on stderr: the test then kills the process. Inert unless the
 * variable is set and readable (it is not in any permission set, so only a
 * test that grants it can use it).
 *
 * @returns The failpoint hook, or undefined.
 */
export function failpointHook():
  | ((point: string) => Promise<void>)
  | undefined {
  const state = Deno.permissions.querySync({
    name: "env",
    variable: FAILPOINT_ENV_VAR,
  }).state;
  const wanted = state === "granted"
    ? Deno.env.get(FAILPOINT_ENV_VAR)
    : undefined;
  if (!wanted) return undefined;
  return (point) => {
    if (point !== wanted) return Promise.resolve();
    console.error(`failpoint ${point} reached`);
    return new Promise(() => setInterval(() => {}, 60_000));
  };
}

/** The longest duration a task accepts: a timer takes at most 2^31 - 1 ms (about 24.8 days) and fires at once past it. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Refuses a duration a timer cannot wait: past {@linkcode MAX_DURATION_MS}
 * it would fire at once, turning a long wait into a busy loop.
 *
 * @param flag The flag, for the message.
 * @param ms The duration, in ms.
 * @param text The value as given, for the message.
 * @returns The same duration.
 * @throws {UsageError} When it is longer than {@linkcode MAX_DURATION_MS}.
 */
export function boundedMs(flag: string, ms: number, text: string): number {
  if (ms > MAX_DURATION_MS) {
    throw new UsageError(
      `${flag} ${text} is too long: durations go up to 24 days (${MAX_DURATION_MS} ms, what a timer can wait); nothing was changed`,
    );
  }
  return ms;
}

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
 * Parses a number of seconds given on the command line.
 *
 * @param flag The flag, for the message.
 * @param text Its value, if given.
 * @returns Milliseconds, or undefined when not given.
 */
export function parseSeconds(
  flag: string,
  text: string | undefined,
): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0 || text.trim() === "") {
    throw new UsageError(`${flag} needs a number of seconds, such as 60`);
  }
  return boundedMs(flag, seconds * 1000, text);
}

/** A variable set in the shell environment that differs from the env file. */
export interface EnvOverride {
  /** The variable. */
  readonly variable: string;
  /** The env file it differs from. */
  readonly envFile: string;
}

/**
 * Reads the rotation variables with one precedence in every command, as
 * `.env.example` says: a variable set in the shell environment wins over the
 * env file (as Deno's `--env-file` does). Each variable where the two differ
 * is reported, so the operator sees which value is used. Only the named
 * variables are read, so `--allow-env` can list them.
 *
 * @param envFile The env file, or undefined to use the environment only.
 * @param onOverride Receives each variable the shell overrides.
 * @param names The variables to read (default {@linkcode ROTATION_ENV_VARS});
 *   `deno task fleet --env-file` reads `REDIS_URL` and `FLEET_STATUS_TOKEN`.
 * @returns The values by name.
 */
export async function readRotationVariables(
  envFile: string | undefined,
  onOverride: (override: EnvOverride) => void = () => {},
  names: readonly string[] = ROTATION_ENV_VARS,
): Promise<Record<string, string | undefined>> {
  const values: Record<string, string | undefined> = {};
  const fromShell: Record<string, string | undefined> = {};
  for (const name of names) {
    // The AUTH_* names are read from the shell only where --allow-env grants
    // them: a Genesys run with the GENESYS_* names alone keeps working.
    fromShell[name] = ROTATION_ENV_VARS.includes(name) ||
        Deno.permissions.querySync({ name: "env", variable: name }).state ===
          "granted"
      ? Deno.env.get(name)
      : undefined;
  }
  let fromFile: Record<string, string> = {};
  if (envFile !== undefined) {
    try {
      fromFile = readEnvValues(await Deno.readTextFile(envFile));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  for (const name of names) {
    const shell = fromShell[name];
    const file = Object.hasOwn(fromFile, name) ? fromFile[name] : undefined;
    values[name] = shell ?? file;
    if (shell !== undefined && file !== undefined && shell !== file) {
      onOverride({ variable: name, envFile: envFile! });
    }
  }
  return values;
}

/**
 * The notice for a variable the shell overrides.
 *
 * @param override The variable and file.
 * @returns One line for stderr (no values: they may be secrets).
 */
export function overrideNotice(override: EnvOverride): string {
  return `Notice: ${override.variable} is set in the shell environment and differs from ${override.envFile}; ` +
    `using the shell's value (unset it to use ${override.envFile}).`;
}

/**
 * The `--env-file` option of a task, refused when blank, in one spelling:
 * relative to the working directory when inside it (`./.env` and its
 * absolute path are `.env`), else absolute. The journals record the env
 * file by this name, so a re-run that spells it another way resumes
 * instead of refusing or starting over (regenerating a secret again).
 *
 * @param path The option's value.
 * @returns The path in its one spelling.
 * @throws {UsageError} When the path is empty or only spaces.
 */
export function envFileOption(path: string): string {
  if (path.trim() === "") throw new UsageError("--env-file needs a path");
  const absolute = resolve(path);
  const inside = relative(Deno.cwd(), absolute);
  return inside === "" || inside === ".." ||
      inside.startsWith(`..${SEPARATOR}`) || isAbsolute(inside)
    ? absolute
    : inside;
}

/**
 * The lowest level a task logs: `--verbose` shows debug details, `--json`
 * keeps stderr to warnings so the report is the only output.
 *
 * @param options The task's `--verbose` and `--json` flags.
 * @returns The level for {@linkcode setUpLogging}.
 */
export function taskLogLevel(
  options: { readonly verbose: boolean; readonly json: boolean },
): "debug" | "info" | "warning" {
  return options.verbose ? "debug" : options.json ? "warning" : "info";
}

/** The rotation variables, and which of them the shell overrides. */
export interface NotedRotationVariables {
  /** The values by name, as {@linkcode readRotationVariables} returns them. */
  readonly variables: Record<string, string | undefined>;
  /** The variables the shell environment overrides, in reading order. */
  readonly overrides: string[];
}

/**
 * Reads the rotation variables and prints an {@linkcode overrideNotice} to
 * stderr for each variable the shell overrides.
 *
 * @param envFile The env file.
 * @param names The variables to read (default {@linkcode ROTATION_ENV_VARS});
 *   rotate and promote read `PROVIDER_ENV_VARS` (the `AUTH_*` names too).
 * @returns The values and the overridden variables' names.
 */
export async function readRotationVariablesNoting(
  envFile: string,
  names: readonly string[] = ROTATION_ENV_VARS,
): Promise<NotedRotationVariables> {
  const overrides: string[] = [];
  const variables = await readRotationVariables(envFile, (override) => {
    overrides.push(override.variable);
    console.error(overrideNotice(override));
  }, names);
  return { variables, overrides };
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

/** A failure as the tasks report it. */
export interface TaskFailure {
  /** For people: what happened, what to fix. */
  readonly message: string;
  /** The process exit code. */
  readonly exitCode: number;
  /** The stable code, such as `ENV_CONFIG_INVALID`. */
  readonly code: string;
  /** The code of the cause, when there is one. */
  readonly causeCode?: string;
}

const USAGE_CODES = new Set([
  "CONFIG_INVALID",
  "ENV_CONFIG_INVALID",
  "ROTATION_FILE_NOT_WRITABLE",
  "ROTATION_JOURNAL_STALE",
  "ROTATION_JOURNAL_MISMATCH",
  "ENV_OVERRIDDEN",
  "ENV_FILE_EXISTS",
]);

/**
 * Turns an error into a message for people, a code and an exit code. Never
 * a stack trace; never a secret (the library's errors hold none).
 *
 * @param error What was thrown.
 * @param task The task's name, for the permission hint.
 * @param permissionHint What to say about a denied permission instead of the
 * `deno task` advice, for an entry point whose permissions are set elsewhere.
 * @returns The message, the codes and the exit code.
 */
export function describeFailure(
  error: unknown,
  task: string,
  permissionHint?: string,
): TaskFailure {
  const denied = deniedPermission(error);
  if (denied) {
    const hint = permissionHint ??
      `The ${task} task runs with the permission set "operator" in deno.json ` +
        `(deno task ${task}); it allows only the files in the directory of deno.json, the GENESYS_* variables ` +
        `and the Genesys Cloud hosts. For another file or host, add the flag Deno names ` +
        `(for example --allow-read=<dir> --allow-write=<dir>) to a deno run -P=operator tasks/${task}.ts command.`;
    return {
      exitCode: EXIT_USAGE,
      code: "PERMISSION_DENIED",
      message: `Deno denied a permission: ${
        denied.message.replace(/, run again with.*$/, "")
      }. ${hint}`,
    };
  }
  if (error instanceof UsageError) {
    return { exitCode: EXIT_USAGE, code: "USAGE", message: error.message };
  }
  if (isParseArgsError(error)) {
    return {
      exitCode: EXIT_USAGE,
      code: "USAGE",
      message: `${(error as Error).message}. Run with --help for the options.`,
    };
  }
  if (error instanceof DualSecretAuthError) {
    const code = error.code as string;
    const cause = error.cause instanceof DualSecretAuthError
      ? error.cause.code as string
      : undefined;
    const exitCode = code === "ROTATION_LOCKED" || code === "ENV_CHANGED"
      ? EXIT_LOCKED
      : code === "ABORTED"
      ? EXIT_INTERRUPTED
      : USAGE_CODES.has(code)
      ? EXIT_USAGE
      : EXIT_FAILED;
    return {
      exitCode,
      code,
      ...(cause ? { causeCode: cause } : {}),
      message: explain(error).message,
    };
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return {
      exitCode: EXIT_FAILED,
      code: "OS_PERMISSION_DENIED",
      message: `The operating system denied access: ${error.message}`,
    };
  }
  const name = error instanceof Error ? error.name : "error";
  const detail = error instanceof Error ? `: ${error.message}` : "";
  return {
    exitCode: EXIT_FAILED,
    code: "UNEXPECTED",
    message: `Unexpected ${name}${detail}`,
  };
}

/** A task's entry: runs with the given arguments and resolves to an exit code. */
export type TaskMain = (args: readonly string[]) => Promise<number>;

/**
 * Prints a failure: one line on stderr, or with `--json` an object on
 * stdout (`ok: false`, `error.code`, `error.causeCode`, `error.message`).
 *
 * @param failure The failure.
 * @param json Whether `--json` was asked for.
 * @param extra More fields of `error` (state, next step).
 */
export function printFailure(
  failure: TaskFailure,
  json: boolean,
  extra: Record<string, unknown> = {},
): void {
  if (json) {
    console.log(JSON.stringify(
      {
        ok: false,
        exitCode: failure.exitCode,
        error: {
          code: failure.code,
          ...(failure.causeCode ? { causeCode: failure.causeCode } : {}),
          message: failure.message,
          ...extra,
        },
      },
      null,
      2,
    ));
  } else {
    console.error(failure.message);
  }
}

/**
 * Runs a task's entry and turns whatever it throws into one line on stderr
 * (or JSON on stdout with `--json`) and an exit code, so every entry point
 * (the task modules themselves and tasks/cli.ts) reports failures the same
 * way. It never exits the process.
 *
 * @param task The task's name, such as `rotate`.
 * @param main The task's entry.
 * @param args The task's arguments.
 * @param permissionHint See {@linkcode describeFailure}.
 * @param program The program the operator typed, when not `deno task`
 *   (`genesys-rotate`): the parser's messages and `--version` then name it.
 * @returns The exit code.
 */
export async function runTask(
  task: string,
  main: TaskMain,
  args: readonly string[],
  permissionHint?: string,
  program?: string,
): Promise<number> {
  const outer = typedProgram;
  typedProgram = program ?? outer;
  try {
    return await main(args);
  } catch (error) {
    const described = describeFailure(error, task, permissionHint);
    const failure = {
      ...described,
      message: redactUserinfo(described.message),
    };
    printFailure(failure, args.includes("--json"));
    return failure.exitCode;
  } finally {
    typedProgram = outer;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** A parser option, as `node:util` `parseArgs` takes it. */
export interface TaskOption {
  /** Whether the option takes a value. */
  readonly type: "boolean" | "string";
  /** A one-letter alias, such as `h`. @default undefined */
  readonly short?: string;
  /** Whether the option may repeat. @default false */
  readonly multiple?: boolean;
  /** Its value when not given. @default undefined */
  readonly default?: string | boolean;
  /**
   * Why this command does nothing with the flag, when it is a common flag
   * ({@linkcode COMMON_FLAGS}) that has nothing to act on here, such as
   * `--dry-run` on a command that changes nothing. `--help` lists it with
   * this reason; a value given to it gets a notice on stderr.
   * @default undefined
   */
  readonly noEffect?: string;
}

/** A task's option table: option name (without `--`) to its parser settings. */
export type TaskOptions = Readonly<Record<string, TaskOption>>;

/**
 * The options every task accepts: `--help` and `--version`. Spread into each
 * task's own table so one parser knows them all.
 */
export const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h", default: false },
  version: { type: "boolean", short: "V", default: false },
} as const satisfies TaskOptions;

/**
 * The flags every command accepts, as issue 21's "one CLI" asks: a script
 * or an operator can pass them to any command. Where one has nothing to act
 * on, the command's table says why ({@linkcode TaskOption.noEffect}).
 */
export const COMMON_FLAGS: readonly string[] = [
  "dry-run",
  "yes",
  "json",
  "env-file",
  "kv",
  "redis",
  "prefix",
  "help",
  "version",
];

/**
 * `--dry-run` and `--yes` for a command that changes nothing and asks
 * nothing: accepted, and `--help` says what they mean there.
 *
 * @param command The command's name, such as `verify`.
 * @returns The two options, to spread into the command's table.
 */
export function readOnlyOptions(command: string): {
  readonly "dry-run": TaskOption & { type: "boolean"; default: false };
  readonly yes: TaskOption & { type: "boolean"; default: false };
} {
  return {
    "dry-run": {
      type: "boolean",
      default: false,
      noEffect: `${command} changes nothing anyway`,
    },
    yes: {
      type: "boolean",
      default: false,
      noEffect: `${command} asks no question`,
    },
  };
}

/**
 * The store flags (`--kv`, `--redis`, `--prefix`) for a command that reads no
 * fleet store: accepted, with a notice that they do nothing there.
 *
 * @param reason Why, and where a store is read instead.
 * @returns The three options, to spread into the command's table.
 */
export function noStoreOptions(reason: string): {
  readonly kv: TaskOption & { type: "string" };
  readonly redis: TaskOption & { type: "string" };
  readonly prefix: TaskOption & { type: "string" };
} {
  return {
    kv: { type: "string", noEffect: reason },
    redis: { type: "string", noEffect: reason },
    prefix: { type: "string", noEffect: reason },
  };
}

/** The argument placeholder `--help` shows for a common flag's value. */
const VALUE_NAMES: Readonly<Record<string, string>> = {
  "env-file": "<path>",
  kv: "<path>",
  redis: "<url|env>",
  prefix: "<a/b>",
};

/**
 * A command's `--help` with the flags it accepts but does nothing with
 * listed before its exit codes, grouped by reason, so the text cannot forget
 * one (the table test reads `--help` against the parser's table).
 *
 * @param help The command's own `--help` text.
 * @param options The command's option table.
 * @returns The text to print.
 */
export function helpWithNoEffect(help: string, options: TaskOptions): string {
  const byReason = new Map<string, string[]>();
  for (const [name, option] of Object.entries(options)) {
    if (option.noEffect === undefined) continue;
    const value = option.type === "string"
      ? ` ${VALUE_NAMES[name] ?? "<value>"}`
      : "";
    byReason.set(option.noEffect, [
      ...(byReason.get(option.noEffect) ?? []),
      `--${name}${value}`,
    ]);
  }
  if (byReason.size === 0) return help;
  const indent = " ".repeat(21);
  const lines = ["Accepted as by every command, with nothing to do here:"];
  for (const [reason, flags] of byReason) {
    const head = `  ${flags.join(", ")}`;
    const words = wrap(reason, 78 - indent.length);
    if (head.length < indent.length - 1) {
      lines.push(`${head.padEnd(indent.length)}${words[0]}`);
      lines.push(...words.slice(1).map((line) => indent + line));
    } else {
      lines.push(head, ...words.map((line) => indent + line));
    }
  }
  const section = lines.join("\n");
  const at = help.search(/^Exit codes:$/m);
  return at === -1
    ? `${help.trimEnd()}\n\n${section}\n`
    : `${help.slice(0, at)}${section}\n\n${help.slice(at)}`;
}

/** Words wrapped to lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return line === "" ? lines : [...lines, line];
}

/** The package version, from deno.json. */
export const VERSION: string = denoJson.version;

/**
 * The edit distance (Levenshtein) between two words, for "did you mean".
 *
 * @param a One word.
 * @param b The other.
 * @returns The number of single-character edits between them.
 */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/**
 * The known option closest to an unknown one, when it is close enough to be
 * a typo (at most a third of its length, and at most 3 edits).
 *
 * @param typed The unknown option as typed, such as `--frce` or `--frce=1`.
 * @param options The task's option table.
 * @returns Such as `--force`, or undefined.
 */
export function didYouMean(
  typed: string,
  options: TaskOptions,
): string | undefined {
  const word = typed.replace(/^-+/, "").replace(/=.*$/, "");
  let best: { name: string; distance: number } | undefined;
  for (const name of Object.keys(options)) {
    const distance = editDistance(word, name);
    if (best === undefined || distance < best.distance) {
      best = { name, distance };
    }
  }
  if (best === undefined) return undefined;
  const bound = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  // A prefix of a long option (`--prop` for `--propagation-timeout`) is a
  // typo too, though far by edits.
  const prefix = word.length >= 3 &&
      Object.keys(options).filter((name) => name.startsWith(word)).length === 1
    ? Object.keys(options).find((name) => name.startsWith(word))
    : undefined;
  if (best.distance <= bound) return `--${best.name}`;
  return prefix === undefined ? undefined : `--${prefix}`;
}

/** What {@linkcode parseTaskArgs} returns: the values, unless it already answered. */
export type ParsedTaskArgs = Record<string, string | boolean | undefined>;

/**
 * Options a command's other variant takes, such as rotate's fleet options
 * (`--every`, `--force`) that only `--kv` or `--redis` selects: given
 * without the selector, they are named as such, not as unknown.
 */
export interface VariantOptions {
  /** The variant's option table. */
  readonly options: TaskOptions;
  /** What selects it, such as `--kv <path> or --redis env`. */
  readonly selectedBy: string;
  /** What it is, such as `a fleet's rotation`. */
  readonly what: string;
}

/**
 * The program the operator typed, when it is not `deno task`: the compiled
 * `genesys-rotate` sets it while a subcommand runs (see {@linkcode runTask}),
 * so the parser's messages and `--version` name what was typed.
 */
let typedProgram: string | undefined;

/**
 * The command as the operator typed it: `deno task rotate`, or under the
 * compiled program `genesys-rotate rotate`.
 *
 * @param command The command as `deno task` runs it, such as `deno task rotate`.
 * @returns The command as typed.
 */
export function typedCommand(command: string): string {
  return typedProgram === undefined
    ? command
    : command.replace(/^deno task /, `${typedProgram} `);
}

/**
 * The one parser of every task: `--help` and `--version` answered at once
 * (even beside other mistakes), an unknown option refused with a "did you
 * mean", positionals refused, every other option parsed by `parseArgs`
 * against the task's own table (the table `--help` is tested against).
 * Each common flag the command does nothing with ({@linkcode TaskOption.noEffect})
 * is listed in `--help`, and a value given to one gets a notice.
 *
 * @param command The command as `deno task` runs it, such as `deno task rotate`.
 * @param options The task's option table (with {@linkcode COMMON_OPTIONS}).
 * @param help The task's `--help` text.
 * @param args The arguments.
 * @param variant The options of the command's other variant, if it has one.
 * @returns The values, or undefined when `--help` or `--version` was answered
 *   (the task then exits 0).
 * @throws {UsageError} On an unknown option, a missing value or a positional.
 */
export function parseTaskArgs<const O extends TaskOptions>(
  command: string,
  options: O,
  help: string,
  args: readonly string[],
  variant?: VariantOptions,
):
  | {
    [K in keyof O]: O[K]["type"] extends "boolean"
      ? O[K]["default"] extends boolean ? boolean : boolean | undefined
      : O[K]["default"] extends string ? string
      : string | undefined;
  }
  | undefined {
  const typed = typedCommand(command);
  const until = args.indexOf("--");
  const flags = until === -1 ? args : args.slice(0, until);
  if (flags.includes("--help") || flags.includes("-h")) {
    console.log(helpWithNoEffect(help, options));
    return undefined;
  }
  if (flags.includes("--version") || flags.includes("-V")) {
    console.log(`${typed} ${VERSION}`);
    return undefined;
  }
  for (const arg of flags) {
    if (!arg.startsWith("--")) continue;
    const name = arg.slice(2).replace(/=.*$/, "");
    if (Object.hasOwn(options, name)) continue;
    if (variant !== undefined && Object.hasOwn(variant.options, name)) {
      throw new UsageError(
        `--${name} belongs to ${variant.what}: add ${variant.selectedBy}. Run ${typed} --help for the options.`,
      );
    }
    const guess = didYouMean(arg, { ...variant?.options, ...options });
    throw new UsageError(
      `unknown option --${name}${
        guess ? `; did you mean ${guess}?` : "."
      } Run ${typed} --help for the options.`,
    );
  }
  const table: Record<string, TaskOption> = {};
  for (const [name, { noEffect: _, ...option }] of Object.entries(options)) {
    table[name] = option;
  }
  let values: ParsedTaskArgs;
  try {
    values = parseArgs({
      args: [...args],
      options: table as ParseArgsOptionsConfig,
      strict: true,
      allowPositionals: false,
    }).values as ParsedTaskArgs;
  } catch (error) {
    if (!isParseArgsError(error)) throw error;
    throw new UsageError(
      `${
        (error as Error).message.replace(/\s*To specify a positional.*$/s, "")
      }. Run ${typed} --help for the options.`,
    );
  }
  // A value the operator meant for something: say it went nowhere, once
  // per reason (--kv and --prefix together are one line).
  const unused = new Map<string, string[]>();
  for (const [name, option] of Object.entries(options)) {
    if (option.noEffect === undefined || option.type !== "string") continue;
    if (values[name] === undefined) continue;
    unused.set(option.noEffect, [
      ...(unused.get(option.noEffect) ?? []),
      `--${name}`,
    ]);
  }
  for (const [reason, names] of unused) {
    console.error(
      `Notice: ${names.join(" and ")} ${
        names.length === 1 ? "has" : "have"
      } no effect in ${typed}: ${reason}.`,
    );
  }
  // deno-lint-ignore no-explicit-any
  return values as any;
}

/**
 * The command line a lock records (the env file's lock file, the store's
 * lock note, shown to whoever finds it held), with the password of every URL
 * in it hidden: `--redis redis://:password@host` must not be written down.
 *
 * @param task The task, such as `rotate`.
 * @param args Its arguments.
 * @returns Such as `rotate --redis redis://***@host --yes`.
 */
export function commandLine(task: string, args: readonly string[]): string {
  return redactUserinfo(`${task} ${args.join(" ")}`.trim());
}

/**
 * Hides the password (the userinfo) of every URL in a message, such as a
 * `--redis redis://:password@host` echoed back by a library's error.
 *
 * @param text The message.
 * @returns The same message with `scheme://***@host`.
 */
export function redactUserinfo(text: string): string {
  return text.replace(
    /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi,
    "$1***@",
  );
}

/**
 * A label given on the command line (`--to`, `--from`, `--compromised`),
 * refused in the operator's words when it is not blue or green.
 *
 * @param flag The flag, such as `--to`.
 * @param text Its value, if given.
 * @returns `blue`, `green`, or undefined when not given.
 * @throws {UsageError} Such as `--to purple: not a label; use blue or green`.
 */
export function labelOption(
  flag: string,
  text: string | undefined,
): "blue" | "green" | undefined {
  if (text === undefined) return undefined;
  const label = text.trim().toLowerCase();
  if (label === "blue" || label === "green") return label;
  throw new UsageError(
    `${flag} ${text}: not a label; use blue or green. Nothing was changed.`,
  );
}

/**
 * The Redis URL named by `--redis`: `env` reads `REDIS_URL` (so a password
 * never appears on a command line), refused when it is unset rather than
 * falling back to a default Redis.
 *
 * @param text The option's value.
 * @param variable Where `env` looks `REDIS_URL` up (default the shell's
 *   environment; `deno task fleet --env-file` adds an env file behind it).
 * @returns The URL.
 * @throws {UsageError} When `--redis env` finds `REDIS_URL` unset or blank.
 */
export function redisUrlOption(
  text: string,
  variable: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string {
  const url = text === "env" ? variable("REDIS_URL") : text;
  if (url === undefined || url.trim() === "") {
    throw new UsageError(
      text === "env"
        ? "--redis env: REDIS_URL is not set; export it (export REDIS_URL=redis://host:port) and run the command again; nothing was read or changed"
        : "--redis needs a URL, or env to read REDIS_URL",
    );
  }
  return url;
}
