/**
 * A stable lock: on a fresh clone of this checkout (its committed `HEAD`),
 * the ordinary commands leave `git status` clean — `deno task demo` on an
 * empty Deno cache and again on the warm one, `deno publish --dry-run`, every
 * command of `deno task test` (read from deno.json, so an edit of the task is
 * followed; its `deno test` runs first_run_test.ts rather than the whole suite
 * that is running this test) and a short benchmark run (`deno task bench`
 * with `--out` outside the tree: a full run rewrites the tracked results on
 * purpose).
 *
 * Why the lock could move: deno.lock had `@redis/client` resolved without its
 * optional peer `@opentelemetry/api`, and Deno resolves an optional peer as
 * soon as the peer is in the resolution (from the cache or the graph), then
 * writes the new entry back. Both locks now hold `@redis/client` with that
 * peer, so such a resolution finds it already as written.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const STEP_TIMEOUT_MS = 300_000;

async function run(
  program: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<string> {
  const output = await new Deno.Command(program, {
    args: [...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.equal(
    output.code,
    0,
    `${program} ${args.join(" ")}:\n${decode(output.stdout)}\n${
      decode(output.stderr)
    }`,
  );
  return decode(output.stdout);
}

const deno = (clone: string, args: readonly string[], env = {}) =>
  run(Deno.execPath(), args, clone, env);

async function assertClean(clone: string, after: string): Promise<void> {
  const status = await run("git", ["status", "--porcelain"], clone);
  assert.equal(status, "", `after ${after}, git status shows:\n${status}`);
}

/** The commands of `deno task test`, as argument lists after `deno`. */
function testTaskCommands(): string[][] {
  const task = denoJson.tasks.test as { command: string };
  return task.command.split("&&").map((part) => {
    const words = part.trim().split(/\s+/);
    assert.equal(words[0], "deno", `not a deno command: ${part}`);
    return words.slice(1);
  });
}

Deno.test("the lock files hold one resolution per package (an optional peer resolved alike)", async () => {
  const versionsOf = async (file: string) => {
    const lock = JSON.parse(await Deno.readTextFile(`${ROOT}${file}`));
    const byVersion = new Map<string, string>();
    for (const id of Object.keys(lock.npm ?? {})) {
      const [nameVersion] = id.split("_");
      byVersion.set(nameVersion, id);
    }
    return byVersion;
  };
  const main = await versionsOf("deno.lock");
  const dev = await versionsOf("deno.dev.lock");
  for (const [nameVersion, id] of main) {
    if (!dev.has(nameVersion)) continue;
    assert.equal(
      id,
      dev.get(nameVersion),
      `${nameVersion} is resolved differently in deno.lock and deno.dev.lock`,
    );
  }
  assert.ok(
    main.get("@redis/client@6.3.1")?.includes("@opentelemetry+api"),
    "deno.lock locks @redis/client with its optional peer",
  );
});

Deno.test({
  name:
    "a fresh clone stays clean: demo (cold and warm cache), publish --dry-run, deno task test's commands, a benchmark run",
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "dual-secret-auth-lock-" });
    try {
      const clone = `${dir}/clone`;
      await run("git", ["clone", "--quiet", ROOT, clone], dir);
      await assertClean(clone, "git clone");

      await t.step("deno task demo on an empty Deno cache", async () => {
        await Deno.mkdir(`${dir}/deno-dir`);
        await deno(clone, ["task", "demo"], { DENO_DIR: `${dir}/deno-dir` });
        await assertClean(clone, "deno task demo (cold cache)");
      });
      await t.step("deno task demo on the warm cache", async () => {
        await deno(clone, ["task", "demo"]);
        await assertClean(clone, "deno task demo (warm cache)");
      });
      await t.step("deno publish --dry-run", async () => {
        await deno(clone, ["publish", "--dry-run"]);
        await assertClean(clone, "deno publish --dry-run");
      });
      for (const args of testTaskCommands()) {
        const command = args[0] === "test"
          ? [
            "test",
            ...args.filter((arg) => arg.startsWith("-") && arg !== "--doc"),
            "tests/distribution/first_run_test.ts",
          ]
          : args;
        await t.step(`deno task test: deno ${command.join(" ")}`, async () => {
          await deno(clone, command);
          await assertClean(clone, `deno ${command.join(" ")}`);
        });
      }
      await t.step("deno task bench (one quick run)", async () => {
        await deno(clone, [
          "task",
          "bench",
          "--quick",
          "--runs",
          "1",
          "--skip-fleet",
          "--skip-schedule",
          "--out",
          `${dir}/bench`,
        ]);
        await assertClean(clone, "deno task bench");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
