/**
 * `deno task promote --kv <path> [--to LABEL]`: proves the target credential
 * (with the store's distributed secret when there is one), waits until every
 * live instance proved that secret (or refuses, naming them and why), sets
 * the fleet's active label (compare-and-set on its generation), then waits
 * for the instances' heartbeats to show it, with progress, and reports
 * stragglers. Without `--to` it promotes the label last rotated, so running
 * it again is a no-op.
 *
 * @module
 */
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import { AbortedError } from "../src/errors.ts";
import { ROTATION_LABELS } from "../src/rotation/env_config.ts";
import { PROVIDER_ENV_VARS, readProviderEnv } from "../src/providers/env.ts";
import {
  audit,
  readDistributedSecret,
  readStoredSecretIdentity,
  secretStragglers,
  StoreLockedError,
} from "../src/fleet/operator.ts";
import {
  promoteFleet,
  type PromotionOutcome,
} from "../src/fleet/store_flows.ts";
import {
  commandLine,
  COMMON_OPTIONS,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_LOCKED,
  explain,
  labelOption,
  parseSeconds,
  parseTaskArgs,
  printFailure,
  readRotationVariables,
  type TaskOptions,
  UsageError,
} from "./_cli.ts";
import {
  checkFleetPresence,
  EXIT_GATE_SHUT,
  EXIT_STRAGGLERS,
  FLEET_EXIT_CODES_HELP,
  fleetStoreArgs,
  instanceTable,
  openOperatorFleet,
  presenceExpectation,
  requireOneFleetStore,
} from "./_fleet.ts";
import { lockUnchanged, onInterrupt } from "./_signals.ts";

/** The options the promote parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  kv: { type: "string" },
  redis: { type: "string" },
  prefix: { type: "string", default: "dual-secret-auth" },
  scope: { type: "string" },
  to: { type: "string" },
  timeout: { type: "string" },
  "allow-empty": { type: "boolean", default: false },
  "expect-instances": { type: "string" },
  "env-file": { type: "string", default: ".env" },
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
} as const satisfies TaskOptions;

const HELP =
  `Usage: deno task promote --kv <path> | --redis <url|env> [--to LABEL] [options]

Switches a fleet that shares a store (createKvFleet, createRedisFleet) to
another credential: proves it with a token request (using the secret sealed in
the store when there is one, which needs DUAL_SECRET_SEAL_KEY), waits until
every live instance's heartbeat reports that it proved that same secret
(refusing, with the instances and why, when they do not in time), sets the
fleet's active label, then waits until every live instance's heartbeat shows it
and names the ones that did not follow. It never regenerates anything.

With AUTH_PROVIDER=okta|entra|keycloak|cognito|auth0 in the env file, the proof
sends that provider's scope, audience and auth method. A label whose secret a
two-secret rotation retired (revoked) is refused: rotate it first.

Options:
  --kv <path>             the fleet's Deno KV database (it must exist)
  --redis <url|env>       or the fleet's Redis; env reads REDIS_URL, which keeps a
                          password off the command line (else redis://host:port)
  --prefix <a/b>          the fleet's key prefix (default dual-secret-auth)
  --scope <scope>         the scope the service requests, if any (default the env
                          file's AUTH_SCOPE)
  --to <label>            the label to make active (default: the label the last
                          rotate rotated, per the store's journal; so running it
                          again is a no-op that waits for the instances, never a
                          switch back)
  --timeout <s>           how long to wait for the instances, each wait (default 60)
  --allow-empty           proceed although no live instance reports in the namespace
  --expect-instances <n>  proceed only when at least n live instances report
  --env-file <path>       the env file with the provider, client ids and region (default .env)
  --dry-run               prove the target and show which instances proved its
                          secret; change nothing
  --yes                   do not ask for confirmation (required without a terminal)
  --json                  print the outcome (success or failure) as JSON
  -h, --help              show this help
  -V, --version           show the version

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/**
 * Runs `promote --kv|--redis`.
 *
 * @param args The command-line arguments.
 * @returns The exit code.
 */
