/**
 * A store that lost its data, re-seeded by the instances (Deno KV and
 * Redis): what goes back in is the secret in use, never a straggler's dead
 * one.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createDualSecretAuth, type DualSecretAuth } from "../../mod.ts";
import { type GenesysEmulator, startGenesysEmulator } from "../../testing.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { createFleet } from "../../src/fleet/member.ts";
import type { FleetStore, InstanceRecord } from "../../src/fleet/store.ts";
import {
  importSealKeyring,
  publishSealedCredential,
  type SealKeyring,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import {
  type FleetTarget,
  readDistributedSecret,
  readStoredSecretIdentity,
} from "../../src/fleet/operator.ts";
import { authenticateStore } from "../../src/fleet/control.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import { promoteFleet } from "../../src/fleet/store_flows.ts";
import { Secret } from "../../src/secret.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import { until } from "../support/wait.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const BLUE = "blue-CANARY-5b21";
const GREEN = "green-CANARY-0c7e";
const HEARTBEAT_MS = 1_500;

/** A store engine with a wipe (every record lost). */
interface Engine extends AsyncDisposable {
  /** A new store client of the one database. */
  store(): FleetStore;
  /** Loses every record. */
  wipe(): Promise<void>;
}

async function openEngine(name: "kv" | "redis"): Promise<Engine> {
  if (name === "kv") {
    const dir = await Deno.makeTempDir();
    const kv = await Deno.openKv(`${dir}/fleet.db`);
    const prefix = ["dual-secret-auth", "reseed"];
    return {
      store: () => createKvFleetStore(kv, { prefix }),
      async wipe() {
        for await (const entry of kv.list({ prefix: [] })) {
          await kv.delete(entry.key);
        }
      },
      async [Symbol.asyncDispose]() {
        kv.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  }
  const server = await startRedisServer();
  const stores: { close(): Promise<void> }[] = [];
  return {
    store() {
      const store = createRedisFleetStore({
        url: server.url,
        prefix: "dual-secret-auth:reseed",
      });
      stores.push(store);
      return store;
    },
    async wipe() {
      // Restarted without persistence.
      await server.kill();
      await server.start();
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(stores.map((store) => store.close()));
      await server[Symbol.asyncDispose]();
    },
  };
}

/** A store whose reads of the sealed secrets wait `slow.ms` (a slow host). */
function slowDocuments(
  store: FleetStore,
  slow: { ms: number },
): FleetStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== "readDocument" || typeof value !== "function") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return async (...args: unknown[]) => {
        if (slow.ms > 0) await new Promise((r) => setTimeout(r, slow.ms));
        return await value.apply(target, args);
      };
    },
  });
}

async function live(target: FleetTarget): Promise<InstanceRecord[]> {
  return (await target.store.listInstances()).filter((r) =>
    r.until > Date.now()
  );
}

const report = (record: InstanceRecord | undefined, label: string) =>
  record?.credentials.find((c) => c.label === label);

async function publish(
  target: FleetTarget,
  ring: SealKeyring,
  emulator: GenesysEmulator,
): Promise<string> {
  const secret = emulator.regenerateSecret("green-id");
  await publishSealedCredential({
    store: target.store,
    service: target.service,
    ring,
    by: "test",
    now: Date.now(),
  }, { label: "green", clientId: "green-id", secret: new Secret(secret) });
  return (await readStoredSecretIdentity(target, "green"))!.fingerprint;
}

