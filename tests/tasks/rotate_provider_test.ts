/**
 * `deno task rotate --env-file .env.<provider>` on every provider other than
 * Genesys, each against its emulator, as an operator runs it
 * (tests/tasks/rotate_provider_scenario.ts sets each one up):
 *
 * - a full rotation with `--promote` while 4 services (subprocesses
 *   following the env file, calling the emulator's protected resource
 *   through `auth.fetch`) send traffic: 0 failed calls, the services switch,
 *   and for two-secret providers the old secret is revoked after their
 *   reload (one secret left);
 * - the rotation killed (SIGKILL) after its new secret was stored, then run
 *   again: it finishes by proving the stored secret, never issuing another;
 * - the admin credential missing its write permission: exit 1, the
 *   permission named, nothing changed;
 * - the provider's own limit: a third Okta or Cognito secret, Keycloak
 *   without its secret-rotation policy: refused, nothing issued;
 * - rotate without `--promote`, then `deno task promote`: `AUTH_ACTIVE`
 *   switched after a proof with the provider's scope or audience.
 */
import assert from "node:assert/strict";
import {
  envOf,
  killAt,
  PROVIDERS,
  rotateWithServices,
  writeEnv,
} from "./rotate_provider_scenario.ts";
import { createWorkspace } from "./workspace.ts";
import {
  REHEARSAL_PROVIDERS,
  startProviderRehearsal,
} from "../../src/testing/providers/rehearsal.ts";

for (const [name, start] of Object.entries(PROVIDERS)) {
  Deno.test(`rotate on ${name}: 4 services, 0 failed calls; a crash resumed without re-issuing; the admin's missing permission; the provider's limit`, async (t) => {
    await using world = await start();
    const { emulator } = world;
    await using ws = await createWorkspace();
    const file = `.env.${name}`;
    const args = [
      "--env-file",
      file,
      "--yes",
      "--promote",
      "--reload-wait",
      "2",
    ];

    await t.step(
      "a full rotation while 4 services call through auth.fetch",
      async () => {
        await writeEnv(ws, file, world.env);
        const run = await rotateWithServices(world, ws, file, args);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.match(run.stdout, /Rotation complete/);
        const after = await envOf(ws, file);
        assert.equal(after.AUTH_ACTIVE, "green");
        assert.notEqual(
          after.AUTH_CLIENT_SECRET_GREEN,
          world.env.AUTH_CLIENT_SECRET_GREEN,
        );
        const failed = run.reports.reduce((n, r) => n + r.failed, 0);
        const calls = run.reports.reduce((n, r) => n + r.ok, 0);
        assert.equal(
          failed,
          0,
          JSON.stringify(run.reports.map((r) => r.failures)),
        );
        assert.ok(calls > 0);
        for (const report of run.reports) assert.equal(report.active, "green");
        const live = world.liveSecrets();
        if (live !== undefined) {
          assert.equal(live, 1, "the old secret is revoked, the new one kept");
          assert.match(run.stdout, /retire\s+completed\s+revoked/);
        }
        assert.equal(run.secretsCreated, 1);
        if (live !== undefined) {
          assert.ok(after.AUTH_SECRET_ID_GREEN, "the new secret's id recorded");
        } else {
          // Twin clients revoke nothing: the flag is said to do nothing.
          assert.match(run.stderr, /--reload-wait has no effect here/);
        }
        console.log(
          `FIGURES ${name}: rotate ${
            Math.round(run.durationMs)
          } ms (task process; two-secret providers include the 2 s reload wait); ` +
            `token requests during the run ${run.tokenRequests} (4 services and the task), ` +
            `failed ${run.tokenFailures}; admin API requests ${run.apiRequests}; ` +
            `service calls ${calls}, failed ${failed}`,
        );
      },
    );

    await t.step(
      "killed after storing the new secret, run again: proven, never re-issued",
      async () => {
        // From the state the first rotation left: green active, blue standby.
        const start = await envOf(ws, file);
        const created = emulator.stats().secretsCreated;
        await killAt(ws, args, "publish:after");
        const mid = await envOf(ws, file);
        assert.equal(mid.AUTH_ACTIVE, "green");
        assert.notEqual(
          mid.AUTH_CLIENT_SECRET_BLUE,
          start.AUTH_CLIENT_SECRET_BLUE,
        );
        const rerun = await ws.task("rotate", args);
        assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
        assert.match(rerun.stdout, /proved it without regenerating/);
        const end = await envOf(ws, file);
        assert.equal(end.AUTH_ACTIVE, "blue");
        assert.equal(end.AUTH_CLIENT_SECRET_BLUE, mid.AUTH_CLIENT_SECRET_BLUE);
        assert.equal(emulator.stats().secretsCreated - created, 1);
        const live = world.liveSecrets();
        if (live !== undefined) {
          assert.equal(live, 1);
          assert.ok(end.AUTH_SECRET_ID_BLUE);
          assert.notEqual(end.AUTH_SECRET_ID_BLUE, end.AUTH_SECRET_ID_GREEN);
        }
      },
    );

    if (world.addUnrelatedSecret) {
      await t.step(
        "a secret no label uses: the recorded id of the old label's secret is revoked, nothing else",
        async () => {
          world.addUnrelatedSecret!();
          const live = world.liveSecrets()!;
          const run = await ws.task("rotate", args);
          assert.equal(run.code, 0, run.stdout + run.stderr);
          const end = await envOf(ws, file);
          assert.equal(end.AUTH_ACTIVE, "green");
          assert.match(
            run.stdout,
            new RegExp(`revoked ${end.AUTH_SECRET_ID_BLUE}`),
          );
          // One issued, the old label's revoked: the unrelated one stays.
          assert.equal(world.liveSecrets(), live);
        },
      );
    }

    await t.step(
      "the admin without its write permission: exit 1, the permission named",
      async () => {
        const current = await envOf(ws, file);
        await writeEnv(ws, file, { ...current, ...world.limitedAdmin });
        const created = emulator.stats().secretsCreated;
        const run = await ws.task("rotate", args);
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(run.stdout + run.stderr, world.permission);
        assert.equal(emulator.stats().secretsCreated, created);
        const after = await envOf(ws, file);
        assert.equal(after.AUTH_ACTIVE, current.AUTH_ACTIVE);
        assert.equal(
          after.AUTH_CLIENT_SECRET_GREEN,
          current.AUTH_CLIENT_SECRET_GREEN,
        );
        await writeEnv(ws, file, current);
      },
    );

    await t.step(
      "rotate without --promote, then deno task promote: AUTH_ACTIVE switched, the old secret kept",
      async () => {
        await using fresh = await start();
        const other = `${file}.promote`;
        await writeEnv(ws, other, fresh.env);
        const rotate = await ws.task("rotate", ["--env-file", other, "--yes"]);
        assert.equal(rotate.code, 0, rotate.stdout + rotate.stderr);
        const rotated = await envOf(ws, other);
        assert.equal(rotated.AUTH_ACTIVE, "blue");
        const promote = await ws.task("promote", [
          "--env-file",
          other,
          "--yes",
        ]);
        assert.equal(promote.code, 0, promote.stdout + promote.stderr);
        assert.match(promote.stdout, /AUTH_ACTIVE updated/);
        const promoted = await envOf(ws, other);
        assert.equal(promoted.AUTH_ACTIVE, "green");
        assert.equal(
          promoted.AUTH_CLIENT_SECRET_GREEN,
          rotated.AUTH_CLIENT_SECRET_GREEN,
        );
        // Promotion never revokes: the old secret of blue still lives.
        const live = fresh.liveSecrets();
        if (live !== undefined) assert.equal(live, 2);
      },
    );

    if (world.atLimit) {
      await t.step(
        "the provider's own limit: refused, nothing issued",
        async () => {
          world.atLimit!();
          const created = emulator.stats().secretsCreated;
          const current = await envOf(ws, file);
          const run = await ws.task("rotate", args);
          assert.equal(run.code, world.limitExit, run.stdout + run.stderr);
          assert.match(run.stdout + run.stderr, world.limitWords!);
          assert.equal(emulator.stats().secretsCreated, created);
          assert.deepEqual(await envOf(ws, file), current);
        },
      );
    }
  });
}

