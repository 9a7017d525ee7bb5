import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { readEnvValues } from "../../src/rotation/env_file.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  hasTerminal,
  spawnInTerminal,
  type TaskRun,
  type Workspace,
} from "./workspace.ts";
import { untilTrue } from "../support/wait.ts";

const BLUE_SECRET = "blue-CANARY-51d0";
const ADMIN_SECRET = "admin-CANARY-2b7e";
const ROLES = [
  { id: "role-api", name: "API caller", permissions: ["routing:queue:view"] },
  {
    id: "role-oauth",
    name: "OAuth admin",
    permissions: ["oauth:client:view", "oauth:client:add"],
  },
];
const BLUE_ROLES = [
  { roleId: "role-api", divisionId: "home" },
  { roleId: "role-oauth", divisionId: "*" },
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
        roleDivisions: BLUE_ROLES,
      },
      // Allowed to read and add clients, but holds no role to grant.
      {
        clientId: "admin-id",
        secret: ADMIN_SECRET,
        permissions: ["oauth:client:view", "oauth:client:add"],
      },
      // Allowed to read clients only.
      {
        clientId: "viewer-id",
        secret: "viewer-CANARY",
        permissions: ["oauth:client:view"],
      },
    ],
  });
}

function blueOnly(emulator: GenesysEmulator): Record<string, string> {
  return {
    GENESYS_TOKEN_URL: emulator.tokenUrl,
    GENESYS_API_URL: emulator.apiUrl,
    GENESYS_CLIENT_ID_BLUE: "blue-id",
    GENESYS_CLIENT_SECRET_BLUE: BLUE_SECRET,
    GENESYS_ACTIVE: "blue",
  };
}

function assertClean(run: TaskRun, emulator: GenesysEmulator): void {
  const output = run.stdout + run.stderr;
  for (const id of emulator.clientIds()) {
    assert.ok(
      !output.includes(emulator.getClientSecret(id)),
      `the secret of ${id} leaked into task output`,
    );
  }
  assert.doesNotMatch(output, /^\s+at .*:\d+:\d+\)?$/m, "a stack trace");
}

async function scenario(): Promise<
  { emulator: GenesysEmulator; ws: Workspace } & AsyncDisposable
> {
  const emulator = startEmulator();
  const ws = await createWorkspace();
  await ws.writeEnv(blueOnly(emulator));
  return {
    emulator,
    ws,
    async [Symbol.asyncDispose]() {
      await ws[Symbol.asyncDispose]();
      await emulator.close();
    },
  };
}

async function describeClient(emulator: GenesysEmulator, id: string) {
  const response = await fetch(
    `${emulator.apiUrl}/api/v2/oauth/clients/${id}`,
    {
      headers: { authorization: `Bearer ${emulator.issueToken("admin-id")}` },
    },
  );
  assert.equal(response.status, 200);
  return await response.json();
}

