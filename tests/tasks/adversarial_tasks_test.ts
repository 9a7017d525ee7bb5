/**
 * Adversarial runs of the operator commands: a careless operator (another
 * command at the same time, an env file elsewhere, a SIGTERM mid-call) must
 * never lose a secret or regenerate the credential serving traffic.
 */
import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import { acquireEnvFileLock } from "../../src/rotation/lock.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  emulatorConfig,
  hasTerminal,
  spawnInTerminal,
  type Workspace,
} from "./workspace.ts";
import { untilTrue } from "../support/wait.ts";

const BLUE_SECRET = "blue-ADV-CANARY-7a1c";
const GREEN_SECRET = "green-ADV-CANARY-3e9d";
const EDIT = ["oauth:client:view", "oauth:client:edit"];
const ROLES = [
  { id: "role-api", name: "API caller", permissions: ["routing:queue:view"] },
  {
    id: "role-oauth",
    name: "OAuth admin",
    permissions: ["oauth:client:view", "oauth:client:add", ...EDIT],
  },
];

function startEmulator(): GenesysEmulator {
  return startGenesysEmulator({
    roles: ROLES,
    clients: [
      {
        clientId: "blue-id",
        secret: BLUE_SECRET,
        name: "Orders (blue)",
        tokenLifetimeSeconds: 3600,
        roleDivisions: [
          { roleId: "role-api", divisionId: "home" },
          { roleId: "role-oauth", divisionId: "*" },
        ],
      },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
    ],
  });
}

function blueOnly(emulator: GenesysEmulator): Record<string, string> {
  const all = emulatorConfig(emulator, {
    blue: BLUE_SECRET,
    green: GREEN_SECRET,
  });
  delete all.GENESYS_CLIENT_ID_GREEN;
  delete all.GENESYS_CLIENT_SECRET_GREEN;
  return all;
}

/** The waits below catch a call while it is in flight: polled every 20 ms. */
const CLOSELY = { intervalMs: 20 };

async function envValues(ws: Workspace): Promise<Record<string, string>> {
  return readEnvValues(await ws.readEnv());
}

Deno.test("setup and incident take the env file's lock, as rotate and promote do", async (t) => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();

  await t.step(
    "setup --from blue refuses while a rotation holds the lock",
    async () => {
      await ws.writeEnv(blueOnly(emulator));
      const before = await ws.readEnv();
      const clients = emulator.clientIds().length;
      await using _held = await acquireEnvFileLock(ws.envPath, "rotate --yes");
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /"rotate --yes" \(pid \d+/);
      assert.equal(
        emulator.clientIds().length,
        clients,
        "a client was created",
      );
      assert.equal(await ws.readEnv(), before);
    },
  );

  await t.step(
    "incident --compromised blue refuses while a rotation holds the lock",
    async () => {
      await ws.writeEnv(
        emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
      );
      const before = await ws.readEnv();
      await using _held = await acquireEnvFileLock(ws.envPath, "rotate --yes");
      const run = await ws.task("incident", [
        "--compromised",
        "blue",
        "--yes",
      ]);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /"rotate --yes" \(pid \d+/);
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(await ws.readEnv(), before);
    },
  );
});

Deno.test("setup and incident use --env-file <path> alone: no .env is needed or read", async (t) => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  const other = `${ws.dir}/prod.env`;
  const write = (values: Record<string, string>) =>
    Deno.writeTextFile(
      other,
      Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join(""),
    );

  await t.step("setup --dry-run --env-file prod.env, no .env", async () => {
    await write(blueOnly(emulator));
    const run = await ws.task("setup", [
      "--from",
      "blue",
      "--dry-run",
      "--env-file",
      "prod.env",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Would create: "Orders \(green\)"/);
  });

  await t.step(
    "a .env of another org does not override prod.env",
    async () => {
      // .env names a client that does not exist: read, it would fail.
      await ws.writeEnv({
        ...blueOnly(emulator),
        GENESYS_CLIENT_ID_BLUE: "not-this-org",
        GENESYS_CLIENT_SECRET_BLUE: "not-this-secret",
      });
      const run = await ws.task("setup", [
        "--from",
        "blue",
        "--dry-run",
        "--env-file",
        "prod.env",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.doesNotMatch(run.stdout + run.stderr, /not-this-org/);
    },
  );
});

Deno.test("SIGTERM during setup's create call: the twin's id and secret are still stored", async () => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  await ws.writeEnv(blueOnly(emulator));
  const clients = emulator.clientIds().length;
  // The describe call is answered at once; the create call is processed at
  // once but its answer (the only copy of the secret) is held back.
  emulator.injectApiFaults({ kind: "delay", ms: 0 }, 1);
  emulator.injectApiFaults({ kind: "delay", ms: 3_000 }, 1);
  const task = ws.spawn(["task", "-q", "setup", "--from", "blue"]);
  await untilTrue(
    "the create call to arrive",
    () => emulator.clientIds().length > clients,
    CLOSELY,
  );
  task.child.kill("SIGTERM");
  const run = await task.finished();
  const created = emulator.clientIds().find((id) =>
    !["blue-id", "green-id"].includes(id)
  )!;
  const values = await envValues(ws);
  assert.equal(values.GENESYS_CLIENT_ID_GREEN, created, run.stderr);
  assert.equal(
    values.GENESYS_CLIENT_SECRET_GREEN,
    emulator.getClientSecret(created),
  );
  assert.equal(run.code, 130, run.stderr);
  assert.ok(
    !(run.stdout + run.stderr).includes(values.GENESYS_CLIENT_SECRET_GREEN),
  );
});

Deno.test("SIGTERM during incident's regenerate call: the new secret is still stored", async () => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  await ws.writeEnv(
    emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
  );
  // green is the standby: incident mode regenerates it at once. Every API
  // answer is held back a little, the regenerate call's too.
  emulator.injectApiFaults({ kind: "delay", ms: 3_000 }, 20);
  const task = ws.spawn([
    "task",
    "-q",
    "incident",
    "--compromised",
    "green",
    "--yes",
  ]);
  await untilTrue(
    "the regenerate call to arrive",
    () => emulator.stats().secretRegenerations > 0,
    CLOSELY,
  );
  task.child.kill("SIGTERM");
  const run = await task.finished();
  const values = await envValues(ws);
  assert.equal(
    values.GENESYS_CLIENT_SECRET_GREEN,
    emulator.getClientSecret("green-id"),
    `the regenerated secret was lost\n${run.stderr}`,
  );
  assert.equal(run.code, 130, run.stderr);
  assert.ok(
    !(run.stdout + run.stderr).includes(values.GENESYS_CLIENT_SECRET_GREEN),
  );
});

