/**
 * The operator's side of rotate and promote, each case a failure mode found
 * by running the README as a new user would: concurrent runs, symlinked and
 * read-only env files, modes and owners, stale journals, Ctrl-C, slow
 * propagation, rate limits, a rejected admin secret, shell overrides, and
 * JSON for every outcome.
 */
import assert from "node:assert/strict";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";
import { slowPropagation } from "../support/wait.ts";
import {
  createWorkspace,
  emulatorConfig,
  FAILPOINT_VAR,
  type TaskRun,
  withFailpoint,
  type Workspace,
} from "./workspace.ts";

const BLUE_SECRET = "blue-CANARY-41aa";
const GREEN_SECRET = "green-CANARY-93bf";
const ADMIN_SECRET = "admin-CANARY-6d02";
const EDIT = ["oauth:client:view", "oauth:client:edit"];
/** Whether this runs as root: a fresh file's owner says, without sys permission. */
const IS_ROOT = (() => {
  if (Deno.build.os === "windows") return false;
  const probe = Deno.makeTempFileSync();
  try {
    return Deno.statSync(probe).uid === 0;
  } finally {
    Deno.removeSync(probe);
  }
})();

async function setup(extra: Record<string, string> = {}) {
  const emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: BLUE_SECRET, permissions: EDIT },
      { clientId: "green-id", secret: GREEN_SECRET, permissions: EDIT },
      { clientId: "admin-id", secret: ADMIN_SECRET, permissions: EDIT },
      { clientId: "viewer-id", secret: "viewer-CANARY", permissions: [] },
    ],
    revokeTokensOnRegenerate: true,
  });
  const ws = await createWorkspace();
  await ws.writeEnv({
    ...emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
    ...extra,
  });
  return {
    emulator,
    ws,
    async [Symbol.asyncDispose]() {
      await ws[Symbol.asyncDispose]();
      await emulator.close();
    },
  };
}

function assertClean(run: TaskRun, emulator: GenesysEmulator): void {
  const output = run.stdout + run.stderr;
  for (
    const secret of [
      BLUE_SECRET,
      GREEN_SECRET,
      ADMIN_SECRET,
      emulator.getClientSecret("blue-id"),
      emulator.getClientSecret("green-id"),
    ]
  ) {
    assert.ok(!output.includes(secret), "a secret leaked into task output");
  }
  assert.doesNotMatch(output, /^\s+at .*:\d+:\d+\)?$/m, "a stack trace");
}

async function values(ws: Workspace): Promise<Record<string, string>> {
  return readEnvValues(await ws.readEnv());
}

Deno.test("lock: one rotate or promote per env file", async (t) => {
  await using env = await setup();
  const { emulator, ws } = env;
  const holder = ws.spawn(withFailpoint("rotate", ["--yes"]), {
    [FAILPOINT_VAR]: "test:inside",
  });
  try {
    await holder.waitFor(/failpoint test:inside reached/);
    for (const task of ["rotate", "promote"] as const) {
      await t.step(
        `a second ${task} refuses at once, naming the holder, exit 3`,
        async () => {
          const started = performance.now();
          const run = await ws.task(task, ["--yes", "--to", "green", "--json"]);
          assert.equal(run.code, 3, run.stdout + run.stderr);
          const outcome = JSON.parse(run.stdout);
          assert.equal(outcome.ok, false);
          assert.equal(outcome.error.code, "ROTATION_LOCKED");
          assert.match(
            outcome.error.message,
            new RegExp(`"rotate --yes" \\(pid ${holder.child.pid}`),
          );
          assert.ok(performance.now() - started < 15_000);
          assertClean(run, emulator);
        },
      );
    }
  } finally {
    holder.child.kill("SIGKILL");
    await holder.finished();
  }
  await t.step(
    "the killed holder's lock is gone: the re-run resumes",
    async () => {
      const run = await ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /Rotation resumed and complete/);
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );
  await t.step(
    "concurrent setEnvFileValue calls in one process keep every value",
    async () => {
      const { setEnvFileValue } = await import("../../src/rotation/sinks.ts");
      const path = `${ws.dir}/concurrent.env`;
      await Deno.writeTextFile(path, "# mine\n");
      await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => setEnvFileValue(path, `K${i}`, `v${i}`),
        ),
      );
      const read = readEnvValues(await Deno.readTextFile(path));
      for (let i = 0; i < 20; i++) assert.equal(read[`K${i}`], `v${i}`);
      const leftovers = [...Deno.readDirSync(ws.dir)].filter((e) =>
        e.name.endsWith(".tmp")
      );
      assert.deepEqual(leftovers, []);
    },
  );
});

