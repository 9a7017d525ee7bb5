/**
 * `respondToCompromise` through the provider port (`provider`), in process
 * against each provider's emulator (the worlds of
 * tests/tasks/rotate_provider_scenario.ts, blue active and compromised):
 * stopped after every step and run again with what the sink holds, the
 * response finishes and the clean label's secret is issued once over both
 * runs. Two-secret providers revoke blue's leaked secret by id and issue
 * none for it; Auth0 regenerates blue's client (twice only when stopped
 * before its new secret was stored, as Genesys does).
 */
import assert from "node:assert/strict";
import { readProviderEnv } from "../../src/providers/env.ts";
import {
  INCIDENT_STEPS,
  type IncidentJournalRecord,
  respondToCompromise,
} from "../../src/rotation/incident.ts";
import { createMemoryJournal } from "../../src/rotation/journal.ts";
import type { SecretProvider } from "../../src/rotation/provider.ts";
import { createCallbackSink } from "../../src/rotation/sinks.ts";
import { entraWorld, PROVIDERS } from "../tasks/rotate_provider_scenario.ts";

for (const [name, start] of Object.entries(PROVIDERS)) {
  Deno.test(`incident through the provider port on ${name}: stopped after each step, run again: finished, the clean secret issued once`, async (t) => {
    for (const step of INCIDENT_STEPS.filter((s) => s !== "verify")) {
      await t.step(step, async () => {
        await using world = await start();
        const config = readProviderEnv(world.env);
        await using handle = await config.createProvider();
        const issued: string[] = [];
        const provider: SecretProvider = {
          ...handle.provider,
          issueSecret: (clientId, options) => {
            issued.push(clientId);
            return handle.provider.issueSecret(clientId, options);
          },
        };
        const state = {
          active: config.active as string,
          secrets: new Map(
            config.credentials.map((c) => [c.label, c.clientSecret]),
          ),
          secretIds: { ...config.secretIds } as Record<string, string>,
        };
        const journal = createMemoryJournal<IncidentJournalRecord>();
        const respond = (failAt?: string) =>
          respondToCompromise({
            compromised: "blue",
            credentials: config.credentials.map((c) => ({
              ...c,
              clientSecret: state.secrets.get(c.label)!,
            })),
            active: state.active,
            tokenUrl: config.tokenUrl,
            provider,
            secretIds: { ...state.secretIds },
            ...(config.scope === undefined ? {} : { scope: config.scope }),
            ...(config.tokenParams === undefined
              ? {}
              : { tokenParams: config.tokenParams }),
            sink: createCallbackSink("memory", (update) => {
              state.secrets.set(update.label, update.secret);
              if (update.secretId) {
                state.secretIds[update.label] = update.secretId;
              }
            }),
            onPromote: (label) => void (state.active = label),
            journal,
            verifyAttempts: 3,
            verifyDelayMs: 10,
            ...(failAt === undefined ? {} : {
              failpoint: (reached: string) => {
                if (reached === failAt) {
                  throw new Error(`killed after ${failAt}`);
                }
              },
            }),
          });
        await assert.rejects(respond(step), new RegExp(`killed after ${step}`));
        assert.equal(journal.record?.completedAt, undefined);
        const report = await respond();
        assert.match(report.resumedFrom ?? "", /resuming incident/);
        assert.equal(report.active, "green");
        assert.equal(state.active, "green");
        assert.notEqual(journal.record?.completedAt, undefined);
        const green = config.credentials.find((c) => c.label === "green")!;
        const blue = config.credentials.find((c) => c.label === "blue")!;
        const issuedFor = (id: string) => issued.filter((i) => i === id).length;
        if (config.model === "two-secrets") {
          // The clean secret alone, once; the leaked one revoked (the last
          // step proved the token endpoint refuses it).
          assert.deepEqual(issued, [green.clientId]);
          assert.equal(world.liveSecrets(), 1);
          assert.match(
            report.steps.find((s) => s.step === "verify")!.detail,
            /refuses the leaked secret of blue/,
          );
        } else {
          assert.equal(issuedFor(green.clientId), 1, issued.join());
          assert.equal(
            issuedFor(blue.clientId),
            step === "regenerate" ? 2 : 1,
            issued.join(),
          );
          assert.notEqual(
            state.secrets.get("blue")!.reveal(),
            blue.clientSecret.reveal(),
          );
        }
      });
    }
  });
}

