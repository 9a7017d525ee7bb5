/**
 * The Keycloak adapter against the Keycloak emulator: two secrets under the
 * rotation policy (regenerate → prove → delete rotated), the refusal
 * unless the realm's client policies prove the policy (none, removed with
 * its attribute left, a rotated-expiration-period of 0, a condition the
 * adapter does not evaluate, no view-realm), the loud failure when the old
 * secret is lost anyway, the expiry warning, a missing role, retries, and a
 * full staged rotation of twin clients through the engine.
 */
import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../mod.ts";
import {
  createCallbackSink,
  type RotationPhase,
  runStagedRotation,
} from "../../rotation.ts";
import {
  KeycloakErrorCode,
  keycloakSecretProvider,
  type KeycloakSecretProviderOptions,
} from "../../src/providers/keycloak.ts";
import { ProviderApiError } from "../../src/providers/admin_http.ts";
import { systemClock } from "../../src/clock.ts";
import { Secret } from "../../src/secret.ts";
import {
  type KeycloakEmulatorOptions,
  type KeycloakRealmManagementRole,
  startKeycloakEmulator,
} from "../../src/testing/providers/keycloak.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";
import { faultyFetch, prove, rejected } from "./admin_support.ts";

const OLD = "old-keycloak-secret";
const DAY_MS = 24 * 60 * 60 * 1000;

function start(
  options: Partial<KeycloakEmulatorOptions> = {},
  roles: KeycloakRealmManagementRole[] = ["manage-clients", "view-realm"],
) {
  return startKeycloakEmulator({
    secretRotation: {},
    ...options,
    clients: [
      { clientId: "service", secret: OLD },
      { clientId: "blue", secret: "blue-secret" },
      { clientId: "green", secret: "green-secret" },
      {
        clientId: "admin",
        secret: "admin-secret",
        realmManagementRoles: roles,
      },
    ],
  });
}

/** The admin token, through the library itself. */
function adminAuth(tokenUrl: string) {
  return createDualSecretAuth({
    credentials: [{
      label: "admin",
      clientId: "admin",
      clientSecret: "admin-secret",
    }],
    tokenUrl,
  });
}

function provider(
  keycloak: ReturnType<typeof start>,
  auth: ReturnType<typeof adminAuth>,
  options: Partial<KeycloakSecretProviderOptions> = {},
) {
  return keycloakSecretProvider({
    baseUrl: keycloak.url,
    realm: keycloak.realm,
    getAccessToken: (o) => auth.getAccessToken(o),
    ...options,
  });
}

Deno.test("Keycloak with the rotation policy: regenerate (the old secret becomes rotated), prove, delete the rotated one", async () => {
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  const kc = provider(keycloak, auth);
  assert.equal(kc.model, "two-secrets");

  const before = await kc.inspectClient("service");
  assert.equal(before.maxSecrets, 2);
  assert.equal(before.secrets?.length, 1);
  const [old] = before.secrets!;
  const state = keycloak.secretState("service");
  assert.equal(old.expiresAt, state.expirationTime! * 1000);
  assert.equal(old.createdAt, state.creationTime * 1000);
  assert.match(old.secretId, /^kc-[0-9a-f]{16}$/);
  assert.ok(!old.secretId.includes(OLD));

  const issued = await kc.issueSecret("service");
  assert.equal(issued.secret.reveal(), keycloak.secretState("service").secret);
  assert.equal(keycloak.secretState("service").rotated, OLD);
  const proof = {
    tokenUrl: keycloak.tokenUrl,
    clientId: "service",
    clock: systemClock,
  };
  await prove({ ...proof, secret: issued.secret });
  // The old secret works on as the rotated one while consumers switch.
  assert.equal(await rejected({ ...proof, secret: new Secret(OLD) }), false);
  const during = await kc.inspectClient("service");
  assert.deepEqual(during.secrets?.map((s) => [s.secretId, s.status]), [
    [issued.secretId, "active"],
    [old.secretId, "rotated"],
  ]);
  assert.equal(
    during.secrets![1].expiresAt,
    keycloak.secretState("service").rotatedExpirationTime! * 1000,
  );

  await kc.revokeSecret!("service", old.secretId);
  assert.equal(keycloak.secretState("service").rotated, undefined);
  assert.equal(await rejected({ ...proof, secret: new Secret(OLD) }), true);
  assert.equal(await rejected({ ...proof, secret: issued.secret }), false);
  // Gone already: nothing to do. The main secret is never revoked.
  await kc.revokeSecret!("service", old.secretId);
  const main = await kc.revokeSecret!("service", issued.secretId!).catch((
    e,
  ) => e);
  assert.equal(main.code, KeycloakErrorCode.REFUSED);
  assert.match(main.message, /main secret/);
  assert.equal(keycloak.secretState("service").secret, issued.secret.reveal());
});

