import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../src/dual_secret_auth.ts";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import { createMemoryJournal } from "../../src/rotation/journal.ts";
import {
  createCallbackSink,
  type SecretSink,
  type SecretUpdate,
} from "../../src/rotation/sinks.ts";
import {
  type RotationPhaseEvent,
  runStagedRotation,
  StagedRotationError,
  type StagedRotationOptions,
} from "../../src/rotation/staged_rotation.ts";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";

const BLUE = {
  clientId: "blue-id",
  secret: "blue-secret-CANARY",
  permissions: ["oauth:client:view", "oauth:client:edit"],
};
const GREEN = {
  clientId: "green-id",
  secret: "green-secret-CANARY",
  permissions: ["oauth:client:view", "oauth:client:edit"],
};

function setup() {
  const emulator = startGenesysEmulator({ clients: [BLUE, GREEN] });
  // Token requests time out after 10 s: such timers must never fire here.
  const clock = new InstantClock(10_000);
  const published: SecretUpdate[] = [];
  const events: RotationPhaseEvent[] = [];
  const base: StagedRotationOptions = {
    credentials: [
      { label: "blue", clientId: BLUE.clientId, clientSecret: BLUE.secret },
      { label: "green", clientId: GREEN.clientId, clientSecret: GREEN.secret },
    ],
    active: "blue",
    tokenUrl: emulator.tokenUrl,
    admin: createGenesysAdminClient({
      apiUrl: emulator.apiUrl,
      getAccessToken: () => Promise.resolve(emulator.issueToken(BLUE.clientId)),
      clock,
      requestTimeoutMs: NEVER_FIRES,
    }),
    sink: createCallbackSink((update) => {
      published.push(update);
    }),
    clock,
    testDelayMs: 1_000,
    onPhase: (event) => events.push(event),
  };
  return { emulator, clock, published, events, base };
}