Deno.test({
  name:
    "rotate waiting at its prompt while another rotate --promote runs: it regenerates nothing",
  ignore: !hasTerminal,
  async fn() {
    await using emulator = startEmulator();
    await using ws = await createWorkspace();
    await ws.writeEnv(
      emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
    );
    // A terminal so that rotate asks before acting.
    await using task = spawnInTerminal(ws, ["rotate"]);
    await untilTrue(
      "the prompt",
      () => /Regenerate the secret/.test(task.output()),
      CLOSELY,
    );
    // Meanwhile a second operator rotates and promotes green.
    const other = await ws.task("rotate", ["--yes", "--promote"]);
    assert.equal(other.code, 0, other.stderr);
    const afterOther = await envValues(ws);
    assert.equal(afterOther.GENESYS_ACTIVE, "green");
    // The first operator now says yes to what it asked: regenerate green.
    await task.type("y\n");
    const { code, output } = await task.finished();
    assert.equal(code, 3, output);
    assert.match(output, /changed while this command was starting/);
    assert.equal(emulator.stats().secretRegenerations, 1);
    const values = await envValues(ws);
    assert.deepEqual(values, afterOther);
    assert.equal(
      values.GENESYS_CLIENT_SECRET_GREEN,
      emulator.getClientSecret("green-id"),
      "the active credential's secret in .env is dead",
    );
  },
});

Deno.test({
  name:
    "a read-only env file: setup and incident refuse before creating or regenerating anything, as rotate does",
  ignore: Deno.build.os === "windows",
  async fn(t) {
    await using emulator = startEmulator();
    await using ws = await createWorkspace();

    await t.step("setup --from blue", async () => {
      await ws.writeEnv(blueOnly(emulator));
      await Deno.chmod(ws.envPath, 0o444);
      const before = await ws.readEnv();
      const clients = emulator.clientIds().length;
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /is read-only \(mode 0444\)/);
      assert.equal(
        emulator.clientIds().length,
        clients,
        "a client was created",
      );
      assert.equal(await ws.readEnv(), before);
    });

    await t.step("incident --compromised green --yes", async () => {
      await Deno.chmod(ws.envPath, 0o600);
      await ws.writeEnv(
        emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
      );
      await Deno.chmod(ws.envPath, 0o444);
      const run = await ws.task("incident", [
        "--compromised",
        "green",
        "--yes",
      ]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /is read-only \(mode 0444\)/);
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(emulator.getClientSecret("green-id"), GREEN_SECRET);
    });
  },
});

