import assert from "node:assert/strict";
import { readEnvValues, setEnvValue } from "../../src/rotation/env_file.ts";

/** Values as Deno's own `--env-file` loader reads them. */
async function denoReads(text: string, keys: string[]) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/.env`, text);
    await Deno.writeTextFile(
      `${dir}/print.ts`,
      `console.log(JSON.stringify(Object.fromEntries(${
        JSON.stringify(keys)
      }.map((k) => [k, Deno.env.get(k) ?? null]))));`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-env", `--env-file=${dir}/.env`, `${dir}/print.ts`],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "", DENO_NO_UPDATE_CHECK: "1" },
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("an escaped quote in a double-quoted value: read as Deno reads it, and a rotation keeps the file intact", async () => {
  const text = [
    'GENESYS_CLIENT_SECRET_GREEN="a\\"b" # hand-written',
    'BACKSLASH="x\\\\"',
    'TWO="p\\"q\\"r"',
    "AFTER=kept",
    "",
  ].join("\n");
  const keys = ["GENESYS_CLIENT_SECRET_GREEN", "BACKSLASH", "TWO", "AFTER"];
  const mine = readEnvValues(text);
  const deno = await denoReads(text, keys);
  assert.deepEqual(
    Object.fromEntries(keys.map((k) => [k, mine[k] ?? null])),
    deno,
  );
  const rotated = setEnvValue(
    text,
    "GENESYS_CLIENT_SECRET_GREEN",
    "NEW-secret",
  );
  assert.equal(
    rotated.split("\n")[0],
    "GENESYS_CLIENT_SECRET_GREEN=NEW-secret # hand-written",
  );
  const after = await denoReads(rotated, keys);
  assert.equal(after.GENESYS_CLIENT_SECRET_GREEN, "NEW-secret");
  assert.equal(after.AFTER, "kept");
});
