import assert from "node:assert/strict";
import { proveCredential } from "../../src/rotation/prove_credential.ts";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";
import { Secret } from "../../src/secret.ts";

// Formerly the JSDoc example of `proveCredential`, which is internal (the
// public functions that prove a secret are `setUpTwinClient`,
// `respondToCompromise` and `runStagedRotation`), so its check lives here.
Deno.test("proveCredential gets one token with the credential", async () => {
  await using emulator = startGenesysEmulator({
    clients: [{ clientId: "green", secret: "s" }],
  });
  const grant = await proveCredential({
    tokenUrl: emulator.tokenUrl,
    label: "green",
    clientId: "green",
    secret: new Secret("s"),
  });
  assert.equal(grant.lifetimeMs, 86_400_000);
  assert.equal(emulator.stats().tokenRequestsByClient["green"], 1);
});
