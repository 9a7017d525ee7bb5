/**
 * The npm package as a Node or Bun user gets it: `deno task npm`'s build,
 * `npm pack`, the tarball installed into a fresh Node project with
 * `typescript`, a TypeScript consumer type-checked with `tsc --noEmit`, then
 * run under Node (≥ 20) and Bun (skipped only when Bun is absent): a token,
 * a 401 replay, a failover and a staged rotation against the emulator.
 * Every subprocess is bounded in time.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import { buildNpmPackage } from "../../scripts/build_npm.ts";

const CONSUMER = fileURLToPath(
  new URL("./npm_consumer/consumer.ts", import.meta.url),
);
const TYPESCRIPT_VERSION = "5.9.3";
const STEP_TIMEOUT_MS = 180_000;

async function run(
  program: string,
  args: readonly string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(program, {
    args: [...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", npm_config_update_notifier: "false" },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

async function ok(program: string, args: readonly string[], cwd: string) {
  const result = await run(program, args, cwd);
  assert.equal(
    result.code,
    0,
    `${program} ${args.join(" ")}:\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

async function usable(program: string): Promise<boolean> {
  try {
    return (await run(program, ["--version"], "/")).code === 0;
  } catch {
    return false;
  }
}

const hasNode = await usable("node");
const hasBun = await usable("bun");

function assertScenario(stdout: string, runtime: string): void {
  const seen = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.match(seen.runtime, new RegExp(`^${runtime} `));
  assert.equal(seen.tokenIssued, true);
  assert.deepEqual(seen.first, { status: 200, clientId: "blue-id" });
  assert.deepEqual(seen.afterRevoke, { status: 200, clientId: "blue-id" });
  assert.equal(seen.unauthorizedReplayed, 1, "one stale-token 401, replayed");
  assert.deepEqual(seen.afterRegenerate, { status: 200, clientId: "green-id" });
  assert.equal(seen.active, "green");
  assert.ok(seen.events.includes("failover"), seen.events.join());
  assert.deepEqual(seen.rotation, { published: "blue", active: "green" });
  assert.doesNotMatch(seen.inspected, /secret-npm/);
}

Deno.test({
  name: `npm package: packed, installed, type-checked with tsc, run on Node${
    hasBun ? " and Bun" : " (Bun skipped: not installed)"
  }`,
  ignore: !hasNode,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "dual-secret-auth-npm-" });
    try {
      const out = `${dir}/package`;
      const manifest = await buildNpmPackage(out);

      await t.step(
        "package.json: exports with types, engines, README",
        async () => {
          assert.equal(manifest.name, denoJson.name);
          assert.equal(manifest.version, denoJson.version);
          assert.deepEqual(manifest.engines, { node: ">=20" });
          const exportsMap = manifest.exports as Record<
            string,
            { types: string; default: string }
          >;
          assert.deepEqual(
            Object.keys(exportsMap),
            Object.keys(denoJson.exports),
          );
          for (const target of Object.values(exportsMap)) {
            await Deno.stat(`${out}/${target.types}`);
            await Deno.stat(`${out}/${target.default}`);
          }
          await Deno.stat(`${out}/README.md`);
        },
      );

      const tarball = (await ok("npm", [
        "pack",
        "--silent",
        "--pack-destination",
        dir,
      ], out)).trim().split("\n").at(-1)!;

      const consumer = `${dir}/consumer`;
      await Deno.mkdir(consumer);
      await Deno.writeTextFile(
        `${consumer}/package.json`,
        JSON.stringify({ name: "consumer", private: true, type: "module" }),
      );
      await Deno.copyFile(CONSUMER, `${consumer}/consumer.ts`);
      await Deno.writeTextFile(
        `${consumer}/tsconfig.json`,
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            lib: ["ES2022", "DOM", "ESNext.Disposable"],
            types: [],
            strict: true,
            outDir: "out",
          },
          files: ["consumer.ts"],
        }),
      );
      await t.step(
        "npm install of the tarball into a fresh project",
        async () => {
          await ok("npm", [
            "install",
            "--no-audit",
            "--no-fund",
            `${dir}/${tarball}`,
            `typescript@${TYPESCRIPT_VERSION}`,
            `@opentelemetry/api@${
              (manifest.peerDependencies as Record<string, string>)[
                "@opentelemetry/api"
              ]
            }`,
          ], consumer);
        },
      );
      await t.step("tsc --noEmit type-checks the consumer", async () => {
        await ok("node", [
          "node_modules/typescript/bin/tsc",
          "--noEmit",
          "-p",
          ".",
        ], consumer);
      });
      await ok(
        "node",
        ["node_modules/typescript/bin/tsc", "-p", "."],
        consumer,
      );

      await t.step(
        "Node ≥ 20: token, 401 replay, failover, rotation",
        async () => {
          const version = await ok("node", ["--version"], consumer);
          assert.ok(Number(/^v(\d+)/.exec(version)?.[1]) >= 20, version);
          assertScenario(
            await ok("node", ["out/consumer.js"], consumer),
            "node",
          );
        },
      );
      await t.step({
        name: "Bun: token, 401 replay, failover, rotation",
        ignore: !hasBun,
        fn: async () => {
          assertScenario(await ok("bun", ["out/consumer.js"], consumer), "bun");
        },
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
