/**
 * A credential source reading an env file, the file the rotate and promote
 * tasks rewrite (atomically, so a reader sees the old file or the new one).
 *
 * @module
 */
import { assertDeno } from "../runtime/deno.ts";
import { dirOf, readEnvValues } from "../rotation/env_file.ts";
import {
  type CredentialSnapshot,
  type CredentialSource,
  snapshotFromVariables,
  sourcePollInterval,
  type SourceVariables,
} from "./source.ts";
import { presenceDirectoryOf } from "./presence.ts";
import { watchDirectories } from "./watch.ts";

/** Options of {@linkcode envFileSource}. */
export type EnvFileSourceOptions = SourceVariables;

/**
 * A source reading `GENESYS_CLIENT_ID_BLUE`, `GENESYS_CLIENT_SECRET_BLUE`,
 * green likewise, and `GENESYS_ACTIVE` from an env file, parsed the way
 * Deno's `--env-file` reads it. Pass it as `source` to
 * `createDualSecretAuth` and the service follows the file: a new secret is
 * loaded with `setCredentials`, a new active label is switched to only once
 * the target gets a token. Its followers announce themselves in
 * `<path>.presence/` when asked (`followSource`'s `presence`).
 *
 * @param path The env file (a symlink is followed).
 * @param options Other variable names or poll interval.
 * @returns The source.
 *
 * @example
 * ```ts
 * import { envFileSource } from "@rotating/dual-secret-auth/sources";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.env`, [
 *   "GENESYS_CLIENT_ID_BLUE=b", "GENESYS_CLIENT_SECRET_BLUE=bs",
 *   "GENESYS_CLIENT_ID_GREEN=g", "GENESYS_CLIENT_SECRET_GREEN=gs",
 *   "GENESYS_ACTIVE=green", "",
 * ].join("\n"));
 * const snapshot = envFileSource(`${dir}/.env`).loadSync();
 * if (snapshot.active !== "green" || snapshot.credentials.length !== 2) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function envFileSource(
  path: string,
  options?: EnvFileSourceOptions,
): CredentialSource {
  assertDeno("envFileSource");
  const interval = sourcePollInterval(options?.pollIntervalMs);
  const name = `env file ${path}`;
  const parse = (text: string): CredentialSnapshot =>
    snapshotFromVariables(name, readEnvValues(text), options);
  const watchPaths = [dirOf(path)];
  try {
    const target = Deno.realPathSync(path);
    if (dirOf(target) !== dirOf(path)) watchPaths.push(dirOf(target));
  } catch {
    // Missing now: loadSync reports it.
  }
  return Object.freeze({
    name,
    loadSync: () => parse(Deno.readTextFileSync(path)),
    read: async () => parse(await Deno.readTextFile(path)),
    watch: (onChange: () => void) => watchDirectories(watchPaths, onChange),
    pollIntervalMs: interval,
    presenceDirectory: presenceDirectoryOf(path),
  });
}
