/**
 * The staged rotation with a two-secret provider (Okta, Entra ID, Cognito,
 * Keycloak with its rotation policy): both labels are secrets of one
 * client, the new secret's id is journaled and stored with the label, and
 * the old label's secret is revoked only by the `retire` phase, once the
 * revoke gate says nothing uses it. Against a small in-memory provider with
 * Okta's limit of two secrets, and a token endpoint behind an injected fetch.
 */
import assert from "node:assert/strict";
import { envFileRevokeGate } from "../../src/rotation/incident.ts";
import { createMemoryJournal } from "../../src/rotation/journal.ts";
import type {
  IssuedSecret,
  ProviderClientInfo,
  SecretProvider,
} from "../../src/rotation/provider.ts";
import { createCallbackSink } from "../../src/rotation/sinks.ts";
import {
  runStagedRotation,
  type StagedRotationOptions,
  TWO_SECRET_FAILPOINTS,
} from "../../src/rotation/staged_rotation.ts";
import { Secret } from "../../src/secret.ts";
import { InstantClock } from "../genesys/instant_clock.ts";

const CLIENT = "okta-client";
const TOKEN_URL = "http://127.0.0.1:9/oauth2/default/v1/token";

/** One client with up to `maxSecrets` secrets, each with an id. */
class FakeTwoSecretProvider implements SecretProvider {
  readonly name = "Fake Okta";
  readonly model = "two-secrets" as const;
  readonly secrets = new Map<string, string>();
  issued = 0;
  readonly revoked: string[] = [];
  #next = 1;

  constructor(readonly maxSecrets = 2) {}

  add(value: string): string {
    const id = `ocs${this.#next++}`;
    this.secrets.set(id, value);
    return id;
  }

  inspectClient(clientId: string): Promise<ProviderClientInfo> {
    assert.equal(clientId, CLIENT);
    return Promise.resolve({
      clientId,
      state: "active",
      maxSecrets: this.maxSecrets,
      secrets: [...this.secrets.keys()].map((secretId) => ({
        secretId,
        status: "active" as const,
      })),
    });
  }

  issueSecret(clientId: string): Promise<IssuedSecret> {
    assert.equal(clientId, CLIENT);
    if (this.secrets.size >= this.maxSecrets) {
      return Promise.reject(
        new Error(`client ${clientId} has ${this.maxSecrets} secrets`),
      );
    }
    this.issued++;
    const value = `new-secret-${this.issued}-${crypto.randomUUID()}`;
    const secretId = this.add(value);
    return Promise.resolve({ clientId, secret: new Secret(value), secretId });
  }

  revokeSecret = (clientId: string, secretId: string): Promise<void> => {
    assert.equal(clientId, CLIENT);
    if (!this.secrets.delete(secretId)) {
      return Promise.reject(new Error(`no secret ${secretId}`));
    }
    this.revoked.push(secretId);
    return Promise.resolve();
  };

  /** The token endpoint: any of the client's secrets gets a token. */
  fetch = (
    _input: RequestInfo | URL,
    init?: RequestInit,
  ): Promise<Response> => {
    const header = new Headers(init?.headers).get("authorization") ?? "";
    const [id, secret] = atob(header.replace(/^Basic /, "")).split(":");
    const ok = id === CLIENT && [...this.secrets.values()].includes(secret);
    return Promise.resolve(
      ok
        ? Response.json({
          access_token: crypto.randomUUID(),
          token_type: "Bearer",
          expires_in: 3600,
        })
        : Response.json({ error: "invalid_client" }, { status: 401 }),
    );
  };
}

/** Blue serves with ocs1; green's old secret was revoked by the last rotation. */
function world(setup: { greenOldLive?: boolean } = {}) {
  const provider = new FakeTwoSecretProvider();
  const blueId = provider.add("blue-secret");
  const greenOldId = setup.greenOldLive
    ? provider.add("green-old-secret")
    : undefined;
  const state = {
    active: "blue",
    stored: {
      blue: { secret: "blue-secret", secretId: blueId },
      green: { secret: "green-old-secret", secretId: greenOldId },
    } as Record<string, { secret: string; secretId?: string }>,
    gateCalls: [] as string[],
    /** A revocation of the secret the active label serves with. */
    violations: [] as string[],
  };
  const revoke = provider.revokeSecret;
  provider.revokeSecret = (clientId, secretId) => {
    if (state.stored[state.active].secretId === secretId) {
      state.violations.push(secretId);
    }
    return revoke(clientId, secretId);
  };
  const journal = createMemoryJournal();
  const options = (): StagedRotationOptions => ({
    credentials: ["blue", "green"].map((label) => ({
      label,
      clientId: CLIENT,
      clientSecret: state.stored[label].secret,
    })),
    active: state.active,
    tokenUrl: TOKEN_URL,
    provider,
    sink: createCallbackSink("memory", ({ label, secret, secretId }) => {
      state.stored[label] = { secret: secret.reveal(), secretId };
    }),
    journal,
    promote: true,
    onPromote: (label) => void (state.active = label),
    revokeGate: ({ label, secretId }) => {
      state.gateCalls.push(`${label}:${secretId}`);
      return Promise.resolve("no instance holds it");
    },
    secretIds: Object.fromEntries(
      Object.entries(state.stored).flatMap(([label, { secretId }]) =>
        secretId === undefined ? [] : [[label, secretId]]
      ),
    ),
    fetch: provider.fetch,
    clock: new InstantClock(10_000),
    testDelayMs: 10,
    propagationTimeoutMs: 1_000,
  });
  return { provider, state, journal, options, blueId, greenOldId };
}

