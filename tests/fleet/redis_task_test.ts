import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import { fileURLToPath } from "node:url";
import { createRedisFleet } from "../../redis.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { startGenesysEmulator } from "../../testing.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function runFleetTask(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-P=fleet", "tasks/fleet.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

Deno.test({
  name:
    "deno task fleet --redis lists live instances (table, JSON); a wrong password is a clear error",
  ignore: ignoreWithoutRedis(),
}, async () => {
  await using server = await startRedisServer({
    users: [{ username: "ops", password: "ops-password" }],
  });
  await using emulator = startGenesysEmulator({
    clients: [{ clientId: "blue-id", secret: "blue-secret" }],
  });
  const auths = ["web-1", "web-2"].map((instanceId) =>
    createFleetAuth({
      credentials: [{
        label: "blue",
        clientId: "blue-id",
        clientSecret: "blue-secret",
      }],
      tokenUrl: emulator.tokenUrl,
      shared: createRedisFleet({
        url: server.url,
        prefix: "dual-secret-auth:svc",
        instanceId,
        pollIntervalMs: 50,
      }),
    })
  );
  try {
    await Promise.all(auths.map((auth) => auth.getAccessToken()));
    const end = Date.now() + 5_000;
    while ((await fleetFor(auths[0]).instances()).length < 2) {
      if (Date.now() > end) throw new Error("no heartbeats");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const json = await runFleetTask(["--redis", server.url, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout);
    assert.deepEqual(
      listed.map((i: { instanceId: string }) => i.instanceId),
      ["web-1", "web-2"],
    );
    assert.equal(listed[0].prefix, "dual-secret-auth:svc");
    assert.equal(listed[0].active, "blue");
    assert.doesNotMatch(json.stdout, /blue-secret/);

    // The URL (with its password) from REDIS_URL, off the command line.
    const text = await runFleetTask(["--redis", "env"], {
      REDIS_URL: server.url,
    });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /INSTANCE/);
    assert.match(text.stdout, /dual-secret-auth:svc +web-1 .*blue \[0\]/);

    const none = await runFleetTask(["--redis", server.url, "--prefix", "x"]);
    assert.match(none.stdout, /No live instances/);

    const refused = await runFleetTask([
      "--redis",
      server.urlFor("ops", "not-the-password"),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused the credentials of user "ops"/);
    assert.doesNotMatch(refused.stderr, /not-the-password/);

    const both = await runFleetTask(["--redis", server.url, "--kv", "x"]);
    assert.equal(both.code, 2);
    assert.match(
      both.stderr,
      /--kv <path>, or the Redis with --redis env \(reading REDIS_URL\)/,
    );
  } finally {
    await Promise.all(auths.map((auth) => auth.close()));
  }
});

Deno.test({
  name:
    "deno task fleet --redis --history shows the fleet's audit trail (table, JSON, --limit)",
  ignore: ignoreWithoutRedis(),
}, async () => {
  await using server = await startRedisServer();
  const store = createRedisFleetStore({
    url: server.url,
    prefix: "dual-secret-auth:svc",
  });
  try {
    await store.appendAudit("svc-a", {
      at: Date.UTC(2026, 0, 1),
      by: "ops@host",
      action: "rotate.regenerate",
      outcome: "ok",
      label: "green",
      detail: "generation 2",
    });
    await store.appendAudit("svc-b", {
      at: Date.UTC(2026, 0, 2),
      by: "ops@host",
      action: "promote",
      outcome: "ok",
      label: "green",
    });
    // Another fleet's trail is not shown.
    const other = createRedisFleetStore({ url: server.url, prefix: "other" });
    try {
      await other.appendAudit("svc-a", {
        at: Date.UTC(2026, 0, 3),
        by: "x",
        action: "promote",
        outcome: "failed",
      });
    } finally {
      await other.close();
    }
  } finally {
    await store.close();
  }
  const args = ["--redis", server.url, "--prefix", "dual-secret-auth:svc"];
  const json = await runFleetTask([...args, "--history", "--json"]);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(
    JSON.parse(json.stdout).map((e: { service: string; action: string }) =>
      `${e.service} ${e.action}`
    ),
    ["svc-a rotate.regenerate", "svc-b promote"],
  );
  const text = await runFleetTask([...args, "--history"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /TIME +BY +ACTION/);
  assert.match(
    text.stdout,
    /2026-01-01T00:00:00.000Z +ops@host +rotate.regenerate +ok +green +generation 2/,
  );
  const latest = await runFleetTask([...args, "--history", "--limit", "1"]);
  assert.doesNotMatch(latest.stdout, /rotate.regenerate/);
  assert.match(latest.stdout, /promote/);
  const none = await runFleetTask([
    "--redis",
    server.url,
    "--prefix",
    "nobody",
    "--history",
  ]);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /No audit entries under nobody/);
});
