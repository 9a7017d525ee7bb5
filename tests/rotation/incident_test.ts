import assert from "node:assert/strict";
import { FleetNotLoadedError } from "../../src/fleet/operator.ts";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import {
  envFileLoadProof,
  INCIDENT_STEPS,
  type IncidentEvent,
  type IncidentJournalRecord,
  type IncidentOptions,
  respondToCompromise,
} from "../../src/rotation/incident.ts";
import { AbortedError } from "../../src/errors.ts";
import { createMemoryJournal } from "../../src/rotation/journal.ts";
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
      "propagate:skipped",
      "promote:completed",
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
      "propagate:skipped",
      "promote:skipped",
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
  const admin = options.adminFor!("compromised");
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

Deno.test("incident: the compromised credential is touched only after the instances proved the other's secret, then its promotion", async () => {
  const { emulator, options } = scenario({ killTokens: true });
  await using _ = emulator;
  const order: string[] = [];
  const admin = options.adminFor!("compromised");
  const report = await respondToCompromise({
    ...options,
    sink: createCallbackSink("memory", (update) => {
      order.push(`store ${update.label}`);
    }),
    onPromote: (label) => void order.push(`promote ${label}`),
    awaitLoaded: ({ label, active }) => {
      // What the instances would load now: green's regenerated secret.
      assert.equal(label, "green");
      order.push(`loaded ${label}${active ? " active" : ""}`);
      return Promise.resolve(`instances report ${label}`);
    },
    adminFor: () => ({
      ...admin,
      setClientState: (id, state, o) => {
        order.push(`${state} ${id}`);
        return admin.setClientState(id, state, o);
      },
      regenerateSecret: (id) => {
        order.push(`regenerate ${id}`);
        return admin.regenerateSecret(id);
      },
    }),
  });
  assert.deepEqual(order, [
    "regenerate green-id",
    "store green",
    "loaded green",
    "promote green",
    "loaded green active",
    "disabled blue-id",
    "regenerate blue-id",
    "store blue",
    "active blue-id",
  ]);
  const propagate = report.steps.find((s) => s.step === "propagate")!;
  assert.equal(propagate.status, "completed");
  assert.equal(propagate.detail, "instances report green");
  assert.match(
    report.steps.find((s) => s.step === "promote")!.detail,
    /green serves traffic now; instances report green/,
  );
});

for (const active of [false, true]) {
  Deno.test(
    `incident: instances that did not load the other's secret${
      active ? " (or do not serve it)" : ""
    } stop the response before the compromised credential is touched`,
    async () => {
      const { emulator, state, options } = scenario({ killTokens: true });
      await using _ = emulator;
      const error = await respondToCompromise({
        ...options,
        awaitLoaded: (request) =>
          request.active === active
            ? Promise.reject(
              new FleetNotLoadedError("web-3 did not report generation 1", []),
            )
            : Promise.resolve("ok"),
      }).catch((e) => e);
      assert.equal(
        error.code,
        active ? "INCIDENT_PROMOTE_FAILED" : "INCIDENT_PROPAGATE_FAILED",
      );
      assert.match(error.message, /web-3 did not report generation 1/);
      assert.match(
        error.message,
        /blue is unchanged \(not disabled, not regenerated\)/,
      );
      assert.equal(state.active, active ? "green" : "blue");
      assert.equal(emulator.getClientSecret(BLUE.clientId), BLUE.secret);
      assert.equal(emulator.getClientState(BLUE.clientId), "active");
      assert.equal(error.steps.at(-1).status, "failed");
    },
  );
}

Deno.test("incident: an interrupt during the wait for the instances stops it, the compromised credential untouched", async () => {
  const { emulator, options } = scenario({ killTokens: true });
  await using _ = emulator;
  const stop = new AbortController();
  const error = await respondToCompromise({
    ...options,
    signal: stop.signal,
    awaitLoaded: ({ signal }) =>
      new Promise((_resolve, reject) => {
        signal!.addEventListener("abort", () => reject(signal!.reason));
        stop.abort(new Error("SIGINT"));
      }),
  }).catch((e) => e);
  assert.equal(error.code, "ABORTED");
  assert.equal(emulator.getClientSecret(BLUE.clientId), BLUE.secret);
  assert.equal(emulator.getClientState(BLUE.clientId), "active");
});