Deno.test("Keycloak without the rotation policy: issuing is refused with the reason, and nothing changes", async () => {
  await using keycloak = start({ secretRotation: false });
  await using auth = adminAuth(keycloak.tokenUrl);
  const kc = provider(keycloak, auth);
  const info = await kc.inspectClient("service");
  assert.equal(info.maxSecrets, 1);
  assert.equal(info.secrets?.[0].expiresAt, undefined);
  const error = await kc.issueSecret("service").catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, KeycloakErrorCode.ROTATION_POLICY_OFF);
  assert.match(error.message, /would kill the secret in use/);
  assert.match(error.message, /secret-rotation executor/);
  assert.match(error.message, /twin-clients/);
  assert.equal(keycloak.secretState("service").secret, OLD);
  assert.equal(keycloak.stats().secretsCreated, 0);
});

Deno.test("Keycloak: a second regeneration while a rotated secret lives is refused (it would drop that secret)", async () => {
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  const kc = provider(keycloak, auth);
  await kc.issueSecret("service");
  const error = await kc.issueSecret("service").catch((e) => e);
  assert.equal(error.code, KeycloakErrorCode.LIMIT_REACHED);
  assert.match(error.message, /already has a rotated secret/);
  assert.equal(keycloak.secretState("service").rotated, OLD);
});

Deno.test("Keycloak: inspect warns before the main secret's expiration time", async () => {
  await using keycloak = start({
    secretRotation: { expirationPeriodSeconds: 5 * 24 * 3600 },
  });
  await using auth = adminAuth(keycloak.tokenUrl);
  const warnings: string[] = [];
  const kc = provider(keycloak, auth, {
    onWarning: (message) => warnings.push(message),
  });
  const [main] = (await kc.inspectClient("service")).secrets!;
  assert.ok(main.expiresAt! - Date.now() <= 5 * DAY_MS);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /refuses it even with the right value/);
  assert.match(warnings[0], /Rotate before then/);

  const quiet: string[] = [];
  await provider(keycloak, auth, {
    onWarning: (message) => quiet.push(message),
    warnBeforeExpiryMs: DAY_MS,
  }).inspectClient("service");
  assert.deepEqual(quiet, []);
});

Deno.test("Keycloak: view-clients may inspect; regenerating names manage-clients", async () => {
  await using keycloak = start({}, ["view-clients", "view-realm"]);
  await using auth = adminAuth(keycloak.tokenUrl);
  const kc = provider(keycloak, auth);
  assert.equal((await kc.inspectClient("service")).secrets?.length, 1);
  const error = await kc.issueSecret("service").catch((e) => e);
  assert.equal(error.code, KeycloakErrorCode.FORBIDDEN);
  assert.match(error.permission, /manage-clients/);
  assert.match(error.message, /lacks the realm-management role manage-clients/);
  assert.equal(keycloak.secretState("service").secret, OLD);
  const missing = await kc.inspectClient("nobody").catch((e) => e);
  assert.equal(missing.code, KeycloakErrorCode.NOT_FOUND);
});

