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
