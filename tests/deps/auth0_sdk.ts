/**
 * Auth0's Node SDK, to check that the Auth0 emulator answers what a real
 * tenant answers. Re-exported from here, not mapped in deno.json's imports,
 * so only the test that imports it installs it.
 *
 * @module
 */
export * from "npm:auth0@7.1.0";
