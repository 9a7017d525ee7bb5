/**
 * `deno task demo --provider <name>` on each provider's emulator, with the
 * demo permission set (127.0.0.1 only): two staged rotations under traffic
 * through the provider's adapter, each promoted, no request failed, and for
 * two-secret providers both old secrets revoked.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { DEMO_PROVIDERS } from "../../tasks/demo.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TWO_SECRETS = new Set(["okta", "entra", "keycloak", "cognito"]);

for (const provider of DEMO_PROVIDERS) {
  Deno.test(`deno task demo --provider ${provider}: two rotations, 0 failed requests`, async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "-q",
        "demo",
        "--provider",
        provider,
        "--json",
        "--step-ms",
        "200",
        "--workers",
        "4",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `${stdout}\n${stderr}`);
    const summary = JSON.parse(stdout);
    assert.equal(summary.ok, true);
    assert.equal(summary.failed, 0);
    assert.ok(summary.requestsOk > 0);
    assert.equal(summary.rotations, 2);
    assert.equal(summary.expiredTokenUses, 0);
    assert.equal(summary.active, "blue");
    assert.match(stderr, /rotated blue → green/);
    assert.match(stderr, /rotated green → blue/);
    if (TWO_SECRETS.has(provider)) {
      assert.equal(summary.revoked, 2);
      assert.match(stderr, /retire: completed/);
    } else {
      assert.equal(summary.revoked, undefined);
    }
  });
}

Deno.test("deno task demo --provider with an unknown name: exit 2, the names listed", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "demo", "--provider", "genesis"],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(output.code, 2);
  assert.match(
    new TextDecoder().decode(output.stderr),
    /okta, entra, keycloak, cognito, auth0/,
  );
});
