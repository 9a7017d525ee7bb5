/**
 * Runs examples/deploy.ts as Deno Deploy would: a separate process with
 * network and the listed environment variables only (no file system), in
 * front of the Genesys emulator.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startGenesysEmulator } from "../../testing.ts";
import { ENV_NAMES } from "../../examples/deploy.ts";
import {
  baseEnvironment,
  type RunningChild,
  startChild,
} from "../support/child_process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BLUE = { clientId: "blue-id", secret: "blue-secret-0123456789" };
const GREEN = { clientId: "green-id", secret: "green-secret-0123456789" };
const PROXY_KEY = "proxy-key-for-tests";

function startProxy(env: Record<string, string>): Promise<RunningChild> {
  return startChild({
    program: Deno.execPath(),
    args: [
      "run",
      "--allow-net=127.0.0.1",
      `--allow-env=${ENV_NAMES.join(",")}`,
      "examples/deploy.ts",
    ],
    cwd: ROOT,
    env: { ...baseEnvironment(), HOST: "127.0.0.1", PORT: "0", ...env },
    ready: /Listening on (http:\/\/127\.0\.0\.1:\d+)\//,
  });
}

async function getJson(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}

/** Every property name in a JSON value, at any depth. */
function keysOf(value: unknown): Set<string> {
  const keys = new Set<string>();
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (typeof node === "object" && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        keys.add(key);
        visit(child);
      }
    }
  };
  visit(value);
  return keys;
}

Deno.test("examples/deploy.ts proxies, fails over and reports health without secrets", async (t) => {
  await using emulator = startGenesysEmulator({
    clients: [BLUE, GREEN],
    // Tokens of a regenerated client die at once, so the proxy's next call
    // meets a 401 and must re-authenticate, and blue's rejection must move it
    // to green.
    revokeTokensOnRegenerate: true,
  });
  const proxy = await startProxy({
    GENESYS_TOKEN_URL: emulator.tokenUrl,
    GENESYS_API_URL: emulator.apiUrl,
    GENESYS_CLIENT_ID_BLUE: BLUE.clientId,
    GENESYS_CLIENT_SECRET_BLUE: BLUE.secret,
    GENESYS_CLIENT_ID_GREEN: GREEN.clientId,
    GENESYS_CLIENT_SECRET_GREEN: GREEN.secret,
    PROXY_KEY,
  });
  const base = proxy.ready[1];
  const withKey = { headers: { "x-proxy-key": PROXY_KEY } };
  let blueSecretNow = BLUE.secret;
  try {
    await t.step("forwards an allow-listed GET with blue's token", async () => {
      const { status, body } = await getJson(
        `${base}/api/v2/tokens/me`,
        withKey,
      );
      assert.equal(status, 200);
      assert.equal(oauthClientId(body), BLUE.clientId);
      assert.equal(emulator.stats().tokenRequestsByClient[BLUE.clientId], 1);
    });

    await t.step(
      "serves a regenerated-away secret by failing over to green",
      async () => {
        blueSecretNow = emulator.regenerateSecret(BLUE.clientId);
        const { status, body } = await getJson(
          `${base}/api/v2/tokens/me`,
          withKey,
        );
        assert.equal(status, 200);
        assert.equal(oauthClientId(body), GREEN.clientId);
        const stats = emulator.stats();
        assert.equal(stats.apiUnauthorized, 1, "one stale-token 401, replayed");
        assert.equal(stats.tokenRequestsByClient[GREEN.clientId], 1);
      },
    );

    await t.step(
      "/healthz shows the failover and no secret or token",
      async () => {
        const response = await fetch(`${base}/healthz`);
        const text = await response.text();
        assert.equal(response.status, 200);
        const health = JSON.parse(text);
        assert.equal(health.active, "green");
        assert.deepEqual(
          health.credentials.map((c: { label: string; state: string }) => [
            c.label,
            c.state,
          ]),
          [["blue", "rejected"], ["green", "ready"]],
        );
        for (const secret of [BLUE.secret, GREEN.secret, blueSecretNow]) {
          assert.ok(!text.includes(secret), "a secret leaked into /healthz");
        }
        const allowedKeys = new Set([
          "active",
          "credentials",
          "label",
          "clientId",
          "state",
          "expiresAt",
          "lastError",
          "code",
          "message",
          "status",
          "oauthError",
        ]);
        const unexpected = [...keysOf(health)].filter((k) =>
          !allowedKeys.has(k)
        );
        assert.deepEqual(unexpected, [], "unexpected fields in /healthz");
      },
    );

    await t.step(
      "refuses other paths, other methods and callers without the key",
      async () => {
        const before = emulator.stats().apiRequests;
        const denied = await getJson(`${base}/api/v2/users/me`, withKey);
        assert.equal(denied.status, 404);
        const post = await fetch(`${base}/api/v2/tokens/me`, {
          method: "POST",
          ...withKey,
        });
        await post.body?.cancel();
        assert.equal(post.status, 405);
        assert.equal(post.headers.get("allow"), "GET, HEAD");
        const anonymous = await getJson(`${base}/api/v2/tokens/me`);
        assert.equal(anonymous.status, 401);
        const traversal = await getJson(
          `${base}/api/v2/tokens/me/..%2F..%2Foauth/clients/x/secret`,
          withKey,
        );
        assert.equal(traversal.status, 404);
        assert.equal(emulator.stats().apiRequests, before, "nothing forwarded");
      },
    );

    await t.step(
      "answers 502 with a code once every credential is rejected",
      async () => {
        const greenSecretNow = emulator.regenerateSecret(GREEN.clientId);
        const response = await fetch(`${base}/api/v2/tokens/me`, withKey);
        const text = await response.text();
        assert.equal(response.status, 502);
        assert.equal(JSON.parse(text).error, "ALL_CREDENTIALS_REJECTED");
        for (const secret of [GREEN.secret, greenSecretNow, blueSecretNow]) {
          assert.ok(!text.includes(secret), "a secret leaked into the error");
        }
      },
    );

    await t.step("logs the failover event and never a secret", () => {
      const output = proxy.output();
      assert.match(output, /"type":"failover","from":"blue","to":"green"/);
      for (const secret of [BLUE.secret, GREEN.secret, blueSecretNow]) {
        assert.ok(!output.includes(secret), "a secret leaked into the logs");
      }
    });
  } finally {
    const status = await proxy.stop();
    assert.equal(status.signal, "SIGTERM", proxy.output());
  }
});

Deno.test("examples/deploy.ts names a missing variable and exits", async () => {
  const proxy = startProxy({
    GENESYS_TOKEN_URL: "http://127.0.0.1:9/oauth/token",
    GENESYS_API_URL: "http://127.0.0.1:9",
    GENESYS_CLIENT_ID_BLUE: BLUE.clientId,
    GENESYS_CLIENT_SECRET_BLUE: BLUE.secret,
    GENESYS_CLIENT_ID_GREEN: GREEN.clientId,
  });
  await assert.rejects(proxy, (error: Error) => {
    assert.match(error.message, /exited early \(code 1/);
    assert.match(error.message, /GENESYS_CLIENT_SECRET_GREEN/);
    assert.ok(!error.message.includes(BLUE.secret));
    return true;
  });
});

function oauthClientId(body: Record<string, unknown>): unknown {
  return (body.OAuthClient as { id?: unknown } | undefined)?.id;
}