Deno.test("envFileLoadProof: waits --reload-wait after the file's last write, not again once that has passed", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "GENESYS_ACTIVE=green\n");
    const proof = envFileLoadProof(path, { reloadWaitMs: 300 });
    assert.match(
      await proof({ label: "green", active: false }),
      /read green's secret with the active label/,
    );
    const written = (await Deno.stat(path)).mtime!.getTime();
    const line = await proof({ label: "green", active: true });
    assert.ok(
      Date.now() >= written + 300,
      "waited until 300 ms after the write",
    );
    assert.match(line, /within 0\.3 s \(--reload-wait\): waited 0\.[0-3] s/);
    const started = Date.now();
    assert.match(
      await proof({ label: "green", active: true }),
      /waited 0\.0 s/,
    );
    assert.ok(Date.now() - started < 200);
  } finally {
    await Deno.remove(path);
  }
});

/** Counts the regenerate calls per client id, through the admin client. */
function counting(options: IncidentOptions) {
  const regenerated: Record<string, number> = {};
  const adminFor: IncidentOptions["adminFor"] = (target) => {
    const admin = options.adminFor!(target);
    return {
      ...admin,
      regenerateSecret: (id, callOptions) => {
        regenerated[id] = (regenerated[id] ?? 0) + 1;
        return admin.regenerateSecret(id, callOptions);
      },
    };
  };
  return { regenerated, adminFor };
}

for (const step of INCIDENT_STEPS.filter((s) => s !== "verify")) {
  Deno.test(`incident with a journal: stopped after ${step}, run again: resumed, the clean credential regenerated once, a stored secret never again`, async () => {
    const { emulator, state, options } = scenario({ killTokens: true });
    await using _ = emulator;
    const journal = createMemoryJournal<IncidentJournalRecord>();
    const { regenerated, adminFor } = counting(options);
    const crash = new Error(`killed after ${step}`);
    const first = await respondToCompromise({
      ...options,
      adminFor,
      journal,
      failpoint: (reached) => {
        if (reached === step) throw crash;
      },
    }).catch((e) => e);
    assert.equal(first, crash);
    assert.ok(journal.record, "the journal holds the unfinished response");
    assert.equal(journal.record.completedAt, undefined);

    // The re-run reads what the sink holds now, as the task re-reads .env.
    const credentials = ["blue", "green"].map((label) => ({
      label,
      clientId: `${label}-id`,
      clientSecret: state.stored[label] ??
        (label === "blue" ? BLUE.secret : GREEN.secret),
    }));
    const report = await respondToCompromise({
      ...options,
      credentials,
      active: state.active,
      adminFor,
      journal,
    });
    assert.equal(report.active, "green");
    assert.match(report.resumedFrom ?? "", /resuming incident/);
    // Green (the clean credential) was regenerated once over both runs.
    assert.equal(regenerated[GREEN.clientId], 1, JSON.stringify(regenerated));
    // Blue again only when the first run's new secret was never stored.
    assert.equal(
      regenerated[BLUE.clientId],
      step === "regenerate" ? 2 : 1,
      JSON.stringify(regenerated),
    );
    assert.equal(state.active, "green");
    for (
      const [label, id] of [["blue", BLUE.clientId], ["green", GREEN.clientId]]
    ) {
      assert.equal(state.stored[label], emulator.getClientSecret(id), label);
      assert.equal(emulator.getClientState(id), "active", label);
    }
    assert.notEqual(journal.record.completedAt, undefined);
  });
}

