/**
 * Interrupts of the rotate and promote tasks: SIGINT and SIGTERM abort a
 * signal (the run finishes storing what it must, then stops) instead of
 * killing the process; and the override rule for variables a task writes.
 *
 * @module
 */
import { OperatorError } from "./_cli.ts";

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
    name === "GENESYS_ACTIVE" || name.startsWith("GENESYS_CLIENT_SECRET_")
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
