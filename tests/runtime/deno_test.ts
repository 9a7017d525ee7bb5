import assert from "node:assert/strict";
import {
  assertDeno,
  DENO_REQUIRED,
  DenoRequiredError,
  runtimeName,
} from "../../src/runtime/deno.ts";

Deno.test("assertDeno passes on Deno", () => {
  assertDeno("createEnvFileSink");
  assert.equal(runtimeName(), "Deno");
});

Deno.test("assertDeno names the function and the alternative elsewhere", () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "Deno")!;
  let caught: unknown;
  try {
    // Deno as another runtime would see it: no Deno global.
    Object.defineProperty(globalThis, "Deno", {
      value: undefined,
      configurable: true,
    });
    assertDeno("createEnvFileSink", "Use createCallbackSink.");
  } catch (error) {
    caught = error;
  } finally {
    Object.defineProperty(globalThis, "Deno", saved);
  }
  assert.ok(caught instanceof DenoRequiredError);
  assert.equal(caught.code, DENO_REQUIRED);
  assert.equal(caught.feature, "createEnvFileSink");
  assert.match(caught.message, /^createEnvFileSink needs Deno .* Node\./);
  assert.match(caught.message, /Use createCallbackSink\.$/);
});
