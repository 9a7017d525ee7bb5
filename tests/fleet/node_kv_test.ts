/**
 * Node processes (the `deno bundle` of mod.ts and kv.ts, with `openKv` of
 * npm:@deno/kv) and Deno processes share one local KV file as one fleet.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startGenesysEmulator } from "../../testing.ts";
import { runToEnd } from "../support/child_process.ts";
import type { ChildConfig } from "./child.ts";
import { type FleetChild, startFleetChild } from "./harness.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE_CHILD = fileURLToPath(new URL("./node_child.mjs", import.meta.url));
const DENO_KV_VERSION = "0.14.0";
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];

async function prepare(dir: string): Promise<string | Error> {
  const node = await runToEnd("node", ["--version"]).catch((e) => e);
  if (node instanceof Error || node.code !== 0) {
    return new Error(`node not usable`);
  }
  const install = await runToEnd("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--prefix",
    dir,
    `@deno/kv@${DENO_KV_VERSION}`,
  ]).catch((e) => e);
  if (install instanceof Error || install.code !== 0) {
    return new Error(
      `npm install @deno/kv failed: ${install.stderr ?? install}`,
    );
  }
  await Deno.writeTextFile(
    `${dir}/entry.ts`,
    `export { createDualSecretAuth } from ${
      JSON.stringify(`${ROOT}mod.ts`)
    };\n` +
      `export { createKvFleet } from ${JSON.stringify(`${ROOT}kv.ts`)};\n`,
  );
  const bundle = await runToEnd(Deno.execPath(), [
    "bundle",
    "--platform",
    "node",
    "-o",
    `${dir}/fleet.mjs`,
    `${dir}/entry.ts`,
  ], { cwd: ROOT, env: { NO_COLOR: "1" } });
  if (bundle.code !== 0) throw new Error(bundle.stderr);
  const pkg = JSON.parse(
    await Deno.readTextFile(`${dir}/node_modules/@deno/kv/package.json`),
  );
  const entry = typeof pkg.exports?.["."] === "object"
    ? pkg.exports["."].import ?? pkg.exports["."].default
    : pkg.module ?? pkg.main;
  return `${dir}/node_modules/@deno/kv/${entry}`;
}

Deno.test({
  name:
    "4 Node processes (npm:@deno/kv) and 4 Deno processes share one KV file: one token request",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "fleet-node-" });
  try {
    const denoKv = await prepare(dir);
    await t.step({
      name: `one fleet across runtimes${
        denoKv instanceof Error ? ` (skipped: ${denoKv.message})` : ""
      }`,
      ignore: denoKv instanceof Error,
      fn: async () => {
        await using emulator = startGenesysEmulator({
          clients: CREDENTIALS.map((c) => ({
            clientId: c.clientId,
            secret: c.clientSecret,
            tokenLifetimeSeconds: 60,
          })),
        });
        const config = (i: number): ChildConfig => ({
          kvPath: `${dir}/fleet.sqlite`,
          tokenUrl: emulator.tokenUrl,
          apiUrl: emulator.apiUrl,
          instanceId: i < 4 ? `deno-${i}` : `node-${i}`,
          fleetSize: 8,
          credentials: CREDENTIALS,
          pollIntervalMs: 200,
          leaseMs: 1_500,
          // Generous: a store call slower than this counts as the store
          // being down, and an instance then requests its own token.
          storeTimeoutMs: 2_000,
        });
        const children: FleetChild[] = [];
        for (let i = 0; i < 8; i++) {
          children.push(
            i < 4 ? startFleetChild(config(i), dir) : startFleetChild(
              {
                ...config(i),
                bundle: `${dir}/fleet.mjs`,
                denoKv,
              } as ChildConfig,
              dir,
              { program: "node", args: [NODE_CHILD] },
            ),
          );
        }
        const summaries = [];
        try {
          await Promise.all(children.map((c) => c.next("ready", 60_000)));
          await Promise.all(
            children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
          );
          await new Promise((resolve) => setTimeout(resolve, 1_500));
        } finally {
          for (const child of children) summaries.push(await child.stop());
        }
        const node = summaries.filter((s) => s?.runtime);
        assert.equal(node.length, 4, "every Node instance reported");
        for (const summary of summaries) {
          assert.ok(summary, "every instance reported");
          assert.equal(summary.failed, 0, JSON.stringify(summary.errors));
          assert.ok((summary.ok as number) > 0);
        }
        assert.equal(
          emulator.stats().tokenRequests,
          1,
          `one token for all: ${
            JSON.stringify(
              summaries.map((s) => [s!.instanceId, s!.requested, s!.warnings]),
            )
          }`,
        );
        assert.ok(node.every((s) => s!.tokens === 1));
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
});