Deno.test("incident through the provider port, dry run: the compromised client read, nothing changed, on every provider", async (t) => {
  for (const [name, start] of Object.entries(PROVIDERS)) {
    await t.step(name, async () => {
      await using world = await start();
      const config = readProviderEnv(world.env);
      await using handle = await config.createProvider();
      const created = world.emulator.stats().secretsCreated;
      const live = world.liveSecrets();
      const journal = createMemoryJournal<IncidentJournalRecord>();
      const report = await respondToCompromise({
        compromised: "blue",
        credentials: config.credentials,
        active: config.active,
        tokenUrl: config.tokenUrl,
        provider: handle.provider,
        sink: createCallbackSink("memory", () => {
          throw new Error("nothing is stored in a dry run");
        }),
        onPromote: () => {
          throw new Error("nothing is promoted in a dry run");
        },
        journal,
        dryRun: true,
      });
      assert.equal(report.dryRun, true);
      assert.match(
        report.steps[0].detail,
        /is active\); dry run: nothing changed/,
      );
      assert.match(
        report.steps[0].detail,
        config.model === "two-secrets"
          ? /revoke the secret of blue by id at once/
          : /then regenerate blue/,
      );
      assert.equal(journal.record, undefined);
      assert.equal(world.emulator.stats().secretsCreated, created);
      assert.equal(world.liveSecrets(), live);
    });
  }
});

for (const name of ["okta", "entra", "cognito"]) {
  Deno.test(`incident on ${name}, the standby compromised, its recorded id naming the active's secret and the active's not recorded: refused, the active's secret kept`, async () => {
    await using world = await PROVIDERS[name]();
    const config = readProviderEnv(world.env);
    await using handle = await config.createProvider();
    const blue = config.credentials.find((c) => c.label === "blue")!;
    const before = await handle.provider.inspectClient(blue.clientId);
    const [blueId] = before.secrets!.map((s) => s.secretId);
    // Green set up as a second secret of the one client; its id recorded
    // wrongly (blue's), blue's not recorded at all.
    const green = await handle.provider.issueSecret(blue.clientId);
    const credentials = config.credentials.map((c) =>
      c.label === "green" ? { ...c, clientSecret: green.secret } : c
    );
    const journal = createMemoryJournal<IncidentJournalRecord>();
    const outcome = await respondToCompromise({
      compromised: "green",
      credentials,
      active: "blue",
      tokenUrl: config.tokenUrl,
      provider: handle.provider,
      secretIds: { green: blueId },
      ...(config.scope === undefined ? {} : { scope: config.scope }),
      ...(config.tokenParams === undefined
        ? {}
        : { tokenParams: config.tokenParams }),
      sink: createCallbackSink("memory", () => {}),
      onPromote: () => {
        throw new Error("blue stays active: nothing is promoted");
      },
      journal,
      verifyAttempts: 2,
      verifyDelayMs: 10,
    }).then(() => "finished", (error: Error) => error.message);
    const after = await handle.provider.inspectClient(blue.clientId);
    assert.ok(
      after.secrets!.some((s) => s.secretId === blueId),
      `blue's secret ${blueId} (in use) was revoked: ${outcome}`,
    );
    assert.match(outcome, /AUTH_SECRET_ID_BLUE/);
  });
}

