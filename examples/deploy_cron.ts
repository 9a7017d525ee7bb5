/**
 * Scheduled rotation on Deno Deploy: `Deno.cron` runs one scheduler tick every
 * few minutes; each tick takes the leader lease in the bound Deno KV and does
 * what is due of the cycle (rotate the standby behind the revoke gate →
 * propagate → promote → drain), then returns. The instances of the service
 * use the same KV with `createKvFleet(kv, { prefix, secretSealKeys })` and
 * pick the new secret up without a redeploy.
 *
 * Environment: the `GENESYS_*` variables of `deno task rotate` (region or
 * token URL, both client ids and their first secrets, `GENESYS_ACTIVE`, and
 * preferably an admin client `GENESYS_ADMIN_CLIENT_ID`/`_SECRET`), and
 * `DUAL_SECRET_SEAL_KEY` (the same key every instance has). After the first
 * cycle the secrets in the environment are stale; the sealed ones in KV are
 * used.
 *
 * Run locally: `deno run --unstable-kv --unstable-cron --allow-net --allow-env
 * examples/deploy_cron.ts`.
 *
 * @module
 */
import { createKvFleetStore } from "../kv.ts";
import {
  authenticateStore,
  createSealedStoreSink,
  createStoreJournal,
  type FleetTarget,
  importSealKeyring,
  readDistributedSecret,
  scheduleTick,
  serviceNamespace,
} from "../fleet.ts";
import { createGenesysAdminClient, readRotationEnv } from "../genesys.ts";
import { runStagedRotation } from "../rotation.ts";
import { createDualSecretAuth } from "../mod.ts";

const PERIOD_MS = 30 * 86_400_000; // a full cycle every 30 days
const TICK = "*/5 * * * *"; // look every 5 minutes

const env = readRotationEnv(Deno.env.toObject());
const kv = await Deno.openKv();
const ring = await importSealKeyring(
  Deno.env.get("DUAL_SECRET_SEAL_KEY") ?? "",
);
const target: FleetTarget = {
  // Signed and verified with the seal key: instances ignore control
  // records without a valid MAC.
  store: authenticateStore(
    createKvFleetStore(kv, { prefix: ["dual-secret-auth", "my-service"] }),
    ring,
    (kind, where) => console.warn(`no valid MAC on a ${kind} record: ${where}`),
    // The revoke gate counts heartbeats it cannot verify (the cautious side).
    { keepUnverifiedHeartbeats: true },
  ),
  service: await serviceNamespace(env.tokenUrl),
  by: `deploy-cron-${crypto.randomUUID().slice(0, 8)}`,
  now: () => Date.now(),
};

/** The rotate step: the staged rotation with the store as sink and journal. */
async function rotate(standby: string): Promise<number> {
  const credentials = [];
  for (const credential of env.credentials) {
    const stored = await readDistributedSecret(target, ring, credential.label);
    credentials.push(
      stored ? { ...credential, clientSecret: stored.secret } : credential,
    );
  }
  const active = credentials.find((c) => c.label !== standby)!;
  await using adminAuth = createDualSecretAuth({
    credentials: [env.admin ? { label: "admin", ...env.admin } : active],
    tokenUrl: env.tokenUrl,
  });
  const sink = createSealedStoreSink(target, ring);
  await runStagedRotation({
    credentials,
    active: active.label,
    standby,
    tokenUrl: env.tokenUrl,
    admin: createGenesysAdminClient({
      apiUrl: env.apiUrl,
      getAccessToken: (options) => adminAuth.getAccessToken(options),
    }),
    sink,
    journal: createStoreJournal(target),
  });
  return sink.generations.get(standby) ??
    (await readDistributedSecret(target, ring, standby))!.generation;
}

Deno.cron("rotate Genesys Cloud OAuth secrets", TICK, async () => {
  const tick = await scheduleTick({
    target,
    credentials: env.credentials,
    initialActive: env.active,
    everyMs: PERIOD_MS,
    leaseMs: 10 * 60_000,
    tokenLifetimeMs: 86_400_000,
    drainBoundMs: 30_000,
    rotate,
    onProgress: (line) => console.log(line),
  });
  if (tick.advanced.length > 0) {
    console.log(`cycle steps done: ${tick.advanced.join(", ")}`);
  }
});
