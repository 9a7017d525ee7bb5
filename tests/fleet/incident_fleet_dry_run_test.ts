/**
 * `deno task incident --kv|--redis --dry-run` (under the operator permission
 * set): it plans and runs the pre-flight checks on a fleet store that holds
 * sealed secrets, an active record, an audit trail and an unfinished incident
 * journal, exits 0, and changes nothing: the store's every key and value are
 * the same before and after (a dump), and the emulator regenerated, disabled
 * or changed nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Secret } from "../../src/secret.ts";
import {
  importSealKeyring,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import {
  connectRedis,
  createRedisFleetStore,
} from "../../src/fleet/redis_store.ts";
import type { FleetStore } from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import { audit } from "../../src/fleet/operator.ts";
import type { GenesysEmulator } from "../../src/testing/emulator_types.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import { createFleetWorkspace, startFleetEmulator } from "./harness.ts";
import { INCIDENT_SEAL_KEY, INCIDENT_SECRETS } from "./incident_scenario.ts";

const PREFIX = "fleet-test";

/** Seals both secrets, sets blue active, audits, and leaves an unfinished incident journal. */
async function seed(
  store: FleetStore,
  emulator: GenesysEmulator,
): Promise<void> {
  const target = createStoreTarget({
    store,
    service: await serviceNamespace(emulator.tokenUrl, undefined),
    by: "seed@test",
    ring: await importSealKeyring(INCIDENT_SEAL_KEY),
  });
  const sink = target.sealedSink();
  for (const label of ["blue", "green"] as const) {
    await sink.publish({
      label,
      clientId: `${label}-id`,
      secret: new Secret(INCIDENT_SECRETS[label]),
    });
  }
  await target.setActive("blue");
  await audit(target, { action: "seed", outcome: "ok" });
  await target.incidentJournal.write({
    version: 1,
    kind: "incident",
    incidentId: crypto.randomUUID(),
    compromised: "blue",
    clientId: "blue-id",
    other: "green",
    sink: "fleet store (sealed)",
    previousActive: "blue",
    wasActive: true,
    killTokens: true,
    startedAt: Date.now(),
    done: ["plan"],
  });
}

/** What the emulator holds of the three clients. */
function clients(emulator: GenesysEmulator): string[] {
  return ["blue-id", "green-id", "admin-id"].map((id) =>
    `${id} ${emulator.getClientState(id)} ${emulator.getClientSecret(id)}`
  );
}

async function dryRun(
  engine: "kv" | "redis",
  emulator: GenesysEmulator,
  storeArgs: readonly string[],
  env: Record<string, string>,
  dump: () => Promise<string[]>,
  ws: Awaited<ReturnType<typeof createFleetWorkspace>>,
): Promise<void> {
  const before = await dump();
  assert.ok(before.length >= 5, `seeded: ${before.join("\n")}`);
  const statsBefore = emulator.stats();
  const clientsBefore = clients(emulator);
  const run = await ws.task("incident", [
    "--compromised",
    "blue",
    "--kill-tokens",
    "--dry-run",
    // No instance runs here (else refused: FLEET_NOT_SEEN).
    "--allow-empty",
    ...storeArgs,
  ], env);
  const output = run.stdout + run.stderr;
  assert.equal(run.code, 0, output);
  assert.match(
    run.stdout,
    /plan\s+completed\s+resuming incident [0-9a-f-]{36} \(started [^;]+; done: plan\); blue \(blue-id\) serves traffic: rotate green/,
  );
  assert.match(run.stdout, /OAuth client blue-id is active\); dry run/);
  for (
    const step of [
      "rotate-other",
      "propagate",
      "promote",
      "disable",
      "regenerate",
      "store",
      "enable",
      "verify",
    ]
  ) {
    assert.match(run.stdout, new RegExp(`${step}\\s+skipped\\s+dry run`));
  }
  assert.match(run.stdout, /^Dry run: nothing was changed\.$/m);
  for (const secret of Object.values(INCIDENT_SECRETS)) {
    assert.ok(!output.includes(secret), "a secret in the output");
  }
  // The store: every key and value as before (journal, lock, audit, sealed
  // secrets, active record).
  assert.deepEqual(await dump(), before, `--${engine}: the store changed`);
  // The emulator: nothing regenerated, disabled or changed; the pre-flight
  // read (the admin's token, GET of the compromised client) aside, the same
  // counters.
  const statsAfter = emulator.stats();
  assert.deepEqual(clients(emulator), clientsBefore);
  assert.equal(statsAfter.secretRegenerations, statsBefore.secretRegenerations);
  assert.equal(statsAfter.tokenFailures, statsBefore.tokenFailures);
  assert.equal(statsAfter.apiUnauthorized, statsBefore.apiUnauthorized);
  assert.deepEqual(
    {
      tokens: statsAfter.tokenRequestsByClient,
      api: statsAfter.apiRequestsByClient,
    },
    {
      tokens: {
        ...statsBefore.tokenRequestsByClient,
        "admin-id": (statsBefore.tokenRequestsByClient["admin-id"] ?? 0) + 1,
      },
      api: {
        ...statsBefore.apiRequestsByClient,
        "admin-id": (statsBefore.apiRequestsByClient["admin-id"] ?? 0) + 1,
      },
    },
    "only the admin's pre-flight read",
  );
}

