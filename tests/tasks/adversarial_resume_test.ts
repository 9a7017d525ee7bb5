/**
 * Adversarial re-runs of `rotate` and `incident` on one host: killed half-way,
 * then run again the way an operator might (the env file spelled another
 * way). The re-run resumes; the clean credential is never regenerated twice.
 */
import assert from "node:assert/strict";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  emulatorConfig,
  FAILPOINT_VAR,
  withFailpoint,
  type Workspace,
} from "./workspace.ts";

const BLUE_SECRET = "blue-CANARY-5b0e";
const GREEN_SECRET = "green-CANARY-9f3a";
const EDIT = ["oauth:client:view", "oauth:client:edit"];

async function setup() {
  const emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: BLUE_SECRET, permissions: EDIT },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
    ],
  });
  const ws = await createWorkspace();
  await ws.writeEnv(
    emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
  );
  return {
    emulator,
    ws,
    async [Symbol.asyncDispose]() {
      await ws[Symbol.asyncDispose]();
      await emulator.close();
    },
  };
}

/** Starts the task at a failpoint, waits for it, and kills it with SIGKILL. */
async function killAt(
  ws: Workspace,
  task: "rotate" | "incident",
  args: string[],
  point: string,
): Promise<void> {
  const run = ws.spawn(withFailpoint(task, args), { [FAILPOINT_VAR]: point });
  try {
    await run.waitFor(new RegExp(`failpoint ${point} reached`), 20_000);
  } finally {
    try {
      run.child.kill("SIGKILL");
    } catch {
      // It ended by itself: the wait above says why.
    }
    await run.finished();
  }
}

Deno.test("killed, then run again with the env file spelled another way (./.env, its absolute path): resumed, the clean credential regenerated once", async (t) => {
  await t.step(
    "incident killed after rotate-other, re-run with --env-file ./.env",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const args = ["--compromised", "blue", "--yes", "--reload-wait", "0"];
      await killAt(ws, "incident", args, "incident:rotate-other");
      const greenRotated = emulator.getClientSecret("green-id");
      assert.notEqual(greenRotated, GREEN_SECRET);

      const rerun = await ws.task("incident", [
        ...args,
        "--env-file",
        "./.env",
      ]);
      assert.equal(rerun.code, 0, `${rerun.stdout}\n${rerun.stderr}`);
      assert.match(rerun.stdout, /resuming incident/);
      assert.equal(
        emulator.getClientSecret("green-id"),
        greenRotated,
        "green, the clean credential, was regenerated again",
      );
      // Green once, blue once.
      assert.equal(emulator.stats().secretRegenerations, 2);
    },
  );

  await t.step(
    "rotate killed after publish, re-run with the absolute --env-file",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await killAt(ws, "rotate", ["--yes"], "publish:after");
      const rerun = await ws.task("rotate", [
        "--yes",
        "--env-file",
        ws.envPath,
      ]);
      assert.equal(rerun.code, 0, `${rerun.stdout}\n${rerun.stderr}`);
      assert.match(rerun.stdout, /Rotation resumed and complete/);
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );
});

Deno.test("rotate and promote while an incident response is unfinished: refused, naming the command that finishes it; nothing changed", async (t) => {
  const incident = [
    "--compromised",
    "blue",
    "--yes",
    "--kill-tokens",
    "--reload-wait",
    "0",
  ];
  await t.step(
    "killed after promote: promote --to blue (the leaked one) and rotate refuse",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await killAt(ws, "incident", incident, "incident:promote");
      const envBefore = await ws.readEnv();
      assert.match(envBefore, /GENESYS_ACTIVE=green/);
      const regenerations = emulator.stats().secretRegenerations;

      for (
        const [task, args] of [
          ["promote", ["--to", "blue", "--yes"]],
          ["rotate", ["--yes"]],
          ["rotate", ["--yes", "--promote"]],
        ] as const
      ) {
        const run = await ws.task(task, [...args]);
        assert.notEqual(run.code, 0, `${task}: ${run.stdout}${run.stderr}`);
        assert.match(
          run.stderr,
          /incident response for "blue" .*unfinished[\s\S]*deno task incident --compromised blue/,
          task,
        );
        assert.equal(await ws.readEnv(), envBefore, `${task} changed .env`);
        assert.equal(emulator.stats().secretRegenerations, regenerations);
      }
      // The leaked secret still works until the incident is finished...
      assert.equal(emulator.getClientSecret("blue-id"), BLUE_SECRET);
      const finished = await ws.task("incident", incident);
      assert.equal(finished.code, 0, finished.stderr);
      assert.notEqual(emulator.getClientSecret("blue-id"), BLUE_SECRET);
      // ...and once it is, rotate runs again.
      const rotated = await ws.task("rotate", ["--yes"]);
      assert.equal(rotated.code, 0, `${rotated.stdout}${rotated.stderr}`);
    },
  );

  await t.step(
    "killed after rotate-other: rotate would regenerate the clean green again; refused",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await killAt(ws, "incident", incident, "incident:rotate-other");
      const green = emulator.getClientSecret("green-id");
      const run = await ws.task("rotate", ["--yes"]);
      assert.notEqual(run.code, 0, `${run.stdout}${run.stderr}`);
      assert.equal(emulator.getClientSecret("green-id"), green);
      const finished = await ws.task("incident", incident);
      assert.equal(finished.code, 0, finished.stderr);
      assert.equal(emulator.getClientSecret("green-id"), green);
      assert.equal(emulator.stats().secretRegenerations, 2);
    },
  );
});

