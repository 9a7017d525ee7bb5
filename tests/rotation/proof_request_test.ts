/**
 * The one proof of the rotation flows speaks each provider's token
 * endpoint: the plan's token request with the active credential, the new
 * secret's proof and promotion's proof send the service's `scope` and
 * further parameters (Auth0's `audience`) with the credential's auth method,
 * and the proof waits at least as long as the provider says a new secret
 * may take to work (`IssuedSecret.propagationMs`). Against an in-memory
 * two-secret provider and a token endpoint behind an injected fetch that
 * refuses what Okta, Entra ID and Auth0 refuse.
 */
import assert from "node:assert/strict";
import type {
  IssuedSecret,
  ProviderClientInfo,
  SecretProvider,
} from "../../src/rotation/provider.ts";
import { createCallbackSink } from "../../src/rotation/sinks.ts";
import {
  runStagedRotation,
  StagedRotationError,
  type StagedRotationOptions,
} from "../../src/rotation/staged_rotation.ts";
import { runPromotion } from "../../src/rotation/promotion.ts";
import { Secret } from "../../src/secret.ts";
import { InstantClock } from "../genesys/instant_clock.ts";

const CLIENT = "app-client";
const TOKEN_URL = "http://127.0.0.1:9/oauth2/default/v1/token";
const SCOPE = "orders.read";
const AUDIENCE = "https://api.example/";

interface SeenRequest {
  readonly basic: boolean;
  readonly clientId?: string;
  readonly scope?: string;
  readonly audience?: string;
}

/** A client with two secrets; a new one works only `delayMs` after it was issued. */
function world(setup: { propagationMs?: number; delayMs?: number } = {}) {
  // Request timeouts (10 s) never fire; the proof's waits (at most 5 s) pass at once.
  const clock = new InstantClock(9_000);
  const live = new Map<string, number>([["blue-secret", 0]]);
  const seen: SeenRequest[] = [];
  let issued = 0;
  const provider: SecretProvider = {
    name: "Fake provider",
    model: "two-secrets",
    inspectClient: (clientId): Promise<ProviderClientInfo> =>
      Promise.resolve({
        clientId,
        state: "active",
        maxSecrets: 2,
        secrets: [...live.keys()].map((value, i) => ({
          secretId: `s${i}-${value}`,
          status: "active" as const,
        })),
      }),
    issueSecret: (clientId): Promise<IssuedSecret> => {
      const value = `new-secret-${++issued}`;
      live.set(value, clock.now() + (setup.delayMs ?? 0));
      return Promise.resolve({
        clientId,
        secret: new Secret(value),
        secretId: `s-new-${issued}`,
        ...(setup.propagationMs === undefined
          ? {}
          : { propagationMs: setup.propagationMs }),
      });
    },
    revokeSecret: () => Promise.resolve(),
  };
  /** Okta/Entra refuse a request without scope, Auth0 one without audience; post only. */
  const fetch = async (
    _input: RequestInfo | URL,
    init?: RequestInit,
  ): Promise<Response> => {
    const body = new URLSearchParams(String(init?.body ?? ""));
    const basic = new Headers(init?.headers).has("authorization");
    seen.push({
      basic,
      clientId: body.get("client_id") ?? undefined,
      scope: body.get("scope") ?? undefined,
      audience: body.get("audience") ?? undefined,
    });
    await Promise.resolve();
    if (basic) {
      return Response.json({ error: "invalid_client" }, { status: 401 });
    }
    if (body.get("scope") !== SCOPE || body.get("audience") !== AUDIENCE) {
      return Response.json({ error: "invalid_scope" }, { status: 400 });
    }
    const from = live.get(body.get("client_secret") ?? "");
    if (body.get("client_id") !== CLIENT || from === undefined) {
      return Response.json({ error: "invalid_client" }, { status: 401 });
    }
    if (clock.now() < from) {
      return Response.json({ error: "invalid_client" }, { status: 401 });
    }
    return Response.json({
      access_token: crypto.randomUUID(),
      token_type: "Bearer",
      expires_in: 3600,
    });
  };
  const stored: Record<string, string> = {
    blue: "blue-secret",
    green: "green-secret",
  };
  const options = (
    extra: Partial<StagedRotationOptions> = {},
  ): StagedRotationOptions => ({
    credentials: ["blue", "green"].map((label) => ({
      label,
      clientId: CLIENT,
      clientSecret: stored[label],
      authMethod: "client_secret_post" as const,
    })),
    active: "blue",
    tokenUrl: TOKEN_URL,
    scope: SCOPE,
    tokenParams: { audience: AUDIENCE },
    provider,
    sink: createCallbackSink("memory", ({ label, secret }) => {
      stored[label] = secret.reveal();
    }),
    fetch,
    clock,
    ...extra,
  });
  return { clock, seen, options, stored, fetch };
}