/** Whether blue (the active credential) still gets tokens. */
async function blueServes(tokenUrl: string): Promise<boolean> {
  const response = await fetch(tokenUrl, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${BLUE.clientId}:${BLUE.secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  await response.body?.cancel();
  return response.ok;
}

Deno.test("staged rotation", async (t) => {
  await t.step(
    "happy path: phases in order, standby regenerated and published, then promoted",
    async () => {
      const { emulator, published, events, base } = setup();
      await using _ = emulator;
      const promotedTo: string[] = [];
      const report = await runStagedRotation({
        ...base,
        promote: true,
        onPromote: (label) => {
          promotedTo.push(label);
        },
      });
      const completed = events.filter((e) => e.status === "completed").map((
        e,
      ) => e.phase);
      assert.deepEqual(completed, [
        "plan",
        "regenerate",
        "publish",
        "test",
        "promote",
        "done",
      ]);
      assert.equal(published.length, 1);
      assert.equal(published[0].label, "green");
      assert.equal(
        published[0].secret.reveal(),
        emulator.getClientSecret(GREEN.clientId),
      );
      assert.notEqual(published[0].secret.reveal(), GREEN.secret);
      assert.equal(emulator.getClientSecret(BLUE.clientId), BLUE.secret);
      assert.deepEqual(promotedTo, ["green"]);
      assert.equal(report.active, "green");
      assert.equal(report.previousActive, "blue");
      assert.equal(report.promoted, true);
      const everything = JSON.stringify(report) + JSON.stringify(events) +
        Deno.inspect(report);
      assert.ok(!everything.includes(published[0].secret.reveal()));
      assert.ok(!everything.includes(BLUE.secret));
    },
  );

  await t.step(
    "the published secret works in a running auth instance",
    async () => {
      const { emulator, base } = setup();
      await using _ = emulator;
      await using auth = createDualSecretAuth({
        credentials: base.credentials,
        tokenUrl: emulator.tokenUrl,
      });
      await runStagedRotation({
        ...base,
        sink: createCallbackSink(({ label, clientId, secret }) => {
          auth.setCredentials(
            base.credentials.map((c) =>
              c.label === label ? { label, clientId, clientSecret: secret } : c
            ),
          );
        }),
        promote: true,
        onPromote: async (to) => {
          await auth.rotate({ to });
        },
      });
      assert.equal(auth.status().active, "green");
      assert.ok(await auth.getAccessToken());
    },
  );

  await t.step("dry run verifies and plans but changes nothing", async () => {
    const { emulator, published, base } = setup();
    await using _ = emulator;
    const journal = createMemoryJournal();
    const report = await runStagedRotation({
      ...base,
      dryRun: true,
      journal,
      promote: true,
      onPromote: () => assert.fail("promoted in a dry run"),
    });
    assert.equal(report.dryRun, true);
    assert.equal(emulator.stats().secretRegenerations, 0);
    assert.equal(published.length, 0);
    assert.equal(journal.record, undefined);
    assert.deepEqual(
      report.phases.filter((e) => e.status === "skipped").map((e) => e.phase),
      ["regenerate", "publish", "test", "promote"],
    );
  });

  await t.step("refuses a standby equal to the active", async () => {
    const { emulator, base } = setup();
    await using _ = emulator;
    const error = await runStagedRotation({ ...base, standby: "blue" }).catch((
      e,
    ) => e);
    assert.ok(error instanceof StagedRotationError);
    assert.equal(error.code, "ROTATION_PLAN_FAILED");
    assert.equal(error.phase, "plan");
    assert.match(error.message, /only the standby may be regenerated/);
    assert.match(error.message, /Nothing was changed; "blue" still serves/);
    assert.equal(emulator.stats().secretRegenerations, 0);
  });

  await t.step("refuses two labels on one OAuth client", async () => {
    const { emulator, base } = setup();
    await using _ = emulator;
    const error = await runStagedRotation({
      ...base,
      credentials: [
        base.credentials[0],
        { label: "green", clientId: BLUE.clientId, clientSecret: "x" },
      ],
    }).catch((e) => e);
    assert.equal(error.phase, "plan");
    assert.match(error.message, /share OAuth client/);
  });

  await t.step("plan fails when the active credential is broken", async () => {
    const { emulator, base } = setup();
    await using _ = emulator;
    const error = await runStagedRotation({
      ...base,
      credentials: [
        { label: "blue", clientId: BLUE.clientId, clientSecret: "wrong" },
        base.credentials[1],
      ],
    }).catch((e) => e);
    assert.equal(error.code, "ROTATION_PLAN_FAILED");
    assert.equal(error.cause.code, "CREDENTIAL_REJECTED");
    assert.equal(emulator.stats().secretRegenerations, 0);
  });

  await t.step("regenerate failure (403) leaves blue serving", async () => {
    const { emulator, base } = setup();
    await using _ = emulator;
    // Plan's GET passes; the POST is refused.
    const admin = base.admin!;
    const error = await runStagedRotation({
      ...base,
      admin: {
        getClient: admin.getClient,
        regenerateSecret: (id, o) => {
          emulator.injectApiFaults({ kind: "status", status: 403 });
          return admin.regenerateSecret(id, o);
        },
      },
    }).catch((e) => e);
    assert.ok(error instanceof StagedRotationError);
    assert.equal(error.code, "ROTATION_REGENERATE_FAILED");
    assert.equal(error.active, "blue");
    assert.match(error.message, /oauth:client:edit/);
    assert.match(error.nextStep, /regenerates "green" again/);
    assert.ok(await blueServes(emulator.tokenUrl));
  });

  await t.step(
    "test failure: the new secret is kept in the sink and blue keeps serving",
    async () => {
      const { emulator, clock, published, base } = setup();
      await using _ = emulator;
      const error = await runStagedRotation({
        ...base,
        testAttempts: 3,
        admin: {
          getClient: base.admin!.getClient,
          regenerateSecret: async (id, o) => {
            const result = await base.admin!.regenerateSecret(id, o);
            emulator.setClientState(GREEN.clientId, "inactive");
            return result;
          },
        },
      }).catch((e) => e);
      assert.equal(error.code, "ROTATION_TEST_FAILED");
      assert.equal(error.phase, "test");
      // Stored before the proof: Genesys never shows it again.
      assert.equal(published.length, 1);
      assert.equal(
        published[0].secret.reveal(),
        emulator.getClientSecret(GREEN.clientId),
      );
      // The shared retry loop's backoff: 1 s, then 2 s.
      assert.deepEqual(clock.waits.filter((w) => w >= 1_000), [1_000, 2_000]);
      assert.match(error.state, /is stored in callback and kept/);
      assert.match(
        error.nextStep,
        /proves the stored secret again without regenerating/,
      );
      assert.ok(await blueServes(emulator.tokenUrl));
    },
  );

  await t.step(
    "publish failure: blue keeps serving; the error names the state",
    async () => {
      const { emulator, base } = setup();
      await using _ = emulator;
      const failing: SecretSink = {
        name: "broken sink",
        publish: () => Promise.reject(new Deno.errors.PermissionDenied("nope")),
      };
      const error = await runStagedRotation({ ...base, sink: failing }).catch((
        e,
      ) => e);
      assert.equal(error.code, "ROTATION_PUBLISH_FAILED");
      assert.match(error.message, /could not be stored in broken sink/);
      assert.match(error.message, /fix broken sink/);
      assert.ok(await blueServes(emulator.tokenUrl));
    },
  );

  await t.step("a sink's own error text is not quoted", async () => {
    const { emulator, base } = setup();
    await using _ = emulator;
    let leaked = "";
    const error = await runStagedRotation({
      ...base,
      sink: createCallbackSink(({ secret }) => {
        leaked = secret.reveal();
        throw new Error(`could not store ${leaked}`);
      }),
    }).catch((e) => e);
    assert.equal(error.code, "ROTATION_PUBLISH_FAILED");
    assert.ok(leaked !== "" && !error.message.includes(leaked));
  });

  await t.step("promote failure: published, blue still serving", async () => {
    const { emulator, published, base } = setup();
    await using _ = emulator;
    const error = await runStagedRotation({
      ...base,
      promote: true,
      onPromote: () => {
        throw new Deno.errors.PermissionDenied("cannot write .env");
      },
    }).catch((e) => e);
    assert.equal(error.code, "ROTATION_PROMOTE_FAILED");
    assert.equal(published.length, 1);
    assert.equal(error.active, "blue");
    assert.match(error.state, /verified and published/);
  });

  await t.step(
    "interrupted right after regenerate: the secret is stored first; a re-run proves it without regenerating",
    async () => {
      const { emulator, published, base } = setup();
      await using _ = emulator;
      const journal = createMemoryJournal();
      const controller = new AbortController();
      const first = await runStagedRotation({
        ...base,
        journal,
        onPhase: (event) => {
          if (event.phase === "regenerate" && event.status === "completed") {
            controller.abort(); // the process dies here
          }
        },
        signal: controller.signal,
      }).catch((e) => e);
      assert.equal(first.phase, "test");
      assert.equal(first.interrupted, true);
      assert.equal(journal.record?.regeneratedAt !== undefined, true);
      assert.equal(journal.record?.publishedAt !== undefined, true);
      assert.equal(published.length, 1);
      assert.ok(!JSON.stringify(journal.record).includes("secret-"));

      // The operator re-runs with the configuration reloaded from the sink.
      const reloaded = base.credentials.map((c) =>
        c.label === "green" ? { ...c, clientSecret: published[0].secret } : c
      );
      const report = await runStagedRotation({
        ...base,
        credentials: reloaded,
        journal,
      });
      assert.equal(report.resumed, true);
      assert.equal(emulator.stats().secretRegenerations, 1);
      assert.equal(
        published[0].secret.reveal(),
        emulator.getClientSecret(GREEN.clientId),
      );
      assert.ok(journal.record?.completedAt !== undefined);
    },
  );

  await t.step(
    "interrupted after publish: a re-run rolls forward to promotion without regenerating",
    async () => {
      const { emulator, published, base } = setup();
      await using _ = emulator;
      const journal = createMemoryJournal();
      const first = await runStagedRotation({
        ...base,
        journal,
        promote: true,
        onPromote: () => {
          throw new Error("killed");
        },
      }).catch((e) => e);
      assert.equal(first.phase, "promote");
      assert.ok(journal.record?.publishedAt !== undefined);

      // The operator re-runs with the configuration reloaded from the sink.
      const reloaded = base.credentials.map((c) =>
        c.label === "green" ? { ...c, clientSecret: published[0].secret } : c
      );
      const promotedTo: string[] = [];
      const report = await runStagedRotation({
        ...base,
        credentials: reloaded,
        journal,
        promote: true,
        onPromote: (label) => {
          promotedTo.push(label);
        },
      });
      assert.equal(report.resumed, true);
      assert.equal(emulator.stats().secretRegenerations, 1);
      assert.deepEqual(promotedTo, ["green"]);
      assert.equal(published.length, 1);
    },
  );

  await t.step(
    "listeners cannot hurt: a throwing, a rejecting and a never-settling onPhase",
    async () => {
      const { emulator, published, base } = setup();
      await using _ = emulator;
      const unhandled: unknown[] = [];
      const onUnhandled = (event: PromiseRejectionEvent) => {
        unhandled.push(event.reason);
        event.preventDefault();
      };
      globalThis.addEventListener("unhandledrejection", onUnhandled);
      try {
        const listeners = [
          () => {
            throw new Error("sync listener bug");
          },
          () => Promise.reject(new Error("async listener bug")),
          async (event: RotationPhaseEvent) => {
            await Promise.resolve();
            if (event.phase === "regenerate") throw new Error("late bug");
          },
        ];
        for (const onPhase of listeners) {
          const report = await runStagedRotation({
            ...base,
            credentials: base.credentials.map((c) =>
              c.label === "green" && published.length > 0
                ? { ...c, clientSecret: published.at(-1)!.secret }
                : c
            ),
            onPhase,
            promote: true,
            onPromote: () => {},
          });
          assert.equal(report.promoted, true);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.deepEqual(unhandled, []);
        assert.equal(emulator.stats().secretRegenerations, 3);
      } finally {
        globalThis.removeEventListener("unhandledrejection", onUnhandled);
      }
    },
  );

  await t.step(
    "rotate, then rotate with promote (the old runbook): promotes without regenerating again",
    async () => {
      const { emulator, published, base } = setup();
      await using _ = emulator;
      const journal = createMemoryJournal();
      await runStagedRotation({ ...base, journal });
      const reloaded = base.credentials.map((c) =>
        c.label === "green" ? { ...c, clientSecret: published[0].secret } : c
      );
      const promotedTo: string[] = [];
      const report = await runStagedRotation({
        ...base,
        credentials: reloaded,
        journal,
        promote: true,
        onPromote: (label) => void promotedTo.push(label),
      });
      assert.deepEqual(promotedTo, ["green"]);
      assert.equal(report.resumed, true);
      assert.match(report.resumedFrom!, /promoted without regenerating/);
      assert.equal(emulator.stats().secretRegenerations, 1);
      assert.ok(journal.record?.promotedAt !== undefined);
    },
  );

  await t.step(
    "without promote the active label is never touched",
    async () => {
      const { emulator, base } = setup();
      await using _ = emulator;
      const report = await runStagedRotation({
        ...base,
        onPromote: () => assert.fail("promoted without being asked"),
      });
      assert.equal(report.promoted, false);
      assert.equal(report.active, "blue");
    },
  );
});
