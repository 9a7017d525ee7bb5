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
import { parseArgs } from "node:util";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  readRotationEnv,
  type RotationEnvConfig,
} from "../src/rotation/env_config.ts";
import type { RotationJournal } from "../src/rotation/journal.ts";
import {
  type RotationCommands,
  type RotationReport,
  runStagedRotation,
  StagedRotationError,
} from "../src/rotation/staged_rotation.ts";
import {
  acquireStoreLock,
  audit,
  checkRevokeGate,
  createSealedStoreSink,
  createStoreJournal,
  credentialsFromStore,
  type FleetTarget,
  StoreLockedError,
} from "../src/fleet/operator.ts";
import type { CredentialInput } from "../src/config.ts";
import type { SealKeyring } from "../src/fleet/distribution.ts";
import {
  adminTokenSource,
  describeFailure,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_LOCKED,
  EXIT_USAGE,
  explain,
  printFailure,
  readRotationVariables,
  UsageError,
} from "./_cli.ts";
import {
  EXIT_GATE_SHUT,
  FLEET_EXIT_CODES_HELP,
  instanceTable,
  openOperatorFleet,
  requireOneFleetStore,
  sealKeysFromEnv,
} from "./_fleet.ts";
import { promoteAndWait } from "./promote_fleet.ts";
import { parseSeconds } from "./rotate.ts";
import { runSchedule } from "./rotate_schedule.ts";
import { parsePeriod } from "../src/fleet/schedule.ts";

