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
  createStoreTarget,
  genesysAdminProvider,
  importSealKeyring,
  scheduledRotation,
  scheduleTick,
  serviceNamespace,
} from "../fleet.ts";
import { readRotationEnv } from "../genesys.ts";

const PERIOD_MS = 30 * 86_400_000; // a full cycle every 30 days
const TICK = "*/5 * * * *"; // look every 5 minutes

const env = readRotationEnv(Deno.env.toObject());
const kv = await Deno.openKv();
// The fleet store as a rotation target: sealed sink, journal, lock, active
// label and revoke gate, signed and verified with the seal key (instances
// ignore control records without a valid MAC).
const target = createStoreTarget({
  store: createKvFleetStore(kv, { prefix: ["dual-secret-auth", "my-service"] }),
  service: await serviceNamespace(env.tokenUrl),
  by: `deploy-cron-${crypto.randomUUID().slice(0, 8)}`,
  ring: await importSealKeyring(Deno.env.get("DUAL_SECRET_SEAL_KEY") ?? ""),
});

// The rotate step: the same flow as `deno task rotate --kv --every`
// (resumes an unfinished rotation from the store's journal, never rotates a
// label twice in one cycle).
const rotate = scheduledRotation(target, {
  tokenUrl: env.tokenUrl,
  credentials: env.credentials,
  ...(env.admin ? { admin: env.admin } : {}),
  provider: genesysAdminProvider({
    tokenUrl: env.tokenUrl,
    apiUrl: env.apiUrl,
  }),
  progress: (line) => console.log(line),
});

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