Deno.test("the plan's token request and the proof send the scope, the audience and client_secret_post", async () => {
  const w = world();
  const report = await runStagedRotation(w.options());
  assert.equal(report.standby, "green");
  assert.equal(w.stored.green, "new-secret-1");
  // The plan's request with blue, then the proof of green's new secret.
  assert.equal(w.seen.length, 2);
  for (const request of w.seen) {
    assert.deepEqual(request, {
      basic: false,
      clientId: CLIENT,
      scope: SCOPE,
      audience: AUDIENCE,
    });
  }
});

Deno.test("without the scope the provider requires, the plan stops before anything is issued", async () => {
  const w = world();
  await assert.rejects(
    runStagedRotation(w.options({ scope: undefined })),
    (error: unknown) =>
      error instanceof StagedRotationError && error.phase === "plan",
  );
  assert.equal(w.stored.green, "green-secret");
  assert.equal(w.seen.length, 1);
});

Deno.test("a scope or parameter the library sets itself is refused in the plan, before any request", async () => {
  const w = world();
  await assert.rejects(
    runStagedRotation(w.options({ tokenParams: { client_id: "other" } })),
    (error: unknown) =>
      error instanceof StagedRotationError && error.phase === "plan" &&
      /tokenParams\.client_id/.test(String(error.cause)),
  );
  assert.equal(w.seen.length, 0);
});

Deno.test("the proof waits at least the provider's propagationMs, beyond the propagation timeout", async () => {
  // Entra ID: 18 s; the secret works after 12 s; the rotation allows 5 s.
  const w = world({ propagationMs: 18_000, delayMs: 12_000 });
  const started = w.clock.now();
  const report = await runStagedRotation(
    w.options({ propagationTimeoutMs: 5_000 }),
  );
  assert.equal(report.standby, "green");
  const elapsed = w.clock.now() - started;
  assert.ok(elapsed >= 12_000 && elapsed <= 18_000, `${elapsed} ms`);
  const test = report.phases.find((e) =>
    e.phase === "test" && e.status === "progress"
  );
  assert.match(test?.detail ?? "", /up to 18 s in all/);
});

Deno.test("without propagationMs the same secret fails the proof within the propagation timeout, kept", async () => {
  const w = world({ delayMs: 12_000 });
  await assert.rejects(
    runStagedRotation(w.options({ propagationTimeoutMs: 5_000 })),
    (error: unknown) =>
      error instanceof StagedRotationError && error.phase === "test" &&
      /within 5 s/.test(error.state),
  );
  assert.equal(w.stored.green, "new-secret-1");
});

Deno.test("promotion proves the target with the scope, the audience and client_secret_post", async () => {
  const w = world();
  let published: string | undefined;
  const report = await runPromotion({
    credentials: [
      { label: "blue", clientId: CLIENT, clientSecret: "nope" },
      {
        label: "green",
        clientId: CLIENT,
        clientSecret: "blue-secret",
        authMethod: "client_secret_post",
      },
    ],
    active: "blue",
    to: "green",
    tokenUrl: TOKEN_URL,
    scope: [SCOPE],
    tokenParams: { audience: AUDIENCE },
    publishActive: (label) => void (published = label),
    fetch: w.fetch,
    clock: w.clock,
  });
  assert.equal(report.active, "green");
  assert.equal(published, "green");
  assert.deepEqual(w.seen, [{
    basic: false,
    clientId: CLIENT,
    scope: SCOPE,
    audience: AUDIENCE,
  }]);
});
