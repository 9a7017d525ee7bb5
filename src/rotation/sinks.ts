/**
 * Where a rotated secret is published: an env file (rewritten atomically), a
 * one-time print for the operator, or a callback for in-process use.
 *
 * @module
 */
import { assertDeno } from "../runtime/deno.ts";
import { ConfigError } from "../errors.ts";
import { checkWritable } from "./preflight.ts";
import type { Secret } from "../secret.ts";
import {
  resolveWriteTarget,
  setEnvValue,
  writeFileAtomic,
} from "./env_file.ts";

/** A new secret to publish. */
export interface SecretUpdate {
  /** The credential's label, such as `green`. */
  readonly label: string;
  /** Its OAuth client id. */
  readonly clientId: string;
  /** The new secret. */
  readonly secret: Secret;
  /** The variable or entry name to store it under, when the caller decides it. */
  readonly key?: string;
  /**
   * Two-secret providers: the provider's id of the new secret, stored with
   * the label so that it can be revoked by id once nothing uses it.
   *
   * @default undefined (twin clients)
   */
  readonly secretId?: string;
}

/** Somewhere a new secret is stored so that services pick it up. */
export interface SecretSink {
  /** A short description for reports and errors, such as `env file .env`. */
  readonly name: string;
  /**
   * Stores the secret. Resolves only once it is durably stored.
   *
   * @param update The new secret and whose it is.
   */
  publish(update: SecretUpdate): Promise<void>;
  /**
   * Checks, changing nothing the operator owns, that `publish` will be able
   * to store a secret; run before anything is regenerated.
   *
   * @returns Warnings for the operator (such as a file readable by others).
   */
  check?(): Promise<readonly string[]>;
}

/** Options of {@linkcode createEnvFileSink}. */
export interface EnvFileSinkOptions {
  /** The variable for a label's secret, such as `GENESYS_CLIENT_SECRET_GREEN`. */
  readonly keyFor: (label: string) => string;
  /**
   * Two-secret providers: the variable that records the provider's id of a
   * label's secret (such as `AUTH_SECRET_ID_GREEN`), written in the same
   * atomic write as the secret, so a later rotation knows which secret the
   * label uses and revokes the right one.
   *
   * @default undefined (ids are not recorded)
   */
  readonly secretIdKeyFor?: (label: string) => string;
  /**
   * The temp file written before the rename; same directory as the file.
   *
   * @default a name unique to each write, next to the file
   */
  readonly tempPath?: string;
}

/**
 * A sink that sets one variable in an env file. The file is rewritten
 * atomically and durably (see {@linkcode writeFileAtomic}: a symlink is
 * followed, the mode, owner and group are kept); only that key's value
 * changes, every other line, comment and the order stay as they were; a
 * missing key is appended; a missing file is created with mode 0600.
 *
 * @param path The env file, such as `.env`.
 * @param options How a label maps to a variable name.
 * @returns The sink.
 *
 * @example
 * ```ts
 * import { createEnvFileSink } from "@rotating/dual-secret-auth/rotation";
 * import { Secret } from "@rotating/dual-secret-auth";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.env`, "# mine\nGENESYS_ACTIVE=blue\n");
 * const sink = createEnvFileSink(`${dir}/.env`, {
 *   keyFor: (label) => `GENESYS_CLIENT_SECRET_${label.toUpperCase()}`,
 * });
 * await sink.publish({ label: "green", clientId: "id", secret: new Secret("s3") });
 * const text = await Deno.readTextFile(`${dir}/.env`);
 * if (text !== "# mine\nGENESYS_ACTIVE=blue\nGENESYS_CLIENT_SECRET_GREEN=s3\n") throw new Error(text);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function createEnvFileSink(
  path: string,
  options: EnvFileSinkOptions,
): SecretSink {
  assertDeno("createEnvFileSink", "On Node and Bun, use createCallbackSink.");
  if (typeof path !== "string" || path === "") {
    throw new ConfigError("path", "must be a non-empty file path");
  }
  if (typeof options?.keyFor !== "function") {
    throw new ConfigError("keyFor", "must be a function from label to key");
  }
  return Object.freeze({
    name: `env file ${path}`,
    async check(): Promise<readonly string[]> {
      return (await checkWritable(path)).warnings;
    },
    async publish(update: SecretUpdate): Promise<void> {
      const key = update.key ?? options.keyFor(update.label);
      const entries: [string, string][] = [[key, update.secret.reveal()]];
      if (update.secretId !== undefined && options.secretIdKeyFor) {
        entries.push([options.secretIdKeyFor(update.label), update.secretId]);
      }
      await setEnvFileEntries(path, entries, options.tempPath);
    },
  });
}

/** The write in progress per real file, so writes in one process queue up. */
const writesInProgress = new Map<string, Promise<unknown>>();

