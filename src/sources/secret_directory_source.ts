/**
 * A credential source reading a directory of one file per variable, as
 * Kubernetes mounts a Secret (updated by an atomic swap of the `..data`
 * symlink, so a reader sees the old set of files or the new one).
 *
 * @module
 */
import { assertDeno } from "../runtime/deno.ts";
import {
  type CredentialSnapshot,
  type CredentialSource,
  snapshotFromVariables,
  sourcePollInterval,
  sourceVariableNames,
  type SourceVariables,
} from "./source.ts";
import { watchDirectories } from "./watch.ts";

/** Options of {@linkcode secretDirectorySource}. */
export type SecretDirectorySourceOptions = SourceVariables;

/**
 * A source reading one file per variable from a directory: the file
 * `GENESYS_CLIENT_SECRET_GREEN` holds green's secret, and so on (the key
 * names of the Kubernetes Secret). One trailing line break is dropped, as
 * `kubectl create secret --from-file` keeps whatever the file had.
 *
 * @param dir The mounted directory.
 * @param options Other variable names or poll interval.
 * @returns The source.
 *
 * @example
 * ```ts
 * import { secretDirectorySource } from "@rotating/dual-secret-auth/sources";
 * const dir = await Deno.makeTempDir();
 * const files = {
 *   GENESYS_CLIENT_ID_BLUE: "b", GENESYS_CLIENT_SECRET_BLUE: "bs\n",
 *   GENESYS_CLIENT_ID_GREEN: "g", GENESYS_CLIENT_SECRET_GREEN: "gs",
 *   GENESYS_ACTIVE: "blue",
 * };
 * for (const [name, value] of Object.entries(files)) {
 *   await Deno.writeTextFile(`${dir}/${name}`, value);
 * }
 * const snapshot = secretDirectorySource(dir).loadSync();
 * if (snapshot.credentials[0].clientSecret !== "bs") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function secretDirectorySource(
  dir: string,
  options?: SecretDirectorySourceOptions,
): CredentialSource {
  assertDeno("secretDirectorySource");
  const interval = sourcePollInterval(options?.pollIntervalMs);
  const name = `secret directory ${dir}`;
  const variables = sourceVariableNames(options);
  const strip = (text: string) => text.replace(/\r?\n$/, "");
  const missing = (error: unknown) => {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  };
  const snapshot = (values: (string | undefined)[]): CredentialSnapshot =>
    snapshotFromVariables(
      name,
      Object.fromEntries(
        variables.map((variable, i) => [
          variable,
          values[i] === undefined ? undefined : strip(values[i]!),
        ]),
      ),
      options,
    );
  // Kubernetes swaps `..data` atomically: reading every file through one
  // resolved `..data` gives one consistent set, never half old, half new.
  const baseSync = () => {
    try {
      return Deno.realPathSync(`${dir}/..data`);
    } catch {
      return dir;
    }
  };
  const base = () => Deno.realPath(`${dir}/..data`).catch(() => dir);
  return Object.freeze({
    name,
    loadSync: () => {
      const root = baseSync();
      return snapshot(variables.map((variable) => {
        try {
          return Deno.readTextFileSync(`${root}/${variable}`);
        } catch (error) {
          return missing(error);
        }
      }));
    },
    read: async () => {
      const root = await base();
      return snapshot(
        await Promise.all(
          variables.map((variable) =>
            Deno.readTextFile(`${root}/${variable}`).catch(missing)
          ),
        ),
      );
    },
    watch: (onChange: () => void) => watchDirectories([dir], onChange),
    pollIntervalMs: interval,
  });
}
