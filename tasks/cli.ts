/**
 * `genesys-rotate`: the verify and rotate tasks as one program, for
 * `deno compile` (`deno task compile`) and for `deno run -P=operator tasks/cli.ts`.
 * The compiled binary has its permissions fixed at build time, so it needs
 * neither Deno nor deno.json where it runs.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { main as rotate } from "./rotate.ts";
import { EXIT_USAGE, runTask, type TaskMain } from "./_cli.ts";
import { main as verify } from "./verify.ts";

/** The program's name, as built by `deno task compile`. */
export const PROGRAM = "genesys-rotate";

/** The env file both subcommands read when no `--env-file` is given. */
export const DEFAULT_ENV_FILE = ".env";

const SUBCOMMANDS: Readonly<Record<string, TaskMain>> = {
  verify,
  rotate,
};

const USAGE = `Usage: ${PROGRAM} <command> [options]

Zero-downtime rotation of Genesys Cloud OAuth client secrets (blue/green).

Commands:
  verify   check that every configured credential gets a token and can call the API
  rotate   regenerate the standby credential's secret, store it, optionally promote it

Both read the GENESYS_* variables from the environment and from ./${DEFAULT_ENV_FILE}
(or --env-file <path>; the file wins). Run "${PROGRAM} <command> --help" for
the options of a command.

Options:
  -h, --help     show this help
  -V, --version  show the version
`;

/**
 * What a denied permission means here: unlike `deno task`, the compiled
 * program cannot be given more permissions when it runs.
 */
const PERMISSION_HINT =
  `${PROGRAM} runs with permissions fixed when it was built (deno task compile; ` +
  `the set "operator" in deno.json): only the files .env, .env.tmp, .env.rotation.json ` +
  `and .env.rotation.json.tmp in the current directory, the GENESYS_* variables and NO_COLOR, ` +
  `and the hosts of the Genesys Cloud region domains plus 127.0.0.1 and localhost. ` +
  `Run it in the directory that holds .env, or rebuild it with the extra --allow-* flag.`;

/**
 * Runs the program: dispatches to a subcommand and turns every failure into
 * one line on stderr and an exit code. It never exits the process.
 *
 * @param args The command-line arguments, the subcommand first.
 * @returns The exit code: 0 on success, 1 on a failed operation, 2 on bad input.
 */
export async function runCli(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "-h" || command === "--help") {
    console.log(USAGE);
    return 0;
  }
  if (command === "-V" || command === "--version") {
    console.log(`${PROGRAM} ${denoJson.version}`);
    return 0;
  }
  if (command === undefined || !Object.hasOwn(SUBCOMMANDS, command)) {
    console.error(
      command === undefined
        ? "Missing command."
        : `Unknown command "${command}".`,
    );
    console.error(USAGE);
    return EXIT_USAGE;
  }
  // `deno task` loads .env with --env-file; here the task reads it itself.
  // A later --env-file from the caller overrides this default.
  return await runTask(
    command,
    SUBCOMMANDS[command],
    ["--env-file", DEFAULT_ENV_FILE, ...rest],
    PERMISSION_HINT,
  );
}

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
