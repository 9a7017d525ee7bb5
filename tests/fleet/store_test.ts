import assert from "node:assert/strict";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import { digest, importSealKey, seal, unseal } from "../../src/fleet/seal.ts";
import { fleetStoreContract } from "./contract.ts";

Deno.test("memory fleet store keeps the contract", async (t) => {
  await fleetStoreContract(
    t,
    () => Promise.resolve({ store: createMemoryFleetStore() }),
  );
});

Deno.test("seal", async (t) => {
  const key = await importSealKey(btoa("k".repeat(32)));
  await t.step("round-trips and is bound to its additional data", async () => {
    const sealed = await seal(key, "token-1", "grant/a/0");
    assert.ok(sealed.startsWith("v1."));
    assert.ok(!sealed.includes("token-1"));
    assert.equal(await unseal(key, sealed, "grant/a/0"), "token-1");
    assert.equal(await unseal(key, sealed, "grant/a/1"), undefined);
    assert.notEqual(
      await seal(key, "token-1", "grant/a/0"),
      sealed,
      "fresh iv",
    );
  });
  await t.step("another key or a tampered text does not open", async () => {
    const other = await importSealKey(btoa("j".repeat(32)));
    const sealed = await seal(key, "token-1", "ad");
    assert.equal(await unseal(other, sealed, "ad"), undefined);
    const tampered = sealed.slice(0, -2) + (sealed.endsWith("A") ? "BB" : "AA");
    assert.equal(await unseal(key, tampered, "ad"), undefined);
    assert.equal(await unseal(key, "plain", "ad"), undefined);
  });
  await t.step("a key of the wrong size is refused with advice", async () => {
    await assert.rejects(importSealKey(btoa("short")), /32 bytes.*openssl/);
    await assert.rejects(importSealKey("%%%"), /base64/);
  });
  await t.step("digest is stable and separates its parts", async () => {
    assert.equal(await digest("a", "b"), await digest("a", "b"));
    assert.notEqual(await digest("a", "b"), await digest("ab"));
    assert.match(await digest("x"), /^[0-9a-f]{32}$/);
  });
});