async function getsToken(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
): Promise<boolean> {
  const response = await fetch(emulator.tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${id}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  await response.body?.cancel();
  return response.ok;
}

Deno.test("setup runs under the operator permission set", () => {
  assert.match(denoJson.tasks.setup.command, /-P=operator .*tasks\/setup\.ts$/);
});

Deno.test("deno task setup --from blue", async (t) => {
  await using env = await scenario();
  const { emulator, ws } = env;

  await t.step("--dry-run shows the twin and creates nothing", async () => {
    const before = await ws.readEnv();
    const run = await ws.task("setup", ["--from", "blue", "--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Dry run: nothing was created/);
    assert.match(run.stdout, /Would create: "Orders \(green\)"/);
    assert.match(
      run.stdout,
      /roles: role-api in home, role-oauth in all divisions/,
    );
    assert.match(run.stdout, /token lifetime: 3600 s/);
    assert.match(run.stdout, /^create\s+skipped\s+would create/m);
    assert.deepEqual(emulator.clientIds(), [
      "blue-id",
      "admin-id",
      "viewer-id",
    ]);
    assert.equal(await ws.readEnv(), before);
    assertClean(run, emulator);
  });

  await t.step(
    "creates the twin, stores id and secret, verifies it, keeps the rest of .env",
    async () => {
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 0, run.stderr);
      const values = readEnvValues(await ws.readEnv());
      const id = values.GENESYS_CLIENT_ID_GREEN;
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.equal(
        values.GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret(id),
      );
      assert.equal(values.GENESYS_CLIENT_SECRET_BLUE, BLUE_SECRET);
      assert.equal(values.GENESYS_ACTIVE, "blue");
      assert.match(await ws.readEnv(), /^# test configuration\n/);
      const twin = await describeClient(emulator, id);
      assert.equal(twin.name, "Orders (green)");
      assert.equal(twin.authorizedGrantType, "CLIENT-CREDENTIALS");
      assert.equal(twin.accessTokenValiditySeconds, 3600);
      assert.deepEqual(twin.roleDivisions, BLUE_ROLES);
      assert.ok(
        await getsToken(emulator, id, values.GENESYS_CLIENT_SECRET_GREEN),
      );
      assert.match(run.stdout, /^verify\s+completed/m);
      assert.match(
        run.stdout,
        /Stored: GENESYS_CLIENT_ID_GREEN and GENESYS_CLIENT_SECRET_GREEN/,
      );
      assertClean(run, emulator);
    },
  );

  await t.step("the result passes deno task verify", async () => {
    const run = await ws.task("verify");
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^green\s+\S+\s+ok/m);
  });

  await t.step(
    "refuses when green is already configured (exit 2)",
    async () => {
      const before = await ws.readEnv();
      const count = emulator.clientIds().length;
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /GENESYS_CLIENT_ID_GREEN is already set/);
      assert.match(run.stderr, /--force/);
      assert.equal(await ws.readEnv(), before);
      assert.equal(emulator.clientIds().length, count);
    },
  );

  await t.step(
    "--force replaces the twin and names the old client",
    async () => {
      const old = readEnvValues(await ws.readEnv()).GENESYS_CLIENT_ID_GREEN;
      const run = await ws.task("setup", [
        "--from",
        "blue",
        "--force",
        "--json",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.equal(report.ok, true);
      assert.equal(report.replacedClientId, old);
      assert.equal(report.verified, true);
      assert.deepEqual(report.variables, [
        "GENESYS_CLIENT_ID_GREEN",
        "GENESYS_CLIENT_SECRET_GREEN",
      ]);
      const values = readEnvValues(await ws.readEnv());
      assert.equal(values.GENESYS_CLIENT_ID_GREEN, report.twin.id);
      assert.notEqual(report.twin.id, old);
      assert.deepEqual(
        report.steps.map((s: { step: string; status: string }) =>
          `${s.step}:${s.status}`
        ),
        [
          "read:completed",
          "create:completed",
          "store:completed",
          "verify:completed",
        ],
      );
      assertClean(run, emulator);
    },
  );

  await t.step(
    "never replaces the active label, even with --force",
    async () => {
      const values = readEnvValues(await ws.readEnv());
      await ws.writeEnv({ ...values, GENESYS_ACTIVE: "green" });
      const count = emulator.clientIds().length;
      const run = await ws.task("setup", ["--from", "blue", "--force"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /never replaces the active credential/);
      assert.equal(emulator.clientIds().length, count);
    },
  );
});

Deno.test("deno task setup: missing permission and roles", async (t) => {
  await using env = await scenario();
  const { emulator, ws } = env;

  await t.step(
    "an admin credential without oauth:client:add: exit 2, says what to grant",
    async () => {
      await ws.writeEnv({
        ...blueOnly(emulator),
        GENESYS_ADMIN_CLIENT_ID: "viewer-id",
        GENESYS_ADMIN_CLIENT_SECRET: "viewer-CANARY",
      });
      const before = await ws.readEnv();
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /GENESYS_ADMIN_CLIENT_ID \(viewer-id\)/);
      assert.match(run.stderr, /lacks the permission oauth:client:add/);
      assert.match(run.stderr, /OAuth > Client > Add/);
      assert.match(run.stderr, /Nothing was created/);
      assert.doesNotMatch(run.stderr, /POST|\/api\/v2/, "no API calls named");
      assert.equal(await ws.readEnv(), before);
      assert.equal(emulator.clientIds().length, 3);
      assertClean(run, emulator);
    },
  );

  await t.step(
    "an admin credential without the roles: exit 2, names the roles to hold",
    async () => {
      await ws.writeEnv({
        ...blueOnly(emulator),
        GENESYS_ADMIN_CLIENT_ID: "admin-id",
        GENESYS_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
      });
      const run = await ws.task("setup", ["--from", "blue", "--json"]);
      assert.equal(run.code, 2, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.equal(report.ok, false);
      assert.equal(report.error.code, "SETUP_CREATE_FAILED");
      assert.equal(report.error.needsGrant, true);
      assert.match(
        report.error.message,
        /GENESYS_ADMIN_CLIENT_ID \(admin-id\)/,
      );
      assert.match(
        report.error.message,
        /may grant only roles it holds itself/,
      );
      assert.match(
        report.error.message,
        /role role-api in division home, role role-oauth in all divisions/,
      );
      assert.equal(emulator.clientIds().length, 3);
      assertClean(run, emulator);
    },
  );

  await t.step(
    "the from client without oauth:client:view: names its variable",
    async () => {
      emulator.addClient({ clientId: "bare-id", secret: "bare-CANARY" });
      await ws.writeEnv({
        ...blueOnly(emulator),
        GENESYS_CLIENT_ID_BLUE: "bare-id",
        GENESYS_CLIENT_SECRET_BLUE: "bare-CANARY",
      });
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /GENESYS_CLIENT_ID_BLUE \(bare-id\)/);
      assert.match(run.stderr, /lacks the permission oauth:client:view/);
    },
  );

  await t.step(
    "without GENESYS_ACTIVE: the next step says to set it",
    async () => {
      const { GENESYS_ACTIVE: _, ...rest } = blueOnly(emulator);
      await ws.writeEnv(rest);
      const run = await ws.task("setup", ["--from", "blue"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^Next: Set GENESYS_ACTIVE=blue in \.env/m);
    },
  );

  await t.step("usage errors: exit 2", async () => {
    const none = await ws.task("setup", []);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--from blue or --from green/);
    const bad = await ws.task("setup", ["--from", "purple"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from purple: not a label; use blue or green/);
    await Deno.writeTextFile(ws.envPath, "# empty\n");
    const empty = await ws.task("setup", ["--from", "green"]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /GENESYS_CLIENT_ID_GREEN: is not set/);
    assert.match(empty.stderr, /GENESYS_CLIENT_SECRET_GREEN: is not set/);
  });
});

Deno.test({
  name:
    "deno task setup on a terminal asks first; no creates nothing, --yes skips the question",
  ignore: !hasTerminal,
  async fn(t) {
    await using env = await scenario();
    const { emulator, ws } = env;
    const clients = emulator.clientIds();

    await t.step("answered no: nothing created, exit 1", async () => {
      const before = await ws.readEnv();
      await using task = spawnInTerminal(ws, ["setup", "--from", "blue"]);
      await untilTrue("the question", () => /\[y\/N\]/.test(task.output()));
      await task.type("n\n");
      const run = await task.finished();
      assert.equal(run.code, 1, run.output);
      assert.match(
        run.output,
        /Create the twin of "blue" \(OAuth client blue-id\) as "green" and store its id and secret in \.env\? \[y\/N\]/,
      );
      assert.match(run.output, /Cancelled; nothing was changed\./);
      assert.deepEqual(emulator.clientIds(), clients);
      assert.equal(await ws.readEnv(), before);
    });

    await t.step("--yes: not asked, the twin is created", async () => {
      await using task = spawnInTerminal(ws, [
        "setup",
        "--from",
        "blue",
        "--yes",
      ]);
      const run = await task.finished();
      assert.equal(run.code, 0, run.output);
      assert.doesNotMatch(run.output, /\[y\/N\]/);
      assert.match(run.output, /Twin client created\./);
      assert.equal(emulator.clientIds().length, clients.length + 1);
      const values = readEnvValues(await ws.readEnv());
      assert.equal(
        values.GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret(values.GENESYS_CLIENT_ID_GREEN),
      );
    });
  },
});