Deno.test("Keycloak: a 503 or a proxy's 429 is retried on reads; regenerating is retried only when throttled", async () => {
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  const clock = new InstantClock();
  const unavailable = () =>
    Response.json({ error: "unknown" }, { status: 503 });
  const throttled = () =>
    Response.json({ error: "too many" }, {
      status: 429,
      headers: { "retry-after": "2" },
    });
  const reads = faultyFetch([unavailable, throttled]);
  await provider(keycloak, auth, {
    fetch: reads.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).inspectClient("service");
  assert.equal(clock.waits.length, 2);
  assert.equal(clock.waits[1], 2000);

  const regenerations = faultyFetch(
    [unavailable],
    (method) => method === "POST",
  );
  const error = await provider(keycloak, auth, {
    fetch: regenerations.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).issueSecret("service").catch((e) => e);
  assert.equal(error.code, KeycloakErrorCode.UNAVAILABLE);
  assert.equal(
    regenerations.seen.filter((l) => l.startsWith("POST")).length,
    1,
  );
  assert.equal(keycloak.secretState("service").secret, OLD);
});

Deno.test("Keycloak twin clients: a staged rotation through the engine regenerates the standby only, and its old secret dies even under the policy", async () => {
  await using keycloak = start();
  await using admin = adminAuth(keycloak.tokenUrl);
  const credentials = [
    { label: "blue", clientId: "blue", clientSecret: "blue-secret" },
    { label: "green", clientId: "green", clientSecret: "green-secret" },
  ];
  await using auth = createDualSecretAuth({
    credentials,
    tokenUrl: keycloak.tokenUrl,
  });
  await auth.getAccessToken();
  const kc = provider(keycloak, admin, { model: "twin-clients" });
  assert.equal(kc.revokeSecret, undefined);
  assert.equal((await kc.inspectClient("green")).secrets, undefined);
  const completed: RotationPhase[] = [];
  const report = await runStagedRotation({
    credentials,
    active: "blue",
    tokenUrl: keycloak.tokenUrl,
    provider: kc,
    sink: createCallbackSink(({ label, secret }) => {
      auth.setCredentials(
        credentials.map((c) =>
          c.label === label ? { ...c, clientSecret: secret } : c
        ),
      );
    }),
    testDelayMs: 50,
    promote: true,
    onPromote: async (to) => {
      await auth.rotate({ to });
    },
    onPhase: (event) => {
      if (event.status === "completed") completed.push(event.phase);
    },
  });
  assert.deepEqual(completed, [
    "plan",
    "regenerate",
    "publish",
    "test",
    "promote",
    "done",
  ]);
  assert.equal(report.active, "green");
  assert.equal(keycloak.secretState("blue").secret, "blue-secret");
  assert.notEqual(keycloak.secretState("green").secret, "green-secret");
  assert.equal(keycloak.secretState("green").rotated, undefined);
  assert.equal(
    await rejected({
      tokenUrl: keycloak.tokenUrl,
      clientId: "green",
      secret: new Secret("green-secret"),
      clock: systemClock,
    }),
    true,
  );
  assert.equal(auth.status().active, "green");
  assert.ok(await auth.getAccessToken());
});

Deno.test("Keycloak: a client uuid that is a dot segment (a hostile answer) is refused before it addresses another path", async () => {
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  const sent: string[] = [];
  const hostile: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    sent.push(`${request.method} ${url.pathname}`);
    const response = await fetch(request);
    if (!url.searchParams.has("clientId")) return response;
    const reps = await response.json();
    return Response.json(reps.map((rep: object) => ({ ...rep, id: ".." })));
  };
  const kc = provider(keycloak, auth, {
    fetch: hostile,
    model: "twin-clients",
  });
  const error = await kc.issueSecret("blue").catch((e) => e);
  assert.ok(error instanceof ProviderApiError, String(error));
  assert.equal(error.code, KeycloakErrorCode.REQUEST_FAILED);
  assert.deepEqual(
    sent.filter((line) => !line.includes("/clients")),
    [],
  );
  assert.equal(keycloak.secretState("blue").secret, "blue-secret");
});

Deno.test("Keycloak: a main secret past its expiration time is listed inactive (the token endpoint refuses it)", async () => {
  await using keycloak = start({
    secretRotation: { expirationPeriodSeconds: 5 * 24 * 3600 },
  });
  await using auth = adminAuth(keycloak.tokenUrl);
  // Six days on, by the adapter's clock.
  const later = { ...systemClock, now: () => Date.now() + 6 * DAY_MS };
  const warnings: string[] = [];
  const kc = provider(keycloak, auth, {
    clock: later,
    onWarning: (message) => warnings.push(message),
  });
  const [main] = (await kc.inspectClient("service")).secrets!;
  assert.ok(main.expiresAt! < later.now());
  assert.match(warnings[0], /expired at/);
  assert.equal(main.status, "inactive");
  // Before its expiration it is active.
  const [fresh] = (await provider(keycloak, auth).inspectClient("service"))
    .secrets!;
  assert.equal(fresh.status, "active");
});

Deno.test("Keycloak: a rotated secret past its rotated expiration time is listed inactive, should Keycloak still return it", async () => {
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  await provider(keycloak, auth).issueSecret("service");
  // Three days on by the adapter's clock: past the 2-day rotated expiration
  // (the emulator's own clock still serves the rotated secret).
  const later = { ...systemClock, now: () => Date.now() + 3 * DAY_MS };
  const [main, rotated] =
    (await provider(keycloak, auth, { clock: later }).inspectClient("service"))
      .secrets!;
  assert.equal(main.status, "active");
  assert.ok(rotated.expiresAt! < later.now());
  assert.equal(rotated.status, "inactive");
});

/** The client's secret still gets tokens. */
function works(keycloak: ReturnType<typeof start>, secret: string) {
  return rejected({
    tokenUrl: keycloak.tokenUrl,
    clientId: "service",
    clock: systemClock,
    secret: new Secret(secret),
  }).then((refused) => !refused);
}

Deno.test("Keycloak: the policy removed but client.secret.expiration.time left is refused, 0 regenerations, and the old secret still works", async () => {
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  const kc = provider(keycloak, auth);
  keycloak.setSecretRotation(false);
  // Keycloak leaves the attribute: the old check took it for the policy.
  const [main] = (await kc.inspectClient("service")).secrets!;
  assert.equal(
    main.expiresAt,
    keycloak.secretState("service").expirationTime! * 1000,
  );
  const error = await kc.issueSecret("service").catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, KeycloakErrorCode.ROTATION_POLICY_OFF);
  assert.equal(error.kind, "refused");
  assert.match(error.message, /nothing was changed/);
  assert.match(error.message, /no enabled client policy/);
  assert.match(error.message, /left over/);
  assert.match(error.message, /would kill the secret in use/);
  assert.equal(keycloak.stats().secretsCreated, 0);
  assert.equal(keycloak.secretState("service").secret, OLD);
  assert.equal(await works(keycloak, OLD), true);
});

