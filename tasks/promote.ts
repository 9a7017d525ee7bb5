/**
 * `deno task promote`: switch traffic to a credential whose secret is in
 * place. Proves the target with a real token request (with the provider's
 * scope and token parameters), then writes `GENESYS_ACTIVE` (or, with
 * `AUTH_PROVIDER`, `AUTH_ACTIVE`) to the env file. Never regenerates anything.
 *
 * @module
 */
import { ROTATION_LABELS } from "../src/rotation/env_config.ts";
import { PROVIDER_ENV_VARS, readProviderEnv } from "../src/providers/env.ts";
import { createFileJournal } from "../src/rotation/journal.ts";
import { checkWritable } from "../src/rotation/preflight.ts";
import {
  PromotionError,
  type PromotionReport,
  runPromotion,
} from "../src/rotation/promotion.ts";
import { setEnvFileValue } from "../src/rotation/sinks.ts";
import {
  commandLine,
  COMMON_OPTIONS,
  describeFailure,
  envFileOption,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  explain,
  failpointHook,
  labelOption,
  parseTaskArgs,
  printFailure,
  readRotationVariablesNoting,
  reportingRateLimits,
  runTask,
  setUpLogging,
  taskLogLevel,
  type TaskOptions,
  UsageError,
} from "./_cli.ts";
import { FLEET_EXIT_CODES_HELP } from "./_fleet.ts";
import {
  lockUnchanged,
  noticePreviousHolder,
  onInterrupt,
  refuseDuringIncident,
  refuseWrittenOverrides,
} from "./_signals.ts";
import {
  main as promoteFleet,
  OPTIONS as FLEET_OPTIONS,
} from "./_promote_fleet.ts";

