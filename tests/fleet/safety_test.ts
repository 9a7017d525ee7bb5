/**
 * What the fleet commands refuse, keep and prove, on both engines (Deno KV
 * and Redis), with `rotate`, `promote` and `fleet` run as `deno task`
 * subprocesses against instances in this process:
 * - a forgotten `--prefix` or a mistyped store is refused and nothing is
 *   regenerated; the active label comes from the store, not from `.env`;
 * - Ctrl-C and SIGTERM at each step of `rotate --kv|--redis` keep the new
 *   secret, exit 130 with the state, and the re-run finishes without losing
 *   it;
 * - a store that lost its data between two rotations: instances load the
 *   second (fingerprints, not generations), promote refuses while one has not
 *   proved it (with its reason) and is a no-op when repeated;
 * - `--tick 30d` is refused before anything is opened.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createDualSecretAuth, type DualSecretAuth } from "../../mod.ts";
import { createKvFleet } from "../../kv.ts";
import { createRedisFleet } from "../../redis.ts";
import { type GenesysEmulator, startGenesysEmulator } from "../../testing.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import { createFleet } from "../../src/fleet/member.ts";
import {
  createMemoryFleetStore,
  type FleetStore,
  type InstanceRecord,
} from "../../src/fleet/store.ts";
import {
  importSealKeyring,
  serviceNamespace,
} from "../../src/fleet/distribution.ts";
import {
  type FleetTarget,
  readDistributedSecret,
  readStoredSecretIdentity,
} from "../../src/fleet/operator.ts";
import type { Fleet } from "../../src/fleet/link.ts";
import { ConfigError } from "../../src/errors.ts";
import {
  ignoreWithoutRedis,
  type RedisTestServer,
  startRedisServer,
} from "../support/redis_server.ts";
import {
  createWorkspace,
  emulatorConfig,
  type TaskRun,
  type Workspace,
} from "../tasks/workspace.ts";
import { slowPropagation, until } from "../support/wait.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const OTHER_KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(9)));
const BLUE = "blue-CANARY-3a1f";
const GREEN = "green-CANARY-9d2e";
const ADMIN = "admin-CANARY-61bc";
const EDIT = ["oauth:client:view", "oauth:client:edit"];

type EngineName = "kv" | "redis";

/** One engine under test: the command-line store options, instances' fleets, a reader. */
interface Engine extends AsyncDisposable {
  readonly name: EngineName;
  /** `--kv fleet.db --prefix …` or `--redis <url> --prefix …`. */
  readonly args: string[];
  /** The same store without `--prefix` (the default namespace). */
  readonly argsWithoutPrefix: string[];
  /** A fleet for one in-process instance. */
  fleet(instanceId: string, secretSealKeys?: string): Fleet;
  /** A store reader of the fleet's namespace. */
  readonly store: FleetStore;
  /** Loses every record (Redis: restarted without persistence). */
  wipe(): Promise<void>;
}

async function openEngine(name: EngineName, ws: Workspace): Promise<Engine> {
  const fleetOptions = (instanceId: string, secretSealKeys?: string) => ({
    instanceId,
    pollIntervalMs: 100,
    heartbeatMs: 1_500,
    ...(secretSealKeys === undefined ? {} : { secretSealKeys }),
  });
  if (name === "kv") {
    const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
    const prefix = ["dual-secret-auth", "my-service"];
    return {
      name,
      args: ["--kv", "fleet.db", "--prefix", prefix.join("/")],
      argsWithoutPrefix: ["--kv", "fleet.db"],
      fleet: (id, keys) =>
        createKvFleet(kv, { prefix, ...fleetOptions(id, keys) }),
      store: createKvFleetStore(kv, { prefix }),
      async wipe() {
        for await (const entry of kv.list({ prefix: [] })) {
          await kv.delete(entry.key);
        }
      },
      [Symbol.asyncDispose]() {
        kv.close();
        return Promise.resolve();
      },
    };
  }
  const server: RedisTestServer = await startRedisServer();
  const prefix = "dual-secret-auth:my-service";
  const store = createRedisFleetStore({ url: server.url, prefix });
  return {
    name,
    args: ["--redis", server.url, "--prefix", prefix],
    argsWithoutPrefix: ["--redis", server.url],
    fleet: (id, keys) =>
      createRedisFleet({ url: server.url, prefix, ...fleetOptions(id, keys) }),
    store,
    async wipe() {
      await server.kill();
      await server.start();
    },
    async [Symbol.asyncDispose]() {
      await store.close();
      await server[Symbol.asyncDispose]();
    },
  };
}

