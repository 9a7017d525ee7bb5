/**
 * Credential sources a running service follows, so it picks up a rotation
 * done by `deno task rotate` / `deno task promote` (one host: the env file)
 * or by Kubernetes (a mounted Secret) without a restart. Create the instance
 * from the source (`loadSource`) and follow it (`followSource`): new secrets are loaded with
 * `setCredentials`, a new active label is switched to only after the target
 * gets a token (else the current one stays and a `warning` event says why),
 * and a malformed or half-written source keeps the last good configuration
 * (a `warning` event again). Changes arrive through `Deno.watchFs` and a
 * periodic re-read (every second by default), so within 2 seconds. With
 * `followSource(auth, source, { presence: true })` each process also
 * announces, in `<env file>.presence/`, the label it serves, salted
 * fingerprints of the secrets it holds and until when its tokens of each
 * live: the evidence the single-host revoke gate of a two-secret rotation
 * reads (`envFileRevokeGate` in `./rotation`; `readPresence` reads it too).
 *
 * @example Follow the env file the tasks rewrite
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import {
 *   envFileSource,
 *   followSource,
 *   loadSource,
 * } from "@rotating/dual-secret-auth/sources";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret" },
 *     { clientId: "green-id", secret: "green-secret" },
 *   ],
 * });
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.env`, [
 *   "GENESYS_CLIENT_ID_BLUE=blue-id", "GENESYS_CLIENT_SECRET_BLUE=blue-secret",
 *   "GENESYS_CLIENT_ID_GREEN=green-id", "GENESYS_CLIENT_SECRET_GREEN=green-secret",
 *   "GENESYS_ACTIVE=blue", "",
 * ].join("\n"));
 * const source = envFileSource(`${dir}/.env`);
 * {
 *   await using auth = createDualSecretAuth({
 *     ...loadSource(source),
 *     tokenUrl: emulator.tokenUrl,
 *   });
 *   await using _follower = followSource(auth, source);
 *   if (auth.status().active !== "blue") throw new Error();
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export {
  type CredentialSnapshot,
  type CredentialSource,
  DEFAULT_SOURCE_POLL_INTERVAL_MS,
  loadSource,
  SOURCE_INVALID,
  SourceInvalidError,
  type SourceVariables,
  type SourceWatch,
} from "./src/sources/source.ts";
export {
  envFileSource,
  type EnvFileSourceOptions,
} from "./src/sources/env_file_source.ts";
export {
  secretDirectorySource,
  type SecretDirectorySourceOptions,
} from "./src/sources/secret_directory_source.ts";
export {
  DEFAULT_PRESENCE_INTERVAL_MS,
  isPresenceRecord,
  PRESENCE_KIND,
  PRESENCE_STALE_INTERVALS,
  type PresenceCredential,
  presenceDirectoryOf,
  type PresenceEntry,
  type PresenceOptions,
  type PresenceRecord,
  type PresenceState,
  readPresence,
} from "./src/sources/presence.ts";
export {
  type FollowedAuth,
  followSource,
  type FollowSourceOptions,
  type SourceFollower,
} from "./src/sources/follow.ts";

// Types named by the signatures above, from the modules that own them.
export type { CredentialInput } from "./src/config.ts";
export type { DualSecretAuthError } from "./src/errors.ts";
export type { WarningEvent } from "./src/events.ts";
export type { Secret } from "./src/secret.ts";
export type { TokenAuthMethod } from "./src/token_endpoint.ts";
