/**
 * `deno task setup --from blue` on every provider other than Genesys, each
 * against its emulator (the worlds of tests/tasks/rotate_provider_scenario.ts,
 * green not configured yet):
 *
 * - Okta, Entra ID, Cognito: a second secret of the one client issued for
 *   green and recorded (AUTH_CLIENT_ID_GREEN, AUTH_CLIENT_SECRET_GREEN,
 *   AUTH_SECRET_ID_GREEN, and blue's id), verify then passes with both
 *   labels working, a second setup refuses without --force, and a promoted
 *   rotation runs from there, leaving one secret;
 * - Keycloak and Auth0: refused (exit 2) with the reason and the manual
 *   step, nothing issued, the env file unchanged.
 */
import assert from "node:assert/strict";
import { envOf, PROVIDERS, writeEnv } from "./rotate_provider_scenario.ts";
import { createWorkspace } from "./workspace.ts";

const REFUSED: Record<string, RegExp> = {
  keycloak: /Keycloak keeps a second secret only as the "rotated" one/,
  auth0: /Create it yourself: Applications › Create Application/,
};

for (const [name, start] of Object.entries(PROVIDERS)) {
  const refusal = REFUSED[name];
  Deno.test(
    `setup --from blue on ${name}: ${
      refusal
        ? "refused with the reason and the manual step"
        : "a second secret issued and recorded; verify passes; a rotation follows"
    }`,
    async () => {
      await using world = await start();
      const { emulator } = world;
      await using ws = await createWorkspace();
      const file = `.env.${name}`;
      const {
        AUTH_CLIENT_ID_GREEN: _id,
        AUTH_CLIENT_SECRET_GREEN: _secret,
        ...initial
      } = world.env;
      await writeEnv(ws, file, initial);
      const created = emulator.stats().secretsCreated;
      const args = ["--from", "blue", "--env-file", file, "--yes"];
      if (!refusal) {
        const dry = await ws.task("setup", [...args, "--dry-run"]);
        assert.equal(dry.code, 0, dry.stdout + dry.stderr);
        assert.match(dry.stdout, /Dry run: nothing was issued/);
        assert.match(dry.stdout, /would issue a second secret/);
        assert.equal(emulator.stats().secretsCreated, created);
        assert.deepEqual(await envOf(ws, file), initial);
      }
      const run = await ws.task("setup", args);
      if (refusal) {
        assert.equal(run.code, 2, run.stdout + run.stderr);
        assert.match(run.stderr, refusal);
        assert.match(run.stderr, /Nothing was changed/);
        assert.equal(emulator.stats().secretsCreated, created);
        assert.deepEqual(await envOf(ws, file), initial);
        return;
      }
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /Second secret issued/);
      assert.equal(emulator.stats().secretsCreated - created, 1);
      assert.equal(world.liveSecrets(), 2);
      const env = await envOf(ws, file);
      assert.equal(env.AUTH_CLIENT_ID_GREEN, env.AUTH_CLIENT_ID_BLUE);
      assert.ok(env.AUTH_CLIENT_SECRET_GREEN);
      assert.notEqual(
        env.AUTH_CLIENT_SECRET_GREEN,
        env.AUTH_CLIENT_SECRET_BLUE,
      );
      assert.ok(env.AUTH_SECRET_ID_GREEN);
      assert.ok(env.AUTH_SECRET_ID_BLUE, "blue's id, the client's one secret");
      assert.notEqual(env.AUTH_SECRET_ID_GREEN, env.AUTH_SECRET_ID_BLUE);

      const verified = await ws.task("verify", ["--env-file", file]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /^green\s+\S+\s+ok\s/m);

      const again = await ws.task("setup", args);
      assert.equal(again.code, 2, again.stdout + again.stderr);
      assert.match(again.stderr, /AUTH_CLIENT_SECRET_GREEN is already set/);
      assert.equal(emulator.stats().secretsCreated - created, 1);

      const rotated = await ws.task("rotate", [
        "--env-file",
        file,
        "--yes",
        "--promote",
        "--reload-wait",
        "0",
      ]);
      assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
      assert.equal((await envOf(ws, file)).AUTH_ACTIVE, "green");
      // Green's set-up secret went before the new one was issued, blue's
      // after the promotion: one secret left, on Entra ID (no limit) too.
      assert.equal(world.liveSecrets(), 1);
    },
  );
}

Deno.test("setup --from blue --force on entra (no limit of two): green's replaced secret is revoked before the new one is issued, not left valid with nobody holding it; blue's never", async () => {
  await using world = await PROVIDERS.entra();
  await using ws = await createWorkspace();
  const file = ".env.entra";
  const {
    AUTH_CLIENT_ID_GREEN: _id,
    AUTH_CLIENT_SECRET_GREEN: _secret,
    ...initial
  } = world.env;
  await writeEnv(ws, file, initial);
  const args = ["--from", "blue", "--env-file", file, "--yes"];
  const first = await ws.task("setup", args);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const before = await envOf(ws, file);
  const dry = await ws.task("setup", [...args, "--force", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  assert.match(
    dry.stdout,
    new RegExp(`would revoke ${before.AUTH_SECRET_ID_GREEN}`),
  );
  assert.equal(world.liveSecrets(), 2);
  const forced = await ws.task("setup", [...args, "--force"]);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  const after = await envOf(ws, file);
  assert.notEqual(after.AUTH_SECRET_ID_GREEN, before.AUTH_SECRET_ID_GREEN);
  assert.equal(after.AUTH_SECRET_ID_BLUE, before.AUTH_SECRET_ID_BLUE);
  assert.equal(world.liveSecrets(), 2, "blue's and green's new one");
  const verified = await ws.task("verify", ["--env-file", file]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});

Deno.test("setup --from blue --force on entra with the labels' recorded ids swapped: blue's secret (named as green's) is kept and said so, blue keeps working", async () => {
  await using world = await PROVIDERS.entra();
  await using ws = await createWorkspace();
  const file = ".env.entra";
  const {
    AUTH_CLIENT_ID_GREEN: _id,
    AUTH_CLIENT_SECRET_GREEN: _secret,
    ...initial
  } = world.env;
  await writeEnv(ws, file, initial);
  const args = ["--from", "blue", "--env-file", file, "--yes"];
  const first = await ws.task("setup", args);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const env = await envOf(ws, file);
  await writeEnv(ws, file, {
    ...env,
    AUTH_SECRET_ID_BLUE: env.AUTH_SECRET_ID_GREEN,
    AUTH_SECRET_ID_GREEN: env.AUTH_SECRET_ID_BLUE,
  });
  const forced = await ws.task("setup", [...args, "--force"]);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(
    forced.stdout,
    new RegExp(`replaced secret ${env.AUTH_SECRET_ID_BLUE} is kept`),
  );
  // Blue's secret still gets a token (verify fails on the swapped ids).
  const verified = await ws.task("verify", ["--env-file", file]);
  assert.match(
    verified.stdout,
    /^blue \(active\)\s+\S+\s+ok\s/m,
    verified.stdout,
  );
  assert.equal(world.liveSecrets(), 3);
});
