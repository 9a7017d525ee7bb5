/**
 * oidc-provider, the real OAuth server of the interoperability tests. Re-exported from here, not mapped to `npm:` in deno.json's
 * imports, so only the tests and benchmarks that import it install it (Deno
 * installs every `npm:` entry of the import map on any run).
 *
 * @module
 */
export * from "npm:oidc-provider@^9.13.3";
export { default } from "npm:oidc-provider@^9.13.3";
