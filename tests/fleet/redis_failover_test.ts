/**
 * A Redis master failed over under 8 processes taking traffic, on a Sentinel
 * set (`SENTINEL FAILOVER`) and on a Redis Cluster (the slot's master
 * killed): no call fails, every instance's heartbeat reaches the new master,
 * and the time that took is reported.
 */
import assert from "node:assert/strict";
import { ignoreWithoutRedis } from "../support/redis_server.ts";
import { ignoreWithoutRedisSentinel } from "../support/redis_topology.ts";
import { assertNoFailures } from "./harness.ts";
import { type RedisFailoverRun, runRedisFailover } from "./redis_failover.ts";

const MULTI = { sanitizeResources: false, sanitizeOps: false };
const N = 8;

function check(run: RedisFailoverRun): void {
  console.log(
    `${run.topology} failover under ${run.processes} processes: ${run.calls} calls, ${run.failed} failed; ` +
      `new master after ${run.failoverMs} ms; every instance on it after ${
        run.rejoinMs ?? "(never)"
      } ms (${
        JSON.stringify(run.rejoinByInstance)
      }); ${run.tokenRequests} token requests`,
  );
  assertNoFailures([...run.summaries], N);
  assert.equal(run.failed, 0, JSON.stringify(run.errors));
  assert.ok(
    run.rejoinMs !== undefined,
    `every instance rejoined: ${JSON.stringify(run.rejoinByInstance)}`,
  );
  // The new master must be found by the client itself, not by restarting
  // processes: within a few seconds of the switch (a loaded 2-core machine).
  assert.ok(
    run.rejoinMs - run.failoverMs <= 10_000,
    `rejoined ${run.rejoinMs - run.failoverMs} ms after the switch`,
  );
  for (const summary of run.summaries) {
    const fleet = (summary.status as { fleet: { store: string } }).fleet;
    assert.equal(fleet.store, "ok", `${summary.instanceId} is on the store`);
  }
}

Deno.test({
  ...MULTI,
  ignore: ignoreWithoutRedisSentinel(),
  name:
    "Redis Sentinel, 8 processes: SENTINEL FAILOVER mid-traffic, 0 failed calls, the fleet rejoins the new master",
}, async () => {
  check(await runRedisFailover({ topology: "sentinel", processes: N }));
});

Deno.test({
  ...MULTI,
  ignore: ignoreWithoutRedis(),
  name:
    "Redis Cluster, 8 processes: the fleet's master killed mid-traffic, 0 failed calls, the fleet rejoins the promoted replica",
}, async () => {
  check(await runRedisFailover({ topology: "cluster", processes: N }));
});
