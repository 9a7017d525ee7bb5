/**
 * `deno task rotate --kv <path>`: the staged rotation of a fleet, with the
 * fleet store as sink (the new secret sealed with `DUAL_SECRET_SEAL_KEY`),
 * journal and lock, behind the safe revoke gate: it refuses to regenerate a
 * credential while a live instance has it active, holds a token of it, or
 * used one within a token's lifetime (`--force` overrides, recorded). Every
 * step goes to the store's audit trail (`deno task fleet --kv <path>
 * --history`).
 *
 * @module
 */
import { PROVIDER_ENV_VARS, readProviderEnv } from "../src/providers/env.ts";
import {
  type RotationReport,
  StagedRotationError,
} from "../src/rotation/staged_rotation.ts";
import { passRevokeGate, StoreLockedError } from "../src/fleet/operator.ts";
import {
  type FleetProviderFactory,
  fleetRotation,
  genesysAdminProvider,
  planFleetRotation,
  promoteFleet,
  providerAdapterFactory,
  resumesPastRegenerate,
  RETIRE_GATE_SHUT,
  RetireGateShutError,
  runScheduler,
} from "../src/fleet/store_flows.ts";
import type { StoreTarget } from "../src/fleet/store_target.ts";
import { readScheduleState } from "../src/fleet/schedule.ts";
import {
  adminTokenSource,
  boundedMs,
  commandLine,
  COMMON_OPTIONS,
  describeFailure,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_LOCKED,
  EXIT_USAGE,
  explain,
  failpointHook,
  labelOption,
  OperatorError,
  parseSeconds,
  parseTaskArgs,
  printFailure,
  readRotationVariables,
  reportingRateLimits,
  type TaskOptions,
  UsageError,
} from "./_cli.ts";
import {
  EXIT_GATE_SHUT,
  FLEET_EXIT_CODES_HELP,
  fleetStoreArgs,
  fleetWords,
  gateShutWords,
  instanceTable,
  openOperatorFleet,
  presenceExpectation,
  requireOneFleetStore,
  sealKeysFromEnv,
} from "./_fleet.ts";
import { lockUnchanged, onInterrupt } from "./_signals.ts";
import { parsePeriod } from "../src/fleet/schedule.ts";