Deno.test("the env file is the operator's file", async (t) => {
  await t.step(
    "a symlinked .env: the target is rewritten, the link stays",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.mkdir(`${ws.dir}/config`);
      await Deno.rename(ws.envPath, `${ws.dir}/config/app.env`);
      await Deno.symlink("config/app.env", ws.envPath);
      const run = await ws.task("rotate", ["--yes", "--promote"]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(
        (await Deno.lstat(ws.envPath)).isSymlink,
        ".env is still a link",
      );
      const target = readEnvValues(
        await Deno.readTextFile(`${ws.dir}/config/app.env`),
      );
      assert.equal(
        target.GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
      );
      assert.equal(target.GENESYS_ACTIVE, "green");
      assertClean(run, emulator);
    },
  );

  await t.step(
    "mode 0640 stays 0640; a world-readable file is kept and warned about",
    async () => {
      await using env = await setup();
      const { ws } = env;
      await Deno.chmod(ws.envPath, 0o640);
      let run = await ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await Deno.stat(ws.envPath)).mode! & 0o7777, 0o640);
      assert.doesNotMatch(run.stdout, /readable by every user/);
      await Deno.chmod(ws.envPath, 0o644);
      run = await ws.task("promote", ["--yes"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await Deno.stat(ws.envPath)).mode! & 0o7777, 0o644);
      assert.match(run.stdout, /readable by every user \(mode 0644\)/);
    },
  );

  await t.step(
    "a read-only file is refused before regenerating, also in --dry-run",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.chmod(ws.envPath, 0o444);
      for (const args of [["--dry-run"], ["--yes"], ["--yes", "--json"]]) {
        const run = await ws.task("rotate", args);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        assert.match(
          run.stdout + run.stderr,
          /\.env is read-only \(mode 0444\)/,
        );
        if (args.includes("--json")) {
          const outcome = JSON.parse(run.stdout);
          assert.equal(outcome.error.causeCode, "ROTATION_FILE_NOT_WRITABLE");
        }
      }
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(
        await Deno.readTextFile(ws.envPath).then((t) =>
          t.includes(GREEN_SECRET)
        ),
        true,
      );
    },
  );

  await t.step({
    name: "an immutable file (chattr +i) is refused before regenerating",
    ignore: !IS_ROOT,
    fn: async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const chattr = await new Deno.Command("chattr", {
        args: ["+i", ws.envPath],
      })
        .output().catch(() => undefined);
      if (!chattr?.success) return; // The file system has no immutable flag.
      try {
        const run = await ws.task("rotate", ["--yes"]);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        assert.match(run.stderr, /\.env cannot be written/);
        assert.equal(emulator.stats().secretRegenerations, 0);
      } finally {
        await new Deno.Command("chattr", { args: ["-i", ws.envPath] }).output();
      }
    },
  });

  await t.step({
    name:
      "a directory that accepts no new file (chattr +i) is refused before regenerating",
    ignore: !IS_ROOT,
    fn: async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.mkdir(`${ws.dir}/locked`);
      await Deno.rename(ws.envPath, `${ws.dir}/locked/app.env`);
      await Deno.symlink("locked/app.env", ws.envPath);
      const chattr = await new Deno.Command("chattr", {
        args: ["+i", `${ws.dir}/locked`],
      })
        .output().catch(() => undefined);
      if (!chattr?.success) return;
      try {
        for (const args of [["--dry-run"], ["--yes"]]) {
          const run = await ws.task("rotate", args);
          assert.equal(run.code, 2, run.stdout + run.stderr);
          assert.match(
            run.stderr,
            /its directory .*locked does not accept a new file/,
          );
        }
        assert.equal(emulator.stats().secretRegenerations, 0);
      } finally {
        await new Deno.Command("chattr", { args: ["-i", `${ws.dir}/locked`] })
          .output();
      }
    },
  });

  await t.step({
    name:
      "run as root, a file owned by the service user keeps its owner and group",
    ignore: !IS_ROOT,
    fn: async () => {
      await using env = await setup();
      const { ws } = env;
      await Deno.chown(ws.envPath, 4321, 4322);
      await Deno.chmod(ws.envPath, 0o640);
      const run = await ws.task("rotate", ["--yes", "--promote"]);
      assert.equal(run.code, 0, run.stderr);
      const info = await Deno.stat(ws.envPath);
      assert.equal(info.uid, 4321);
      assert.equal(info.gid, 4322);
      assert.equal(info.mode! & 0o7777, 0o640);
    },
  });
});

