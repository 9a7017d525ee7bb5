import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A short `deno task demo` run (no terminal, no colour); it must exit 0. */
async function runDemo(
  extra: readonly string[] = [],
): Promise<{ stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "-q",
      "demo",
      ...extra,
      "--step-ms",
      "250",
      "--workers",
      "8",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `demo failed:\n${stdout}\n${stderr}`);
  return { stdout, stderr };
}

Deno.test("deno task demo: a short run rotates, fails over and drops nothing", async () => {
  const { stdout, stderr } = await runDemo();

  const value = (measure: string) =>
    stdout.match(new RegExp(`^${measure}\\s+(.+)$`, "m"))?.[1];
  assert.equal(value("requests failed"), "0");
  assert.ok(Number(value("requests ok")) > 0);
  assert.equal(value("requests with an expired token"), "0");
  assert.equal(value("staged rotations"), "3");
  assert.equal(value("failovers"), "1");
  assert.match(
    stdout,
    /failover (blue|green) → (blue|green) \(invalid_client\)/,
  );
  assert.match(stdout, /rotated blue → green/);
  assert.ok(!stdout.includes("\x1b["), "NO_COLOR and no TTY: no colour codes");
  assert.doesNotMatch(stderr, /error|Error/);
});

Deno.test("deno task demo --json: the summary alone on stdout, as JSON; progress on stderr", async () => {
  const { stdout, stderr } = await runDemo(["--json"]);
  const summary = JSON.parse(stdout);
  assert.equal(summary.ok, true);
  assert.equal(summary.failed, 0);
  assert.ok(summary.requestsOk > 0);
  assert.ok(summary.p99Ms >= summary.p50Ms);
  assert.equal(summary.expiredTokenUses, 0);
  assert.equal(summary.rotations, 3);
  assert.equal(summary.failovers, 1);
  assert.ok(summary.tokenRequests.blue > 0 && summary.tokenRequests.green > 0);
  assert.match(summary.active, /^(blue|green)$/);
  assert.match(stderr, /rotated blue → green/);
  assert.match(stderr, /failover (blue|green) → (blue|green)/);
});

Deno.test("deno task demo --help explains the flags and exits 0", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "demo", "--help"],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0);
  assert.match(new TextDecoder().decode(output.stdout), /--workers <n>/);
});
