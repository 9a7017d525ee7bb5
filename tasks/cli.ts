/**
 * `genesys-rotate`: every operator command (verify, rotate, promote, setup,
 * incident, fleet, status) as one program, for
 * `deno compile` (`deno task compile`) and for `deno run -P=operator tasks/cli.ts`.
 * The compiled binary has its permissions fixed at build time, so it needs
 * neither Deno nor deno.json where it runs.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { main as fleet } from "./fleet.ts";
import { main as incident } from "./incident.ts";
import { main as promote } from "./promote.ts";
import { main as rotate } from "./rotate.ts";
import { main as setup } from "./setup.ts";
import { main as status } from "./status.ts";
import {
  didYouMean,
  EXIT_CODES_HELP,
  EXIT_USAGE,
  runTask,
  type TaskMain,
} from "./_cli.ts";
import { FLEET_EXIT_CODES_HELP } from "./_fleet.ts";
import { main as verify } from "./verify.ts";

/** The program's name, as built by `deno task compile`. */
export const PROGRAM = "genesys-rotate";

/** The env file the subcommands read when no `--env-file` is given. */
export const DEFAULT_ENV_FILE = ".env";

const SUBCOMMANDS: Readonly<Record<string, TaskMain>> = {
  verify,
  rotate,
  promote,
  setup,
  incident,
  fleet,
  status,
};

/** The subcommands that read an env file (fleet reads only its store). */
const READS_ENV_FILE = new Set([
  "verify",
  "rotate",
  "promote",
  "setup",
  "incident",
  "status",
]);

const USAGE = `Usage: ${PROGRAM} <command> [options]

Zero-downtime rotation of Genesys Cloud OAuth client secrets (blue/green).

Commands:
  verify    check that every configured credential gets a token and can call the API
  rotate    regenerate the standby credential's secret, store it, prove it
  promote   switch GENESYS_ACTIVE to a credential that is proven to work
  setup     create the twin of an existing OAuth client and store it
  incident  respond to a leaked secret: take it out of service, regenerate it
  fleet     list a fleet's live instances (--kv <path> or --redis env)
  status    the active label, each secret's age, an unfinished rotation, the schedule

All but fleet read the GENESYS_* variables from ./${DEFAULT_ENV_FILE} (or --env-file <path>);
a variable set in the shell environment wins, with a notice. Run
"${PROGRAM} <command> --help" for the options of a command.

Options:
  -h, --help     show this help
  -V, --version  show the version

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/**
 * What a denied permission means here: unlike `deno task`, the compiled
 * program cannot be given more permissions when it runs.
 */
const PERMISSION_HINT =
  `${PROGRAM} runs with permissions fixed when it was built (deno task compile; ` +
  `the set "operator" in deno.json): only files in the directory it runs in, ` +
  `the GENESYS_* and AUTH_* variables, NO_COLOR, DUAL_SECRET_SEAL_KEY and REDIS_URL, ` +
  `and the hosts of the Genesys Cloud regions and of the identity providers (Okta, Entra ID, Cognito, Auth0) ` +
  `plus 127.0.0.1 and localhost. ` +
  `Run it in the directory that holds .env, or rebuild it with the extra --allow-* flag.`;

/**
 * Runs the program: dispatches to a subcommand and turns every failure into
 * one line on stderr and an exit code. It never exits the process.
 *
 * @param args The command-line arguments, the subcommand first.
 * @returns The exit code: 0 on success, 1 on a failed operation, 2 on bad
 *   input, 3 when the env file is locked, 130 when interrupted.
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
    const guess = command === undefined ? undefined : didYouMean(
      command,
      Object.fromEntries(
        Object.keys(SUBCOMMANDS).map((name) => [name, { type: "boolean" }]),
      ),
    )?.replace(/^--/, "");
    console.error(
      command === undefined
        ? "Missing command."
        : `Unknown command "${command}"${
          guess ? `; did you mean ${guess}?` : "."
        }`,
    );
    console.error(USAGE);
    return EXIT_USAGE;
  }
  // `deno task` loads .env with --env-file; here the task reads it itself.
  // A later --env-file from the caller overrides this default.
  return await runTask(
    command,
    SUBCOMMANDS[command],
    READS_ENV_FILE.has(command)
      ? ["--env-file", DEFAULT_ENV_FILE, ...rest]
      : rest,
    PERMISSION_HINT,
    PROGRAM,
  );
}

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
