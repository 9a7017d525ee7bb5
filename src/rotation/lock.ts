/**
 * One rotation or promotion per env file at a time: an exclusive OS lock
 * (`flock`, through `Deno.FsFile.tryLock`) on `<env file>.lock`, holding the
 * holder's pid, host, command and start time. The OS drops the lock when the
 * holder dies, even by SIGKILL, so a lock is never stale; the file itself
 * stays (removing it would let two runs lock two different files), and
 * keeps the last hold's fencing token, so each hold's token is above every
 * earlier one's. {@linkcode FencedLock} is the one shape of a held lock,
 * this one's and the fleet store's.
 *
 * @module
 */
import { assertDeno } from "../runtime/deno.ts";
import { DualSecretAuthError } from "../errors.ts";
import { dirOf, resolveWriteTarget } from "./env_file.ts";
import { FileNotWritableError } from "./preflight.ts";

/** The code of {@linkcode RotationLockedError}. */
export const ROTATION_LOCKED = "ROTATION_LOCKED" as const;

/** Who holds a lock, as written in the lock file. */
export interface LockHolder {
  /** The holder's process id. */
  readonly pid: number;
  /** The holder's host name, when it could be read. */
  readonly host?: string;
  /** The command that holds it, such as `rotate`. */
  readonly command: string;
  /** When it took the lock (ISO 8601). */
  readonly startedAt: string;
  /**
   * The fencing token of its hold.
   *
   * @default undefined (a lock file written before tokens)
   */
  readonly token?: number;
}

/**
 * A held lock, of the env file or of the fleet store: one holder at a
 * time, released by `release()` or `await using`. Its `token` is greater
 * than that of every earlier hold of the same lock, so a write that carries
 * a token can be refused once a later holder exists.
 */
export interface FencedLock extends AsyncDisposable {
  /** The fencing token of this hold: above every earlier hold's. */
  readonly token: number;
  /** Releases the lock; calling it again does nothing. */
  release(): Promise<void>;
}

/** Another rotate, promote, setup or incident holds the env file's lock; this one changed nothing. */
export class RotationLockedError extends DualSecretAuthError {
  /** The lock file. */
  readonly lockPath: string;
  /** Who holds it, if the lock file said. */
  readonly holder?: LockHolder;