for (const name of ["okta", "entra", "cognito"]) {
  // Okta and Entra ID show the beginning of each secret's value (a hint);
  // Cognito shows nothing of it.
  const hinted = name !== "cognito";
  Deno.test(
    `incident on ${name}, the standby compromised, the labels' recorded ids swapped: ${
      hinted
        ? "refused, nothing revoked (the hint of the recorded secret is not the leaked one's)"
        : "the outcome says the clean label's secret was revoked, never to revoke the one left"
    }`,
    async () => {
      await using world = await PROVIDERS[name]();
      const config = readProviderEnv(world.env);
      await using handle = await config.createProvider();
      const blue = config.credentials.find((c) => c.label === "blue")!;
      const before = await handle.provider.inspectClient(blue.clientId);
      const [blueId] = before.secrets!.map((s) => s.secretId);
      const green = await handle.provider.issueSecret(blue.clientId);
      const credentials = config.credentials.map((c) =>
        c.label === "green" ? { ...c, clientSecret: green.secret } : c
      );
      const error: Error = await respondToCompromise({
        compromised: "green",
        credentials,
        active: "blue",
        tokenUrl: config.tokenUrl,
        provider: handle.provider,
        secretIds: { green: blueId, blue: green.secretId! },
        ...(config.scope === undefined ? {} : { scope: config.scope }),
        ...(config.tokenParams === undefined
          ? {}
          : { tokenParams: config.tokenParams }),
        sink: createCallbackSink("memory", () => {}),
        onPromote: () => {
          throw new Error("blue stays active: nothing is promoted");
        },
        journal: createMemoryJournal<IncidentJournalRecord>(),
        verifyAttempts: 2,
        verifyDelayMs: 10,
      }).then(() => new Error("finished"), (e: Error) => e);
      const after = await handle.provider.inspectClient(blue.clientId);
      if (hinted) {
        assert.match(error.message, /wrong or swapped.*nothing was revoked/);
        assert.deepEqual(
          after.secrets!.map((s) => s.secretId).sort(),
          [blueId, green.secretId!].sort(),
        );
        return;
      }
      // Nothing tells them apart before acting, so blue's secret goes; what
      // the operator reads must not send them to revoke the last working
      // secret, nor claim blue serves.
      assert.deepEqual(after.secrets!.map((s) => s.secretId), [green.secretId]);
      assert.doesNotMatch(
        error.message,
        /revoke every secret blue does not use/,
      );
      assert.match(error.message, /blue's secret is refused/);
      assert.match(error.message, new RegExp(`${blueId}`));
    },
  );
}

for (const name of ["okta", "entra", "cognito"]) {
  Deno.test(`incident dry run on ${name}, the standby compromised: names the secret it would revoke, and refuses where the real run would`, async () => {
    await using world = await PROVIDERS[name]();
    const config = readProviderEnv(world.env);
    await using handle = await config.createProvider();
    const blue = config.credentials.find((c) => c.label === "blue")!;
    const [blueId] = (await handle.provider.inspectClient(blue.clientId))
      .secrets!.map((s) => s.secretId);
    const green = await handle.provider.issueSecret(blue.clientId);
    const dryRun = (secretIds: Record<string, string>) =>
      respondToCompromise({
        compromised: "green",
        credentials: config.credentials.map((c) =>
          c.label === "green" ? { ...c, clientSecret: green.secret } : c
        ),
        active: "blue",
        tokenUrl: config.tokenUrl,
        provider: handle.provider,
        secretIds,
        sink: createCallbackSink("memory", () => {
          throw new Error("nothing is stored in a dry run");
        }),
        onPromote: () => {
          throw new Error("nothing is promoted in a dry run");
        },
        journal: createMemoryJournal<IncidentJournalRecord>(),
        dryRun: true,
      });
    const report = await dryRun({ blue: blueId, green: green.secretId! });
    assert.match(
      report.steps[0].detail,
      new RegExp(`would revoke ${green.secretId}; dry run: nothing changed`),
    );
    await assert.rejects(
      dryRun({ green: blueId }),
      /AUTH_SECRET_ID_BLUE.*nothing was revoked/,
    );
    assert.equal(world.liveSecrets(), 2);
  });
}

Deno.test("incident on entra, the standby compromised at rest with no recorded id, the app holding another service's secret: that secret is not revoked (the leaked one gets no token)", async () => {
  await using world = await PROVIDERS.entra();
  const config = readProviderEnv(world.env);
  await using handle = await config.createProvider();
  const blue = config.credentials.find((c) => c.label === "blue")!;
  const [blueId] = (await handle.provider.inspectClient(blue.clientId))
    .secrets!.map((s) => s.secretId);
  // Green at rest (its stale secret is nobody's), blue recorded, and the
  // app registration also holds a secret of another service.
  world.addUnrelatedSecret!();
  const listed = (await handle.provider.inspectClient(blue.clientId)).secrets!
    .map((s) => s.secretId);
  assert.equal(listed.length, 2);
  const report = await respondToCompromise({
    compromised: "green",
    credentials: config.credentials,
    active: "blue",
    tokenUrl: config.tokenUrl,
    provider: handle.provider,
    secretIds: { blue: blueId },
    ...(config.scope === undefined ? {} : { scope: config.scope }),
    sink: createCallbackSink("memory", () => {}),
    onPromote: () => {
      throw new Error("blue stays active: nothing is promoted");
    },
    journal: createMemoryJournal<IncidentJournalRecord>(),
    verifyAttempts: 2,
    verifyDelayMs: 10,
  });
  assert.match(
    report.steps.find((s) => s.step === "verify")!.detail,
    /refuses the leaked secret of green/,
  );
  const after = (await handle.provider.inspectClient(blue.clientId)).secrets!
    .map((s) => s.secretId);
  assert.deepEqual(after.sort(), listed.sort(), "nothing revoked");
});

Deno.test("incident on keycloak, the standby's main secret leaked while the active serves with the rotated one: refused before anything changes, never told to issue a new secret (it drops the active's)", async () => {
  await using world = await PROVIDERS.keycloak();
  const config = readProviderEnv(world.env);
  await using handle = await config.createProvider();
  const blue = config.credentials.find((c) => c.label === "blue")!;
  const [blueId] = (await handle.provider.inspectClient(blue.clientId))
    .secrets!.map((s) => s.secretId);
  // A rotation without --promote: green's new secret is the main one, blue
  // serves with the rotated one.
  const green = await handle.provider.issueSecret(blue.clientId);
  const respond = (dryRun: boolean) =>
    respondToCompromise({
      compromised: "green",
      credentials: config.credentials.map((c) =>
        c.label === "green" ? { ...c, clientSecret: green.secret } : c
      ),
      active: "blue",
      tokenUrl: config.tokenUrl,
      provider: handle.provider,
      secretIds: { blue: blueId, green: green.secretId! },
      sink: createCallbackSink("memory", () => {}),
      onPromote: () => {
        throw new Error("blue stays active: nothing is promoted");
      },
      journal: createMemoryJournal<IncidentJournalRecord>(),
      verifyAttempts: 2,
      verifyDelayMs: 10,
      dryRun,
    });
  for (const dryRun of [true, false]) {
    const error: Error = await respond(dryRun).then(
      () => new Error("finished"),
      (e: Error) => e,
    );
    assert.match(error.message, /rotated one/);
    assert.match(error.message, /nothing was changed/i);
    assert.doesNotMatch(error.message, /Issue a new secret first/);
    assert.doesNotMatch(error.message, /revoke it in Keycloak's console/);
  }
  const after = await handle.provider.inspectClient(blue.clientId);
  assert.deepEqual(
    after.secrets!.map((s) => `${s.secretId}:${s.status}`),
    [`${green.secretId}:active`, `${blueId}:rotated`],
  );
});

Deno.test("incident on entra, the standby's secret leaked while it still propagates and its id not recorded: revoked all the same (a refused token request is not proof it is dead)", async () => {
  // Entra ID: a secret added through Graph works only after a delay.
  await using world = await entraWorld({ propagationDelayMs: 60_000 });
  const config = readProviderEnv(world.env);
  await using handle = await config.createProvider();
  const blue = config.credentials.find((c) => c.label === "blue")!;
  const [blueId] = (await handle.provider.inspectClient(blue.clientId))
    .secrets!.map((s) => s.secretId);
  const green = await handle.provider.issueSecret(blue.clientId);
  await respondToCompromise({
    compromised: "green",
    credentials: config.credentials.map((c) =>
      c.label === "green" ? { ...c, clientSecret: green.secret } : c
    ),
    active: "blue",
    tokenUrl: config.tokenUrl,
    provider: handle.provider,
    secretIds: { blue: blueId },
    ...(config.scope === undefined ? {} : { scope: config.scope }),
    sink: createCallbackSink("memory", () => {}),
    onPromote: () => {
      throw new Error("blue stays active: nothing is promoted");
    },
    journal: createMemoryJournal<IncidentJournalRecord>(),
    verifyAttempts: 2,
    verifyDelayMs: 10,
  });
  const after = (await handle.provider.inspectClient(blue.clientId)).secrets!
    .map((s) => s.secretId);
  assert.deepEqual(after, [blueId], "green's leaked secret was revoked");
});

Deno.test("incident on auth0 (twin clients), both labels naming one application: refused before anything changes (regenerating the standby would end the active's secret)", async () => {
  await using world = await PROVIDERS.auth0();
  const config = readProviderEnv(world.env);
  await using handle = await config.createProvider();
  const blue = config.credentials.find((c) => c.label === "blue")!;
  const created = world.emulator.stats().secretsCreated;
  for (const compromised of ["green", "blue"]) {
    await assert.rejects(
      respondToCompromise({
        compromised,
        // AUTH_CLIENT_ID_GREEN copied from blue's.
        credentials: config.credentials.map((c) => ({
          ...c,
          clientId: blue.clientId,
        })),
        active: "blue",
        tokenUrl: config.tokenUrl,
        provider: handle.provider,
        ...(config.tokenParams === undefined
          ? {}
          : { tokenParams: config.tokenParams }),
        sink: createCallbackSink("memory", () => {}),
        onPromote: () => {},
        journal: createMemoryJournal<IncidentJournalRecord>(),
        verifyAttempts: 2,
        verifyDelayMs: 10,
      }),
      /name the same OAuth client .* nothing was changed/,
    );
  }
  assert.equal(world.emulator.stats().secretsCreated, created);
});

for (const name of ["okta", "entra"]) {
  Deno.test(`incident on ${name}, the standby compromised, only its own id recorded: revoked, its hint being the leaked secret's; the active's kept`, async () => {
    await using world = await PROVIDERS[name]();
    const config = readProviderEnv(world.env);
    await using handle = await config.createProvider();
    const blue = config.credentials.find((c) => c.label === "blue")!;
    const [blueId] = (await handle.provider.inspectClient(blue.clientId))
      .secrets!.map((s) => s.secretId);
    const green = await handle.provider.issueSecret(blue.clientId);
    const report = await respondToCompromise({
      compromised: "green",
      credentials: config.credentials.map((c) =>
        c.label === "green" ? { ...c, clientSecret: green.secret } : c
      ),
      active: "blue",
      tokenUrl: config.tokenUrl,
      provider: handle.provider,
      secretIds: { green: green.secretId! },
      ...(config.scope === undefined ? {} : { scope: config.scope }),
      sink: createCallbackSink("memory", () => {}),
      onPromote: () => {
        throw new Error("blue stays active: nothing is promoted");
      },
      journal: createMemoryJournal<IncidentJournalRecord>(),
      verifyAttempts: 2,
      verifyDelayMs: 10,
    });
    assert.match(
      report.steps.find((s) => s.step === "regenerate")!.detail,
      new RegExp(`revoked ${green.secretId}`),
    );
    const after = (await handle.provider.inspectClient(blue.clientId))
      .secrets!.map((s) => s.secretId);
    assert.deepEqual(after, [blueId]);
  });
}