/** The options the rotate parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  kv: { type: "string" },
  redis: { type: "string" },
  prefix: { type: "string", default: "dual-secret-auth" },
  scope: { type: "string" },
  to: { type: "string" },
  "allow-empty": { type: "boolean", default: false },
  "expect-instances": { type: "string" },
  promote: { type: "boolean", default: false },
  timeout: { type: "string" },
  "token-lifetime": { type: "string" },
  force: { type: "boolean", default: false },
  "env-file": { type: "string", default: ".env" },
  "propagation-timeout": { type: "string" },
  fresh: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  every: { type: "string" },
  tick: { type: "string" },
  lease: { type: "string" },
  cycles: { type: "string" },
  "drain-bound": { type: "string" },
  "scheduler-id": { type: "string" },
} as const satisfies TaskOptions;

const HELP = `Usage: deno task rotate --kv <path> | --redis <url|env> [options]

Rotates the standby credential of a fleet that shares a Deno KV store
(createKvFleet): regenerates its secret, seals it with DUAL_SECRET_SEAL_KEY
into the store at once (instances with the same key pick it up, prove it with a
token request and only then use it), proves it, and with --promote sets the
fleet's active label to it and waits for the instances to follow. The journal
and the lock live in the store, so a rotation that dies is resumed from any
host by running the same command again.

Before regenerating, it reads the instances' heartbeats and refuses (exit 4,
with a table) while any live instance has the credential active, holds a token
of it, or used one within --token-lifetime; and when no live instance reports
in the namespace (a forgotten --prefix or --scope, a fleet that is down), with
the instances it sees under other prefixes. The active label is the store's
(its active record, or what every live instance reports), never the env file's
GENESYS_ACTIVE (AUTH_ACTIVE). Ctrl-C and SIGTERM let a regenerated secret be
sealed into the store first, then exit 130 with the state and the next step.

Other providers: with AUTH_PROVIDER=okta|entra|keycloak|cognito|auth0 in the
env file, the same command rotates through that provider's admin API (only its
adapter is loaded), and every token request sends its scope, audience and auth
method. Okta, Entra ID, Cognito and Keycloak (its rotation policy on) keep blue
and green as two secrets of one client: each sealed record carries its
secret's id, the standby's old secret is revoked just before its new one is
issued (behind the same gate), and with --promote the old label's secret is
revoked once no live instance has it active, holds a token of it or used one
within --token-lifetime (watched up to --timeout; else exit 4 with the table,
and the same command run later only revokes it). Its sealed record is then
marked retired: instances stop loading it and promote refuses it. Auth0 uses
twin clients, as Genesys Cloud does.

Options:
  --kv <path>                the fleet's Deno KV database (a file that exists, or a KV Connect URL)
  --redis <url|env>          or the fleet's Redis; env reads REDIS_URL, which keeps a
                             password off the command line (else redis://host:port)
  --prefix <a/b>             the fleet's key prefix, parts separated by "/" (default dual-secret-auth)
  --scope <scope>            the scope the service requests, if any (part of its namespace;
                             default the env file's AUTH_SCOPE)
  --to <label>               rotate this label (default: the one the fleet does not use)
  --allow-empty              proceed although no live instance reports in the namespace
                             (the store's active label, or else GENESYS_ACTIVE, is kept)
  --expect-instances <n>     proceed only when at least n live instances report
  --promote                  after proving the new secret, make it the fleet's active label
  --timeout <s>              with --promote: how long to wait for the instances, and
                             (two secrets on one client) for the old one to go unused
                             (default 60)
  --token-lifetime <s>       how long a token lives, for the gates (default 86400)
  --force                    regenerate even though the gate is shut (recorded in the audit trail)
  --env-file <path>          the env file with the provider, client ids, the admin client
                             and the region (default .env)
  --propagation-timeout <s>  how long to keep proving the new secret (default 60)
  --fresh                    ignore an unfinished journal and start over
  --dry-run                  read the store, plan, check the revoke gate (exit 4 when shut)
                             and the journal; change nothing (no lock, no audit entry)
  --yes                      do not ask for confirmation (required without a terminal)
  --json                     print the outcome as JSON
  -h, --help                 show this help
  -V, --version              show the version

Scheduled rotation (unattended; needs --yes):
  --every <period>           run a full cycle each period (such as 30d, 12h, 90s):
                             rotate the standby behind the gate, wait until every
                             live instance loaded it, promote it, drain; blue and
                             green alternate
  --tick <period>            how often the scheduler looks (default 1s; at most 24d)
  --lease <period>           the leader lease: one of many schedulers acts; a dead
                             leader's cycle is resumed after this (default 30s)
  --drain-bound <period>     the heartbeat bound for draining (default 30s)
  --cycles <n>               stop once the store counts n completed cycles
  --scheduler-id <id>        this scheduler's name in the lease and audit trail

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/**
 * Runs `rotate --kv`.
 *
 * @param args The command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const values = parseTaskArgs("deno task rotate", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  requireOneFleetStore(values);
  const tokenLifetimeMs = parseSeconds(
    "--token-lifetime",
    values["token-lifetime"],
  ) ?? 86_400_000;
  const timeoutMs = parseSeconds("--timeout", values.timeout) ?? 60_000;
  const expectation = presenceExpectation(values);
  const to = labelOption("--to", values.to);
  const schedule = values.every === undefined ? undefined : scheduleSettings(
    values,
  );
  // From here on Ctrl-C and SIGTERM abort a signal instead of killing the
  // process: a secret regenerated meanwhile is sealed into the store first.
  await using interrupt = onInterrupt();
  // Required here, before anything is read: a secret enters the store only
  // sealed (the store target reads the same variable).
  await sealKeysFromEnv(true);
  const variables = await readRotationVariables(values["env-file"], (o) => {
    console.error(
      `Notice: ${o.variable} from the shell environment wins over ${
        values["env-file"]
      }.`,
    );
  }, PROVIDER_ENV_VARS);
  // Genesys Cloud (GENESYS_*), or the provider AUTH_PROVIDER names: only
  // its adapter is loaded, with its own admin credential.
  const config = readProviderEnv(variables);
  // The names the env file uses (GENESYS_* or AUTH_*), for every message.
  const secretVariable = (label: string) =>
    label === "admin"
      ? config.admin.secretVariable
      : config.secretVariable(label);
  // The namespace the instances compute: their token URL and the scope
  // they request (the env file's AUTH_SCOPE unless --scope says).
  const scope = values.scope ?? config.scope;
  await using fleet = await openOperatorFleet(
    { ...values, scope },
    config.tokenUrl,
  );
  const { target } = fleet;
  const progress = (line: string) => console.error(line);
  const storeArgs = fleetStoreArgs(values);

  const genesys = config.genesys;
  const provider: FleetProviderFactory = genesys
    ? genesysAdminProvider({
      tokenUrl: genesys.tokenUrl,
      apiUrl: genesys.apiUrl,
      tokenSource: adminTokenSource,
    })
    : providerAdapterFactory(() =>
      config.createProvider({ fetch: reportingRateLimits(progress) })
    );
  const admin = genesys?.admin;
  const request = {
    ...(config.scope === undefined ? {} : { scope: config.scope }),
    ...(config.tokenParams === undefined
      ? {}
      : { tokenParams: config.tokenParams }),
  };

  if (schedule !== undefined) {
    // A scheduler holds no env file lock while it holds the store's.
    const scheduler = target.as(
      values["scheduler-id"] ?? `${target.by}#${Deno.pid}`,
    );
    console.error(
      `Scheduler ${scheduler.by}: a cycle every ${
        schedule.everyMs / 1000
      } s; leader lease ${schedule.leaseMs / 1000} s.`,
    );
    const completed = await runScheduler(scheduler, {
      ...schedule,
      tokenUrl: config.tokenUrl,
      ...request,
      credentials: config.credentials,
      initialActive: config.active,
      ...(admin ? { admin } : {}),
      provider,
      signal: interrupt.signal,
      presence: expectation,
      tokenLifetimeMs,
      ...optionalMs(
        "propagationTimeoutMs",
        parseSeconds("--propagation-timeout", values["propagation-timeout"]),
      ),
      progress,
      freshCommand: `deno task rotate ${storeArgs} --yes --fresh`,
    });
    const state = await readScheduleState(scheduler);
    console.log(
      `Scheduler ${scheduler.by} stopped: ${completed} cycle(s) completed in the store; next step ${
        state?.step ?? "none"
      }.`,
    );
    return 0;
  }
  const plan = await planFleetRotation(target, {
    credentials: config.credentials,
    envActive: config.active,
    ...(to === undefined ? {} : { to }),
    expectation,
    elsewhere: (now) => fleet.elsewhere(now),
    words: {
      ...fleetWords(storeArgs, values["env-file"]),
      activeVariable: config.activeVariable,
    },
  });
  if (plan.kind === "refused") {
    printFailure(
      { exitCode: EXIT_GATE_SHUT, code: plan.code, message: plan.message },
      values.json,
      plan.details,
    );
    return EXIT_GATE_SHUT;
  }
  if (plan.kind === "usage") throw new UsageError(plan.message);
  const { active, standby, credentials, standbyCredential, live } = plan;
  if (plan.notice !== undefined) console.error(plan.notice);

  if (values["dry-run"]) {
    return await dryRun(target, {
      active,
      standby,
      clientId: standbyCredential.clientId,
      tokenLifetimeMs,
      json: values.json,
      storeArgs,
    });
  }

  if (!values.yes) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to rotate without confirmation: there is no terminal to ask on. Pass --yes.",
      );
    }
    if (
      !confirm(
        `Regenerate the secret of "${standby}" (${standbyCredential.clientId}) for the fleet in ${
          values.kv ?? "the Redis"
        }?`,
      )
    ) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }

  // The env file's OS lock keeps a second run with the same env file out;
  // the store lock, held by one acquisition (not by "operator@<host>"),
  // keeps out every other run, from this host or another.
  await using _envLock = await lockUnchanged(
    values["env-file"],
    commandLine("rotate", args),
    variables,
  );
  let lock;
  try {
    lock = await target.lock(
      commandLine("rotate", args),
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
  await using _lock = lock;

  // A resumed run past its regenerate call has nothing left to gate.
  if (!await resumesPastRegenerate(target, standby, values.fresh)) {
    const gate = await passRevokeGate(
      target,
      { label: standby, clientId: standbyCredential.clientId },
      { tokenLifetimeMs, force: values.force },
    );
    if (!gate.open) {
      const lines = instanceTable(gate.blockers, target.now());
      if (!gate.passes) {
        const words = gateShutWords(gate, standby, storeArgs);
        const message = `${words.head} Nothing was changed.\n` +
          `${lines.join("\n")}\n${words.next}`;
        printFailure(
          { exitCode: EXIT_GATE_SHUT, code: "REVOKE_GATE_SHUT", message },
          values.json,
          { blockers: gate.blockers },
        );
        return EXIT_GATE_SHUT;
      }
      console.error(
        `WARNING: --force: regenerating "${standby}" although the gate is shut (${
          gateShutWords(gate, standby, storeArgs).head
        }); their calls may fail until they move or get the key:\n${
          lines.join("\n")
        }`,
      );
    }
  }

  let promotedStragglers = 0;
  const failpoint = failpointHook();
  const rotation = fleetRotation(target, {
    ...(failpoint ? { failpoint } : {}),
    tokenUrl: config.tokenUrl,
    ...request,
    credentials,
    active,
    standby,
    ...(admin ? { admin } : {}),
    provider,
    secretVariable,
    envFileSecretIds: config.secretIds,
    fresh: values.fresh,
    ...optionalMs(
      "propagationTimeoutMs",
      parseSeconds("--propagation-timeout", values["propagation-timeout"]),
    ),
    progress,
    signal: interrupt.signal,
    // Two-secret providers: after the promotion, the old label's secret is
    // revoked once no live instance holds or uses it (watched up to --timeout).
    ...(values.promote ? { retire: { tokenLifetimeMs, timeoutMs } } : {}),
    ...(values.promote
      ? {
        onPromote: async (label: string) => {
          const outcome = await promoteFleet(target, label, {
            timeoutMs,
            expected: live,
            progress,
            signal: interrupt.signal,
          });
          if (outcome.kind === "refused") {
            throw new OperatorError(
              "PROMOTE_NOT_LOADED",
              `${outcome.stragglers.length} live instance(s) have not proved the new secret of "${label}" within ${
                timeoutMs / 1000
              } s (${
                outcome.stragglers.map((s) => `${s.instanceId}: ${s.reason}`)
                  .join(", ")
              }), so the active label was not changed`,
            );
          }
          promotedStragglers = outcome.stragglers.length;
        },
      }
      : {}),
    commands: {
      rerun: `run the same command again (deno task rotate ${
        args.filter((a) => a !== "--fresh").join(" ")
      })`,
      promote: `run deno task promote ${storeArgs}`,
      fresh: `run deno task rotate ${storeArgs} --yes --fresh`,
    },
  });
  let report: RotationReport;
  try {
    report = await rotation.run();
  } catch (error) {
    if (!(error instanceof StagedRotationError)) throw error;
    const cause = describeFailure(error.cause, "rotate");
    const message =
      `Rotation of "${error.standby}" failed in phase ${error.phase}: ${
        explain(error.cause, config.names).message.replace(/\.$/, "")
      }.\nState: ${error.state}\nNext: ${error.nextStep}`;
    const retireShut = error.cause instanceof RetireGateShutError;
    const exitCode = error.interrupted
      ? EXIT_INTERRUPTED
      : retireShut
      ? EXIT_GATE_SHUT
      : cause.exitCode === EXIT_USAGE
      ? EXIT_USAGE
      : EXIT_FAILED;
    const blockers = retireShut
      ? (error.cause as RetireGateShutError).blockers
      : undefined;
    printFailure(
      {
        exitCode,
        code: error.code,
        causeCode: retireShut ? RETIRE_GATE_SHUT : cause.code,
        message: blockers === undefined
          ? message
          : `${message}\n${instanceTable(blockers, target.now()).join("\n")}`,
      },
      values.json,
      {
        phase: error.phase,
        state: error.state,
        nextStep: error.nextStep,
        interrupted: error.interrupted,
        ...(blockers === undefined ? {} : { blockers }),
      },
    );
    return exitCode;
  }
  const generation = rotation.generation();
  if (interrupt.signal.aborted) {
    // The signal came after the last phase that stops for it (while the
    // promotion waited for the instances): the work is done and recorded.
    const message =
      `Interrupted after the rotation completed: "${standby}" has a new secret sealed in the fleet store${
        values.promote ? ` and is the fleet's active label` : ""
      }; not every live instance was seen to follow.\nNext: check the instances (deno task fleet ${storeArgs}), or run deno task promote ${storeArgs} to wait for them (it changes nothing).`;
    printFailure(
      { exitCode: EXIT_INTERRUPTED, code: "ABORTED", message },
      values.json,
      { interrupted: true, generation, state: "complete" },
    );
    return EXIT_INTERRUPTED;
  }
  if (values.json) {
    console.log(JSON.stringify(
      { ok: true, ...report, generation, stragglers: promotedStragglers },
      null,
      2,
    ));
  } else {
    // The report's labels: a re-run that only retired names the rotation
    // it finished, not the plan's next standby.
    console.log(
      `Rotation complete: "${report.standby}" (${report.clientId}) has a new secret${
        generation === undefined ? "" : ` (generation ${generation})`
      }, sealed in the fleet store${
        values.promote || report.promoted
          ? `; the fleet's active label is "${report.standby}"`
          : ""
      }${
        report.retiredSecretId === undefined
          ? ""
          : `; the old secret ${report.retiredSecretId} of "${report.previousActive}" was revoked`
      }.`,
    );
    for (const warning of report.warnings) console.log(`Warning: ${warning}`);
    console.log(`Next: ${report.nextStep}`);
  }
  return 0;
}

/** A duration option, left out when not given (so the callee's default applies). */
function optionalMs<K extends string>(
  key: K,
  ms: number | undefined,
): { [P in K]?: number } {
  return (ms === undefined ? {} : { [key]: ms }) as { [P in K]?: number };
}