/** The emulator, a workspace with its .env, an engine, and instances. */
interface Scene extends AsyncDisposable {
  readonly emulator: GenesysEmulator;
  readonly ws: Workspace;
  readonly engine: Engine;
  readonly target: FleetTarget;
  /** Starts an instance (blue active, as configured) and waits for its heartbeat. */
  instance(id: string, secretSealKeys?: string): Promise<DualSecretAuth>;
  /** Runs a task with the seal key. */
  task(
    name: "rotate" | "promote" | "fleet" | "verify",
    args: readonly string[],
  ): Promise<TaskRun>;
}

async function scene(name: EngineName): Promise<Scene> {
  const emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: BLUE, permissions: EDIT },
      { clientId: "green-id", secret: GREEN, permissions: EDIT },
      { clientId: "admin-id", secret: ADMIN, permissions: EDIT },
    ],
  });
  const ws = await createWorkspace();
  await ws.writeEnv({
    ...emulatorConfig(emulator, { blue: BLUE, green: GREEN }),
    GENESYS_ADMIN_CLIENT_ID: "admin-id",
    GENESYS_ADMIN_CLIENT_SECRET: ADMIN,
  });
  const engine = await openEngine(name, ws);
  const target: FleetTarget = {
    store: engine.store,
    service: await serviceNamespace(emulator.tokenUrl),
    by: "test",
    now: () => Date.now(),
  };
  const instances = new Map<string, DualSecretAuth>();
  return {
    emulator,
    ws,
    engine,
    target,
    async instance(id, secretSealKeys) {
      const auth = createDualSecretAuth({
        credentials: [
          { label: "blue", clientId: "blue-id", clientSecret: BLUE },
          { label: "green", clientId: "green-id", clientSecret: GREEN },
        ],
        tokenUrl: emulator.tokenUrl,
        shared: engine.fleet(id, secretSealKeys),
      });
      instances.set(id, auth);
      await until(
        `${id}'s heartbeat`,
        () => live(target),
        (records) => records.some((r) => r.instanceId === id),
      );
      return auth;
    },
    task: (task, args) => ws.task(task, args, { DUAL_SECRET_SEAL_KEY: KEY }),
    async [Symbol.asyncDispose]() {
      await Promise.all([...instances.values()].map((auth) => auth.close()));
      await engine[Symbol.asyncDispose]();
      await ws[Symbol.asyncDispose]();
      await emulator.close();
    },
  };
}

async function live(target: FleetTarget): Promise<InstanceRecord[]> {
  return (await target.store.listInstances()).filter((r) =>
    r.until > Date.now()
  );
}

const fingerprintOf = (record: InstanceRecord, label: string) =>
  record.credentials.find((c) => c.label === label)?.secretFingerprint;

const output = (run: TaskRun) => run.stdout + run.stderr;

