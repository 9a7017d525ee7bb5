import assert from "node:assert/strict";
import { createGenesysAdminClient } from "../../src/genesys/admin_client.ts";
import { createCallbackSink } from "../../src/rotation/sinks.ts";
import {
  createEnvFileClientSink,
  setUpTwinClient,
  twinName,
  type TwinSetupOptions,
} from "../../src/rotation/twin_setup.ts";
import { Secret } from "../../src/secret.ts";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";

function setup(overrides: Partial<TwinSetupOptions> = {}) {
  const emulator = startGenesysEmulator({
    roles: [
      { id: "r-api", permissions: [] },
      { id: "r-admin", permissions: ["oauth:client:*"] },
    ],
    clients: [{
      clientId: "blue-id",
      secret: "blue-CANARY",
      name: "Orders",
      tokenLifetimeSeconds: 600,
      roleDivisions: [
        { roleId: "r-api", divisionId: "d1" },
        { roleId: "r-admin", divisionId: "*" },
      ],
    }],
  });
  const clock = new InstantClock();
  const stored: { label: string; clientId: string; secret: string }[] = [];
  const options: TwinSetupOptions = {
    from: "blue",
    to: "green",
    sourceClientId: "blue-id",
    admin: createGenesysAdminClient({
      apiUrl: emulator.apiUrl,
      getAccessToken: () => Promise.resolve(emulator.issueToken("blue-id")),
      clock,
      random: () => 0.5,
      requestTimeoutMs: NEVER_FIRES,
    }),
    sink: createCallbackSink("memory", (update) => {
      stored.push({
        label: update.label,
        clientId: update.clientId,
        secret: update.secret.reveal(),
      });
    }),
    tokenUrl: emulator.tokenUrl,
    clock,
    requestTimeoutMs: NEVER_FIRES,
    verifyAttempts: 4,
    verifyDelayMs: 1000,
    ...overrides,
  };
  return { emulator, clock, stored, options };
}

Deno.test("twinName swaps or adds the label suffix", () => {
  assert.equal(twinName("Orders (blue)", "green"), "Orders (green)");
  assert.equal(twinName("Orders (Green) ", "blue"), "Orders (blue)");
  assert.equal(twinName("Orders", "green"), "Orders (green)");
  assert.equal(twinName("(blue)", "green"), "(blue) (green)");
});

