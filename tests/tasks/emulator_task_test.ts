import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import { createWorkspace, type Workspace } from "./workspace.ts";
import type { EmulatorStarted } from "../../tasks/emulator.ts";

async function tokenResponse(
  tokenUrl: string,
  id: string,
  secret: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${id}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("deno task emulator --blue-only --token-lifetime: setup and incident can be rehearsed on it", async () => {
  await using ws = await createWorkspace();
  const run = ws.spawn([
    "task",
    "-q",
    "emulator",
    "--port",
    "0",
    "--blue-only",
    "--token-lifetime",
    "600",
    "--token-rate-limit",
    "0",
  ]);
  try {
    await run.waitFor(/Wrote \.env \(blue active, no green yet/);
    const before = readEnvValues(await ws.readEnv());
    assert.equal(before.GENESYS_CLIENT_ID_GREEN, undefined);

    const setup = await ws.task("setup", ["--from", "blue"]);
    assert.equal(setup.code, 0, setup.stdout + setup.stderr);

    const after = readEnvValues(await ws.readEnv());
    assert.ok(after.GENESYS_CLIENT_ID_GREEN, "setup stored the twin's id");
    const credentials = [
      ["GENESYS_CLIENT_ID_BLUE", "GENESYS_CLIENT_SECRET_BLUE"],
      ["GENESYS_CLIENT_ID_GREEN", "GENESYS_CLIENT_SECRET_GREEN"],
      ["GENESYS_ADMIN_CLIENT_ID", "GENESYS_ADMIN_CLIENT_SECRET"],
    ];
    for (const [id, secret] of credentials) {
      const { status, body } = await tokenResponse(
        after.GENESYS_TOKEN_URL,
        after[id],
        after[secret],
      );
      assert.equal(status, 200, id);
      // The twin copies blue's lifetime, so --token-lifetime reaches it too.
      assert.equal(body.expires_in, 600, id);
    }
    const verify = await ws.task("verify");
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);

    // Incident mode on the new twin: its admin may read, disable, regenerate
    // and re-enable it (oauth:client:view and oauth:client:edit).
    const incident = await ws.task("incident", [
      "--compromised",
      "green",
      "--kill-tokens",
      "--yes",
    ]);
    assert.equal(incident.code, 0, incident.stdout + incident.stderr);
    const healed = readEnvValues(await ws.readEnv());
    assert.notEqual(
      healed.GENESYS_CLIENT_SECRET_GREEN,
      after.GENESYS_CLIENT_SECRET_GREEN,
    );
    const leaked = await tokenResponse(
      after.GENESYS_TOKEN_URL,
      after.GENESYS_CLIENT_ID_GREEN,
      after.GENESYS_CLIENT_SECRET_GREEN,
    );
    assert.equal(leaked.status, 401, "the leaked secret gets no token");
    const fresh = await tokenResponse(
      after.GENESYS_TOKEN_URL,
      healed.GENESYS_CLIENT_ID_GREEN,
      healed.GENESYS_CLIENT_SECRET_GREEN,
    );
    assert.equal(fresh.status, 200, "green is active again");
  } finally {
    run.child.kill("SIGTERM");
    const done = await run.finished();
    assert.equal(done.code, 0, done.stderr);
  }
});

Deno.test("deno task emulator --token-rate-limit: the token-creation limit", async () => {
  await using ws = await createWorkspace();
  const run = ws.spawn([
    "task",
    "-q",
    "emulator",
    "--port",
    "0",
    "--token-rate-limit",
    "1",
  ]);
  try {
    await run.waitFor(/Wrote \.env/);
    const env = readEnvValues(await ws.readEnv());
    const login = () =>
      tokenResponse(
        env.GENESYS_TOKEN_URL,
        env.GENESYS_CLIENT_ID_BLUE,
        env.GENESYS_CLIENT_SECRET_BLUE,
      );
    assert.equal((await login()).status, 200);
    const limited = await login();
    assert.equal(limited.status, 400);
    assert.equal(limited.body.error, "invalid_request");
    assert.match(
      String(limited.body.error_description),
      /^rate limit exceeded;/,
    );
  } finally {
    run.child.kill("SIGTERM");
    const done = await run.finished();
    assert.equal(done.code, 0, done.stderr);
  }
});

Deno.test("deno task emulator: bad numbers are usage errors", async () => {
  await using ws = await createWorkspace();
  for (
    const args of [
      ["--token-lifetime", "0"],
      ["--token-lifetime", "1.5"],
      ["--token-rate-limit", "-1"],
      ["--api-rate-limit", "many"],
    ]
  ) {
    const run = await ws.task("emulator", ["--port", "0", ...args]);
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, new RegExp(args[0]));
  }
  const help = await ws.task("emulator", ["--help"]);
  for (
    const flag of ["--token-lifetime", "--blue-only", "--token-rate-limit"]
  ) {
    assert.match(help.stdout, new RegExp(flag));
  }
});

