/**
 * The rehearsal of each provider guide (docs/providers/<provider>.md), run as
 * written: the lines between the `rehearsal:begin` and `rehearsal:end`
 * markers, in a project copy. The first line starts the provider's emulator
 * (`deno task emulator --provider …`, which writes `.env.<provider>`); every
 * other line must exit 0, and the env file must end on the rotated label:
 * `AUTH_ACTIVE=green` with a new green secret (and, for two-secret providers,
 * a new `AUTH_SECRET_ID_GREEN` and blue's old secret revoked).
 *
 * @module
 */
import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import { createWorkspace } from "../tasks/workspace.ts";
import { ROOT } from "./_commands.ts";

const PROVIDERS = ["okta", "entra", "keycloak", "cognito", "auth0"] as const;
type Provider = typeof PROVIDERS[number];

/** One line of a rehearsal: a task and its arguments. */
interface Line {
  readonly text: string;
  readonly task: string;
  readonly args: string[];
}

/**
 * A guide's rehearsal lines, parsed from its marked `sh` block.
 *
 * @param provider The guide's provider.
 */
async function readRehearsal(provider: Provider): Promise<Line[]> {
  const path = `docs/providers/${provider}.md`;
  const guide = await Deno.readTextFile(`${ROOT}${path}`);
  const block = guide.match(
    /<!-- rehearsal:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- rehearsal:end -->/,
  );
  if (!block) throw new Error(`${path} has no rehearsal block`);
  const lines: Line[] = [];
  for (const raw of block[1].split("\n")) {
    const text = raw.replace(/\s+#.*$/, "").trim();
    if (text === "" || text.startsWith("#")) continue;
    const words = text.split(/\s+/);
    if (words[0] !== "deno" || words[1] !== "task") {
      throw new Error(`${path}: not a deno task line: ${raw}`);
    }
    lines.push({ text, task: words[2], args: words.slice(3) });
  }
  return lines;
}

for (const provider of PROVIDERS) {
  Deno.test({
    name:
      `docs/providers/${provider}.md: the rehearsal, as written, against the emulator; every line exits 0, the env file ends on green`,
    // The emulator is a `deno task` child, stopped with SIGTERM below.
    sanitizeResources: false,
    fn: async () => {
      const lines = await readRehearsal(provider);
      const envFile = `.env.${provider}`;
      const [start, ...rest] = lines;
      assert.deepEqual(
        [start.task, start.args.slice(0, 2)],
        ["emulator", ["--provider", provider]],
        "the rehearsal starts the provider's emulator",
      );
      assert.deepEqual(rest.map((l) => l.task), [
        "verify",
        "rotate",
        "rotate",
        "verify",
      ]);
      for (const line of rest) {
        assert.ok(
          line.text.includes(`--env-file ${envFile}`),
          `${line.text}: names ${envFile}`,
        );
      }

      await using ws = await createWorkspace();
      const emulator = ws.spawn(["task", "-q", start.task, ...start.args]);
      try {
        await emulator.waitFor(new RegExp(`Wrote \\${envFile} \\(`));
        const before = readEnvValues(
          await Deno.readTextFile(`${ws.dir}/${envFile}`),
        );
        assert.equal(before.AUTH_ACTIVE, "blue");
        const outputs: string[] = [];
        for (const line of rest) {
          const run = await ws.task(line.task as "verify", line.args);
          assert.equal(
            run.code,
            0,
            `${line.text}:\n${run.stdout}\n${run.stderr}`,
          );
          outputs.push(run.stdout + run.stderr);
        }
        const after = readEnvValues(
          await Deno.readTextFile(`${ws.dir}/${envFile}`),
        );
        assert.equal(after.AUTH_ACTIVE, "green");
        assert.equal(after.AUTH_PROVIDER, provider);
        assert.notEqual(
          after.AUTH_CLIENT_SECRET_GREEN,
          before.AUTH_CLIENT_SECRET_GREEN,
          "green has a new secret",
        );
        assert.equal(
          after.AUTH_CLIENT_SECRET_BLUE,
          before.AUTH_CLIENT_SECRET_BLUE,
          "blue's secret is left in the file",
        );
        assert.match(outputs[2], /Rotation complete\./);
        const last = outputs[3];
        if (provider === "auth0") {
          // Twin clients: no retire step; both applications still work.
          assert.doesNotMatch(outputs[2], /\bretire\b/);
          assert.match(last, /^blue\s+blue\s+ok\b/m);
          assert.match(last, /^green \(active\)\s+green\s+ok\b/m);
        } else {
          assert.equal(after.AUTH_CLIENT_ID_GREEN, after.AUTH_CLIENT_ID_BLUE);
          assert.ok(after.AUTH_SECRET_ID_GREEN, "green's secret id is stored");
          assert.notEqual(
            after.AUTH_SECRET_ID_GREEN,
            before.AUTH_SECRET_ID_GREEN,
          );
          // Retire revoked blue's old secret: verify lists blue as holding none.
          assert.match(
            outputs[2],
            new RegExp(
              `retire\\s+completed\\s+revoked ${before.AUTH_SECRET_ID_BLUE}`,
            ),
          );
          assert.match(last, /^blue\s+\S+\s+none\b/m);
          assert.match(last, /^green \(active\)\s+\S+\s+ok\b/m);
        }
        // No secret of the file is ever printed.
        for (
          const secret of [
            before.AUTH_CLIENT_SECRET_BLUE,
            before.AUTH_CLIENT_SECRET_GREEN,
            after.AUTH_CLIENT_SECRET_GREEN,
          ]
        ) {
          for (const output of outputs) assert.ok(!output.includes(secret));
        }
      } finally {
        emulator.child.kill("SIGTERM");
        const done = await emulator.finished();
        assert.equal(done.code, 0, done.stderr);
      }
    },
  });
}
