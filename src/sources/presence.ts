/**
 * Presence of the processes that follow an env file on one host, the
 * evidence the single-host revoke gate reads (`envFileRevokeGate` in
 * `./rotation`). Opt-in (`followSource(auth, source, { presence: true })`):
 * each process keeps one file in `<env file>.presence/`, replaced
 * atomically every interval and on every change, removed when it stops. It
 * says which label the process serves, a salted fingerprint of the secret
 * it holds per label (never the secret), and until when a token it served
 * with each label lives. Beside it, `<instance>.lock` stays locked (`flock`)
 * while the process lives: the OS drops the lock when the process dies,
 * even by SIGKILL, so a reader tells a dead process's leftover file from a
 * stuck one's without signalling anything. Readers only read.
 *
 * @module
 */
import type { CredentialInput } from "../config.ts";
import { ConfigError } from "../errors.ts";
import { assertDeno } from "../runtime/deno.ts";
import { dirOf, writeFileAtomic } from "../rotation/env_file.ts";
import { fingerprintSecret } from "../rotation/journal.ts";
import { hostName } from "../rotation/lock.ts";

/** The `kind` of a presence file. */
export const PRESENCE_KIND = "dual-secret-auth.presence" as const;

/** The default of {@linkcode PresenceOptions.intervalMs}. */
export const DEFAULT_PRESENCE_INTERVAL_MS = 2_000;

/**
 * A presence file older than this many of its own intervals (plus a second
 * of slack for a loaded host) is stale: its process stopped refreshing it.
 */
export const PRESENCE_STALE_INTERVALS = 3;

/** The largest presence file a reader reads; a larger one is unreadable. */
const PRESENCE_MAX_BYTES = 64 * 1024;

/** One label as a presence file reports it. */
export interface PresenceCredential {
  /** The label. */
  readonly label: string;
  /** Its client id. */
  readonly clientId: string;
  /** `fingerprintSecret(secret, salt)` of the secret the process holds for it. */
  readonly fingerprint: string;
  /**
   * The last time the process was seen serving with this secret (the label
   * active, with a token), ms since the epoch.
   *
   * @default undefined (never, since it loaded this secret)
   */
  readonly lastUsedAt?: number;
  /**
   * The latest expiry of a token it served with this secret: callers may
   * present such a token until then. Ms since the epoch.
   *
   * @default undefined (never served)
   */
  readonly usedUntil?: number;
}

/** What one process's presence file holds. No secret, no token. */
export interface PresenceRecord {
  /** Format version. */
  readonly version: 1;
  /** Always {@linkcode PRESENCE_KIND}. */
  readonly kind: "dual-secret-auth.presence";
  /** The instance's name, also the file's name. */
  readonly instance: string;
  /** The process id. */
  readonly pid: number;
  /**
   * The host name, when the process may read it.
   *
   * @default undefined
   */
  readonly host?: string;
  /** The source it follows, such as `env file /srv/app/.env`. */
  readonly source: string;
  /** When the process started announcing itself, ms since the epoch. */
  readonly startedAt: number;
  /** When this file was written, ms since the epoch. */
  readonly updatedAt: number;
  /** How often it is rewritten, in ms. */
  readonly intervalMs: number;
  /** The random salt of the fingerprints (one per process). */
  readonly salt: string;
  /** The label the process serves. */
  readonly active: string;
  /** Every label it holds. */
  readonly credentials: readonly PresenceCredential[];
}

/** Options of a follower's presence (`followSource`'s `presence`). */
export interface PresenceOptions {
  /**
   * The directory of the presence files.
   *
   * @default the source's `presenceDirectory` (`<env file>.presence` for
   *   `envFileSource`)
   */
  readonly directory?: string;
  /**
   * This process's name in the directory: letters, digits, `.`, `_`, `-`.
   *
   * @default `<pid>-<8 random hex digits>`
   */
  readonly instance?: string;
  /**
   * How often the file is rewritten even without a change, in ms.
   *
   * @default DEFAULT_PRESENCE_INTERVAL_MS
   */
  readonly intervalMs?: number;
  /**
   * The clock of the times written.
   *
   * @default Date.now
   */
  readonly clock?: { now(): number };
}

