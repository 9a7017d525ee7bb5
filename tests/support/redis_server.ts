/**
 * Throwaway redis-server processes for the Redis fleet tests: each one on a
 * free loopback port, with its own config and data directory in a temp dir,
 * optionally with password-protected ACL users and the default user disabled.
 * Only the `redis-server` binary is needed (`REDIS_SERVER` names it where it
 * is not on `PATH`).
 *
 * In CI (`CI=true`) or with `DSA_REQUIRE_REDIS=1` a missing binary FAILS the
 * tests; elsewhere the tests that need it are ignored with a note, so a
 * laptop without Redis can still run the rest of the suite.
 *
 * @module
 */

import { startChild } from "./child_process.ts";

/** A password-protected ACL user of a test server. */
export interface RedisTestUser {
  /** Its name. */
  readonly username: string;
  /** Its password. */
  readonly password: string;
}

/** Options of {@linkcode startRedisServer}. */
export interface StartRedisServerOptions {
  /**
   * ACL users to create (all commands, all keys, all channels). When given,
   * the `default` user is disabled: a connection must authenticate.
   */
  readonly users?: readonly RedisTestUser[];
  /** Keep data across a restart (AOF); default off. */
  readonly persistent?: boolean;
  /**
   * Serve TLS only (`rediss://`), with a self-signed certificate for
   * 127.0.0.1 made with `openssl`; default off.
   */
  readonly tls?: boolean;
  /** More configuration lines (`cluster-enabled yes`, `replicaof …`). */
  readonly config?: readonly string[];
}

/** A redis-server started by {@linkcode startRedisServer}. */
export interface RedisTestServer extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS) with the first user's credentials, if any. */
  readonly url: string;
  /** With TLS: the server's self-signed certificate (PEM), to trust as a CA. */
  readonly certificate?: string;
  /**
   * A URL for a user and password (not necessarily valid ones).
   *
   * @param username The ACL user.
   * @param password Its password.
   * @returns `redis://user:password@127.0.0.1:<port>`.
   */
  urlFor(username: string, password: string): string;
  /** Stops it (SIGTERM) and waits for it to exit; safe to call twice. */
  stop(): Promise<void>;
  /** Kills it with SIGKILL (no shutdown save) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after {@linkcode stop} or {@linkcode kill}). */
  start(): Promise<void>;
  /** The server's log so far, for failure reports. */
  log(): string;
}

/**
 * The redis-server binary, or undefined when there is none.
 *
 * @returns Its path or command name.
 */
export function findRedisServer(): string | undefined {
  const named = Deno.env.get("REDIS_SERVER");
  if (named) return named;
  try {
    const found = new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return found.success ? "redis-server" : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a missing redis-server must fail the tests instead of skipping them. */
export function redisRequired(): boolean {
  return Deno.env.get("CI") === "true" ||
    Deno.env.get("DSA_REQUIRE_REDIS") === "1";
}

/**
 * `ignore` for a `Deno.test` that needs redis-server: true only when the
 * binary is missing and it is not required (then a note is printed once).
 *
 * @returns Whether to ignore the test.
 */
export function ignoreWithoutRedis(): boolean {
  if (findRedisServer() !== undefined || redisRequired()) return false;
  if (!notedMissing) {
    notedMissing = true;
    console.warn(
      "redis-server not found: Redis fleet tests ignored (install redis-server or set REDIS_SERVER; CI fails instead)",
    );
  }
  return true;
}
let notedMissing = false;

/**
 * Starts a throwaway redis-server on a free loopback port.
 *
 * @param options ACL users and persistence.
 * @returns The running server; stop it or `await using` it.
 * @throws {Error} When there is no redis-server binary or it does not start.
 */
export async function startRedisServer(
  options: StartRedisServerOptions = {},
): Promise<RedisTestServer> {
  const binary = findRedisServer();
  if (binary === undefined) {
    throw new Error(
      "redis-server not found: install it (apt-get install -y redis-server) or set REDIS_SERVER to its path",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "dsa-redis-" });
  const port = freePort();
  const certificate = options.tls ? await selfSigned(dir) : undefined;
  const lines = [
    ...(options.tls
      ? [
        "port 0",
        `tls-port ${port}`,
        `tls-cert-file ${dir}/cert.pem`,
        `tls-key-file ${dir}/key.pem`,
        "tls-auth-clients no",
      ]
      : [`port ${port}`]),
    "bind 127.0.0.1",
    "protected-mode no",
    `dir ${dir}`,
    'save ""',
    `appendonly ${options.persistent ? "yes" : "no"}`,
    "appendfsync always",
    'logfile ""',
    "loglevel notice",
    "databases 1",
  ];
  lines.push(...(options.config ?? []));
  if (options.users && options.users.length > 0) {
    lines.push("user default off");
    for (const user of options.users) {
      lines.push(`user ${user.username} on >${user.password} ~* &* +@all`);
    }
  }
  const config = `${dir}/redis.conf`;
  await Deno.writeTextFile(config, lines.join("\n") + "\n");

  let child: Awaited<ReturnType<typeof startChild>> | undefined;
  let pastLogs = "";
  const start = async () => {
    if (child !== undefined) return;
    child = await startChild({
      program: binary,
      args: [config],
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      ready: /Ready to accept connections/,
      timeoutMs: 30_000,
    });
  };
  const halt = async (signal: "SIGTERM" | "SIGKILL") => {
    const running = child;
    if (running === undefined) return;
    child = undefined;
    if (signal === "SIGKILL") {
      // startChild's stop() sends SIGTERM; a kill must not let the server
      // shut down cleanly, so find its pid from its own log line.
      const pid = running.output().match(/pid=(\d+)/)?.[1];
      if (pid !== undefined) {
        try {
          Deno.kill(Number(pid), "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    await running.stop();
    pastLogs += running.output();
  };
  await start();
  const first = options.users?.[0];
  const scheme = options.tls ? "rediss" : "redis";
  const urlFor = (username: string, password: string) =>
    `${scheme}://${encodeURIComponent(username)}:${
      encodeURIComponent(password)
    }@127.0.0.1:${port}`;
  const server: RedisTestServer = {
    port,
    url: first
      ? urlFor(first.username, first.password)
      : `${scheme}://127.0.0.1:${port}`,
    ...(certificate === undefined ? {} : { certificate }),
    urlFor,
    start,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    log: () => pastLogs + (child?.output() ?? ""),
    [Symbol.asyncDispose]: async () => {
      await halt("SIGTERM");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return server;
}

async function selfSigned(dir: string): Promise<string> {
  const made = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(`openssl is needed for the TLS test server: ${error}`);
  });
  if (!made.success) {
    throw new Error(`openssl failed: ${new TextDecoder().decode(made.stderr)}`);
  }
  return await Deno.readTextFile(`${dir}/cert.pem`);
}

/**
 * A free loopback port (for a server about to bind it).
 *
 * @returns The port.
 */
export function freePort(): number {
  // The kernel picks a free port; redis-server binds it right after. A
  // collision in between makes the start fail loudly, not flakily pass.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * The Redis server for tests that need only a working server: the one CI
 * started (`DSA_REDIS_URL`, password-protected) when set, else a throwaway
 * one. Tests sharing CI's server keep apart by a unique key prefix.
 *
 * @returns Its URL and a function that releases it.
 */
export async function sharedOrOwnRedis(): Promise<
  { url: string } & AsyncDisposable
> {
  const external = Deno.env.get("DSA_REDIS_URL");
  if (external) {
    return { url: external, [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  const server = await startRedisServer();
  return {
    url: server.url,
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}