/** The scheduler's options, validated before anything is opened. */
function scheduleSettings(values: {
  readonly yes: boolean;
  readonly every?: string | undefined;
  readonly tick?: string | undefined;
  readonly lease?: string | undefined;
  readonly "drain-bound"?: string | undefined;
  readonly cycles?: string | undefined;
}): {
  everyMs: number;
  tickMs: number;
  leaseMs: number;
  drainBoundMs: number;
  cycles?: number;
} {
  if (!values.yes) {
    throw new UsageError("--every runs unattended: pass --yes as well");
  }
  // `timer`: the value (or a third of it) goes to a timer, and a timer past
  // 2^31 - 1 ms fires at once; --every is only compared with timestamps.
  const period = (
    flag: string,
    text: string | undefined,
    fallback: number,
    timer: boolean,
  ) => {
    if (text === undefined) return fallback;
    const ms = parsePeriod(text);
    if (ms === undefined || !Number.isSafeInteger(Math.round(ms))) {
      throw new UsageError(
        `${flag} needs a period such as 30d, 12h, 15m or 90s`,
      );
    }
    return timer ? boundedMs(flag, ms, text) : ms;
  };
  const cycles = values.cycles === undefined
    ? undefined
    : Number(values.cycles);
  if (cycles !== undefined && !(Number.isInteger(cycles) && cycles > 0)) {
    throw new UsageError("--cycles needs a whole number, such as 3");
  }
  return {
    everyMs: period("--every", values.every, 0, false),
    tickMs: period("--tick", values.tick, 1_000, true),
    leaseMs: period("--lease", values.lease, 30_000, true),
    drainBoundMs: period("--drain-bound", values["drain-bound"], 30_000, true),
    ...(cycles === undefined ? {} : { cycles }),
  };
}

