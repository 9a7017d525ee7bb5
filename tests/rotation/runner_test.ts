import assert from "node:assert/strict";
import { AbortedError, DualSecretAuthError } from "../../src/errors.ts";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import {
  IncidentError,
  respondToCompromise,
} from "../../src/rotation/incident.ts";
import { PromotionError, runPromotion } from "../../src/rotation/promotion.ts";
import { StagedRotationError } from "../../src/rotation/rotation_errors.ts";
import { createCallbackSink } from "../../src/rotation/sinks.ts";
import { runStagedRotation } from "../../src/rotation/staged_rotation.ts";
import {
  setUpTwinClient,
  TwinSetupError,
} from "../../src/rotation/twin_setup.ts";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";
import {
  runSteps,
  StepFailedError,
  type StepFlow,
  type StepRunnerHooks,
  type StepSpec,
} from "../../src/rotation/runner.ts";

type State = { log: string[] };
type Step = StepSpec<State, string, string, string>;

function step(name: string, extra: Partial<Step> = {}): Step {
  return {
    name,
    abortable: true,
    run: (state) => {
      state.log.push(`run ${name}`);
      return Promise.resolve(`${name} done`);
    },
    onFailure: (_state, error, acted) =>
      `${name} failed (${acted ? "acted" : "before acting"}): ${
        (error as Error).message
      }`,
    ...extra,
  };
}

function hooks(
  state: State,
  extra: Partial<StepRunnerHooks<State, string, string, string>> = {},
): StepRunnerHooks<State, string, string, string> {
  return {
    emit: (name, status, detail) =>
      state.log.push(`${name}:${status}${detail ? `:${detail}` : ""}`),
    journal: (s, change) => {
      s.log.push(`journal ${change}`);
      return Promise.resolve();
    },
    after: (name, s) => void s.log.push(`after ${name}`),
    fail: (name, report, error) =>
      new StepFailedError("TEST_FAILED", `${name} | ${report}`, {
        flow: "rotation",
        step: name,
      }, { cause: error }),
    ...extra,
  };
}

Deno.test("runSteps: skip, journal before, run, journal after, events, after-hook, in order", async () => {
  const state: State = { log: [] };
  await runSteps(
    [
      step("a", {
        journalBefore: () => "a-before",
        journalAfter: () => "a-after",
      }),
      step("b", { skip: () => "not needed" }),
      step("c", {
        run: () => Promise.resolve({ detail: "looked", status: "skipped" }),
      }),
    ],
    state,
    hooks(state),
  );
  assert.deepEqual(state.log, [
    "a:started",
    "journal a-before",
    "run a",
    "journal a-after",
    "a:completed:a done",
    "after a",
    "b:skipped:not needed",
    "after b",
    "c:started",
    "c:skipped:looked",
    "after c",
  ]);
});

Deno.test("runSteps: a failing journal write before a step fails it before it acts; one after it is advisory", async () => {
  const state: State = { log: [] };
  const error = await runSteps(
    [step("a", { journalBefore: () => "x" })],
    state,
    hooks(state, { journal: () => Promise.reject(new Error("disk full")) }),
  ).catch((e) => e);
  assert.equal(error.message, "a | a failed (before acting): disk full");
  assert.ok(!state.log.includes("run a"));
  assert.ok(state.log.includes("a:failed:a failed (before acting): disk full"));

  const after: State = { log: [] };
  await runSteps(
    [step("b", { journalAfter: () => "y" })],
    after,
    hooks(after, { journal: () => Promise.reject(new Error("disk full")) }),
  );
  assert.ok(after.log.includes("b:completed:b done"));
});

Deno.test("runSteps: an abort stops it before the next abortable step, never inside a non-abortable one", async () => {
  const state: State = { log: [] };
  const stop = new AbortController();
  const error = await runSteps(
    [
      step("a", {
        run: (s) => {
          stop.abort(new Error("SIGINT"));
          s.log.push("run a");
          return Promise.resolve("a done");
        },
      }),
      step("b", { abortable: false }),
      step("c"),
    ],
    state,
    hooks(state, { signal: stop.signal }),
  ).catch((e) => e);
  assert.ok(error.cause instanceof AbortedError);
  assert.match(error.message, /^c \| c failed \(before acting\)/);
  assert.ok(state.log.includes("run b"), "b is not abortable: it ran");
  assert.ok(!state.log.includes("run c"));
});

