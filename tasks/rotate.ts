/**
 * `deno task rotate`: staged rotation of the standby credential's secret
 * (plan → regenerate → publish → test → promote → done), storing it in the
 * env file the moment it is regenerated (or printing it once with
 * `--print-secret`). One run per env file at a time (a lock); SIGINT and
 * SIGTERM let the new secret be stored first, then exit 130.
 *
 * The same run rotates any provider `readProviderEnv` reads: Genesys Cloud
 * (`GENESYS_*`), or the provider `AUTH_PROVIDER` names (`AUTH_*`), whose
 * adapter alone is loaded. With a two-secret provider the old label's
 * secret is revoked after promotion, once services following the env file
 * have re-read it (`envFileRevokeGate`).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  clientSecretEnvVar,
  type RotationEnvConfig,
} from "../src/rotation/env_config.ts";
import {
  PROVIDER_ENV_VARS,
  type ProviderEnvConfig,
  readProviderEnv,
  SECRET_ID_ENV_VARS,
  secretIdEnvVar,
} from "../src/providers/env.ts";
import {
  DEFAULT_RELOAD_WAIT_MS,
  envFileRevokeGate,
} from "../src/rotation/incident.ts";
import { createFileJournal } from "../src/rotation/journal.ts";
import {
  createEnvFileSink,
  createPrintSink,
  setEnvFileValue,
} from "../src/rotation/sinks.ts";
import {
  type RotationFailpoint,
  type RotationPhaseEvent,
  type RotationReport,
  runStagedRotation,
  StagedRotationError,
  type StagedRotationOptions,
} from "../src/rotation/staged_rotation.ts";
import {
  adminTokenSource,
  type Cell,
  commandLine,
  COMMON_OPTIONS,
  describeFailure,
  envFileOption,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_USAGE,
  explain,
  failpointHook,
  labelOption,
  paint,
  parseSeconds,
  parseTaskArgs,
  printFailure,
  readRotationVariablesNoting,
  reportingRateLimits,
  runTask,
  setUpLogging,
  table,
  taskLogLevel,
  type TaskOptions,
  UsageError,
  useColour,
} from "./_cli.ts";
import { FLEET_EXIT_CODES_HELP } from "./_fleet.ts";
import {
  lockUnchanged,
  noticePreviousHolder,
  onInterrupt,
  refuseDuringIncident,
  refuseWrittenOverrides,
} from "./_signals.ts";
import { main as respondToIncident } from "./_incident.ts";
// Moved to _cli.ts (incident needs it too); kept here for its importers.
export { parseSeconds } from "./_cli.ts";
import {
  main as rotateFleet,
  OPTIONS as FLEET_OPTIONS,
} from "./_rotate_fleet.ts";

/** The options the rotate parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  promote: { type: "boolean", default: false },
  to: { type: "string" },
  "env-file": { type: "string", default: ".env" },
  "propagation-timeout": { type: "string" },
  "reload-wait": { type: "string" },
  "gate-timeout": { type: "string" },
  fresh: { type: "boolean", default: false },
  "print-secret": { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
} as const satisfies TaskOptions;

const HELP = `Usage: deno task rotate [options]
       genesys-rotate rotate [options]

Regenerates the secret of the standby Genesys Cloud OAuth client (the one that
GENESYS_ACTIVE does not name), stores it in the env file at once (Genesys Cloud
shows it only once), then proves it with token requests, retrying while it
propagates. It never changes GENESYS_ACTIVE unless --promote is given; to switch
traffic later, run "deno task promote". Progress (no secrets) is kept in
<env-file>.rotation.json: re-running the same command resumes an interrupted
rotation without regenerating a secret that was stored. One rotate or promote
per env file runs at a time (<env-file>.lock).

Options:
  --dry-run                  verify, plan and check every file; change nothing
  --yes                      do not ask for confirmation (required without a terminal)
  --promote                  after proving the new secret, set GENESYS_ACTIVE to it
  --to <label>               rotate this label (blue or green) and promote it
  --env-file <path>          the env file to read and update (default .env)
  --propagation-timeout <s>  how long to keep proving the new secret (default 60;
                             at least what the provider says: Entra ID 18, Auth0 30)
  --reload-wait <s>          two-secret providers: how long services following the
                             env file take to re-read it, waited after promotion
                             before the old secret is revoked (default 3)
  --gate-timeout <s>         two-secret providers: how long the revoke gate waits for
                             services that announce their presence (followSource's
                             presence) to stop using the old secret (default 60)
  --fresh                    ignore an unfinished, stale or foreign journal and start over
  --print-secret             print the new secret once instead of writing the env file
  --compromised <label> [--kill-tokens]
                             incident mode, the same as deno task incident (see its --help)

A fleet's rotation through its store (the journal and the lock in the store;
refuses an unseen fleet, a missing KV file; details: rotate --kv x --help):
  --kv <path>                the fleet's Deno KV database (a file that exists, or a KV Connect URL)
  --redis <url|env>          or the fleet's Redis; env reads REDIS_URL, which keeps a
                             password off the command line (else redis://host:port)
  --prefix <a/b>             the fleet's key prefix (default dual-secret-auth)
  --scope <scope>            the scope the service requests, if any (part of its namespace;
                             default the env file's AUTH_SCOPE)
  --allow-empty              proceed although no live instance reports in the namespace
  --expect-instances <n>     proceed only when at least n live instances report
  --timeout <s>              with --promote: how long to wait for the instances, and
                             (two secrets on one client) for the old one to go unused
                             (default 60)
  --token-lifetime <s>       how long a token lives, for the revoke gates (default 86400)
  --force                    regenerate even though the gate is shut (recorded in the audit trail)
  --every <period>           scheduled rotation: a full cycle each period (such as 30d);
                             with --tick, --lease, --drain-bound, --cycles, --scheduler-id
                             (see rotate --kv x --help)
  --tick <period>            how often the scheduler looks (default 1s)
  --lease <period>           the scheduler's leader lease (default 30s)
  --drain-bound <period>     the heartbeat bound for draining (default 30s)
  --cycles <n>               stop once the store counts n completed cycles
  --scheduler-id <id>        this scheduler's name in the lease and audit trail
  --json                     print the outcome (success or failure) as JSON
  --verbose                  log debug details to stderr
  -h, --help                 show this help
  -V, --version              show the version

Other providers: with AUTH_PROVIDER=okta|entra|keycloak|cognito|auth0 in the
env file (deno task emulator --provider X writes .env.X; examples/env/ shows
each), the same command rotates through that provider's admin API and writes
AUTH_CLIENT_SECRET_<LABEL> and AUTH_ACTIVE. Okta, Entra ID, Cognito and
Keycloak (its secret-rotation policy on) keep blue and green as two secrets of
one client: the new secret is added beside the one in use, its id recorded in
AUTH_SECRET_ID_<LABEL> (read from the env file by later rotations), and after
--promote the old one is revoked once services have re-read the env file
(--reload-wait) and none that announces its presence in <env-file>.presence/
still uses it (--gate-timeout). Auth0 uses twin clients, as Genesys Cloud does.
With --kv or --redis, the fleet's store holds each secret's id and the old
secret is revoked once no live instance holds or uses it (rotate --kv x --help).

Variables set in the shell environment win over the env file (a notice names
each one that differs); rotate refuses when the shell overrides a variable it
writes (GENESYS_ACTIVE, GENESYS_CLIENT_SECRET_*, AUTH_ACTIVE,
AUTH_CLIENT_SECRET_*).

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/**
 * Runs the rotate task. Errors are thrown, not reported: wrap it in
 * {@linkcode runTask} for a one-line message and an exit code.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code; the process is left running.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  // Incident mode has its own options and steps: see tasks/_incident.ts.
  if (args.some((arg) => /^--compromised(=|$)/.test(arg))) {
    return await respondToIncident(args);
  }
  // A fleet's rotation (the store as sink, journal and lock): tasks/_rotate_fleet.ts.
  if (args.some((arg) => /^--(kv|redis)(=|$)/.test(arg))) {
    return await rotateFleet(args);
  }
  const values = parseTaskArgs("deno task rotate", OPTIONS, HELP, args, {
    options: FLEET_OPTIONS,
    selectedBy: "--kv <path> or --redis env",
    what: "a fleet's rotation through its store",
  });
  if (values === undefined) return 0;
  const envFile = envFileOption(values["env-file"]);
  labelOption("--to", values.to);
  const promote = values.promote || values.to !== undefined;
  const dryRun = values["dry-run"];
  const propagationTimeoutMs = parseSeconds(
    "--propagation-timeout",
    values["propagation-timeout"],
  );
  if (values["print-secret"] && promote) {
    throw new UsageError(
      "--print-secret cannot be combined with --promote or --to: nothing would record the new active label. " +
        "Rotate with --print-secret, store the secret, then switch GENESYS_ACTIVE where you stored it.",
    );
  }
  const reloadWaitMs = parseSeconds("--reload-wait", values["reload-wait"]) ??
    DEFAULT_RELOAD_WAIT_MS;
  const gateTimeoutMs = parseSeconds("--gate-timeout", values["gate-timeout"]);
  const log = await setUpLogging("rotate", taskLogLevel(values));
  const { variables, overrides } = await readRotationVariablesNoting(
    envFile,
    [...PROVIDER_ENV_VARS, ...SECRET_ID_ENV_VARS],
  );
  if (!values["print-secret"]) refuseWrittenOverrides(overrides, envFile);
  const config = readProviderEnv(variables, { standby: values.to });
  const standby = config.credentials.find((c) => c.label === config.standby)!;
  const twoSecrets = config.model === "two-secrets";
  // Which secret each label uses, as an earlier rotation recorded it: the
  // plan then names the secret to revoke at the limit, and retire revokes
  // exactly the old label's.
  const secretIds = config.secretIds;
  if (!twoSecrets) {
    for (const flag of ["reload-wait", "gate-timeout"] as const) {
      if (values[flag] !== undefined) {
        console.error(
          `Note: --${flag} has no effect here: ${config.title} uses twin clients, so no old secret is revoked (regenerating the standby ends its old one).`,
        );
      }
    }
  }

  if (!dryRun && !values.yes) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to rotate without confirmation: there is no terminal to ask on. " +
          "Pass --yes to rotate, or --dry-run to only check.",
      );
    }
    const question = (twoSecrets
      ? `Add a new ${config.title} secret to OAuth client ${standby.clientId} for "${standby.label}" `
      : `Regenerate the secret of "${standby.label}" (OAuth client ${standby.clientId}) `) +
      `while "${config.active}" serves traffic${
        promote
          ? `, then switch to "${standby.label}"${
            twoSecrets ? ` and revoke the old secret of "${config.active}"` : ""
          }`
          : ""
      }?`;
    if (!confirm(question)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }

  // A dry run writes nothing, not even the lock file.
  await using lock = dryRun ? undefined : await lockUnchanged(
    envFile,
    commandLine("rotate", args),
    variables,
  );
  noticePreviousHolder(lock);
  await refuseDuringIncident(envFile);

  const progress = (line: string) => console.error(line);
  await using issuer = config.genesys
    ? genesysIssuer(config.genesys, progress)
    : await providerIssuer(config, progress);
  const printed: string[] = [];
  const sink = values["print-secret"]
    ? createPrintSink((line) => {
      printed.push(line);
    }, { keyFor: config.secretVariable })
    : createEnvFileSink(envFile, {
      keyFor: config.secretVariable,
      ...(twoSecrets ? { secretIdKeyFor: secretIdEnvVar } : {}),
    });

  const rerun = `run the same command again (deno task rotate ${
    args.filter((a) => a !== "--fresh").join(" ")
  })`.replace(" )", ")");
  const failpoint = failpointHook();
  await using interrupt = onInterrupt();
  let report: RotationReport;
  try {
    report = await runStagedRotation({
      credentials: config.credentials,
      active: config.active,
      standby: config.standby,
      tokenUrl: config.tokenUrl,
      ...issuer.options,
      sink,
      promote,
      onPromote: (label) =>
        setEnvFileValue(envFile, config.activeVariable, label),
      ...(twoSecrets
        ? {
          revokeGate: envFileRevokeGate(envFile, {
            reloadWaitMs,
            ...(gateTimeoutMs === undefined ? {} : { gateTimeoutMs }),
            secretVariable: config.secretVariable,
            onProgress: progress,
          }),
          secretIds,
        }
        : {}),
      dryRun,
      fresh: values.fresh,
      journal: createFileJournal(`${envFile}.rotation.json`),
      propagationTimeoutMs,
      fetch: reportingRateLimits(progress),
      onPhase: (event) => logPhase(log, event, progress),
      signal: interrupt.signal,
      commands: {
        rerun,
        promote: `run deno task promote${
          envFile === ".env" ? "" : ` --env-file ${envFile}`
        }`,
        fresh: `run deno task rotate --yes --fresh${
          envFile === ".env" ? "" : ` --env-file ${envFile}`
        }`,
      },
      failpoint: failpoint as
        | ((point: RotationFailpoint) => Promise<void>)
        | undefined,
    });
  } catch (error) {
    if (!(error instanceof StagedRotationError)) throw error;
    const cause = describeFailure(error.cause, "rotate");
    const exitCode = error.interrupted
      ? EXIT_INTERRUPTED
      : cause.exitCode === EXIT_USAGE
      ? EXIT_USAGE
      : EXIT_FAILED;
    const message =
      `Rotation of "${error.standby}" failed in phase ${error.phase}: ${
        explain(error.cause, config.names).message.replace(/\.$/, "")
      }.\nState: ${error.state}\nNext: ${error.nextStep}`;
    printFailure(
      {
        exitCode,
        code: error.code,
        causeCode: cause.code,
        message,
      },
      values.json,
      {
        phase: error.phase,
        active: error.active,
        standby: error.standby,
        state: error.state,
        nextStep: error.nextStep,
        interrupted: error.interrupted,
        // A printed secret exists nowhere else: show it even on failure.
        ...(printed.length > 0 ? { printedSecret: printed } : {}),
      },
    );
    if (printed.length > 0 && !values.json) {
      console.log(
        "The new secret was regenerated and exists only here; store it now, then run the same command again to prove it:",
      );
      for (const line of printed) console.log(line);
    }
    return exitCode;
  }

  if (values.json) {
    const output = printed.length > 0
      ? { ok: true, ...report, printedSecret: printed }
      : { ok: true, ...report };
    console.log(JSON.stringify(output, null, 2));
  } else {
    printReport(report, printed);
  }
  return 0;
}

/** What issues the standby's secret for the engine, and its closer. */
interface Issuer extends AsyncDisposable {
  readonly options: Pick<
    StagedRotationOptions,
    "admin" | "provider" | "scope" | "tokenParams"
  >;
}

