/**
 * The package's name and version, as OpenTelemetry's instrumentation scope.
 * A test keeps them equal to deno.json's.
 *
 * @module
 */

/** The instrumentation scope name: the package name. */
export const INSTRUMENTATION_NAME = "@rotating/dual-secret-auth";
/** The instrumentation scope version: the package version. */
export const INSTRUMENTATION_VERSION = "0.1.0";