Deno.test("deno task emulator --provider: each provider's emulator, its settings in a new .env.<provider>", async (t) => {
  await using ws = await createWorkspace();
  for (const provider of ["okta", "entra", "keycloak", "cognito", "auth0"]) {
    await t.step(provider, async () => {
      const run = ws.spawn([
        "task",
        "-q",
        "emulator",
        "--provider",
        provider,
        "--port",
        "0",
      ]);
      const path = `${ws.dir}/.env.${provider}`;
      try {
        await run.waitFor(new RegExp(`Wrote \\.env\\.${provider} \\(`));
        const text = await Deno.readTextFile(path);
        const env = readEnvValues(text);
        assert.equal(env.AUTH_PROVIDER, provider);
        assert.equal(env.AUTH_ACTIVE, "blue");
        // What was written is what was printed.
        assert.ok(run.stdout().includes(text.trim()), run.stdout());
        assert.notEqual(
          env.AUTH_CLIENT_SECRET_BLUE,
          env.AUTH_CLIENT_SECRET_GREEN,
        );
        if (provider === "auth0") {
          assert.notEqual(env.AUTH_CLIENT_ID_BLUE, env.AUTH_CLIENT_ID_GREEN);
        } else {
          assert.equal(env.AUTH_CLIENT_ID_BLUE, env.AUTH_CLIENT_ID_GREEN);
        }
        // Both secrets get a token from the emulator's token endpoint.
        for (const label of ["BLUE", "GREEN"]) {
          const form = new URLSearchParams({
            grant_type: "client_credentials",
            ...(env.AUTH_SCOPE ? { scope: env.AUTH_SCOPE } : {}),
            ...(env.AUTH_AUDIENCE ? { audience: env.AUTH_AUDIENCE } : {}),
            ...(provider === "auth0"
              ? {
                client_id: env[`AUTH_CLIENT_ID_${label}`],
                client_secret: env[`AUTH_CLIENT_SECRET_${label}`],
              }
              : {}),
          });
          const response = await fetch(env.AUTH_TOKEN_URL, {
            method: "POST",
            headers: {
              "content-type": "application/x-www-form-urlencoded",
              ...(provider === "auth0" ? {} : {
                authorization: `Basic ${
                  btoa(
                    `${env[`AUTH_CLIENT_ID_${label}`]}:${
                      env[`AUTH_CLIENT_SECRET_${label}`]
                    }`,
                  )
                }`,
              }),
            },
            body: form,
          });
          const body = await response.json();
          assert.equal(
            response.status,
            200,
            `${label}: ${JSON.stringify(body)}`,
          );
          assert.equal(body.token_type, "Bearer");
        }
        // The admin credential is there, named for the provider's API.
        assert.ok(
          env.AUTH_ADMIN_TOKEN ?? env.AUTH_ADMIN_CLIENT_SECRET ??
            env.AUTH_ADMIN_SECRET_ACCESS_KEY,
        );
      } finally {
        run.child.kill("SIGTERM");
        const done = await run.finished();
        assert.equal(done.code, 0, done.stderr);
      }
      // A second start never overwrites the file.
      const before = await Deno.readTextFile(path);
      const again = await ws.task("emulator", [
        "--provider",
        provider,
        "--port",
        "0",
      ]);
      assert.equal(again.code, 2, again.stderr);
      assert.match(again.stderr, /exists already/);
      assert.equal(await Deno.readTextFile(path), before);
    });
  }
  const unknown = await ws.task("emulator", ["--provider", "ping"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--provider "ping"/);
});

/**
 * Starts `deno task emulator --port 0 --json` with `args`, hands `check` the
 * line it prints once listening, then stops it (SIGTERM): it exits 0, and
 * that line was all it printed on stdout.
 */
async function withJsonEmulator(
  ws: Workspace,
  args: readonly string[],
  check: (started: EmulatorStarted & { ok: boolean }) => Promise<void>,
): Promise<void> {
  const run = ws.spawn([
    "task",
    "-q",
    "emulator",
    "--port",
    "0",
    "--json",
    ...args,
  ]);
  let line = "";
  try {
    await run.waitFor(/^\{.*\}\r?\n/);
    line = run.stdout().split("\n")[0];
    await check(JSON.parse(line));
  } finally {
    run.child.kill("SIGTERM");
  }
  const done = await run.finished();
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stdout, `${line}\n`);
}

