/**
 * The npm package as a Node or Bun user gets it: `deno task npm`'s build,
 * `npm pack`, the tarball installed into a fresh Node project with
 * `typescript`, the optional peer and `@deno/kv`, then for every subpath of
 * deno.json's `exports` (read here, so a new entry point is covered without
 * an edit): a TypeScript consumer that imports each one is type-checked with
 * `tsc --noEmit` and run (after `tsc`) under Node (≥ 20) and Bun (skipped
 * only when Bun is absent), each subpath's runtime exports equal to what Deno
 * sees. Then a token, a 401 replay, a failover and a staged rotation against
 * the emulator, `./kv` on `openKv` of `@deno/kv` (its `Kv` type-checked as the
 * structural `KvDatabase`), and, with the optional peer uninstalled, the
 * subpaths that need it fail with an error naming it while the others load.
 * The guides' Node.js (`js`) blocks are type-checked there as JavaScript
 * (`tsc` with `checkJs`, Node's types), as a Node user would paste them.
 * Every subprocess is bounded in time.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import { buildNpmPackage, PEER_PACKAGES } from "../../scripts/build_npm.ts";
import { nodeBlocks, readDocs } from "../docs/_markdown.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONSUMER = fileURLToPath(
  new URL("./npm_consumer/consumer.ts", import.meta.url),
);
const TYPESCRIPT_VERSION = "5.9.3";
const DENO_KV_VERSION = "0.14.0";
/** Node's own types, for the guides' Node.js blocks (`process.env`): Node 20, as `engines`. */
const NODE_TYPES_VERSION = "20.19.8";
const STEP_TIMEOUT_MS = 180_000;
const EXPORTS = denoJson.exports as Record<string, string>;

/** `./otel` → `@rotating/dual-secret-auth/otel`. */
const specifierOf = (key: string) =>
  key === "." ? denoJson.name : `${denoJson.name}/${key.slice(2)}`;

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
const RUNTIMES = hasBun ? ["node", "bun"] : ["node"];

/** Each subpath's export names, as Deno loads the sources. */
async function denoExportNames(): Promise<Record<string, string[]>> {
  const names: Record<string, string[]> = {};
  for (const [key, file] of Object.entries(EXPORTS)) {
    const module = await import(new URL(file, `file://${ROOT}`).href);
    names[specifierOf(key)] = Object.keys(module).sort();
  }
  return names;
}

/** The optional peers each subpath's module graph imports, as Deno sees it. */
async function peersOfSubpaths(): Promise<Record<string, string[]>> {
  const peers: Record<string, string[]> = {};
  for (const [key, file] of Object.entries(EXPORTS)) {
    const info = JSON.parse(
      await ok(Deno.execPath(), [
        "info",
        "--lock=deno.dev.lock",
        "--json",
        file,
      ], ROOT),
    ) as { modules: { npmPackage?: string }[] };
    peers[specifierOf(key)] = [...PEER_PACKAGES].filter((peer) =>
      info.modules.some((module) => module.npmPackage?.startsWith(`${peer}@`))
    );
  }
  return peers;
}

/**
 * Imports every subpath: statically for the type check, dynamically at run
 * time so that one failing subpath does not hide the others.
 */
function subpathsConsumer(): string {
  const specifiers = Object.keys(EXPORTS).map(specifierOf);
  return `${
    specifiers.map((specifier, i) =>
      `import type * as S${i} from ${JSON.stringify(specifier)};`
    ).join("\n")
  }
export type Subpaths = [${specifiers.map((_, i) => `typeof S${i}`).join(", ")}];

const seen: Record<string, unknown> = {};
for (const specifier of ${JSON.stringify(specifiers)}) {
  try {
    seen[specifier] = { exports: Object.keys(await import(specifier)).sort() };
  } catch (error) {
    const { name, code, message, packageName } = error as {
      name?: string;
      code?: string;
      message?: string;
      packageName?: string;
    };
    seen[specifier] = { error: { name, code, message, packageName } };
  }
}
console.log(JSON.stringify(seen));
`;
}

/**
 * \`./kv\` under Node and Bun on \`openKv\` of \`@deno/kv\`: its \`Kv\` type-checks
 * as the package's structural \`KvDatabase\` (no \`Deno\` type involved), and
 * two auth instances share one token through it.
 */
