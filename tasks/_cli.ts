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
  AbortedError,
  AllCredentialsRejectedError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../src/errors.ts";
import { readEnvValues } from "../src/rotation/env_file.ts";
import {
  clientSecretEnvVar,
  ROTATION_ENV_VARS,
} from "../src/rotation/env_config.ts";

/** Exit code for a failed operation (the active credential unusable, a failed rotation). */
export const EXIT_FAILED = 1;
/** Exit code for bad input: arguments, configuration, missing permissions, a file that cannot be written. */
export const EXIT_USAGE = 2;
/** Exit code when another rotate, promote, setup or incident holds the env file's lock, or changed the file meanwhile. */
export const EXIT_LOCKED = 3;
/** Exit code when interrupted by SIGINT or SIGTERM (128 + 2, as shells report Ctrl-C). */
export const EXIT_INTERRUPTED = 130;

/** The exit codes as `--help` and the README list them. */
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

/** How a connection failed, in an operator's words, found along the cause chain. */
export function networkProblem(error: unknown): string | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; depth++) {
    const text = `${at.name} ${at.message}`;
    if (
      /dns error|failed to lookup|name or service not known|no such host/i.test(
        text,
      )
    ) {
      return "DNS: the host name does not resolve";
    }
    if (/connection refused|ECONNREFUSED/i.test(text)) {
      return "connection refused: nothing listens at that address and port";
    }
    if (/certificate|tls|ssl|handshake/i.test(text)) {
      return "TLS: the server's certificate was not accepted";
    }
    if (/TimeoutError|timed out|timeout/i.test(text)) {
      return "timeout: no answer in time";
    }
    at = at.cause;
  }
  return undefined;
}

/**
 * The operator's explanation of an error: variable names and commands, not
 * library calls. Never a secret, never server error text.
 *
 * @param error What was thrown (a cause, usually).
 * @returns The code and the words.
 */
export function explain(error: unknown): { code: string; message: string } {
  if (error instanceof OperatorError) {
    return { code: error.code, message: error.message };
  }
  if (error instanceof AbortedError) {
    return { code: error.code, message: "interrupted (Ctrl-C or SIGTERM)" };
  }
  if (error instanceof CredentialRejectedError) {
    // The OAuth error code comes from the server: shown only when it looks
    // like one (RFC 6749 codes are short snake_case words).
    const oauth = /^[a-z_]{1,40}$/.test(error.oauthError)
      ? error.oauthError
      : "an unrecognised error code";
    return {
      code: error.code,
      message:
        `the token endpoint rejected the credential "${error.label}" (${oauth}, HTTP ${error.status}); ` +
        `check ${
          variableOf(error.label)
        } and the client id beside it, and that the region is right`,
    };
  }
  if (error instanceof TokenEndpointUnavailableError) {
    const problem = networkProblem(error) ??
      (error.status ? `HTTP ${error.status}` : "no usable answer");
    return {
      code: error.code,
      message:
        `the token endpoint could not be reached (${problem}); check GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL and the network, then run the command again`,
    };
  }
  if (error instanceof AllCredentialsRejectedError) {
    return {
      code: error.code,
      message: `every credential was rejected by the token endpoint; check ${
        error.credentials.map((c) => variableOf(c.label)).join(" and ")
      } (and the client ids beside them), and that the region is right`,
    };
  }
  if (error instanceof RateLimitedError) {
    return {
      code: error.code,
      message:
        "the token endpoint is rate limiting requests (HTTP 429); wait a minute, then run the command again",
    };
  }
  const serverWords = new Set([
    "TOKEN_REQUEST_FAILED",
    "INVALID_TOKEN_RESPONSE",
  ]);
  if (error instanceof DualSecretAuthError && serverWords.has(error.code)) {
    // Their messages may quote the server, which may echo what was sent.
    const status = (error as { status?: number }).status;
    return {
      code: error.code,
      message: `the token endpoint answered with an error (${error.code}${
        status ? `, HTTP ${status}` : ""
      }); check GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL, then run the command again`,
    };
  }
  if (error instanceof DualSecretAuthError) {
    const network = error.code === "GENESYS_API_UNAVAILABLE"
      ? networkProblem(error)
      : undefined;
    return {
      code: error.code,
      message: network
        ? `the Platform API could not be reached (${network}); check GENESYS_ENVIRONMENT or GENESYS_API_URL and the network, then run the command again`
        : error.message,
    };
  }
  return {
    code: "UNEXPECTED",
    message: error instanceof Error ? error.name : "error",
  };
}

function variableOf(label: string): string {
  return label === "admin"
    ? "GENESYS_ADMIN_CLIENT_SECRET"
    : clientSecretEnvVar(label);
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
 * @returns The values by name.
 */
export async function readRotationVariables(
  envFile: string | undefined,
  onOverride: (override: EnvOverride) => void = () => {},
): Promise<Record<string, string | undefined>> {
  const values: Record<string, string | undefined> = {};
  const fromShell: Record<string, string | undefined> = {};
  for (const name of ROTATION_ENV_VARS) fromShell[name] = Deno.env.get(name);
  let fromFile: Record<string, string> = {};
  if (envFile !== undefined) {
    try {
      fromFile = readEnvValues(await Deno.readTextFile(envFile));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  for (const name of ROTATION_ENV_VARS) {
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
 * The `--env-file` option of a task, refused when blank.
 *
 * @param path The option's value.
 * @returns The same path.
 * @throws {UsageError} When the path is empty or only spaces.
 */
export function envFileOption(path: string): string {
  if (path.trim() === "") throw new UsageError("--env-file needs a path");
  return path;
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
 * @returns The values and the overridden variables' names.
 */
export async function readRotationVariablesNoting(
  envFile: string,
): Promise<NotedRotationVariables> {
  const overrides: string[] = [];
  const variables = await readRotationVariables(envFile, (override) => {
    overrides.push(override.variable);
    console.error(overrideNotice(override));
  });
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
    printFailure(failure, args.includes("--json"));
    return failure.exitCode;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}
