/**
 * Redis failover under a fleet: 8 processes taking traffic (a call every
 * 30 ms each) while the master fails over, on a Sentinel set
 * (`SENTINEL FAILOVER`) and on a Redis Cluster (the master of the fleet's
 * slot killed with SIGKILL, its replica promoted). Reports calls made and
 * failed, the time the topology took to name a new master, and the time until
 * every instance's heartbeat was on it (tests/fleet/redis_failover.ts, the
 * same run as tests/fleet/redis_failover_test.ts).
 *
 * Needs `redis-server` (and `redis-sentinel` for the Sentinel row); a
 * topology whose binary is missing is left out.
 *
 * Usage: `deno run -A --lock=deno.dev.lock bench/scenarios/redis_failover.ts [--runs 1] [--json] [--out DIR]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { findRedisServer } from "../../tests/support/redis_server.ts";
import { findRedisSentinel } from "../../tests/support/redis_topology.ts";
import {
  type RedisFailoverRun,
  runRedisFailover,
} from "../../tests/fleet/redis_failover.ts";

/** One run's figures. */
export interface RedisFailoverFigures {
  /** `sentinel` or `cluster`. */
  readonly topology: string;
  /** Processes. */
  readonly processes: number;
  /** Calls made, all processes. */
  readonly calls: number;
  /** Calls failed. */
  readonly failed: number;
  /** Until the topology named a new master, ms. */
  readonly failoverMs: number;
  /** Until every instance's heartbeat was on the new master, ms (-1: not all came). */
  readonly rejoinMs: number;
  /** Token requests during the run. */
  readonly tokenRequests: number;
}

/**
 * Runs the failover on each topology whose binaries are present.
 *
 * @param options Runs per topology, and a progress callback.
 * @returns The figures and a Markdown table.
 */
export async function runRedisFailoverBench(
  options: { runs?: number; progress?: (line: string) => void } = {},
): Promise<{ figures: RedisFailoverFigures[]; markdown: string }> {
  const progress = options.progress ?? ((line) => console.error(line));
  const topologies: ("sentinel" | "cluster")[] = [];
  if (findRedisServer() === undefined) {
    progress("redis-server not found: no Redis failover figures");
  } else {
    if (findRedisSentinel() !== undefined) topologies.push("sentinel");
    else progress("redis-sentinel not found: the Sentinel row is left out");
    topologies.push("cluster");
  }
  const figures: RedisFailoverFigures[] = [];
  for (const topology of topologies) {
    for (let i = 0; i < (options.runs ?? 1); i++) {
      const run: RedisFailoverRun = await runRedisFailover({
        topology,
        processes: 8,
        progress,
      });
      figures.push({
        topology,
        processes: run.processes,
        calls: run.calls,
        failed: run.failed,
        failoverMs: run.failoverMs,
        rejoinMs: run.rejoinMs ?? -1,
        tokenRequests: run.tokenRequests,
      });
    }
  }
  const how = {
    sentinel: "Sentinel: SENTINEL FAILOVER (master + 1 replica, 3 sentinels)",
    cluster: "Cluster: the slot's master killed (3 masters + 3 replicas)",
  } as Record<string, string>;
  const rows = figures.map((f) =>
    `| ${how[f.topology]} | ${f.calls} | ${f.failed} | ${
      (f.failoverMs / 1000).toFixed(1)
    } | ${
      f.rejoinMs < 0 ? "not all" : (f.rejoinMs / 1000).toFixed(1)
    } | ${f.tokenRequests} |`
  );
  const markdown = [
    "| 8 processes, a call every 30 ms each | calls | calls failed | new master after (s) | time to rejoin (s) | token requests |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
  return { figures, markdown };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      runs: { type: "string", default: "1" },
      out: { type: "string" },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(
      `--runs must be a whole number ≥ 1, got ${values.runs}`,
    );
  }
  const { figures, markdown } = await runRedisFailoverBench({ runs });
  if (values.out !== undefined) {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(`${values.out}/redis_failover.md`, markdown);
    await Deno.writeTextFile(
      `${values.out}/redis_failover.json`,
      JSON.stringify(figures, null, 2) + "\n",
    );
  }
  console.log(values.json ? JSON.stringify(figures, null, 2) : markdown);
}
