/**
 * fast-check, for the property tests. Re-exported from here, not mapped to `npm:` in deno.json's
 * imports, so only the tests and benchmarks that import it install it (Deno
 * installs every `npm:` entry of the import map on any run).
 *
 * @module
 */
export * from "npm:fast-check@^4.10.2";
export { default } from "npm:fast-check@^4.10.2";
