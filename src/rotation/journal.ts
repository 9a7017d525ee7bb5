/**
 * The rotation journal: how far a staged rotation got, persisted so an
 * interrupted run can be resumed. It holds labels, client ids and times,
 * never a secret.
 *
 * @module
 */
import { assertDeno } from "../runtime/deno.ts";
import { ConfigError } from "../errors.ts";
import { writeFileAtomic } from "./env_file.ts";
import { checkWritable } from "./preflight.ts";

/** The phases of a staged rotation, in order. */
export type RotationPhase =
  | "plan"
  | "regenerate"
  | "test"
  | "publish"
  | "promote"
  | "retire"
  | "done";

/** What the journal records about one rotation. No secrets. */
export interface RotationJournalRecord {
  /** Format version. */
  readonly version: 1;
  /** A random id of this rotation. */
  readonly rotationId: string;
  /** The label that served traffic when the rotation started. */
  readonly active: string;
  /** The label whose secret is rotated. */
  readonly standby: string;
  /** The standby's OAuth client id. */
  readonly clientId: string;
  /** The sink the secret goes to. */
  readonly sink: string;
  /** The last phase that completed. */
  readonly phase: RotationPhase;
  /** When the rotation started (ms since the epoch). */
  readonly startedAt: number;
  /** When the standby's secret was regenerated. */
  readonly regeneratedAt?: number;
  /** When the new secret passed a token request. */
  readonly testedAt?: number;
  /** When the new secret reached the sink. */
  readonly publishedAt?: number;
  /** When traffic was switched to the standby. */
  readonly promotedAt?: number;
  /** When the rotation finished. */
  readonly completedAt?: number;
  /** When the regenerate call was sent (it may have taken effect even if the run died before it returned). */
  readonly regenerateRequestedAt?: number;
  /**
   * A salted SHA-256 fingerprint of the standby's secret before the rotation
   * (see {@linkcode fingerprintSecret}), so a re-run can tell whether the sink
   * already holds a new secret. Never the secret itself.
   */
  readonly standbyFingerprintBefore?: string;
  /** The random salt of `standbyFingerprintBefore`. */
  readonly fingerprintSalt?: string;
  /** Whether the run that wrote this was asked to promote. */
  readonly promoteRequested?: boolean;
  /**
   * Two-secret providers: the provider's id of the secret issued for the
   * standby (journaled right after the issue call, before it is stored).
   */
  readonly secretId?: string;
  /** Two-secret providers: the id of the secret the active label used when the rotation began. */
  readonly oldSecretId?: string;
  /** Two-secret providers: when the old label's secret was revoked. */
  readonly retiredAt?: number;
}

/**
 * A one-way fingerprint of a secret: hex SHA-256 of `salt` and the secret.
 * With a random salt and a high-entropy secret (Genesys secrets are 43
 * random characters) it tells two secrets apart without revealing either.
 *
 * @param secret The secret's text.
 * @param salt A random salt, kept next to the fingerprint.
 * @returns The fingerprint, 64 hex digits.
 */
export async function fingerprintSecret(
  secret: string,
  salt: string,
): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${salt}\u0000${secret}`),
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** Where a flow's journal is kept: one record, replaced on every write. */
export interface StepJournal<R> {
  /** The last record written, if any. */
  read(): Promise<R | undefined>;
  /**
   * Replaces the record.
   *
   * @param record The new record.
   */
  write(record: R): Promise<void>;
  /** Checks, changing nothing, that `write` will work; run before anything changes. */
  check?(): Promise<void>;
}

/**
 * Where the staged rotation's journal is kept: a {@linkcode StepJournal}
 * of its records (spelled out, so its users need not know the generic one).
 */
export interface RotationJournal {
  /** The last record written, if any. */
  read(): Promise<RotationJournalRecord | undefined>;
  /**
   * Replaces the record.
   *
   * @param record The new record.
   */
  write(record: RotationJournalRecord): Promise<void>;
  /** Checks, changing nothing, that `write` will work; run before anything changes. */
  check?(): Promise<void>;
}

/**
 * A journal in memory, for tests and in-process flows: the staged
 * rotation's by default, any flow's records with a type argument.
 *
 * @param initial A record to start with.
 * @returns The journal.
 */
export function createMemoryJournal<R = RotationJournalRecord>(
  initial?: R,
): StepJournal<R> & { readonly record: R | undefined } {
  let record = initial;
  return {
    get record() {
      return record;
    },
    read: () => Promise.resolve(record),
    write: (next) => {
      record = Object.freeze({ ...next });
      return Promise.resolve();
    },
  };
}

/**
 * A journal in a JSON file, replaced atomically on every write.
 *
 * @param path The file, such as `.env.rotation.json`.
 * @param tempPath Its temp file; default a name unique to each write.
 * @returns The journal.
 *
 * @example A journal next to the env file; pass it as `journal` to `runStagedRotation`
 * ```ts
 * import { createFileJournal } from "@rotating/dual-secret-auth/rotation";
 *
 * const dir = await Deno.makeTempDir();
 * const journal = createFileJournal(`${dir}/.env.rotation.json`);
 * await journal.check?.(); // writable? (changes nothing)
 * if ((await journal.read()) !== undefined) throw new Error("not empty");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function createFileJournal(
  path: string,
  tempPath?: string,
): RotationJournal {
  assertDeno("createFileJournal", "On Node and Bun, use createCallbackSink.");
  return createJsonFileJournal(path, parseRecord, tempPath);
}

/**
 * A journal of any flow's records in a JSON file, replaced atomically on
 * every write: the one file journal (the rotation's and the incident's).
 *
 * @param path The file.
 * @param parse Reads a record from the file's text, or throws naming the file.
 * @param tempPath Its temp file; default a name unique to each write.
 * @returns The journal.
 */
export function createJsonFileJournal<R>(
  path: string,
  parse: (text: string, path: string) => R,
  tempPath?: string,
): StepJournal<R> {
  return Object.freeze({
    async check(): Promise<void> {
      await checkWritable(path);
    },
    async read(): Promise<R | undefined> {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw error;
      }
      return parse(text, path);
    },
    async write(record: R): Promise<void> {
      await writeFileAtomic(
        path,
        `${JSON.stringify(record, null, 2)}\n`,
        { tempPath },
      );
    },
  });
}

function parseRecord(text: string, path: string): RotationJournalRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const record = value as Partial<RotationJournalRecord> | undefined;
  const valid = typeof record === "object" && record !== null &&
    record.version === 1 && typeof record.standby === "string" &&
    typeof record.clientId === "string" && typeof record.active === "string" &&
    typeof record.startedAt === "number";
  if (!valid) {
    throw new ConfigError(
      "journal",
      `${path} is not a rotation journal this version can read; check it, then delete it to start afresh`,
    );
  }
  return record as RotationJournalRecord;
}
