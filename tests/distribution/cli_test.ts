/**
 * The single-binary rotation tool (tasks/cli.ts): run as `deno run -P=operator`,
 * which grants exactly the permissions `deno task compile` bakes into the
 * binary, in a throwaway project copy with its own .env, against the Genesys
 * emulator. The compiled binary itself is tested only when DENORT_BIN names a
 * denort runtime, since `deno compile` cannot download one here.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import { GENESYS_REGIONS } from "../../src/regions.ts";
import { PROVIDER_ENV_VARS } from "../../src/providers/env.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import {
  createWorkspace,
  emulatorConfig,
  type TaskRun,
} from "../tasks/workspace.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BLUE_SECRET = "blue-CANARY-5e21";
const GREEN_SECRET = "green-CANARY-b80c";
const EDIT = ["oauth:client:view", "oauth:client:edit"];
/**
 * The directory of deno.json: `.env`, its lock, journal and per-run temp
 * files (unique names, so a directory, not a list of files).
 */
const ENV_FILES = ["."];

function startEmulator(hostname?: string): GenesysEmulator {
  return startGenesysEmulator({
    hostname,
    clients: [
      { clientId: "blue-id", secret: BLUE_SECRET, permissions: EDIT },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
    ],
    organization: { id: "org-1", name: "Test Org" },
  });
}

function config(emulator: GenesysEmulator): Record<string, string> {
  return emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET });
}

/** Only what deno itself needs: the test's own GENESYS_* must not leak in. */
function childEnvironment(): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
    DENO_NO_UPDATE_CHECK: "1",
  };
}