Deno.test("two secrets: issue beside the active one, store it with its id, prove, promote, revoke the old one through the gate", async () => {
  const { provider, state, journal, options, blueId } = world();
  const report = await runStagedRotation(options());
  assert.equal(report.promoted, true);
  assert.equal(state.active, "green");
  assert.equal(provider.issued, 1);
  const greenId = state.stored.green.secretId!;
  assert.ok(greenId);
  assert.equal(report.secretId, greenId);
  assert.equal(report.retiredSecretId, blueId);
  assert.deepEqual(state.gateCalls, [`blue:${blueId}`]);
  assert.deepEqual(provider.revoked, [blueId]);
  assert.deepEqual([...provider.secrets.keys()], [greenId]);
  assert.equal(provider.secrets.get(greenId), state.stored.green.secret);
  assert.equal(journal.record?.secretId, greenId);
  assert.equal(journal.record?.oldSecretId, blueId);
  assert.notEqual(journal.record?.retiredAt, undefined);
  assert.deepEqual(
    report.phases.filter((p) => p.status !== "started").map((p) =>
      `${p.phase}:${p.status}`
    ),
    [
      "plan:completed",
      "regenerate:completed",
      "publish:completed",
      "test:completed",
      "promote:completed",
      "retire:completed",
      "done:completed",
    ],
  );
  assert.deepEqual(state.violations, []);

  // The next rotation goes the other way, revoking green's first secret.
  const second = await runStagedRotation(options());
  assert.equal(state.active, "blue");
  assert.equal(second.retiredSecretId, greenId);
  assert.equal(provider.secrets.size, 1);
  assert.deepEqual(state.violations, []);
});