Deno.test("deno task emulator --json: one line with the endpoints and the env file, then nothing", async (t) => {
  await using ws = await createWorkspace();

  await t.step("with an env file", async () => {
    await withJsonEmulator(ws, [], async (started) => {
      const env = readEnvValues(await ws.readEnv());
      assert.equal(started.ok, true);
      assert.equal(started.provider, "genesys");
      assert.equal(started.envFile, ".env");
      assert.equal(started.tokenUrl, env.GENESYS_TOKEN_URL);
      assert.equal(started.apiUrl, env.GENESYS_API_URL);
      assert.equal(started.variables, undefined, "the secrets stay in .env");
      const { status } = await tokenResponse(
        started.tokenUrl!,
        env.GENESYS_CLIENT_ID_BLUE,
        env.GENESYS_CLIENT_SECRET_BLUE,
      );
      assert.equal(status, 200);
    });
  });

  await t.step(
    "--no-env-file: the variables in the line, no file",
    async () => {
      const args = ["--no-env-file", "--env-file", "other.env"];
      await withJsonEmulator(ws, args, async (started) => {
        assert.equal(started.envFile, null);
        const variables = started.variables!;
        assert.equal(variables.GENESYS_TOKEN_URL, started.tokenUrl);
        const { status } = await tokenResponse(
          started.tokenUrl!,
          variables.GENESYS_CLIENT_ID_GREEN,
          variables.GENESYS_CLIENT_SECRET_GREEN,
        );
        assert.equal(status, 200);
        await assert.rejects(Deno.stat(`${ws.dir}/other.env`));
      });
    },
  );

  await t.step("--provider okta --json", async () => {
    await withJsonEmulator(ws, ["--provider", "okta"], async (started) => {
      assert.equal(started.provider, "okta");
      assert.equal(started.envFile, ".env.okta");
      const env = readEnvValues(await Deno.readTextFile(`${ws.dir}/.env.okta`));
      assert.deepEqual(started.variables, env);
      assert.ok(URL.canParse(started.url));
    });
  });

  await t.step(
    "--dry-run: the emulator starts and no file changes (as --no-env-file)",
    async () => {
      const before = await ws.readEnv();
      await withJsonEmulator(ws, ["--dry-run"], async (started) => {
        assert.equal(started.envFile, null);
        const variables = started.variables!;
        const { status } = await tokenResponse(
          started.tokenUrl!,
          variables.GENESYS_CLIENT_ID_BLUE,
          variables.GENESYS_CLIENT_SECRET_BLUE,
        );
        assert.equal(status, 200);
      });
      assert.equal(await ws.readEnv(), before, ".env is untouched");
      const args = ["--provider", "okta", "--dry-run", "--env-file", "d.env"];
      await withJsonEmulator(ws, args, async (started) => {
        assert.equal(started.envFile, null);
        assert.ok(started.variables!.AUTH_TOKEN_URL);
        await assert.rejects(Deno.stat(`${ws.dir}/d.env`));
      });
    },
  );

  await t.step("--provider refuses a Genesys-only option by name", async () => {
    const run = await ws.task("emulator", [
      "--provider",
      "okta",
      "--blue-only",
      "--no-env-file",
    ]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--blue-only applies to the Genesys emulator only, not --provider okta/,
    );
  });

  await t.step("a failure is JSON too", async () => {
    const run = await ws.task("emulator", ["--port", "0", "--json"]);
    assert.equal(run.code, 2);
    const failure = JSON.parse(run.stdout);
    assert.equal(failure.ok, false);
    assert.equal(failure.error.code, "ENV_FILE_EXISTS");
  });
});