async function run(
  program: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<TaskRun> {
  const output = await new Deno.Command(program, {
    args: [...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { ...childEnvironment(), ...env },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs tasks/cli.ts with the permission set "operator", as the binary would run. */
function cli(dir: string, args: readonly string[]): Promise<TaskRun> {
  return run(
    Deno.execPath(),
    ["run", "-q", "-P=operator", "tasks/cli.ts", ...args],
    dir,
  );
}

function assertClean(result: TaskRun, secrets: readonly string[]): void {
  const output = result.stdout + result.stderr;
  for (const secret of secrets) {
    assert.ok(!output.includes(secret), "a secret leaked into the output");
  }
  assert.doesNotMatch(output, /^\s+at .*:\d+:\d+\)?$/m, "a stack trace");
}

function assertVerifiedTable(stdout: string): void {
  assert.match(stdout, /^LABEL\s+CLIENT ID\s+STATUS/m);
  assert.match(stdout, /^blue \(active\)\s+blue-id\s+ok\s/m);
  assert.match(stdout, /^green\s+green-id\s+ok\s/m);
  assert.match(stdout, /The active credential "blue" is usable/);
}

Deno.test("deno.json: the compile task bakes in the operator permission set", async (t) => {
  const permissions = denoJson.permissions;
  const words = denoJson.tasks.compile.command.split(" ");

  await t.step("deno compile -P=operator, no other permission flag", () => {
    assert.deepEqual(words, [
      "deno",
      "compile",
      "-P=operator",
      "-o",
      "dist/genesys-rotate",
      "tasks/cli.ts",
    ]);
  });

  await t.step("every region domain is covered, plus loopback", () => {
    const patterns = new Set(permissions.operator.net);
    for (const domain of Object.keys(GENESYS_REGIONS)) {
      const parent = domain.split(".").slice(1).join(".");
      assert.ok(
        patterns.has(`*.${domain}`) || patterns.has(`*.${parent}`),
        `no pattern covers login.${domain}`,
      );
    }
    assert.ok(patterns.has("127.0.0.1") && patterns.has("localhost"));
  });

  await t.step("only the named variables and rotate's files", () => {
    assert.deepEqual(permissions.operator.env, [
      // GENESYS_* first, then every provider's AUTH_* (src/providers/env.ts).
      ...PROVIDER_ENV_VARS,
      "NO_COLOR",
      // rotate/promote --kv: the fleet's seal key; --redis: node-redis reads these.
      "DUAL_SECRET_SEAL_KEY",
      // --redis env (rotate, promote, incident): the Redis URL.
      "REDIS_URL",
      "REDIS_DEBUG_MAINTENANCE",
      "REDIS_EMIT_DIAGNOSTICS",
    ]);
    assert.deepEqual(permissions.operator.read, ENV_FILES);
    assert.deepEqual(permissions.operator.write, ENV_FILES);
  });
});

Deno.test("tasks/cli.ts with the operator permission set", async (t) => {
  await using ws = await createWorkspace();
  await using emulator = startEmulator();
  await ws.writeEnv(config(emulator));
  const secrets = () => [
    BLUE_SECRET,
    GREEN_SECRET,
    emulator.getClientSecret("blue-id"),
    emulator.getClientSecret("green-id"),
  ];

  await t.step("--help lists the commands, exit 0", async () => {
    const result = await cli(ws.dir, ["--help"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: genesys-rotate <command>/);
    assert.match(result.stdout, /^\s+verify\s+\S/m);
    assert.match(result.stdout, /^\s+rotate\s+\S/m);
  });

  await t.step("--version prints deno.json's version", async () => {
    const result = await cli(ws.dir, ["--version"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `genesys-rotate ${denoJson.version}\n`);
  });

  await t.step(
    "an unknown or missing command: usage on stderr, exit 2",
    async () => {
      for (
        const [args, message] of [
          [["bogus"], /Unknown command "bogus"/],
          [[], /Missing command/],
        ] as const
      ) {
        const result = await cli(ws.dir, args);
        assert.equal(result.code, 2, args.join(" "));
        assert.equal(result.stdout, "");
        assert.match(result.stderr, message);
        assert.match(result.stderr, /Usage: genesys-rotate <command>/);
        assertClean(result, secrets());
      }
    },
  );

  await t.step("verify reads ./.env: every credential ok, exit 0", async () => {
    const before = emulator.stats().tokenRequests;
    const result = await cli(ws.dir, ["verify"]);
    assert.equal(result.code, 0, result.stderr);
    assertVerifiedTable(result.stdout);
    // Blue, green, and blue again as the admin that must read green's client.
    assert.equal(emulator.stats().tokenRequests - before, 3);
    assertClean(result, secrets());
  });

  await t.step(
    "verify --json: the caller's --env-file replaces ./.env",
    async () => {
      const otherFile = `${ws.dir}/.env.tmp`;
      const values = { ...config(emulator), GENESYS_ACTIVE: "green" };
      await Deno.writeTextFile(
        otherFile,
        Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join(""),
      );
      try {
        const result = await cli(ws.dir, [
          "verify",
          "--json",
          "--env-file",
          ".env.tmp",
        ]);
        assert.equal(result.code, 0, result.stderr);
        const report = JSON.parse(result.stdout);
        assert.equal(report.active, "green"); // ./.env says blue
        assert.equal(report.usable, true);
        assertClean(result, secrets());
      } finally {
        await Deno.remove(otherFile);
      }
    },
  );

  await t.step("rotate --dry-run --yes plans and changes nothing", async () => {
    const before = await ws.readEnv();
    const result = await cli(ws.dir, ["rotate", "--dry-run", "--yes"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^plan\s+completed\s+regenerate "green"/m);
    assert.match(result.stdout, /Dry run: nothing was changed/);
    assert.equal(await ws.readEnv(), before);
    assert.equal(emulator.stats().secretRegenerations, 0);
    assert.equal(emulator.getClientSecret("green-id"), GREEN_SECRET);
    await assert.rejects(
      Deno.stat(`${ws.envPath}.rotation.json`),
      Deno.errors.NotFound,
    );
    assertClean(result, secrets());
  });

  await t.step(
    "a file outside the set is denied, naming the permission",
    async () => {
      const result = await cli(ws.dir, [
        "rotate",
        "--dry-run",
        "--env-file",
        "/etc/other.env",
      ]);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        /^Deno denied a permission: Requires read access to "\/etc\/other\.env"\. genesys-rotate runs with permissions fixed when it was built/m,
      );
      assertClean(result, secrets());
    },
  );

  await t.step("a host outside the set is never contacted", async () => {
    await using outside = startEmulator("127.0.0.2");
    await ws.writeEnv(config(outside));
    try {
      const result = await cli(ws.dir, ["verify"]);
      assert.equal(result.code, 1);
      assert.match(result.stdout, /^blue \(active\)\s+blue-id\s+error/m);
      assert.match(result.stdout, /The runtime denied access/);
      assert.equal(outside.stats().tokenRequests, 0);
      assertClean(result, secrets());
    } finally {
      await ws.writeEnv(config(emulator));
    }
  });

  await t.step({
    name: "a host outside the set: the message names the missing permission",
    fn: async () => {
      await using outside = startEmulator("127.0.0.2");
      await ws.writeEnv(config(outside));
      try {
        const result = await cli(ws.dir, ["verify"]);
        assert.notEqual(result.code, 0);
        const host = new URL(outside.tokenUrl).host;
        assert.ok(
          (result.stdout + result.stderr).includes(
            `Requires net access to "${host}"`,
          ),
          result.stdout + result.stderr,
        );
      } finally {
        await ws.writeEnv(config(emulator));
      }
    },
  });
});

const DENORT_BIN = Deno.env.get("DENORT_BIN");

Deno.test({
  name: DENORT_BIN
    ? "deno task compile: the binary runs --help and verify with its baked-in permissions"
    : "skipped: set DENORT_BIN to a denort binary to test deno compile",
  ignore: !DENORT_BIN,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "genesys-rotate-bin-" });
    await using emulator = startEmulator();
    try {
      const binary = `${dir}/genesys-rotate`;
      const words = denoJson.tasks.compile.command.split(" ");
      const output = words.indexOf("-o");
      const args = [
        ...words.slice(1, output),
        "-o",
        binary,
        ...words.slice(output + 2),
      ];
      const compiled = await run(Deno.execPath(), args, ROOT, {
        DENORT_BIN: DENORT_BIN!,
      });
      assert.equal(compiled.code, 0, compiled.stderr);

      const help = await run(binary, ["--help"], dir);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^\s+verify\s+\S/m);
      assert.match(help.stdout, /^\s+rotate\s+\S/m);

      const env = Object.entries(config(emulator))
        .map(([key, value]) => `${key}=${value}\n`).join("");
      await Deno.writeTextFile(`${dir}/.env`, env);
      const verified = await run(binary, ["verify"], dir);
      assert.equal(verified.code, 0, verified.stderr);
      assertVerifiedTable(verified.stdout);
      assertClean(verified, [BLUE_SECRET, GREEN_SECRET]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