Deno.test({
  name:
    "incident --kv --dry-run: plans (resuming the store's journal), pre-flight only, exit 0; the KV and the emulator unchanged",
  sanitizeResources: false,
  async fn() {
    await using emulator = startFleetEmulator(INCIDENT_SECRETS);
    await using ws = await createFleetWorkspace(emulator, INCIDENT_SECRETS);
    const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
    try {
      await seed(createKvFleetStore(kv, { prefix: [PREFIX] }), emulator);
      const dump = async () => {
        const out: string[] = [];
        for await (const entry of kv.list({ prefix: [] })) {
          out.push(
            JSON.stringify([entry.key, entry.value, entry.versionstamp]),
          );
        }
        return out;
      };
      await dryRun(
        "kv",
        emulator,
        ["--kv", "fleet.db", "--prefix", PREFIX],
        { DUAL_SECRET_SEAL_KEY: INCIDENT_SEAL_KEY },
        dump,
        ws,
      );
    } finally {
      kv.close();
    }
  },
});

Deno.test({
  name:
    "incident --redis --dry-run: plans (resuming the store's journal), pre-flight only, exit 0; the Redis and the emulator unchanged",
  ignore: ignoreWithoutRedis(),
  sanitizeResources: false,
  async fn() {
    await using server = await startRedisServer();
    await using emulator = startFleetEmulator(INCIDENT_SECRETS);
    await using ws = await createFleetWorkspace(emulator, INCIDENT_SECRETS);
    const store = createRedisFleetStore({ url: server.url, prefix: PREFIX });
    const redis = await connectRedis({ url: server.url });
    try {
      await seed(store, emulator);
      const dump = async () => {
        const keys = (await redis.client.sendCommand(["KEYS", "*"]) as string[])
          .sort();
        const out: string[] = [];
        for (const key of keys) {
          out.push(
            `${key} ${await redis.client.sendCommand(["DUMP", key])}`,
          );
        }
        return out;
      };
      await dryRun(
        "redis",
        emulator,
        ["--redis", "env", "--prefix", PREFIX],
        { DUAL_SECRET_SEAL_KEY: INCIDENT_SEAL_KEY, REDIS_URL: server.url },
        dump,
        ws,
      );
    } finally {
      await redis.close();
      await store.close();
    }
  },
});

Deno.test({
  name:
    "incident --kv: an unfinished response for the other label that left its client disabled is refused at the plan, naming --fresh with the store; --fresh --dry-run plans afresh",
  sanitizeResources: false,
  async fn() {
    await using emulator = startFleetEmulator(INCIDENT_SECRETS);
    await using ws = await createFleetWorkspace(emulator, INCIDENT_SECRETS);
    const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
    try {
      const store = createKvFleetStore(kv, { prefix: [PREFIX] });
      await seed(store, emulator);
      const target = createStoreTarget({
        store,
        service: await serviceNamespace(emulator.tokenUrl, undefined),
        by: "seed@test",
        ring: await importSealKeyring(INCIDENT_SEAL_KEY),
      });
      const previous = await target.incidentJournal.read();
      assert.ok(previous !== undefined);
      await target.incidentJournal.write({
        ...previous,
        compromised: "green",
        clientId: "green-id",
        other: "blue",
        done: ["plan", "disable"],
      });
      const args = [
        "--compromised",
        "blue",
        "--kill-tokens",
        "--yes",
        "--allow-empty",
        "--kv",
        "fleet.db",
        "--prefix",
        PREFIX,
      ];
      const env = { DUAL_SECRET_SEAL_KEY: INCIDENT_SEAL_KEY };
      const refused = await ws.task("incident", args, env);
      const output = refused.stdout + refused.stderr;
      assert.equal(refused.code, 1, output);
      assert.match(
        output,
        /it left OAuth client green-id disabled\. Finish that response first .* to start over anyway, run deno task incident --compromised blue --kv fleet\.db --prefix fleet-test --fresh\./,
      );
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(emulator.getClientState("blue-id"), "active");
      const fresh = await ws.task(
        "incident",
        [...args, "--fresh", "--dry-run"],
        env,
      );
      assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
      assert.doesNotMatch(fresh.stdout, /resuming incident/);
      assert.match(fresh.stdout, /^Dry run: nothing was changed\.$/m);
    } finally {
      kv.close();
    }
  },
});