Deno.test("the journal says what it resumes", async (t) => {
  const record = (overrides: Record<string, unknown>) =>
    JSON.stringify({
      version: 1,
      rotationId: "old-rotation",
      active: "blue",
      standby: "green",
      clientId: "green-id",
      sink: "env file .env",
      phase: "publish",
      startedAt: Date.now() - 30 * 24 * 3600_000,
      publishedAt: Date.now() - 30 * 24 * 3600_000,
      ...overrides,
    });
  await t.step(
    "an unfinished journal from 30 days ago stops the run with --fresh as the next step",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.writeTextFile(`${ws.envPath}.rotation.json`, record({}));
      const run = await ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /too old to resume safely/);
      assert.match(run.stderr, /deno task rotate --yes --fresh/);
      assert.doesNotMatch(run.stdout + run.stderr, /Rotation complete/);
      assert.equal(emulator.stats().secretRegenerations, 0);
      const fresh = await ws.task("rotate", ["--yes", "--fresh"]);
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );
  await t.step(
    "a journal made for another client id is not resumed",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.writeTextFile(
        `${ws.envPath}.rotation.json`,
        record({ clientId: "someone-else", startedAt: Date.now() }),
      );
      const run = await ws.task("rotate", ["--yes", "--json"]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      const outcome = JSON.parse(run.stdout);
      assert.equal(outcome.error.causeCode, "ROTATION_JOURNAL_MISMATCH");
      assert.match(outcome.error.nextStep, /--fresh/);
      assert.equal(emulator.stats().secretRegenerations, 0);
    },
  );
  await t.step(
    "a journal made for another env file is not resumed",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.writeTextFile(
        `${ws.envPath}.rotation.json`,
        record({ sink: "env file /srv/other/.env", startedAt: Date.now() }),
      );
      const run = await ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /this run stores to env file \.env/);
      assert.equal(emulator.stats().secretRegenerations, 0);
    },
  );
});

