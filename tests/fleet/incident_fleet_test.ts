/**
 * `deno task incident --kv|--redis`: incident mode on a fleet of 6 `deno run`
 * instances that take their secrets from the store, under traffic. Green's
 * new secret is sealed into the store and every instance proves it (its
 * heartbeat) before green is promoted, and every instance serves green before
 * blue is disabled and regenerated: 0 failed calls. Killed at a step with
 * SIGKILL, the same command run again finishes it, still with 0 failed calls.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createFleetWorkspace,
  fleetInstance,
  startFleet,
  startFleetEmulator,
} from "./harness.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import {
  type FleetIncidentOptions,
  type FleetIncidentOutcome,
  INCIDENT_SEAL_KEY,
  INCIDENT_SECRETS,
  runFleetIncident,
  spawnIncident,
} from "./incident_scenario.ts";

const N = 6;

function assertRecovered(outcome: FleetIncidentOutcome): void {
  const output = outcome.run.stdout + outcome.run.stderr;
  assert.equal(outcome.run.code, 0, output);
  assert.equal(outcome.failed, 0, `failed calls: ${outcome.errors.join("; ")}`);
  assert.equal(outcome.summaries.length, N, "every instance reported");
  for (const summary of outcome.summaries) {
    assert.ok(Number(summary.ok) > 0, `${summary.instanceId} made calls`);
  }
  // Both clients have new secrets; blue is enabled again.
  assert.notEqual(outcome.clients.blue.secret, INCIDENT_SECRETS.blue);
  assert.notEqual(outcome.clients.green.secret, INCIDENT_SECRETS.green);
  assert.equal(outcome.clients.blue.state, "active");
  // Every instance serves green and holds blue's new secret as its standby.
  assert.equal(
    outcome.heartbeats.length,
    N,
    JSON.stringify(outcome.heartbeats),
  );
  for (const record of outcome.heartbeats) {
    assert.equal(record.active, "green", record.instanceId);
    assert.ok(
      record.credentials.find((c) => c.label === "blue")?.secretGeneration !==
        undefined,
      `${record.instanceId} loaded blue's new secret`,
    );
  }
  for (
    const secret of [
      ...Object.values(INCIDENT_SECRETS),
      outcome.clients.blue.secret,
      outcome.clients.green.secret,
    ]
  ) {
    for (const run of [outcome.run, ...outcome.killed]) {
      assert.ok(
        !(run.stdout + run.stderr).includes(secret),
        "a secret in the task's output",
      );
    }
  }
}

async function withEngine(
  engine: "kv" | "redis",
  options: Omit<FleetIncidentOptions, "engine" | "redisUrl"> = {},
): Promise<FleetIncidentOutcome> {
  if (engine === "kv") return await runFleetIncident({ engine, ...options });
  await using redis = await startRedisServer();
  return await runFleetIncident({ engine, redisUrl: redis.url, ...options });
}

for (const engine of ["kv", "redis"] as const) {
  Deno.test({
    name:
      `incident --${engine} on ${N} store-driven processes: green proved loaded and served before blue is disabled, 0 failed calls`,
    ignore: engine === "redis" && ignoreWithoutRedis(),
    sanitizeResources: false,
    async fn() {
      // The Redis is named as --redis env (REDIS_URL), as the README says.
      const outcome = await withEngine(engine, {
        redisFromEnv: engine === "redis",
      });
      assertRecovered(outcome);
      assert.deepEqual(outcome.regenerations, { "green-id": 1, "blue-id": 1 });
      const { stdout } = outcome.run;
      // The timeline: green rotated, proved loaded by every heartbeat, promoted
      // and served by every instance, then blue disabled, regenerated, enabled.
      for (
        const step of [
          "plan",
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
        assert.match(
          stdout,
          new RegExp(`^\\+\\d+\\.\\d\\d s\\s+${step}\\s+completed`, "m"),
          stdout,
        );
      }
      assert.match(
        stdout,
        new RegExp(
          `propagate\\s+completed\\s+${N}/${N} live instances report secret [0-9a-f]{16} of "green"`,
        ),
      );
      assert.match(
        stdout,
        new RegExp(
          `promote\\s+completed\\s+green serves traffic now; ${N}/${N} live instances report secret [0-9a-f]{16} of "green" and "green" active`,
        ),
      );
      assert.match(
        stdout,
        /stored the new blue secret in fleet store \(sealed\)/,
      );
      for (
        const entry of [
          "incident.plan:completed:blue",
          "secret.publish:ok:green",
          "incident.propagate:completed:blue",
          "promote:ok:green",
          "incident.disable:completed:blue",
          "secret.publish:ok:blue",
          "incident.verify:completed:blue",
        ]
      ) {
        assert.ok(
          outcome.audit.includes(entry),
          `${entry} in ${outcome.audit.join(", ")}`,
        );
      }
      console.log(
        `incident --${engine}, ${N} processes: ${
          Math.round(outcome.durationMs)
        } ms, ${outcome.tokenRequests} token requests, ${outcome.calls} calls, ${outcome.failed} failed`,
      );
    },
  });
}

// Every step, across the two engines (a fleet per test): killed with
// SIGKILL after it, then the same command again.
for (
  const [engine, point] of [
    ["redis", "incident:plan"],
    ["kv", "incident:rotate-other"],
    ["redis", "incident:propagate"],
    ["kv", "incident:promote"],
    ["kv", "incident:disable"],
    ["redis", "incident:regenerate"],
    ["redis", "incident:store"],
    ["kv", "incident:enable"],
  ] as const
) {
  Deno.test({
    name:
      `incident --${engine} killed with SIGKILL at ${point}, then run again${
        point === "incident:promote" ? " (as rotate --compromised)" : ""
      }: finished, 0 failed calls`,
    ignore: engine === "redis" && ignoreWithoutRedis(),
    sanitizeResources: false,
    async fn() {
      const outcome = await withEngine(engine, {
        killAt: point,
        // `rotate --kv|--redis --compromised` is incident mode too.
        viaRotate: point === "incident:promote",
      });
      assert.equal(outcome.killed.length, 1);
      assert.notEqual(outcome.killed[0].code, 0);
      assertRecovered(outcome);
      // Resumed from the store's incident journal: green (the clean
      // credential) is regenerated once over both runs. Blue once too,
      // unless the kill came between its regenerate call and the store (its
      // new secret then died with the process, unstored and unexposed).
      assert.deepEqual(outcome.regenerations, {
        "green-id": 1,
        "blue-id": point === "incident:regenerate" ? 2 : 1,
      }, outcome.run.stdout);
      assert.match(outcome.run.stdout, /resuming incident [0-9a-f-]{36}/);
    },
  });
}

Deno.test({
  name:
    "incident --kv: an instance that cannot open green's new secret (another seal key) holds the response before blue is touched: SIGINT meanwhile exits 130 with the state; a --timeout names it",
  sanitizeResources: false,
  async fn() {
    await using emulator = startFleetEmulator(INCIDENT_SECRETS);
    await using ws = await createFleetWorkspace(emulator, INCIDENT_SECRETS);
    const otherKey = btoa(String.fromCharCode(...new Uint8Array(32).fill(99)));
    const children = await startFleet(3, (i) =>
      fleetInstance(
        emulator,
        INCIDENT_SECRETS,
        i === 2 ? otherKey : INCIDENT_SEAL_KEY,
        {
          kvPath: `${ws.dir}/fleet.db`,
          instanceId: `web-${i}`,
          fleetSize: 3,
          heartbeatMs: 900,
        },
      ), ws.dir);
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 20, api: true });
      }
      const args = [
        "--compromised",
        "blue",
        "--kill-tokens",
        "--yes",
        "--kv",
        "fleet.db",
        "--prefix",
        "fleet-test",
      ];
      const env = { DUAL_SECRET_SEAL_KEY: INCIDENT_SEAL_KEY };
      // Interrupted while it waits for web-2: exit 130, the state, blue untouched.
      const waiting = spawnIncident(ws, [...args, "--timeout", "60"], env);
      await waiting.waitFor(
        /2\/3 live instances report secret [0-9a-f]{16} of "green"/,
      );
      waiting.child.kill("SIGINT");
      const interrupted = await waiting.finished();
      assert.equal(
        interrupted.code,
        130,
        interrupted.stdout + interrupted.stderr,
      );
      assert.match(
        interrupted.stderr,
        /after the step "rotate-other"\.\nState: blue still serves traffic \(green has a new secret, stored, not yet promoted\); blue is unchanged \(not disabled, not regenerated\)\.\nNext: run the same command again/,
      );
      assert.equal(emulator.getClientSecret("blue-id"), INCIDENT_SECRETS.blue);
      // Run again with a short --timeout: it stops at propagate, naming web-2.
      const run = await ws.task("incident", [...args, "--timeout", "4"], env);
      const output = run.stdout + run.stderr;
      assert.equal(run.code, 1, output);
      assert.match(
        output,
        /propagate\s+failed\s+Not every instance has loaded the secret of green: 1 of 3 live instances did not report secret [0-9a-f]{16} of "green" within 4 s: web-2 \(seal key mismatch\)\./,
      );
      assert.match(output, /blue still serves traffic; blue is unchanged/);
      assert.match(output, /INSTANCE\s+HOST\s+ACTIVE[\s\S]*web-2/);
      // Blue is untouched; the fleet stays on it.
      assert.equal(emulator.getClientSecret("blue-id"), INCIDENT_SECRETS.blue);
      assert.equal(emulator.getClientState("blue-id"), "active");
    } finally {
      const summaries = await Promise.all(children.map((c) => c.stop()));
      const failed = summaries.reduce(
        (sum, s) => sum + Number(s?.failed ?? 1) + Number(s?.apiFailed ?? 0),
        0,
      );
      assert.equal(failed, 0, JSON.stringify(summaries.map((s) => s?.errors)));
    }
  },
});
