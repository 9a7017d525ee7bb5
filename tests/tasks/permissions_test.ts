import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import { GENESYS_REGIONS } from "../../src/regions.ts";

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

async function runUnder(set: string, args: readonly string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", `-P=${set}`, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return new TextDecoder().decode(output.stdout);
}

/** The permission set each task's command runs with, from deno.json. */
function setsOfTasks(): Map<string, string> {
  const sets = new Map<string, string>();
  for (const [name, task] of Object.entries(denoJson.tasks)) {
    const set = /(?:^|\s)-P=(\S+)/.exec(task.command)?.[1];
    if (set) sets.set(name, set);
  }
  return sets;
}

const RESTRICTED_SETS = [...new Set(setsOfTasks().values())]
  .filter((set) => set !== "test" && set !== "npm");

Deno.test("every task runs under a named permission set, operator tasks under one", () => {
  const sets = setsOfTasks();
  for (const task of ["verify", "rotate", "compile"]) {
    assert.equal(sets.get(task), "operator", task);
  }
  assert.equal(sets.get("demo"), "demo");
  for (const [name, task] of Object.entries(denoJson.tasks)) {
    assert.ok(task.description.length > 10, `task ${name} has a description`);
    // The benchmarks run other libraries' code in-process, with -A on purpose.
    if (name === "bench") continue;
    assert.doesNotMatch(
      task.command,
      /--allow-(all|read|write|net|env|run|sys|ffi)|\s-A\b/,
      `${name} uses -P, not flags`,
    );
  }
});

for (const set of RESTRICTED_SETS) {
  Deno.test(`permission set "${set}" refuses other variables, files, hosts and programs`, async () => {
    const outcome = JSON.parse(await runUnder(set, [PROBE]));
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

Deno.test('permission set "operator": every Genesys region, loopback, and no look-alike host', async () => {
  const allowed = Object.keys(GENESYS_REGIONS).flatMap((domain) => [
    `login.${domain}`,
    `api.${domain}`,
  ]).concat("127.0.0.1", "localhost");
  const refused = [
    "example.com",
    "mypurecloud.com.evil.example",
    "login.mypurecloud.com.evil.example",
    "evilmypurecloud.com",
    "login.notpure.cloud",
    "pure.cloud.example",
  ];
  const states = JSON.parse(
    await runUnder("operator", [
      "tests/support/net_probe.ts",
      ...allowed,
      ...refused,
    ]),
  );
  for (const host of allowed) assert.equal(states[host], "granted", host);
  for (const host of refused) assert.notEqual(states[host], "granted", host);
});

Deno.test("deno.json lists each Genesys host pattern once", () => {
  const text = JSON.stringify(denoJson);
  const patterns = denoJson.permissions.operator.net.filter((host) =>
    host.startsWith("*.")
  );
  assert.ok(patterns.length >= 8, patterns.join());
  for (const pattern of patterns) {
    assert.equal(text.split(`"${pattern}"`).length - 1, 1, pattern);
  }
});
