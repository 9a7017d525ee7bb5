import assert from "node:assert/strict";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  emulatorConfig,
  type TaskRun,
  type Workspace,
} from "./workspace.ts";

const BLUE_SECRET = "blue-CANARY-7f3a";
const GREEN_SECRET = "green-CANARY-9c1d";
const EDIT = ["oauth:client:view", "oauth:client:edit"];

function startEmulator(): GenesysEmulator {
  return startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: BLUE_SECRET, permissions: EDIT },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
      { clientId: "viewer-id", secret: "viewer-CANARY", permissions: [] },
    ],
    organization: { id: "org-1", name: "Test Org" },
  });
}

function config(emulator: GenesysEmulator): Record<string, string> {
  return emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET });
}

/** Every secret the emulator knows now, plus the original ones. */
function secretsOf(emulator: GenesysEmulator): string[] {
  return [
    BLUE_SECRET,
    GREEN_SECRET,
    "viewer-CANARY",
    ...["blue-id", "green-id"].map((id) => emulator.getClientSecret(id)),
  ];
}

function assertClean(run: TaskRun, secrets: readonly string[]): void {
  const output = run.stdout + run.stderr;
  for (const secret of secrets) {
    assert.ok(!output.includes(secret), "a secret leaked into task output");
  }
  assert.doesNotMatch(output, /^\s+at .*:\d+:\d+\)?$/m, "a stack trace");
}

async function setup(): Promise<
  { emulator: GenesysEmulator; ws: Workspace } & AsyncDisposable
> {
  const emulator = startEmulator();
  const ws = await createWorkspace();
  await ws.writeEnv(config(emulator));
  return {
    emulator,
    ws,
    async [Symbol.asyncDispose]() {
      await ws[Symbol.asyncDispose]();
      await emulator.close();
    },
  };
}

Deno.test("deno task verify", async (t) => {
  await using env = await setup();
  const { emulator, ws } = env;

  await t.step("every credential usable: a table and exit 0", async () => {
    const run = await ws.task("verify");
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split("\n");
    assert.match(
      lines[0],
      /^LABEL\s+CLIENT ID\s+STATUS\s+TOKEN LIFETIME\s+ORGANIZATION$/,
    );
    assert.match(
      lines[1],
      /^blue \(active\)\s+blue-id\s+ok\s+24 h\s+Test Org$/,
    );
    assert.match(lines[2], /^green\s+green-id\s+ok\s+24 h\s+Test Org$/);
    // Columns line up: STATUS starts at the same offset on every row.
    const column = lines[0].indexOf("STATUS");
    assert.equal(lines[1].indexOf("ok"), column);
    assert.equal(lines[2].indexOf("ok"), column);
    assert.ok(
      !run.stdout.includes("\x1b["),
      "no colour without a terminal",
    );
    assertClean(run, secretsOf(emulator));
  });

  await t.step("--json gives machine output", async () => {
    const run = await ws.task("verify", ["--json"]);
    assert.equal(run.code, 0);
    const report = JSON.parse(run.stdout);
    assert.equal(report.usable, true);
    assert.deepEqual(
      report.credentials.map((c: { label: string; status: string }) => [
        c.label,
        c.status,
      ]),
      [["blue", "ok"], ["green", "ok"]],
    );
  });

  await t.step(
    "a rejected standby exits 1: failover is unavailable",
    async () => {
      emulator.regenerateSecret("green-id");
      const run = await ws.task("verify");
      assert.equal(run.code, 1);
      assert.match(run.stdout, /^green\s+green-id\s+rejected/m);
      assert.match(run.stdout, /"blue" is usable/);
      assert.match(
        run.stdout,
        /Failover is NOT available: the standby "green"/,
      );
      assertClean(run, secretsOf(emulator));
      const json = await ws.task("verify", ["--json"]);
      assert.equal(json.code, 1);
      const report = JSON.parse(json.stdout);
      assert.equal(report.ok, false);
      assert.equal(report.usable, true);
      assert.equal(report.failover, false);
      assert.match(report.failoverProblem, /GENESYS_CLIENT_SECRET_GREEN/);
    },
  );

  await t.step("a rejected active credential exits 1", async () => {
    emulator.regenerateSecret("blue-id");
    const run = await ws.task("verify");
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^blue \(active\)\s+blue-id\s+rejected/m);
    assert.match(run.stdout, /"blue" is NOT usable/);
    assertClean(run, secretsOf(emulator));
  });

  await t.step("an unreachable endpoint is reported as such", async () => {
    const closed = startGenesysEmulator();
    const url = closed.tokenUrl;
    await closed.close();
    await ws.writeEnv({
      ...config(emulator),
      GENESYS_TOKEN_URL: url,
    });
    const run = await ws.task("verify");
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^blue \(active\)\s+blue-id\s+unreachable/m);
    assertClean(run, secretsOf(emulator));
  });

  await t.step("missing configuration: named variables, exit 2", async () => {
    await Deno.writeTextFile(ws.envPath, "# empty\n");
    const run = await ws.task("verify");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /GENESYS_CLIENT_ID_BLUE: is not set/);
    assert.match(run.stderr, /GENESYS_ACTIVE: is not set/);
    assertClean(run, secretsOf(emulator));
  });
});