Deno.test("Keycloak: a secret-rotation executor with rotated-expiration-period 0 is refused (it keeps no rotated secret)", async () => {
  await using keycloak = start({
    secretRotation: { rotatedExpirationPeriodSeconds: 0 },
  });
  await using auth = adminAuth(keycloak.tokenUrl);
  const error = await provider(keycloak, auth).issueSecret("service").catch((
    e,
  ) => e);
  assert.equal(error.code, KeycloakErrorCode.ROTATION_POLICY_OFF);
  assert.match(error.message, /rotated-expiration-period is 0/);
  assert.equal(keycloak.stats().secretsCreated, 0);
  assert.equal(await works(keycloak, OLD), true);
});

Deno.test("Keycloak: without view-realm issuing is refused naming it; rotationPolicyCheckedByOperator opts out", async () => {
  await using keycloak = start({}, ["view-clients", "manage-clients"]);
  await using auth = adminAuth(keycloak.tokenUrl);
  const error = await provider(keycloak, auth).issueSecret("service").catch((
    e,
  ) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, KeycloakErrorCode.FORBIDDEN);
  assert.equal(error.kind, "forbidden");
  assert.equal(error.status, 403);
  assert.match(error.permission!, /view-realm/);
  assert.match(error.message, /lacks the realm-management role view-realm/);
  assert.match(error.message, /rotationPolicyCheckedByOperator/);
  assert.ok(error.cause instanceof ProviderApiError);
  assert.equal(keycloak.stats().secretsCreated, 0);
  assert.equal(keycloak.secretState("service").secret, OLD);

  const trusted = provider(keycloak, auth, {
    rotationPolicyCheckedByOperator: true,
  });
  const issued = await trusted.issueSecret("service");
  assert.equal(keycloak.secretState("service").secret, issued.secret.reveal());
  assert.equal(keycloak.secretState("service").rotated, OLD);
  assert.throws(
    () =>
      provider(keycloak, auth, {
        rotationPolicyCheckedByOperator: "yes" as unknown as boolean,
      }),
    /rotationPolicyCheckedByOperator/,
  );
});

