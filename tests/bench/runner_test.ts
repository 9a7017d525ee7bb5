/**
 * Smoke test of the benchmark runner: `bench/run.ts --quick --runs 1` in a
 * subprocess must print a table with a row for every contender in every
 * scenario, and write the same report and its JSON. No figure is judged here:
 * timings on a shared machine are not test material.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CONTENDERS } from "../../bench/contenders/all.ts";
import { FLEET_NOT_BUILT, SCENARIOS } from "../../bench/scenarios/all.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The rows of the markdown table under `### title`, by first cell. */
function tableRows(markdown: string, title: string): Map<string, string[]> {
  const section = markdown.split(`### ${title}\n`)[1]?.split("\n### ")[0];
  assert.ok(section !== undefined, `no section "${title}"`);
  const rows = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    if (!line.startsWith("| ") || line.startsWith("|---")) continue;
    const cells = line.slice(2, -2).split(" | ");
    rows.set(cells[0], cells.slice(1));
  }
  return rows;
}

Deno.test("bench runner --quick prints every contender in every scenario", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "bench-runner-test-" });
  try {
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        // The benchmarks' npm packages are locked in deno.dev.lock, never in
        // deno.lock (see tests/distribution/first_run_test.ts).
        "--lock=deno.dev.lock",
        // As `deno task bench` runs it: without a forced collection a heap
        // figure of the quick cold herd can come out below zero.
        "--v8-flags=--expose-gc",
        "bench/run.ts",
        "--quick",
        "--runs",
        "1",
        // The fleet measurements spawn 16 processes per figure: `deno task bench` only.
        "--skip-fleet",
        // The scheduled rotation runs cycles of real time (--quick skips it too).
        "--skip-schedule",
        "--out",
        out,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, `runner failed:\n${stderr}`);

    await t.step("every scenario has a row per contender", () => {
      for (const scenario of SCENARIOS) {
        const rows = tableRows(stdout, scenario.title);
        for (const contender of CONTENDERS) {
          const cells = rows.get(contender.name);
          assert.ok(cells, `${scenario.title}: no row for ${contender.name}`);
          assert.equal(cells.length, scenario.figures.length);
        }
      }
    });

    await t.step("scenario 7 points to the fleet measurements", () => {
      const rows = tableRows(stdout, "7. fleet");
      for (const contender of CONTENDERS) {
        assert.equal(rows.get(contender.name)?.[0], FLEET_NOT_BUILT);
      }
    });

    await t.step("this module has a figure in every column", () => {
      for (const scenario of SCENARIOS) {
        const cells = tableRows(stdout, scenario.title).get(
          CONTENDERS[0].name,
        )!;
        for (const cell of cells) {
          assert.match(
            cell,
            /^[\d,]+(\.\d+)?$/,
            `${scenario.title}: "${cell}"`,
          );
        }
      }
    });

    await t.step("the report and its JSON are written", async () => {
      const markdown = await Deno.readTextFile(`${out}/latest.md`);
      assert.equal(markdown.trim(), stdout.trim());
      const json = JSON.parse(await Deno.readTextFile(`${out}/latest.json`));
      assert.deepEqual(json.contenders, CONTENDERS.map((c) => c.name));
      assert.deepEqual(
        Object.keys(json.cells),
        SCENARIOS.map((s) => s.title),
      );
      assert.equal(json.runs, 1);
      assert.equal(json.quick, true);
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