export async function main(args: readonly string[]): Promise<number> {
  const values = parseTaskArgs("deno task promote", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  requireOneFleetStore(values);
  const timeoutMs = parseSeconds("--timeout", values.timeout) ?? 60_000;
  const expectation = presenceExpectation(values);
  const dryRun = values["dry-run"];
  const wanted = labelOption("--to", values.to);
  await using interrupt = onInterrupt();
  const variables = await readRotationVariables(
    values["env-file"],
    undefined,
    PROVIDER_ENV_VARS,
  );
  // Genesys Cloud, or the provider AUTH_PROVIDER names (its scope, audience
  // and auth method go with the proof; no admin call is made).
  const config = readProviderEnv(variables);
  const scope = values.scope ?? config.scope;
  await using fleet = await openOperatorFleet(
    { ...values, scope },
    config.tokenUrl,
  );
  const { target } = fleet;
  const storeArgs = fleetStoreArgs(values);
  const live = await target.live();
  const current = await target.readActive(live);
  const from = current?.label;
  const fromWords = from === undefined ? "no active label" : `"${from}"`;
  const lastRotated = await target.journal.read().then(
    (record) => record?.standby,
    () => undefined,
  );
  const to = wanted ??
    (lastRotated !== undefined &&
        (ROTATION_LABELS as readonly string[]).includes(lastRotated)
      ? lastRotated
      : undefined);
  if (to === undefined) {
    throw new UsageError(
      `No rotation is recorded in the fleet store's journal, so promote cannot tell which label to make active. ` +
        `Name it: deno task promote ${storeArgs} --to ${
          config.credentials.find((c) => c.label !== from)!.label
        }.`,
    );
  }
  const credential = config.credentials.find((c) => c.label === to)!;
  const refusal = await checkFleetPresence(
    fleet,
    live,
    expectation,
    `make "${to}" the fleet's active label`,
  );
  if (refusal !== undefined) {
    printFailure(
      {
        exitCode: EXIT_GATE_SHUT,
        code: "FLEET_NOT_SEEN",
        message: refusal.message,
      },
      values.json,
      { elsewhere: refusal.elsewhere },
    );
    return EXIT_GATE_SHUT;
  }
  const already = current?.source === "store" && from === to;
  // A two-secret rotation revoked this label's secret: promoting it would
  // fail every call; only a rotation gives it a working one.
  const retiredAt = already
    ? undefined
    : (await readStoredSecretIdentity(target, to))?.retiredAt;
  if (retiredAt !== undefined) {
    printFailure(
      {
        exitCode: EXIT_GATE_SHUT,
        code: "PROMOTE_RETIRED",
        message:
          `Refusing to promote "${to}": its secret in the fleet store was retired (revoked by a rotation at ${
            new Date(retiredAt).toISOString()
          }), so an instance that switched to it would fail. Nothing was changed; the fleet stays on ${fromWords}.
` +
          `Next: rotate "${to}" (deno task rotate ${storeArgs} --yes --promote): it issues "${to}" a new secret, seals it and promotes it.`,
      },
      values.json,
      { retiredAt },
    );
    return EXIT_GATE_SHUT;
  }

  if (!dryRun && !values.yes && !already) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        "Refusing to promote without confirmation: there is no terminal to ask on. " +
          "Pass --yes to promote, or --dry-run to only check.",
      );
    }
    if (
      !confirm(
        `Switch the fleet in ${
          values.kv ?? "the Redis"
        } from ${fromWords} to "${to}"?`,
      )
    ) {
      console.error("Cancelled; nothing was changed.");
      return EXIT_FAILED;
    }
  }
  // As rotate --kv: the env file's OS lock keeps a second run with the
  // same env file out; the store lock, held by one acquisition, every other.
  await using _envLock = dryRun ? undefined : await lockUnchanged(
    values["env-file"],
    commandLine("promote", args),
    variables,
  );
  let lock;
  if (!dryRun) {
    try {
      lock = await target.lock(
        commandLine("promote", args),
        Math.max(120_000, timeoutMs * 3),
      );
    } catch (error) {
      if (!(error instanceof StoreLockedError)) throw error;
      printFailure(
        { exitCode: EXIT_LOCKED, code: error.code, message: error.message },
        values.json,
      );
      return EXIT_LOCKED;
    }
  }
  await using _lock = lock;

  const progress = (line: string) => console.error(line);
  if (!already) {
    const ring = target.ring;
    const distributed = ring === undefined
      ? undefined
      : await readDistributedSecret(target, ring, to);
    await using probe = createDualSecretAuth({
      credentials: [{
        ...credential,
        clientSecret: distributed?.secret ?? credential.clientSecret,
      }],
      tokenUrl: config.tokenUrl,
      ...(scope === undefined ? {} : { scope }),
      ...(config.tokenParams === undefined
        ? {}
        : { tokenParams: config.tokenParams }),
    });
    try {
      await probe.getAccessToken({ signal: interrupt.signal });
    } catch (error) {
      const interrupted = interrupt.signal.aborted;
      if (!dryRun) {
        await audit(target, {
          action: "promote.prove",
          outcome: "failed",
          label: to,
          detail: explain(error).code,
        });
      }
      printFailure(
        {
          exitCode: interrupted ? EXIT_INTERRUPTED : EXIT_FAILED,
          code: interrupted ? "ABORTED" : "PROMOTE_PROOF_FAILED",
          message: interrupted
            ? `Interrupted while proving "${to}"; nothing was changed: the fleet stays on ${fromWords}.\nNext: run the same command again.`
            : `"${to}" did not get a token (${
              explain(error).message.replace(/\.$/, "")
            }); the fleet stays on ${fromWords}.`,
        },
        values.json,
        { interrupted },
      );
      return interrupted ? EXIT_INTERRUPTED : EXIT_FAILED;
    }
  }
  if (dryRun) {
    const identity = await readStoredSecretIdentity(target, to);
    const behind = identity === undefined
      ? []
      : secretStragglers(live, to, identity.fingerprint);
    if (values.json) {
      console.log(JSON.stringify(
        {
          ok: true,
          dryRun: true,
          from,
          to,
          changed: false,
          live: live.length,
          notProved: behind,
        },
        null,
        2,
      ));
    } else {
      console.log(
        `Dry run: ${
          already ? `"${to}" is already active` : `"${to}" gets tokens`
        }; ${
          identity === undefined
            ? "the store holds no sealed secret of it"
            : `${
              live.length - behind.length
            }/${live.length} live instances proved its secret (generation ${identity.generation})`
        }; nothing was changed.`,
      );
      if (behind.length > 0) {
        console.log(instanceTable(behind, target.now()).join("\n"));
      }
    }
    return 0;
  }

  let outcome: PromotionOutcome;
  try {
    outcome = await promoteFleet(target, to, {
      timeoutMs,
      expected: live,
      progress,
      signal: interrupt.signal,
    });
  } catch (error) {
    if (!(error instanceof AbortedError)) throw error;
    printFailure(
      {
        exitCode: EXIT_INTERRUPTED,
        code: error.code,
        message:
          `Interrupted while waiting for the instances to prove the secret of "${to}"; nothing was changed: the fleet stays on ${fromWords}.\nNext: run the same command again.`,
      },
      values.json,
      { interrupted: true },
    );
    return EXIT_INTERRUPTED;
  }
  const now = target.now();
  if (outcome.kind === "refused") {
    const message =
      `Refusing to promote "${to}": ${outcome.stragglers.length} live instance(s) have not proved its secret in the store (generation ${outcome.identity.generation}) within ${
        timeoutMs / 1000
      } s; an instance that switched to it would fail and fail the fleet back. Nothing was changed; the fleet stays on ${fromWords}.\n` +
      `${instanceTable(outcome.stragglers, now).join("\n")}\n` +
      `Next: fix the instances' reason (seal key mismatch: give them the DUAL_SECRET_SEAL_KEY of the rotation; proof failed: check their token URL and client), or stop them; then run the same command again.`;
    printFailure(
      { exitCode: EXIT_GATE_SHUT, code: "PROMOTE_NOT_LOADED", message },
      values.json,
      { stragglers: outcome.stragglers },
    );
    return EXIT_GATE_SHUT;
  }
  if (values.json) {
    console.log(JSON.stringify(
      {
        ok: outcome.stragglers.length === 0 && !outcome.interrupted,
        from,
        to,
        changed: outcome.changed,
        generation: outcome.generation,
        stragglers: outcome.stragglers.map((s) => s.instanceId),
        interrupted: outcome.interrupted,
      },
      null,
      2,
    ));
  } else if (outcome.interrupted) {
    console.error(
      `Interrupted: the fleet's active label is "${to}" (generation ${outcome.generation}); ${outcome.stragglers.length} live instance(s) had not reported it yet.\nNext: run the same command again to wait for them (it changes nothing).`,
    );
  } else if (outcome.stragglers.length === 0) {
    console.log(
      outcome.changed
        ? `The fleet's active label is "${to}" (generation ${outcome.generation}); every live instance reports it.`
        : `"${to}" is already the fleet's active label; nothing was changed; every live instance reports it.`,
    );
  } else {
    console.log(
      `The fleet's active label is "${to}" (generation ${outcome.generation}), but ${outcome.stragglers.length} live instance(s) did not report it within ${
        timeoutMs / 1000
      } s:`,
    );
    console.log(instanceTable(outcome.stragglers, now).join("\n"));
  }
  return outcome.interrupted
    ? EXIT_INTERRUPTED
    : outcome.stragglers.length === 0
    ? 0
    : EXIT_STRAGGLERS;
}
