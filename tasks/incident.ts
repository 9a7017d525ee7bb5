/**
 * `deno task incident --compromised <label> [--kill-tokens]`: incident mode
 * for one host (the env file): take the compromised credential out of
 * service, regenerate it at once, and with `--kill-tokens` invalidate every
 * token it issued. `deno task rotate --compromised` hands over to it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { CredentialInput } from "../src/config.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  ACTIVE_ENV_VAR,
  clientSecretEnvVar,
  readRotationEnv,
} from "../src/rotation/env_config.ts";
import {
  type IncidentAdmin,
  IncidentError,
  type IncidentEvent,
  type IncidentReport,
  respondToCompromise,
} from "../src/rotation/incident.ts";
import {
  createEnvFileSink,
  type SecretSink,
  setEnvFileValue,
} from "../src/rotation/sinks.ts";
import type { Secret } from "../src/secret.ts";
import {
  type Cell,
  envFileOption,
  EXIT_FAILED,
  paint,
  readRotationVariablesNoting,
  runTask,
  setUpLogging,
  table,
  taskLogLevel,
  UsageError,
  useColour,
} from "./_cli.ts";
import { checkWritable } from "../src/rotation/preflight.ts";
import {
  lockUnchanged,
  onInterrupt,
  refuseWrittenOverrides,
} from "./_signals.ts";

const HELP = `Usage: deno task rotate --compromised <blue|green> [options]
       deno task incident --compromised <blue|green> [options]

Incident mode: the secret of <label> has leaked. If <label> serves traffic
(GENESYS_ACTIVE), the other client is rotated and promoted first, without
waiting for a drain (a process still on <label> gets a 401 and fails over).
Then <label>'s secret is regenerated at once and stored in the env file.

With --kill-tokens, <label>'s OAuth client is disabled first (Genesys then
rejects every token it issued and gives it no new ones), regenerated while
disabled, and enabled again with its new secret: tokens from before stay dead.

Options:
  --compromised <label>  the leaked credential: blue or green (required)
  --kill-tokens          also invalidate every outstanding token of it
  --yes                  do not ask for confirmation (required without a terminal)
  --env-file <path>      the env file to read and update (default .env)
  --json                 print the report as JSON
  --verbose              log debug details to stderr
  -h, --help             show this help

Exit codes: 0 done, 1 failed (the message says what state is left), 2 bad input,
3 another rotate, promote, setup or incident holds the env file's lock, 130 interrupted.
`;

/**
 * Runs the incident task. Errors are thrown, not reported: wrap it in
 * {@linkcode runTask} for a one-line message and an exit code.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code; the process is left running.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      compromised: { type: "string" },
      "kill-tokens": { type: "boolean", default: false },
      yes: { type: "boolean", default: false },
      "env-file": { type: "string", default: ".env" },
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
  const label = values.compromised?.trim().toLowerCase();
  if (label !== "blue" && label !== "green") {
    throw new UsageError(
      values.compromised === undefined
        ? "Name the leaked credential with --compromised blue or --compromised green."
        : `--compromised: "${values.compromised}" is not blue or green.`,
    );
  }
  const envFile = envFileOption(values["env-file"]);
  const killTokens = values["kill-tokens"];
  const log = await setUpLogging("incident", taskLogLevel(values));
  const { variables, overrides } = await readRotationVariablesNoting(envFile);
  // It decides from GENESYS_ACTIVE and writes secrets and GENESYS_ACTIVE to
  // the file: a shell value that differs would make it act on the wrong label.
  refuseWrittenOverrides(overrides, envFile);
  const config = readRotationEnv(variables);
  const compromised = config.credentials.find((c) => c.label === label)!;
  const other = config.credentials.find((c) => c.label !== label)!;
  // The admin credential must not be one whose secret (or state) changes here.
  const changed = config.active === label
    ? [compromised, other]
    : [compromised];
  const adminChanged = changed.find((c) =>
    c.clientId === config.admin?.clientId
  );
  if (adminChanged) {
    throw new UsageError(
      `GENESYS_ADMIN_CLIENT_ID is the ${adminChanged.label} client ${adminChanged.clientId}, whose secret this ` +
        `incident response changes${
          adminChanged === compromised && killTokens
            ? " (and disabling it would end its own admin token)"
            : ""
        }. Set GENESYS_ADMIN_CLIENT_ID/SECRET to a third client, or unset them.`,
    );
  }

  if (!values.yes) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to act without confirmation: there is no terminal to ask on. Pass --yes.",
      );
    }
    const question = `${
      config.active === label
        ? `Rotate and promote "${other.label}", then regenerate`
        : "Regenerate"
    } "${label}" (OAuth client ${compromised.clientId})${
      killTokens ? ", disabling it to kill its tokens," : ""
    } now?`;
    if (!confirm(question)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }

  // Before anything is created or regenerated: its secret is shown once,
  // and goes straight into this file (rotate checks the same way).
  const writable = await checkWritable(envFile);
  for (const warning of writable.warnings) log.warn(warning);
  // One command per env file at a time, as rotate and promote: a rotation
  // running meanwhile would regenerate or overwrite what this one stores.
  await using _lock = await lockUnchanged(
    envFile,
    `incident ${args.join(" ")}`.trim(),
    variables,
  );
  // The latest secret of each label: the other one changes on the way.
  const latest = new Map<string, Secret>(
    config.credentials.map((c) => [c.label, c.clientSecret as Secret]),
  );
  const envSink = createEnvFileSink(envFile, { keyFor: clientSecretEnvVar });
  const sink: SecretSink = {
    name: envSink.name,
    async publish(update) {
      await envSink.publish(update);
      latest.set(update.label, update.secret);
    },
  };
  await using admins = new AdminPool(config.tokenUrl, config.apiUrl);
  const adminFor = (target: "other" | "compromised"): IncidentAdmin => {
    if (config.admin) return admins.for({ label: "admin", ...config.admin });
    // Never the credential being changed: rotating the other label is
    // administered by the compromised one (still valid until disabled),
    // everything on the compromised one by the other, with its new secret.
    const by = target === "other" ? compromised : other;
    return admins.for({ ...by, clientSecret: latest.get(by.label)! });
  };

  // SIGTERM too: killed during the regenerate call, the new secret would be lost.
  await using interrupt = onInterrupt();
  let report: IncidentReport;
  try {
    report = await respondToCompromise({
      compromised: label,
      credentials: config.credentials,
      active: config.active,
      tokenUrl: config.tokenUrl,
      adminFor,
      sink,
      onPromote: (to) => setEnvFileValue(envFile, ACTIVE_ENV_VAR, to),
      killTokens,
      signal: interrupt.signal,
      onStep: (event) => logStep(log, event),
    });
  } catch (error) {
    if (!(error instanceof IncidentError)) throw error;
    if (values.json) {
      console.log(JSON.stringify(
        {
          ok: false,
          error: { code: error.code, step: error.step, message: error.message },
          steps: error.steps,
        },
        null,
        2,
      ));
    } else {
      printTimeline(error.steps);
      console.error(error.message);
    }
    return EXIT_FAILED;
  }
  if (values.json) {
    console.log(JSON.stringify({ ok: true, ...report }, null, 2));
  } else {
    printTimeline(report.steps);
    console.log("");
    console.log(paint("Incident response complete.", "bold", useColour()));
    console.log(
      `Compromised: ${report.compromised} (${report.clientId})   active: ${report.active}   tokens killed: ${
        report.tokensKilled ? "yes" : "no"
      }`,
    );
    console.log(`Next: ${report.nextStep}`);
  }
  return 0;
}

/** One admin client per credential, and their token caches, closed together. */
class AdminPool implements AsyncDisposable {
  readonly #clients = new Map<string, IncidentAdmin>();
  readonly #auths: AsyncDisposable[] = [];

