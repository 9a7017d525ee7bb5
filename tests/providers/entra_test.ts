/**
 * The Entra ID adapter against the Entra emulator: addPassword → prove
 * through the propagation delay → removePassword, Graph permissions,
 * throttling.
 */
import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../mod.ts";
import {
  ENTRA_PROPAGATION_MS,
  EntraErrorCode,
  entraSecretProvider,
  type EntraSecretProviderOptions,
} from "../../src/providers/entra.ts";
import { ProviderApiError } from "../../src/providers/admin_http.ts";
import { systemClock } from "../../src/clock.ts";
import { Secret } from "../../src/secret.ts";
import {
  type EntraGraphPermission,
  startEntraEmulator,
} from "../../src/testing/providers/entra.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";
import { faultyFetch, prove, rejected } from "./admin_support.ts";

const APP = "11111111-1111-4111-8111-111111111111";
const OLD_KEY = "00000000-0000-4000-8000-000000000001";
const OLD = "old-entra-secret";
const GRAPH_SCOPE = "https://graph.microsoft.com/.default";
const API_SCOPE = "api://orders/.default";

function start(
  permissions: EntraGraphPermission[],
  owns: string[] = [APP],
  propagationDelayMs = 0,
) {
  return startEntraEmulator({
    propagationDelayMs,
    applications: [
      { appId: APP, secrets: [{ value: OLD, keyId: OLD_KEY }] },
      {
        appId: "admin-app",
        secrets: ["admin-secret"],
        graphPermissions: permissions,
        owns,
      },
    ],
  });
}

/** The admin's Graph token, through the library itself. */
function adminAuth(tokenUrl: string) {
  return createDualSecretAuth({
    credentials: [{
      label: "admin",
      clientId: "admin-app",
      clientSecret: "admin-secret",
      authMethod: "client_secret_post",
    }],
    tokenUrl,
    scope: GRAPH_SCOPE,
  });
}

function provider(
  graphUrl: string,
  auth: ReturnType<typeof adminAuth>,
  options: Partial<EntraSecretProviderOptions> = {},
) {
  return entraSecretProvider({
    graphUrl,
    getAccessToken: (o) => auth.getAccessToken(o),
    ...options,
  });
}

Deno.test("Entra: addPassword, prove through the propagation delay, removePassword the old keyId", async () => {
  await using entra = start(["Application.ReadWrite.OwnedBy"], [APP], 300);
  await using auth = adminAuth(entra.tokenUrl);
  const graph = provider(entra.apiUrl, auth, { displayName: "rotation" });
  assert.equal(graph.model, "two-secrets");

  const before = await graph.inspectClient(APP);
  assert.deepEqual(before.secrets?.map((s) => [s.secretId, s.status]), [[
    OLD_KEY,
    "active",
  ]]);
  assert.equal(before.maxSecrets, undefined, "Entra documents no small limit");

  const issued = await graph.issueSecret(APP);
  assert.equal(issued.propagationMs, ENTRA_PROPAGATION_MS);
  assert.ok(issued.expiresAt! > Date.now() + 700 * 24 * 3600 * 1000);
  assert.equal(
    entra.passwordCredentials(APP).find((p) => p.keyId === issued.secretId)
      ?.displayName,
    "rotation",
  );
  const proof = {
    tokenUrl: entra.tokenUrl,
    clientId: APP,
    scope: API_SCOPE,
    authMethod: "client_secret_post" as const,
    clock: systemClock,
  };
  // Refused at first, as Entra refuses a secret still propagating.
  const proven = await prove({
    ...proof,
    secret: issued.secret,
    propagationMs: issued.propagationMs,
  });
  assert.ok(proven.attempts > 1, `proved after ${proven.attempts} attempts`);

  await graph.revokeSecret!(APP, OLD_KEY);
  assert.deepEqual(
    entra.passwordCredentials(APP).map((p) => p.keyId),
    [issued.secretId],
  );
  assert.equal(await rejected({ ...proof, secret: new Secret(OLD) }), true);
  assert.equal(await rejected({ ...proof, secret: issued.secret }), false);
  // Removing it again finds nothing to remove.
  const requests = entra.stats().apiRequests;
  await graph.revokeSecret!(APP, OLD_KEY);
  assert.equal(entra.stats().apiRequests, requests + 1, "one read, no write");
});