/**
 * The directory of an env file's presence files: `<file>.presence` beside
 * the file really read (a symlink followed), so a service and the rotate
 * command naming the file by different links find the same directory.
 *
 * @param envFile The env file.
 * @returns The directory's path.
 *
 * @example
 * ```ts
 * import { presenceDirectoryOf } from "@rotating/dual-secret-auth/sources";
 * if (!presenceDirectoryOf("/nonexistent/.env").endsWith(".env.presence")) {
 *   throw new Error();
 * }
 * ```
 */
export function presenceDirectoryOf(envFile: string): string {
  assertDeno("presenceDirectoryOf");
  let target = envFile;
  try {
    target = Deno.realPathSync(envFile);
  } catch {
    // Missing now. A dangling link is followed as the rotate command's
    // writes follow it (resolveWriteTarget), or a service started before
    // the file existed would announce itself where the gate never looks.
    try {
      const link = Deno.readLinkSync(envFile);
      target = link.startsWith("/") ? link : `${dirOf(envFile)}/${link}`;
    } catch {
      // Not a link: the name as given.
    }
  }
  return `${target}.presence`;
}

/** What the follower sees of its auth instance at one moment. */
export interface PresenceObservation {
  /** The label it serves. */
  readonly active: string;
  /** The credentials it holds. */
  readonly credentials: readonly CredentialInput[];
  /** Per label, when its cached token expires, where the instance says. */
  readonly tokens: readonly {
    readonly label: string;
    readonly expiresAt?: number;
  }[];
}

/** A running presence; {@linkcode PresenceWriter.stop} removes its files. */
export interface PresenceWriter {
  /** Observes the instance now and rewrites the file (coalesced). */
  refresh(): Promise<void>;
  /** Stops refreshing and removes the file and its lock. */
  stop(): Promise<void>;
}

const INSTANCE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Starts announcing this process in `directory`. Failures to write are
 * reported through `onProblem` (once per distinct message) and retried on
 * the next interval; they never stop the follower.
 *
 * @param directory The presence directory.
 * @param sourceName The followed source's name.
 * @param observe Reads the instance's state (synchronous, so that a switch
 *   is observed before it happens).
 * @param options The instance name, interval and clock.
 * @param onProblem Receives a sentence when the file cannot be written.
 * @returns The writer.
 * @throws {ConfigError} When an option is invalid.
 */
