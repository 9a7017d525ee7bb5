/**
 * `deno task setup --from <label>`: creates the twin of an existing Genesys
 * Cloud OAuth client by API and stores its id and secret in the env file.
 *
 * @module
 */
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  ACTIVE_ENV_VAR,
  clientIdEnvVar,
  clientSecretEnvVar,
  readSetupEnv,
} from "../src/rotation/env_config.ts";
import {
  createEnvFileClientSink,
  setUpTwinClient,
  TwinSetupError,
  type TwinSetupEvent,
  type TwinSetupReport,
} from "../src/rotation/twin_setup.ts";
import {
  type Cell,
  commandLine,
  COMMON_OPTIONS,
  envFileOption,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_USAGE,
  labelOption,
  noStoreOptions,
  paint,
  parseTaskArgs,
  readRotationVariablesNoting,
  runTask,
  setUpLogging,
  table,
  taskLogLevel,
  type TaskOptions,
  UsageError,
  useColour,
} from "./_cli.ts";
import { checkWritable } from "../src/rotation/preflight.ts";
import {
  AUTH_ACTIVE_ENV_VAR,
  authClientIdEnvVar,
  authClientSecretEnvVar,
  PROVIDER_ENV_VAR,
  PROVIDER_ENV_VARS,
  readProviderEnv,
  SECRET_ID_ENV_VARS,
  secretIdEnvVar,
} from "../src/providers/env.ts";
import {
  type SecondSecretSetupReport,
  setUpSecondSecret,
} from "../src/rotation/second_secret_setup.ts";
import { setEnvFileEntries } from "../src/rotation/sinks.ts";
import type { RotationLabel } from "../src/rotation/env_config.ts";
import {
  lockUnchanged,
  onInterrupt,
  refuseWrittenOverrides,
} from "./_signals.ts";