Deno.test("two secrets: a client at its limit whose standby secret is not recorded is refused by the plan, naming the secret to revoke, before anything is issued", async () => {
  const { provider, state, options, blueId, greenOldId } = world({
    greenOldLive: true,
  });
  // Which secret green holds is not recorded with the label.
  const unrecorded = () => ({
    ...options(),
    secretIds: { blue: blueId },
  });
  for (const dryRun of [true, false]) {
    const error = await runStagedRotation({ ...unrecorded(), dryRun }).catch((
      e,
    ) => e);
    assert.equal(error.code, "ROTATION_PLAN_FAILED", String(error));
    assert.match(error.message, /holds 2 secrets, Fake Okta's limit of 2/);
    assert.match(error.message, new RegExp(`Revoke ${greenOldId} first`));
    assert.match(error.message, new RegExp(`Never revoke ${blueId}`));
  }
  assert.equal(provider.issued, 0);
  assert.deepEqual(provider.revoked, []);
  assert.equal(state.active, "blue");
});

Deno.test("two secrets: a client at its limit with the standby's old secret recorded revokes that one first, then issues; never the active's", async () => {
  const { provider, state, options, blueId, greenOldId } = world({
    greenOldLive: true,
  });
  const dry = await runStagedRotation({ ...options(), dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(provider.revoked, [], "a dry run revokes nothing");
  assert.equal(provider.issued, 0);
  const report = await runStagedRotation(options());
  assert.equal(provider.issued, 1);
  const greenId = state.stored.green.secretId!;
  assert.deepEqual(provider.revoked, [greenOldId, blueId]);
  assert.deepEqual([...provider.secrets.keys()], [greenId]);
  assert.equal(report.retiredSecretId, blueId);
  assert.equal(state.active, "green");
  assert.deepEqual(state.violations, []);
});

Deno.test("two secrets: both labels must name one client; twin clients keep refusing a shared one", async () => {
  const { options } = world();
  const split = options();
  const error = await runStagedRotation({
    ...split,
    credentials: [split.credentials[0], {
      ...split.credentials[1],
      clientId: "another-client",
    }],
  }).catch((e) => e);
  assert.equal(error.code, "ROTATION_PLAN_FAILED");
  assert.match(error.message, /must name the same client/);

  const twin = await runStagedRotation({
    ...split,
    provider: {
      name: "twins",
      model: "twin-clients",
      inspectClient: (id) => split.provider!.inspectClient(id),
      issueSecret: (id) => split.provider!.issueSecret(id),
    },
  }).catch((e) => e);
  assert.equal(twin.code, "ROTATION_PLAN_FAILED");
  assert.match(twin.message, /share OAuth client okta-client/);
});

Deno.test("two secrets: a gate that says the old secret is still used keeps it; a re-run only revokes", async () => {
  const { provider, state, options, blueId } = world();
  const error = await runStagedRotation({
    ...options(),
    revokeGate: () => Promise.reject(new Error("web-2 still holds it")),
  }).catch((e) => e);
  assert.equal(error.code, "ROTATION_RETIRE_FAILED");
  assert.match(error.message, /was not revoked and still works/);
  assert.equal(state.active, "green");
  assert.ok(provider.secrets.has(blueId));

  const report = await runStagedRotation(options());
  assert.equal(report.resumed, true);
  assert.equal(provider.issued, 1, "nothing issued again");
  assert.equal(report.retiredSecretId, blueId);
  assert.ok(!provider.secrets.has(blueId));
  assert.deepEqual(state.violations, []);
});

Deno.test("two secrets: without a gate the old secret is kept as the standby's; the next rotation replaces it (revoked first, at the limit), never the active's", async () => {
  const { provider, state, options, blueId } = world();
  const report = await runStagedRotation({
    ...options(),
    revokeGate: undefined,
  });
  assert.equal(report.retiredSecretId, undefined);
  assert.ok(provider.secrets.has(blueId));
  assert.equal(state.active, "green");
  const greenId = state.stored.green.secretId!;
  await runStagedRotation({ ...options(), revokeGate: undefined });
  assert.equal(provider.issued, 2);
  assert.equal(state.active, "blue");
  assert.deepEqual(provider.revoked, [blueId]);
  assert.deepEqual(
    [...provider.secrets.keys()].sort(),
    [greenId, state.stored.blue.secretId!].sort(),
  );
  assert.deepEqual(state.violations, []);
});

for (const point of TWO_SECRET_FAILPOINTS) {
  Deno.test(`two secrets: killed at ${point}, run again: finished, never issued again once stored, never the secret in use revoked`, async () => {
    const { provider, state, options, blueId } = world();
    const crash = new Error(`killed at ${point}`);
    const first = await runStagedRotation({
      ...options(),
      failpoint: (reached) => {
        if (reached === point) throw crash;
      },
    }).catch((e) => e);
    assert.ok(
      first === crash || first.cause === crash,
      `stopped at ${point}: ${first}`,
    );
    const issuedBefore = provider.issued;
    const storedBefore = state.stored.green.secretId;

    const report = await runStagedRotation(options());
    assert.equal(state.active, "green", point);
    assert.equal(report.active, "green");
    // Issued again only when the first run never stored what it issued; the
    // orphan it left is revoked first.
    const lostBeforeStoring = point === "regenerate:after";
    assert.equal(
      provider.issued,
      issuedBefore === 0 || lostBeforeStoring ? issuedBefore + 1 : issuedBefore,
      point,
    );
    if (storedBefore !== undefined) {
      assert.equal(state.stored.green.secretId, storedBefore, point);
    }
    const greenId = state.stored.green.secretId!;
    assert.equal(provider.secrets.get(greenId), state.stored.green.secret);
    assert.ok(!provider.secrets.has(blueId), `${point}: blue's revoked`);
    assert.deepEqual([...provider.secrets.keys()], [greenId], point);
    assert.deepEqual(state.violations, [], point);
  });
}

Deno.test("two secrets on one host: the env-file revoke gate revokes the old secret only after the services' reload wait since the promotion", async () => {
  const { provider, options, blueId } = world();
  const path = await Deno.makeTempFile();
  try {
    const base = options();
    let promotedAt = 0;
    let revokedAt = 0;
    const revoke = provider.revokeSecret;
    provider.revokeSecret = (clientId, secretId) => {
      revokedAt = Date.now();
      return revoke(clientId, secretId);
    };
    const report = await runStagedRotation({
      ...base,
      onPromote: async (label) => {
        await base.onPromote!(label);
        await Deno.writeTextFile(path, `GENESYS_ACTIVE=${label}\n`);
        promotedAt = Date.now();
      },
      revokeGate: envFileRevokeGate(path, { reloadWaitMs: 300 }),
    });
    assert.equal(report.retiredSecretId, blueId);
    // The file's modification time may be up to a few ms coarser.
    assert.ok(revokedAt - promotedAt >= 250, `${revokedAt - promotedAt} ms`);
    assert.match(
      report.phases.find((p) =>
        p.phase === "retire" && p.status === "completed"
      )
        ?.detail ?? "",
      /re-read it within 0\.3 s/,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("two secrets: the standby's recorded id names the active's secret and the active's is not recorded: nothing is revoked before issuing", async () => {
  // An operator copied blue's id into AUTH_SECRET_ID_GREEN (or it was never
  // updated) and AUTH_SECRET_ID_BLUE is absent: with nothing recorded for the
  // active label, the plan cannot tell the standby's old secret from the one
  // blue serves with, and the client is not at its limit.
  const { provider, state, options, blueId } = world();
  const report = await runStagedRotation({
    ...options(),
    secretIds: { green: blueId },
    promote: false,
  });
  assert.deepEqual(state.violations, []);
  assert.ok(
    report.warnings.some((w) =>
      w.includes(`${blueId}, recorded as the old secret of "green", is kept`)
    ),
    report.warnings.join("\n"),
  );
  assert.ok(provider.secrets.has(blueId), "blue's secret is still there");
});

Deno.test("two secrets: the labels' recorded ids swapped, the provider showing a hint of each value: the active's secret is never revoked before issuing", async () => {
  const { provider, state, options, blueId, greenOldId } = world({
    greenOldLive: true,
  });
  // As Okta and Entra ID list them: the first characters of each value.
  const inspect = provider.inspectClient.bind(provider);
  provider.inspectClient = async (clientId) => {
    const client = await inspect(clientId);
    return {
      ...client,
      secrets: client.secrets!.map((s) => ({
        ...s,
        hint: provider.secrets.get(s.secretId)!.slice(0, 3),
      })),
    };
  };
  const error = await runStagedRotation({
    ...options(),
    secretIds: { blue: greenOldId!, green: blueId },
    promote: false,
  }).catch((e) => e);
  assert.deepEqual(state.violations, []);
  assert.ok(provider.secrets.has(blueId), "blue's secret is still there");
  // At the limit with nothing revoked first, the plan refuses.
  assert.equal(error.code, "ROTATION_PLAN_FAILED", String(error));
  assert.equal(provider.issued, 0);
});

Deno.test("two secrets: the active's id not recorded, the provider showing a hint of each value: the standby's recorded old secret, not the active's by its hint, is revoked before issuing", async () => {
  const { provider, state, options, blueId, greenOldId } = world({
    greenOldLive: true,
  });
  const inspect = provider.inspectClient.bind(provider);
  provider.inspectClient = async (clientId) => {
    const client = await inspect(clientId);
    return {
      ...client,
      secrets: client.secrets!.map((s) => ({
        ...s,
        hint: provider.secrets.get(s.secretId)!.slice(0, 3),
      })),
    };
  };
  const report = await runStagedRotation({
    ...options(),
    secretIds: { green: greenOldId! },
    promote: false,
  });
  assert.deepEqual(provider.revoked, [greenOldId]);
  assert.ok(provider.secrets.has(blueId));
  assert.equal(provider.issued, 1);
  assert.deepEqual(state.violations, []);
  assert.deepEqual(report.warnings, []);
});

Deno.test("two secrets: the active's recorded id names another service's secret, the provider showing a hint of each value: the retire step revokes nothing and says so", async () => {
  const { provider, state, options, blueId } = world();
  (provider as { maxSecrets: number }).maxSecrets = 3;
  const otherId = provider.add("other-service-secret");
  const inspect = provider.inspectClient.bind(provider);
  provider.inspectClient = async (clientId) => {
    const client = await inspect(clientId);
    return {
      ...client,
      secrets: client.secrets!.map((s) => ({
        ...s,
        hint: provider.secrets.get(s.secretId)!.slice(0, 3),
      })),
    };
  };
  const error = await runStagedRotation({
    ...options(),
    secretIds: { blue: otherId },
  }).catch((e) => e);
  assert.equal(state.active, "green", "promoted before the retire step");
  assert.match(
    String(error?.message),
    /is not its secret.*nothing was revoked/,
  );
  assert.ok(provider.secrets.has(otherId), "the other service's secret kept");
  assert.ok(provider.secrets.has(blueId));
  assert.deepEqual(provider.revoked, []);
});