Deno.test("never lose a new secret", async (t) => {
  await t.step(
    "a secret slower to propagate than a few attempts: progress lines, then success",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const slow = slowPropagation(emulator);
      const run = ws.spawn(["task", "-q", "rotate", "--yes"]);
      await run.waitFor(/test: attempt 2 failed/);
      await slow.release();
      const done = await run.finished();
      assert.equal(done.code, 0, done.stderr);
      assert.match(
        done.stderr,
        /test: attempt 1 failed \(CREDENTIAL_REJECTED\); the new secret may still be propagating; retrying in 1\.0 s \(up to 60 s in all\)/,
      );
      assert.equal(
        (await values(ws)).GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
      );
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );

  await t.step(
    "proof fails within --propagation-timeout: the secret is kept; the re-run proves it without regenerating",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const slow = slowPropagation(emulator);
      const run = await ws.task("rotate", [
        "--yes",
        "--propagation-timeout",
        "2",
      ]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stderr, /is stored in env file \.env and kept/);
      assert.match(
        run.stderr,
        /proves the stored secret again without regenerating/,
      );
      assert.equal(
        (await values(ws)).GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
      );
      await slow.release();
      const rerun = await ws.task("rotate", [
        "--yes",
        "--propagation-timeout",
        "2",
      ]);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.match(rerun.stdout, /Rotation resumed and complete/);
      assert.equal(emulator.stats().secretRegenerations, 1);
      assertClean(rerun, emulator);
    },
  );

  await t.step(
    "SIGINT while the regenerate call is in flight: it completes, the secret is stored, exit 130",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      // Plan's GET passes at once; the regenerate response is held back 1.5 s.
      emulator.injectApiFaults({ kind: "delay", ms: 0 }, 1);
      emulator.injectApiFaults({ kind: "delay", ms: 1_500 }, 1);
      const run = ws.spawn([
        "run",
        "-q",
        "-P=operator",
        "tasks/rotate.ts",
        "--yes",
      ]);
      while (emulator.stats().secretRegenerations === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // Twice, as Ctrl-C under deno task delivers it (the terminal's
      // process group, and deno task forwarding it): said once.
      run.child.kill("SIGINT");
      run.child.kill("SIGINT");
      const done = await run.finished();
      assert.equal(done.code, 130, done.stdout + done.stderr);
      assert.equal(
        done.stderr.match(
          /Received SIGINT: stopping once what is in progress is safely stored/g,
        )?.length,
        1,
        done.stderr,
      );
      assert.equal(
        (await values(ws)).GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
        "the secret regenerated during Ctrl-C is in .env",
      );
      const rerun = await ws.task("rotate", ["--yes"]);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  );

  await t.step(
    "--print-secret: a proof that fails still shows the secret, once",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const slow = slowPropagation(emulator);
      const run = await ws.task("rotate", [
        "--yes",
        "--print-secret",
        "--propagation-timeout",
        "1",
      ]);
      await slow.release();
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const secret = emulator.getClientSecret("green-id");
      assert.equal(run.stdout.split(secret).length - 1, 1, run.stdout);
      assert.match(run.stdout, /exists only here; store it now/);
      assert.ok(!run.stderr.includes(secret));
    },
  );

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    await t.step(
      `${signal} while proving: the secret is kept, exit 130 with the state`,
      async () => {
        await using env = await setup();
        const { emulator, ws } = env;
        const slow = slowPropagation(emulator);
        const run = ws.spawn([
          "run",
          "-q",
          "-P=operator",
          "tasks/rotate.ts",
          "--yes",
          "--json",
        ]);
        await run.waitFor(/test: attempt 1 failed/);
        run.child.kill(signal);
        const done = await run.finished();
        assert.equal(done.code, 130, done.stdout + done.stderr);
        const outcome = JSON.parse(done.stdout);
        assert.equal(outcome.error.interrupted, true);
        assert.match(
          outcome.error.state,
          /stored in env file \.env and kept, but the run was interrupted/,
        );
        assert.equal(
          (await values(ws)).GENESYS_CLIENT_SECRET_GREEN,
          emulator.getClientSecret("green-id"),
        );
        await slow.release();
        const rerun = await ws.task("rotate", ["--yes"]);
        assert.equal(rerun.code, 0, rerun.stderr);
        assert.equal(emulator.stats().secretRegenerations, 1);
      },
    );
  }
});