const KV_CONSUMER = `import { openKv } from "@deno/kv";
import { createDualSecretAuth } from "${denoJson.name}";
import {
  createKvFleet,
  type KvDatabase,
  openKvRetrying,
} from "${denoJson.name}/kv";
import { startGenesysEmulator } from "${denoJson.name}/testing";

const kv: KvDatabase = await openKv(":memory:", {
  // Bun's own v8.serialize is not V8's; the fleet stores bytes only, which
  // need no V8 serialization.
  encodeV8: () => {
    throw new Error("not used");
  },
  decodeV8: () => {
    throw new Error("not used");
  },
});
const emulator = startGenesysEmulator({
  clients: [{ clientId: "blue-id", secret: "blue-secret-kv-0001" }],
});
await emulator.ready;
const make = (instanceId: string) =>
  createDualSecretAuth({
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: "blue-secret-kv-0001" },
    ],
    tokenUrl: emulator.tokenUrl,
    shared: createKvFleet(kv, { prefix: ["npm-consumer"], instanceId }),
  });
const one = make("web-1");
const two = make("web-2");
const first = await one.getAccessToken();
const second = await two.getAccessToken();
// Deno's own opener names what to use instead, off Deno.
let offDeno = "";
try {
  await openKvRetrying(":memory:");
} catch (error) {
  offDeno = String((error as { code?: unknown }).code);
}
console.log(JSON.stringify({
  shared: first === second,
  tokenRequests: emulator.stats().tokenRequests,
  offDeno,
}));
await one.close();
await two.close();
kv.close();
await emulator.close();
// @deno/kv keeps Node's event loop alive after close.
(globalThis as unknown as { process: { exit(code: number): never } }).process
  .exit(0);
`;

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
  assert.equal(seen.failedRotation, "ROTATION_PUBLISH_FAILED");
  assert.deepEqual(seen.faults, {
    resetRejected: true,
    rateLimited: { status: 429, retryAfter: "1" },
    delayed: true,
  });
  assert.doesNotMatch(seen.inspected, /secret-npm/);
}