/** Genesys Cloud: its admin client on the admin credential (or the active one). */
function genesysIssuer(
  config: RotationEnvConfig,
  progress: (line: string) => void,
): Issuer {
  const adminCredential = config.admin
    ? { label: "admin", ...config.admin }
    : config.credentials.find((c) => c.label === config.active)!;
  const adminVariable = config.admin
    ? "GENESYS_ADMIN_CLIENT_SECRET"
    : clientSecretEnvVar(config.active);
  // Only that one credential: an admin token must never come from a
  // failover to the standby whose secret is about to change.
  const adminAuth = createDualSecretAuth({
    credentials: [adminCredential],
    tokenUrl: config.tokenUrl,
  });
  const admin = createGenesysAdminClient({
    apiUrl: config.apiUrl,
    getAccessToken: adminTokenSource(
      (options) => adminAuth.getAccessToken(options),
      adminVariable,
    ),
    invalidateToken: (token) => adminAuth.invalidate(token),
    fetch: reportingRateLimits(progress),
  });
  return {
    options: { admin },
    [Symbol.asyncDispose]: () => adminAuth.close(),
  };
}

/** Another provider: its adapter (only it is loaded), with the service's scope and token parameters. */
async function providerIssuer(
  config: ProviderEnvConfig,
  progress: (line: string) => void,
): Promise<Issuer> {
  const handle = await config.createProvider({
    fetch: reportingRateLimits(progress),
  });
  return {
    options: {
      provider: handle.provider,
      ...(config.scope === undefined ? {} : { scope: config.scope }),
      ...(config.tokenParams === undefined
        ? {}
        : { tokenParams: config.tokenParams }),
    },
    [Symbol.asyncDispose]: () => handle.close(),
  };
}

