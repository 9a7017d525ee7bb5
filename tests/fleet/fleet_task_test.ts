import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import { fileURLToPath } from "node:url";
import { createKvFleet } from "../../kv.ts";
import { startGenesysEmulator } from "../../testing.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function runFleetTask(args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-P=fleet", "tasks/fleet.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
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

Deno.test("deno task fleet lists live instances as a table and as JSON", async () => {
  // Inside the project: the fleet permission set reads and writes only there.
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: ".tmp-fleet-" });
  const path = `${dir}/fleet.sqlite`;
  await using emulator = startGenesysEmulator({
    clients: [{ clientId: "blue-id", secret: "blue-secret" }],
  });
  const kv = await Deno.openKv(path);
  const auths = ["web-1", "web-2"].map((instanceId) =>
    createFleetAuth({
      credentials: [{
        label: "blue",
        clientId: "blue-id",
        clientSecret: "blue-secret",
      }],
      tokenUrl: emulator.tokenUrl,
      shared: createKvFleet(kv, {
        prefix: ["dual-secret-auth", "svc"],
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
    const json = await runFleetTask(["--kv", path, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout);
    assert.deepEqual(listed.map((i: { instanceId: string }) => i.instanceId), [
      "web-1",
      "web-2",
    ]);
    assert.deepEqual(listed[0].prefix, ["dual-secret-auth", "svc"]);
    assert.equal(listed[0].active, "blue");
    assert.doesNotMatch(json.stdout, /blue-secret/);
    const text = await runFleetTask(["--kv", path]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /INSTANCE/);
    assert.match(text.stdout, /web-1 .*blue \[0\]/);
    const none = await runFleetTask(["--kv", path, "--prefix", "other"]);
    assert.match(none.stdout, /No live instances/);
    const usage = await runFleetTask([]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--kv/);
  } finally {
    await Promise.all(auths.map((auth) => auth.close()));
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
