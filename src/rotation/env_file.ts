/**
 * Reading and rewriting `.env` files the way Deno's `--env-file` reads them,
 * and writing files atomically (temp file in the same directory, mode 0600,
 * rename), so a reader never sees half a file.
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
 *
 * @param text The file's text.
 * @returns The assignments (a key may appear more than once; Deno uses the first).
 *
 * @example
 * ```ts
 * import { parseEnvText } from "./env_file.ts";
 * const [a] = parseEnvText("# c\nexport A='x y' # note\n");
 * if (a.key !== "A" || a.value !== "x y") throw new Error();
 * ```
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
      const close = text.indexOf(quote, valueStart + 1);
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
 *
 * @param text The current text ("" for a new file).
 * @param key The variable name.
 * @param value The new value.
 * @returns The new text.
 *
 * @example
 * ```ts
 * import { setEnvValue } from "./env_file.ts";
 * const text = setEnvValue("# keep\nA=old # why\nB=2\n", "A", "new");
 * if (text !== "# keep\nA=new # why\nB=2\n") throw new Error(text);
 * ```
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

/**
 * Replaces a file atomically: writes `tempPath` (created fresh with mode
 * 0600, never through an existing file or link), flushes it, then renames it
 * over `path`. Readers see the old file or the new one, never a mix.
 *
 * @param path The file to replace.
 * @param text The new contents.
 * @param tempPath The temp file; must be in the same directory. Default `path + ".tmp"`.
 */
export async function writeFileAtomic(
  path: string,
  text: string,
  tempPath: string = `${path}.tmp`,
): Promise<void> {
  const file = await createFresh(tempPath);
  try {
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) {
      written += await file.write(bytes.subarray(written));
    }
    await file.sync();
  } catch (error) {
    file.close();
    await Deno.remove(tempPath).catch(() => {});
    throw error;
  }
  file.close();
  try {
    // Mode on create is reduced by the umask, never widened; this pins 0600
    // even where the platform ignored the mode.
    if (Deno.build.os !== "windows") await Deno.chmod(tempPath, 0o600);
    await Deno.rename(tempPath, path);
  } catch (error) {
    await Deno.remove(tempPath).catch(() => {});
    throw error;
  }
}

/** Creates the temp file exclusively; a stale one (a crash) is removed first. */
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

function indexOrEnd(text: string, search: string, from: number): number {
  const index = text.indexOf(search, from);
  return index < 0 ? text.length : index;
}
