import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { createWorkspace, emulatorConfig, type TaskRun } from "./workspace.ts";

const BLUE_SECRET = "blue-LEAKED-4c2e";
const GREEN_SECRET = "green-CANARY-8d1f";
const EDIT = ["oauth:client:view", "oauth:client:edit"];

function startEmulator(): GenesysEmulator {
  return startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: BLUE_SECRET, permissions: EDIT },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
    ],
  });
}

async function tokenFor(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
): Promise<string | undefined> {
  const response = await fetch(emulator.tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${id}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  return (await response.json()).access_token;
}

async function apiStatus(emulator: GenesysEmulator, token: string) {
  const response = await fetch(`${emulator.apiUrl}/api/v2/tokens/me`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await response.body?.cancel();
  return response.status;
}

function assertClean(run: TaskRun, emulator: GenesysEmulator): void {
  const output = run.stdout + run.stderr;
  for (
    const secret of [
      BLUE_SECRET,
      GREEN_SECRET,
      emulator.getClientSecret("blue-id"),
      emulator.getClientSecret("green-id"),
    ]
  ) {
    assert.ok(!output.includes(secret), "a secret leaked into task output");
  }
  assert.doesNotMatch(output, /^\s+at .*:\d+:\d+\)?$/m, "a stack trace");
}

Deno.test("deno task incident --compromised blue --kill-tokens", async (t) => {
  await using emulator = startEmulator();
  await using ws = await createWorkspace();
  await ws.writeEnv(
    emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
  );

  await t.step(
    "without --yes and a terminal: exit 2, nothing changed",
    async () => {
      const before = await ws.readEnv();
      const run = await ws.task("incident", ["--compromised", "blue"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /Pass --yes/);
      assert.equal(await ws.readEnv(), before);
      assert.equal(emulator.stats().secretRegenerations, 0);
    },
  );

  await t.step(
    "--dry-run: plan and pre-flight checks, exit 0, nothing changed",
    async () => {
      const before = await ws.readEnv();
      const run = await ws.task("incident", [
        "--compromised",
        "blue",
        "--kill-tokens",
        "--dry-run",
      ]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(
        run.stdout,
        /plan\s+completed\s+blue \(blue-id\) serves traffic/,
      );
      assert.match(run.stdout, /regenerate\s+skipped\s+dry run/);
      assert.match(run.stdout, /Dry run: nothing was changed/);
      assert.equal(await ws.readEnv(), before);
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(emulator.getClientState("blue-id"), "active");
      await assert.rejects(Deno.stat(`${ws.envPath}.incident.json`));
      assertClean(run, emulator);
    },
  );

  await t.step(
    "active blue leaked: green promoted, blue regenerated, its tokens dead",
    async () => {
      const stolen = await tokenFor(emulator, "blue-id", BLUE_SECRET);
      assert.ok(stolen);
      assert.equal(await apiStatus(emulator, stolen), 200);

      const run = await ws.task("incident", [
        "--compromised",
        "blue",
        "--kill-tokens",
        "--yes",
      ]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const values = readEnvValues(await ws.readEnv());
      assert.equal(values.GENESYS_ACTIVE, "green");
      assert.equal(
        values.GENESYS_CLIENT_SECRET_BLUE,
        emulator.getClientSecret("blue-id"),
      );
      assert.equal(
        values.GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
      );
      assert.notEqual(values.GENESYS_CLIENT_SECRET_GREEN, GREEN_SECRET);
      // The attacker's token is rejected, the leaked secret gets nothing.
      assert.equal(await apiStatus(emulator, stolen), 401);
      assert.equal(await tokenFor(emulator, "blue-id", BLUE_SECRET), undefined);
      assert.equal(emulator.getClientState("blue-id"), "active");
      const fresh = await tokenFor(
        emulator,
        "blue-id",
        values.GENESYS_CLIENT_SECRET_BLUE,
      );
      assert.ok(fresh);
      assert.equal(await apiStatus(emulator, fresh), 200);

      const lines = run.stdout.split("\n");
      assert.match(lines[0], /^TIME\s+STEP\s+STATUS\s+DETAIL$/);
      for (
        const step of [
          "plan",
          "rotate-other",
          "disable",
          "regenerate",
          "store",
          "enable",
          "verify",
        ]
      ) {
        assert.match(
          run.stdout,
          new RegExp(`^\\+\\d+\\.\\d\\d s\\s+${step}\\s+completed`, "m"),
        );
      }
      assert.match(run.stdout, /tokens killed: yes/);
      assertClean(run, emulator);
    },
  );

  await t.step(
    "green (now active) leaked, --json: blue promoted back, tokens left to expire",
    async () => {
      const run = await ws.task("incident", [
        "--compromised",
        "green",
        "--yes",
        "--json",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.equal(report.ok, true);
      assert.equal(
        report.promotedOther,
        true,
        "green was active after the last step",
      );
      assert.equal(report.active, "blue");
      assert.equal(report.tokensKilled, false);
      const values = readEnvValues(await ws.readEnv());
      assert.equal(values.GENESYS_ACTIVE, "blue");
      assertClean(run, emulator);
    },
  );

  await t.step(
    "deno task rotate --compromised hands over to incident mode",
    async () => {
      const help = await ws.task("rotate", ["--compromised", "blue", "--help"]);
      assert.equal(help.code, 0);
      assert.match(
        help.stdout,
        /Usage: deno task incident --compromised[\s\S]*deno task rotate --compromised/,
      );
      const before = emulator.getClientSecret("green-id");
      const run = await ws.task("rotate", ["--compromised=green", "--yes"]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /Incident response complete/);
      assert.notEqual(emulator.getClientSecret("green-id"), before);
      assert.equal(readEnvValues(await ws.readEnv()).GENESYS_ACTIVE, "blue");
      assertClean(run, emulator);
    },
  );

  await t.step(
    "an admin credential that is a changed client: exit 2",
    async () => {
      const values = readEnvValues(await ws.readEnv());
      await ws.writeEnv({
        ...values,
        GENESYS_ADMIN_CLIENT_ID: "blue-id",
        GENESYS_ADMIN_CLIENT_SECRET: values.GENESYS_CLIENT_SECRET_BLUE,
      });
      const regenerations = emulator.stats().secretRegenerations;
      const run = await ws.task("incident", [
        "--compromised",
        "blue",
        "--kill-tokens",
        "--yes",
      ]);
      assert.equal(run.code, 2);
      assert.match(
        run.stderr,
        /GENESYS_ADMIN_CLIENT_ID is the blue client blue-id/,
      );
      assert.equal(emulator.stats().secretRegenerations, regenerations);
      await ws.writeEnv(values);
    },
  );

  await t.step(
    "usage: an unbounded --reload-wait, fleet flags without a store: exit 2, nothing changed",
    async () => {
      const regenerations = emulator.stats().secretRegenerations;
      const cases: [string[], RegExp][] = [
        [["--reload-wait", "301"], /--reload-wait: at most 300 seconds/],
        [["--reload-wait", "soon"], /--reload-wait needs a number of seconds/],
        [["--force"], /--force needs a fleet store: --kv or --redis/],
        [["--timeout", "5"], /--timeout needs a fleet store/],
        [
          ["--kv", "fleet.db", "--reload-wait", "2"],
          /--reload-wait is for services that follow the env file/,
        ],
      ];
      for (const [extra, message] of cases) {
        const run = await ws.task("incident", [
          "--compromised",
          "blue",
          "--yes",
          ...extra,
        ]);
        assert.equal(run.code, 2, `${extra.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
      assert.equal(emulator.stats().secretRegenerations, regenerations);
    },
  );

  await t.step("usage: a bad label is exit 2", async () => {
    const run = await ws.task("incident", ["--compromised", "red", "--yes"]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--compromised red: not a label; use blue or green/,
    );
  });
});
