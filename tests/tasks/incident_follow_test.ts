/**
 * `deno task incident` on one host while a service follows `.env`
 * (`envFileSource`, tests/runbook/runbook_service.ts) and calls the Platform
 * API continuously: the compromised credential is disabled or regenerated
 * only after the service has had `--reload-wait` to load the other label's
 * new secret and switch to it, so it fails no request. Then the incident is
 * killed with SIGKILL after each of its steps, or interrupted with SIGINT
 * while it waits, and the same command is run again: it finishes, and the
 * service still fails nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import { INCIDENT_STEPS } from "../../src/rotation/incident.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  emulatorConfig,
  FAILPOINT_VAR,
  type TaskRun,
  withFailpoint,
  type Workspace,
} from "./workspace.ts";
import { startFollowingService } from "../support/following_service.ts";

const EDIT = ["oauth:client:view", "oauth:client:edit"];
const LEAKED = "blue-LEAKED-f00d";

async function envValues(ws: Workspace): Promise<Record<string, string>> {
  return readEnvValues(await ws.readEnv());
}

/** The state an incident must leave: the other label active, every secret in .env the live one. */
async function assertSettled(
  ws: Workspace,
  emulator: GenesysEmulator,
  active: string,
  what: string,
): Promise<void> {
  const values = await envValues(ws);
  assert.equal(values.GENESYS_ACTIVE, active, what);
  for (const label of ["blue", "green"]) {
    assert.equal(
      values[`GENESYS_CLIENT_SECRET_${label.toUpperCase()}`],
      emulator.getClientSecret(`${label}-id`),
      `${what}: .env holds ${label}'s live secret`,
    );
    assert.equal(emulator.getClientState(`${label}-id`), "active", what);
  }
}

function args(compromised: string): string[] {
  return ["--compromised", compromised, "--kill-tokens", "--yes"];
}

/** Runs the incident directly (its own process, so a signal reaches it). */
function spawnIncident(
  ws: Workspace,
  compromised: string,
  failpoint?: string,
) {
  return ws.spawn(
    withFailpoint("incident", args(compromised)),
    failpoint ? { [FAILPOINT_VAR]: failpoint } : {},
  );
}