Deno.test("Entra: OwnedBy without owning the application is refused, naming the owner requirement", async () => {
  await using entra = start(["Application.ReadWrite.OwnedBy"], []);
  await using auth = adminAuth(entra.tokenUrl);
  const error = await provider(entra.apiUrl, auth).issueSecret(APP).catch((
    e,
  ) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, EntraErrorCode.FORBIDDEN);
  assert.equal(error.providerCode, "Authorization_RequestDenied");
  assert.match(error.message, /Application\.ReadWrite\.OwnedBy/);
  assert.match(error.message, /owner of the application/);
  assert.equal(entra.passwordCredentials(APP).length, 1);
});

Deno.test("Entra: Application.Read.All may inspect; addPassword names the write permission", async () => {
  await using entra = start(["Application.Read.All"], []);
  await using auth = adminAuth(entra.tokenUrl);
  const graph = provider(entra.apiUrl, auth);
  assert.equal((await graph.inspectClient(APP)).secrets?.length, 1);
  const error = await graph.issueSecret(APP).catch((e) => e);
  assert.equal(error.code, EntraErrorCode.FORBIDDEN);
  assert.match(error.permission, /Application\.ReadWrite\.All/);
  assert.match(error.message, /lacks Application\.ReadWrite\.OwnedBy/);
});

Deno.test("Entra: an unknown application is not found; an expired secret lists inactive with its end", async () => {
  const clock = new InstantClock();
  await using entra = startEntraEmulator({
    clock,
    applications: [
      {
        appId: APP,
        secrets: [{
          value: OLD,
          keyId: OLD_KEY,
          startDateTime: new Date(clock.now() - 2000).toISOString(),
          endDateTime: new Date(clock.now() - 1000).toISOString(),
        }],
      },
      {
        appId: "admin-app",
        secrets: ["admin-secret"],
        graphPermissions: ["Application.ReadWrite.All"],
      },
    ],
  });
  await using auth = adminAuth(entra.tokenUrl);
  const graph = provider(entra.apiUrl, auth, {
    clock,
    requestTimeoutMs: NEVER_FIRES,
  });
  const [old] = (await graph.inspectClient(APP)).secrets!;
  assert.equal(old.status, "inactive");
  assert.equal(old.expiresAt, clock.now() - 1000);
  const missing = await graph.inspectClient(
    "22222222-2222-4222-8222-222222222222",
  ).catch((e) => e);
  assert.equal(missing.code, EntraErrorCode.NOT_FOUND);
});