/**
 * Sets one variable in an env file atomically, creating the file if needed.
 * Used for the secret by {@linkcode createEnvFileSink} and, by the rotate
 * and promote tasks, for `GENESYS_ACTIVE`. Calls for the same file in one
 * process run one after the other (read, change, write), so none loses
 * another's value; across processes, hold the env file's lock.
 *
 * @param path The env file (or a symlink to it).
 * @param key The variable name.
 * @param value The new value.
 * @param tempPath The temp file; default a name unique to this write.
 *
 * @example Change one variable; comments, `export` and other lines stay
 * ```ts
 * import { setEnvFileValue } from "@rotating/dual-secret-auth/rotation";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.env`, "# keep\nexport GENESYS_ACTIVE=blue # why\nB=2\n");
 * await setEnvFileValue(`${dir}/.env`, "GENESYS_ACTIVE", "green");
 * const text = await Deno.readTextFile(`${dir}/.env`);
 * await Deno.remove(dir, { recursive: true });
 * if (text !== "# keep\nexport GENESYS_ACTIVE=green # why\nB=2\n") throw new Error(text);
 * ```
 */
export function setEnvFileValue(
  path: string,
  key: string,
  value: string,
  tempPath?: string,
): Promise<void> {
  assertDeno("setEnvFileValue", "On Node and Bun, use createCallbackSink.");
  return setEnvFileEntries(path, [[key, value]], tempPath);
}

/**
 * {@linkcode setEnvFileValue} for several variables, in one atomic write
 * (a secret with its client id and secret id, say).
 *
 * @param path The env file (or a symlink to it).
 * @param entries The variables and their values, set in this order.
 * @param tempPath The temp file written before the rename.
 * @returns Resolves once the file is durably written.
 */
export async function setEnvFileEntries(
  path: string,
  entries: readonly (readonly [key: string, value: string])[],
  tempPath?: string,
): Promise<void> {
  const target = await resolveWriteTarget(path);
  const previous = writesInProgress.get(target) ?? Promise.resolve();
  const write = previous.catch(() => {}).then(async () => {
    let text = "";
    try {
      text = await Deno.readTextFile(target);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    for (const [key, value] of entries) text = setEnvValue(text, key, value);
    await writeFileAtomic(target, text, { tempPath });
  });
  writesInProgress.set(target, write);
  try {
    await write;
  } finally {
    if (writesInProgress.get(target) === write) {
      writesInProgress.delete(target);
    }
  }
}

/**
 * A sink that prints the secret once, for an operator who stores it
 * elsewhere. Use only when the operator explicitly asked for it.
 *
 * @param write Receives one line per published secret: `KEY=secret`.
 * @param options How the key of a label is named when the update has none.
 * @returns The sink.
 *
 * @example
 * ```ts
 * import { createPrintSink } from "@rotating/dual-secret-auth/rotation";
 * import { Secret } from "@rotating/dual-secret-auth";
 * const lines: string[] = [];
 * await createPrintSink((line) => void lines.push(line)).publish({
 *   label: "green", clientId: "id", secret: new Secret("s3"), key: "SECRET_GREEN",
 * });
 * if (lines[0] !== "SECRET_GREEN=s3") throw new Error(lines[0]);
 * ```
 */
export function createPrintSink(
  write: (line: string) => void | Promise<void>,
  options?: {
    /**
     * Names the key of a label when the update has none.
     *
     * @default the name `label (clientId)`
     */
    readonly keyFor?: (label: string) => string;
  },
): SecretSink {
  return Object.freeze({
    name: "printed output",
    async publish(update: SecretUpdate): Promise<void> {
      const name = update.key ?? options?.keyFor?.(update.label) ??
        `${update.label} (${update.clientId})`;
      await write(`${name}=${update.secret.reveal()}`);
    },
  });
}

/** What a callback sink calls with each update. */
export type SecretUpdateHandler = (
  update: SecretUpdate,
) => void | Promise<void>;

/**
 * A sink that hands the update to a function, for in-process use (for
 * example to call `auth.setCredentials` with the new secret). Takes the
 * function and an optional name, or the name first.
 *
 * @param nameOrPublish A description for reports (default `callback`), or the function.
 * @param publishOrName The function, or the description.
 * @returns The sink.
 *
 * @example
 * ```ts
 * import { createCallbackSink } from "@rotating/dual-secret-auth/rotation";
 * import { Secret } from "@rotating/dual-secret-auth";
 * const labels: string[] = [];
 * const sink = createCallbackSink("application", ({ label }) => {
 *   labels.push(label);
 * });
 * await sink.publish({ label: "green", clientId: "id", secret: new Secret("s") });
 * if (sink.name !== "application" || labels[0] !== "green") throw new Error();
 * ```
 */
export function createCallbackSink(
  nameOrPublish: string | SecretUpdateHandler,
  publishOrName?: SecretUpdateHandler | string,
): SecretSink {
  const publish = typeof nameOrPublish === "function"
    ? nameOrPublish
    : publishOrName;
  const name = typeof nameOrPublish === "string"
    ? nameOrPublish
    : typeof publishOrName === "string"
    ? publishOrName
    : "callback";
  if (typeof publish !== "function") {
    throw new ConfigError("publish", "give a function that stores the update");
  }
  return Object.freeze({
    name,
    async publish(update: SecretUpdate): Promise<void> {
      await publish(update);
    },
  });
}