Deno.test("runSteps: a dry run runs only the steps marked for it, journals nothing, and says what the others would do", async () => {
  const state: State = { log: [] };
  await runSteps(
    [
      step("plan", { inDryRun: true, journalAfter: () => "plan" }),
      step("act", { dryRunDetail: () => "would act" }),
      step("store"),
    ],
    state,
    hooks(state, { dryRun: true }),
  );
  assert.deepEqual(state.log, [
    "plan:started",
    "run plan",
    "plan:completed:plan done",
    "after plan",
    "act:skipped:would act",
    "after act",
    "store:skipped:dry run",
    "after store",
  ]);
});

// Every flow fails through the one runner, so one class catches them all.
const credentials = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];

function flowEmulator() {
  return startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: "blue-secret" },
      { clientId: "green-id", secret: "green-secret" },
      {
        clientId: "admin-id",
        secret: "admin-secret",
        permissions: ["oauth:client:*"],
      },
    ],
  });
}

function adminOf(emulator: ReturnType<typeof flowEmulator>) {
  return createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => Promise.resolve(emulator.issueToken("admin-id")),
  });
}

function assertStepFailed(
  error: unknown,
  flow: StepFlow,
  step: string,
  code: string,
): void {
  assert.ok(error instanceof StepFailedError, String(error));
  assert.ok(error instanceof DualSecretAuthError);
  assert.equal(error.flow, flow);
  assert.equal(error.step, step);
  assert.equal(error.code, code);
  assert.ok(error.cause !== undefined, "the step's failure is the cause");
}

Deno.test("StepFailedError: a staged rotation's failure names flow rotation and its phase", async () => {
  await using emulator = flowEmulator();
  const admin = adminOf(emulator);
  const error = await runStagedRotation({
    credentials,
    active: "blue",
    tokenUrl: emulator.tokenUrl,
    admin: {
      ...admin,
      regenerateSecret: () => Promise.reject(new Error("admin API down")),
    },
    sink: createCallbackSink(() => {}),
  }).catch((e) => e);
  assertStepFailed(
    error,
    "rotation",
    "regenerate",
    "ROTATION_REGENERATE_FAILED",
  );
  assert.ok(error instanceof StagedRotationError);
  assert.equal(error.phase, "regenerate");
  assert.equal(typeof error.state, "string");
  assert.equal(typeof error.nextStep, "string");
});

Deno.test("StepFailedError: a promotion's failure names flow promotion and its step", async () => {
  await using emulator = flowEmulator();
  const error = await runPromotion({
    credentials,
    active: "blue",
    to: "purple",
    tokenUrl: emulator.tokenUrl,
    publishActive: () => {},
  }).catch((e) => e);
  assertStepFailed(error, "promotion", "plan", "PROMOTION_FAILED");
  assert.ok(error instanceof PromotionError);
  assert.equal(error.target, "purple");
  assert.match(error.message, /State: .* Next: /);
});

Deno.test("StepFailedError: an incident's failure names flow incident and its step", async () => {
  await using emulator = flowEmulator();
  const admin = adminOf(emulator);
  const error = await respondToCompromise({
    compromised: "blue",
    credentials,
    active: "green",
    tokenUrl: emulator.tokenUrl,
    adminFor: () => ({
      ...admin,
      regenerateSecret: () => Promise.reject(new Error("admin API down")),
    }),
    sink: createCallbackSink(() => {}),
    onPromote: () => {},
  }).catch((e) => e);
  assertStepFailed(
    error,
    "incident",
    "regenerate",
    "INCIDENT_REGENERATE_FAILED",
  );
  assert.ok(error instanceof IncidentError);
});

Deno.test("StepFailedError: a twin set-up's failure names flow setup and its step", async () => {
  await using emulator = flowEmulator();
  const error = await setUpTwinClient({
    from: "blue",
    to: "green",
    sourceClientId: "missing-id",
    admin: adminOf(emulator),
    sink: createCallbackSink(() => {}),
    tokenUrl: emulator.tokenUrl,
  }).catch((e) => e);
  assertStepFailed(error, "setup", "read", "SETUP_READ_FAILED");
  assert.ok(error instanceof TwinSetupError);
});
