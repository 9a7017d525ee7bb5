/**
 * Reading and rewriting `.env` files the way Deno's `--env-file` reads them,
 * and writing files atomically and durably (a unique temp file next to the
 * real target, its mode and owner kept, fsync, rename, fsync of the
 * directory), so a reader never sees half a file.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";

/** One `KEY=value` assignment found in an env file. */
export interface EnvAssignment {
  /** The variable name. */
  readonly key: string;
  /** The value as Deno's loader would read it (no `$VAR` expansion). */
  readonly value: string;
  /** Index of the first character of the value text (quotes included). */
  readonly valueStart: number;
  /** Index just past the value text (quotes included). */
  readonly valueEnd: number;
}

const ASSIGNMENT =
  /^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*/;
/** Characters Deno's loader reads literally in an unquoted value. */
const UNQUOTED_SAFE = /^[A-Za-z0-9_\-.~+/=:@%,]*$/;

/**
 * Finds every assignment in an env file, in order. Comments and blank lines
 * are skipped; single-quoted values are literal, double-quoted ones may span
 * lines and turn `\n` into a newline; an unquoted value ends at `#`.
 * `envFileSource` and `setEnvFileValue` read files with it;
 * `tests/rotation/sinks_test.ts` tests it.
 *
 * @param text The file's text.
 * @returns The assignments (a key may appear more than once; Deno uses the first).
 */
export function parseEnvText(text: string): EnvAssignment[] {
  const found: EnvAssignment[] = [];
  let offset = 0;
  while (offset < text.length) {
    const lineEnd = indexOrEnd(text, "\n", offset);
    const line = text.slice(offset, lineEnd);
    const match = line.match(ASSIGNMENT);
    if (!match) {
      offset = lineEnd + 1;
      continue;
    }
    const valueStart = offset + match[0].length;
    const quote = text[valueStart];
    if (quote === "'" || quote === '"') {
      const close = quote === '"'
        ? closingDoubleQuote(text, valueStart + 1)
        : text.indexOf(quote, valueStart + 1);
      if (close >= 0) {
        const raw = text.slice(valueStart + 1, close);
        found.push({
          key: match[1],
          value: quote === '"' ? raw.replaceAll("\\n", "\n") : raw,
          valueStart,
          valueEnd: close + 1,
        });
        offset = indexOrEnd(text, "\n", close) + 1;
        continue;
      }
    }
    const rest = text.slice(valueStart, lineEnd).replace(/\r$/, "");
    const hash = rest.indexOf("#");
    const raw = hash >= 0 ? rest.slice(0, hash) : rest;
    const value = raw.trimEnd();
    found.push({
      key: match[1],
      value,
      valueStart,
      valueEnd: valueStart + value.length,
    });
    offset = lineEnd + 1;
  }
  return found;
}

/**
 * Reads the values of an env file: the first assignment of each key wins, as
 * in Deno's `--env-file`.
 *
 * @param text The file's text.
 * @returns The values by key.
 */
export function readEnvValues(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const { key, value } of parseEnvText(text)) {
    if (!Object.hasOwn(values, key)) values[key] = value;
  }
  return values;
}

/**
 * Writes a value so that Deno's loader reads it back unchanged: bare when
 * only safe characters, else in single quotes (read literally, no `$`
 * expansion).
 *
 * @param value The value.
 * @returns The value text for the right-hand side of `KEY=`.
 * @throws {ConfigError} When the value holds a single quote or a line break
 *   together, which no env-file quoting keeps literal.
 */
export function formatEnvValue(value: string): string {
  if (UNQUOTED_SAFE.test(value) && value !== "") return value;
  if (!value.includes("'") && !/[\r\n]/.test(value)) return `'${value}'`;
  throw new ConfigError(
    "value",
    "holds a single quote or a line break, which an env file cannot keep literally",
  );
}

/**
 * Sets one key in an env file's text. The first assignment of the key gets
 * the new value (its `export`, spacing and trailing comment stay); every other
 * line is untouched. A missing key is appended on a line of its own.
 * `setEnvFileValue` (`@rotating/dual-secret-auth/rotation`) writes files with
 * it; its example shows the rule, `tests/rotation/sinks_test.ts` tests this.
 *
 * @param text The current text ("" for a new file).
 * @param key The variable name.
 * @param value The new value.
 * @returns The new text.
 */
export function setEnvValue(text: string, key: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) {
    throw new ConfigError("key", `"${key}" is not a valid variable name`);
  }
  const formatted = formatEnvValue(value);
  const existing = parseEnvText(text).find((a) => a.key === key);
  if (existing) {
    return text.slice(0, existing.valueStart) + formatted +
      text.slice(existing.valueEnd);
  }
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const separator = text === "" || text.endsWith("\n") ? "" : eol;
  return `${text}${separator}${key}=${formatted}${eol}`;
}

/** How {@linkcode writeFileAtomic} treats the file it replaces. */
export interface AtomicWriteOptions {
  /**
   * The temp file; must be in the same directory as the file written.
   *
   * @default a name unique to this call, next to the file written
   */
  readonly tempPath?: string;
  /**
   * The mode of a file that does not exist yet. An existing file keeps its
   * own mode, owner and group.
   *
   * @default 0o600
   */
  readonly newFileMode?: number;
}

