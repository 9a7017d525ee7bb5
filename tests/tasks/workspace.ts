/**
 * A throwaway copy of the project for running the tasks as `deno task`
 * subprocesses: the real deno.json and deno.lock copied (so the real task
 * commands and permission sets apply, with paths relative to the copy), `src`
 * and `tasks` linked, and a `.env` of the test's own.
 */
import { fileURLToPath } from "node:url";
import type { GenesysEmulator } from "../../testing.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The result of one task run. */
export interface TaskRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A project copy in a temp directory. */
export interface Workspace extends AsyncDisposable {
  readonly dir: string;
  readonly envPath: string;
  writeEnv(values: Record<string, string>): Promise<void>;
  readEnv(): Promise<string>;
  task(
    name: "verify" | "rotate" | "setup" | "incident",
    args?: readonly string[],
    env?: Record<string, string>,
  ): Promise<TaskRun>;
}

/** Creates a workspace; dispose it to delete it. */
export async function createWorkspace(): Promise<Workspace> {
  const dir = await Deno.makeTempDir({ prefix: "dual-secret-tasks-" });
  await Deno.copyFile(`${ROOT}deno.json`, `${dir}/deno.json`);
  await Deno.copyFile(`${ROOT}deno.lock`, `${dir}/deno.lock`);
  await Deno.symlink(`${ROOT}src`, `${dir}/src`);
  await Deno.symlink(`${ROOT}tasks`, `${dir}/tasks`);
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
        env: {
          PATH: Deno.env.get("PATH") ?? "",
          HOME: Deno.env.get("HOME") ?? "",
          DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
          DENO_NO_UPDATE_CHECK: "1",
          ...env,
        },
      }).output();
      const decoder = new TextDecoder();
      return {
        code: output.code,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
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