  /**
   * Creates the error.
   *
   * @param lockPath The lock file.
   * @param holder Who holds it, if known.
   */
  constructor(lockPath: string, holder: LockHolder | undefined) {
    const who = holder
      ? `"${holder.command}" (pid ${holder.pid}${
        holder.host ? ` on ${holder.host}` : ""
      }, started ${holder.startedAt})`
      : "another process";
    super(
      ROTATION_LOCKED,
      `${who} holds this env file's lock ${lockPath} (rotate, promote, setup and incident take turns). ` +
        `Nothing was changed. Wait for it to finish and run the command again.`,
    );
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/**
 * A held env-file lock; release it with `release()` or `await using`. Its
 * token is kept in the lock file: the last hold's plus one.
 */
export interface EnvFileLock extends FencedLock {
  /** The lock file. */
  readonly path: string;
  /** Whether a previous holder died holding it (its record was still there). */
  readonly previousHolder?: LockHolder;
}

/**
 * The lock file of an env file: `<path>.lock`.
 *
 * @param envFile The env file.
 * @returns The lock file's path.
 */
export function lockPathOf(envFile: string): string {
  return `${envFile}.lock`;
}

/**
 * Takes the env file's lock at once, or refuses.
 *
 * @param envFile The env file, such as `.env`, or a symlink to it (the lock
 *   is next to the file it points to).
 * @param command What takes it, such as `rotate`, for the holder record.
 * @returns The held lock.
 * @throws {RotationLockedError} When another run holds it.
 *
 * @example One run at a time per env file
 * ```ts
 * import {
 *   acquireEnvFileLock,
 *   RotationLockedError,
 * } from "@rotating/dual-secret-auth/rotation";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   await using _lock = await acquireEnvFileLock(`${dir}/.env`, "rotate");
 *   const second = await acquireEnvFileLock(`${dir}/.env`, "promote")
 *     .catch((e: unknown) => e);
 *   if (!(second instanceof RotationLockedError)) throw new Error("not refused");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function acquireEnvFileLock(
  envFile: string,
  command: string,
): Promise<EnvFileLock> {
  assertDeno("acquireEnvFileLock");
  // The lock belongs to the file really written: two links to one env file
  // (or the link and its target) must not take two different locks.
  const path = lockPathOf(await resolveWriteTarget(envFile));
  // The lock file is truncated and rewritten: never through a link (a link
  // planted there would have this run, often as root, overwrite its target).
  const existing = await Deno.lstat(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  });
  if (existing !== undefined && !existing.isFile) {
    throw new FileNotWritableError(
      envFile,
      `cannot be locked: its lock ${path} is ${
        existing.isSymlink ? "a symbolic link" : "not a regular file"
      }, which this command never writes through. Remove ${path} and run the command again.`,
    );
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new FileNotWritableError(
      envFile,
      `cannot be locked: its directory ${
        dirOf(path)
      } does not accept a new file (the lock ${path}: ${
        error instanceof Error ? `${error.name}: ${error.message}` : "error"
      }). Make the directory writable for this user (and not immutable), or run as the user who owns it.`,
      { cause: error },
    );
  }
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (error) {
    file.close();
    throw error;
  }
  if (!locked) {
    const holder = await readHolder(file);
    file.close();
    throw new RotationLockedError(path, holder);
  }
  const before = await readRecord(file);
  const previousHolder = holderOf(before);
  const token = tokenOf(before) + 1;
  const record: LockHolder = {
    pid: Deno.pid,
    ...(hostName() ? { host: hostName() } : {}),
    command,
    startedAt: new Date().toISOString(),
    token,
  };
  await writeRecord(file, record);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    try {
      // The token stays, without a holder: the next hold counts on from it.
      await writeRecord(file, { token });
      await file.unlock();
    } finally {
      file.close();
    }
  };
  return {
    path,
    token,
    ...(previousHolder ? { previousHolder } : {}),
    release,
    [Symbol.asyncDispose]: release,
  };
}

/**
 * Writes the record as the file's first line, then cuts what followed: a
 * crash in between leaves the new record first, which is all that is read.
 */
async function writeRecord(file: Deno.FsFile, record: object): Promise<void> {
  const bytes = new TextEncoder().encode(`${JSON.stringify(record)}\n`);
  await file.seek(0, Deno.SeekMode.Start);
  let written = 0;
  while (written < bytes.length) {
    written += await file.write(bytes.subarray(written));
  }
  await file.truncate(bytes.length);
}

async function readRecord(file: Deno.FsFile): Promise<unknown> {
  try {
    await file.seek(0, Deno.SeekMode.Start);
    const buffer = new Uint8Array(4096);
    const read = await file.read(buffer);
    if (!read) return undefined;
    const text = new TextDecoder().decode(buffer.subarray(0, read));
    return JSON.parse(text.split("\n", 1)[0]);
  } catch {
    return undefined;
  }
}

async function readHolder(file: Deno.FsFile): Promise<LockHolder | undefined> {
  return holderOf(await readRecord(file));
}

function holderOf(value: unknown): LockHolder | undefined {
  const record = value as Partial<LockHolder> | undefined;
  return typeof record?.pid === "number" && typeof record.command === "string"
    ? record as LockHolder
    : undefined;
}

function tokenOf(value: unknown): number {
  const token = (value as { token?: unknown } | undefined)?.token;
  // An unreadable or older lock file counts from 0.
  return typeof token === "number" && Number.isSafeInteger(token) && token > 0
    ? token
    : 0;
}

/**
 * This host's name, when the process may read it without a prompt.
 *
 * @returns The name, or `undefined`.
 */
export function hostName(): string | undefined {
  try {
    // Queried first: without sys permission, asking could prompt.
    const state = Deno.permissions.querySync({ name: "sys", kind: "hostname" })
      .state;
    return state === "granted" ? Deno.hostname() : undefined;
  } catch {
    return undefined;
  }
}
