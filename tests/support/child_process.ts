/**
 * Runs a program as a child process for distribution tests: waits for a line
 * that says it is ready, keeps its output for assertions and failure reports,
 * and stops it without leaking the process or its pipes.
 *
 * @module
 */

/** A child process started by {@linkcode startChild}. */
export interface RunningChild extends AsyncDisposable {
  /** The match of the readiness pattern in its standard output. */
  readonly ready: RegExpMatchArray;
  /** Standard output and standard error so far. */
  output(): string;
  /**
   * Sends SIGTERM unless it has exited, then waits for its exit and for its
   * pipes to drain.
   *
   * @returns How it exited.
   */
  stop(): Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode startChild}. */
export interface StartChildOptions {
  /** The program, such as `Deno.execPath()` or `node`. */
  readonly program: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Its working directory. */
  readonly cwd?: string;
  /** Its whole environment; the parent's is not inherited. */
  readonly env: Record<string, string>;
  /** A pattern its standard output matches once it is ready. */
  readonly ready: RegExp;
  /** How long to wait for readiness; default 30 s (a loaded CI machine). */
  readonly timeoutMs?: number;
}

/**
 * Starts a child process and waits until its standard output matches
 * `options.ready`.
 *
 * @param options Program, arguments, environment and readiness pattern.
 * @returns The running child; stop it (or `await using` it).
 * @throws {Error} When it exits or times out first (the message holds its output).
 */
export async function startChild(
  options: StartChildOptions,
): Promise<RunningChild> {
  const child = new Deno.Command(options.program, {
    args: [...options.args],
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const { promise: readyPromise, resolve: resolveReady } = Promise
    .withResolvers<RegExpMatchArray | undefined>();
  const pumps = Promise.all([
    pump(child.stdout, (text) => {
      stdout += text;
      const match = stdout.match(options.ready);
      if (match !== null) resolveReady(match);
    }),
    pump(child.stderr, (text) => stderr += text),
  ]);
  let exited = false;
  const status = child.status.then((result) => {
    exited = true;
    resolveReady(undefined);
    return result;
  });
  const output = () => `${stdout}${stderr}`;
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // It exited between the check and the kill.
      }
    }
    const result = await status;
    await pumps;
    return result;
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.timeoutMs ?? 30_000);
  });
  const outcome = await Promise.race([readyPromise, timeout]);
  clearTimeout(timer);
  if (outcome === undefined || outcome === "timeout") {
    const result = await stop();
    throw new Error(
      `${options.program} ${
        outcome === "timeout" ? "did not get ready in time" : "exited early"
      } (code ${result.code}, signal ${result.signal}):\n${output()}`,
    );
  }
  return {
    ready: outcome,
    output,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/**
 * Runs a program to completion with the parent's environment plus `env`.
 *
 * @param program The program.
 * @param args Its arguments.
 * @param options Working directory and extra environment variables.
 * @returns Exit code and decoded output.
 */
export async function runToEnd(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await new Deno.Command(program, {
    args: [...args],
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/**
 * The parent's variables a child runtime needs to find its caches and tools,
 * for children started with a cleared environment.
 *
 * @returns Those of `PATH`, `HOME`, `DENO_DIR`, `XDG_CACHE_HOME`, `TMPDIR`
 *   and `NO_COLOR` that are set (`NO_COLOR` defaults to 1).
 */
export function baseEnvironment(): Record<string, string> {
  const names = [
    "PATH",
    "HOME",
    "DENO_DIR",
    "XDG_CACHE_HOME",
    "TMPDIR",
    "NO_COLOR",
  ];
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of names) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    onText(text);
  }
}
