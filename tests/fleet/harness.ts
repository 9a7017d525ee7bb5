/**
 * Starts fleet instances as `deno run` subprocesses (tests/fleet/child.ts)
 * sharing one local KV file, and talks to them over JSON lines.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { ChildConfig } from "./child.ts";
import { type GenesysEmulator, startGenesysEmulator } from "../../testing.ts";
import {
  createWorkspace,
  emulatorConfig,
  type Workspace,
} from "../tasks/workspace.ts";

const CHILD = fileURLToPath(new URL("./child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** One line a child printed. */
export type ChildMessage = Record<string, unknown> & {
  instanceId: string;
  type: string;
};

/** A running child instance. */
export interface FleetChild {
  /** Its instance id. */
  readonly instanceId: string;
  /** Every message it printed so far. */
  readonly messages: ChildMessage[];
  /** Sends a command. */
  send(command: Record<string, unknown>): Promise<void>;
  /** Waits for a message of a type. */
  next(type: string, timeoutMs?: number): Promise<ChildMessage>;
  /** Sends SIGKILL. */
  kill(): void;
  /** Sends `stop` and returns its summary (or undefined if it died). */
  stop(): Promise<ChildMessage | undefined>;
  /** Its standard error so far. */
  stderr(): string;
}

/**
 * Starts a child and waits until it is ready.
 *
 * @param config Its configuration.
 * @param kvDir The directory of the KV file (read and write permission).
 * @param runtime Another program to run instead of `deno run child.ts`
 * (the configuration is appended as the last argument).
 * @returns The running child.
 */
