/**
 * Staged, verified rotation of Genesys Cloud OAuth client secrets: the admin
 * client for the Platform API's OAuth client endpoints, the rotation state
 * machine (plan → regenerate → publish → test → promote → done), promotion on
 * its own, where a new secret goes (secret sinks), the resume journal, the
 * per-env-file lock, pre-flight checks, and the `GENESYS_*` environment
 * configuration the tasks read.
 *
 * Genesys Cloud has one secret per OAuth client, so rotation regenerates only
 * the *standby* of two clients with the same roles, proves the new secret
 * with a real token request, publishes it, and only then switches traffic.
 *
 * @example Rotate green while blue serves, against the emulator
 * ```ts
 * import { createDualSecretAuth } from "./mod.ts";
 * import { startGenesysEmulator } from "./testing.ts";
 * import {
 *   createCallbackSink,
 *   createGenesysAdminClient,
 *   runStagedRotation,
 * } from "./rotation.ts";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret" },
 *     { clientId: "green-id", secret: "green-secret" },
 *     { clientId: "admin-id", secret: "admin-secret", permissions: ["oauth:client:edit", "oauth:client:view"] },
 *   ],
 * });
 * await using admin = createDualSecretAuth({
 *   credentials: [{ label: "admin", clientId: "admin-id", clientSecret: "admin-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 * });
 * let published = "";
 * const report = await runStagedRotation({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   active: "blue",
 *   tokenUrl: emulator.tokenUrl,
 *   admin: createGenesysAdminClient({
 *     apiUrl: emulator.apiUrl,
 *     getAccessToken: () => admin.getAccessToken(),
 *   }),
 *   sink: createCallbackSink((update) => void (published = update.label)),
 * });
 * if (published !== "green" || report.active !== "blue") throw new Error();
 * ```
 *
 * @module
 */
export * from "./src/rotation/staged_rotation.ts";
export * from "./src/rotation/promotion.ts";
export * from "./src/rotation/lock.ts";
export * from "./src/rotation/preflight.ts";
export * from "./src/rotation/sinks.ts";
export * from "./src/rotation/journal.ts";
export * from "./src/rotation/env_config.ts";
export * from "./src/genesys/admin_client.ts";
export * from "./src/genesys/errors.ts";
export { DENO_REQUIRED, DenoRequiredError } from "./src/runtime/deno.ts";
export * from "./src/rotation/twin_setup.ts";
export * from "./src/rotation/incident.ts";