Deno.test("incident with a journal: an unfinished response that left its client disabled is finished first; fresh starts over", async () => {
  const { emulator, options } = scenario({ killTokens: true, active: "green" });
  await using _ = emulator;
  const journal = createMemoryJournal<IncidentJournalRecord>();
  await respondToCompromise({
    ...options,
    journal,
    failpoint: (step) => {
      if (step === "disable") throw new Error("killed");
    },
  }).catch(() => {});
  assert.equal(emulator.getClientState(BLUE.clientId), "disabled");
  const refused = await respondToCompromise({
    ...options,
    compromised: "green",
    journal,
    commands: { fresh: "pass --fresh" },
  }).catch((e) => e);
  assert.equal(refused.code, "INCIDENT_PLAN_FAILED");
  assert.match(refused.message, /unfinished response .* for "blue"/);
  assert.match(refused.message, /left OAuth client blue-id disabled/);
  assert.match(refused.message, /pass --fresh/);
  assert.equal(emulator.getClientSecret(GREEN.clientId), GREEN.secret);
  // Finishing blue's response (resumed) re-enables it.
  const finished = await respondToCompromise({ ...options, journal });
  assert.match(finished.resumedFrom ?? "", /resuming incident/);
  assert.equal(emulator.getClientState(BLUE.clientId), "active");
});

Deno.test("incident with a journal: an unfinished response that changed nothing does not block another label's", async () => {
  const { emulator, options } = scenario({ active: "green" });
  await using _ = emulator;
  const journal = createMemoryJournal<IncidentJournalRecord>();
  await respondToCompromise({
    ...options,
    journal,
    failpoint: (step) => {
      if (step === "plan") throw new Error("killed");
    },
  }).catch(() => {});
  const report = await respondToCompromise({
    ...options,
    active: "blue",
    compromised: "green",
    journal,
  });
  assert.equal(report.compromised, "green");
  assert.match(
    report.steps[0].detail,
    /an unfinished response for "blue" .* is not resumed \(not the one asked for now\); starting afresh/,
  );
  assert.notEqual(emulator.getClientSecret(GREEN.clientId), GREEN.secret);
});

Deno.test("incident dry run: plans and reads the compromised client, changes nothing", async () => {
  const { emulator, state, options } = scenario({ killTokens: true });
  await using _ = emulator;
  const journal = createMemoryJournal<IncidentJournalRecord>();
  const report = await respondToCompromise({
    ...options,
    journal,
    dryRun: true,
  });
  assert.equal(report.dryRun, true);
  assert.equal(report.active, "blue");
  assert.deepEqual(
    report.steps.map((s) => `${s.step}:${s.status}`),
    INCIDENT_STEPS.map((s) => `${s}:${s === "plan" ? "completed" : "skipped"}`),
  );
  assert.match(report.steps[0].detail, /blue-id is active\); dry run/);
  assert.equal(journal.record, undefined);
  assert.deepEqual(state.stored, {});
  assert.equal(state.active, "blue");
  assert.equal(emulator.getClientSecret(BLUE.clientId), BLUE.secret);
  assert.equal(emulator.getClientSecret(GREEN.clientId), GREEN.secret);
});

Deno.test("incident: Ctrl-C while the disable call is under way: the client's disabling is journaled and reported, never left unrecorded", async () => {
  const { emulator, options } = scenario({ killTokens: true });
  await using _ = emulator;
  const journal = createMemoryJournal<IncidentJournalRecord>();
  const interrupt = new AbortController();
  const adminFor: IncidentOptions["adminFor"] = (target) => {
    const admin = options.adminFor!(target);
    return {
      ...admin,
      // The server disables the client; Ctrl-C arrives before its answer,
      // which a fetch given the signal then drops.
      setClientState: async (id, state, callOptions) => {
        const details = await admin.setClientState(id, state);
        if (state !== "disabled") return details;
        interrupt.abort(new Error("SIGINT"));
        if (callOptions?.signal?.aborted) throw new AbortedError();
        return details;
      },
    };
  };
  const stopped = await respondToCompromise({
    ...options,
    adminFor,
    journal,
    signal: interrupt.signal,
  }).catch((e) => e);
  assert.ok(stopped instanceof AbortedError, String(stopped));
  assert.equal(emulator.getClientState(BLUE.clientId), "disabled");
  assert.ok(
    journal.record?.done.includes("disable"),
    `the journal does not record the disabled client: ${journal.record?.done}`,
  );
  // Not regenerated: the interrupt stops it before the next step.
  assert.equal(emulator.getClientSecret(BLUE.clientId), BLUE.secret);
});
