import assert from "node:assert/strict";
import { send } from "../src/send.ts";
import { systemClock } from "../src/clock.ts";

// Formerly the JSDoc example of `send`, which is internal: no entry point
// exports it, so its check lives here.
Deno.test("send returns the response with its body read", async () => {
  const sent = await send("https://idp.example/token", { method: "POST" }, {
    fetch: () => Promise.resolve(new Response('{"ok":true}')),
    clock: systemClock,
    redact: (text) => text,
  });
  assert.equal(sent.response.status, 200);
  assert.deepEqual(JSON.parse(sent.text), { ok: true });
});
