import assert from "node:assert/strict";
import { createFleetAuth, fleetFor } from "../support/fleet_auth.ts";
import { startGenesysEmulator } from "../../testing.ts";
import type { AuthEvent } from "../../mod.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import {
  credentialDocument,
  credentialFingerprint,
  importSealKeyring,
  openCredential,
  publishSealedCredential,
  sealCredential,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import { Secret } from "../../src/secret.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const OTHER_KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(9)));

async function waitUntil(
  condition: () => boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function setUp(options: { instanceKey?: string } = {}) {
  const emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: "blue-1" },
      { clientId: "green-id", secret: "green-1" },
    ],
  });
  const store = createMemoryFleetStore();
  const events: AuthEvent[] = [];
  const auth = createFleetAuth({
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: "blue-1" },
      { label: "green", clientId: "green-id", clientSecret: "green-1" },
    ],
    tokenUrl: emulator.tokenUrl,
    onEvent: (event) => void events.push(event),
    shared: createFleet(store, {
      instanceId: "web-1",
      pollIntervalMs: 20,
      heartbeatMs: 150,
      ...(options.instanceKey === undefined
        ? {}
        : { secretSealKeys: options.instanceKey }),
    }),
  });
  return {
    emulator,
    store,
    auth,
    events,
    warnings: () =>
      events.flatMap((e) => e.type === "warning" ? [e] : []) as Extract<
        AuthEvent,
        { type: "warning" }
      >[],
    async publish(label: string, clientId: string, secret: string, key = KEY) {
      return await publishSealedCredential({
        store,
        service: await serviceNamespace(emulator.tokenUrl),
        ring: await importSealKeyring(key),
        by: "ops@test",
        now: Date.now(),
      }, { label, clientId, secret: new Secret(secret) });
    },
    async generationSeen(label: string): Promise<number | undefined> {
      const [me] = await fleetFor(auth).instances();
      return me?.credentials.find((c) => c.label === label)?.secretGeneration;
    },
    async credentialSeen(label: string) {
      const [me] = await fleetFor(auth).instances();
      return me?.credentials.find((c) => c.label === label);
    },
    /** The heartbeat's credential once it reports a problem (beats lag the poll). */
    async problemSeen(label: string) {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const [me] = await fleetFor(auth).instances();
        const seen = me?.credentials.find((c) => c.label === label);
        if (seen?.secretProblem !== undefined) return seen;
        if (Date.now() > deadline) throw new Error("no problem reported");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async [Symbol.asyncDispose]() {
      await auth.close();
      await emulator.close();
    },
  };
}

