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
import {
  readRotationEnv,
  ROTATION_LABELS,
} from "../src/rotation/env_config.ts";
import {
  acquireStoreLock,
  audit,
  createStoreJournal,
  type FleetTarget,
  listLive,
  readDistributedSecret,
  readStoredSecretIdentity,
  readTargetActive,
  type SecretStraggler,
  secretStragglers,
  setSharedActive,
  type StoredSecretIdentity,
  StoreLockedError,
  waitForFleet,
} from "../src/fleet/operator.ts";
import type { InstanceRecord } from "../src/fleet/store.ts";
import {
  COMMON_OPTIONS,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_LOCKED,
  explain,
  labelOption,
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
  sealKeysFromEnv,
} from "./_fleet.ts";
import { lockUnchanged, onInterrupt } from "./_signals.ts";
import { parseSeconds } from "./rotate.ts";

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

Options:
  --kv <path>             the fleet's Deno KV database (it must exist)
  --redis <url|env>       or the fleet's Redis; env reads REDIS_URL, which keeps a
                          password off the command line (else redis://host:port)
  --prefix <a/b>          the fleet's key prefix (default dual-secret-auth)
  --scope <scope>         the scope the service requests, if any
  --to <label>            the label to make active (default: the label the last
                          rotate rotated, per the store's journal; so running it
                          again is a no-op that waits for the instances, never a
                          switch back)
  --timeout <s>           how long to wait for the instances, each wait (default 60)
  --allow-empty           proceed although no live instance reports in the namespace
  --expect-instances <n>  proceed only when at least n live instances report
  --env-file <path>       the env file with the client ids and the region (default .env)
  --dry-run               prove the target and show which instances proved its
                          secret; change nothing
  --yes                   do not ask for confirmation (required without a terminal)
  --json                  print the outcome (success or failure) as JSON
  -h, --help              show this help
  -V, --version           show the version

${EXIT_CODES_HELP}
${FLEET_EXIT_CODES_HELP}
`;

/** What {@linkcode promoteAndWait} saw. */
export type PromotionOutcome =
  | {
    /** The active label was set (or already named the label). */
    readonly kind: "promoted";
    /** The generation of the active label. */
    readonly generation: number;
    /** Whether this call changed it (false: it already named the label). */
    readonly changed: boolean;
    /** Live instances that did not report the label in time. */
    readonly stragglers: readonly InstanceRecord[];
    /** Whether the wait for the instances was cut short by Ctrl-C or SIGTERM. */
    readonly interrupted: boolean;
  }
  | {
    /** Refused before changing anything: instances had not proved the secret. */
    readonly kind: "refused";
    /** The store's current secret of the label. */
    readonly identity: StoredSecretIdentity;
    /** The instances that had not proved it, and why. */
    readonly stragglers: readonly SecretStraggler[];
  };

/**
 * Waits until every live instance proved the store's current secret of the
 * label (when the store holds one), then sets the fleet's active label and
 * waits for the heartbeats to show it.
 *
 * @param target The store and who acts.
 * @param to The label.
 * @param options How long each wait lasts, where progress lines go, and the
 * interrupt that cuts the waits short.
 * @returns What happened.
 * @throws {AbortedError} When interrupted before the active label was set.
 */
export async function promoteAndWait(
  target: FleetTarget,
  to: string,
  options: {
    timeoutMs: number;
    progress: (line: string) => void;
    signal?: AbortSignal;
  },
): Promise<PromotionOutcome> {
  const before = await target.store.readActive(target.service);
  // Already active: nothing to switch, so nothing to hold back; the wait
  // below still reports who follows.
  const identity = before?.label === to
    ? undefined
    : await readStoredSecretIdentity(target, to);
  if (identity !== undefined) {
    const behind = await waitForFleet(target, {
      reached: (instance) =>
        secretStragglers([instance], to, identity.fingerprint).length === 0,
      timeoutMs: options.timeoutMs,
      pollMs: 250,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (reached, live) =>
        options.progress(
          `promote: ${reached}/${live} live instances proved the secret of "${to}" (generation ${identity.generation})`,
        ),
    });
    if (options.signal?.aborted) {
      throw new AbortedError({ cause: options.signal.reason });
    }
    if (behind.length > 0) {
      const stragglers = secretStragglers(behind, to, identity.fingerprint);
      await audit(target, {
        action: "promote.ready",
        outcome: "refused",
        label: to,
        detail: `not proved: ${
          stragglers.map((s) => `${s.instanceId} (${s.reason})`).join(", ")
        }`,
      });
      return { kind: "refused", identity, stragglers };
    }
  }
  const record = await setSharedActive(target, to);
  const changed = before?.label !== to;
  if (changed) {
    await audit(target, {
      action: "promote",
      outcome: "ok",
      label: to,
      detail: `active generation ${record.generation}`,
    });
  }
  const stragglers = await waitForFleet(target, {
    reached: (instance) => instance.active === to,
    timeoutMs: options.timeoutMs,
    pollMs: 250,
    ...(options.signal ? { signal: options.signal } : {}),
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
  return {
    kind: "promoted",
    generation: record.generation,
    changed,
    stragglers,
    interrupted: options.signal?.aborted === true,
  };
}

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
  const variables = await readRotationVariables(values["env-file"]);
  const config = readRotationEnv(variables);
  await using fleet = await openOperatorFleet(values, config.tokenUrl);
  const { target } = fleet;
  const storeArgs = fleetStoreArgs(values);
  const live = await listLive(target);
  const current = await readTargetActive(target, live);
  const from = current?.label;
  const fromWords = from === undefined ? "no active label" : `"${from}"`;
  const lastRotated = await createStoreJournal(target).read().then(
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
    `promote ${args.join(" ")}`,
    variables,
  );
  let lock;
  if (!dryRun) {
    try {
      lock = await acquireStoreLock(
        target,
        `promote ${args.join(" ")}`,
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
    outcome = await promoteAndWait(target, to, {
      timeoutMs,
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