export function startFleetChild(
  config: ChildConfig,
  kvDir: string,
  runtime?: { program: string; args: readonly string[] },
): FleetChild {
  const program = runtime?.program ?? Deno.execPath();
  const args = runtime?.args ?? [
    "run",
    "--quiet",
    "--unstable-kv",
    `--config=${ROOT}deno.json`,
    `--allow-read=${ROOT},${kvDir}`,
    `--allow-write=${kvDir}`,
    "--allow-net=127.0.0.1",
    "--allow-env",
    CHILD,
  ];
  const command = new Deno.Command(program, {
    args: [...args, JSON.stringify(config)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const process = command.spawn();
  const writer = process.stdin.getWriter();
  const messages: ChildMessage[] = [];
  const waiters: (() => void)[] = [];
  let stderr = "";
  let exited = false;
  const decoder = new TextDecoder();
  const pumpOut = (async () => {
    let buffer = "";
    for await (const chunk of process.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          messages.push(JSON.parse(line));
        } catch {
          stderr += `stdout: ${line}\n`;
        }
        waiters.splice(0).forEach((wake) => wake());
      }
    }
  })();
  const pumpErr = (async () => {
    const errDecoder = new TextDecoder();
    for await (const chunk of process.stderr) {
      stderr += errDecoder.decode(chunk, { stream: true });
    }
  })();
  const status = process.status.then((s) => {
    exited = true;
    waiters.splice(0).forEach((wake) => wake());
    return s;
  });
  const done = Promise.all([pumpOut, pumpErr, status]);
  const next = async (type: string, timeoutMs = 30_000) => {
    const end = Date.now() + timeoutMs;
    let seen = 0;
    while (true) {
      const found = messages.slice(seen).find((m) => m.type === type);
      if (found) {
        messages.splice(messages.indexOf(found), 1, {
          ...found,
          type: `${type}:seen`,
        });
        return found;
      }
      seen = 0;
      if (exited) {
        throw new Error(
          `${config.instanceId} exited before "${type}": ${stderr}`,
        );
      }
      if (Date.now() > end) {
        throw new Error(
          `${config.instanceId}: no "${type}" in ${timeoutMs} ms: ${stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  return {
    instanceId: config.instanceId,
    messages,
    async send(command) {
      if (exited) return;
      await writer.write(
        new TextEncoder().encode(JSON.stringify(command) + "\n"),
      )
        .catch(() => undefined);
    },
    next,
    kill() {
      if (!exited) process.kill("SIGKILL");
    },
    async stop() {
      let summary: ChildMessage | undefined;
      if (!exited) {
        await this.send({ cmd: "stop" });
        summary = await next("summary", 30_000).catch(() => undefined);
      }
      await writer.close().catch(() => undefined);
      if (!exited) process.kill("SIGKILL");
      await done;
      return summary;
    },
    stderr: () => stderr,
  };
}

/**
 * Starts `n` children and waits until each is ready.
 *
 * @param n How many.
 * @param make Each one's configuration.
 * @param kvDir The KV file's directory.
 * @returns The ready children.
 */
export async function startFleet(
  n: number,
  make: (i: number) => ChildConfig,
  kvDir: string,
): Promise<FleetChild[]> {
  const children = Array.from(
    { length: n },
    (_, i) => startFleetChild(make(i), kvDir),
  );
  try {
    await Promise.all(children.map((child) => child.next("ready", 60_000)));
  } catch (error) {
    await Promise.all(children.map((child) => child.stop()));
    throw error;
  }
  return children;
}

/**
 * Asserts that every live instance reported, made calls, and had none fail.
 *
 * @param summaries The instances' final summaries.
 * @param expected How many instances must have reported.
 */
export function assertNoFailures(
  summaries: ChildMessage[],
  expected: number,
): void {
  assert.equal(summaries.length, expected, "every live instance reported");
  for (const summary of summaries) {
    assert.equal(
      summary.failed,
      0,
      `${summary.instanceId} failed calls: ${JSON.stringify(summary.errors)}`,
    );
    assert.ok((summary.ok as number) > 0, `${summary.instanceId} made calls`);
  }
}

/** The secrets of a blue/green fleet with an admin client. */
export interface FleetSecrets {
  /** Blue's secret (`blue-id`, active). */
  readonly blue: string;
  /** Green's secret (`green-id`, standby). */
  readonly green: string;
  /** The admin client's secret (`admin-id`). */
  readonly admin: string;
}

const EDIT = ["oauth:client:view", "oauth:client:edit"];

/**
 * Starts an emulator with `blue-id`, `green-id` and `admin-id`, all allowed
 * to view and edit OAuth clients.
 *
 * @param secrets The three secrets.
 * @param tokenLifetimeSeconds Blue's and green's token lifetime; absent: the
 * emulator's own.
 * @returns The emulator (the caller disposes of it).
 */
export function startFleetEmulator(
  secrets: FleetSecrets,
  tokenLifetimeSeconds?: number,
): GenesysEmulator {
  const lifetime = tokenLifetimeSeconds === undefined
    ? {}
    : { tokenLifetimeSeconds };
  return startGenesysEmulator({
    clients: [
      {
        clientId: "blue-id",
        secret: secrets.blue,
        permissions: EDIT,
        ...lifetime,
      },
      {
        clientId: "green-id",
        secret: secrets.green,
        permissions: EDIT,
        ...lifetime,
      },
      { clientId: "admin-id", secret: secrets.admin, permissions: EDIT },
    ],
  });
}

/**
 * A workspace whose `.env` configures the blue/green pair and the admin
 * client on the emulator.
 *
 * @param emulator The emulator.
 * @param secrets The three secrets.
 * @returns The workspace (the caller disposes of it).
 */
export async function createFleetWorkspace(
  emulator: GenesysEmulator,
  secrets: FleetSecrets,
): Promise<Workspace> {
  const ws = await createWorkspace();
  try {
    await ws.writeEnv({
      ...emulatorConfig(emulator, secrets),
      GENESYS_ADMIN_CLIENT_ID: "admin-id",
      GENESYS_ADMIN_CLIENT_SECRET: secrets.admin,
    });
  } catch (error) {
    await ws[Symbol.asyncDispose]();
    throw error;
  }
  return ws;
}

/**
 * One fleet instance's configuration on the emulator: blue and green, a
 * 200 ms poll, the given seal key; the rest (store, id, size, heartbeat) as
 * given.
 *
 * @param emulator The emulator.
 * @param secrets The blue and green secrets.
 * @param secretSealKeys The seal key of distributed secrets.
 * @param rest The store, id, fleet size and other timings.
 * @returns The configuration.
 */
export function fleetInstance(
  emulator: GenesysEmulator,
  secrets: FleetSecrets,
  secretSealKeys: string,
  rest: Omit<
    ChildConfig,
    "tokenUrl" | "apiUrl" | "credentials" | "secretSealKeys"
  >,
): ChildConfig {
  return {
    pollIntervalMs: 200,
    ...rest,
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: secrets.blue },
      { label: "green", clientId: "green-id", clientSecret: secrets.green },
    ],
    secretSealKeys,
  };
}

/**
 * How a suite runs a body against its own fleet (KV or Redis) and collects
 * the instances' final summaries.
 */
export type RunFleet = (
  options: { lifetimeSeconds: number },
  body: (
    ctx: { children: FleetChild[]; emulator: GenesysEmulator },
  ) => Promise<void>,
) => Promise<ChildMessage[]>;

/**
 * The active secret regenerated with its tokens revoked while every instance
 * calls through `auth.fetch`: asserts 0 failed calls and that all of them
 * ended on green. One scenario, so the KV and Redis suites cannot drift.
 *
 * @param run The suite's fleet runner.
 * @param expected How many instances must have reported.
 */
export async function assertRevokedActiveRecovers(
  run: RunFleet,
  expected: number,
): Promise<void> {
  const sleep = (ms: number) =>
    new Promise((resolve) => setTimeout(resolve, ms));
  const summaries = await run(
    { lifetimeSeconds: 60 },
    async ({ children, emulator }) => {
      await Promise.all(
        children.map((c) =>
          c.send({ cmd: "traffic", intervalMs: 30, viaAuth: true })
        ),
      );
      await sleep(1_000);
      emulator.regenerateSecret("blue-id");
      emulator.revokeTokensOf("blue-id");
      await sleep(3_000);
    },
  );
  assertNoFailures(summaries, expected);
  assert.ok(
    summaries.every((s) => (s.status as { active: string }).active === "green"),
    JSON.stringify(
      summaries.map((s) => (s.status as { active: string }).active),
    ),
  );
}

/** A KV fleet on its own emulator and workspace. */
export interface KvFleet extends AsyncDisposable {
  /** The emulator. */
  readonly emulator: GenesysEmulator;
  /** The workspace (its `.env` set by {@link createFleetWorkspace}). */
  readonly ws: Workspace;
  /** The shared KV file, `fleet.db` in the workspace. */
  readonly kvPath: string;
  /** The ready instances (the caller stops them). */
  readonly children: FleetChild[];
}

/**
 * Starts the emulator, the workspace and `n` instances (`web-0` …) on one KV
 * file. Disposing of it removes the workspace, then stops the emulator.
 *
 * @param secrets The three secrets.
 * @param sealKey The seal key of distributed secrets.
 * @param options The fleet's size, heartbeat and blue's and green's token
 * lifetime.
 * @returns The fleet.
 */
export async function startKvFleet(
  secrets: FleetSecrets,
  sealKey: string,
  options: { n: number; heartbeatMs: number; tokenLifetimeSeconds?: number },
): Promise<KvFleet> {
  await using stack = new AsyncDisposableStack();
  const emulator = stack.use(
    startFleetEmulator(secrets, options.tokenLifetimeSeconds),
  );
  const ws = stack.use(await createFleetWorkspace(emulator, secrets));
  const kvPath = `${ws.dir}/fleet.db`;
  const children = await startFleet(
    options.n,
    (i) =>
      fleetInstance(emulator, secrets, sealKey, {
        kvPath,
        instanceId: `web-${i}`,
        fleetSize: options.n,
        heartbeatMs: options.heartbeatMs,
      }),
    ws.dir,
  );
  const owned = stack.move();
  return {
    emulator,
    ws,
    kvPath,
    children,
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}
