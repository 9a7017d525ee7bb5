/**
 * The Auth0 emulator driven by Auth0's own Node SDK. The SDK builds
 * `https://<domain>/…` and has no base-URL option, so a `fetch` that sends
 * the tenant's https origin to the emulator's loopback http one stands in
 * for DNS; everything else (the client-credentials token request, the
 * Management API call, parsing answers and errors) is the SDK's own.
 */
import assert from "node:assert/strict";
import { ManagementClient, ManagementError } from "../../deps/auth0_sdk.ts";
import { startAuth0Emulator } from "../../../src/testing/providers/auth0.ts";

Deno.test("Auth0 emulator: the auth0 SDK gets a Management token, rotates a secret and reads it back; a missing scope is its 403", async () => {
  await using auth0 = startAuth0Emulator({ domain: "tenant.auth0.test" });
  auth0.addClient({ clientId: "green", secret: "green-secret" });
  auth0.addClient({
    clientId: "admin",
    secret: "admin-secret",
    grants: [{
      audience: auth0.managementAudience,
      scopes: ["update:client_keys", "read:client_keys"],
    }],
  });
  auth0.addClient({
    clientId: "reader",
    secret: "reader-secret",
    grants: [{ audience: auth0.managementAudience, scopes: ["read:clients"] }],
  });
  const tenant = "https://tenant.auth0.test";
  const requested: string[] = [];
  const viaEmulator: typeof fetch = (input, init) => {
    const request = new Request(input, init);
    requested.push(`${request.method} ${new URL(request.url).pathname}`);
    assert.ok(request.url.startsWith(tenant), request.url);
    return fetch(
      new Request(auth0.url + request.url.slice(tenant.length), request),
    );
  };
  const management = new ManagementClient({
    domain: "tenant.auth0.test",
    clientId: "admin",
    clientSecret: "admin-secret",
    fetch: viaEmulator,
    maxRetries: 0,
  });
  const rotated = await management.clients.rotateSecret("green");
  assert.equal(rotated.client_id, "green");
  assert.equal(rotated.client_secret, auth0.getClientSecret("green"));
  assert.notEqual(rotated.client_secret, "green-secret");
  const read = await management.clients.get("green");
  assert.equal(read.client_secret, rotated.client_secret);
  assert.deepEqual(requested, [
    "POST /oauth/token",
    "POST /api/v2/clients/green/rotate-secret",
    "GET /api/v2/clients/green",
  ]);

  const reader = new ManagementClient({
    domain: "tenant.auth0.test",
    clientId: "reader",
    clientSecret: "reader-secret",
    fetch: viaEmulator,
    maxRetries: 0,
  });
  await assert.rejects(
    reader.clients.rotateSecret("green"),
    (error: unknown) => {
      assert.ok(error instanceof ManagementError, String(error));
      assert.equal(error.statusCode, 403);
      assert.match(JSON.stringify(error.body), /insufficient_scope/);
      return true;
    },
  );
  const missing = await reader.clients.get("nobody").catch((e) => e);
  assert.ok(missing instanceof ManagementError);
  assert.equal(missing.statusCode, 404);
});
