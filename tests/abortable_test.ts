import assert from "node:assert/strict";
import { abortable } from "../src/abortable.ts";
import { AbortedError, ErrorCode } from "../src/errors.ts";

function assertAborted(error: unknown, reason: unknown): void {
  assert.ok(error instanceof AbortedError);
  assert.equal(error.code, ErrorCode.ABORTED);
  assert.equal(error.cause, reason);
}

Deno.test("abortable", async (t) => {
  await t.step("without a signal it is the promise itself", () => {
    const promise = Promise.resolve(1);
    assert.equal(abortable(promise, undefined), promise);
  });

  await t.step("an already aborted signal rejects at once", async () => {
    const reason = new Error("why");
    const error = await abortable(
      new Promise(() => {}),
      AbortSignal.abort(reason),
    ).catch((e) => e);
    assertAborted(error, reason);
  });

  await t.step("aborting stops only this wait", async () => {
    let finish!: (value: string) => void;
    const shared = new Promise<string>((r) => finish = r);
    const controller = new AbortController();
    const mine = abortable(shared, controller.signal);
    const theirs = abortable(shared, new AbortController().signal);
    controller.abort("stop");
    assertAborted(await mine.catch((e) => e), "stop");
    finish("token");
    assert.equal(await theirs, "token");
    assert.equal(await shared, "token");
  });

  await t.step("passes value and rejection through", async () => {
    const signal = new AbortController().signal;
    assert.equal(await abortable(Promise.resolve(7), signal), 7);
    const failure = new Error("boom");
    assert.equal(
      await abortable(Promise.reject(failure), signal).catch((e) => e),
      failure,
    );
  });

  await t.step("an abort after settling changes nothing", async () => {
    const controller = new AbortController();
    const result = await abortable(Promise.resolve("done"), controller.signal);
    controller.abort();
    assert.equal(result, "done");
  });
});