Deno.test("setUpTwinClient", async (t) => {
  await t.step(
    "stores before verifying; the report holds no secret",
    async () => {
      const { emulator, stored, options } = setup();
      await using _ = emulator;
      const order: string[] = [];
      const report = await setUpTwinClient({
        ...options,
        onStep: (event) => order.push(`${event.step}:${event.status}`),
      });
      assert.deepEqual(order, [
        "read:completed",
        "create:completed",
        "store:completed",
        "verify:completed",
      ]);
      assert.equal(stored.length, 1);
      assert.equal(stored[0].label, "green");
      assert.equal(stored[0].clientId, report.twin.id);
      assert.equal(stored[0].secret, emulator.getClientSecret(report.twin.id!));
      assert.equal(report.twin.accessTokenValiditySeconds, 600);
      assert.ok(!JSON.stringify(report).includes(stored[0].secret));
    },
  );

  await t.step(
    "a token refused at first (propagation) is retried",
    async () => {
      const { emulator, clock, options } = setup();
      await using _ = emulator;
      emulator.injectTokenFaults({ kind: "status", status: 401 }, 2);
      const report = await setUpTwinClient(options);
      assert.equal(report.verified, true);
      assert.deepEqual(clock.waits, [1000, 2000]);
    },
  );

  await t.step(
    "verification that never succeeds is bounded and reported",
    async () => {
      const { emulator, clock, stored, options } = setup();
      await using _ = emulator;
      emulator.injectTokenFaults({ kind: "status", status: 401 }, 100);
      const error = await setUpTwinClient(options).catch((e) => e);
      assert.equal(error.code, "SETUP_VERIFY_FAILED");
      assert.equal(error.createdClientId, stored[0].clientId);
      assert.equal(clock.waits.length, 3, "4 attempts");
      assert.match(error.message, /was created and stored in memory/);
    },
  );

  await t.step(
    "a sink that fails: the created client is named, the secret is not",
    async () => {
      const { emulator, options } = setup({
        sink: createCallbackSink("vault", () => {
          throw new Deno.errors.PermissionDenied("vault is read-only");
        }),
      });
      await using _ = emulator;
      const error = await setUpTwinClient(options).catch((e) => e);
      assert.equal(error.code, "SETUP_STORE_FAILED");
      const id = error.createdClientId;
      assert.ok(emulator.clientIds().includes(id));
      assert.match(error.message, /could not be stored in vault/);
      assert.match(error.message, new RegExp(`delete client ${id}`));
      assert.ok(!error.message.includes(emulator.getClientSecret(id)));
    },
  );

  await t.step(
    "a 5xx on create is not retried and may have created the client",
    async () => {
      const { emulator, options } = setup();
      await using _ = emulator;
      // The read passes, the create fails.
      const admin = options.admin;
      const error = await setUpTwinClient({
        ...options,
        admin: {
          describeClient: admin.describeClient,
          createClient: (client, o) => {
            emulator.injectApiFaults({ kind: "status", status: 502 }, 5);
            return admin.createClient(client, o);
          },
        },
      }).catch((e) => e);
      assert.equal(error.code, "SETUP_CREATE_FAILED");
      assert.equal(error.needsGrant, false);
      assert.match(error.message, /may have been created anyway/);
      assert.equal(emulator.stats().apiRequests, 2);
    },
  );

  await t.step(
    "interrupted during the create: the client is still stored, then the abort wins",
    async () => {
      const { emulator, stored, options } = setup();
      await using _ = emulator;
      const controller = new AbortController();
      const admin = options.admin;
      const error = await setUpTwinClient({
        ...options,
        signal: controller.signal,
        admin: {
          describeClient: admin.describeClient,
          createClient: (client, o) => {
            emulator.injectApiFaults({ kind: "delay", ms: 100 });
            setTimeout(() => controller.abort(new Error("interrupted")), 10);
            return admin.createClient(client, o);
          },
        },
      }).catch((e) => e);
      assert.equal(error.code, "ABORTED", String(error));
      assert.equal(stored.length, 1, "the id and secret were stored");
      assert.equal(
        stored[0].secret,
        emulator.getClientSecret(stored[0].clientId),
      );
    },
  );

  await t.step("dry run: reads only", async () => {
    const { emulator, stored, options } = setup();
    await using _ = emulator;
    const report = await setUpTwinClient({ ...options, dryRun: true });
    assert.equal(report.dryRun, true);
    assert.equal(report.twin.id, undefined);
    assert.equal(report.twin.name, "Orders (green)");
    assert.equal(stored.length, 0);
    assert.equal(emulator.clientIds().length, 1);
    assert.equal(emulator.stats().apiRequests, 1);
  });
});

Deno.test("createEnvFileClientSink writes id and secret in one rewrite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await Deno.writeTextFile(
      path,
      "# keep\nGENESYS_CLIENT_ID_GREEN=old # note\nOTHER=1\n",
    );
    const modeBefore = (await Deno.stat(path)).mode! & 0o777;
    await createEnvFileClientSink(path).publish({
      label: "green",
      clientId: "new-id",
      secret: new Secret("s3cr3t"),
    });
    assert.equal(
      await Deno.readTextFile(path),
      "# keep\nGENESYS_CLIENT_ID_GREEN=new-id # note\nOTHER=1\nGENESYS_CLIENT_SECRET_GREEN=s3cr3t\n",
    );
    // The operator's file keeps its mode (the env-file rule of `rotate`).
    assert.equal((await Deno.stat(path)).mode! & 0o777, modeBefore);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