for (const name of ["kv", "redis"] as const) {
  const ignore = name === "redis" ? ignoreWithoutRedis() : false;

  Deno.test({
    name:
      `${name}: a forgotten --prefix and a mistyped store are refused, nothing regenerated; the active label comes from the store, not from a stale .env`,
    ignore,
    async fn() {
      await using s = await scene(name);
      const { emulator, engine } = s;
      // With the operator's seal key: an instance without it would keep the
      // revoke gate shut (it could not open blue's new secret).
      await s.instance("web-1", KEY);
      await s.instance("web-2", KEY);
      // As in the report: green promoted through the fleet's own namespace;
      // .env still says GENESYS_ACTIVE=blue.
      const promoted = await s.task("promote", [
        ...engine.args,
        "--to",
        "green",
        "--yes",
        "--timeout",
        "20",
      ]);
      assert.equal(promoted.code, 0, output(promoted));

      // No --prefix: another namespace, where nothing reports.
      const forgotten = await s.task("rotate", [
        ...engine.argsWithoutPrefix,
        "--yes",
      ]);
      assert.equal(forgotten.code, 4, output(forgotten));
      assert.match(
        output(forgotten),
        /no live instance reports in this namespace/,
      );
      assert.match(output(forgotten), /another prefix of this store/);
      assert.match(
        output(forgotten),
        name === "kv"
          ? /dual-secret-auth\/my-service\s+web-1\s+\S+\s+green/
          : /dual-secret-auth:my-service\s+web-1\s+\S+\s+green/,
      );
      assert.match(output(forgotten), /--allow-empty/);
      assert.equal(emulator.stats().secretRegenerations, 0);
      const json = await s.task("rotate", [
        ...engine.argsWithoutPrefix,
        "--yes",
        "--json",
      ]);
      assert.equal(json.code, 4);
      const refusal = JSON.parse(json.stdout);
      assert.equal(refusal.error.code, "FLEET_NOT_SEEN");
      assert.deepEqual(
        refusal.error.elsewhere.map((e: { instanceId: string }) =>
          e.instanceId
        ),
        ["web-1", "web-2"],
      );

      // A mistyped store: refused, nothing created, nothing regenerated.
      const typo = name === "kv"
        ? ["--kv", "fleetw.bd"]
        : ["--redis", `redis://127.0.0.1:${freePort()}`];
      for (const task of ["rotate", "promote", "fleet"] as const) {
        const run = await s.task(task, [
          ...typo,
          ...(task === "fleet" ? [] : ["--yes"]),
        ]);
        assert.notEqual(run.code, 0, output(run));
        if (name === "kv") {
          assert.equal(run.code, 2, output(run));
          assert.match(
            output(run),
            /The Deno KV database "fleetw\.bd" does not exist; nothing was created or changed/,
          );
          await assert.rejects(
            () => Deno.stat(`${s.ws.dir}/fleetw.bd`),
            Deno.errors.NotFound,
          );
        } else {
          assert.match(
            output(run),
            /The Redis named with --redis did not answer \(connection refused[^)]*\); nothing was changed/,
          );
        }
      }
      assert.equal(emulator.stats().secretRegenerations, 0);

      // With the right prefix, the active label is the store's ("green"):
      // the rotation regenerates blue, never the credential in use.
      const rotated = await s.task("rotate", [
        ...engine.args,
        "--yes",
        "--token-lifetime",
        "1",
        "--json",
      ]);
      assert.equal(rotated.code, 0, output(rotated));
      assert.equal(JSON.parse(rotated.stdout).standby, "blue");
      assert.notEqual(emulator.getClientSecret("blue-id"), BLUE);
      assert.equal(emulator.getClientSecret("green-id"), GREEN);
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  });

  Deno.test({
    name:
      `${name}: Ctrl-C and SIGTERM at each step of rotate keep the new secret; exit 130 with the state; the re-run finishes without losing it`,
    ignore,
    async fn(t) {
      const steps: {
        step: string;
        signal: "SIGINT" | "SIGTERM";
        promote?: boolean;
        hold(s: Scene): Promise<{ release(): Promise<void> }>;
        regeneratedBefore: number;
        state: RegExp;
      }[] = [
        {
          step: "plan (the client read in flight)",
          signal: "SIGINT",
          async hold(s) {
            s.emulator.injectApiFaults({ kind: "delay", ms: 1_500 }, 1);
            await until(
              "the plan's API call",
              () => Promise.resolve(s.emulator.stats().apiRequests),
              (n) => n >= 1,
            );
            return { release: () => Promise.resolve() };
          },
          regeneratedBefore: 0,
          state: /Nothing was changed/,
        },
        {
          step: "regenerate (the call in flight)",
          signal: "SIGTERM",
          async hold(s) {
            s.emulator.injectApiFaults({ kind: "delay", ms: 0 }, 1);
            s.emulator.injectApiFaults({ kind: "delay", ms: 1_500 }, 1);
            await until(
              "the regenerate call",
              () => Promise.resolve(s.emulator.stats().secretRegenerations),
              (n) => n >= 1,
            );
            return { release: () => Promise.resolve() };
          },
          regeneratedBefore: 1,
          state:
            /stored in fleet store \(sealed\) and kept, but the run was interrupted/,
        },
        {
          step: "test (proving the new secret)",
          signal: "SIGINT",
          hold: (s) => Promise.resolve(slowPropagation(s.emulator)),
          regeneratedBefore: 1,
          state:
            /stored in fleet store \(sealed\) and kept, but the run was interrupted/,
        },
        {
          step: "promote (waiting for the instances to prove it)",
          signal: "SIGTERM",
          promote: true,
          hold: () => Promise.resolve({ release: () => Promise.resolve() }),
          regeneratedBefore: 1,
          state: /interrupted before promotion, so "blue" still serves/,
        },
      ];
      for (const step of steps) {
        await t.step(`${step.signal} in ${step.step}`, async () => {
          await using s = await scene(name);
          const { emulator, engine } = s;
          await s.instance("web-1", KEY);
          // An instance without the seal key never proves the new secret:
          // it holds a --promote in its wait.
          const keyless = step.promote
            ? await s.instance("web-keyless")
            : undefined;
          const args = [
            ...engine.args,
            "--yes",
            "--json",
            // The keyless instance shuts the gate: forced past it.
            ...(step.promote
              ? ["--promote", "--timeout", "60", "--force"]
              : []),
          ];
          const run = s.ws.spawn(["task", "-q", "rotate", ...args], {
            DUAL_SECRET_SEAL_KEY: KEY,
          });
          let held: { release(): Promise<void> } | undefined;
          try {
            if (step.step.startsWith("test")) {
              held = await step.hold(s);
              await run.waitFor(/test: attempt 1 failed/);
            } else if (step.promote) {
              held = await step.hold(s);
              await run.waitFor(
                /promote: 1\/2 live instances proved the secret of "green"/,
              );
            } else {
              held = await step.hold(s);
            }
            run.child.kill(step.signal);
          } catch (error) {
            run.child.kill("SIGKILL");
            await run.finished();
            throw error;
          }
          const done = await run.finished();
          assert.equal(done.code, 130, done.stdout + done.stderr);
          assert.match(
            done.stderr,
            new RegExp(
              `Received ${step.signal}: stopping once what is in progress is safely stored`,
            ),
          );
          const outcome = JSON.parse(done.stdout);
          assert.equal(outcome.error.interrupted, true);
          assert.match(outcome.error.state, step.state);
          assert.ok(outcome.error.nextStep.length > 0);
          assert.equal(
            emulator.stats().secretRegenerations,
            step.regeneratedBefore,
          );
          const ring = await importSealKeyring(KEY);
          if (step.regeneratedBefore > 0) {
            // Not lost: the secret the emulator now holds is in the store.
            const stored = await readDistributedSecret(s.target, ring, "green");
            assert.equal(
              stored?.secret.reveal(),
              emulator.getClientSecret("green-id"),
            );
          }
          assert.equal(
            (await engine.store.readActive(s.target.service))?.label,
            "blue",
          );
          await held?.release();
          await keyless?.close();
          if (keyless !== undefined) {
            await until("the keyless instance gone", () => live(s.target), (
              records,
            ) => records.every((r) => r.instanceId !== "web-keyless"));
          }
          const rerun = await s.task(
            "rotate",
            args.filter((a) => a !== "--json"),
          );
          assert.equal(rerun.code, 0, output(rerun));
          assert.equal(emulator.stats().secretRegenerations, 1);
          const stored = await readDistributedSecret(s.target, ring, "green");
          assert.equal(
            stored?.secret.reveal(),
            emulator.getClientSecret("green-id"),
          );
          if (step.promote) {
            assert.equal(
              (await engine.store.readActive(s.target.service))?.label,
              "green",
            );
          }
        });
      }
    },
  });

  Deno.test({
    name:
      `${name}: a first rotation whose seal key differs from the instances' is refused before anything is regenerated; --force proceeds, and promote then refuses naming the instance`,
    ignore,
    async fn() {
      await using s = await scene(name);
      const { emulator, engine, target } = s;
      // The namespace has no sealed record yet: the instances' heartbeats,
      // signed with their key, are the only sign of it.
      await s.instance("web-1", OTHER_KEY);
      await s.instance("web-2", KEY);
      const refused = await s.task("rotate", [...engine.args, "--yes"]);
      assert.equal(refused.code, 4, output(refused));
      assert.match(
        refused.stderr,
        /1 of 2 live instances do not sign with your DUAL_SECRET_SEAL_KEY/,
      );
      assert.match(
        refused.stderr,
        /web-1\s.*seal key: it is signed with key id/,
      );
      assert.doesNotMatch(refused.stderr, /web-2\s/);
      assert.equal(emulator.stats().secretRegenerations, 0);
      assert.equal(await readStoredSecretIdentity(target, "green"), undefined);
      const dry = await s.task("rotate", [...engine.args, "--dry-run"]);
      assert.equal(dry.code, 4, output(dry));
      assert.equal(emulator.stats().secretRegenerations, 0);

      const forced = await s.task("rotate", [
        ...engine.args,
        "--yes",
        "--force",
      ]);
      assert.equal(forced.code, 0, output(forced));
      assert.match(forced.stderr, /WARNING: --force/);
      assert.equal(emulator.stats().secretRegenerations, 1);
      await until("web-1 reporting why it did not load", () => live(target), (
        records,
      ) =>
        records.some((r) =>
          r.instanceId === "web-1" &&
          r.credentials.find((c) => c.label === "green")?.secretProblem
              ?.reason === "seal key mismatch"
        ));
      const promote = await s.task("promote", [
        ...engine.args,
        "--yes",
        "--timeout",
        "1",
      ]);
      assert.equal(promote.code, 4, output(promote));
      assert.match(output(promote), /web-1\s.*seal key mismatch/);
    },
  });

  Deno.test({
    name:
      `${name}: the store loses its data between two rotations; instances load the second (the generation goes on, a new fingerprint); promote refuses while one has not proved it, then promotes; promote without --to is a no-op when repeated`,
    ignore,
    async fn() {
      await using s = await scene(name);
      const { emulator, engine, target } = s;
      await s.instance("web-1", KEY);
      await s.instance("web-2", KEY);
      const wrongKey = await s.instance("web-3", OTHER_KEY);

      // web-3's key is not the operator's: the gate refuses unless forced.
      const first = await s.task("rotate", [
        ...engine.args,
        "--yes",
        "--force",
      ]);
      assert.equal(first.code, 0, output(first));
      const one = (await readStoredSecretIdentity(target, "green"))!;
      assert.equal(one.generation, 1);
      await until("web-1 and web-2 on the first secret", () => live(target), (
        records,
      ) =>
        ["web-1", "web-2"].every((id) =>
          records.some((r) =>
            r.instanceId === id && fingerprintOf(r, "green") === one.fingerprint
          )
        ));
      // verify reads .env, whose green secret the rotation replaced in the
      // store only: failover from .env's point of view is gone, so exit 1.
      const verify = await s.task("verify", ["--json"]);
      assert.equal(verify.code, 1, output(verify));
      assert.equal(JSON.parse(verify.stdout).failover, false);

      await engine.wipe();
      // The instances write their heartbeats and active label again.
      await until(
        "3 heartbeats again",
        () => live(target),
        (records) => records.length === 3,
      );
      const second = await s.task("rotate", [
        ...engine.args,
        "--yes",
        "--force",
      ]);
      assert.equal(second.code, 0, output(second));
      const two = (await readStoredSecretIdentity(target, "green"))!;
      assert.equal(
        two.generation,
        2,
        "the counter goes on from what the instances loaded, never back to 1",
      );
      assert.notEqual(two.fingerprint, one.fingerprint);
      const records = await until(
        "web-1 and web-2 on the second secret, web-3 reporting why not",
        () => live(target),
        (records) =>
          ["web-1", "web-2"].every((id) =>
            records.some((r) =>
              r.instanceId === id &&
              fingerprintOf(r, "green") === two.fingerprint
            )
          ) &&
          records.some((r) =>
            r.instanceId === "web-3" &&
            r.credentials.find((c) => c.label === "green")?.secretProblem
                ?.reason === "seal key mismatch"
          ),
      );
      assert.equal(records.length, 3);
      // A heartbeat reports a fingerprint only once its proof at the token
      // endpoint passed (or the secret was the one in use already).
      assert.ok(
        (emulator.stats().tokenRequestsByClient["green-id"] ?? 0) >= 2,
      );

      const listed = await s.task("fleet", engine.args);
      assert.equal(listed.code, 0, output(listed));
      assert.match(
        listed.stdout,
        /web-3 .*green \[\S*\] \S+( s ago)? \(store's secret not loaded: seal key mismatch\)/,
      );
      const refused = await s.task("promote", [
        ...engine.args,
        "--yes",
        "--timeout",
        "2",
      ]);
      assert.equal(refused.code, 4, output(refused));
      assert.match(output(refused), /Refusing to promote "green"/);
      assert.match(output(refused), /web-3\s.*seal key mismatch/);
      assert.doesNotMatch(output(refused), /web-1\s/);
      assert.notEqual(
        (await engine.store.readActive(target.service))?.label,
        "green",
      );

      await wrongKey.close();
      await until(
        "web-3 gone",
        () => live(target),
        (records) => records.length === 2,
      );
      const dry = await s.task("promote", [...engine.args, "--dry-run"]);
      assert.equal(dry.code, 0, output(dry));
      assert.match(dry.stdout, /2\/2 live instances proved its secret/);
      assert.notEqual(
        (await engine.store.readActive(target.service))?.label,
        "green",
      );
      const promoted = await s.task("promote", [
        ...engine.args,
        "--yes",
        "--json",
      ]);
      assert.equal(promoted.code, 0, output(promoted));
      const report = JSON.parse(promoted.stdout);
      assert.equal(report.to, "green", "the label last rotated");
      assert.equal(report.changed, true);
      const active = await engine.store.readActive(target.service);
      assert.equal(active?.label, "green");
      for (let again = 0; again < 2; again++) {
        const repeat = await s.task("promote", [
          ...engine.args,
          "--yes",
          "--json",
        ]);
        assert.equal(repeat.code, 0, output(repeat));
        assert.equal(JSON.parse(repeat.stdout).to, "green");
        assert.equal(JSON.parse(repeat.stdout).changed, false);
        assert.deepEqual(
          await engine.store.readActive(target.service),
          active,
          "a repeated promote writes nothing",
        );
      }
      assert.equal(emulator.stats().secretRegenerations, 2);
    },
  });

  Deno.test({
    name:
      `${name}: the store loses its data after a promotion; the instances seal the active secret back, so the next rotation proves it and regenerates the other label; generations never go back`,
    ignore,
    async fn() {
      await using s = await scene(name);
      const { emulator, engine, target } = s;
      await s.instance("web-1", KEY);
      await s.instance("web-2", KEY);
      const first = await s.task("rotate", [
        ...engine.args,
        "--yes",
        "--promote",
        "--timeout",
        "20",
      ]);
      assert.equal(first.code, 0, output(first));
      const green = (await readStoredSecretIdentity(target, "green"))!;
      assert.equal(
        (await engine.store.readActive(target.service))?.label,
        "green",
      );
      // .env's green secret is the first one, regenerated since: only the
      // store and the instances have the secret in use.
      assert.notEqual(emulator.getClientSecret("green-id"), GREEN);

      await engine.wipe();
      const reseeded = await until(
        "green's secret sealed back by an instance",
        () => readStoredSecretIdentity(target, "green"),
        (identity) => identity !== undefined,
      );
      assert.equal(reseeded!.generation, green.generation, "not counted back");
      const ring = await importSealKeyring(KEY);
      assert.equal(
        (await readDistributedSecret(target, ring, "green"))?.secret.reveal(),
        emulator.getClientSecret("green-id"),
        "the secret in use, not the env file's",
      );
      assert.ok(
        (await engine.store.listAudit(target.service, 50)).some((e) =>
          e.action === "secret.reseed" && e.label === "green"
        ),
      );
      await until(
        "2 heartbeats again, on green",
        () => live(target),
        (records) =>
          records.length === 2 && records.every((r) => r.active === "green"),
      );

      const second = await s.task("rotate", [
        ...engine.args,
        "--yes",
        "--json",
      ]);
      assert.equal(second.code, 0, output(second));
      assert.equal(JSON.parse(second.stdout).standby, "blue");
      assert.equal(emulator.stats().secretRegenerations, 2);
      const blue = (await readStoredSecretIdentity(target, "blue"))!;
      await until("both instances on blue's new secret", () => live(target), (
        records,
      ) =>
        records.length === 2 &&
        records.every((r) => fingerprintOf(r, "blue") === blue.fingerprint));
    },
  });

  Deno.test({
    name:
      `${name}: --tick 30d (past what a timer can wait) is refused before the store is opened`,
    ignore,
    async fn() {
      await using s = await scene(name);
      const { engine } = s;
      for (
        const args of [
          ["--every", "30d", "--tick", "30d"],
          ["--every", "30d", "--lease", "25d"],
          ["--timeout", "2600000"],
        ]
      ) {
        const run = await s.task("rotate", [...engine.args, "--yes", ...args]);
        assert.equal(run.code, 2, output(run));
        assert.match(run.stderr, /is too long: durations go up to 24 days/);
      }
      const promote = await s.task("promote", [
        ...engine.args,
        "--yes",
        "--timeout",
        "2600000",
      ]);
      assert.equal(promote.code, 2, output(promote));
      // Nothing was written: no leader lease, no journal.
      assert.equal(
        await engine.store.readDocument(s.target.service, "schedule/leader"),
        undefined,
      );
      assert.equal(
        await engine.store.readDocument(s.target.service, "rotation/journal"),
        undefined,
      );
      assert.equal(s.emulator.stats().secretRegenerations, 0);
    },
  });

  Deno.test({
    name:
      `${name}: a second rotate by the same operator on the same host, while the first runs, is refused (exit 3), not a second regeneration`,
    ignore,
    async fn() {
      // The store lock named its holder "operator@<host>" and let that name
      // in again: two rotate --kv runs from one shell both regenerated green.
      await using s = await scene(name);
      const { emulator, engine } = s;
      await s.instance("web-1", KEY);
      const held = slowPropagation(emulator);
      const first = s.ws.spawn(
        ["task", "-q", "rotate", ...engine.args, "--yes", "--json"],
        { DUAL_SECRET_SEAL_KEY: KEY },
      );
      try {
        await first.waitFor(/test: attempt 1 failed/);
        const second = await s.task("rotate", [
          ...engine.args,
          "--yes",
          "--json",
        ]);
        assert.equal(second.code, 3, output(second));
        assert.equal(JSON.parse(second.stdout).error.code, "ROTATION_LOCKED");
        assert.equal(emulator.stats().secretRegenerations, 1);
      } finally {
        await held.release();
      }
      const done = await first.finished();
      assert.equal(done.code, 0, done.stdout + done.stderr);
      assert.equal(emulator.stats().secretRegenerations, 1);
    },
  });
}

Deno.test("fleet options past what a timer can wait are refused", () => {
  for (
    const option of [
      "pollIntervalMs",
      "leaseMs",
      "heartbeatMs",
      "storeTimeoutMs",
    ] as const
  ) {
    assert.throws(
      () =>
        createFleet(createMemoryFleetStore(), { [option]: 30 * 86_400_000 }),
      (error) =>
        error instanceof ConfigError &&
        new RegExp(`fleet\\.${option}`).test(error.message),
    );
    // The largest a timer takes is accepted.
    createFleet(createMemoryFleetStore(), { [option]: 2 ** 31 - 1 });
  }
});

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