/** The options the promote parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  to: { type: "string" },
  "env-file": { type: "string", default: ".env" },
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
} as const satisfies TaskOptions;

const HELP = `Usage: deno task promote [options]
       genesys-rotate promote [options]

Switches traffic to the standby credential (or --to LABEL): proves it gets a
token with the secret in the env file, then sets GENESYS_ACTIVE there. It never
regenerates a secret. Services that follow the env file (envFileSource) switch
within 2 seconds, each verifying the target before it switches. With
AUTH_PROVIDER set (okta, entra, keycloak, cognito, auth0) it proves the target
with that provider's AUTH_SCOPE / AUTH_AUDIENCE and sets AUTH_ACTIVE.

Options:
  --to <label>       the label to make active (default: the label the last rotate
                     rotated, per <env-file>.rotation.json; so running it again
                     is a no-op, never a switch back)
  --env-file <path>  the env file to read and update (default .env)
  --dry-run          prove the target and check the file; change nothing
  --yes              do not ask for confirmation (required without a terminal)
  --json             print the outcome (success or failure) as JSON

A fleet's promotion through its store (details: promote --kv x --help):
  --kv <path>        the fleet's Deno KV database (it must exist)
  --redis <url|env>  or the fleet's Redis; env reads REDIS_URL, which keeps a
                     password off the command line (else redis://host:port)
  --prefix <a/b>     the fleet's key prefix (default dual-secret-auth)
  --scope <scope>    the scope the service requests, if any (default AUTH_SCOPE)
  --timeout <s>      how long to wait for the instances, each wait (default 60)
  --allow-empty      proceed although no live instance reports in the namespace
  --expect-instances <n>
                     proceed only when at least n live instances report
  --verbose          log debug details to stderr
  -h, --help         show this help
  -V, --version      show the version

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/**
 * Runs the promote task. Errors are thrown, not reported: wrap it in
 * {@linkcode runTask} for a one-line message and an exit code.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code; the process is left running.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  // A fleet's promotion through its Deno KV store: tasks/_promote_fleet.ts.
  if (args.some((arg) => /^--(kv|redis)(=|$)/.test(arg))) {
    return await promoteFleet(args);
  }
  const values = parseTaskArgs("deno task promote", OPTIONS, HELP, args, {
    options: FLEET_OPTIONS,
    selectedBy: "--kv <path> or --redis env",
    what: "a fleet's promotion through its store",
  });
  if (values === undefined) return 0;
  const envFile = envFileOption(values["env-file"]);
  const dryRun = values["dry-run"];
  const to = labelOption("--to", values.to);
  const log = await setUpLogging("promote", taskLogLevel(values));
  const { variables, overrides } = await readRotationVariablesNoting(
    envFile,
    PROVIDER_ENV_VARS,
  );
  refuseWrittenOverrides(overrides, envFile);
  const config = readProviderEnv(variables);
  const journal = createFileJournal(`${envFile}.rotation.json`);
  // Without --to: the label the last rotation rotated, so that running the
  // same command again (after a crash, say) is a no-op, never a flip back.
  const lastRotated = await journal.read().then(
    (record) => record?.standby,
    () => undefined,
  );
  if (
    to === undefined &&
    (lastRotated === undefined ||
      !(ROTATION_LABELS as readonly string[]).includes(lastRotated))
  ) {
    throw new UsageError(
      `No rotation is recorded in ${envFile}.rotation.json, so promote cannot tell which label to make active. ` +
        `Name it: deno task promote --to ${config.standby} (the standby now).`,
    );
  }
  const target = to ?? lastRotated!;

  if (!dryRun && !values.yes && target !== config.active) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to promote without confirmation: there is no terminal to ask on. " +
          "Pass --yes to promote, or --dry-run to only check.",
      );
    }
    if (!confirm(`Switch traffic from "${config.active}" to "${target}"?`)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }
  await using lock = dryRun ? undefined : await lockUnchanged(
    envFile,
    commandLine("promote", args),
    variables,
  );
  noticePreviousHolder(lock);
  await refuseDuringIncident(envFile);
  const writable = await checkWritable(envFile);
  for (const warning of writable.warnings) log.warn(warning);

  const failpoint = failpointHook();
  await using interrupt = onInterrupt();
  let report: PromotionReport;
  try {
    report = await runPromotion({
      credentials: config.credentials,
      active: config.active,
      to: target,
      tokenUrl: config.tokenUrl,
      ...(config.scope === undefined ? {} : { scope: config.scope }),
      ...(config.tokenParams === undefined
        ? {}
        : { tokenParams: config.tokenParams }),
      dryRun,
      journal,
      fetch: reportingRateLimits((line) => console.error(line)),
      signal: interrupt.signal,
      onProgress: (line) => console.error(line),
      publishActive: async (label) => {
        await setEnvFileValue(envFile, config.activeVariable, label);
        await failpoint?.("promote:after");
      },
    });
  } catch (error) {
    if (!(error instanceof PromotionError)) throw error;
    const cause = describeFailure(error.cause, "promote");
    const exitCode = error.interrupted ? EXIT_INTERRUPTED : EXIT_FAILED;
    printFailure(
      {
        exitCode,
        code: error.code,
        causeCode: cause.code,
        message: `Promotion of "${error.target}" failed: ${
          explain(error.cause, config.names).message.replace(/\.$/, "")
        }.\nState: ${error.state}\nNext: ${error.nextStep}`,
      },
      values.json,
      {
        active: error.active,
        target: error.target,
        state: error.state,
        nextStep: error.nextStep,
        interrupted: error.interrupted,
      },
    );
    return exitCode;
  }
  if (values.json) {
    console.log(JSON.stringify(
      { ok: true, ...report, warnings: writable.warnings },
      null,
      2,
    ));
  } else {
    console.log(
      report.dryRun
        ? `Dry run: "${target}" gets tokens; nothing was changed.`
        : report.changed
        ? `Promoted: "${report.active}" is active (was "${report.previousActive}"); ${config.activeVariable} updated in ${envFile}.`
        : `"${report.active}" is already active; nothing was changed.`,
    );
    for (const warning of writable.warnings) console.log(`Warning: ${warning}`);
    console.log(`Next: ${report.nextStep}`);
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await runTask("promote", main, Deno.args));
}