/**
 * `rotate --kv … --dry-run`: what a rotation would do, read from the store.
 * Reads only: no lock, no audit entry, no journal write.
 */
async function dryRun(
  target: StoreTarget,
  plan: {
    active: string;
    standby: string;
    clientId: string;
    tokenLifetimeMs: number;
    json: boolean;
    storeArgs: string;
  },
): Promise<number> {
  const gate = await target.gate(
    { label: plan.standby, clientId: plan.clientId },
    plan.tokenLifetimeMs,
  );
  const unfinished = await target.journal.read();
  const open = unfinished !== undefined && unfinished.completedAt === undefined
    ? unfinished
    : undefined;
  const exitCode = gate.open ? 0 : EXIT_GATE_SHUT;
  if (plan.json) {
    console.log(JSON.stringify(
      {
        ok: gate.open,
        dryRun: true,
        exitCode,
        active: plan.active,
        standby: plan.standby,
        clientId: plan.clientId,
        gate: {
          open: gate.open,
          instances: gate.instances,
          blockers: gate.blockers,
        },
        ...(open === undefined
          ? {}
          : { unfinished: { standby: open.standby, phase: open.phase } }),
      },
      null,
      2,
    ));
    return exitCode;
  }
  console.log(
    `Plan: regenerate "${plan.standby}" (${plan.clientId}) while "${plan.active}" serves the fleet; seal it into the store.`,
  );
  if (open !== undefined) {
    console.log(
      `Unfinished rotation of "${open.standby}" (last phase: ${open.phase}): the same command without --dry-run resumes it.`,
    );
  }
  if (gate.open) {
    console.log(
      `Revoke gate: open (${gate.instances} live instance(s), none uses "${plan.standby}").`,
    );
  } else {
    const words = gateShutWords(gate, plan.standby, plan.storeArgs);
    console.log(
      `Revoke gate: shut. ${words.head}\n${
        instanceTable(gate.blockers, target.now()).join("\n")
      }\n${words.next}`,
    );
  }
  console.log("Dry run: nothing was changed.");
  return exitCode;
}