function logPhase(
  log: Logger,
  event: RotationPhaseEvent,
  progress: (line: string) => void,
): void {
  const properties = { ...event, detail: event.detail ?? "" };
  if (event.status === "failed") {
    log.debug("{phase} failed: {detail}", properties);
  } else if (event.status === "progress") {
    progress(`${event.phase}: ${event.detail ?? ""}`);
  } else if (event.status === "started") {
    log.debug("{phase} started", properties);
  } else {
    // The report's table prints each phase once at the end; live, only the
    // waits (progress) are shown, unless --verbose.
    log.debug("{phase} {status}: {detail}", properties);
  }
}

function printReport(report: RotationReport, printed: readonly string[]): void {
  const colour = useColour();
  const tint = {
    completed: "green",
    skipped: "dim",
    failed: "red",
    started: "yellow",
    progress: "yellow",
  } as const;
  const rows: Cell[][] = report.phases
    .filter((event) =>
      event.status !== "started" && event.status !== "progress"
    )
    .map((event) => [
      event.phase,
      { text: event.status, colour: tint[event.status] },
      event.detail ?? "",
    ]);
  console.log(table(["PHASE", "STATUS", "DETAIL"], rows, colour).join("\n"));
  console.log("");
  const title = report.dryRun
    ? "Dry run: nothing was changed."
    : report.resumed
    ? "Rotation resumed and complete."
    : "Rotation complete.";
  console.log(paint(title, "bold", colour));
  if (report.resumedFrom) console.log(`Resumed: ${report.resumedFrom}`);
  console.log(
    `Active: ${report.active}   rotated: ${report.standby} (${report.clientId})   stored in: ${report.sink}`,
  );
  for (const warning of report.warnings) console.log(`Warning: ${warning}`);
  if (printed.length > 0) {
    console.log("\nThe new secret, shown this once; store it now:");
    for (const line of printed) console.log(line);
  }
  console.log(`Next: ${report.nextStep}`);
}

if (import.meta.main) {
  Deno.exit(await runTask("rotate", main, Deno.args));
}
