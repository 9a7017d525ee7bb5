/**
 * `deno task fleet --env-file`: `--redis env` finds REDIS_URL in the env
 * file when the shell does not set it; the shell wins (with a notice), as in
 * every command; a missing file is refused. The URL's password never shows.
 */
import assert from "node:assert/strict";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import { createWorkspace } from "./workspace.ts";

Deno.test({
  name:
    "deno task fleet --redis env --env-file: REDIS_URL from the file, the shell's wins, a missing file is refused",
  ignore: ignoreWithoutRedis(),
}, async (t) => {
  await using server = await startRedisServer({
    users: [{ username: "ops", password: "ops-PASSWORD-5c1e" }],
  });
  const url = server.urlFor("ops", "ops-PASSWORD-5c1e");
  const store = createRedisFleetStore({ url, prefix: "dual-secret-auth:svc" });
  try {
    await store.appendAudit("svc", {
      at: Date.UTC(2026, 0, 1),
      by: "ops@host",
      action: "promote",
      outcome: "ok",
      label: "green",
    });
  } finally {
    await store.close();
  }
  await using ws = await createWorkspace();
  await Deno.writeTextFile(`${ws.dir}/fleet.env`, `REDIS_URL=${url}\n`);
  const history = [
    "--redis",
    "env",
    "--prefix",
    "dual-secret-auth:svc",
    "--history",
    "--json",
  ];

  await t.step("REDIS_URL from the env file", async () => {
    const run = await ws.task("fleet", [
      ...history,
      "--env-file",
      "fleet.env",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      JSON.parse(run.stdout).map((e: { action: string }) => e.action),
      ["promote"],
    );
    assert.doesNotMatch(run.stderr, /Notice/);
  });

  await t.step("without --env-file the file is not read", async () => {
    const run = await ws.task("fleet", history);
    assert.equal(run.code, 2);
    assert.match(
      JSON.parse(run.stdout).error.message,
      /^--redis env: REDIS_URL is not set/,
    );
  });

  await t.step("the shell's REDIS_URL wins, with a notice", async () => {
    const run = await ws.task(
      "fleet",
      [...history, "--env-file", "fleet.env"],
      { REDIS_URL: server.urlFor("ops", "not-the-PASSWORD") },
    );
    assert.equal(run.code, 1, run.stdout);
    assert.match(
      run.stderr,
      /Notice: REDIS_URL is set in the shell environment and differs from fleet\.env; using the shell's value/,
    );
    assert.match(
      JSON.parse(run.stdout).error.message,
      /refused the credentials of user "ops"/,
    );
    assert.doesNotMatch(run.stdout + run.stderr, /PASSWORD/);
  });

  await t.step("a missing env file: exit 2, nothing read", async () => {
    const run = await ws.task("fleet", [
      ...history,
      "--env-file",
      "missing.env",
    ]);
    assert.equal(run.code, 2);
    assert.match(
      JSON.parse(run.stdout).error.message,
      /^--env-file missing\.env: no such file/,
    );
  });
});