/** The options the setup parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  from: { type: "string" },
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  "env-file": { type: "string", default: ".env" },
  json: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
  ...noStoreOptions(
    "setup writes the twin to the env file; rotate --kv <path> | --redis env puts a secret into a fleet's store",
  ),
} as const satisfies TaskOptions;

const HELP = `Usage: deno task setup --from <blue|green> [options]

Creates the twin of an existing Genesys Cloud OAuth client: reads the client
named by GENESYS_CLIENT_ID_<FROM>, creates a client-credentials client with the
same roles (and divisions) and token lifetime, named "<name> (<other label>)",
writes GENESYS_CLIENT_ID_<OTHER> and GENESYS_CLIENT_SECRET_<OTHER> to the env
file as soon as Genesys returns them (the secret is shown only once), and
proves the new secret with a token request. Nothing serving traffic changes.

The admin credential (GENESYS_ADMIN_CLIENT_ID/SECRET, or else the <from>
client itself) needs oauth:client:view and oauth:client:add, and must itself
hold every role it grants.

Other providers (AUTH_PROVIDER in the env file):
  - Okta, Entra ID, Cognito keep both labels as secrets of one client, so
    there is no twin: setup issues a second secret of the <from> client and
    writes AUTH_CLIENT_ID_<OTHER> (the same client), AUTH_CLIENT_SECRET_<OTHER>
    and AUTH_SECRET_ID_<OTHER> (and AUTH_SECRET_ID_<FROM> when the client held
    that secret alone), then proves it: both labels work, failover included.
    Refused when the client is at its limit of two (Okta, Cognito).
  - Keycloak: refused. Its second secret is the "rotated" one, which expires
    (rotated-expiration-period); deno task rotate --promote issues the
    standby's secret when it is needed.
  - Auth0: refused. Its Management API calls this tool uses cannot create an
    application with the grants of another; the message says how to create
    the twin in the dashboard.

Options:
  --from <label>     the existing client's label: blue or green (required)
  --dry-run          read the existing client and show what would be created
  --yes              do not ask for confirmation (asked only on a terminal:
                     setup never changes the credential serving traffic)
  --force            replace an already configured twin (never the active
                     label); the old client stays in Genesys Cloud
  --env-file <path>  the env file to read and update (default .env)
  --json             print the report as JSON
  --verbose          log debug details to stderr
  -h, --help         show this help
  -V, --version      show the version

${EXIT_CODES_HELP}
`;

/**
 * Runs the setup task. Errors are thrown, not reported: wrap it in
 * {@linkcode runTask} for a one-line message and an exit code.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code; the process is left running.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const values = parseTaskArgs("deno task setup", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  if (values.from === undefined) {
    throw new UsageError(
      "Name the existing client with --from blue or --from green. Run with --help for the options.",
    );
  }
  const envFile = envFileOption(values["env-file"]);
  const log = await setUpLogging("setup", taskLogLevel(values));
  const { variables, overrides } = await readRotationVariablesNoting(
    envFile,
    [...PROVIDER_ENV_VARS, ...SECRET_ID_ENV_VARS],
  );
  const named = variables[PROVIDER_ENV_VAR]?.trim().toLowerCase();
  if (named !== undefined && named !== "" && named !== "genesys") {
    return await setUpProvider(
      values,
      args,
      envFile,
      variables,
      overrides,
      log,
    );
  }
  const config = readSetupEnv(variables, labelOption("--from", values.from)!);
  const { from, to } = config;
  // Which label serves traffic, and the twin's secret, must be the file's:
  // setup decides from the one and writes the other there.
  refuseWrittenOverrides(
    overrides.filter((name) =>
      name === ACTIVE_ENV_VAR || name === clientSecretEnvVar(to)
    ),
    envFile,
  );
  const replaced = config.configuredTargetId;
  if (replaced !== undefined) {
    if (config.active === to) {
      throw new UsageError(
        `${
          clientIdEnvVar(to)
        } is set and ${ACTIVE_ENV_VAR}=${to}: "${to}" serves traffic, and setup never replaces ` +
          `the active credential. To set up ${from} from ${to}, run deno task setup --from ${to}.`,
      );
    }
    if (!values.force) {
      throw new UsageError(
        `${
          clientIdEnvVar(to)
        } is already set (OAuth client ${replaced}): the twin exists. Check it with ` +
          `deno task verify. To create a new twin and replace ${
            clientIdEnvVar(to)
          } and ${
            clientSecretEnvVar(to)
          }, run again with --force (client ${replaced} stays in Genesys Cloud: delete it there once nothing uses it).`,
      );
    }
  }

  const adminCredential = config.admin ? { label: "admin", ...config.admin } : {
    label: from,
    clientId: config.sourceClientId,
    clientSecret: config.sourceClientSecret!,
  };
  const adminName = config.admin
    ? `the admin credential GENESYS_ADMIN_CLIENT_ID (${config.admin.clientId})`
    : `the ${from} credential ${
      clientIdEnvVar(from)
    } (${config.sourceClientId}), which administers since GENESYS_ADMIN_CLIENT_ID is not set,`;
  // Before anything is created or regenerated: its secret is shown once,
  // and goes straight into this file (rotate checks the same way).
  const writable = await checkWritable(envFile);
  for (const warning of writable.warnings) log.warn(warning);
  // Asked as rotate asks, but only on a terminal: setup adds a client and
  // never touches the credential serving traffic, so scripts need no --yes.
  if (!values["dry-run"] && !values.yes && Deno.stdin.isTerminal()) {
    const question =
      `Create the twin of "${from}" (OAuth client ${config.sourceClientId}) as "${to}" ` +
      `and store its id and secret in ${envFile}${
        replaced ? `, replacing OAuth client ${replaced}` : ""
      }?`;
    if (!confirm(question)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }
  // One command per env file at a time, as rotate and promote: a rotation
  // running meanwhile could otherwise overwrite (or be overwritten by) the
  // twin's id and secret, shown only once. A dry run writes nothing.
  await using _lock = values["dry-run"]
    ? undefined
    : await lockUnchanged(envFile, commandLine("setup", args), variables);
  await using adminAuth = createDualSecretAuth({
    credentials: [adminCredential],
    tokenUrl: config.tokenUrl,
  });
  const admin = createGenesysAdminClient({
    apiUrl: config.apiUrl,
    getAccessToken: (options) => adminAuth.getAccessToken(options),
    invalidateToken: (token) => adminAuth.invalidate(token),
  });
  const sink = createEnvFileClientSink(envFile);

  // SIGTERM too: killed during the create call, the new secret would be lost.
  await using interrupt = onInterrupt();
  let report: TwinSetupReport;
  try {
    report = await setUpTwinClient({
      from,
      to,
      sourceClientId: config.sourceClientId,
      admin,
      sink,
      tokenUrl: config.tokenUrl,
      dryRun: values["dry-run"],
      adminName,
      rerun: `deno task setup --from ${from}${replaced ? " --force" : ""}`,
      signal: interrupt.signal,
      onStep: (event) => logStep(log, event),
    });
  } catch (error) {
    if (!(error instanceof TwinSetupError)) throw error;
    return reportSetupFailure(error, values.json);
  }

  if (config.active === undefined && !report.dryRun) {
    report = {
      ...report,
      nextStep:
        `Set ${ACTIVE_ENV_VAR}=${from} in ${envFile} (the client serving traffic now). ${report.nextStep}`,
    };
  }
  const output = {
    ...report,
    variables: [clientIdEnvVar(to), clientSecretEnvVar(to)],
    ...(replaced ? { replacedClientId: replaced } : {}),
  };
  if (values.json) {
    console.log(JSON.stringify({ ok: true, ...output }, null, 2));
  } else {
    printReport(report, replaced);
  }
  return 0;
}

/** The parsed options of the setup task. */
type SetupValues = {
  readonly from?: string;
  readonly "dry-run": boolean;
  readonly yes: boolean;
  readonly force: boolean;
  readonly json: boolean;
  readonly verbose: boolean;
};