/**
 * A fetch that answers the realm's client policies with `policies` (and its
 * profiles with `profiles`, when given) and passes the rest through.
 */
function realmAnswers(policies: unknown[], profiles?: unknown[]) {
  const seen: string[] = [];
  const answer: typeof fetch = (input, init) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    seen.push(`${request.method} ${path}`);
    if (path.endsWith("/client-policies/policies")) {
      return Promise.resolve(Response.json({ policies, globalPolicies: [] }));
    }
    if (profiles && path.endsWith("/client-policies/profiles")) {
      return Promise.resolve(Response.json({ profiles, globalProfiles: [] }));
    }
    return fetch(request);
  };
  return { fetch: answer, seen };
}

const ROTATION_PROFILE = "secret-rotation-profile";

Deno.test("Keycloak: client policies are evaluated as Keycloak does; a condition the adapter does not evaluate is refused, not guessed", async (t) => {
  const policy = (conditions: unknown[], extra: object = {}) => ({
    name: "p",
    enabled: true,
    conditions,
    profiles: [ROTATION_PROFILE],
    ...extra,
  });
  const keepsNone = {
    name: "keeps-none",
    executors: [{
      executor: "secret-rotation",
      configuration: { "rotated-expiration-period": "0" },
    }],
  };
  const keepsTwoDays = {
    name: ROTATION_PROFILE,
    executors: [{ executor: "secret-rotation", configuration: {} }],
  };
  const roles = [{
    condition: "client-roles",
    configuration: { roles: ["x"] },
  }];
  const cases: {
    name: string;
    policies: unknown[];
    profiles?: unknown[];
    code?: string;
    message?: RegExp;
  }[] = [
    {
      name: "any-client applies",
      policies: [policy([{ condition: "any-client", configuration: {} }])],
    },
    {
      name: "client-access-type confidential and any-client, STRICT",
      policies: [policy([
        {
          condition: "client-access-type",
          configuration: { type: ["confidential"] },
        },
        { condition: "any-client" },
      ], { mode: "STRICT" })],
    },
    {
      name: "a disabled policy is no policy",
      policies: [policy([{ condition: "any-client" }], { enabled: false })],
      code: KeycloakErrorCode.ROTATION_POLICY_OFF,
      message: /no enabled client policy/,
    },
    {
      name: "client-access-type public does not select a confidential client",
      policies: [policy([{
        condition: "client-access-type",
        configuration: { type: ["public"] },
      }])],
      code: KeycloakErrorCode.ROTATION_POLICY_OFF,
    },
    {
      name: "negative logic excludes the client",
      policies: [policy([{
        condition: "client-access-type",
        configuration: { type: ["confidential"], "is-negative-logic": true },
      }])],
      code: KeycloakErrorCode.ROTATION_POLICY_OFF,
    },
    {
      name: "a policy without conditions applies to nothing",
      policies: [policy([])],
      code: KeycloakErrorCode.ROTATION_POLICY_OFF,
    },
    {
      name: "client-roles is not evaluated",
      policies: [policy([{
        condition: "client-roles",
        configuration: { roles: ["x"] },
      }])],
      code: KeycloakErrorCode.ROTATION_POLICY_UNVERIFIABLE,
      message: /"client-roles", which the adapter does not evaluate/,
    },
    {
      name:
        "an unevaluated condition beside a proof is harmless when its executor keeps rotated secrets",
      policies: [
        policy(roles),
        policy([{ condition: "any-client" }]),
      ],
      profiles: [keepsTwoDays],
    },
    {
      name:
        "an unevaluated condition on an executor keeping none is refused even beside a proof",
      policies: [
        { ...policy(roles), profiles: ["keeps-none"] },
        policy([{ condition: "any-client" }]),
      ],
      profiles: [keepsTwoDays, keepsNone],
      code: KeycloakErrorCode.ROTATION_POLICY_UNVERIFIABLE,
      message: /client-roles/,
    },
    {
      name:
        "an applying executor keeping none beside one keeping two days is refused",
      policies: [
        { ...policy([{ condition: "any-client" }]), profiles: ["keeps-none"] },
        policy([{ condition: "any-client" }]),
      ],
      profiles: [keepsTwoDays, keepsNone],
      code: KeycloakErrorCode.ROTATION_POLICY_OFF,
      message: /rotated-expiration-period is 0/,
    },
    {
      name: "a profile the realm does not list",
      policies: [{
        ...policy([{ condition: "any-client" }]),
        profiles: ["gone"],
      }],
      code: KeycloakErrorCode.ROTATION_POLICY_UNVERIFIABLE,
      message: /names a profile the realm does not list/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using keycloak = start();
      await using auth = adminAuth(keycloak.tokenUrl);
      const answer = realmAnswers(c.policies, c.profiles);
      const kc = provider(keycloak, auth, { fetch: answer.fetch });
      assert.ok(
        answer.seen.length === 0,
        "nothing is asked before issueSecret",
      );
      const result = await kc.issueSecret("service").catch((e) => e);
      assert.ok(
        answer.seen.some((l) => l.endsWith("/client-policies/policies")),
      );
      if (c.code === undefined) {
        assert.ok(!(result instanceof Error), String(result));
        assert.equal(keycloak.secretState("service").rotated, OLD);
        return;
      }
      assert.equal(result.code, c.code);
      if (c.message) assert.match(result.message, c.message);
      assert.match(result.message, /nothing was changed/);
      assert.equal(keycloak.stats().secretsCreated, 0);
      assert.equal(keycloak.secretState("service").secret, OLD);
    });
  }
});

