/**
 * Incident mode on a store-driven fleet: `deno task incident --kv|--redis`
 * (under the operator permission set) against `deno run` instances that take
 * their secrets from the store (`secretSealKeys`) and send traffic meanwhile.
 * Shared by tests/fleet/incident_fleet_test.ts (which asserts) and
 * bench/scenarios/incident.ts (which reports the figures).
 *
 * @module
 */
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import type { FleetStore, InstanceRecord } from "../../src/fleet/store.ts";
import {
  FAILPOINT_VAR,
  type SpawnedTask,
  type TaskRun,
  withFailpoint,
  type Workspace,
} from "../tasks/workspace.ts";
import {
  type ChildMessage,
  createFleetWorkspace,
  type FleetChild,
  fleetInstance,
  startFleet,
  startFleetEmulator,
} from "./harness.ts";

/** The seal key the instances and the operator share. */
export const INCIDENT_SEAL_KEY = btoa(
  String.fromCharCode(...new Uint8Array(32).fill(23)),
);
/** The secrets the fleet starts with (blue is the one that leaked). */
export const INCIDENT_SECRETS = {
  blue: "blue-LEAKED-6a1f",
  green: "green-CANARY-93b0",
  admin: "admin-CANARY-2e7c",
} as const;
const PREFIX = "fleet-test";

/** What one incident on a fleet did and cost. */
export interface FleetIncidentOutcome {
  /** The incident task's run (the last one, when it was re-run). */
  readonly run: TaskRun;
  /** Earlier runs killed at a failpoint, if any. */
  readonly killed: readonly TaskRun[];
  /** Wall time of the incident task (all runs), in ms. */
  readonly durationMs: number;
  /**
   * Secrets regenerated while it ran (all runs), per client id: counted as
   * the emulator regenerates them, and their sum checked against its
   * `secretRegenerations` counter.
   */
  readonly regenerations: Readonly<Record<string, number>>;
  /** Token requests the emulator saw while it ran, every client. */
  readonly tokenRequests: number;
  /** Of them, per client id. */
  readonly tokenRequestsByClient: Readonly<Record<string, number>>;
  /** Of them, answered with an error. */
  readonly tokenFailures: number;
  /** Calls the instances made over the whole run, and how many failed. */
  readonly calls: number;
  /** Calls that failed (getAccessToken threw, or the API answered an error). */
  readonly failed: number;
  /** The failures, for the message of a test. */
  readonly errors: readonly string[];
  /** The instances' summaries. */
  readonly summaries: readonly ChildMessage[];
  /** The heartbeats after the fleet settled. */
  readonly heartbeats: readonly InstanceRecord[];
  /** The emulator's state of the two clients afterwards. */
  readonly clients: {
    readonly blue: { secret: string; state: string };
    readonly green: { secret: string; state: string };
  };
  /** The audit trail afterwards (action:outcome:label). */
  readonly audit: readonly string[];
}

/** Options of {@linkcode runFleetIncident}. */
export interface FleetIncidentOptions {
  /** The store engine. */
  readonly engine: "kv" | "redis";
  /** The Redis URL, for `redis`. */
  readonly redisUrl?: string;
  /**
   * How many instances.
   *
   * @default 6
   */
  readonly processes?: number;
  /**
   * Kill the first run at this failpoint (such as `incident:promote`) with
   * SIGKILL, then run the same command again.
   */
  readonly killAt?: string;
  /** More flags for the incident. */
  readonly extraArgs?: readonly string[];
  /**
   * Run (or re-run) it as `deno task rotate --compromised …` (which hands
   * over to incident mode) instead of `deno task incident`.
   *
   * @default false
   */
  readonly viaRotate?: boolean;
  /**
   * Name the Redis as `--redis env` with `REDIS_URL` set.
   *
   * @default false
   */
  readonly redisFromEnv?: boolean;
}

/**
 * Starts the emulator, a workspace and the fleet, sends traffic, runs
 * `incident --compromised blue --kill-tokens --yes` on the store, waits
 * until every instance reports blue's new generation, and stops the fleet.
 *
 * @param options The engine and the fleet's size.
 * @returns What happened.
 */