  constructor(readonly tokenUrl: string, readonly apiUrl: string) {}

  for(credential: CredentialInput): IncidentAdmin {
    const secret = credential.clientSecret as Secret;
    const key = `${credential.clientId}\n${secret.reveal()}`;
    const known = this.#clients.get(key);
    if (known) return known;
    const auth = createDualSecretAuth({
      credentials: [credential],
      tokenUrl: this.tokenUrl,
    });
    this.#auths.push(auth);
    const admin = createGenesysAdminClient({
      apiUrl: this.apiUrl,
      getAccessToken: (options) => auth.getAccessToken(options),
      invalidateToken: (token) => auth.invalidate(token),
    });
    this.#clients.set(key, admin);
    return admin;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const auth of this.#auths) await auth[Symbol.asyncDispose]();
  }
}

function logStep(
  log: Awaited<ReturnType<typeof setUpLogging>>,
  event: IncidentEvent,
): void {
  const properties = { ...event };
  if (event.status === "failed") log.debug("{step} failed", properties);
  else log.info("{step} {status}: {detail}", properties);
}

function printTimeline(steps: readonly IncidentEvent[]): void {
  const colour = useColour();
  const tint = { completed: "green", skipped: "dim", failed: "red" } as const;
  const rows: Cell[][] = steps.map((event) => [
    `+${(event.elapsedMs / 1000).toFixed(2)} s`,
    event.step,
    { text: event.status, colour: tint[event.status] },
    event.detail,
  ]);
  console.log(
    table(["TIME", "STEP", "STATUS", "DETAIL"], rows, colour).join("\n"),
  );
}

if (import.meta.main) {
  Deno.exit(await runTask("incident", main, Deno.args));
}
