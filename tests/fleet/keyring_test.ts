/**
 * One keyring for tokens and secrets: `sealKey` takes key ids and several
 * keys (the first seals, every one opens), and defaults to `secretSealKeys`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createFleetAuth } from "../support/fleet_auth.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { digest } from "../../src/fleet/seal.ts";
import {
  createMemoryFleetStore,
  type FleetStore,
} from "../../src/fleet/store.ts";

const OLD = btoa(String.fromCharCode(...new Uint8Array(32).fill(1)));
const NEW = btoa(String.fromCharCode(...new Uint8Array(32).fill(2)));
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];

function member(
  store: FleetStore,
  tokenUrl: string,
  id: string,
  keys: { sealKey?: string; secretSealKeys?: string },
) {
  return createFleetAuth({
    credentials: CREDENTIALS,
    tokenUrl,
    shared: createFleet(store, {
      instanceId: id,
      pollIntervalMs: 20,
      heartbeatMs: 300,
      ...keys,
    }),
  });
}

Deno.test("sealKey: key ids and several keys; an instance holding the old and the new key opens tokens sealed with either", async () => {
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
      tokenLifetimeSeconds: 600,
    })),
  });
  const store = createMemoryFleetStore();
  await using first = member(store, emulator.tokenUrl, "a", {
    sealKey: `k1:${OLD}`,
  });
  const token = await first.getAccessToken();
  const ns = await digest("credential", emulator.tokenUrl, "", "blue-id");
  const [slot] = await store.readSlots([{ credential: ns, slot: 0 }]);
  assert.equal(slot.grant?.sealed, true);
  assert.equal(slot.grant?.keyId, "k1");
  assert.ok(!slot.grant?.token.includes(token));
  // The next key first: seals with k2, still opens k1's token.
  await using second = member(store, emulator.tokenUrl, "b", {
    sealKey: `k2:${NEW},k1:${OLD}`,
  });
  assert.equal(await second.getAccessToken(), token);
  assert.equal(emulator.stats().tokenRequestsByClient["blue-id"], 1);
});

Deno.test("without sealKey, tokens are sealed with secretSealKeys (one keyring)", async () => {
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
    })),
  });
  const store = createMemoryFleetStore();
  await using auth = member(store, emulator.tokenUrl, "a", {
    secretSealKeys: `ops:${NEW}`,
  });
  const token = await auth.getAccessToken();
  const ns = await digest("credential", emulator.tokenUrl, "", "blue-id");
  const [slot] = await store.readSlots([{ credential: ns, slot: 0 }]);
  assert.equal(slot.grant?.sealed, true);
  assert.equal(slot.grant?.keyId, "ops");
  assert.notEqual(slot.grant?.token, token);
});