Deno.test("deno task rotate", async (t) => {
  await using env = await setup();
  const { emulator, ws } = env;

  await t.step("refuses without --yes and without a terminal", async () => {
    const before = await ws.readEnv();
    const run = await ws.task("rotate");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /Refusing to rotate without confirmation.*--yes/);
    assert.equal(await ws.readEnv(), before);
    assert.equal(emulator.stats().secretRegenerations, 0);
    assertClean(run, secretsOf(emulator));
  });

  await t.step("--dry-run plans and changes nothing", async () => {
    const before = await ws.readEnv();
    const run = await ws.task("rotate", ["--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^plan\s+completed\s+regenerate "green"/m);
    assert.match(run.stdout, /Dry run: nothing was changed/);
    assert.equal(await ws.readEnv(), before);
    assert.equal(emulator.stats().secretRegenerations, 0);
    await assert.rejects(
      Deno.stat(`${ws.envPath}.rotation.json`),
      Deno.errors.NotFound,
    );
    assertClean(run, secretsOf(emulator));
  });

  await t.step(
    "--yes --promote: green regenerated, stored, promoted; nothing leaks",
    async () => {
      const before = await ws.readEnv();
      const run = await ws.task("rotate", ["--yes", "--promote"]);
      assert.equal(run.code, 0, run.stderr);
      const newSecret = emulator.getClientSecret("green-id");
      assert.notEqual(newSecret, GREEN_SECRET);
      assert.equal(emulator.getClientSecret("blue-id"), BLUE_SECRET);
      const after = await ws.readEnv();
      assert.equal(
        after,
        before
          .replace(GREEN_SECRET, newSecret)
          .replace("GENESYS_ACTIVE=blue", "GENESYS_ACTIVE=green"),
      );
      const stat = await Deno.stat(ws.envPath);
      assert.equal(stat.mode! & 0o777, 0o644, "the operator's mode is kept");
      assert.match(run.stdout, /readable by every user \(mode 0644\)/);
      const journal = await Deno.readTextFile(`${ws.envPath}.rotation.json`);
      assert.equal(JSON.parse(journal).phase, "done");
      assert.ok(!journal.includes(newSecret));
      assert.match(run.stdout, /^promote\s+completed/m);
      assertClean(run, secretsOf(emulator));
    },
  );

  await t.step("--json prints the report", async () => {
    const run = await ws.task("rotate", ["--yes", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.standby, "blue"); // green is active since the last step
    assert.equal(report.active, "green");
    assert.ok(
      (await ws.readEnv()).includes(
        `GENESYS_CLIENT_SECRET_BLUE=${emulator.getClientSecret("blue-id")}`,
      ),
    );
    assertClean(run, secretsOf(emulator));
  });

  await t.step(
    "--print-secret shows the new secret once and leaves the file",
    async () => {
      const before = await ws.readEnv();
      const run = await ws.task("rotate", ["--yes", "--print-secret"]);
      assert.equal(run.code, 0, run.stderr);
      const newSecret = emulator.getClientSecret("blue-id");
      assert.equal(run.stdout.split(newSecret).length - 1, 1);
      assert.ok(!run.stderr.includes(newSecret));
      assert.match(
        run.stdout,
        new RegExp(`^GENESYS_CLIENT_SECRET_BLUE=${newSecret}$`, "m"),
      );
      assert.equal(await ws.readEnv(), before);
    },
  );

  await t.step(
    "bad input: clear messages, exit 2, no stack trace",
    async () => {
      await ws.writeEnv(config(emulator));
      const cases: [string[], RegExp][] = [
        [["--bogus"], /Unknown option '--bogus'/],
        [["--to", "blue", "--yes"], /"blue" is the active credential/],
        [["--to", "purple", "--yes"], /"purple" is not blue or green/],
        [["--promote", "--print-secret", "--yes"], /cannot be combined/],
        [
          ["--env-file", "/etc/other.env", "--dry-run"],
          /Deno denied a permission: Requires read access to "\/etc\/other.env".*--allow-read/,
        ],
      ];
      for (const [args, message] of cases) {
        const run = await ws.task("rotate", args);
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, message);
        assertClean(run, secretsOf(emulator));
      }
    },
  );

  await t.step(
    "an admin without oauth:client:edit: exit 1, blue untouched",
    async () => {
      await ws.writeEnv({
        ...config(emulator),
        GENESYS_CLIENT_SECRET_BLUE: emulator.getClientSecret("blue-id"),
        GENESYS_CLIENT_SECRET_GREEN: emulator.getClientSecret("green-id"),
        GENESYS_ADMIN_CLIENT_ID: "viewer-id",
        GENESYS_ADMIN_CLIENT_SECRET: "viewer-CANARY",
      });
      const regenerations = emulator.stats().secretRegenerations;
      const run = await ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /lacks oauth:client:view/);
      assert.match(run.stderr, /grant it a role with that permission/);
      assert.match(run.stderr, /Nothing was changed; "blue" still serves/);
      assert.equal(emulator.stats().secretRegenerations, regenerations);
      assertClean(run, secretsOf(emulator));
    },
  );
});