Deno.test("incident --compromised green after --compromised blue was killed half-way: refused (blue's response is finished first, green not regenerated again); --fresh starts over", async () => {
  await using env = await setup();
  const { emulator, ws } = env;
  const blue = ["--compromised", "blue", "--yes", "--reload-wait", "0"];
  const green = ["--compromised", "green", "--yes", "--reload-wait", "0"];
  await killAt(ws, "incident", blue, "incident:rotate-other");
  const greenRotated = emulator.getClientSecret("green-id");

  const refused = await ws.task("incident", green);
  assert.equal(refused.code, 1, `${refused.stdout}${refused.stderr}`);
  assert.match(
    refused.stderr,
    /unfinished response .* for "blue"[\s\S]*Finish that response first[\s\S]*--compromised green --fresh/,
  );
  assert.equal(emulator.getClientSecret("green-id"), greenRotated);
  assert.equal(emulator.getClientSecret("blue-id"), BLUE_SECRET);

  const finished = await ws.task("incident", blue);
  assert.equal(finished.code, 0, `${finished.stdout}${finished.stderr}`);
  assert.match(finished.stdout, /resuming incident/);
  assert.equal(emulator.getClientSecret("green-id"), greenRotated);
  assert.equal(emulator.stats().secretRegenerations, 2);

  // --fresh overrides the refusal.
  await killAt(ws, "incident", [
    "--compromised",
    "green",
    "--yes",
    "--reload-wait",
    "0",
  ], "incident:rotate-other");
  const fresh = await ws.task("incident", [...blue, "--fresh"]);
  assert.equal(fresh.code, 0, `${fresh.stdout}${fresh.stderr}`);
});

Deno.test("incident --compromised given twice with different labels: refused before anything changes (the last one did win)", async () => {
  await using env = await setup();
  const { emulator, ws } = env;
  const envBefore = await ws.readEnv();
  for (
    const args of [
      ["--compromised", "blue", "--compromised", "green", "--yes"],
      ["--compromised=blue", "--yes", "--compromised", "GREEN"],
    ]
  ) {
    const run = await ws.task("incident", args);
    assert.equal(run.code, 2, `${run.stdout}${run.stderr}`);
    assert.match(run.stderr, /--compromised: blue and green given; .*once/);
  }
  const rotate = await ws.task("rotate", [
    "--compromised",
    "green",
    "--compromised",
    "blue",
    "--yes",
  ]);
  assert.equal(rotate.code, 2, `${rotate.stdout}${rotate.stderr}`);
  assert.equal(await ws.readEnv(), envBefore);
  assert.equal(emulator.stats().secretRegenerations, 0);
  // The same label twice names one credential: not refused.
  const same = await ws.task("incident", [
    "--compromised",
    "blue",
    "--compromised",
    "blue",
    "--dry-run",
  ]);
  assert.equal(same.code, 0, `${same.stdout}${same.stderr}`);
});

Deno.test("incident killed after promote, run again: the plan says green serves traffic now, not the leaked blue", async () => {
  await using env = await setup();
  const { ws } = env;
  const args = ["--compromised", "blue", "--yes", "--reload-wait", "0"];
  await killAt(ws, "incident", args, "incident:promote");
  const rerun = await ws.task("incident", args);
  assert.equal(rerun.code, 0, `${rerun.stdout}${rerun.stderr}`);
  const plan = rerun.stdout.split("\n").find((line) => / plan /.test(line));
  assert.match(plan ?? "", /resuming incident/);
  assert.doesNotMatch(plan ?? "", /blue \(blue-id\) serves traffic/);
  assert.match(plan ?? "", /green serves traffic now/);
});
