/**
 * `deno task rotate`: staged rotation of the standby credential's secret
 * (plan → regenerate → test → publish → promote → done), publishing to the
 * env file (or printing it once with `--print-secret`).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { parseArgs } from "node:util";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  ACTIVE_ENV_VAR,
  clientSecretEnvVar,
  readRotationEnv,
} from "../src/rotation/env_config.ts";
import { createFileJournal } from "../src/rotation/journal.ts";
import {
  createEnvFileSink,
  createPrintSink,
  setEnvFileValue,
} from "../src/rotation/sinks.ts";
import {
  type RotationPhaseEvent,
  type RotationReport,
  runStagedRotation,
  StagedRotationError,
} from "../src/rotation/staged_rotation.ts";
import {
  type Cell,
  EXIT_FAILED,
  paint,
  readRotationVariables,
  runTask,
  setUpLogging,
  table,
  UsageError,
  useColour,
} from "./_cli.ts";
import { main as respondToIncident } from "./incident.ts";

const HELP = `Usage: deno task rotate [options]
       genesys-rotate rotate [options]

Regenerates the secret of the standby Genesys Cloud OAuth client (the one that
GENESYS_ACTIVE does not name), proves it with a token request, stores it in the
env file, and with --promote switches GENESYS_ACTIVE to it. Traffic stays on
the active client until then. Progress (no secrets) is kept in
<env-file>.rotation.json so an interrupted rotation can be re-run safely.

Options:
  --dry-run          verify and plan only; change nothing
  --yes              do not ask for confirmation (required without a terminal)
  --promote          after publishing, set GENESYS_ACTIVE to the rotated label
  --to <label>       rotate this label (blue or green) and promote it
  --env-file <path>  the env file to read and update (default .env)
  --print-secret     print the new secret once instead of writing the env file
  --compromised <label> [--kill-tokens]
                     incident mode: see deno task rotate --compromised --help
  --json             print the report as JSON
  --verbose          log debug details to stderr
  -h, --help         show this help
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
  // Incident mode has its own options and steps: see tasks/incident.ts.
  if (args.some((arg) => /^--compromised(=|$)/.test(arg))) {
    return await respondToIncident(args);
  }
  const { values } = parseArgs({
    args: [...args],
    options: {
      "dry-run": { type: "boolean", default: false },
      yes: { type: "boolean", default: false },
      promote: { type: "boolean", default: false },
      to: { type: "string" },
      "env-file": { type: "string", default: ".env" },
      "print-secret": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const envFile = values["env-file"];
  if (envFile.trim() === "") throw new UsageError("--env-file needs a path");
  const promote = values.promote || values.to !== undefined;
  const dryRun = values["dry-run"];
  if (values["print-secret"] && promote) {
    throw new UsageError(
      "--print-secret cannot be combined with --promote or --to: nothing would record the new active label. " +
        "Rotate with --print-secret, store the secret, then switch GENESYS_ACTIVE where you stored it.",
    );
  }
  const log = await setUpLogging(
    "rotate",
    values.verbose ? "debug" : values.json ? "warning" : "info",
  );
  const config = readRotationEnv(await readRotationVariables(envFile), {
    standby: values.to,
  });
  const standby = config.credentials.find((c) => c.label === config.standby)!;

  if (!dryRun && !values.yes) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to rotate without confirmation: there is no terminal to ask on. " +
          "Pass --yes to rotate, or --dry-run to only check.",
      );
    }
    const question =
      `Regenerate the secret of "${standby.label}" (OAuth client ${standby.clientId}) ` +
      `while "${config.active}" serves traffic${
        promote ? `, then switch to "${standby.label}"` : ""
      }?`;
    if (!confirm(question)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }

  const adminCredential = config.admin
    ? { label: "admin", ...config.admin }
    : config.credentials.find((c) => c.label === config.active)!;
  // Only that one credential: an admin token must never come from a
  // failover to the standby whose secret is about to change.
  await using adminAuth = createDualSecretAuth({
    credentials: [adminCredential],
    tokenUrl: config.tokenUrl,
  });
  const admin = createGenesysAdminClient({
    apiUrl: config.apiUrl,
    getAccessToken: (options) => adminAuth.getAccessToken(options),
    invalidateToken: (token) => adminAuth.invalidate(token),
  });
  const printed: string[] = [];
  const sink = values["print-secret"]
    ? createPrintSink((line) => {
      printed.push(line);
    }, { keyFor: clientSecretEnvVar })
    : createEnvFileSink(envFile, { keyFor: clientSecretEnvVar });

  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  let report: RotationReport;
  try {
    report = await runStagedRotation({
      credentials: config.credentials,
      active: config.active,
      standby: config.standby,
      tokenUrl: config.tokenUrl,
      admin,
      sink,
      promote,
      onPromote: (label) => setEnvFileValue(envFile, ACTIVE_ENV_VAR, label),
      dryRun,
      journal: createFileJournal(`${envFile}.rotation.json`),
      onPhase: (event) => logPhase(log, event),
      signal: controller.signal,
    });
  } catch (error) {
    if (!(error instanceof StagedRotationError)) throw error;
    if (values.json) {
      console.log(JSON.stringify(
        {
          ok: false,
          error: {
            code: error.code,
            phase: error.phase,
            active: error.active,
            standby: error.standby,
            state: error.state,
            nextStep: error.nextStep,
            message: error.message,
          },
        },
        null,
        2,
      ));
    } else {
      console.error(error.message);
    }
    return EXIT_FAILED;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
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

function logPhase(
  log: Logger,
  event: RotationPhaseEvent,
): void {
  const properties = { ...event, detail: event.detail ?? "" };
  if (event.status === "failed") {
    log.error("{phase} failed: {detail}", properties);
  } else if (event.status === "started") {
    log.debug("{phase} started", properties);
  } else {
    log.info("{phase} {status}: {detail}", properties);
  }
}

function printReport(report: RotationReport, printed: readonly string[]): void {
  const colour = useColour();
  const tint = {
    completed: "green",
    skipped: "dim",
    failed: "red",
    started: "yellow",
  } as const;
  const rows: Cell[][] = report.phases
    .filter((event) => event.status !== "started")
    .map((event) => [
      event.phase,
      { text: event.status, colour: tint[event.status] },
      event.detail ?? "",
    ]);
  console.log(table(["PHASE", "STATUS", "DETAIL"], rows, colour).join("\n"));
  console.log("");
  const title = report.dryRun
    ? "Dry run: nothing was changed."
    : "Rotation complete.";
  console.log(paint(title, "bold", colour));
  console.log(
    `Active: ${report.active}   rotated: ${report.standby} (${report.clientId})   published to: ${report.sink}`,
  );
  if (printed.length > 0) {
    console.log("\nThe new secret, shown this once; store it now:");
    for (const line of printed) console.log(line);
  }
  console.log(`Next: ${report.nextStep}`);
}

if (import.meta.main) {
  Deno.exit(await runTask("rotate", main, Deno.args));
}
