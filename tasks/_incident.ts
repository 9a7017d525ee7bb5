/**
 * `deno task incident --compromised <label> [--kill-tokens]`: incident mode
 * on every target: the env file (one host, or services that follow it) or a
 * fleet store (`--kv`, `--redis`; the new secrets sealed into it). Rotates
 * the other label when the compromised one serves traffic, proves that every
 * instance has loaded it and serves it (heartbeats; for the env file, the
 * `--reload-wait`), then regenerates the compromised credential, with
 * `--kill-tokens` disabling it first to invalidate every token it issued.
 * `deno task rotate --compromised` hands over to it.
 *
 * @module
 */
import type { CredentialInput } from "../src/config.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { AbortedError } from "../src/errors.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  PROVIDER_ENV_VARS,
  type ProviderEnvConfig,
  type ProviderHandle,
  readProviderEnv,
  SECRET_ID_ENV_VARS,
  secretIdEnvVar,
} from "../src/providers/env.ts";
import {
  createFileIncidentJournal,
  DEFAULT_RELOAD_WAIT_MS,
  envFileLoadProof,
  type IncidentAdmin,
  IncidentError,
  type IncidentEvent,
  type IncidentReport,
  type LoadRequest,
  respondToCompromise,
} from "../src/rotation/incident.ts";
import {
  createEnvFileSink,
  type SecretSink,
  setEnvFileValue,
} from "../src/rotation/sinks.ts";
import {
  acquireStoreLock,
  FleetNotLoadedError,
  type StoreLock,
  StoreLockedError,
} from "../src/fleet/operator.ts";
import { fleetIncidentPorts } from "../src/fleet/store_flows.ts";
import type { Secret } from "../src/secret.ts";
import {
  type Cell,
  COMMON_OPTIONS,
  envFileOption,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_LOCKED,
  failpointHook,
  labelOption,
  paint,
  parseSeconds,
  parseTaskArgs,
  printFailure,
  readRotationVariables,
  readRotationVariablesNoting,
  reportingRateLimits,
  setUpLogging,
  table,
  taskLogLevel,
  type TaskOptions,
  UsageError,
  useColour,
} from "./_cli.ts";
import {
  FLEET_EXIT_CODES_HELP,
  fleetStoreArgs,
  instanceTable,
  openOperatorFleet,
  sealKeysFromEnv,
} from "./_fleet.ts";
import { checkWritable } from "../src/rotation/preflight.ts";
import {
  lockUnchanged,
  onInterrupt,
  refuseWrittenOverrides,
} from "./_signals.ts";

/** The longest `--reload-wait`, in ms. */
const MAX_RELOAD_WAIT_MS = 300_000;