/**
 * Where a write to `path` really lands: the target of a symlink (followed
 * through every link), else `path` itself. A missing file resolves to itself.
 *
 * @param path The file as the operator named it.
 * @returns The path of the file to rewrite.
 */
export async function resolveWriteTarget(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // A dangling link: write where it points, so the link keeps working.
  try {
    const link = await Deno.readLink(path);
    return link.startsWith("/") ? link : `${dirOf(path)}/${link}`;
  } catch {
    return path;
  }
}

/**
 * A temp file name next to `target`, unique to this call (process id and a
 * random part), so two runs never write through each other's temp file.
 *
 * @param target The file that will be replaced.
 * @returns The temp file's path.
 */
export function uniqueTempPath(target: string): string {
  const random = crypto.randomUUID().slice(0, 8);
  return `${dirOf(target)}/.${baseOf(target)}.${Deno.pid}-${random}.tmp`;
}

/**
 * Replaces a file atomically and durably. Symlinks are followed: the file
 * they point to is rewritten in its own directory and the link stays. The
 * new contents go to a fresh temp file next to the target (never through an
 * existing file or link) that gets the target's mode, owner and group; it is
 * flushed (`fsync`), renamed over the target, and the directory is flushed
 * too, so after a crash the file holds the old text or the new, never a mix
 * and never nothing. A file that is a mount point of its own (bind-mounted
 * alone, so it cannot be renamed over) is rewritten in place instead.
 *
 * @param path The file to replace (or a symlink to it).
 * @param text The new contents.
 * @param options The temp file, or options; see {@linkcode AtomicWriteOptions}.
 */
export async function writeFileAtomic(
  path: string,
  text: string,
  options: string | AtomicWriteOptions = {},
): Promise<void> {
  const settings = typeof options === "string"
    ? { tempPath: options }
    : options;
  const target = await resolveWriteTarget(path);
  const tempPath = settings.tempPath ?? uniqueTempPath(target);
  let existing: Deno.FileInfo | undefined;
  try {
    existing = await Deno.stat(target);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const mode = existing?.mode != null
    ? existing.mode & 0o7777
    : settings.newFileMode ?? 0o600;
  const file = await createFresh(tempPath);
  try {
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) {
      written += await file.write(bytes.subarray(written));
    }
    if (Deno.build.os !== "windows") {
      // Created 0600 (nobody else can open it meanwhile), then given the
      // target's own mode and owner: never widened, never changed.
      await Deno.chmod(tempPath, mode);
      const mine = await file.stat();
      if (
        existing?.uid != null && existing.gid != null &&
        (existing.uid !== mine.uid || existing.gid !== mine.gid)
      ) {
        await Deno.chown(tempPath, existing.uid, existing.gid);
      }
    }
    await file.sync();
  } catch (error) {
    file.close();
    await Deno.remove(tempPath).catch(() => {});
    throw error;
  }
  file.close();
  try {
    await Deno.rename(tempPath, target);
  } catch (error) {
    await Deno.remove(tempPath).catch(() => {});
    if (!isMountPoint(error)) throw error;
    // A file bind-mounted on its own (Docker's `-v ./.env:/app/.env`, a
    // Kubernetes subPath) cannot be replaced, only rewritten: in place, in
    // one write, flushed. Readers may see it half-written for a moment (the
    // sources keep their last good configuration then); failing here would
    // lose a secret that is shown only once.
    await rewriteInPlace(target, text);
    return;
  }
  await syncDirectory(dirOf(target));
}

/** Whether a rename failed because the target is a mount point (EBUSY). */
function isMountPoint(error: unknown): boolean {
  return error instanceof Deno.errors.Busy ||
    (error as { code?: unknown })?.code === "EBUSY";
}

async function rewriteInPlace(target: string, text: string): Promise<void> {
  const file = await Deno.open(target, { write: true, truncate: true });
  try {
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) {
      written += await file.write(bytes.subarray(written));
    }
    await file.sync();
  } finally {
    file.close();
  }
}

/** Flushes a directory's entries (the rename) to disk, where the platform can. */
async function syncDirectory(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (error) {
    // Some file systems refuse fsync on a directory; the rename stands.
    if (error instanceof Deno.errors.NotCapable) throw error;
  } finally {
    handle?.close();
  }
}

/** Creates the temp file exclusively; a leftover one with the same name (a crash) is removed first. */
async function createFresh(tempPath: string): Promise<Deno.FsFile> {
  const options = { write: true, createNew: true, mode: 0o600 } as const;
  try {
    return await Deno.open(tempPath, options);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    await Deno.remove(tempPath);
    return await Deno.open(tempPath, options);
  }
}

/**
 * The directory part of a path (`.` for a bare name).
 *
 * @param path A file path.
 * @returns Its directory.
 */
export function dirOf(path: string): string {
  const slash = lastSeparator(path);
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

function baseOf(path: string): string {
  return path.slice(lastSeparator(path) + 1);
}

function lastSeparator(path: string): number {
  return Deno.build.os === "windows"
    ? Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"))
    : path.lastIndexOf("/");
}

/**
 * The closing `"` of a double-quoted value, as Deno's loader finds it: a
 * backslash escapes the character after it (`\"` does not close; both stay
 * in the value, as Deno keeps them).
 */
function closingDoubleQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function indexOrEnd(text: string, search: string, from: number): number {
  const index = text.indexOf(search, from);
  return index < 0 ? text.length : index;
}
