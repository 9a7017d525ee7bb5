/**
 * Measures the figures quoted in docs/platforms.md: the size
 * of the `deno bundle` output (plain, minified, gzipped) and the cost of
 * importing mod.ts (a `deno run` of a file that imports it against one that
 * imports nothing, and Node importing the minified bundle), each as the median
 * of repeated runs after warm-up runs.
 *
 * Run: deno run --allow-run --allow-read --allow-write --allow-env scripts/measure_distribution.ts [runs]
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const RUNS = Number(Deno.args[0] ?? "10");
const WARM_UPS = 3;

async function run(program: string, args: string[]): Promise<Uint8Array> {
  const result = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed:\n${
        new TextDecoder().decode(result.stderr)
      }`,
    );
  }
  return result.stdout;
}

/** The size after `gzip -9`, the figure the bundle goal is stated in. */
function gzipSize(bytes: Uint8Array<ArrayBuffer>): number {
  return gzipSync(bytes, { level: 9 }).byteLength;
}

/**
 * Median wall times in ms of two commands, run alternately `RUNS` times each
 * after warm-ups, so drift in machine load hits both alike.
 */
async function medianPairMs(
  program: string,
  baselineArgs: string[],
  measuredArgs: string[],
): Promise<[number, number]> {
  for (let i = 0; i < WARM_UPS; i++) {
    await run(program, baselineArgs);
    await run(program, measuredArgs);
  }
  const baseline: number[] = [];
  const measured: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (
      const [args, times] of [[baselineArgs, baseline], [
        measuredArgs,
        measured,
      ]] as const
    ) {
      const start = performance.now();
      await run(program, args);
      times.push(performance.now() - start);
    }
  }
  return [median(baseline), median(measured)];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

const dir = await Deno.makeTempDir({ prefix: "dual-secret-measure-" });
try {
  const plain = `${dir}/mod.mjs`;
  const minified = `${dir}/mod.min.mjs`;
  await run(Deno.execPath(), [
    "bundle",
    "--platform",
    "browser",
    "-o",
    plain,
    "mod.ts",
  ]);
  await run(Deno.execPath(), [
    "bundle",
    "--platform",
    "browser",
    "--minify",
    "-o",
    minified,
    "mod.ts",
  ]);
  for (const [name, path] of [["bundle", plain], ["minified", minified]]) {
    const bytes = await Deno.readFile(path);
    console.log(
      `${name}: ${bytes.byteLength} B, gzip -9 ${gzipSize(bytes)} B`,
    );
  }

  const empty = `${dir}/empty.ts`;
  const importing = `${dir}/import_mod.ts`;
  await Deno.writeTextFile(empty, "export {};\n");
  await Deno.writeTextFile(
    importing,
    `import * as m from ${
      JSON.stringify(new URL("mod.ts", `file://${ROOT}`).href)
    };\nif (!m.createDualSecretAuth) throw new Error();\n`,
  );
  const [baseline, withMod] = await medianPairMs(
    Deno.execPath(),
    ["run", empty],
    ["run", importing],
  );
  console.log(
    `deno run (median of ${RUNS}): empty ${baseline.toFixed(1)} ms, ` +
      `importing mod.ts ${withMod.toFixed(1)} ms, difference ${
        (withMod - baseline).toFixed(1)
      } ms`,
  );

  const nodeEmpty = `${dir}/empty.mjs`;
  const nodeImporting = `${dir}/import_bundle.mjs`;
  await Deno.writeTextFile(nodeEmpty, "export {};\n");
  await Deno.writeTextFile(
    nodeImporting,
    `import { createDualSecretAuth } from "./mod.min.mjs";\nif (!createDualSecretAuth) throw new Error();\n`,
  );
  const [nodeBaseline, nodeWithBundle] = await medianPairMs(
    "node",
    [nodeEmpty],
    [nodeImporting],
  );
  console.log(
    `node (median of ${RUNS}): empty ${nodeBaseline.toFixed(1)} ms, ` +
      `importing the minified bundle ${nodeWithBundle.toFixed(1)} ms, ` +
      `difference ${(nodeWithBundle - nodeBaseline).toFixed(1)} ms`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
