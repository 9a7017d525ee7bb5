/**
 * Crash tests of `rotate` and `promote`: the process is killed with SIGKILL
 * at every failpoint (between and inside phases), then the same command is
 * run again. Afterwards: the active credential works, the completed
 * rotation regenerated once (twice only when killed with the new secret in
 * hand but not yet stored, the one window no program can close), the
 * working secret is in `.env`, and the re-run says what it resumed.
 */
import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import {
  ROTATION_FAILPOINTS,
  type RotationFailpoint,
} from "../../src/rotation/staged_rotation.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  emulatorConfig,
  FAILPOINT_VAR,
  withFailpoint,
  type Workspace,
} from "./workspace.ts";

const BLUE_SECRET = "blue-CANARY-c7a1";
const GREEN_SECRET = "green-CANARY-0d4e";
const EDIT = ["oauth:client:view", "oauth:client:edit"];

async function tokenWorks(
  emulator: GenesysEmulator,
  clientId: string,
  secret: string,
): Promise<boolean> {
  const response = await fetch(emulator.tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${clientId}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  await response.body?.cancel();
  return response.ok;
}

async function setup() {
  const emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: BLUE_SECRET, permissions: EDIT },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
    ],
    revokeTokensOnRegenerate: true,
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

/** Starts the command at a failpoint, waits for it, and kills it with SIGKILL. */
async function killAt(
  ws: Workspace,
  task: "rotate" | "promote",
  args: string[],
  point: string,
): Promise<void> {
  const run = ws.spawn(withFailpoint(task, args), { [FAILPOINT_VAR]: point });
  try {
    await run.waitFor(new RegExp(`failpoint ${point} reached`), 15_000);
  } finally {
    try {
      run.child.kill("SIGKILL");
    } catch {
      // It ended by itself: the wait above says why.
    }
    await run.finished();
  }
}

async function envValues(ws: Workspace): Promise<Record<string, string>> {
  return readEnvValues(await ws.readEnv());
}

const RESUME_WORDS: Record<RotationFailpoint, RegExp> = {
  "plan:after": /regenerate "green"/,
  "regenerate:before": /stopped before its new secret was stored/,
  "regenerate:after":
    /stopped before its new secret was stored; regenerating again/,
  "publish:after":
    /Rotation resumed and complete[\s\S]*new secret was stored; proved it without regenerating/,
  "test:inside": /Rotation resumed and complete/,
  "test:after": /Rotation resumed and complete/,
  "promote:after":
    /Rotation resumed and complete[\s\S]*already promoted; finished it/,
  "done:before": /Rotation resumed and complete/,
};

Deno.test("crash tests: rotate --yes --promote killed with SIGKILL at every failpoint, then re-run", async (t) => {
  for (const point of ROTATION_FAILPOINTS) {
    await t.step(`killed at ${point}`, async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const args = ["--yes", "--promote"];
      await killAt(ws, "rotate", args, point);

      // The active credential (whatever .env names) works even right after the kill.
      const mid = await envValues(ws);
      const midActive = mid.GENESYS_ACTIVE;
      assert.ok(
        await tokenWorks(
          emulator,
          `${midActive}-id`,
          mid[`GENESYS_CLIENT_SECRET_${midActive.toUpperCase()}`],
        ),
        `after the kill at ${point}, ${midActive} does not work`,
      );

      // The same command again.
      const rerun = await ws.task("rotate", args);
      assert.equal(rerun.code, 0, `${point}: ${rerun.stdout}\n${rerun.stderr}`);
      assert.match(rerun.stdout, RESUME_WORDS[point], point);

      const after = await envValues(ws);
      assert.equal(after.GENESYS_ACTIVE, "green");
      assert.equal(
        after.GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
        "the working secret is in .env",
      );
      assert.ok(
        await tokenWorks(
          emulator,
          "green-id",
          after.GENESYS_CLIENT_SECRET_GREEN,
        ),
      );
      // Blue, the active credential when the rotation started, is never regenerated.
      assert.equal(emulator.getClientSecret("blue-id"), BLUE_SECRET);
      assert.equal(
        emulator.stats().secretRegenerations,
        point === "regenerate:after" ? 2 : 1,
        `${point}: regenerations`,
      );
      const journal = JSON.parse(
        await Deno.readTextFile(`${ws.envPath}.rotation.json`),
      );
      assert.equal(journal.phase, "done");
    });
  }

  await t.step(
    "promote killed after writing GENESYS_ACTIVE, then re-run: a no-op, never a switch back",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const rotated = await ws.task("rotate", ["--yes"]);
      assert.equal(rotated.code, 0, rotated.stderr);
      await killAt(ws, "promote", ["--yes"], "promote:after");
      assert.equal((await envValues(ws)).GENESYS_ACTIVE, "green");
      const rerun = await ws.task("promote", ["--yes"]);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.match(
        rerun.stdout,
        /"green" is already active; nothing was changed/,
      );
      assert.equal((await envValues(ws)).GENESYS_ACTIVE, "green");
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );
});