Deno.test("setup and incident failures name variables and commands, never library calls", async (t) => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  const libraryWords = /setCredentials\(|rotate\(\)|the library|next call/;
  const wrongBlue = {
    ...emulatorConfig(emulator, { blue: "WRONG-blue", green: GREEN_SECRET }),
  };

  await t.step("setup --from blue with a rejected blue secret", async () => {
    const config: Record<string, string> = { ...wrongBlue };
    delete config.GENESYS_CLIENT_ID_GREEN;
    delete config.GENESYS_CLIENT_SECRET_GREEN;
    await ws.writeEnv(config);
    const run = await ws.task("setup", ["--from", "blue"]);
    assert.equal(run.code, 1, run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, libraryWords);
    assert.match(run.stderr, /GENESYS_CLIENT_SECRET_BLUE/);
  });

  for (const label of ["green", "blue"]) {
    await t.step(
      `incident --compromised ${label} with a rejected blue secret`,
      async () => {
        await ws.writeEnv(wrongBlue);
        const run = await ws.task("incident", [
          "--compromised",
          label,
          "--yes",
        ]);
        assert.equal(run.code, 1, run.stderr);
        assert.doesNotMatch(run.stdout + run.stderr, libraryWords);
        assert.match(run.stderr, /GENESYS_CLIENT_SECRET_BLUE/);
        assert.equal(emulator.stats().secretRegenerations, 0);
      },
    );
  }

  await t.step("incident while the token endpoint answers 503", async () => {
    await ws.writeEnv(
      emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
    );
    emulator.injectTokenFaults({ kind: "status", status: 503 }, 100);
    try {
      const run = await ws.task("incident", [
        "--compromised",
        "green",
        "--yes",
      ]);
      assert.equal(run.code, 1, run.stderr);
      assert.doesNotMatch(run.stdout + run.stderr, libraryWords);
      assert.match(run.stderr, /GENESYS_TOKEN_URL/);
    } finally {
      emulator.clearFaults();
    }
  });
});

Deno.test("a shell GENESYS_ACTIVE that differs from the env file: incident and setup refuse, as rotate does", async (t) => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();

  await t.step(
    "incident --compromised blue, the file says blue is active",
    async () => {
      await ws.writeEnv(
        emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
      );
      const before = await ws.readEnv();
      // With the shell's green, blue would be regenerated at once while the
      // services following the file still use it.
      const run = await ws.task(
        "incident",
        ["--compromised", "blue", "--yes"],
        { GENESYS_ACTIVE: "green" },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /GENESYS_ACTIVE is set in the shell environment/,
      );
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(await ws.readEnv(), before);
    },
  );

  await t.step(
    "setup --from blue --force, the file says green is active",
    async () => {
      await ws.writeEnv({
        ...emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
        GENESYS_ACTIVE: "green",
      });
      const before = await ws.readEnv();
      const clients = emulator.clientIds().length;
      const run = await ws.task(
        "setup",
        ["--from", "blue", "--force"],
        { GENESYS_ACTIVE: "blue" },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /GENESYS_ACTIVE is set in the shell environment/,
      );
      assert.equal(
        emulator.clientIds().length,
        clients,
        "a client was created",
      );
      assert.equal(await ws.readEnv(), before);
    },
  );
});

Deno.test("a token or API URL with user:password@: every command refuses it by its variable, never quoting it", async () => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  const commands: [string, string[]][] = [
    ["verify", []],
    ["rotate", ["--yes"]],
    ["promote", ["--to", "green", "--yes"]],
    ["setup", ["--from", "blue", "--dry-run", "--force"]],
    ["incident", ["--compromised", "green", "--yes"]],
  ];
  for (const variable of ["GENESYS_TOKEN_URL", "GENESYS_API_URL"]) {
    const config: Record<string, string> = emulatorConfig(emulator, {
      blue: BLUE_SECRET,
      green: GREEN_SECRET,
    });
    config[variable] = config[variable].replace(
      "http://",
      "http://ops:URL-PASSWORD-5e1@",
    );
    await ws.writeEnv(config);
    const before = await ws.readEnv();
    for (const [task, args] of commands) {
      const run = await ws.task(task as "verify", args);
      const output = run.stdout + run.stderr;
      assert.equal(run.code, 2, `${variable} ${task}: ${output}`);
      assert.match(
        run.stderr,
        new RegExp(`${variable}: must not contain a user name or password`),
      );
      assert.ok(!output.includes("URL-PASSWORD-5e1"), output);
    }
    assert.equal(await ws.readEnv(), before);
  }
  assert.equal(emulator.stats().secretRegenerations, 0);
});

async function tryMount(args: string[]): Promise<boolean> {
  return await new Deno.Command("mount", { args, stderr: "null" }).output()
    .then((output) => output.success, () => false);
}

Deno.test("a bind-mounted .env (Docker -v ./.env:/app/.env): rotate stores the new secret instead of losing it", async (t) => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  await ws.writeEnv(
    emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
  );
  const host = `${ws.dir}/host.env`;
  await Deno.copyFile(ws.envPath, host);
  if (!await tryMount(["--bind", host, ws.envPath])) {
    // Needs root (CAP_SYS_ADMIN): nothing to check here.
    await t.step({
      name: "mount --bind is not allowed here",
      ignore: true,
      fn() {},
    });
    return;
  }
  try {
    const run = await ws.task("rotate", ["--yes"]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(emulator.stats().secretRegenerations, 1);
    const secret = emulator.getClientSecret("green-id");
    assert.notEqual(secret, GREEN_SECRET);
    // Written through the mount: the host's file has it.
    assert.equal(
      readEnvValues(await Deno.readTextFile(host)).GENESYS_CLIENT_SECRET_GREEN,
      secret,
    );
  } finally {
    await new Deno.Command("umount", { args: [ws.envPath] }).output();
  }
});
