/**
 * Run under a permission set: prints, as JSON, whether each host given as an
 * argument may be reached.
 *
 * @module
 */
const states: Record<string, string> = {};
for (const host of Deno.args) {
  states[host] = (await Deno.permissions.query({ name: "net", host })).state;
}
console.log(JSON.stringify(states));