Deno.test("operator experience", async (t) => {
  await t.step(
    "--json for configuration errors, with code; exit 2",
    async () => {
      await using env = await setup();
      const { ws } = env;
      await Deno.writeTextFile(ws.envPath, "# empty\n");
      for (const task of ["verify", "rotate", "promote"] as const) {
        const run = await ws.task(
          task,
          ["--json", "--yes", "--to", "green"].filter((a) =>
            task !== "verify" || a === "--json"
          ),
        );
        assert.equal(run.code, 2, `${task}: ${run.stdout}${run.stderr}`);
        const outcome = JSON.parse(run.stdout);
        assert.equal(outcome.ok, false);
        assert.equal(outcome.error.code, "ENV_CONFIG_INVALID");
        assert.match(outcome.error.message, /GENESYS_ACTIVE: is not set/);
      }
    },
  );

  await t.step(
    "a rejected admin secret is GENESYS_ADMIN_UNAUTHORIZED naming GENESYS_ADMIN_CLIENT_SECRET",
    async () => {
      await using env = await setup({
        GENESYS_ADMIN_CLIENT_ID: "admin-id",
        GENESYS_ADMIN_CLIENT_SECRET: "wrong-admin-secret",
      });
      const { emulator, ws } = env;
      const run = await ws.task("rotate", ["--yes", "--json"]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const outcome = JSON.parse(run.stdout);
      assert.equal(outcome.error.causeCode, "GENESYS_ADMIN_UNAUTHORIZED");
      assert.match(outcome.error.message, /check GENESYS_ADMIN_CLIENT_SECRET/);
      assert.doesNotMatch(
        outcome.error.message,
        /setCredentials|rotate\(\)|retries on the next call/,
      );
      assert.equal(emulator.stats().secretRegenerations, 0);
      const verify = await ws.task("verify");
      assert.equal(verify.code, 1, "verify is a true pre-flight");
      assert.match(verify.stdout, /CANNOT rotate/);
    },
  );

  await t.step(
    "verify exits 1 when the admin credential lacks oauth:client:view",
    async () => {
      await using env = await setup({
        GENESYS_ADMIN_CLIENT_ID: "viewer-id",
        GENESYS_ADMIN_CLIENT_SECRET: "viewer-CANARY",
      });
      const run = await env.ws.task("verify", ["--json"]);
      assert.equal(run.code, 1);
      const outcome = JSON.parse(run.stdout);
      assert.equal(outcome.usable, true);
      assert.equal(outcome.canRotate, false);
      assert.match(outcome.rotateProblem, /oauth:client:view/);
    },
  );

  await t.step(
    "a refused connection is named as such, without library advice",
    async () => {
      await using env = await setup();
      const closed = startGenesysEmulator();
      const url = closed.tokenUrl;
      await closed.close();
      await env.ws.writeEnv({
        ...emulatorConfig(env.emulator, {
          blue: BLUE_SECRET,
          green: GREEN_SECRET,
        }),
        GENESYS_TOKEN_URL: url,
      });
      const run = await env.ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /connection refused/);
      assert.doesNotMatch(run.stderr, /retries on the next call/);
    },
  );

  await t.step(
    "the admin API's 429 is waited out with a progress line",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      emulator.injectApiFaults(
        { kind: "status", status: 429, retryAfter: "1" },
        1,
      );
      const run = await ws.task("rotate", ["--yes"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        /rate limiting \(HTTP 429\); waiting 1 s as it asked/,
      );
    },
  );

  await t.step(
    "shell variables win with a notice; rotate refuses a shell override of what it writes",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const notice = await ws.task("verify", [], {
        GENESYS_API_URL: `${emulator.apiUrl}/`,
      });
      assert.equal(notice.code, 0, notice.stderr);
      assert.match(
        notice.stderr,
        /Notice: GENESYS_API_URL is set in the shell environment and differs from \.env/,
      );
      const refused = await ws.task("rotate", ["--yes"], {
        GENESYS_ACTIVE: "green",
      });
      assert.equal(refused.code, 2);
      assert.match(
        refused.stderr,
        /GENESYS_ACTIVE is set in the shell environment and differs from \.env/,
      );
      assert.equal(emulator.stats().secretRegenerations, 0);
    },
  );

  await t.step(
    "--env-file works under the permission set for a file next to deno.json",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      await Deno.rename(ws.envPath, `${ws.dir}/staging.env`);
      const run = await ws.task("rotate", [
        "--yes",
        "--env-file",
        "staging.env",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const promoted = await ws.task("promote", [
        "--yes",
        "--env-file",
        "staging.env",
      ]);
      assert.equal(promoted.code, 0, promoted.stderr);
      const read = readEnvValues(
        await Deno.readTextFile(`${ws.dir}/staging.env`),
      );
      assert.equal(read.GENESYS_ACTIVE, "green");
      assert.equal(
        read.GENESYS_CLIENT_SECRET_GREEN,
        emulator.getClientSecret("green-id"),
      );
      const verify = await ws.task("verify", ["--env-file", "staging.env"]);
      assert.equal(verify.code, 0, verify.stderr);
    },
  );

  await t.step(
    "verify never prints the password of a token URL with user info",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const url = new URL(emulator.tokenUrl);
      url.username = "proxyuser";
      url.password = "proxy-PASSWORD-CANARY";
      await ws.writeEnv({
        ...emulatorConfig(emulator, { blue: BLUE_SECRET, green: GREEN_SECRET }),
        GENESYS_TOKEN_URL: url.href,
      });
      for (const args of [[], ["--json"], ["--verbose"]]) {
        const run = await ws.task("verify", args);
        assert.ok(
          !(run.stdout + run.stderr).includes("proxy-PASSWORD-CANARY"),
          args.join(" "),
        );
      }
    },
  );

  await t.step(
    "server error text that echoes the Authorization header never reaches the output",
    async () => {
      await using env = await setup();
      const { emulator, ws } = env;
      const echoed = `Basic ${btoa(`blue-id:${BLUE_SECRET}`)}`;
      const bodies = [
        {
          status: 400,
          error: "invalid_request",
          error_description: `bad header ${echoed}`,
        },
        { status: 401, error: `invalid_client ${echoed}` },
      ];
      for (const { status, ...body } of bodies) {
        for (
          const [task, args] of [
            ["verify", ["--json"]],
            ["rotate", ["--yes", "--json"]],
            ["rotate", ["--yes"]],
            ["verify", []],
          ] as const
        ) {
          emulator.clearFaults();
          emulator.injectTokenFaults({
            kind: "status",
            status,
            body: JSON.stringify(body),
          }, 10);
          const run = await ws.task(task, [...args]);
          assert.notEqual(run.code, 0, `${task} ${args.join(" ")}`);
          const output = run.stdout + run.stderr;
          assert.ok(
            !output.includes(btoa(`blue-id:${BLUE_SECRET}`)),
            `${task} ${args.join(" ")}: ${output}`,
          );
          assert.ok(
            !output.includes("Basic "),
            `${task} ${args.join(" ")}: ${output}`,
          );
          assertClean(run, emulator);
        }
      }
      emulator.clearFaults();
      assert.equal(emulator.stats().secretRegenerations, 0);
    },
  );

  await t.step("--help lists the exit codes", async () => {
    await using env = await setup();
    for (const task of ["verify", "rotate", "promote"] as const) {
      const run = await env.ws.task(task, ["--help"]);
      assert.equal(run.code, 0);
      assert.match(run.stdout, /Exit codes:[\s\S]*130\s+interrupted/);
      assert.match(
        run.stdout,
        /3\s+another rotate, promote, setup or incident holds the env file's lock/,
      );
    }
  });
});

