/**
 * `deno task incident` on the env file of every provider other than Genesys,
 * each against its emulator (the worlds of
 * tests/tasks/rotate_provider_scenario.ts: blue active, the standby at rest):
 *
 * - `--kill-tokens` refused before anything changes, naming what the
 *   provider does with tokens already issued;
 * - blue's secret leaked while blue serves: killed (SIGKILL) once the clean
 *   secret of green is issued, stored and proven, then run again: resumed,
 *   the clean secret never issued again, green promoted; two-secret
 *   providers revoke blue's leaked secret by id (one secret left, the leaked
 *   one refused), Auth0 regenerates blue's client;
 * - Okta, Entra ID, Cognito: the standby's live secret (a rotation without
 *   `--promote`) leaked: revoked by its recorded id, nothing issued;
 * - `deno task verify` at rest afterwards: exit 0, the standby reported as
 *   holding no secret (two-secret providers); a recorded id of the active
 *   label the provider does not list: exit 1.
 */
import assert from "node:assert/strict";
import {
  envOf,
  killAt,
  PROVIDERS,
  writeEnv,
} from "./rotate_provider_scenario.ts";
import { createWorkspace } from "./workspace.ts";

for (const [name, start] of Object.entries(PROVIDERS)) {
  Deno.test(`incident on ${name}: --kill-tokens refused; killed after rotate-other, run again: the clean secret issued once, the leaked one revoked or regenerated; verify at rest`, async (t) => {
    await using world = await start();
    const { emulator } = world;
    await using ws = await createWorkspace();
    const file = `.env.${name}`;
    await writeEnv(ws, file, world.env);
    const args = [
      "--compromised",
      "blue",
      "--env-file",
      file,
      "--yes",
      "--reload-wait",
      "0",
    ];
    const twoSecrets = world.liveSecrets() !== undefined;

    await t.step("--kill-tokens: refused, nothing changed", async () => {
      const created = emulator.stats().secretsCreated;
      const run = await ws.task("incident", [...args, "--kill-tokens"]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /cannot invalidate the tokens already issued/);
      assert.match(run.stderr, /until they expire/);
      assert.equal(emulator.stats().secretsCreated, created);
      assert.deepEqual(await envOf(ws, file), world.env);
    });

    await t.step(
      "killed after rotate-other, run again: resumed without issuing the clean secret again",
      async () => {
        const created = emulator.stats().secretsCreated;
        await killAt(ws, args, "incident:rotate-other", "incident");
        const mid = await envOf(ws, file);
        assert.equal(mid.AUTH_ACTIVE, "blue");
        assert.notEqual(
          mid.AUTH_CLIENT_SECRET_GREEN,
          world.env.AUTH_CLIENT_SECRET_GREEN,
        );
        assert.equal(emulator.stats().secretsCreated - created, 1);

        const rerun = await ws.task("incident", args);
        assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
        assert.match(rerun.stdout, /resuming incident/);
        assert.match(rerun.stdout, /rotate-other\s+skipped/);
        const end = await envOf(ws, file);
        assert.equal(end.AUTH_ACTIVE, "green");
        assert.equal(
          end.AUTH_CLIENT_SECRET_GREEN,
          mid.AUTH_CLIENT_SECRET_GREEN,
        );
        assert.match(
          rerun.stdout,
          /Tokens issued with the leaked secret: .*until they expire/,
        );
        if (twoSecrets) {
          // The clean secret once over both runs, none for blue: its leaked
          // secret revoked by id, the client left with green's alone.
          assert.equal(emulator.stats().secretsCreated - created, 1);
          assert.equal(world.liveSecrets(), 1);
          assert.match(
            rerun.stdout,
            /regenerate\s+completed\s+revoked \S+, the leaked secret of blue/,
          );
          assert.match(
            rerun.stdout,
            /verify\s+completed\s+the token endpoint refuses the leaked secret of blue/,
          );
          assert.ok(end.AUTH_SECRET_ID_GREEN);
        } else {
          // Twin clients: green rotated once, blue's client regenerated once.
          assert.equal(emulator.stats().secretsCreated - created, 2);
          assert.notEqual(
            end.AUTH_CLIENT_SECRET_BLUE,
            world.env.AUTH_CLIENT_SECRET_BLUE,
          );
          assert.match(rerun.stdout, /verify\s+completed\s+blue got a token/);
        }
      },
    );

    if (twoSecrets && name !== "keycloak") {
      // Keycloak's standby secret at that point is its main one, which it
      // never deletes (the adapter refuses): not this case.
      await t.step(
        "the standby's live secret leaked: revoked by its recorded id at once, green keeps serving",
        async () => {
          const rotate = await ws.task("rotate", ["--env-file", file, "--yes"]);
          assert.equal(rotate.code, 0, rotate.stdout + rotate.stderr);
          const rotated = await envOf(ws, file);
          assert.equal(rotated.AUTH_ACTIVE, "green");
          assert.ok(rotated.AUTH_SECRET_ID_BLUE);
          assert.equal(world.liveSecrets(), 2);
          const created = emulator.stats().secretsCreated;
          const run = await ws.task("incident", args);
          assert.equal(run.code, 0, run.stdout + run.stderr);
          assert.match(run.stdout, /blue \(\S+\) is the standby: revoke/);
          assert.match(
            run.stdout,
            new RegExp(
              `revoked ${rotated.AUTH_SECRET_ID_BLUE}, the leaked secret of blue`,
            ),
          );
          assert.equal(world.liveSecrets(), 1);
          assert.equal(emulator.stats().secretsCreated, created);
          const end = await envOf(ws, file);
          assert.equal(end.AUTH_ACTIVE, "green");
          assert.equal(
            end.AUTH_CLIENT_SECRET_GREEN,
            rotated.AUTH_CLIENT_SECRET_GREEN,
          );
        },
      );
    }

    await t.step("verify at rest: exit 0", async () => {
      const verified = await ws.task("verify", ["--env-file", file]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      if (!twoSecrets) return;
      assert.match(verified.stdout, /no second secret at rest/);
      assert.match(verified.stdout, /^blue\s+\S+\s+none\s/m);
      // A recorded id of the active label the provider does not list fails.
      const env = await envOf(ws, file);
      await writeEnv(ws, file, { ...env, AUTH_SECRET_ID_GREEN: "gone0id" });
      const missing = await ws.task("verify", ["--env-file", file]);
      assert.equal(missing.code, 1, missing.stdout + missing.stderr);
      assert.match(
        missing.stdout,
        /AUTH_SECRET_ID_GREEN names gone0id, which .* does not list/,
      );
      await writeEnv(ws, file, env);
    });
  });
}
