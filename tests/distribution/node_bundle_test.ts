/**
 * Bundles mod.ts with `deno bundle` and runs a failover scenario with the
 * bundle in Node (and in Bun, when it is installed) against the emulator.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import * as library from "../../mod.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { runToEnd } from "../support/child_process.ts";
import { startEmulatorControl } from "../support/emulator_control.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCENARIO = fileURLToPath(
  new URL("../support/runtime_scenario.mjs", import.meta.url),
);
const BLUE = { clientId: "blue-id", secret: "blue-secret-0123456789" };
const GREEN = { clientId: "green-id", secret: "green-secret-0123456789" };

/** The version of a runtime on PATH, or why it cannot be used. */
async function versionOf(program: string): Promise<string | Error> {
  try {
    const { code, stdout, stderr } = await runToEnd(program, ["--version"]);
    return code === 0 ? stdout.trim() : new Error(stderr.trim());
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

const nodeVersion = await versionOf("node");
const bunVersion = await versionOf("bun");

function skipReason(version: string | Error, program: string): string {
  return version instanceof Error
    ? ` (skipped: ${program} not usable: ${version.message})`
    : "";
}

async function runScenario(program: string, bundle: string) {
  await using emulator = startGenesysEmulator({ clients: [BLUE, GREEN] });
  await using control = startEmulatorControl(emulator);
  const config = {
    bundle,
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    controlUrl: control.url,
    credentials: [
      { label: "blue", clientId: BLUE.clientId, clientSecret: BLUE.secret },
      { label: "green", clientId: GREEN.clientId, clientSecret: GREEN.secret },
    ],
  };
  const { code, stdout, stderr } = await runToEnd(program, [
    SCENARIO,
    JSON.stringify(config),
  ]);
  assert.equal(code, 0, stderr);
  return { results: JSON.parse(stdout), stats: emulator.stats() };
}

function assertScenario(
  { results, stats }: Awaited<ReturnType<typeof runScenario>>,
  runtime: string,
): void {
  assert.equal(results.error, undefined);
  assert.match(results.runtime, new RegExp(`^${runtime} `));
  assert.deepEqual(results.exports, Object.keys(library).sort());
  assert.deepEqual(results.acquisition, {
    active: "blue",
    cached: true,
    call: { status: 200, clientId: BLUE.clientId },
  });
  assert.deepEqual(results.afterRevoke, {
    status: 200,
    clientId: BLUE.clientId,
  });
  assert.deepEqual(results.afterRegenerate, {
    active: "green",
    call: { status: 200, clientId: GREEN.clientId },
  });
  assert.ok(results.events.includes("failover"), results.events.join());
  assert.equal(stats.apiUnauthorized, 1, "one stale-token 401, replayed");
  assert.equal(stats.tokenRequestsByClient[BLUE.clientId], 3);
  assert.equal(stats.tokenRequestsByClient[GREEN.clientId], 1);
  for (const secret of [BLUE.secret, GREEN.secret]) {
    assert.ok(!results.inspected.includes(secret), "inspect shows a secret");
  }
  assert.match(results.inspected, /\[redacted\]/);
}

Deno.test("the deno bundle of mod.ts runs in Node and Bun", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "dual-secret-bundle-" });
  try {
    const bundle = `${dir}/mod.mjs`;
    await t.step(
      "deno bundle produces one self-contained ES module",
      async () => {
        const { code, stderr } = await runToEnd(Deno.execPath(), [
          "bundle",
          "--platform",
          "browser",
          "-o",
          bundle,
          "mod.ts",
        ], { cwd: ROOT, env: { NO_COLOR: "1" } });
        assert.equal(code, 0, stderr);
        const text = await Deno.readTextFile(bundle);
        assert.doesNotMatch(text, /^\s*import\b/m, "no imports left");
        assert.match(text, /^export \{/m);
      },
    );

    await t.step({
      name: `Node ≥ 20 imports it: token, 401 replay, failover${
        skipReason(nodeVersion, "node")
      }`,
      ignore: nodeVersion instanceof Error,
      fn: async () => {
        const major = Number(/^v(\d+)\./.exec(String(nodeVersion))?.[1]);
        assert.ok(major >= 20, `node ${nodeVersion} is older than 20`);
        assertScenario(await runScenario("node", bundle), "node");
      },
    });

    await t.step({
      name: `Bun imports it: token, 401 replay, failover${
        skipReason(bunVersion, "bun")
      }`,
      ignore: bunVersion instanceof Error,
      fn: async () => {
        assertScenario(await runScenario("bun", bundle), "bun");
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
