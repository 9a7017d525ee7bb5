/**
 * Pre-flight checks of the files a rotation will write, run before anything
 * changes (and in a dry run), because a secret regenerated but not stored is
 * lost: Genesys Cloud shows it only once.
 *
 * @module
 */
import { assertDeno } from "../runtime/deno.ts";
import { DualSecretAuthError } from "../errors.ts";
import { dirOf, resolveWriteTarget, uniqueTempPath } from "./env_file.ts";

/** The code of {@linkcode FileNotWritableError}. */
export const FILE_NOT_WRITABLE = "ROTATION_FILE_NOT_WRITABLE" as const;

/** A file the rotation must write cannot be written; nothing was changed. */
export class FileNotWritableError extends DualSecretAuthError {
  /** The file as named. */
  readonly path: string;

  /**
   * Creates the error.
   *
   * @param path The file as named.
   * @param problem What is wrong and how to fix it.
   * @param options The underlying error, as cause.
   */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    // The base class types `code` as the core codes only; this is a
    // distinct string of the same kind.
    super(
      FILE_NOT_WRITABLE,
      `${path} ${problem} Nothing was changed.`,
      options,
    );
    this.path = path;
  }
}

/** What {@linkcode checkWritable} found out about a file that can be written. */
export interface WritableFile {
  /** The file as named. */
  readonly path: string;
  /** Where writes land (a symlink's target). */
  readonly target: string;
  /** Whether the file exists already. */
  readonly exists: boolean;
  /** Things the operator should know, such as a file readable by every user. */
  readonly warnings: readonly string[];
}

/**
 * Checks that `path` can be replaced atomically, changing nothing the
 * operator owns: the target (through symlinks) is a regular file that is not
 * read-only and can be opened for writing, owned by the user running the
 * check (or that user is root, who can keep the owner), and its directory
 * accepts a new file (a probe file is created and removed at once).
 *
 * @param path The file, such as `.env`.
 * @returns Where writes land, and warnings.
 * @throws {FileNotWritableError} Naming the file and the fix.
 */
export async function checkWritable(path: string): Promise<WritableFile> {
  assertDeno("checkWritable");
  const target = await resolveWriteTarget(path);
  const isLink = await Deno.lstat(path).then((i) => i.isSymlink, () => false);
  const shown = isLink ? `${path} (a link to ${target})` : path;
  const warnings: string[] = [];
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(target);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // The probe shows who this process writes as, without sys permission.
  const probePath = uniqueTempPath(target);
  let probe: Deno.FileInfo;
  try {
    const file = await Deno.open(probePath, {
      write: true,
      createNew: true,
      mode: 0o600,
    });
    try {
      probe = await file.stat();
    } finally {
      file.close();
      await Deno.remove(probePath).catch(() => {});
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new FileNotWritableError(
      shown,
      `cannot be replaced: its directory ${
        dirOf(target)
      } does not accept a new file (${errorName(error)}). ` +
        `Make the directory writable for this user (and not immutable), or run as the user who owns it.`,
      { cause: error },
    );
  }
  if (info) {
    if (!info.isFile) {
      throw new FileNotWritableError(shown, "is not a regular file.");
    }
    const mode = info.mode ?? 0o600;
    if (Deno.build.os !== "windows" && (mode & 0o222) === 0) {
      throw new FileNotWritableError(
        shown,
        `is read-only (mode ${
          octal(mode)
        }). Make it writable by its owner (chmod u+w ${target}) if it should be rotated.`,
      );
    }
    if (
      info.uid != null && probe.uid != null && info.uid !== probe.uid &&
      probe.uid !== 0
    ) {
      throw new FileNotWritableError(
        shown,
        `is owned by user ${info.uid}, not by the user running this (${probe.uid}); ` +
          `a rewrite would change its owner. Run the command as user ${info.uid} (or as root, which keeps the owner).`,
      );
    }
    try {
      (await Deno.open(target, { write: true })).close();
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      throw new FileNotWritableError(
        shown,
        `cannot be written (${
          errorName(error)
        }); check its permissions and attributes (lsattr: immutable?).`,
        { cause: error },
      );
    }
    if (Deno.build.os !== "windows" && (mode & 0o004) !== 0) {
      warnings.push(
        `${shown} is readable by every user (mode ${
          octal(mode)
        }); it holds secrets: consider chmod o-r ${target}. Its mode is kept as it is.`,
      );
    }
  }
  return Object.freeze({
    path,
    target,
    exists: info !== undefined,
    warnings: Object.freeze(warnings),
  });
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}

function errorName(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : "error";
}