Deno.test({
  name:
    `npm package: every subpath packed, installed, type-checked with tsc, run on Node${
      hasBun ? " and Bun" : " (Bun skipped: not installed)"
    }`,
  ignore: !hasNode,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "dual-secret-auth-npm-" });
    try {
      const out = `${dir}/package`;
      const manifest = await buildNpmPackage(out);
      const dependencies = (manifest.dependencies ?? {}) as Record<
        string,
        string
      >;
      const peerDependencies = (manifest.peerDependencies ?? {}) as Record<
        string,
        string
      >;

      await t.step(
        "package.json: every subpath with types, engines, README",
        async () => {
          assert.equal(manifest.name, denoJson.name);
          assert.equal(manifest.version, denoJson.version);
          assert.deepEqual(manifest.engines, { node: ">=20" });
          const exportsMap = manifest.exports as Record<
            string,
            { types: string; default: string }
          >;
          assert.deepEqual(Object.keys(exportsMap), Object.keys(EXPORTS));
          for (const target of Object.values(exportsMap)) {
            await Deno.stat(`${out}/${target.types}`);
            await Deno.stat(`${out}/${target.default}`);
          }
          const readme = await Deno.readTextFile(`${out}/README.md`);
          assert.match(readme, /^> \*\*npm package\*\*/);
          assert.match(readme, /npm install @rotating\/dual-secret-auth/);
          assert.match(readme, /# dual-secret-auth/);
          // The README's links into the guides resolve inside the tarball.
          const linked = [...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)]
            .map((match) => match[1]);
          assert.ok(linked.length > 0, "the README links to its guides");
          for (const path of new Set(linked)) await Deno.stat(`${out}/${path}`);
        },
      );

      await t.step(
        "package.json declares every npm package the JavaScript imports; the peers are optional",
        async () => {
          const imported = new Set<string>();
          const walk = async (path: string) => {
            for await (const entry of Deno.readDir(path)) {
              const full = `${path}/${entry.name}`;
              if (entry.isDirectory) await walk(full);
              else if (entry.name.endsWith(".js")) {
                const text = await Deno.readTextFile(full);
                for (
                  const [, specifier] of text.matchAll(
                    /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[\w./-]*)?)["']/g,
                  )
                ) {
                  // Doc examples in comments import the package itself.
                  if (specifier.startsWith(denoJson.name)) continue;
                  const parts = specifier.split("/");
                  imported.add(
                    specifier.startsWith("@")
                      ? parts.slice(0, 2).join("/")
                      : parts[0],
                  );
                }
              }
            }
          };
          await walk(`${out}/esm`);
          assert.deepEqual(
            [...imported].sort(),
            [...Object.keys(dependencies), ...Object.keys(peerDependencies)]
              .sort(),
          );
          for (const peer of Object.keys(peerDependencies)) {
            assert.ok(PEER_PACKAGES.has(peer), peer);
            assert.deepEqual(
              (manifest.peerDependenciesMeta as Record<string, unknown>)[peer],
              { optional: true },
            );
          }
          // As OpenTelemetry asks of instrumentation libraries.
          assert.ok("@opentelemetry/api" in peerDependencies);
          assert.ok("@redis/client" in dependencies);
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
      await Deno.writeTextFile(`${consumer}/subpaths.ts`, subpathsConsumer());
      await Deno.writeTextFile(`${consumer}/kv.ts`, KV_CONSUMER);
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
          files: ["consumer.ts", "subpaths.ts", "kv.ts"],
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
            `@deno/kv@${DENO_KV_VERSION}`,
            `@types/node@${NODE_TYPES_VERSION}`,
            ...Object.entries(peerDependencies).map(([name, range]) =>
              `${name}@${range}`
            ),
          ], consumer);
        },
      );
      const tsc = ["node_modules/typescript/bin/tsc", "-p", "."];
      await t.step(
        "tsc --noEmit type-checks a consumer of every subpath",
        async () => {
          await ok("node", [...tsc, "--noEmit"], consumer);
        },
      );
      // Emit only: the step above was the type check.
      await ok("node", [...tsc, "--noCheck"], consumer);

      await t.step(
        "the guides' Node.js blocks type-check as JavaScript against the package (tsc checkJs)",
        async () => {
          const blocks = nodeBlocks(await readDocs());
          assert.ok(blocks.length >= 2, `only ${blocks.length} Node.js blocks`);
          const files = blocks.map(({ path, line }) =>
            `docs_${path.replace(/\W+/g, "_")}_${line}.js`
          );
          for (const [i, block] of blocks.entries()) {
            await Deno.writeTextFile(`${consumer}/${files[i]}`, block.body);
          }
          // Beside them, a block that does not type-check: one tsc run shows
          // the check fails it and passes the guides' (every error is its).
          await Deno.writeTextFile(
            `${consumer}/docs_broken.js`,
            `import { createDualSecretAuth } from "${denoJson.name}";\ncreateDualSecretAuth({ credentials: 5 });\n`,
          );
          await Deno.writeTextFile(
            `${consumer}/tsconfig.docs.json`,
            JSON.stringify({
              compilerOptions: {
                target: "ES2022",
                module: "NodeNext",
                moduleResolution: "NodeNext",
                lib: ["ES2022", "DOM", "ESNext.Disposable"],
                types: ["node"],
                strict: true,
                allowJs: true,
                checkJs: true,
                noEmit: true,
              },
              // tsc refuses a listed file it cannot find (TS6053).
              files: [...files, "docs_broken.js"],
            }),
          );
          const checked = await run(
            "node",
            ["node_modules/typescript/bin/tsc", "-p", "tsconfig.docs.json"],
            consumer,
          );
          const errors = checked.stdout.split("\n").filter((line) =>
            /error TS\d+/.test(line)
          );
          assert.notEqual(checked.code, 0, checked.stdout);
          assert.ok(
            errors.length > 0 &&
              errors.every((line) => line.startsWith("docs_broken.js(")),
            checked.stdout,
          );
          assert.ok(
            errors.some((line) =>
              /^docs_broken\.js\(2,\d+\): error TS2322/.test(line)
            ),
            checked.stdout,
          );
        },
      );

      const expectedExports = await denoExportNames();
      for (const runtime of RUNTIMES) {
        await t.step(
          `${runtime}: every subpath imports, with the exports Deno sees`,
          async () => {
            if (runtime === "node") {
              const version = await ok("node", ["--version"], consumer);
              assert.ok(Number(/^v(\d+)/.exec(version)?.[1]) >= 20, version);
            }
            const seen = JSON.parse(
              await ok(runtime, ["out/subpaths.js"], consumer),
            );
            assert.deepEqual(
              seen,
              Object.fromEntries(
                Object.entries(expectedExports).map((
                  [specifier, exports],
                ) => [specifier, { exports }]),
              ),
            );
          },
        );
        await t.step(
          `${runtime}: token, 401 replay, failover, rotation`,
          async () => {
            assertScenario(
              await ok(runtime, ["out/consumer.js"], consumer),
              runtime,
            );
          },
        );
        await t.step(
          `${runtime}: ./kv on openKv of @deno/kv, one token for two instances`,
          async () => {
            const seen = JSON.parse(
              (await ok(runtime, ["out/kv.js"], consumer)).trim(),
            );
            assert.deepEqual(seen, {
              shared: true,
              tokenRequests: 1,
              offDeno: "DENO_REQUIRED",
            });
          },
        );
      }

      const peersBySubpath = await peersOfSubpaths();
      assert.ok(
        Object.values(peersBySubpath).some((peers) => peers.length > 0),
        "no subpath needs an optional peer: the steps below test nothing",
      );
      assert.deepEqual(peersBySubpath[denoJson.name], [], "the main entry");
      await ok("npm", [
        "uninstall",
        "--no-audit",
        "--no-fund",
        ...Object.keys(peerDependencies),
      ], consumer);
      await t.step(
        "without the optional peers, the consumer still type-checks",
        async () => {
          await ok("node", [...tsc, "--noEmit"], consumer);
        },
      );
      for (const runtime of RUNTIMES) {
        await t.step(
          `${runtime}: without the optional peers, the subpaths that need one name it; the others import`,
          async () => {
            const seen = JSON.parse(
              await ok(runtime, ["out/subpaths.js"], consumer),
            );
            for (const [specifier, peers] of Object.entries(peersBySubpath)) {
              if (peers.length === 0) {
                assert.deepEqual(seen[specifier], {
                  exports: expectedExports[specifier],
                });
                continue;
              }
              const { error } = seen[specifier];
              assert.ok(error, `${specifier} imported without ${peers}`);
              assert.equal(error.code, "PEER_DEPENDENCY_MISSING");
              assert.ok(peers.includes(error.packageName), error.packageName);
              assert.match(error.message, new RegExp(`^${specifier} needs `));
              assert.ok(
                error.message.includes(`npm install ${error.packageName}@`),
                error.message,
              );
            }
          },
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