Deno.test({
  name:
    "incident while a service follows .env: 0 failed requests; killed after every step, or interrupted while it waits, and run again: finished, still 0 failed",
  sanitizeResources: false,
  async fn(t) {
    await using emulator = startGenesysEmulator({
      clients: [
        { clientId: "blue-id", secret: LEAKED },
        { clientId: "green-id", secret: "green-CANARY-5e5e" },
        {
          clientId: "admin-id",
          secret: "admin-CANARY-5e5e",
          permissions: EDIT,
        },
      ],
      // Stricter than Genesys documents: a regenerated client's tokens die
      // at once, so a service still on it would fail.
      revokeTokensOnRegenerate: true,
    });
    await using ws = await createWorkspace();
    await ws.writeEnv({
      ...emulatorConfig(emulator, {
        blue: LEAKED,
        green: "green-CANARY-5e5e",
      }),
      GENESYS_ADMIN_CLIENT_ID: "admin-id",
      GENESYS_ADMIN_CLIENT_SECRET: "admin-CANARY-5e5e",
    });
    const service = await startFollowingService(ws, emulator);
    let stopped = false;
    const runs: TaskRun[] = [];
    try {
      let active = "blue";
      await t.step("the active credential leaked", async () => {
        const run = await ws.task("incident", args(active));
        runs.push(run);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        // The promotion waited for the service before blue was disabled.
        assert.match(
          run.stdout,
          /promote\s+completed\s+green serves traffic now; services that follow \.env re-read it within 3\.0 s \(--reload-wait\): waited [23]\.\d s/,
        );
        const at = (step: string) =>
          Number(
            run.stdout.match(
              new RegExp(`^\\+(\\d+\\.\\d+) s\\s+${step}\\s`, "m"),
            )
              ?.[1],
          );
        assert.ok(at("disable") - at("rotate-other") >= 2.9, run.stdout);
        active = "green";
        await assertSettled(ws, emulator, active, "after the incident");
      });

      for (const step of INCIDENT_STEPS.filter((s) => s !== "verify")) {
        await t.step(`killed after ${step}, then run again`, async () => {
          const compromised = active;
          const other = compromised === "blue" ? "green" : "blue";
          const point = `incident:${step}`;
          const killed = spawnIncident(ws, compromised, point);
          try {
            await killed.waitFor(new RegExp(`failpoint ${point} reached`));
          } catch (error) {
            const ended = await killed.finished();
            throw new Error(`${step}: ${ended.stdout}${ended.stderr}`, {
              cause: error,
            });
          }
          killed.child.kill("SIGKILL");
          runs.push(await killed.finished());
          // Once rotated, the clean credential is never regenerated again:
          // the re-run resumes from the incident journal.
          const otherBefore = emulator.getClientSecret(`${other}-id`);
          const rerun = await ws.task("incident", args(compromised));
          runs.push(rerun);
          assert.equal(
            rerun.code,
            0,
            `${step}: ${rerun.stdout}${rerun.stderr}`,
          );
          assert.match(rerun.stdout, /resuming incident/, step);
          if (step !== "plan") {
            assert.equal(
              emulator.getClientSecret(`${other}-id`),
              otherBefore,
              `${step}: ${other} was regenerated again`,
            );
          }
          assert.match(rerun.stdout, /Incident response complete/);
          active = other;
          await assertSettled(ws, emulator, active, `killed after ${step}`);
        });
      }

      await t.step(
        "interrupted (SIGINT) while it waits for the service, then run again",
        async () => {
          const compromised = active;
          const other = compromised === "blue" ? "green" : "blue";
          const secretBefore = emulator.getClientSecret(`${compromised}-id`);
          const interrupted = spawnIncident(ws, compromised);
          await interrupted.waitFor(/propagate completed/);
          interrupted.child.kill("SIGINT");
          const outcome = await interrupted.finished();
          runs.push(outcome);
          assert.equal(outcome.code, 130, outcome.stdout + outcome.stderr);
          assert.match(
            outcome.stderr,
            /Interrupted \(Ctrl-C or SIGTERM\) after the step "(propagate|promote)"\.\nState: .*(blue|green) is unchanged \(not disabled, not regenerated\)\.\nNext: run the same command again/,
          );
          // Nothing of the compromised credential was touched.
          assert.equal(
            emulator.getClientSecret(`${compromised}-id`),
            secretBefore,
          );
          assert.equal(emulator.getClientState(`${compromised}-id`), "active");
          const rerun = await ws.task("incident", args(compromised));
          runs.push(rerun);
          assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
          active = other;
          await assertSettled(ws, emulator, active, "after the interrupt");
        },
      );

      stopped = true;
      const report = await service.stop();
      assert.equal(
        report.failed,
        0,
        `failed requests: ${report.failures.join("; ")}`,
      );
      assert.ok(report.ok > 100, `only ${report.ok} requests`);
      assert.ok(
        !report.switches.some((s) => s.startsWith("failover")),
        `no failover: ${report.switches.join(", ")}`,
      );
      for (const run of runs) {
        const output = run.stdout + run.stderr;
        for (const label of ["blue", "green"]) {
          assert.ok(
            !output.includes(emulator.getClientSecret(`${label}-id`)),
            "a secret in the output",
          );
        }
        assert.ok(!output.includes(LEAKED));
      }
      console.log(
        `incident with a service following .env: ${report.ok} requests, ${report.failed} failed, switches ${
          report.switches.join(", ")
        }`,
      );
    } finally {
      if (!stopped) await service.stop().catch(() => undefined);
    }
  },
});
