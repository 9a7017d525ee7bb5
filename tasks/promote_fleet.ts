/**
 * `deno task promote --kv <path> [--to LABEL]`: proves the target credential
 * (with the store's distributed secret when there is one), sets the fleet's
 * active label (compare-and-set on its generation), then waits for the
 * instances' heartbeats to show it, with progress, and reports stragglers.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { readRotationEnv } from "../src/rotation/env_config.ts";
import {
  acquireStoreLock,
  audit,
  type FleetTarget,
  readDistributedSecret,
  setSharedActive,
  StoreLockedError,
  waitForFleet,
} from "../src/fleet/operator.ts";
import type { InstanceRecord } from "../src/fleet/store.ts";
import {
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_LOCKED,
  explain,
  printFailure,
  readRotationVariables,
  UsageError,
} from "./_cli.ts";
import {
  EXIT_STRAGGLERS,
  FLEET_EXIT_CODES_HELP,
  instanceTable,
  openOperatorFleet,
  requireOneFleetStore,
  sealKeysFromEnv,
} from "./_fleet.ts";
import { parseSeconds } from "./rotate.ts";

const HELP = `Usage: deno task promote --kv <path> [--to LABEL] [options]

Switches a fleet that shares a Deno KV store (createKvFleet) to another
credential: proves it with a token request (using the secret sealed in the
store when there is one, which needs DUAL_SECRET_SEAL_KEY), sets the fleet's
active label, then waits until every live instance's heartbeat shows it and
names the ones that did not follow. It never regenerates anything.

Options:
  --kv <path>        the fleet's Deno KV database
  --redis <url>      or the fleet's Redis (redis://user:password@host:port)
  --prefix <a/b>     the fleet's key prefix (default dual-secret-auth)
  --scope <scope>    the scope the service requests, if any
  --to <label>       the label to switch to (default: the one not active)
  --timeout <s>      how long to wait for the instances (default 60)
  --env-file <path>  the env file with the client ids and the region (default .env)
  --json             print the outcome as JSON
  -h, --help         show this help

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/** What {@linkcode promoteAndWait} saw. */
export interface PromotionOutcome {
  /** The generation of the active label written. */
  readonly generation: number;
  /** Live instances that did not report the label in time. */
  readonly stragglers: readonly InstanceRecord[];
}

/**
 * Sets the fleet's active label and waits for the heartbeats to show it.
 *
 * @param target The store and who acts.
 * @param to The label.
 * @param options How long to wait, and where progress lines go.
 * @returns The generation and the stragglers.
 */
export async function promoteAndWait(
  target: FleetTarget,
  to: string,
  options: { timeoutMs: number; progress: (line: string) => void },
): Promise<PromotionOutcome> {
  const record = await setSharedActive(target, to);
  await audit(target, {
    action: "promote",
    outcome: "ok",
    label: to,
    detail: `active generation ${record.generation}`,
  });
  const stragglers = await waitForFleet(target, {
    reached: (instance) => instance.active === to,
    timeoutMs: options.timeoutMs,
    pollMs: 250,
    onProgress: (reached, live) =>
      options.progress(`promote: ${reached}/${live} live instances on "${to}"`),
  });
  await audit(target, {
    action: "promote.wait",
    outcome: stragglers.length === 0 ? "ok" : "stragglers",
    label: to,
    ...(stragglers.length === 0 ? {} : {
      detail: `not on "${to}": ${
        stragglers.map((s) => s.instanceId).join(", ")
      }`,
    }),
  });
  return { generation: record.generation, stragglers };
}

/**
 * Runs `promote --kv`.
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
      timeout: { type: "string" },
      "env-file": { type: "string", default: ".env" },
      json: { type: "boolean", default: false },
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
  const timeoutMs = parseSeconds("--timeout", values.timeout) ?? 60_000;
  const config = readRotationEnv(
    await readRotationVariables(values["env-file"]),
  );
  await using fleet = await openOperatorFleet(values, config.tokenUrl);
  const { target } = fleet;
  const shared = await target.store.readActive(target.service);
  const from = shared?.label ?? config.active;
  const to = values.to ??
    config.credentials.find((c) => c.label !== from)!.label;
  const credential = config.credentials.find((c) => c.label === to);
  if (credential === undefined) {
    throw new UsageError(`--to "${to}" is not blue or green`);
  }
  let lock;
  try {
    lock = await acquireStoreLock(target, `promote ${args.join(" ")}`, 120_000);
  } catch (error) {
    if (!(error instanceof StoreLockedError)) throw error;
    printFailure(
      { exitCode: EXIT_LOCKED, code: error.code, message: error.message },
      values.json,
    );
    return EXIT_LOCKED;
  }
  await using _lock = lock;

  const ring = await sealKeysFromEnv(false);
  const distributed = ring === undefined
    ? undefined
    : await readDistributedSecret(target, ring, to);
  await using probe = createDualSecretAuth({
    credentials: [{
      ...credential,
      clientSecret: distributed?.secret ?? credential.clientSecret,
    }],
    tokenUrl: config.tokenUrl,
    ...(values.scope === undefined ? {} : { scope: values.scope }),
  });
  try {
    await probe.getAccessToken();
  } catch (error) {
    await audit(target, {
      action: "promote.prove",
      outcome: "failed",
      label: to,
      detail: explain(error).code,
    });
    printFailure(
      {
        exitCode: EXIT_FAILED,
        code: "PROMOTE_PROOF_FAILED",
        message: `"${to}" did not get a token (${
          explain(error).message.replace(/\.$/, "")
        }); the fleet stays on "${from}".`,
      },
      values.json,
    );
    return EXIT_FAILED;
  }
  const progress = (line: string) => console.error(line);
  const outcome = await promoteAndWait(target, to, { timeoutMs, progress });
  const now = target.now();
  if (values.json) {
    console.log(JSON.stringify(
      {
        ok: outcome.stragglers.length === 0,
        from,
        to,
        generation: outcome.generation,
        stragglers: outcome.stragglers.map((s) => s.instanceId),
      },
      null,
      2,
    ));
  } else if (outcome.stragglers.length === 0) {
    console.log(
      `The fleet's active label is "${to}" (generation ${outcome.generation}); every live instance reports it.`,
    );
  } else {
    console.log(
      `The fleet's active label is "${to}" (generation ${outcome.generation}), but ${outcome.stragglers.length} live instance(s) did not report it within ${
        timeoutMs / 1000
      } s:`,
    );
    console.log(instanceTable(outcome.stragglers, now).join("\n"));
  }
  return outcome.stragglers.length === 0 ? 0 : EXIT_STRAGGLERS;
}
