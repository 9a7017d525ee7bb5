/**
 * `deno task rotate --promote` on Okta's emulator (two secrets on one
 * client) while services that follow the env file announce their presence
 * (`followSource`'s `presence`), so the revoke gate has evidence rather
 * than a wait:
 *
 * - 3 services: 0 failed calls, the old secret revoked only once they
 *   serve with the new one and their tokens of the old one expired (the
 *   gate's line names them);
 * - a 4th process that never switches (it follows a stale copy of the env
 *   file and announces itself beside the real one): the gate refuses with
 *   REVOKE_GATE_IN_USE naming it, nothing is revoked, the others see 0
 *   failed calls; once it stops, the same command only revokes.
 *
 * Tokens live 3 s here (Okta's default is an hour) so that the gate's wait
 * for them stays short.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { presenceDirectoryOf } from "../../src/sources/presence.ts";
import { startFollowingService } from "../support/following_service.ts";
import {
  envOf,
  oktaWorld,
  rotateWithServices,
  writeEnv,
} from "./rotate_provider_scenario.ts";
import { createWorkspace } from "./workspace.ts";

const SERVICE = fileURLToPath(
  new URL("./provider_service.ts", import.meta.url),
);

Deno.test("rotate on okta with services announcing their presence: revoked once none uses the old secret; refused while one still does", async (t) => {
  await using world = await oktaWorld(3);
  await using ws = await createWorkspace();
  const file = ".env.okta";
  const args = [
    "--env-file",
    file,
    "--yes",
    "--promote",
    "--reload-wait",
    "1",
    "--gate-timeout",
    "5",
  ];
  const directory = () => presenceDirectoryOf(`${ws.dir}/${file}`);
  const noCallFailed = (reports: readonly { failures: string[] }[]) =>
    assert.equal(
      reports.reduce((n, r) => n + r.failures.length, 0),
      0,
      JSON.stringify(reports.map((r) => r.failures)),
    );

  await t.step(
    "3 services: 0 failed calls, the old secret revoked after they switched",
    async () => {
      await writeEnv(ws, file, world.env);
      const run = await rotateWithServices(world, ws, file, args, 3, true);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /retire\s+completed\s+revoked/);
      assert.match(
        run.stdout,
        /presence: 3 live process\(es\) \(pid \d+, pid \d+, pid \d+\), none serves with the old secret of "blue"/,
      );
      // Their last tokens of the old secret (3 s, refreshed at half-life)
      // outlive the 1 s reload wait: the gate waited for them.
      assert.match(
        run.stderr,
        /revoke gate: waiting .*served a token of it that lives until/,
      );
      assert.match(run.stdout, /none serves with the old secret .*\(waited/);
      assert.equal(world.liveSecrets(), 1);
      noCallFailed(run.reports);
      for (const report of run.reports) {
        assert.equal(report.active, "green");
        assert.ok(report.ok > 0);
        assert.ok(!report.warnings.includes("PRESENCE_FAILED"));
      }
      assert.deepEqual(
        [...Deno.readDirSync(directory())],
        [],
        "each service removed its presence when it stopped",
      );
    },
  );

  await t.step(
    "a process that never switches: refused, nothing revoked; once it stops the same command only revokes",
    async () => {
      // A copy the rotation never rewrites: its follower keeps green.
      const stale = `${file}.copy`;
      await writeEnv(ws, stale, await envOf(ws, file));
      const settings = JSON.stringify({
        tokenUrl: world.emulator.tokenUrl,
        ...world.request,
        presence: { directory: directory(), intervalMs: 500 },
      });
      const lagging = await startFollowingService(ws, world.emulator, {
        script: SERVICE,
        args: [`${ws.dir}/${stale}`, world.emulator.resourceUrl, settings],
        writable: true,
      });
      try {
        const run = await rotateWithServices(
          world,
          ws,
          file,
          [...args, "--json"],
          3,
          true,
        );
        assert.equal(run.code, 1, run.stdout + run.stderr);
        const { error } = JSON.parse(run.stdout) as {
          error: { code: string; causeCode: string; message: string };
        };
        assert.equal(error.causeCode, "REVOKE_GATE_IN_USE");
        assert.match(error.message, /failed in phase retire/);
        assert.match(
          error.message,
          /pid \d+ serves with it \("green" active\)/,
        );
        assert.match(error.message, /restart pid \d+/);
        assert.match(run.stderr, /revoke gate: waiting/);
        assert.equal(world.liveSecrets(), 2, "the old secret was kept");
        assert.equal((await envOf(ws, file)).AUTH_ACTIVE, "blue");
        noCallFailed(run.reports);
        for (const report of run.reports) assert.equal(report.active, "blue");
      } finally {
        const report = await lagging.stop();
        noCallFailed([report]);
        assert.equal(report.active, "green");
      }
      const rerun = await ws.task("rotate", args);
      assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
      assert.match(rerun.stdout, /retire\s+completed\s+revoked/);
      assert.match(rerun.stdout, /no live process announces its presence/);
      assert.equal(world.liveSecrets(), 1);
    },
  );
});