const HELP = `Usage: deno task rotate --kv <path> [options]

Rotates the standby credential of a fleet that shares a Deno KV store
(createKvFleet): regenerates its secret, seals it with DUAL_SECRET_SEAL_KEY
into the store at once (instances with the same key pick it up, prove it with a
token request and only then use it), proves it, and with --promote sets the
fleet's active label to it and waits for the instances to follow. The journal
and the lock live in the store, so a rotation that dies is resumed from any
host by running the same command again.

Before regenerating, it reads the instances' heartbeats and refuses (exit 4,
with a table) while any live instance has the credential active, holds a token
of it, or used one within --token-lifetime.

Options:
  --kv <path>                the fleet's Deno KV database (file path or KV Connect URL)
  --redis <url>              or the fleet's Redis (redis://user:password@host:port)
  --prefix <a/b>             the fleet's key prefix, parts separated by "/" (default dual-secret-auth)
  --scope <scope>            the scope the service requests, if any (part of its namespace)
  --to <label>               rotate this label (default: the one the fleet does not use)
  --promote                  after proving the new secret, make it the fleet's active label
  --timeout <s>              with --promote: how long to wait for the instances (default 60)
  --token-lifetime <s>       how long a token lives, for the gate (default 86400)
  --force                    regenerate even though the gate is shut (recorded in the audit trail)
  --env-file <path>          the env file with client ids, the admin client and the region (default .env)
  --propagation-timeout <s>  how long to keep proving the new secret (default 60)
  --fresh                    ignore an unfinished journal and start over
  --yes                      do not ask for confirmation (required without a terminal)
  --json                     print the outcome as JSON
  -h, --help                 show this help

Scheduled rotation (unattended; needs --yes):
  --every <period>           run a full cycle each period (such as 30d, 12h, 90s):
                             rotate the standby behind the gate, wait until every
                             live instance loaded it, promote it, drain; blue and
                             green alternate
  --tick <period>            how often the scheduler looks (default 1s)
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
  const { values } = parseArgs({
    args: [...args],
    options: {
      kv: { type: "string" },
      redis: { type: "string" },
      prefix: { type: "string", default: "dual-secret-auth" },
      scope: { type: "string" },
      to: { type: "string" },
      promote: { type: "boolean", default: false },
      timeout: { type: "string" },
      "token-lifetime": { type: "string" },
      force: { type: "boolean", default: false },
      "env-file": { type: "string", default: ".env" },
      "propagation-timeout": { type: "string" },
      fresh: { type: "boolean", default: false },
      yes: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      every: { type: "string" },
      tick: { type: "string" },
      lease: { type: "string" },
      cycles: { type: "string" },
      "drain-bound": { type: "string" },
      "scheduler-id": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  requireOneFleetStore(values);
  const tokenLifetimeMs = parseSeconds(
    "--token-lifetime",
    values["token-lifetime"],
  ) ?? 86_400_000;
  const timeoutMs = parseSeconds("--timeout", values.timeout) ?? 60_000;
  const ring = (await sealKeysFromEnv(true))!;
  const variables = await readRotationVariables(values["env-file"], (o) => {
    console.error(
      `Notice: ${o.variable} from the shell environment wins over ${
        values["env-file"]
      }.`,
    );
  });
  const config = readRotationEnv(variables);
  await using fleet = await openOperatorFleet(values, config.tokenUrl);
  const { target } = fleet;
  const progress = (line: string) => console.error(line);
  const storeArgs = [
    values.kv === undefined ? "--redis <url>" : `--kv ${values.kv}`,
    ...(values.prefix === "dual-secret-auth"
      ? []
      : [`--prefix ${values.prefix}`]),
    ...(values.scope === undefined ? [] : [`--scope ${values.scope}`]),
  ].join(" ");

  if (values.every !== undefined) {
    if (!values.yes) {
      throw new UsageError("--every runs unattended: pass --yes as well");
    }
    const period = (
      flag: string,
      text: string | undefined,
      fallback: number,
    ) => {
      if (text === undefined) return fallback;
      const ms = parsePeriod(text);
      if (ms === undefined) {
        throw new UsageError(
          `${flag} needs a period such as 30d, 12h, 15m or 90s`,
        );
      }
      return ms;
    };
    const cycles = values.cycles === undefined
      ? undefined
      : Number(values.cycles);
    if (cycles !== undefined && !(Number.isInteger(cycles) && cycles > 0)) {
      throw new UsageError("--cycles needs a whole number, such as 3");
    }
    const scheduler = {
      ...target,
      by: values["scheduler-id"] ?? `${target.by}#${Deno.pid}`,
    };
    return await runSchedule(scheduler, ring, config, {
      everyMs: period("--every", values.every, 0),
      tickMs: period("--tick", values.tick, 1_000),
      leaseMs: period("--lease", values.lease, 30_000),
      drainBoundMs: period("--drain-bound", values["drain-bound"], 30_000),
      tokenLifetimeMs,
      ...(cycles === undefined ? {} : { cycles }),
      propagationTimeoutMs: parseSeconds(
        "--propagation-timeout",
        values["propagation-timeout"],
      ),
      storeArgs,
    });
  }
  const shared = await target.store.readActive(target.service);
  const active = shared?.label ?? config.active;
  const standby = values.to ??
    config.credentials.find((c) => c.label !== active)!.label;
  if (standby === active) {
    throw new UsageError(
      `"${standby}" is the fleet's active label; rotate the other one, or promote first (deno task promote ${storeArgs})`,
    );
  }
  const credentials = await credentialsFromStore(
    target,
    ring,
    config.credentials,
  );
  const standbyCredential = credentials.find((c) => c.label === standby);
  if (standbyCredential === undefined) {
    throw new UsageError(`"${standby}" is not blue or green`);
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

  let lock;
  try {
    lock = await acquireStoreLock(
      target,
      `rotate ${args.join(" ")}`.trim(),
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

  const journal = createStoreJournal(target);
  const unfinished = await journal.read();
  const resuming = !values.fresh && unfinished !== undefined &&
    unfinished.completedAt === undefined && unfinished.standby === standby &&
    unfinished.regenerateRequestedAt !== undefined;
  // A resumed run past its regenerate call has nothing left to gate.
  if (!resuming) {
    const gate = await checkRevokeGate(
      target,
      { label: standby, clientId: standbyCredential.clientId },
      tokenLifetimeMs,
    );
    if (!gate.open) {
      const lines = instanceTable(gate.blockers, target.now());
      if (!values.force) {
        await audit(target, {
          action: "rotate.gate",
          outcome: "refused",
          label: standby,
          detail:
            `${gate.blockers.length} of ${gate.instances} live instances use it: ${
              gate.blockers.map((b) => `${b.instanceId} (${b.reason})`).join(
                ", ",
              )
            }`,
        });
        const message =
          `The revoke gate is shut: ${gate.blockers.length} of ${gate.instances} live instances still use "${standby}"; nothing was changed.\n` +
          `${lines.join("\n")}\n` +
          `Next: promote the other label (deno task promote ${storeArgs}) and wait for the instances to drain, or pass --force to regenerate anyway.`;
        printFailure(
          { exitCode: EXIT_GATE_SHUT, code: "REVOKE_GATE_SHUT", message },
          values.json,
          { blockers: gate.blockers },
        );
        return EXIT_GATE_SHUT;
      }
      console.error(
        `WARNING: --force: regenerating "${standby}" although ${gate.blockers.length} live instance(s) still use it; their calls may fail until they move:\n${
          lines.join("\n")
        }`,
      );
      await audit(target, {
        action: "rotate.gate",
        outcome: "forced",
        label: standby,
        detail: `--force over ${gate.blockers.length} instance(s): ${
          gate.blockers.map((b) => `${b.instanceId} (${b.reason})`).join(", ")
        }`,
      });
    } else {
      await audit(target, {
        action: "rotate.gate",
        outcome: "open",
        label: standby,
        detail: `${gate.instances} live instance(s), none uses it`,
      });
    }
  }

  let promotedStragglers = 0;
  const rotation = stagedFleetRotation({
    target,
    ring,
    config,
    credentials,
    active,
    standby,
    journal,
    fresh: values.fresh,
    propagationTimeoutMs: parseSeconds(
      "--propagation-timeout",
      values["propagation-timeout"],
    ),
    progress,
    ...(values.promote
      ? {
        onPromote: async (label: string) => {
          const outcome = await promoteAndWait(target, label, {
            timeoutMs,
            progress,
          });
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
        explain(error.cause).message.replace(/\.$/, "")
      }.\nState: ${error.state}\nNext: ${error.nextStep}`;
    const exitCode = cause.exitCode === EXIT_USAGE ? EXIT_USAGE : EXIT_FAILED;
    printFailure(
      { exitCode, code: error.code, causeCode: cause.code, message },
      values.json,
      { phase: error.phase, state: error.state, nextStep: error.nextStep },
    );
    return exitCode;
  }
  const generation = rotation.generation();
  if (values.json) {
    console.log(JSON.stringify(
      { ok: true, ...report, generation, stragglers: promotedStragglers },
      null,
      2,
    ));
  } else {
    console.log(
      `Rotation complete: "${standby}" (${report.clientId}) has a new secret${
        generation === undefined ? "" : ` (generation ${generation})`
      }, sealed in the fleet store${
        values.promote ? `; the fleet's active label is "${standby}"` : ""
      }.`,
    );
    for (const warning of report.warnings) console.log(`Warning: ${warning}`);
    console.log(`Next: ${report.nextStep}`);
  }
  return 0;
}

/** What {@linkcode stagedFleetRotation} needs. */
export interface StagedFleetRotationOptions {
  /** The store and who acts. */
  readonly target: FleetTarget;
  /** The seal keys. */
  readonly ring: SealKeyring;
  /** The env configuration (URLs, admin client). */
  readonly config: RotationEnvConfig;
  /** The credentials, secrets as the store has them. */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic. */
  readonly active: string;
  /** The label to rotate. */
  readonly standby: string;
  /** The journal (in the store). */
  readonly journal: RotationJournal;
  /** Start over. */
  readonly fresh?: boolean;
  /** How long the new secret is proven for. */
  readonly propagationTimeoutMs?: number;
  /** Progress lines. */
  readonly progress: (line: string) => void;
  /** Promotes after the proof, when given. */
  readonly onPromote?: (label: string) => Promise<void>;
  /** The words of next steps. */
  readonly commands: RotationCommands;
}

/**
 * The staged rotation of one fleet credential: the store as sink (sealed)
 * and journal, every phase in the audit trail (in order). The admin client
 * is the env file's, or else the active credential: never the one rotated.
 *
 * @param options What to rotate, where.
 * @returns `run()` and, after it, the generation published.
 */
export function stagedFleetRotation(options: StagedFleetRotationOptions): {
  run(): Promise<RotationReport>;
  generation(): number | undefined;
} {
  const { target, config, active, standby } = options;
  const sink = createSealedStoreSink(target, options.ring);
  return {
    generation: () => sink.generations.get(standby),
    async run() {
      const adminCredential = config.admin
        ? { label: "admin", ...config.admin }
        : options.credentials.find((c) => c.label === active)!;
      await using adminAuth = createDualSecretAuth({
        credentials: [adminCredential],
        tokenUrl: config.tokenUrl,
      });
      const admin = createGenesysAdminClient({
        apiUrl: config.apiUrl,
        getAccessToken: adminTokenSource(
          (o) => adminAuth.getAccessToken(o),
          config.admin
            ? "GENESYS_ADMIN_CLIENT_SECRET"
            : `GENESYS_CLIENT_SECRET_${active.toUpperCase()}`,
        ),
        invalidateToken: (token) => adminAuth.invalidate(token),
      });
      // One after the other, so the trail keeps the phases' order.
      let audits: Promise<void> = Promise.resolve();
      try {
        return await runStagedRotation({
          credentials: options.credentials,
          active,
          standby,
          tokenUrl: config.tokenUrl,
          admin,
          sink,
          promote: options.onPromote !== undefined,
          ...(options.onPromote ? { onPromote: options.onPromote } : {}),
          fresh: options.fresh,
          journal: options.journal,
          propagationTimeoutMs: options.propagationTimeoutMs,
          onPhase: (event) => {
            if (event.status === "progress") {
              options.progress(`${event.phase}: ${event.detail ?? ""}`);
            }
            if (event.status === "started" || event.status === "progress") {
              return;
            }
            const entry = {
              action: `rotate.${event.phase}`,
              outcome: event.status,
              label: standby,
              ...(event.detail ? { detail: event.detail } : {}),
            };
            audits = audits.then(() => audit(target, entry));
          },
          commands: options.commands,
        });
      } finally {
        await audits;
      }
    },
  };
}