/**
 * `setup` with AUTH_PROVIDER: Okta, Entra ID and Cognito get a second
 * secret on the one client; Keycloak and Auth0 are refused with the reason
 * and the manual step.
 */
async function setUpProvider(
  values: SetupValues,
  args: readonly string[],
  envFile: string,
  variables: Record<string, string | undefined>,
  overrides: readonly string[],
  log: Awaited<ReturnType<typeof setUpLogging>>,
): Promise<number> {
  const from = labelOption("--from", values.from)! as RotationLabel;
  if (from !== "blue" && from !== "green") {
    throw new UsageError(`--from: "${values.from}" is not blue or green.`);
  }
  const to: RotationLabel = from === "blue" ? "green" : "blue";
  const provider = variables[PROVIDER_ENV_VAR]!.trim().toLowerCase();
  const toId = authClientIdEnvVar(to);
  const toSecret = authClientSecretEnvVar(to);
  if (provider === "auth0") {
    // The facts this tool is built on (and its emulator) give Auth0's
    // Management API no call that creates an application with the grants
    // of another: rotate-secret, read and update a client only.
    throw new UsageError(
      `Auth0 keeps one secret per application, so "${to}" is a second application, and the Management API calls ` +
        `this tool uses (read a client, rotate-secret) cannot create one with the grants of another. Create it yourself: ` +
        `Applications › Create Application › Machine to Machine, authorized for the same API (AUTH_AUDIENCE) with the ` +
        `same scopes as ${
          authClientIdEnvVar(from)
        }; then set ${toId} and ${toSecret} in ${envFile} and run ` +
        `deno task verify. Nothing was changed.`,
    );
  }
  if (provider === "keycloak") {
    throw new UsageError(
      `Keycloak keeps a second secret only as the "rotated" one, which it refuses once its rotated-expiration-period ` +
        `passes (2 days by default), and issuing one would move the secret of "${from}" there: a standby secret ` +
        `cannot wait at rest. Set ${toId} to the client id of "${from}" and ${toSecret} to any placeholder, then run ` +
        `deno task rotate --promote: it issues "${to}"'s secret, switches to it and deletes the rotated one. ` +
        `(Two Keycloak clients instead: create the second one in the admin console with the same service-account ` +
        `roles and set ${toId} and ${toSecret}.) Nothing was changed.`,
    );
  }
  // The label not yet configured: the one client, a placeholder secret to
  // read the configuration with (never written, never sent).
  const configured = variables[toSecret]?.trim();
  const fromId = variables[authClientIdEnvVar(from)]?.trim();
  const config = readProviderEnv({
    ...variables,
    [toId]: variables[toId]?.trim() || fromId,
    [toSecret]: configured || "not-set-up-yet",
    [AUTH_ACTIVE_ENV_VAR]: variables[AUTH_ACTIVE_ENV_VAR]?.trim() || from,
  });
  // Which label serves, and the new secret, must be the file's.
  refuseWrittenOverrides(
    overrides.filter((name) =>
      name === AUTH_ACTIVE_ENV_VAR || name === toSecret ||
      name === secretIdEnvVar(to)
    ),
    envFile,
  );
  const active = variables[AUTH_ACTIVE_ENV_VAR]?.trim().toLowerCase();
  if (configured) {
    if (active === to) {
      throw new UsageError(
        `${toSecret} is set and ${AUTH_ACTIVE_ENV_VAR}=${to}: "${to}" serves traffic, and setup never replaces ` +
          `the active credential. To set up ${from} from ${to}, run deno task setup --from ${to}.`,
      );
    }
    if (!values.force) {
      throw new UsageError(
        `${toSecret} is already set: "${to}" is set up. Check it with deno task verify. To issue a new secret ` +
          `for it and replace ${toSecret}, run again with --force (its old secret, recorded in ${
            secretIdEnvVar(to)
          }, is revoked before the new one is issued when ${
            secretIdEnvVar(from)
          } is recorded too; otherwise revoke it in ${config.title} once nothing uses it).`,
      );
    }
  }
  const clientId = config.credentials[0].clientId;
  const writable = await checkWritable(envFile);
  for (const warning of writable.warnings) log.warn(warning);
  if (!values["dry-run"] && !values.yes && Deno.stdin.isTerminal()) {
    const question =
      `Issue a second ${config.title} secret of client ${clientId} for "${to}" and store it in ${envFile}?`;
    if (!confirm(question)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }
  await using _lock = values["dry-run"]
    ? undefined
    : await lockUnchanged(envFile, commandLine("setup", args), variables);
  await using handle = await config.createProvider();
  await using interrupt = onInterrupt();
  let report: SecondSecretSetupReport;
  try {
    report = await setUpSecondSecret({
      from,
      to,
      clientId,
      provider: handle.provider,
      sink: {
        name: `env file ${envFile}`,
        publish: (update) =>
          setEnvFileEntries(envFile, [
            [toId, update.clientId],
            [toSecret, update.secret.reveal()],
            ...(update.secretId === undefined
              ? []
              : [[secretIdEnvVar(to), update.secretId] as const]),
            // Recorded only when nothing is: the file's record wins.
            ...(update.fromSecretId === undefined ||
                config.secretIds[from] !== undefined
              ? []
              : [[secretIdEnvVar(from), update.fromSecretId] as const]),
          ]),
      },
      tokenUrl: config.tokenUrl,
      ...(config.scope === undefined ? {} : { scope: config.scope }),
      ...(config.tokenParams === undefined
        ? {}
        : { tokenParams: config.tokenParams }),
      authMethod: config.credentials[0].authMethod,
      ...(config.secretIds[from] === undefined
        ? {}
        : { fromSecretId: config.secretIds[from] }),
      ...(values.force && config.secretIds[to] !== undefined
        ? {
          replaceSecretId: config.secretIds[to],
          fromSecret: config.credentials.find((c) => c.label === from)!
            .clientSecret,
        }
        : {}),
      dryRun: values["dry-run"],
      signal: interrupt.signal,
      onStep: (event) => logStep(log, event),
    });
  } catch (error) {
    if (!(error instanceof TwinSetupError)) throw error;
    return reportSetupFailure(error, values.json);
  }
  const nextStep = active === undefined && !report.dryRun
    ? `Set ${AUTH_ACTIVE_ENV_VAR}=${from} in ${envFile} (the label serving traffic now). ${report.nextStep}`
    : report.nextStep;
  if (values.json) {
    console.log(JSON.stringify(
      {
        ok: true,
        ...report,
        nextStep,
        variables: [
          toId,
          toSecret,
          ...(report.secretId === undefined ? [] : [secretIdEnvVar(to)]),
        ],
      },
      null,
      2,
    ));
    return 0;
  }
  const colour = useColour();
  const tint = { completed: "green", skipped: "dim", failed: "red" } as const;
  console.log(
    table(
      ["STEP", "STATUS", "DETAIL"],
      report.steps.map((event) => [
        event.step,
        { text: event.status, colour: tint[event.status] },
        event.detail,
      ]),
      colour,
    ).join("\n"),
  );
  console.log("");
  if (report.dryRun) {
    console.log(paint("Dry run: nothing was issued.", "bold", colour));
  } else {
    console.log(paint("Second secret issued.", "bold", colour));
    console.log(
      `Stored: ${toId}, ${toSecret}${
        report.secretId === undefined ? "" : ` and ${secretIdEnvVar(to)}`
      } in ${envFile}`,
    );
  }
  console.log(`Next: ${nextStep}`);
  return 0;
}

function logStep(
  log: Awaited<ReturnType<typeof setUpLogging>>,
  event: TwinSetupEvent,
): void {
  const properties = { ...event };
  if (event.status === "failed") log.debug("{step} failed", properties);
  else log.info("{step} {status}: {detail}", properties);
}

function printReport(report: TwinSetupReport, replaced?: string): void {
  const colour = useColour();
  const tint = { completed: "green", skipped: "dim", failed: "red" } as const;
  const rows: Cell[][] = report.steps.map((event) => [
    event.step,
    { text: event.status, colour: tint[event.status] },
    event.detail,
  ]);
  console.log(table(["STEP", "STATUS", "DETAIL"], rows, colour).join("\n"));
  console.log("");
  const { twin } = report;
  if (report.dryRun) {
    console.log(paint("Dry run: nothing was created.", "bold", colour));
    console.log(`Would create: "${twin.name}"`);
  } else {
    console.log(paint("Twin client created.", "bold", colour));
    console.log(`Created: "${twin.name}" (${twin.id})`);
    console.log(
      `Stored: ${clientIdEnvVar(report.to)} and ${
        clientSecretEnvVar(report.to)
      } in ${report.sink.replace(/^env file /, "")}`,
    );
  }
  console.log(`  grant type: ${twin.authorizedGrantType}`);
  console.log(
    `  roles: ${
      twin.roleDivisions.length === 0
        ? "none"
        : twin.roleDivisions.map((pair) =>
          `${pair.roleId} in ${
            pair.divisionId === "*" ? "all divisions" : pair.divisionId
          }`
        ).join(", ")
    }`,
  );
  console.log(
    `  token lifetime: ${twin.accessTokenValiditySeconds ?? "default"} s`,
  );
  if (replaced) {
    console.log(
      `Replaced: OAuth client ${replaced} is no longer configured; it still exists in Genesys Cloud.`,
    );
  }
  console.log(`Next: ${report.nextStep}`);
}

if (import.meta.main) {
  Deno.exit(await runTask("setup", main, Deno.args));
}

/** A set-up that failed: its error (and timeline, with `--json`) told; the exit code. */
function reportSetupFailure(error: TwinSetupError, json: boolean): number {
  if (json) {
    console.log(JSON.stringify(
      {
        ok: false,
        error: {
          code: error.code,
          step: error.step,
          needsGrant: error.needsGrant,
          ...(error.createdClientId
            ? { createdClientId: error.createdClientId }
            : {}),
          message: error.message,
        },
        steps: error.steps,
      },
      null,
      2,
    ));
  } else {
    console.error(error.message);
  }
  return error.needsGrant ? EXIT_USAGE : EXIT_FAILED;
}
