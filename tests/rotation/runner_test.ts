import assert from "node:assert/strict";
import { AbortedError } from "../../src/errors.ts";
import {
  runSteps,
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
      new Error(`${name} | ${report}`, { cause: error }),
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