Deno.test("rotate on each rehearsal env file (deno task emulator --provider): two promoted rotations in a row, the standby's old secret replaced, the active's never; verify at rest passes", async (t) => {
  await using ws = await createWorkspace();
  for (const provider of REHEARSAL_PROVIDERS) {
    await t.step(provider, async () => {
      const rehearsal = await startProviderRehearsal(provider);
      try {
        const file = `.env.${provider}`;
        await writeEnv(ws, file, Object.fromEntries(rehearsal.settings));
        for (const [rotation, active] of [[1, "green"], [2, "blue"]] as const) {
          const run = await ws.task("rotate", [
            "--env-file",
            file,
            "--yes",
            "--promote",
            "--reload-wait",
            "0",
          ]);
          assert.equal(
            run.code,
            0,
            `rotation ${rotation}: ${run.stdout}\n${run.stderr}`,
          );
          const env = await envOf(ws, file);
          assert.equal(env.AUTH_ACTIVE, active);
        }
        const verified = await ws.task("verify", ["--env-file", file]);
        const env = await envOf(ws, file);
        const twoSecrets = provider !== "auth0";
        // Two-secret providers revoke the old active's secret after the
        // reload wait: at rest the standby holds no secret, which verify
        // reports as expected.
        assert.equal(
          verified.code,
          0,
          `${verified.stdout}\n${verified.stderr}`,
        );
        if (twoSecrets) {
          assert.match(verified.stdout, /no second secret at rest/);
          assert.match(verified.stdout, /the next rotation issues it/);
        }
        assert.equal(env.AUTH_ACTIVE, "blue");
      } finally {
        await rehearsal.emulator.close();
      }
    });
  }
});