Deno.test("Entra: Graph's 429 is waited out as Retry-After asks; a 500 on addPassword is not retried", async () => {
  await using entra = start(["Application.ReadWrite.All"]);
  await using auth = adminAuth(entra.tokenUrl);
  const clock = new InstantClock();
  const throttled = faultyFetch(
    [() =>
      Response.json({
        error: { code: "TooManyRequests", message: "Too many requests" },
      }, { status: 429, headers: { "retry-after": "3" } })],
    (_method, url) => url.pathname.endsWith("/addPassword"),
  );
  const issued = await provider(entra.apiUrl, auth, {
    fetch: throttled.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).issueSecret(APP);
  assert.deepEqual(clock.waits, [3000]);
  assert.equal(entra.passwordCredentials(APP).length, 2);
  assert.ok(
    entra.passwordCredentials(APP).some((p) => p.keyId === issued.secretId),
  );

  const failing = faultyFetch(
    [() =>
      Response.json({ error: { code: "InternalServerError" } }, {
        status: 500,
      })],
    (_method, url) => url.pathname.endsWith("/addPassword"),
  );
  const error = await provider(entra.apiUrl, auth, {
    fetch: failing.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).issueSecret(APP).catch((e) => e);
  assert.equal(error.code, EntraErrorCode.UNAVAILABLE);
  assert.equal(
    failing.seen.filter((line) => line.endsWith("/addPassword")).length,
    1,
  );
});

Deno.test("Entra: a removePassword whose answer was lost is retried, and the retry finding nothing resolves", async () => {
  await using entra = start(["Application.ReadWrite.All"]);
  await using auth = adminAuth(entra.tokenUrl);
  const clock = new InstantClock();
  const graph = provider(entra.apiUrl, auth, {
    clock,
    requestTimeoutMs: NEVER_FIRES,
  });
  const issued = await graph.issueSecret(APP);
  let lost = 0;
  // The removal reaches Graph, then its answer is lost on the way back.
  const lossy: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const response = await fetch(request);
    if (lost === 0 && request.url.endsWith("/removePassword")) {
      lost++;
      await response.body?.cancel();
      throw new TypeError("connection reset");
    }
    return response;
  };
  await provider(entra.apiUrl, auth, {
    fetch: lossy,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).revokeSecret!(APP, OLD_KEY);
  assert.equal(lost, 1);
  assert.deepEqual(
    entra.passwordCredentials(APP).map((p) => p.keyId),
    [issued.secretId],
  );
});

Deno.test("Entra: an addPassword whose answer was lost is not retried, and the error says a secret may have been added", async () => {
  await using entra = start(["Application.ReadWrite.All"]);
  await using auth = adminAuth(entra.tokenUrl);
  const clock = new InstantClock();
  const lost: Array<() => Response | Promise<Response>> = [
    () => Promise.reject(new TypeError("connection reset")),
    () =>
      Response.json({ error: { code: "ServiceUnavailable" } }, { status: 503 }),
    () => new Response("x".repeat(70_000), { status: 200 }),
  ];
  for (const answer of lost) {
    const before = entra.passwordCredentials(APP).length;
    let sent = 0;
    const error = await provider(entra.apiUrl, auth, {
      fetch: async (input, init) => {
        const request = new Request(input, init);
        const response = await fetch(request);
        if (!request.url.endsWith("/addPassword")) return response;
        sent++;
        await response.body?.cancel();
        return answer();
      },
      clock,
      requestTimeoutMs: NEVER_FIRES,
    }).issueSecret(APP).catch((e) => e);
    assert.ok(error instanceof ProviderApiError, String(error));
    assert.equal(sent, 1);
    assert.equal(entra.passwordCredentials(APP).length, before + 1);
    // Issuing again blindly would leave a secret nobody holds.
    assert.match(error.message, /may have been made/);
    assert.match(error.message, /before sending it again/);
  }
});

Deno.test("Entra: an addPassword answer that lacks the keyId says a secret may have been added", async () => {
  await using entra = start(["Application.ReadWrite.All"]);
  await using auth = adminAuth(entra.tokenUrl);
  const error = await provider(entra.apiUrl, auth, {
    fetch: async (input, init) => {
      const request = new Request(input, init);
      const response = await fetch(request);
      if (!request.url.endsWith("/addPassword")) return response;
      const { keyId: _keyId, ...rest } = await response.json();
      return Response.json(rest);
    },
  }).issueSecret(APP).catch((e) => e);
  assert.equal(error.code, EntraErrorCode.REQUEST_FAILED);
  assert.equal(entra.passwordCredentials(APP).length, 2);
  assert.match(error.message, /a secret may have been added/);
});

Deno.test("Entra: the application's last working secret is not removed (Graph would allow it, and every consumer would fail)", async () => {
  await using entra = start(["Application.ReadWrite.All"]);
  await using auth = adminAuth(entra.tokenUrl);
  const graph = provider(entra.apiUrl, auth);
  const error = await graph.revokeSecret!(APP, OLD_KEY).catch((e) => e);
  assert.ok(error instanceof ProviderApiError, String(error));
  assert.equal(error.code, EntraErrorCode.REFUSED);
  assert.match(error.message, /only working secret/);
  assert.deepEqual(entra.passwordCredentials(APP).map((p) => p.keyId), [
    OLD_KEY,
  ]);
  // Beside a second working secret it goes.
  const issued = await graph.issueSecret(APP);
  await graph.revokeSecret!(APP, OLD_KEY);
  assert.deepEqual(entra.passwordCredentials(APP).map((p) => p.keyId), [
    issued.secretId,
  ]);
});