for (
  const [name, missed] of [
    ["kv", "proof"],
    ["kv", "read"],
    ["redis", "proof"],
    ["redis", "read"],
  ] as const
) {
  Deno.test({
    name: `${name}: a straggler still on a regenerated (dead) secret (its ${
      missed === "proof" ? "proof of the new one failed" : "reads timed out"
    }) does not seal it back after the store lost its data; the secret in use goes back`,
    ignore: name === "redis" ? ignoreWithoutRedis() : false,
    async fn() {
      const emulator = startGenesysEmulator({
        clients: [
          { clientId: "blue-id", secret: BLUE },
          { clientId: "green-id", secret: GREEN },
        ],
      });
      await using engine = await openEngine(name);
      const ring = await importSealKeyring(KEY);
      const service = await serviceNamespace(emulator.tokenUrl);
      const target: FleetTarget = {
        store: authenticateStore(engine.store(), ring, () => undefined),
        service,
        by: "test",
        now: () => Date.now(),
      };
      const slow = { ms: 0 };
      const stragglerSlow = { ms: 0 };
      // The straggler's token requests for green fail while this is set (a
      // network fault during its proof): it keeps green's previous secret.
      const cut = { green: false };
      const instances: DualSecretAuth[] = [];
      const start = (id: string, options: { slow?: boolean } = {}) => {
        const base = engine.store();
        const auth = createDualSecretAuth({
          credentials: [
            { label: "blue", clientId: "blue-id", clientSecret: BLUE },
            { label: "green", clientId: "green-id", clientSecret: GREEN },
          ],
          tokenUrl: emulator.tokenUrl,
          ...(id === "straggler"
            ? {
              fetch: async (input, init) => {
                const body = String(init?.body ?? "");
                const basic = new Headers(init?.headers).get("authorization");
                if (
                  cut.green &&
                  (body.includes("green-id") ||
                    (basic !== null && atob(basic.slice(6)).startsWith(
                      "green-id:",
                    )))
                ) {
                  throw new TypeError("connection reset (test)");
                }
                return await fetch(input, init);
              },
            }
            : {}),
          shared: createFleet(
            slowDocuments(base, options.slow ? slow : stragglerSlow),
            {
              instanceId: id,
              pollIntervalMs: 100,
              heartbeatMs: HEARTBEAT_MS,
              secretSealKeys: KEY,
            },
          ),
        });
        instances.push(auth);
        return auth;
      };
      try {
        start("web-1", { slow: true });
        start("web-2", { slow: true });
        start("straggler");
        await until("3 heartbeats", () => live(target), (r) => r.length === 3);

        const first = await publish(target, ring, emulator);
        await until(
          "every instance on green's first published secret",
          () => live(target),
          (records) =>
            records.length === 3 &&
            records.every((r) =>
              report(r, "green")?.secretFingerprint === first
            ),
        );

        // Past the store timeout: the straggler never reads the record.
        if (missed === "proof") cut.green = true;
        else stragglerSlow.ms = 1_500;
        const second = await publish(target, ring, emulator);
        const inUse = emulator.getClientSecret("green-id");
        await until(
          "web-1 and web-2 on the second, the straggler's proof failed",
          () => live(target),
          (records) => {
            const of = (id: string) =>
              report(records.find((r) => r.instanceId === id), "green");
            return of("web-1")?.secretFingerprint === second &&
              of("web-2")?.secretFingerprint === second &&
              of("straggler")?.secretFingerprint === first &&
              (missed === "proof"
                ? of("straggler")?.secretProblem?.reason === "proof failed"
                : of("straggler")?.secretProblem === undefined);
          },
        );

        // The up-to-date instances are slower to read the store than the
        // straggler, which sees the loss first.
        if (missed === "read") {
          // Let it go on not reading while the others load the second.
          await new Promise((r) => setTimeout(r, 1_000));
          stragglerSlow.ms = 0;
        }
        slow.ms = 600;
        await engine.wipe();
        await until(
          "a sealed secret of green back in the store",
          () => readStoredSecretIdentity(target, "green"),
          (identity) => identity !== undefined,
        );
        cut.green = false;
        slow.ms = 0;
        // Given time to settle: whatever the store holds then stays.
        await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
        const stored = await readDistributedSecret(target, ring, "green");
        assert.equal(
          stored?.secret.reveal(),
          inUse,
          "the store holds the secret in use, not the straggler's dead one",
        );
        assert.equal(stored?.generation, 2, "at the generation in use");
        await until(
          "every instance on the secret in use",
          () => live(target),
          (records) =>
            records.length === 3 &&
            records.every((r) =>
              report(r, "green")?.secretProblem === undefined
            ),
        );
      } finally {
        await Promise.all(instances.map((auth) => auth.close()));
        await emulator.close();
      }
    },
  });
}

