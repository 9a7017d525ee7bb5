import assert from "node:assert/strict";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import {
  type IncidentEvent,
  type IncidentOptions,
  respondToCompromise,
} from "../../src/rotation/incident.ts";
import { createCallbackSink } from "../../src/rotation/sinks.ts";
import {
  type GenesysEmulator,
  startGenesysEmulator,
} from "../../src/testing/emulator.ts";

const BLUE = { clientId: "blue-id", secret: "blue-LEAKED" };
const GREEN = { clientId: "green-id", secret: "green-CANARY" };
const ADMIN = {
  clientId: "admin-id",
  secret: "admin-CANARY",
  permissions: ["oauth:client:view", "oauth:client:edit"],
};

async function me(emulator: GenesysEmulator, token: string): Promise<number> {
  const response = await fetch(`${emulator.apiUrl}/api/v2/tokens/me`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await response.body?.cancel();
  return response.status;
}

async function tokenFor(
  emulator: GenesysEmulator,
  id: string,
  secret: string,
): Promise<string | number> {
  const response = await fetch(emulator.tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${id}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  if (!response.ok) {
    await response.body?.cancel();
    return response.status;
  }
  return (await response.json()).access_token;
}

function scenario(overrides: Partial<IncidentOptions> = {}) {
  const emulator = startGenesysEmulator({ clients: [BLUE, GREEN, ADMIN] });
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve(emulator.issueToken("admin-id")),
  });
  const state = {
    active: "blue",
    stored: {} as Record<string, string>,
    steps: [] as IncidentEvent[],
  };
  const options: IncidentOptions = {
    compromised: "blue",
    credentials: [
      { label: "blue", clientId: BLUE.clientId, clientSecret: BLUE.secret },
      { label: "green", clientId: GREEN.clientId, clientSecret: GREEN.secret },
    ],
    active: "blue",
    tokenUrl: emulator.tokenUrl,
    adminFor: () => admin,
    sink: createCallbackSink("memory", (update) => {
      state.stored[update.label] = update.secret.reveal();
    }),
    onPromote: (label) => void (state.active = label),
    verifyAttempts: 3,
    verifyDelayMs: 10,
    onStep: (event) => state.steps.push(event),
    ...overrides,
  };
  return { emulator, state, options };
}

Deno.test("incident: compromised active credential, --kill-tokens", async () => {
  const { emulator, state, options } = scenario({ killTokens: true });
  await using _ = emulator;
  // What the attacker holds: the leaked secret and a token minted with it.
  const stolen = await tokenFor(emulator, BLUE.clientId, BLUE.secret);
  assert.equal(typeof stolen, "string");
  assert.equal(await me(emulator, stolen as string), 200);

  const report = await respondToCompromise(options);

  assert.equal(state.active, "green", "green promoted");
  assert.equal(report.active, "green");
  assert.equal(report.promotedOther, true);
  assert.equal(report.tokensKilled, true);
  assert.deepEqual(
    report.steps.map((s) => `${s.step}:${s.status}`),
    [
      "plan:completed",
      "rotate-other:completed",
      "disable:completed",
      "regenerate:completed",
      "store:completed",
      "enable:completed",
      "verify:completed",
    ],
  );
  assert.deepEqual(state.steps, report.steps);
  for (let i = 1; i < report.steps.length; i++) {
    assert.ok(report.steps[i].elapsedMs >= report.steps[i - 1].elapsedMs);
  }
  // The stolen token is rejected by the API; the leaked secret gets none.
  assert.equal(await me(emulator, stolen as string), 401);
  assert.equal(await tokenFor(emulator, BLUE.clientId, BLUE.secret), 401);
  // Both labels have new, working secrets; blue is active again.
  assert.equal(emulator.getClientState(BLUE.clientId), "active");
  assert.equal(state.stored.blue, emulator.getClientSecret(BLUE.clientId));
  assert.equal(state.stored.green, emulator.getClientSecret(GREEN.clientId));
  assert.notEqual(state.stored.green, GREEN.secret);
  const fresh = await tokenFor(emulator, BLUE.clientId, state.stored.blue);
  assert.equal(await me(emulator, fresh as string), 200);
  assert.ok(!JSON.stringify(report).includes(state.stored.blue));
});

Deno.test("incident: compromised standby without --kill-tokens leaves old tokens to expire", async () => {
  const { emulator, state, options } = scenario({ active: "green" });
  await using _ = emulator;
  const before = await tokenFor(emulator, BLUE.clientId, BLUE.secret);
  const report = await respondToCompromise(options);
  assert.equal(state.active, "blue", "onPromote never called");
  assert.equal(report.active, "green");
  assert.equal(report.promotedOther, false);
  assert.deepEqual(
    report.steps.map((s) => `${s.step}:${s.status}`),
    [
      "plan:completed",
      "rotate-other:skipped",
      "disable:skipped",
      "regenerate:completed",
      "store:completed",
      "enable:skipped",
      "verify:completed",
    ],
  );
  assert.equal(await tokenFor(emulator, BLUE.clientId, BLUE.secret), 401);
  // The emulator keeps tokens across a regeneration by default.
  assert.equal(await me(emulator, before as string), 200);
  assert.match(report.nextStep, /stay valid until they expire/);
  assert.equal(state.stored.green, undefined, "green untouched");
});

Deno.test("incident: a failed regeneration leaves the client disabled, and says so", async () => {
  const { emulator, options } = scenario({ active: "green", killTokens: true });
  await using _ = emulator;
  const admin = options.adminFor("compromised");
  const error = await respondToCompromise({
    ...options,
    adminFor: () => ({
      ...admin,
      regenerateSecret: () => {
        emulator.injectApiFaults({ kind: "status", status: 403 }, 1);
        return admin.regenerateSecret(BLUE.clientId);
      },
    }),
  }).catch((e) => e);
  assert.equal(error.code, "INCIDENT_REGENERATE_FAILED");
  assert.match(error.message, /stays disabled/);
  assert.equal(emulator.getClientState(BLUE.clientId), "disabled");
  assert.equal(error.steps.at(-1).status, "failed");
});

Deno.test("incident: a failed rotation of the other label changes nothing of the compromised one", async () => {
  const { emulator, state, options } = scenario({ killTokens: true });
  await using _ = emulator;
  emulator.setClientState(GREEN.clientId, "inactive");
  const error = await respondToCompromise(options).catch((e) => e);
  assert.equal(error.code, "INCIDENT_ROTATE_OTHER_FAILED");
  assert.match(error.message, /blue still serves traffic/);
  assert.equal(state.active, "blue");
  assert.equal(emulator.getClientSecret(BLUE.clientId), BLUE.secret);
  assert.equal(emulator.getClientState(BLUE.clientId), "active");
});