/** The options the incident parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  compromised: { type: "string" },
  "kill-tokens": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
  fresh: { type: "boolean", default: false },
  "env-file": { type: "string", default: ".env" },
  "reload-wait": { type: "string" },
  kv: { type: "string" },
  redis: { type: "string" },
  prefix: { type: "string", default: "dual-secret-auth" },
  scope: { type: "string" },
  timeout: { type: "string" },
  force: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
} as const satisfies TaskOptions;

const HELP = `Usage: deno task incident --compromised <blue|green> [options]
       deno task incident --compromised <blue|green> --kv <path> | --redis <url|env> [options]
       (deno task rotate --compromised <blue|green> runs the same)

Incident mode: the secret of <label> has leaked. No instance is ever left
without a working credential:
  1. If <label> serves traffic, the other client is rotated: its new secret is
     stored where the instances read it (the env file; or sealed into the
     fleet store with --kv/--redis, as rotate --kv does) and proved.
  2. Every instance must have loaded it: a fleet's heartbeats report the
     secret generation each instance proved; services that follow the env
     file get --reload-wait after its last write.
  3. The other label is promoted, and again every instance must serve it.
  4. Only then is <label> touched: with --kill-tokens its OAuth client is
     disabled (Genesys then rejects every token it issued), its secret is
     regenerated at once and stored, and it is enabled again.
A timeline of the steps is printed at the end.

Options:
  --compromised <label>  the leaked credential: blue or green (required)
  --kill-tokens          also invalidate every outstanding token of it
  --yes                  do not ask for confirmation (required without a terminal)
  --dry-run              plan and run the pre-flight checks only (files writable, the
                         admin client can read the compromised client); change nothing
  --fresh                ignore an unfinished incident journal (<env-file>.incident.json)
                         and start over; without it, a re-run resumes where the last
                         one stopped and never regenerates a secret it already stored
  --env-file <path>      the env file to read (and, without a store, update) (default .env)
  --reload-wait <s>      env file: how long services that follow it take to
                         load a change (default ${
  DEFAULT_RELOAD_WAIT_MS / 1000
}: envFileSource re-reads every
                         second, then proves a new active label with a token request;
                         at most 300)
  --kv <path>            a fleet's Deno KV database: the new secrets are sealed
                         into it (DUAL_SECRET_SEAL_KEY) and the heartbeats prove them
  --redis <url|env>      or a fleet's Redis; env reads REDIS_URL, which keeps a
                         password off the command line
  --prefix <a/b>         the fleet's key prefix (default dual-secret-auth)
  --scope <scope>        the scope the service requests, if any (part of its namespace)
  --timeout <s>          fleet: how long to wait for the heartbeats at each
                         step (default 60)
  --force                fleet: go on after --timeout although some instances
                         did not report (they may fail calls; recorded in the audit trail)
  --json                 print the report as JSON
  --verbose              log debug details to stderr
  -h, --help             show this help
  -V, --version          show the version

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/**
 * Runs the incident task. Errors are thrown, not reported: wrap it in
 * `runTask` (tasks/_cli.ts) for a one-line message and an exit code.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code; the process is left running.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const values = parseTaskArgs("deno task incident", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  // parseArgs keeps the last of a repeated option: naming two labels must
  // not silently treat the other one as leaked (and disable it).
  const named = new Set(
    args.flatMap((arg, i) =>
      arg === "--compromised"
        ? [args[i + 1] ?? ""]
        : arg.startsWith("--compromised=")
        ? [arg.slice("--compromised=".length)]
        : []
    ).map((text) => text.trim().toLowerCase()),
  );
  if (named.size > 1) {
    throw new UsageError(
      `--compromised: ${
        [...named].join(" and ")
      } given; name the leaked credential once. Nothing was changed.`,
    );
  }
  const label = labelOption("--compromised", values.compromised);
  if (label !== "blue" && label !== "green") {
    throw new UsageError(
      values.compromised === undefined
        ? "Name the leaked credential with --compromised blue or --compromised green."
        : `--compromised: "${values.compromised}" is not blue or green.`,
    );
  }
  if (values.kv !== undefined && values.redis !== undefined) {
    throw new UsageError(
      "pass one fleet store: --kv <path> or --redis <url>, not both",
    );
  }
  const fleet = values.kv !== undefined || values.redis !== undefined;
  for (
    const [flag, given] of [
      ["--timeout", values.timeout !== undefined],
      ["--force", values.force],
      ["--prefix", values.prefix !== "dual-secret-auth"],
      ["--scope", values.scope !== undefined],
    ] as const
  ) {
    if (given && !fleet) {
      throw new UsageError(`${flag} needs a fleet store: --kv or --redis`);
    }
  }
  if (fleet && values["reload-wait"] !== undefined) {
    throw new UsageError(
      "--reload-wait is for services that follow the env file; a fleet's instances report what they loaded (--timeout bounds the wait)",
    );
  }
  const reloadWaitMs = parseSeconds("--reload-wait", values["reload-wait"]) ??
    DEFAULT_RELOAD_WAIT_MS;
  // Bounded: the leaked credential stays valid while it runs, and a timer
  // past 2^31 - 1 ms would fire at once.
  if (reloadWaitMs > MAX_RELOAD_WAIT_MS) {
    throw new UsageError(
      `--reload-wait: at most ${
        MAX_RELOAD_WAIT_MS / 1000
      } seconds (the leaked credential stays valid while it waits)`,
    );
  }
  const timeoutMs = parseSeconds("--timeout", values.timeout) ?? 60_000;
  const envFile = envFileOption(values["env-file"]);
  const killTokens = values["kill-tokens"];
  const dryRun = values["dry-run"];
  const log = await setUpLogging("incident", taskLogLevel(values));

  const names = [...PROVIDER_ENV_VARS, ...SECRET_ID_ENV_VARS];
  let variables: Record<string, string | undefined>;
  if (fleet) {
    // The env file gives the client ids, the admin client and the region;
    // nothing is written to it.
    variables = await readRotationVariables(envFile, (o) => {
      console.error(
        `Notice: ${o.variable} from the shell environment wins over ${envFile}.`,
      );
    }, names);
  } else {
    const read = await readRotationVariablesNoting(envFile, names);
    // It decides from the active label and writes secrets and the active
    // label to the file: a shell value that differs would make it act on
    // the wrong label.
    refuseWrittenOverrides(read.overrides, envFile);
    variables = read.variables;
  }
  const read = readProviderEnv(variables);
  if (fleet && read.genesys === undefined) {
    // The seam is respondToCompromise's provider option; the fleet targets
    // (tasks/_rotate_fleet.ts, src/fleet/) give it none yet.
    throw new UsageError(
      `incident with a fleet store (--kv, --redis) speaks Genesys Cloud only so far; AUTH_PROVIDER is ${read.provider}. ` +
        `Run it on the env file (without --kv/--redis) for ${read.title}. Nothing was changed.`,
    );
  }
  // Another provider: its adapter behind the engine's port (only it is loaded).
  await using handle: ProviderHandle | undefined = read.genesys
    ? undefined
    : await read.createProvider({
      fetch: reportingRateLimits((line) => console.error(line)),
    });
  const provider = handle?.provider;
  if (provider !== undefined && killTokens) {
    throw new UsageError(
      `--kill-tokens: ${provider.name} cannot invalidate the tokens already issued with the leaked secret: ${
        provider.issuedTokens ??
          "its API has no call for it; they stay valid until they expire"
      }. Run without --kill-tokens. Nothing was changed.`,
    );
  }
  // Required before anything is read: a secret enters the store only sealed
  // (the store target reads the same variable).
  if (fleet) await sealKeysFromEnv(true);
  await using opened = fleet
    ? await openOperatorFleet(values, read.tokenUrl)
    : undefined;
  const target = opened?.target;
  const shared = target && await target.store.readActive(target.service);
  // A fleet's active label and secrets are the store's: the env file's may
  // be long out of date.
  const active = shared?.label ?? read.active;
  const credentials: CredentialInput[] = target
    ? await target.credentials(read.genesys!.credentials)
    : read.genesys
    ? [...read.genesys.credentials]
    : [...read.credentials];
  const compromised = credentials.find((c) => c.label === label)!;
  const other = credentials.find((c) => c.label !== label)!;
  refuseChangedAdmin(
    read,
    active === label ? [compromised, other] : [
      compromised,
    ],
    compromised,
    killTokens,
  );

  const where = values.kv !== undefined
    ? `the fleet in ${values.kv}`
    : values.redis !== undefined
    ? "the fleet in the Redis"
    : envFile;
  if (!values.yes && !dryRun) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to act without confirmation: there is no terminal to ask on. Pass --yes.",
      );
    }
    const act = provider?.model === "two-secrets"
      ? `revoke the ${provider.name} secret of`
      : "regenerate";
    const question = `${
      active === label
        ? `Rotate and promote "${other.label}", then ${act}`
        : act[0].toUpperCase() + act.slice(1)
    } "${label}" (OAuth client ${compromised.clientId})${
      killTokens ? ", disabling it to kill its tokens," : ""
    } for ${where} now?`;
    if (!confirm(question)) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }

  const command = `incident ${args.join(" ")}`.trim();
  // One command per env file at a time, as rotate and promote: a rotation
  // running meanwhile would regenerate or overwrite what this one stores.
  // With a store too: its lock lets the same operator name in again (to
  // resume after a crash), and this OS lock, dropped when its holder dies,
  // keeps a second run from this host out while the first is alive.
  await using _fleetEnvLock = target && !dryRun
    ? await lockUnchanged(envFile, command, variables)
    : undefined;
  let storeLock: StoreLock | undefined;
  if (target && !dryRun) {
    try {
      // Renewed at every step; a killed run's lock lapses after this.
      storeLock = await acquireStoreLock(
        target,
        command,
        Math.max(120_000, timeoutMs * 2),
      );
    } catch (error) {
      if (!(error instanceof StoreLockedError)) throw error;
      printFailure(
        { exitCode: EXIT_LOCKED, code: error.code, message: error.message },
        values.json,
      );
      return EXIT_LOCKED;
    }
  } else if (!target) {
    // Before anything is created or regenerated: its secret is shown once,
    // and goes straight into this file (rotate checks the same way).
    const writable = await checkWritable(envFile);
    for (const warning of writable.warnings) log.warn(warning);
  }
  await using _storeLock = storeLock;
  await using _envLock = target || dryRun
    ? undefined
    : await lockUnchanged(envFile, command, variables);

  // The latest secret of each label: the other one changes on the way.
  const latest = new Map<string, Secret>(
    credentials.map((c) => [c.label, c.clientSecret as Secret]),
  );
  const ports = target && fleetIncidentPorts(target, {
    compromised: label,
    timeoutMs,
    force: values.force,
    onForced: (error) =>
      console.error(
        `WARNING: --force: going on although ${error.message}\n${
          instanceTable(error.stragglers, Date.now()).join("\n")
        }`,
      ),
    progress: (line) => console.error(`incident: ${line}`),
    ...(storeLock ? { lock: storeLock } : {}),
  });
  const inner: SecretSink = ports?.sink ??
    createEnvFileSink(envFile, {
      keyFor: read.secretVariable,
      ...(read.model === "two-secrets"
        ? { secretIdKeyFor: secretIdEnvVar }
        : {}),
    });
  const sink: SecretSink = {
    name: inner.name,
    async publish(update) {
      await inner.publish(update);
      latest.set(update.label, update.secret);
    },
  };
  const config = read.genesys;
  await using admins = config && new AdminPool(config.tokenUrl, config.apiUrl);
  const adminFor = (to: "other" | "compromised"): IncidentAdmin => {
    if (!config || !admins) throw new Error("unreachable: not Genesys Cloud");
    if (config.admin) return admins.for({ label: "admin", ...config.admin });
    // Never the credential being changed: rotating the other label is
    // administered by the compromised one (still valid until disabled),
    // everything on the compromised one by the other, with its new secret.
    const by = to === "other" ? compromised : other;
    return admins.for({ ...by, clientSecret: latest.get(by.label)! });
  };
  const onPromote = ports
    ? (to: string) => ports.onPromote(to)
    : (to: string) => setEnvFileValue(envFile, read.activeVariable, to);
  const awaitLoaded = ports
    ? (request: LoadRequest) => ports.awaitLoaded(request)
    : envFileLoadProof(envFile, { reloadWaitMs });
  const timeline: IncidentEvent[] = [];
  const failpoint = failpointHook();

  // SIGTERM too: killed during the regenerate call, the new secret would be lost.
  await using interrupt = onInterrupt();
  let report: IncidentReport;
  try {
    report = await respondToCompromise({
      compromised: label,
      credentials,
      active,
      tokenUrl: read.tokenUrl,
      ...(provider
        ? {
          provider,
          secretIds: read.secretIds,
          ...(read.scope === undefined ? {} : { scope: read.scope }),
          ...(read.tokenParams === undefined
            ? {}
            : { tokenParams: read.tokenParams }),
        }
        : { adminFor }),
      sink,
      onPromote,
      awaitLoaded,
      killTokens,
      dryRun,
      fresh: values.fresh,
      // The env file's journal, or the fleet store's (resumed from any host).
      journal: ports?.journal ??
        createFileIncidentJournal(`${envFile}.incident.json`),
      commands: {
        // On a fleet, with its store: --fresh alone would name the env file's journal.
        fresh: `run deno task incident --compromised ${label}${
          target ? ` ${fleetStoreArgs(values)}` : ""
        } --fresh`,
      },
      signal: interrupt.signal,
      onStep: (event) => {
        timeline.push(event);
        logStep(log, event);
        if (!dryRun) ports?.recordStep(event);
      },
      ...(failpoint
        ? { failpoint: (step: string) => failpoint(`incident:${step}`) }
        : {}),
    });
  } catch (error) {
    await ports?.settled();
    if (error instanceof AbortedError) {
      const state = interruptedState(
        timeline,
        label,
        other.label,
        active === label,
      );
      if (!values.json) printTimeline(timeline);
      printFailure(
        {
          exitCode: EXIT_INTERRUPTED,
          code: error.code,
          message: `Interrupted (Ctrl-C or SIGTERM) after the step "${
            timeline.at(-1)?.step ?? "none"
          }".\nState: ${state}\nNext: run the same command again; it finishes the response.`,
        },
        values.json,
        { steps: timeline },
      );
      return EXIT_INTERRUPTED;
    }
    if (!(error instanceof IncidentError)) throw error;
    const stragglers = error.cause instanceof FleetNotLoadedError
      ? error.cause.stragglers
      : [];
    if (values.json) {
      console.log(JSON.stringify(
        {
          ok: false,
          error: { code: error.code, step: error.step, message: error.message },
          steps: error.steps,
          ...(stragglers.length === 0
            ? {}
            : { stragglers: stragglers.map((s) => s.instanceId) }),
        },
        null,
        2,
      ));
    } else {
      printTimeline(error.steps);
      console.error(error.message);
      if (stragglers.length > 0) {
        console.error(instanceTable(stragglers, Date.now()).join("\n"));
      }
    }
    return EXIT_FAILED;
  }
  await ports?.settled();
  if (values.json) {
    console.log(JSON.stringify({ ok: true, ...report }, null, 2));
  } else {
    printTimeline(report.steps);
    console.log("");
    if (report.dryRun) {
      console.log(
        paint("Dry run: nothing was changed.", "bold", useColour()),
      );
      console.log(`Next: ${report.nextStep}`);
      return 0;
    }
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

/** What an interrupted response leaves, from the last step it recorded. */
function interruptedState(
  steps: readonly IncidentEvent[],
  compromised: string,
  other: string,
  compromisedWasActive: boolean,
): string {
  const done = new Set(
    steps.filter((s) => s.status !== "failed").map((s) => s.step),
  );
  if (done.has("verify") || done.has("enable")) {
    return `${compromised} has a new secret, stored and enabled; ${other} serves traffic. Only the final proof did not run.`;
  }
  if (done.has("disable") && steps.at(-1)?.status === "completed") {
    return `${compromised} is disabled (its tokens are dead) and its leaked secret is not yet regenerated; ${other} serves traffic.`;
  }
  if (done.has("propagate") && !done.has("promote") && compromisedWasActive) {
    return `${other} has a new secret the instances loaded, and the switch to it may have begun; ${compromised} is unchanged (not disabled, not regenerated).`;
  }
  if (done.has("promote") || !compromisedWasActive) {
    return `${other} serves traffic; ${compromised} is unchanged (not disabled, not regenerated).`;
  }
  return `${compromised} still serves traffic${
    done.has("rotate-other")
      ? ` (${other} has a new secret, stored, not yet promoted)`
      : ""
  }; ${compromised} is unchanged (not disabled, not regenerated).`;
}

/** The admin credential must not be one whose secret (or state) changes here. */
function refuseChangedAdmin(
  read: ProviderEnvConfig,
  changed: readonly CredentialInput[],
  compromised: CredentialInput,
  killTokens: boolean,
): void {
  const adminId = read.genesys
    ? read.genesys.admin?.clientId
    : read.admin.credential?.clientId;
  const variable = read.genesys
    ? "GENESYS_ADMIN_CLIENT_ID"
    : "AUTH_ADMIN_CLIENT_ID";
  const adminChanged = changed.find((c) => c.clientId === adminId);
  if (adminChanged) {
    throw new UsageError(
      `${variable} is the ${adminChanged.label} client ${adminChanged.clientId}, whose secret this ` +
        `incident response changes${
          adminChanged === compromised && killTokens
            ? " (and disabling it would end its own admin token)"
            : ""
        }. Set ${variable}/SECRET to a third client${
          read.genesys ? ", or unset them" : ""
        }.`,
    );
  }
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
