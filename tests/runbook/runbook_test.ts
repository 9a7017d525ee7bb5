/**
 * The runbook (docs/runbook.md), run as written: the command lines between the
 * `runbook:begin` and `runbook:end` markers, twice (rotate green, promote
 * green, rotate blue, promote blue), against the emulator, while a service
 * process using `envFileSource` sends continuous traffic. Then one more
 * `rotate` is killed with SIGKILL mid-run and resumed by running the same
 * line again. Every request of the service must succeed.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";
import { createWorkspace, emulatorConfig } from "../tasks/workspace.ts";
import { startFollowingService } from "../support/following_service.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The wait the runbook promises for services that follow the env file. */
const FOLLOW_WAIT_MS = 2_500;

/** One line of the runbook: a task with its arguments, or a wait. */
type Step = { kind: "task"; line: string; task: string; args: string[] } | {
  kind: "wait";
  line: string;
};

/** The runbook's lines, parsed from docs/runbook.md so the two cannot drift apart. */
export async function readRunbook(): Promise<Step[]> {
  const runbook = await Deno.readTextFile(`${ROOT}docs/runbook.md`);
  const block = runbook.match(
    /<!-- runbook:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- runbook:end -->/,
  );
  if (!block) throw new Error("docs/runbook.md has no runbook block");
  return block[1].split("\n").filter((line) => line.trim() !== "").map(
    (line): Step => {
      if (line.startsWith("# wait")) return { kind: "wait", line };
      const words = line.trim().split(/\s+/);
      if (words[0] !== "deno" || words[1] !== "task") {
        throw new Error(`not a deno task line: ${line}`);
      }
      return { kind: "task", line, task: words[2], args: words.slice(3) };
    },
  );
}

Deno.test("the runbook (docs/runbook.md), as written: two full cycles under traffic, 0 failed requests, plus a killed and resumed rotate", async () => {
  const runbook = await readRunbook();
  assert.deepEqual(
    runbook.filter((s) => s.kind === "task").map((s) =>
      (s as { task: string }).task
    ),
    ["verify", "rotate", "rotate", "promote", "verify"],
  );
  await using emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: "blue-CANARY-r1" },
      { clientId: "green-id", secret: "green-CANARY-r1" },
      {
        clientId: "admin-id",
        secret: "admin-CANARY-r1",
        permissions: ["oauth:client:view", "oauth:client:edit"],
      },
    ],
    // Stricter than Genesys documents: a regenerated client's tokens die at
    // once, so a service still on it would fail.
    revokeTokensOnRegenerate: true,
  });
  await using ws = await createWorkspace();
  await ws.writeEnv({
    ...emulatorConfig(emulator, {
      blue: "blue-CANARY-r1",
      green: "green-CANARY-r1",
    }),
    GENESYS_ADMIN_CLIENT_ID: "admin-id",
    GENESYS_ADMIN_CLIENT_SECRET: "admin-CANARY-r1",
  });

  await using service = await startFollowingService(ws, emulator);
  const timings: string[] = [];
  const run = async (step: Step) => {
    if (step.kind === "wait") {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_WAIT_MS));
      return;
    }
    const started = performance.now();
    const result = await ws.task(step.task as "rotate", step.args);
    timings.push(
      `${step.line}: ${Math.round(performance.now() - started)} ms`,
    );
    assert.equal(
      result.code,
      0,
      `${step.line}:\n${result.stdout}\n${result.stderr}`,
    );
  };
  const activeNow = async () =>
    readEnvValues(await ws.readEnv()).GENESYS_ACTIVE;

  for (const expected of ["green", "blue"]) {
    for (const step of runbook) await run(step);
    assert.equal(await activeNow(), expected);
  }
  assert.equal(emulator.stats().secretRegenerations, 2);

  // One more rotate (green, the standby now), killed with SIGKILL mid-run:
  // after its new secret reached .env, while it is still proving it.
  const rotateStep = runbook.find((s) =>
    s.kind === "task" && s.task === "rotate" && s.args.includes("--yes")
  ) as Extract<Step, { kind: "task" }>;
  const before = readEnvValues(await ws.readEnv()).GENESYS_CLIENT_SECRET_GREEN;
  const regenerations = emulator.stats().secretRegenerations;
  emulator.injectApiFaults({ kind: "delay", ms: 100 }, 2);
  const killed = ws.spawn([
    "task",
    "-q",
    rotateStep.task,
    ...rotateStep.args,
  ]);
  // Green refuses tokens from the moment it is regenerated, so the
  // proof is still retrying when the kill lands.
  while (emulator.stats().secretRegenerations === regenerations) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  emulator.setClientState("green-id", "inactive");
  await killed.waitFor(/test: attempt 1 failed/);
  // `deno task` runs the rotation in a child process: kill that one, the
  // holder of the env file's lock, then the task runner.
  const holder = JSON.parse(await Deno.readTextFile(`${ws.envPath}.lock`));
  Deno.kill(holder.pid, "SIGKILL");
  killed.child.kill("SIGKILL");
  const outcome = await killed.finished();
  assert.notEqual(outcome.code, 0);
  const stored = readEnvValues(await ws.readEnv()).GENESYS_CLIENT_SECRET_GREEN;
  assert.notEqual(
    stored,
    before,
    "the new secret was stored before the kill",
  );
  assert.equal(stored, emulator.getClientSecret("green-id"));
  emulator.setClientState("green-id", "active");

  const resumed = await ws.task(rotateStep.task as "rotate", rotateStep.args);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /Rotation resumed and complete/);
  assert.equal(emulator.stats().secretRegenerations, regenerations + 1);
  for (
    const step of runbook.slice(
      runbook.findIndex((s) => s === rotateStep) + 1,
    )
  ) {
    await run(step);
  }
  assert.equal(await activeNow(), "green");

  const report = await service.stop();
  assert.equal(
    report.failed,
    0,
    `failed requests: ${report.failures.join("; ")}`,
  );
  assert.ok(report.ok > 100, `only ${report.ok} requests`);
  assert.deepEqual(report.switches, [
    "blue->green",
    "green->blue",
    "blue->green",
  ]);
  assert.equal(report.active, "green");
  console.log(timings.join("\n"));
  console.log(
    `runbook: ${report.ok} service requests, ${report.failed} failed, switches ${
      report.switches.join(", ")
    }`,
  );
});
