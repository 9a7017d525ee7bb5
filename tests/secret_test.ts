import assert from "node:assert/strict";
import { inspect } from "node:util";
import { Secret } from "../src/secret.ts";

const CANARY = "CANARY-secret-7f3a9c";

Deno.test("Secret", async (t) => {
  const secret = new Secret(CANARY);

  await t.step("reveal() gives the value", () => {
    assert.equal(secret.reveal(), CANARY);
  });

  await t.step("toString, String() and template literals redact", () => {
    assert.equal(secret.toString(), "[redacted]");
    assert.equal(String(secret), "[redacted]");
    assert.equal(`${secret}`, "[redacted]");
    assert.equal("x" + secret, "x[redacted]");
  });

  await t.step("JSON.stringify redacts, also nested", () => {
    assert.equal(JSON.stringify(secret), '"[redacted]"');
    const nested = JSON.stringify({ a: [{ secret }] });
    assert.equal(nested, '{"a":[{"secret":"[redacted]"}]}');
  });

  await t.step("Deno.inspect and node:util inspect redact", () => {
    for (
      const text of [
        Deno.inspect(secret),
        Deno.inspect({ nested: { secret } }, { depth: 10 }),
        inspect(secret),
        inspect({ nested: { secret } }, { depth: 10 }),
      ]
    ) {
      assert.ok(!text.includes(CANARY), text);
      assert.match(text, /\[redacted\]/);
    }
  });

  await t.step("the value is not an enumerable or reachable property", () => {
    assert.deepEqual(Object.keys(secret), []);
    assert.ok(!Object.values(secret).includes(CANARY));
  });

  await t.step("equals compares values", () => {
    assert.equal(secret.equals(new Secret(CANARY)), true);
    assert.equal(secret.equals(new Secret(CANARY + "x")), false);
    assert.equal(secret.equals(new Secret(CANARY.slice(0, -1))), false);
    assert.equal(secret.equals(new Secret("")), false);
    assert.equal(new Secret("").equals(new Secret("")), true);
    assert.equal(new Secret("abc").equals(new Secret("abd")), false);
    assert.equal(new Secret("wörd€").equals(new Secret("wörd€")), true);
  });
});
