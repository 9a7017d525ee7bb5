/**
 * A service that follows an env file (tests/runbook/runbook_service.ts:
 * `envFileSource`, calling the Platform API continuously), started in its
 * own process beside a workspace's tasks, as an operator's service would run
 * while they rotate or respond to an incident.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { taskEnvironment, type Workspace } from "../tasks/workspace.ts";

const SERVICE = fileURLToPath(
  new URL("../runbook/runbook_service.ts", import.meta.url),
);

/** What the service saw, printed when it stops. */
export interface ServiceReport {
  /** Requests that succeeded. */
  readonly ok: number;
  /** Requests that failed. */
  readonly failed: number;
  /** Why each failed one failed. */
  readonly failures: string[];
  /** Each switch of the active label (`blue->green`, `failover a->b`). */
  readonly switches: string[];
  /** The codes of the warnings it received. */
  readonly warnings: string[];
  /** The active label at the end. */
  readonly active: string;
}

/** The running service; stop it once done (stopping again is harmless). */
export interface FollowingService extends AsyncDisposable {
  /** Stops it (SIGTERM) and returns its report; the same report if stopped already. */
  stop(): Promise<ServiceReport>;
}

/**
 * Another service script with the same report, such as
 * tests/tasks/provider_service.ts for a provider env file.
 */
export interface ServiceScript {
  /** The script's path. */
  readonly script: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /**
   * Whether it may write in the workspace (its presence files).
   *
   * @default false
   */
  readonly writable?: boolean;
}

/**
 * Starts the service on the workspace's `.env`, and waits until it has made
 * a request that succeeded.
 *
 * @param ws The workspace whose env file the service follows.
 * @param emulator Where its token endpoint and Platform API are.
 * @param service Another script and its arguments (default: the runbook's
 *   Genesys service on `ws.envPath` and the emulator's URLs).
 * @returns The service, ready.
 */
export async function startFollowingService(
  ws: Workspace,
  emulator: { readonly tokenUrl: string; readonly apiUrl: string },
  service?: ServiceScript,
): Promise<FollowingService> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      `--allow-read=${ws.dir}`,
      ...(service?.writable ? [`--allow-write=${ws.dir}`] : []),
      "--allow-net=127.0.0.1",
      ...(service
        ? [service.script, ...service.args]
        : [SERVICE, ws.envPath, emulator.tokenUrl, emulator.apiUrl]),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: taskEnvironment(),
  }).spawn();
  const errors = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const out = new Response(child.stdout).text();
  let stopping: Promise<ServiceReport> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* exited already */ }
      await child.status;
      await errors.cancel().catch(() => {});
      return JSON.parse(await out) as ServiceReport;
    })();
  let log = "";
  try {
    while (!log.includes("service ready")) {
      const { value, done } = await errors.read();
      if (done) throw new Error(`service ended: ${log}`);
      log += value;
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return {
    stop,
    async [Symbol.asyncDispose]() {
      await stop().catch(() => undefined);
    },
  };
}
