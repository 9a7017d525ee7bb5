/**
 * Attacks on `incident --kv|--redis` for two-secret providers (memory store,
 * the Okta and Cognito emulators, a password-protected Redis). Defects found
 * and fixed: the leaked label's revoked secret stays out of service when the
 * store held no record of it; an empty namespace is refused, not proved with
 * 0/0 instances; a Redis password is not written into the locks; a fleet
 * rotation stopped after issuing is finished first. Held: the clean label's
 * secret is never revoked on ids a store writer without the seal key forged.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import {
  credentialDocument,
  importSealKeyring,
  isSealedCredentialRecord,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import {
  readStoredSecretIdentity,
  storedSecretIds,
} from "../../src/fleet/operator.ts";
import {
  fleetIncidentPorts,
  promoteFleet,
} from "../../src/fleet/store_flows.ts";
import { readProviderEnv } from "../../src/providers/env.ts";
import { respondToCompromise } from "../../src/rotation/incident.ts";
import type { Secret } from "../../src/secret.ts";
import { createWorkspace, FAILPOINT_VAR } from "../tasks/workspace.ts";
import { killAt, oktaWorld } from "../tasks/rotate_provider_scenario.ts";
import { PROVIDER_ENV_VARS } from "../../src/providers/env.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import { startCognitoEmulator, startOktaEmulator } from "../../testing.ts";

const KEY = btoa("i".repeat(32));
const ADMIN = "00admin-token-value-0000000000";
const BLUE = "blue0secret0value0000000000000000";
const GREEN = "green0secret0value000000000000000";

Deno.test("incident --kv on the standby label whose secret came from the env file (no sealed record): its revoked secret is sealed retired, so promote to it is refused", async () => {
  await using emulator = startOktaEmulator({
    scopes: ["api"],
    apps: [{ clientId: "0oaapp", secrets: [BLUE, GREEN] }],
    adminTokens: [{
      token: ADMIN,
      scopes: ["okta.apps.read", "okta.apps.manage"],
    }],
  });
  await emulator.ready;
  const [blueId, greenId] = emulator.secrets("0oaapp").map((s) => s.id);
  const config = readProviderEnv({
    AUTH_PROVIDER: "okta",
    AUTH_TOKEN_URL: emulator.tokenUrl,
    AUTH_API_URL: emulator.apiUrl,
    AUTH_SCOPE: "api",
    AUTH_CLIENT_ID_BLUE: "0oaapp",
    AUTH_CLIENT_SECRET_BLUE: BLUE,
    AUTH_SECRET_ID_BLUE: blueId,
    AUTH_CLIENT_ID_GREEN: "0oaapp",
    AUTH_CLIENT_SECRET_GREEN: GREEN,
    AUTH_SECRET_ID_GREEN: greenId,
    AUTH_ACTIVE: "blue",
    AUTH_ADMIN_TOKEN: ADMIN,
  });
  await using handle = await config.createProvider();
  const store = createMemoryFleetStore();
  const target = createStoreTarget({
    store,
    service: await serviceNamespace(emulator.tokenUrl, "api"),
    by: "ops@test",
    ring: await importSealKeyring(KEY),
    onRejected: () => {},
  });
  // Blue active, sealed with its id; green's secret only in the env file
  // (never rotated through the store, or the store lost its record).
  const blue = config.credentials.find((c) => c.label === "blue")!;
  await target.sealedSink().publish({
    label: "blue",
    clientId: "0oaapp",
    secret: blue.clientSecret as Secret,
    secretId: blueId,
  });
  await target.setActive("blue");
  const credentials = await target.credentials(config.credentials);
  const ports = fleetIncidentPorts(target, {
    compromised: "green",
    timeoutMs: 300,
    credentials,
  });
  const report = await respondToCompromise({
    compromised: "green",
    credentials,
    active: "blue",
    tokenUrl: config.tokenUrl,
    provider: handle.provider,
    secretIds: {
      ...config.secretIds,
      ...await storedSecretIds(target, ["blue", "green"]),
    },
    onSecretRevoked: ports.onSecretRevoked,
    scope: "api",
    sink: ports.sink,
    onPromote: (label) => ports.onPromote(label),
    awaitLoaded: (request) => ports.awaitLoaded(request),
    journal: ports.journal,
    onStep: (event) => ports.recordStep(event),
    verifyAttempts: 3,
    verifyDelayMs: 10,
  });
  await ports.settled();
  assert.equal(report.active, "blue");
  assert.deepEqual(
    emulator.secrets("0oaapp").map((s) => s.id),
    [blueId],
    "green's leaked secret revoked, blue's kept",
  );
  assert.ok(
    (await readStoredSecretIdentity(target, "green"))?.retiredAt !==
      undefined,
    "green's revoked secret has a retired sealed record",
  );
  const back = await promoteFleet(target, "green", { timeoutMs: 300 });
  assert.equal(
    back.kind,
    "refused",
    "a promotion to the revoked secret of green must be refused",
  );
  assert.equal((await store.readActive(target.service))?.label, "blue");
});

Deno.test("incident --kv on a provider that shows no hint of a secret's value (Cognito): a store writer without the seal key swaps the sealed records' secret ids; the active label's secret is not revoked", async () => {
  const ADMIN_KEY = "cognito0admin0secret0access0key00000000";
  await using emulator = startCognitoEmulator({
    clients: [{ clientId: "appclient", secrets: [BLUE, GREEN] }],
    principals: [{
      accessKeyId: "AKIAROTATIONADMIN000",
      secretAccessKey: ADMIN_KEY,
    }],
  });
  await emulator.ready;
  const ids = () => emulator.secrets("appclient").map((s) => s.secretId);
  const [blueId, greenId] = ids();
  const config = readProviderEnv({
    AUTH_PROVIDER: "cognito",
    AUTH_TOKEN_URL: emulator.tokenUrl,
    AUTH_API_URL: emulator.apiUrl,
    AUTH_REGION: emulator.region,
    AUTH_USER_POOL_ID: emulator.userPoolId,
    AUTH_ADMIN_ACCESS_KEY_ID: "AKIAROTATIONADMIN000",
    AUTH_ADMIN_SECRET_ACCESS_KEY: ADMIN_KEY,
    AUTH_CLIENT_ID_BLUE: "appclient",
    AUTH_CLIENT_SECRET_BLUE: BLUE,
    AUTH_CLIENT_ID_GREEN: "appclient",
    AUTH_CLIENT_SECRET_GREEN: GREEN,
    AUTH_ACTIVE: "blue",
  });
  await using handle = await config.createProvider();
  const store = createMemoryFleetStore();
  const target = createStoreTarget({
    store,
    service: await serviceNamespace(emulator.tokenUrl),
    by: "ops@test",
    ring: await importSealKeyring(KEY),
    onRejected: () => {},
  });
  for (
    const [label, secret, secretId] of [["blue", BLUE, blueId], [
      "green",
      GREEN,
      greenId,
    ]]
  ) {
    const credential = config.credentials.find((c) => c.label === label)!;
    await target.sealedSink().publish({
      label,
      clientId: credential.clientId,
      secret: credential.clientSecret as Secret,
      secretId,
    });
    assert.equal((credential.clientSecret as Secret).reveal(), secret);
  }
  await target.setActive("blue");
  assert.deepEqual(await storedSecretIds(target, ["blue", "green"]), {
    blue: blueId,
    green: greenId,
  });
  // The forger: the records' secret ids swapped, the sealed secrets kept.
  for (const [label, forged] of [["blue", greenId], ["green", blueId]]) {
    const document = await store.readDocument(
      target.service,
      credentialDocument(label),
    );
    assert.ok(document && isSealedCredentialRecord(document.value));
    assert.ok(
      await store.writeDocument(
        target.service,
        credentialDocument(label),
        document.version,
        {
          ...document.value,
          secretId: forged,
        },
      ),
    );
  }
  // The authenticated control plane drops the forged records: no id read.
  assert.deepEqual(await storedSecretIds(target, ["blue", "green"]), {});
  const credentials = await target.credentials(config.credentials);
  const ports = fleetIncidentPorts(target, {
    compromised: "green",
    timeoutMs: 300,
    credentials,
  });
  await assert.rejects(
    respondToCompromise({
      compromised: "green",
      credentials,
      active: "blue",
      tokenUrl: config.tokenUrl,
      provider: handle.provider,
      secretIds: {
        ...config.secretIds,
        ...await storedSecretIds(target, ["blue", "green"]),
      },
      onSecretRevoked: ports.onSecretRevoked,
      sink: ports.sink,
      onPromote: (label) => ports.onPromote(label),
      awaitLoaded: (request) => ports.awaitLoaded(request),
      journal: ports.journal,
      onStep: (event) => ports.recordStep(event),
      verifyAttempts: 3,
      verifyDelayMs: 10,
    }),
    /cannot tell which secret of OAuth client appclient is the leaked one of "green"/,
  );
  await ports.settled();
  assert.ok(
    ids().includes(blueId),
    `blue's active secret ${blueId} must not be revoked: ${ids()}`,
  );
});

Deno.test("incident --kv where no instance reports (a wrong --prefix or --scope, a store that lost its data): refused with exit 4, nothing issued or revoked; --allow-empty proceeds", async () => {
  await using world = await oktaWorld();
  await using ws = await createWorkspace();
  await ws.writeEnv(world.env);
  const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
  kv.close();
  const seal = { DUAL_SECRET_SEAL_KEY: KEY };
  const created = world.emulator.stats().secretsCreated;
  assert.equal(world.liveSecrets(), 1);
  const args = ["--compromised", "blue", "--kv", "fleet.db", "--yes"];
  const refused = await ws.task("incident", [...args, "--json"], seal);
  assert.equal(refused.code, 4, refused.stdout + refused.stderr);
  const failure = JSON.parse(refused.stdout);
  assert.equal(failure.error.code, "FLEET_NOT_SEEN");
  assert.match(failure.error.message, /no live instance reports/);
  // Nothing issued, blue's secret not revoked.
  assert.equal(world.emulator.stats().secretsCreated, created);
  assert.equal(world.liveSecrets(), 1);
  const allowed = await ws.task("incident", [...args, "--allow-empty"], seal);
  assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
  assert.match(
    allowed.stdout,
    /regenerate\s+completed\s+revoked \S+, the leaked secret of blue/,
  );
  assert.equal(world.emulator.stats().secretsCreated, created + 1);
  assert.equal(world.liveSecrets(), 1);
});

Deno.test({
  name:
    "incident --redis redis://user:password@host: the password is written to neither the env file's lock file nor the store's lock note (both shown to whoever finds the lock held)",
  ignore: ignoreWithoutRedis(),
}, async () => {
  const password = "hunter2-redis-password";
  await using server = await startRedisServer({
    users: [{ username: "ops", password }],
  });
  await using world = await oktaWorld();
  await using ws = await createWorkspace();
  await ws.writeEnv(world.env);
  const url = server.urlFor("ops", password);
  // Stopped while it holds both locks.
  const run = ws.spawn([
    "run",
    "-q",
    "-P=operator",
    // An --allow-env flag replaces the set's list, so repeat it.
    `--allow-env=${
      [
        ...PROVIDER_ENV_VARS,
        "NO_COLOR",
        "DUAL_SECRET_SEAL_KEY",
        "REDIS_URL",
        "REDIS_DEBUG_MAINTENANCE",
        "REDIS_EMIT_DIAGNOSTICS",
        FAILPOINT_VAR,
      ].join(",")
    }`,
    "tasks/incident.ts",
    ...["--compromised", "blue", "--redis", url, "--allow-empty", "--yes"],
  ], { DUAL_SECRET_SEAL_KEY: KEY, [FAILPOINT_VAR]: "incident:plan" });
  try {
    await run.waitFor(/failpoint incident:plan reached/, 20_000);
  } finally {
    run.child.kill("SIGKILL");
    await run.finished();
  }
  const lockFile = await Deno.readTextFile(`${ws.envPath}.lock`);
  assert.match(lockFile, /incident --compromised blue --redis redis:\/\//);
  assert.equal(lockFile.includes(password), false, lockFile);
  const store = createRedisFleetStore({ url, prefix: "dual-secret-auth" });
  try {
    const lock = await store.readLock(
      await serviceNamespace(world.emulator.tokenUrl, "api"),
      "rotation/lock",
    );
    assert.match(lock?.note ?? "", /^incident --compromised blue --redis/);
    assert.equal(lock!.note.includes(password), false, lock!.note);
  } finally {
    await store.close();
  }
});

Deno.test("incident --kv while a fleet rotation of the other label stopped after issuing its new secret (Okta at its limit of 2): refused naming rotate to finish it, nothing issued or revoked; after it, the response completes", async () => {
  await using world = await oktaWorld();
  await using ws = await createWorkspace();
  await ws.writeEnv(world.env);
  const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
  kv.close();
  const seal = { DUAL_SECRET_SEAL_KEY: KEY };
  const rotate = ["--kv", "fleet.db", "--allow-empty", "--yes"];
  await killAt(ws, rotate, "regenerate:after", "rotate", seal);
  const created = world.emulator.stats().secretsCreated;
  assert.equal(world.liveSecrets(), 2, "blue's and green's unstored one");
  const args = ["--compromised", "blue", ...rotate];
  const refused = await ws.task("incident", [...args, "--json"], seal);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  const failure = JSON.parse(refused.stdout);
  assert.equal(failure.error.code, "FLEET_ROTATION_UNFINISHED");
  assert.match(failure.error.message, /deno task rotate --kv fleet\.db --yes/);
  assert.equal(world.emulator.stats().secretsCreated, created);
  assert.equal(world.liveSecrets(), 2);
  const finished = await ws.task("rotate", rotate, seal);
  assert.equal(finished.code, 0, finished.stdout + finished.stderr);
  const run = await ws.task("incident", args, seal);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(
    run.stdout,
    /regenerate\s+completed\s+revoked \S+, the leaked secret of blue/,
  );
  assert.equal(world.liveSecrets(), 1);
});