Deno.test("deno task emulator: standalone, with a matching .env it never overwrites", async () => {
  const ws = await createWorkspace();
  try {
    const run = ws.spawn(["task", "-q", "emulator", "--port", "0"]);
    try {
      await run.waitFor(
        /Genesys emulator listening on (http:\/\/127\.0\.0\.1:\d+)/,
      );
      await run.waitFor(/Wrote \.env/);
      const env = readEnvValues(await ws.readEnv());
      assert.match(
        env.GENESYS_TOKEN_URL,
        /^http:\/\/127\.0\.0\.1:\d+\/oauth\/token$/,
      );
      assert.equal(env.GENESYS_ACTIVE, "blue");
      assert.equal(env.GENESYS_ADMIN_CLIENT_ID, "admin-client-id");
      const verify = await ws.task("verify");
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /rotation can proceed/);
      const second = await ws.task("emulator", ["--port", "0"]);
      assert.equal(second.code, 2);
      assert.match(
        second.stderr,
        /\.env exists already; the emulator never overwrites it/,
      );
    } finally {
      run.child.kill("SIGTERM");
      const done = await run.finished();
      assert.equal(done.code, 0, done.stderr);
    }
    const help = await ws.task("emulator", ["--help"]);
    assert.match(help.stdout, /default 8080/);
  } finally {
    await ws[Symbol.asyncDispose]();
  }
});