Deno.test("Keycloak: when the old secret is not the rotated one after regenerating, issueSecret fails loudly with KEYCLOAK_OLD_SECRET_LOST", async () => {
  // The policies say yes, but the realm lost the executor since (or the
  // preview feature is off): Keycloak regenerates and keeps nothing.
  await using keycloak = start();
  await using auth = adminAuth(keycloak.tokenUrl);
  keycloak.setSecretRotation(false);
  const stale = realmAnswers([{
    name: "p",
    enabled: true,
    conditions: [{ condition: "any-client" }],
    profiles: [ROTATION_PROFILE],
  }], [{
    name: ROTATION_PROFILE,
    executors: [{
      executor: "secret-rotation",
      configuration: { "rotated-expiration-period": 172800 },
    }],
  }]);
  const error = await provider(keycloak, auth, { fetch: stale.fetch })
    .issueSecret("service").catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, KeycloakErrorCode.OLD_SECRET_LOST);
  assert.match(error.message, /DID NOT KEEP THE OLD ONE/);
  assert.match(error.message, /GET client-secret/);
  assert.equal(keycloak.stats().secretsCreated, 1);
  assert.equal(await works(keycloak, OLD), false);
  assert.equal(
    await works(keycloak, keycloak.secretState("service").secret),
    true,
  );
});