for (
  const [name, when] of [
    ["kv", "once the heartbeats are back"],
    ["kv", "at once"],
    ["redis", "once the heartbeats are back"],
    ["redis", "at once"],
  ] as const
) {
  Deno.test({
    name:
      `${name}: promote (${when}) refuses a label whose sealed secret the store lost while the instances have not proved the secret in use`,
    ignore: name === "redis" ? ignoreWithoutRedis() : false,
    async fn() {
      const emulator = startGenesysEmulator({
        clients: [
          { clientId: "blue-id", secret: BLUE },
          { clientId: "green-id", secret: GREEN },
        ],
      });
      await using engine = await openEngine(name);
      const ring = await importSealKeyring(KEY);
      const service = await serviceNamespace(emulator.tokenUrl);
      const operator = createStoreTarget({
        store: engine.store(),
        service,
        by: "ops",
        ring,
        onRejected: () => undefined,
      });
      // The token endpoint refuses green for the instances while this is
      // set (a fault during their proof of the new secret).
      const cut = { green: false };
      const instances: DualSecretAuth[] = [];
      try {
        for (const id of ["web-1", "web-2"]) {
          instances.push(createDualSecretAuth({
            credentials: [
              { label: "blue", clientId: "blue-id", clientSecret: BLUE },
              { label: "green", clientId: "green-id", clientSecret: GREEN },
            ],
            tokenUrl: emulator.tokenUrl,
            fetch: async (input, init) => {
              const body = String(init?.body ?? "");
              const basic = new Headers(init?.headers).get("authorization");
              if (
                cut.green &&
                (body.includes("green-id") ||
                  (basic !== null &&
                    atob(basic.slice(6)).startsWith("green-id:")))
              ) {
                throw new TypeError("connection reset (test)");
              }
              return await fetch(input, init);
            },
            shared: createFleet(engine.store(), {
              instanceId: id,
              pollIntervalMs: 100,
              heartbeatMs: HEARTBEAT_MS,
              secretSealKeys: KEY,
            }),
          }));
        }
        await until(
          "2 heartbeats",
          () => live(operator),
          (r) => r.length === 2,
        );
        const first = await publish(operator, ring, emulator);
        await until(
          "both on green's first published secret",
          () => live(operator),
          (records) =>
            records.length === 2 &&
            records.every((r) =>
              report(r, "green")?.secretFingerprint === first
            ),
        );
        cut.green = true;
        const second = await publish(operator, ring, emulator);
        await until(
          "both failed to prove green's second secret",
          () => live(operator),
          (records) =>
            records.length === 2 &&
            records.every((r) =>
              report(r, "green")?.secretProblem?.fingerprint === second &&
              report(r, "green")?.secretProblem?.reason === "proof failed"
            ),
        );
        const seen = await live(operator);
        await engine.wipe();
        if (when === "at once") {
          await until(
            "the store answers again",
            () => operator.store.readActive(service),
            () => true,
          );
        } else {
          await until(
            "2 heartbeats again",
            () => live(operator),
            (r) => r.length === 2,
          );
        }
        const outcome = await promoteFleet(operator, "green", {
          timeoutMs: 1_000,
          pollMs: 100,
          ...(when === "at once" ? { expected: seen } : {}),
        });
        assert.equal(
          outcome.kind,
          "refused",
          "no instance proved green's secret in use",
        );
        assert.notEqual(
          (await operator.store.readActive(service))?.label,
          "green",
        );
      } finally {
        await Promise.all(instances.map((auth) => auth.close()));
        await emulator.close();
      }
    },
  });
}

for (const name of ["kv", "redis"] as const) {
  Deno.test({
    name:
      `${name}: a promotion written just after the store lost its data is followed by the instances (not ignored as a store that went back)`,
    ignore: name === "redis" ? ignoreWithoutRedis() : false,
    async fn() {
      const emulator = startGenesysEmulator({
        clients: [
          { clientId: "blue-id", secret: BLUE },
          { clientId: "green-id", secret: GREEN },
        ],
      });
      await using engine = await openEngine(name);
      const ring = await importSealKeyring(KEY);
      const service = await serviceNamespace(emulator.tokenUrl);
      const operator = createStoreTarget({
        store: engine.store(),
        service,
        by: "ops",
        ring,
        onRejected: () => undefined,
      });
      const instances: DualSecretAuth[] = [];
      try {
        for (const id of ["web-1", "web-2"]) {
          instances.push(createDualSecretAuth({
            credentials: [
              { label: "blue", clientId: "blue-id", clientSecret: BLUE },
              { label: "green", clientId: "green-id", clientSecret: GREEN },
            ],
            tokenUrl: emulator.tokenUrl,
            shared: createFleet(engine.store(), {
              instanceId: id,
              // Slower than the operator: its write lands first.
              pollIntervalMs: 1_000,
              heartbeatMs: HEARTBEAT_MS,
              secretSealKeys: KEY,
            }),
          }));
        }
        await until(
          "2 heartbeats",
          () => live(operator),
          (r) => r.length === 2,
        );
        await until(
          "the active record",
          () => operator.store.readActive(service),
          (record) => record?.label === "blue",
        );
        const seen = await live(operator);
        await engine.wipe();
        await until(
          "the store answers again",
          () => operator.store.readActive(service),
          () => true,
        );
        const outcome = await promoteFleet(operator, "green", {
          timeoutMs: 5_000,
          pollMs: 100,
          expected: seen,
        });
        assert.equal(outcome.kind, "promoted");
        // No "done" on heartbeats lost with the store: the instances seen
        // before report the label when it returns.
        assert.deepEqual(
          outcome.kind === "promoted" ? outcome.stragglers : [],
          [],
        );
        const after = await live(operator);
        assert.deepEqual(
          after.map((r) => [r.instanceId, r.active]).sort(),
          [["web-1", "green"], ["web-2", "green"]],
        );
        await until(
          "both instances back and on green, as the store says",
          async () => ({
            live: (await live(operator)).map((r) => [r.instanceId, r.active]),
            active: (await operator.store.readActive(service))?.label,
          }),
          ({ live, active }) =>
            live.length === 2 && live.every(([, label]) => label === "green") &&
            active === "green",
          { timeoutMs: 8_000 },
        );
      } finally {
        await Promise.all(instances.map((auth) => auth.close()));
        await emulator.close();
      }
    },
  });
}
