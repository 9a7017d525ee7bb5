import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PROBE = "tests/support/permission_probe.ts";

/** Where each attempt of the probe must be refused, and the permission Deno must name. */
const EXPECTED: Readonly<Record<string, string>> = {
  "env HOME": 'Requires env access to "HOME"',
  "read /etc/hostname": 'Requires read access to "/etc/hostname"',
  "write /tmp/probe": 'Requires write access to "/tmp/probe"',
  "net example.com": 'Requires net access to "example.com:443"',
  "run true": 'Requires run access to "true"',
};

for (const set of ["verify", "rotate", "demo", "cli"]) {
  Deno.test(`permission set "${set}" refuses other variables, files, hosts and programs`, async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-q", `-P=${set}`, PROBE],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const outcome = JSON.parse(new TextDecoder().decode(output.stdout));
    for (const [attempt, message] of Object.entries(EXPECTED)) {
      assert.notEqual(outcome[attempt], "allowed", `${set} allowed ${attempt}`);
      assert.equal(outcome[attempt].error, "NotCapable", attempt);
      assert.ok(
        outcome[attempt].message.startsWith(message),
        `${attempt}: ${outcome[attempt].message}`,
      );
    }
  });
}
