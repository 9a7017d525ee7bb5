/**
 * Counts the exported symbols of every entry point in deno.json, as
 * `deno doc --json` sees them (a name exported as a type and a value, such
 * as `ErrorCode`, counts once): the figure the public-surface issue tracks.
 * Types an entry re-exports only because its signatures name them (after
 * the comment `// Types named by the signatures above`, so that
 * `deno doc --lint` passes on the entry alone) are counted apart.
 *
 * Usage: deno run -A scripts/count_exports.ts [--json]
 *
 * @module
 */
import { parseArgs } from "node:util";

interface DocOutput {
  readonly nodes: Record<string, { readonly symbols: { name: string }[] }>;
}

const { values } = parseArgs({
  args: Deno.args,
  options: { json: { type: "boolean", default: false } },
});
const root = new URL("../", import.meta.url);
const config = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", root)),
) as { exports: Record<string, string> };
const MARKER = "// Types named by the signatures above";
const counts: Record<string, number> = {};
const named: Record<string, number> = {};
const names = new Set<string>();
for (const [entry, path] of Object.entries(config.exports)) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lock=deno.dev.lock", "--json", path],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(new TextDecoder().decode(stderr));
  const doc = JSON.parse(new TextDecoder().decode(stdout)) as DocOutput;
  const symbols = new Set(
    Object.values(doc.nodes).flatMap((node) =>
      node.symbols.map((symbol) => symbol.name)
    ),
  );
  const text = await Deno.readTextFile(new URL(path, root));
  const tail = text.includes(MARKER) ? text.slice(text.indexOf(MARKER)) : "";
  const reexported = new Set(
    [...tail.matchAll(/export type \{([^}]*)\}/g)].flatMap((match) =>
      match[1].split(",").map((name) => name.trim()).filter(Boolean)
    ),
  );
  counts[entry] = symbols.size;
  named[entry] = [...symbols].filter((name) => reexported.has(name)).length;
  symbols.forEach((name) => names.add(name));
}
const total = Object.values(counts).reduce((a, b) => a + b, 0);
const totalNamed = Object.values(named).reduce((a, b) => a + b, 0);
if (values.json) {
  console.log(
    JSON.stringify({ counts, named, total, totalNamed, distinct: names.size }),
  );
} else {
  console.log("entry        exports  (types named by signatures)");
  for (const [entry, count] of Object.entries(counts)) {
    const padded = String(count).padStart(7);
    console.log(`${entry.padEnd(12)} ${padded}  (${named[entry]})`);
  }
  console.log(
    `${Object.keys(counts).length} entry points, ${total} exports ` +
      `(${totalNamed} types named by signatures), ${names.size} distinct names`,
  );
}