export async function runFleetIncident(
  options: FleetIncidentOptions,
): Promise<FleetIncidentOutcome> {
  const n = options.processes ?? 6;
  await using emulator = startFleetEmulator(INCIDENT_SECRETS);
  const regenerations: Record<string, number> = {};
  // Per client: the emulator's own counter sums every client.
  const regenerate = emulator.regenerateSecret.bind(emulator);
  emulator.regenerateSecret = (clientId, newSecret) => {
    regenerations[clientId] = (regenerations[clientId] ?? 0) + 1;
    return regenerate(clientId, newSecret);
  };
  await using ws = await createFleetWorkspace(emulator, INCIDENT_SECRETS);
  const kvPath = `${ws.dir}/fleet.db`;
  const storeArgs = options.engine === "kv"
    ? ["--kv", "fleet.db", "--prefix", PREFIX]
    : [
      "--redis",
      options.redisFromEnv ? "env" : options.redisUrl!,
      "--prefix",
      PREFIX,
    ];
  const children: FleetChild[] = await startFleet(
    n,
    (i) =>
      fleetInstance(emulator, INCIDENT_SECRETS, INCIDENT_SEAL_KEY, {
        ...(options.engine === "kv"
          ? { kvPath }
          : { redisUrl: options.redisUrl!, redisPrefix: PREFIX }),
        instanceId: `web-${i}`,
        fleetSize: n,
        heartbeatMs: 900,
      }),
    ws.dir,
  );
  let kv: Deno.Kv | undefined;
  let store: FleetStore & { close?: () => Promise<void> };
  if (options.engine === "kv") {
    kv = await Deno.openKv(kvPath);
    store = createKvFleetStore(kv, { prefix: [PREFIX] });
  } else {
    store = createRedisFleetStore({ url: options.redisUrl!, prefix: PREFIX });
  }
  const live = async () =>
    (await store.listInstances()).filter((r) => r.until > Date.now());
  const env: Record<string, string> = {
    DUAL_SECRET_SEAL_KEY: INCIDENT_SEAL_KEY,
    ...(options.redisFromEnv ? { REDIS_URL: options.redisUrl! } : {}),
  };
  const args = [
    "--compromised",
    "blue",
    "--kill-tokens",
    "--yes",
    ...storeArgs,
    "--timeout",
    "30",
    ...(options.extraArgs ?? []),
  ];
  let summaries: ChildMessage[] = [];
  try {
    for (const child of children) {
      await child.send({ cmd: "traffic", intervalMs: 20, api: true });
    }
    // Traffic on blue everywhere first.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = emulator.stats();
    for (const id of Object.keys(regenerations)) delete regenerations[id];
    const started = performance.now();
    const killed: TaskRun[] = [];
    if (options.killAt !== undefined) {
      killed.push(await killAt(ws, args, env, options.killAt));
    }
    const run = await ws.task(
      options.viaRotate ? "rotate" : "incident",
      args,
      env,
    );
    const durationMs = performance.now() - started;
    const after = emulator.stats();
    // The instances load blue's new secret as their standby.
    const deadline = Date.now() + 20_000;
    let heartbeats = await live();
    while (
      Date.now() < deadline &&
      !(heartbeats.length === n &&
        heartbeats.every((r) =>
          r.active === "green" &&
          r.credentials.find((c) => c.label === "blue")?.secretGeneration !==
            undefined
        ))
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      heartbeats = await live();
    }
    // Some more traffic on the new secrets.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const history = await ws.task("fleet", [
      ...storeArgs,
      "--history",
      "--json",
      "--limit",
      "200",
    ], env);
    const audit = history.code === 0
      ? (JSON.parse(history.stdout) as {
        action: string;
        outcome: string;
        label?: string;
      }[]).map((e) => `${e.action}:${e.outcome}:${e.label}`)
      : [`fleet --history failed: ${history.stderr}`];
    summaries = (await Promise.all(children.map((c) => c.stop()))).filter((
      s,
    ): s is ChildMessage => s !== undefined);
    const errors = summaries.flatMap((s) => s.errors as string[]);
    const counted = Object.values(regenerations).reduce((a, b) => a + b, 0);
    if (counted !== after.secretRegenerations - before.secretRegenerations) {
      throw new Error(
        `counted ${counted} regenerations, the emulator ${
          after.secretRegenerations - before.secretRegenerations
        }`,
      );
    }
    return {
      run,
      killed,
      durationMs,
      regenerations: { ...regenerations },
      tokenRequests: after.tokenRequests - before.tokenRequests,
      tokenRequestsByClient: Object.fromEntries(
        Object.entries(after.tokenRequestsByClient).map(([id, count]) => [
          id,
          count - (before.tokenRequestsByClient[id] ?? 0),
        ]),
      ),
      tokenFailures: after.tokenFailures - before.tokenFailures,
      calls: summaries.reduce((sum, s) => sum + Number(s.ok), 0),
      failed: summaries.reduce(
        (sum, s) => sum + Number(s.failed) + Number(s.apiFailed),
        0,
      ),
      errors,
      summaries,
      heartbeats,
      clients: {
        blue: {
          secret: emulator.getClientSecret("blue-id"),
          state: emulator.getClientState("blue-id"),
        },
        green: {
          secret: emulator.getClientSecret("green-id"),
          state: emulator.getClientState("green-id"),
        },
      },
      audit,
    };
  } finally {
    if (summaries.length === 0) {
      await Promise.all(children.map((c) => c.stop()));
    }
    kv?.close();
    await store.close?.();
  }
}

/**
 * Starts `tasks/incident.ts` in its own process under the operator
 * permission set (plus the failpoint, seal key and Redis variables), so a
 * signal reaches it.
 *
 * @param ws The workspace.
 * @param args The incident's arguments.
 * @param env Its environment (the seal key, a failpoint).
 * @returns The running task.
 */
export function spawnIncident(
  ws: Workspace,
  args: readonly string[],
  env: Record<string, string>,
): SpawnedTask {
  return ws.spawn(
    withFailpoint("incident", [...args]).map((arg) =>
      arg.startsWith("--allow-env=")
        ? `${arg},DUAL_SECRET_SEAL_KEY,REDIS_URL,REDIS_DEBUG_MAINTENANCE,REDIS_EMIT_DIAGNOSTICS`
        : arg
    ),
    env,
  );
}

/** Starts the incident at a failpoint, waits for it, and kills it with SIGKILL. */
async function killAt(
  ws: Workspace,
  args: string[],
  env: Record<string, string>,
  point: string,
): Promise<TaskRun> {
  const run = spawnIncident(ws, args, { ...env, [FAILPOINT_VAR]: point });
  try {
    await run.waitFor(new RegExp(`failpoint ${point} reached`), 60_000);
  } finally {
    try {
      run.child.kill("SIGKILL");
    } catch {
      // It ended by itself: the wait above says why.
    }
  }
  return await run.finished();
}