export function startPresence(
  directory: string,
  sourceName: string,
  observe: () => PresenceObservation,
  options: PresenceOptions = {},
  onProblem: (message: string) => void = () => {},
): PresenceWriter {
  assertDeno("presence");
  const intervalMs = options.intervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS;
  if (
    typeof intervalMs !== "number" || !Number.isFinite(intervalMs) ||
    intervalMs < 10 || intervalMs > 2 ** 31 - 1
  ) {
    throw new ConfigError(
      "presence.intervalMs",
      `must be a number of milliseconds from 10 to 2147483647 (default ${DEFAULT_PRESENCE_INTERVAL_MS})`,
    );
  }
  const instance = options.instance ??
    `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  if (!INSTANCE_NAME.test(instance)) {
    throw new ConfigError(
      "presence.instance",
      "must be 1 to 64 letters, digits, '.', '_' or '-' (it names a file)",
    );
  }
  const now = () => (options.clock ?? Date).now();
  // The name in use: the given one, or, when another process holds it, one
  // of this process's own (a process the gate cannot see would let it open).
  let name = instance;
  const jsonPath = () => `${directory}/${name}.json`;
  const lockPath = () => `${directory}/${name}.lock`;
  const salt = [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const startedAt = now();
  const host = hostName();
  // Per label: the secret it was observed with (to reset the use when a
  // label gets a new secret) and the use seen with that secret.
  const usage = new Map<
    string,
    { secret: string; lastUsedAt?: number; usedUntil?: number }
  >();
  const fingerprints = new Map<string, { secret: string; value: string }>();
  let lock: Deno.FsFile | undefined;
  let stopped = false;
  let lastProblem = "";
  let chain: Promise<void> = Promise.resolve();
  let pending = false;

  const note = (): PresenceObservation | undefined => {
    let seen: PresenceObservation;
    try {
      seen = observe();
    } catch {
      return undefined;
    }
    const at = now();
    for (const credential of seen.credentials) {
      const secret = reveal(credential);
      const known = usage.get(credential.label);
      if (known === undefined || known.secret !== secret) {
        usage.set(credential.label, { secret });
      }
    }
    const token = seen.tokens.find((t) => t.label === seen.active);
    const use = usage.get(seen.active);
    if (
      use !== undefined && token?.expiresAt !== undefined &&
      token.expiresAt > at
    ) {
      use.lastUsedAt = at;
      use.usedUntil = Math.max(use.usedUntil ?? 0, token.expiresAt);
    }
    return seen;
  };

  const fingerprintOf = async (label: string, secret: string) => {
    const cached = fingerprints.get(label);
    if (cached?.secret === secret) return cached.value;
    const value = await fingerprintSecret(secret, salt);
    fingerprints.set(label, { secret, value });
    return value;
  };

  /** Locks `<name>.lock` without blocking; `undefined` when another process holds it. */
  async function tryAcquire(path: string): Promise<Deno.FsFile | undefined> {
    const info = await Deno.lstat(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    });
    // No process's lock (a FIFO would block the open forever, and `stop()`
    // with it; a link would lock a file elsewhere): replaced.
    if (info !== undefined && !info.isFile) await Deno.remove(path);
    const file = await Deno.open(path, {
      read: true,
      write: true,
      create: true,
      mode: 0o640,
    });
    try {
      // Never a blocking lock: a second process under the same instance
      // name would hang here. A reader's probe holds it for a moment only.
      for (let attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 20));
        if (await file.tryLock(true)) return file;
      }
    } catch (error) {
      file.close();
      throw error;
    }
    file.close();
    return undefined;
  }

  /** Whether the lock file still is the one this process locked. */
  async function lockStillOurs(held: Deno.FsFile): Promise<boolean> {
    const [named, mine] = await Promise.all([
      Deno.lstat(lockPath()).catch((error) => {
        // Only a lock surely gone is let go: one this process cannot see
        // now (a directory made unreadable) stays held, so that its file,
        // stale, reads as stuck rather than as a dead process's leftover.
        if (
          error instanceof Deno.errors.NotFound ||
          error instanceof Deno.errors.NotADirectory
        ) return undefined;
        throw error;
      }),
      held.stat(),
    ]);
    return named !== undefined && named.isFile &&
      (mine.ino === null || (named.ino === mine.ino && named.dev === mine.dev));
  }

  async function write(seen: PresenceObservation): Promise<void> {
    // Its directory or lock file removed meanwhile (a clean-up): taken
    // again, else the process would be invisible to the gate for good.
    if (lock !== undefined && !await lockStillOurs(lock)) {
      lock.close();
      lock = undefined;
    }
    if (lock === undefined) {
      await Deno.mkdir(directory, { recursive: true, mode: 0o750 });
      lock = await tryAcquire(lockPath());
      if (lock === undefined && name === instance) {
        // Random too: processes in other pid namespaces share pids.
        const own = `${instance.slice(0, 40)}-${Deno.pid}-${
          crypto.randomUUID().slice(0, 8)
        }`;
        onProblem(
          `another process holds ${lockPath()}: this one announces itself as ${own} instead. Give each process its own presence.instance.`,
        );
        name = own;
        lock = await tryAcquire(lockPath());
      }
      if (lock === undefined) {
        throw new Error(
          `another process holds ${lockPath()}: presence.instance must name one process`,
        );
      }
    }
    const credentials: PresenceCredential[] = [];
    for (const credential of seen.credentials) {
      const use = usage.get(credential.label);
      credentials.push({
        label: credential.label,
        clientId: credential.clientId,
        fingerprint: await fingerprintOf(
          credential.label,
          reveal(credential),
        ),
        ...(use?.lastUsedAt === undefined
          ? {}
          : { lastUsedAt: use.lastUsedAt }),
        ...(use?.usedUntil === undefined ? {} : { usedUntil: use.usedUntil }),
      });
    }
    const record: PresenceRecord = {
      version: 1,
      kind: PRESENCE_KIND,
      instance: name,
      pid: Deno.pid,
      ...(host === undefined ? {} : { host }),
      source: sourceName,
      startedAt,
      updatedAt: now(),
      intervalMs,
      salt,
      active: seen.active,
      credentials,
    };
    if (stopped) return;
    // Written in place, never through a link put there: that would hide
    // this process from the gate and overwrite the link's target.
    const info = await Deno.lstat(jsonPath()).catch(() => undefined);
    if (info !== undefined && !info.isFile) await Deno.remove(jsonPath());
    await writeFileAtomic(jsonPath(), `${JSON.stringify(record)}\n`, {
      newFileMode: 0o640,
    });
  }

  function refresh(): Promise<void> {
    if (stopped) return chain;
    // Observed at once: a switch about to happen must not hide the use of
    // the label it leaves.
    const seen = note();
    if (pending) return chain;
    pending = true;
    chain = chain.then(async () => {
      pending = false;
      if (stopped) return;
      const latest = note() ?? seen;
      if (latest === undefined) return;
      try {
        await write(latest);
        lastProblem = "";
      } catch (error) {
        const message = `cannot announce this process in ${directory} (${
          error instanceof Error ? `${error.name}: ${error.message}` : "error"
        }); the revoke gate will not see it. Give the service write access to that directory, or turn presence off.`;
        if (message !== lastProblem) {
          lastProblem = message;
          onProblem(message);
        }
      }
    });
    return chain;
  }

  const timer = setInterval(() => void refresh(), intervalMs);
  void refresh();

  async function stop(): Promise<void> {
    if (stopped) return await chain;
    stopped = true;
    clearInterval(timer);
    await chain;
    // Only what this process wrote: without the lock it wrote nothing, and
    // the file may be another process's under the same name.
    // Nor a file that replaced its lock: that is another process's now.
    if (lock !== undefined && await lockStillOurs(lock).catch(() => false)) {
      await Deno.remove(jsonPath()).catch(() => {});
      // The lock file goes after the presence file: a reader never sees a
      // presence file whose lock is missing while the process lives.
      await Deno.remove(lockPath()).catch(() => {});
    }
    if (lock !== undefined) {
      try {
        await lock.unlock();
      } catch {
        // Closing drops it anyway.
      }
      lock.close();
      lock = undefined;
    }
  }
  return { refresh, stop };
}

function reveal(credential: CredentialInput): string {
  return typeof credential.clientSecret === "string"
    ? credential.clientSecret
    : credential.clientSecret.reveal();
}

/** How a reader judges one presence file. */
export type PresenceState =
  /** Refreshed within its bound: the process runs and says what it uses. */
  | "live"
  /** Stale, and its lock is free: the process ended; the file is a leftover. */
  | "gone"
  /** Stale, but its lock is held: the process runs and stopped refreshing. */
  | "stuck"
  /** Not a presence file this version reads, and its lock is held. */
  | "unreadable";

/** One presence file, as read. */
export interface PresenceEntry {
  /** The file's path. */
  readonly file: string;
  /** The instance's name (the file's name without `.json`). */
  readonly instance: string;
  /** The verdict. */
  readonly state: PresenceState;
  /**
   * What the file says.
   *
   * @default undefined (unreadable)
   */
  readonly record?: PresenceRecord;
  /**
   * How long ago it was written, in ms.
   *
   * @default undefined (unreadable)
   */
  readonly ageMs?: number;
}

/**
 * Reads every presence file of a directory. Reads only: it writes,
 * removes and signals nothing (a leftover file of a dead process is
 * reported as `gone`, not deleted). A missing directory reads as none.
 * A directory or file this reader may not read is an error, not a verdict.
 *
 * @param directory The presence directory (see {@linkcode presenceDirectoryOf}).
 * @param now The time, ms since the epoch.
 * @returns The entries, by instance name.
 * @throws {Deno.errors.PermissionDenied} When the directory or a presence
 *   file may not be read by this user (or `NotCapable` without `--allow-read`).
 *
 * @example A directory that does not exist holds no presence
 * ```ts
 * import { readPresence } from "@rotating/dual-secret-auth/sources";
 * const entries = await readPresence("/nonexistent/.env.presence", Date.now());
 * if (entries.length !== 0) throw new Error();
 * ```
 */
export async function readPresence(
  directory: string,
  now: number,
): Promise<PresenceEntry[]> {
  assertDeno("readPresence");
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(directory)) {
      // Temp files of an atomic write start with a dot.
      // A link is listed too (and judged unreadable, never followed).
      if (
        (entry.isFile || entry.isSymlink) && entry.name.endsWith(".json") &&
        !entry.name.startsWith(".")
      ) {
        names.push(entry.name);
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  names.sort();
  const entries: PresenceEntry[] = [];
  for (const name of names) {
    const file = `${directory}/${name}`;
    const instance = name.slice(0, -".json".length);
    let record: PresenceRecord | undefined;
    try {
      // Only a regular file of a presence file's size is read: a link
      // elsewhere or a huge file is not one this version wrote.
      const info = await Deno.lstat(file);
      if (info.isFile && info.size <= PRESENCE_MAX_BYTES) {
        const value: unknown = JSON.parse(await Deno.readTextFile(file));
        record = isPresenceRecord(value) ? value : undefined;
      }
    } catch (error) {
      // Not this reader's to read: what it says is unknown, and calling it
      // "not a presence file" would have the operator delete a live one's.
      if (
        error instanceof Deno.errors.NotCapable ||
        error instanceof Deno.errors.PermissionDenied
      ) throw error;
      // Removed meanwhile: the process stopped cleanly.
      if (error instanceof Deno.errors.NotFound) continue;
    }
    const lock = () => lockState(`${directory}/${instance}.lock`);
    if (record === undefined) {
      entries.push({
        file,
        instance,
        state: await lock() === "held" ? "unreadable" : "gone",
      });
      continue;
    }
    const ageMs = now - record.updatedAt;
    const bound = PRESENCE_STALE_INTERVALS * record.intervalMs + 1_000;
    // A recent file whose lock is there and free is a killed process's
    // (its interval, or a clock ahead, would keep it "live" for long); one
    // whose lock is missing may be a live process's whose lock was removed,
    // and another host's lock (a shared mount) cannot be probed from here.
    const here = record.host !== undefined && record.host === hostName();
    const state: PresenceState = ageMs <= bound
      ? here && await lock() === "free" ? "gone" : "live"
      : await lock() === "held"
      ? "stuck"
      : "gone";
    entries.push({ file, instance, state, record, ageMs });
  }
  return entries;
}

/**
 * Whether a process holds the lock (a shared probe, released at once):
 * `missing` when there is no lock file.
 */
async function lockState(path: string): Promise<"held" | "free" | "missing"> {
  let file: Deno.FsFile;
  try {
    // Only a regular file is opened: a FIFO put there would block the
    // open, and the gate with it, beyond the reach of Ctrl-C.
    if (!(await Deno.lstat(path)).isFile) return "held";
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "missing";
    if (error instanceof Deno.errors.NotCapable) throw error;
    // Not ours to open (another user's): it cannot be told gone.
    return "held";
  }
  try {
    const free = await file.tryLock(false);
    if (free) await file.unlock();
    return free ? "free" : "held";
  } finally {
    file.close();
  }
}

/**
 * Whether a value read from a presence file is a {@linkcode PresenceRecord}.
 *
 * @param value The parsed JSON.
 * @returns Whether it has every field with its type.
 */
export function isPresenceRecord(value: unknown): value is PresenceRecord {
  const record = value as Partial<PresenceRecord> | null;
  return typeof record === "object" && record !== null &&
    record.version === 1 && record.kind === PRESENCE_KIND &&
    typeof record.instance === "string" && typeof record.pid === "number" &&
    typeof record.updatedAt === "number" &&
    typeof record.intervalMs === "number" && record.intervalMs > 0 &&
    typeof record.salt === "string" && typeof record.active === "string" &&
    Array.isArray(record.credentials) &&
    record.credentials.every((c) =>
      typeof c?.label === "string" && typeof c.fingerprint === "string" &&
      (c.usedUntil === undefined || typeof c.usedUntil === "number") &&
      (c.lastUsedAt === undefined || typeof c.lastUsedAt === "number")
    );
}
