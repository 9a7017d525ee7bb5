/**
 * Interrupts of the rotate and promote tasks: SIGINT and SIGTERM abort a
 * signal (the run finishes storing what it must, then stops) instead of
 * killing the process; and the override rule for variables a task writes.
 *
 * @module
 */
import { acquireEnvFileLock, type EnvFileLock } from "../src/rotation/lock.ts";
import { OperatorError, readRotationVariables } from "./_cli.ts";
import { createFileIncidentJournal } from "../src/rotation/incident.ts";

/** An abort signal that SIGINT and SIGTERM trigger; dispose it to stop listening. */
export interface Interrupt extends AsyncDisposable {
  /** Aborted once either signal arrives. */
  readonly signal: AbortSignal;
}

/**
 * Listens for SIGINT and SIGTERM while a task runs.
 *
 * @returns The signal and its disposer.
 */
export function onInterrupt(): Interrupt {
  const controller = new AbortController();
  const listeners: [Deno.Signal, () => void][] = [];
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => {
      // Ctrl-C under `deno task` arrives twice (the terminal signals the
      // process group, and deno task forwards it): say it once.
      if (controller.signal.aborted) return;
      console.error(
        `Received ${name}: stopping once what is in progress is safely stored.`,
      );
      controller.abort(new Error(`interrupted by ${name}`));
    };
    try {
      Deno.addSignalListener(name, listener);
      listeners.push([name, listener]);
    } catch {
      // SIGTERM cannot be listened for on Windows.
    }
  }
  const stop = () => {
    for (const [name, listener] of listeners) {
      Deno.removeSignalListener(name, listener);
    }
    return Promise.resolve();
  };
  return { signal: controller.signal, [Symbol.asyncDispose]: stop };
}

/**
 * Refuses to run when the shell overrides a variable the task writes to the
 * env file: the task would prove one value and write another.
 *
 * @param overridden The variables the shell overrides.
 * @param envFile The env file.
 * @throws {OperatorError} `ENV_OVERRIDDEN`, naming the variables.
 */
export function refuseWrittenOverrides(
  overridden: readonly string[],
  envFile: string,
): void {
  const written = overridden.filter((name) =>
    name === "GENESYS_ACTIVE" || name.startsWith("GENESYS_CLIENT_SECRET_") ||
    name === "AUTH_ACTIVE" || name.startsWith("AUTH_CLIENT_SECRET_") ||
    name.startsWith("AUTH_SECRET_ID_")
  );
  if (written.length === 0) return;
  throw new OperatorError(
    "ENV_OVERRIDDEN",
    `${written.join(", ")} ${
      written.length === 1 ? "is" : "are"
    } set in the shell environment and differ${
      written.length === 1 ? "s" : ""
    } from ${envFile}, which this command rewrites. ` +
      `Unset ${written.length === 1 ? "it" : "them"} (unset ${
        written.join(" ")
      }) so the command works on ${envFile}. Nothing was changed.`,
  );
}

/**
 * Refuses a rotation or promotion of the env file while its incident journal
 * (`<env-file>.incident.json`) holds an unfinished response: it would
 * regenerate the clean credential the response rotated already, or switch
 * traffic back to the leaked one before it is regenerated. Re-running the
 * incident command finishes it (it resumes).
 *
 * @param envFile The env file.
 * @throws {OperatorError} `INCIDENT_UNFINISHED`, naming the command that finishes it.
 */
export async function refuseDuringIncident(envFile: string): Promise<void> {
  const path = `${envFile}.incident.json`;
  const record = await createFileIncidentJournal(path).read();
  if (record === undefined || record.completedAt !== undefined) return;
  throw new OperatorError(
    "INCIDENT_UNFINISHED",
    `The incident response for "${record.compromised}" (OAuth client ${record.clientId}) recorded in ${path} ` +
      `is unfinished (started ${
        new Date(record.startedAt).toISOString()
      }; done: ${
        record.done.join(", ") || "nothing"
      }): its leaked secret may still work. ` +
      `Finish it first: deno task incident --compromised ${record.compromised}${
        record.killTokens ? " --kill-tokens" : ""
      } --yes${
        envFile === ".env" ? "" : ` --env-file ${envFile}`
      } (it resumes). Nothing was changed.`,
  );
}

/**
 * Takes the env file's lock, then reads the rotation variables again: what
 * the command decided from (and asked confirmation for) must still be what
 * the file says once no other rotate, promote, setup or incident can change
 * it. Otherwise another run changed it in between (while this one waited at
 * its prompt, say) and acting on the old values could regenerate the
 * credential that now serves traffic.
 *
 * @param envFile The env file.
 * @param command The command, for the lock's holder record.
 * @param readBefore The variables as read before taking the lock.
 * @returns The held lock.
 * @throws {OperatorError} `ENV_CHANGED` when the variables changed; the lock is released.
 */
export async function lockUnchanged(
  envFile: string,
  command: string,
  readBefore: Readonly<Record<string, string | undefined>>,
): Promise<EnvFileLock> {
  const lock = await acquireEnvFileLock(envFile, command);
  try {
    // The same variables as before (the AUTH_* ones too, for rotate and promote).
    const now = await readRotationVariables(
      envFile,
      undefined,
      Object.keys(readBefore),
    );
    const changed = Object.keys({ ...readBefore, ...now }).filter((name) =>
      readBefore[name] !== now[name]
    );
    if (changed.length > 0) {
      throw new OperatorError(
        "ENV_CHANGED",
        `${envFile} changed while this command was starting (${
          changed.join(", ")
        }): another rotate, promote, setup or incident ran in between. Nothing was changed. ` +
          `Check the file (deno task verify${
            envFile === ".env" ? "" : ` --env-file ${envFile}`
          }) and run the command again.`,
      );
    }
  } catch (error) {
    await lock.release();
    throw error;
  }
  return lock;
}

/**
 * Tells the operator, on stderr, when a previous run died holding the env
 * file's lock: the journal, not this run, says what to resume.
 *
 * @param lock The lock just taken, or undefined when none was (a dry run).
 */
export function noticePreviousHolder(lock: EnvFileLock | undefined): void {
  if (!lock?.previousHolder) return;
  const previous = lock.previousHolder;
  console.error(
    `Notice: a previous run ("${previous.command}", pid ${previous.pid}, started ${previous.startedAt}) ` +
      `ended without releasing ${lock.path} (killed?); the operating system released its lock. ` +
      `The journal says what to resume.`,
  );
}
