/**
 * A first run installs only what it runs. Deno installs every npm package of
 * deno.json's import map and of the lockfile it reads before running
 * anything, so deno.lock holds exactly the npm packages that the tasks and
 * the runtime entry points (`.`, `./testing`, `./rotation`) import, with
 * their dependencies (`@redis/client` with its optional peer
 * `@opentelemetry/api`, locked deliberately, see stable_lock_test.ts).
 * Everything else — the tests', the benchmarks' and `./otel`'s own
 * `npm:@opentelemetry/api` specifier — is locked in
 * deno.dev.lock (`deno task test` and `deno task bench` pass
 * `--lock=deno.dev.lock`), and the import map maps no bare name to `npm:`
 * except the tasks' logger.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function entryPoints(): Promise<string[]> {
  const tasks: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}tasks`)) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      tasks.push(`tasks/${entry.name}`);
    }
  }
  return ["mod.ts", "testing.ts", "rotation.ts", ...tasks.sort()];
}

interface Info {
  modules: { npmPackage?: string }[];
  npmPackages: Record<string, { dependencies: string[] }>;
}

/** The npm packages (name@version) the graph of `entry` reaches. */
async function npmClosure(entry: string): Promise<Set<string>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info: Info = JSON.parse(new TextDecoder().decode(output.stdout));
  const reached = new Set<string>();
  const pending = info.modules.flatMap((module) =>
    module.npmPackage ? [module.npmPackage] : []
  );
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    pending.push(...(info.npmPackages[id]?.dependencies ?? []));
  }
  return reached;
}

Deno.test("deno.json's import map maps no bare name to npm:", () => {
  for (const [key, value] of Object.entries(denoJson.imports)) {
    if (key === "@logtape/logtape") continue; // the tasks' logger
    assert.doesNotMatch(value, /^npm:/, `${key} would install on every run`);
  }
});

Deno.test("deno.lock holds exactly the npm packages the tasks and runtime entry points import", async () => {
  const expected = new Set<string>();
  for (const entry of await entryPoints()) {
    for (const id of await npmClosure(entry)) expected.add(id);
  }
  const lock = JSON.parse(await Deno.readTextFile(`${ROOT}deno.lock`));
  assert.deepEqual(
    Object.keys(lock.npm ?? {}).sort(),
    [...expected].sort(),
    "deno.lock has npm packages no entry point imports: a test or benchmark " +
      "was run without --lock=deno.dev.lock. Restore deno.lock with " +
      "`rm deno.lock && deno cache mod.ts testing.ts rotation.ts tasks/*.ts`.",
  );
});
