/**
 * `deno task incident`: respond to a leaked secret. The command lives in
 * `_incident.ts`, shared with `deno task rotate --compromised`, which hands
 * over to it.
 *
 * @module
 */
import { runTask } from "./_cli.ts";
import { main } from "./_incident.ts";

export { main, OPTIONS } from "./_incident.ts";

if (import.meta.main) {
  Deno.exit(await runTask("incident", main, Deno.args));
}
