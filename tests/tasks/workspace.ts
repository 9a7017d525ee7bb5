/**
 * A throwaway copy of the project for running the tasks as `deno task`
 * subprocesses: the real deno.json and deno.lock copied (so the real task
 * commands and permission sets apply, with paths relative to the copy), `src`
 * and `tasks` linked, and a `.env` of the test's own.
 */
import { fileURLToPath } from "node:url";
import { ROTATION_ENV_VARS } from "../../src/rotation/env_config.ts";
import type { GenesysEmulator } from "../../testing.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The variable that makes a task stop at a named failpoint. */
export const FAILPOINT_VAR = "DUAL_SECRET_AUTH_FAILPOINT";

/**
 * `deno run` of a task with its permission set plus the failpoint variable.
 *
 * @param task The task file's name in `tasks/`, such as `rotate`.
 * @param args The task's arguments.
 * @returns The arguments for `deno`.
 */
export function withFailpoint(task: string, args: string[]): string[] {
  return [
    "run",
    "-q",
    "-P=operator",
    // An --allow-env flag replaces the set's list, so repeat it.
    `--allow-env=${
      [...ROTATION_ENV_VARS, "NO_COLOR", FAILPOINT_VAR].join(",")
    }`,
    `tasks/${task}.ts`,
    ...args,
  ];
}

/** The result of one task run. */
export interface TaskRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A task started in the background, its output collected as it comes. */
export interface SpawnedTask {
  readonly child: Deno.ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once stderr or stdout matches, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Waits for the exit; resolves to the run. */
  finished(): Promise<TaskRun>;
}

/** Environment for a task subprocess: only what deno itself needs. */
export function taskEnvironment(
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
    ...extra,
  };
}

/** A project copy in a temp directory. */
export interface Workspace extends AsyncDisposable {
  readonly dir: string;
  readonly envPath: string;
  writeEnv(values: Record<string, string>): Promise<void>;
  readEnv(): Promise<string>;
  task(
    name:
      | "verify"
      | "rotate"
      | "promote"
      | "emulator"
      | "setup"
      | "incident"
      | "fleet",
    args?: readonly string[],
    env?: Record<string, string>,
  ): Promise<TaskRun>;
  /**
   * Starts `deno <args>` in the workspace (such as `["task", "-q",
   * "rotate", "--yes"]`) without waiting for it.
   */
  spawn(args: readonly string[], env?: Record<string, string>): SpawnedTask;
}

/** Creates a workspace; dispose it to delete it. */
export async function createWorkspace(): Promise<Workspace> {
  const dir = await Deno.makeTempDir({ prefix: "dual-secret-tasks-" });
  await Deno.copyFile(`${ROOT}deno.json`, `${dir}/deno.json`);
  await Deno.copyFile(`${ROOT}deno.lock`, `${dir}/deno.lock`);
  for (
    const entry of [
      "src",
      "tasks",
      "mod.ts",
      "testing.ts",
      "sources.ts",
      "kv.ts",
      "redis.ts",
    ]
  ) {
    await Deno.symlink(`${ROOT}${entry}`, `${dir}/${entry}`);
  }
  const envPath = `${dir}/.env`;
  return {
    dir,
    envPath,
    async writeEnv(values) {
      const text = Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join(
        "",
      );
      await Deno.writeTextFile(envPath, `# test configuration\n${text}`);
    },
    readEnv: () => Deno.readTextFile(envPath),
    async task(name, args = [], env = {}) {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", name, ...args],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        // Only what deno itself needs: the test's own GENESYS_* must not leak in.
        clearEnv: true,
        env: taskEnvironment(env),
      }).output();
      const decoder = new TextDecoder();
      return {
        code: output.code,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
    },
    spawn(args, env = {}) {
      return spawnIn(dir, args, env);
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function spawnIn(
  dir: string,
  args: readonly string[],
  env: Record<string, string>,
): SpawnedTask {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: taskEnvironment(env),
  }).spawn();
  let out = "";
  let err = "";
  const collect = async (
    stream: ReadableStream<Uint8Array>,
    add: (text: string) => void,
  ) => {
    for await (
      const chunk of stream.pipeThrough(new TextDecoderStream())
    ) add(chunk);
  };
  const collected = Promise.all([
    collect(child.stdout, (text) => void (out += text)),
    collect(child.stderr, (text) => void (err += text)),
  ]);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(pattern, timeoutMs = 30_000) {
      const started = Date.now();
      while (!pattern.test(out + err)) {
        if (Date.now() - started > timeoutMs) {
          throw new Error(
            `timed out waiting for ${pattern}; output so far:\n${out}\n${err}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async finished() {
      const status = await child.status;
      await collected;
      return { code: status.code, stdout: out, stderr: err };
    },
  };
}

/**
 * The GENESYS_* configuration of a blue/green pair (`blue-id`, `green-id`)
 * on an emulator, blue active.
 */
export function emulatorConfig(
  emulator: GenesysEmulator,
  secrets: { readonly blue: string; readonly green: string },
): Record<string, string> {
  return {
    GENESYS_TOKEN_URL: emulator.tokenUrl,
    GENESYS_API_URL: emulator.apiUrl,
    GENESYS_CLIENT_ID_BLUE: "blue-id",
    GENESYS_CLIENT_SECRET_BLUE: secrets.blue,
    GENESYS_CLIENT_ID_GREEN: "green-id",
    GENESYS_CLIENT_SECRET_GREEN: secrets.green,
    GENESYS_ACTIVE: "blue",
  };
}

/** Whether {@linkcode spawnInTerminal} can run here (util-linux `script`, Linux). */
export const hasTerminal: boolean = Deno.build.os === "linux" &&
  await new Deno.Command("script", { args: ["--version"] }).output().then(
    (o) => o.success,
    () => false,
  );

/** A task running in a terminal, as an operator at a keyboard runs it. */
export interface TerminalTask extends AsyncDisposable {
  /** Everything the terminal showed so far (stdout and stderr together). */
  output(): string;
  /** Types text on the terminal, such as `y\n`. */
  type(text: string): Promise<void>;
  /** Waits for the exit; resolves to the exit code and all the output. */
  finished(): Promise<{ code: number; output: string }>;
}

/**
 * Starts `deno task -q <args>` in the workspace inside a terminal (util-linux
 * `script`), so that the task asks before acting. Dispose it to end it.
 *
 * @param ws The workspace.
 * @param args The task and its arguments, such as `["rotate"]`.
 * @returns The running task.
 */
export function spawnInTerminal(
  ws: Workspace,
  args: readonly string[],
): TerminalTask {
  const child = new Deno.Command("script", {
    args: [
      "-qec",
      `'${Deno.execPath()}' task -q ${args.join(" ")}`,
      "/dev/null",
    ],
    cwd: ws.dir,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: taskEnvironment({ SHELL: "/bin/sh" }),
  }).spawn();
  let output = "";
  const collected = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (output += chunk) }),
  );
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  return {
    output: () => output,
    type: (text) => writer.write(new TextEncoder().encode(text)),
    async finished() {
      const { code } = await child.status;
      await collected;
      await stderr;
      return { code, output };
    },
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      try {
        child.kill();
      } catch { /* exited */ }
      await child.status;
      await collected.catch(() => {});
      await stderr.catch(() => "");
    },
  };
}
