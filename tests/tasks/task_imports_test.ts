/**
 * Tasks are thin shells: no task imports another (`tasks/cli.ts`, the
 * binary's dispatcher, aside); what two commands share lives in a helper
 * module (`tasks/_*.ts`) or in `src/`.
 */
import assert from "node:assert/strict";

Deno.test("no task imports another task; shared command code lives in tasks/_*.ts", async () => {
  const dir = new URL("../../tasks/", import.meta.url);
  const tasks: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".ts")) tasks.push(entry.name);
  }
  const shells = tasks.filter((name) => !name.startsWith("_"));
  assert.ok(shells.includes("rotate.ts") && shells.includes("incident.ts"));
  const found: string[] = [];
  for (const name of shells.filter((name) => name !== "cli.ts")) {
    const text = await Deno.readTextFile(new URL(name, dir));
    for (const match of text.matchAll(/["']\.\/([\w.-]+\.ts)["']/g)) {
      if (!match[1].startsWith("_")) found.push(`${name} → ${match[1]}`);
    }
  }
  assert.deepEqual(found, []);
});