Deno.test("sealed secret distribution", async (t) => {
  await t.step(
    "seal keys: ids given or derived; base64 of 32 bytes required",
    async () => {
      const ring = await importSealKeyring(`next:${OTHER_KEY}, ${KEY}`);
      assert.equal(ring.current.id, "next");
      assert.equal(ring.keys.size, 2);
      const derived = [...ring.keys.keys()][1];
      assert.match(derived, /^[0-9a-f]{12}$/);
      assert.equal((await importSealKeyring(KEY)).current.id, derived);
      await assert.rejects(
        () => importSealKeyring(btoa("short")),
        /32 bytes/,
      );
    },
  );

  await t.step(
    "the additional data binds label, client id and generation",
    async () => {
      const ring = await importSealKeyring(KEY);
      const fields = { label: "green", clientId: "green-id", generation: 2 };
      const { keyId, sealed } = await sealCredential(
        ring,
        "svc",
        fields,
        new Secret("s3cret"),
      );
      const record = {
        ...fields,
        keyId,
        sealed,
        publishedAt: 1,
        publishedBy: "x",
      };
      const opened = await openCredential(ring, "svc", record);
      assert.ok(opened instanceof Secret);
      assert.equal(opened.reveal(), "s3cret");
      for (
        const moved of [
          { ...record, label: "blue" },
          { ...record, clientId: "blue-id" },
          { ...record, generation: 1 },
        ]
      ) {
        assert.equal(
          await openCredential(ring, "svc", moved),
          "does-not-open",
        );
      }
      assert.equal(
        await openCredential(ring, "other-service", record),
        "does-not-open",
      );
      assert.equal(
        await openCredential(await importSealKeyring(OTHER_KEY), "svc", record),
        "unknown-key",
      );
      assert.doesNotMatch(JSON.stringify(record), /s3cret/);
    },
  );

  await t.step(
    "an instance picks up a newer generation, proves it, then uses it",
    async () => {
      await using env = setUp({ instanceKey: KEY });
      await env.auth.getAccessToken();
      const newGreen = env.emulator.regenerateSecret("green-id");
      const before = env.emulator.stats().tokenRequests;
      assert.equal(await env.publish("green", "green-id", newGreen), 1);
      await waitUntil(() =>
        env.emulator.stats().tokenRequests > before &&
        env.warnings().length === 0
      );
      // The heartbeat reports the generation in use once adopted.
      const deadline = Date.now() + 5_000;
      while (await env.generationSeen("green") !== 1) {
        if (Date.now() > deadline) throw new Error("not adopted");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await env.auth.rotate({ to: "green" });
      assert.equal(env.auth.status().active, "green");
      assert.deepEqual(env.warnings(), []);
    },
  );

  await t.step(
    "a store that lost its data counts from 1 again: the new record is loaded all the same (fingerprint, not generation)",
    async () => {
      await using env = setUp({ instanceKey: KEY });
      await env.auth.getAccessToken();
      const service = await serviceNamespace(env.emulator.tokenUrl);
      const first = env.emulator.regenerateSecret("green-id");
      assert.equal(await env.publish("green", "green-id", first), 1);
      const name = credentialDocument("green");
      const stored = await env.store.readDocument(service, name);
      const firstFingerprint = await credentialFingerprint(
        stored!.value as { sealed: string },
      );
      const deadline = Date.now() + 5_000;
      while (
        (await env.credentialSeen("green"))?.secretFingerprint !==
          firstFingerprint
      ) {
        if (Date.now() > deadline) throw new Error("first not loaded");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // As after the loss: generation 1 again, another secret.
      const second = env.emulator.regenerateSecret("green-id");
      const sealed = await sealCredential(
        await importSealKeyring(KEY),
        service,
        { label: "green", clientId: "green-id", generation: 1 },
        new Secret(second),
      );
      const record = {
        label: "green",
        clientId: "green-id",
        generation: 1,
        ...sealed,
        publishedAt: Date.now(),
        publishedBy: "ops@test",
      };
      assert.ok(
        await env.store.writeDocument(service, name, stored!.version, record),
      );
      const secondFingerprint = await credentialFingerprint(record);
      assert.notEqual(secondFingerprint, firstFingerprint);
      while (
        (await env.credentialSeen("green"))?.secretFingerprint !==
          secondFingerprint
      ) {
        if (Date.now() > deadline + 5_000) throw new Error("second ignored");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(await env.generationSeen("green"), 1);
      // It proved and uses the second secret: a switch to green works.
      await env.auth.rotate({ to: "green" });
      assert.equal(env.auth.status().active, "green");
      assert.deepEqual(env.warnings(), []);
    },
  );

  await t.step(
    "a wrong seal key keeps the current credentials, with a clear warning",
    async () => {
      await using env = setUp({ instanceKey: OTHER_KEY });
      const token = await env.auth.getAccessToken();
      const newBlue = env.emulator.regenerateSecret("blue-id");
      await env.publish("blue", "blue-id", newBlue);
      await waitUntil(() =>
        env.warnings().some((w) => w.code === "FLEET_SECRET_SEAL_MISMATCH")
      );
      const warning = env.warnings().find((w) =>
        w.code === "FLEET_SECRET_SEAL_MISMATCH"
      )!;
      assert.equal(warning.label, "blue");
      assert.match(warning.message, /keeps its current credentials/);
      assert.match(warning.message, /DUAL_SECRET_SEAL_KEY/);
      assert.doesNotMatch(warning.message, new RegExp(newBlue));
      // Still served from what it has; the store's generation is not adopted.
      assert.equal(await env.auth.getAccessToken(), token);
      assert.equal(env.auth.status().active, "blue");
      assert.equal(await env.generationSeen("blue"), undefined);
      // The heartbeat says why, naming the record by its fingerprint.
      const seen = await env.problemSeen("blue");
      assert.equal(seen?.secretProblem?.reason, "seal key mismatch");
      assert.match(seen?.secretProblem?.fingerprint ?? "", /^[0-9a-f]{16}$/);
      assert.equal(seen?.secretFingerprint, undefined);
      // Warned once per generation, not at every poll.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(
        env.warnings().filter((w) => w.code === "FLEET_SECRET_SEAL_MISMATCH")
          .length,
        1,
      );
    },
  );

  await t.step(
    "a secret that fails its proof is not used; the old one stays",
    async () => {
      await using env = setUp({ instanceKey: KEY });
      await env.auth.getAccessToken();
      await env.publish("green", "green-id", "not-the-secret");
      await waitUntil(() =>
        env.warnings().some((w) => w.code === "FLEET_SECRET_PROOF_FAILED")
      );
      assert.equal(await env.generationSeen("green"), undefined);
      assert.equal(
        (await env.problemSeen("green")).secretProblem?.reason,
        "proof failed",
      );
      // green still has its working secret: a switch to it works.
      await env.auth.rotate({ to: "green" });
      assert.equal(env.auth.status().active, "green");
    },
  );

  await t.step(
    "without a seal key the instance says what to set",
    async () => {
      await using env = setUp();
      await env.auth.getAccessToken();
      await env.publish("green", "green-id", "whatever");
      await waitUntil(() =>
        env.warnings().some((w) => w.code === "FLEET_SECRET_NO_KEY")
      );
      assert.equal(
        (await env.store.readDocument(
          await serviceNamespace(env.emulator.tokenUrl),
          credentialDocument("green"),
        ))?.version,
        1,
      );
    },
  );
});
