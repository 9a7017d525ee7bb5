/**
 * Fleet mode benchmark (part of `deno task bench`, never a timed test):
 *
 * 1. token requests per token lifetime for 16 processes, with and without
 *    the shared store (Deno KV, and Redis beside it);
 * 2. API 429s at the emulator's per-token limit with K = 1 and K sized;
 * 3. rotation propagation delay, p50 / p99 over every instance and rotation
 *    (KV polls; Redis announces changes on pub/sub and polls as well);
 * 4. cached `getAccessToken()` with a fleet against without (goal ≤ 1.2×).
 *
 * Processes are `deno run` instances of tests/fleet/child.ts on one local KV
 * file, or on one throwaway local redis-server (started here when the
 * `redis-server` binary is found; otherwise the Redis figures are left out).
 * `deno task bench` runs it after the contender scenarios and writes
 * `fleet.md` and `fleet.json` beside `latest.md`; alone it prints markdown
 * (`--json`: the figures).
 *
 * Usage: `deno run -A bench/scenarios/fleet.ts [--json] [--quick]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createDualSecretAuth } from "../../mod.ts";
import { createKvFleet } from "../../kv.ts";
import { createRedisFleet } from "../../redis.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import type { ChildConfig } from "../../tests/fleet/child.ts";
import {
  type ChildMessage,
  type FleetChild,
  startFleet,
} from "../../tests/fleet/harness.ts";
import {
  findRedisServer,
  type RedisTestServer,
  startRedisServer,
} from "../../tests/support/redis_server.ts";
import { median, percentile } from "../stats.ts";

const PROCESSES = 16;
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
type Engine = "kv" | "redis";
let redisServer: RedisTestServer | undefined;
let redisRuns = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let progress: (text: string) => void = (text) =>
  void Deno.stderr.writeSync(new TextEncoder().encode(text + "\n"));

async function fleetRun(
  options: {
    shared: boolean;
    /** The shared store's engine; default KV. */
    engine?: Engine;
    lifetimeSeconds: number;
    tokensPerCredential?: number;
    apiRateLimitPerMinute?: number;
    pollIntervalMs?: number;
  },
  body: (
    children: FleetChild[],
    emulator: ReturnType<typeof startGenesysEmulator>,
  ) => Promise<void>,
): Promise<ChildMessage[]> {
  const dir = await Deno.makeTempDir({ prefix: "fleet-bench-" });
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
      tokenLifetimeSeconds: options.lifetimeSeconds,
    })),
    apiRateLimitPerMinute: options.apiRateLimitPerMinute,
  });
  const config = (i: number): ChildConfig => ({
    ...(!options.shared
      ? {}
      : options.engine === "redis"
      ? { redisUrl: redisServer!.url, redisPrefix: `bench:${redisRuns}` }
      : { kvPath: `${dir}/fleet.sqlite` }),
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    instanceId: `p${String(i).padStart(2, "0")}`,
    fleetSize: PROCESSES,
    credentials: CREDENTIALS,
    tokensPerCredential: options.tokensPerCredential,
    refreshMarginMs: 1_000,
    pollIntervalMs: options.pollIntervalMs,
  });
  redisRuns++;
  const children = await startFleet(PROCESSES, config, dir);
  const summaries: ChildMessage[] = [];
  try {
    await body(children, emulator);
  } finally {
    for (const s of await Promise.all(children.map((c) => c.stop()))) {
      if (s) summaries.push(s);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
  const failed = summaries.reduce((n, s) => n + (s.failed as number), 0);
  if (failed > 0) progress(`  warning: ${failed} failed calls`);
  return summaries;
}

/** 1: token requests per token lifetime, in steady state (after the cold start). */
async function tokenRequests(
  shared: boolean,
  lifetimes: number,
  engine?: Engine,
) {
  const lifetimeSeconds = 4;
  let cold = 0;
  let steady = 0;
  await fleetRun(
    { shared, engine, lifetimeSeconds },
    async (children, emulator) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 50 })),
      );
      await sleep(1_000);
      cold = emulator.stats().tokenRequests;
      await sleep(lifetimes * lifetimeSeconds * 1_000);
      steady = (emulator.stats().tokenRequests - cold) / lifetimes;
    },
  );
  return { coldStart: cold, perLifetime: steady };
}

/** 2: API 429s at the per-token limit. */
async function rateLimited(tokensPerCredential: number) {
  let result = { api429: 0, apiOk: 0 };
  const summaries = await fleetRun(
    {
      shared: true,
      lifetimeSeconds: 300,
      tokensPerCredential,
      apiRateLimitPerMinute: 100,
    },
    async (children) => {
      await Promise.all(
        children.map((c) =>
          c.send({ cmd: "traffic", intervalMs: 100, api: true })
        ),
      );
      await sleep(3_000);
    },
  );
  for (const s of summaries) {
    result = {
      api429: result.api429 + (s.api429 as number),
      apiOk: result.apiOk + (s.apiOk as number),
    };
  }
  return result;
}

/** 3: rotation propagation delays, in ms, over every instance and rotation. */
async function propagation(
  rotations: number,
  pollIntervalMs?: number,
  engine?: Engine,
) {
  const delays: number[] = [];
  await fleetRun(
    { shared: true, engine, lifetimeSeconds: 300, pollIntervalMs },
    async (children) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 50 })),
      );
      await sleep(500);
      for (let r = 0; r < rotations; r++) {
        const to = r % 2 === 0 ? "green" : "blue";
        const rotator = children[r % children.length];
        await rotator.send({ cmd: "rotate", to });
        const done = await rotator.next("rotated", 15_000);
        // The rotator reports its own switch too: consume it, or it would
        // stand for the next rotation's arrival there.
        await rotator.next("active", 15_000);
        for (const child of children) {
          if (child === rotator) continue;
          const seen = await child.next("active", 15_000);
          if (seen.label !== to) {
            throw new Error(
              `${child.instanceId} switched to ${seen.label}, not ${to}`,
            );
          }
          delays.push((seen.at as number) - (done.at as number));
        }
        await sleep(200 + Math.random() * 300);
      }
    },
  );
  return delays;
}

/** 4: cached getAccessToken, ns per call, without and with a fleet. */
async function hotPath(batches: number, batchSize: number) {
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
    })),
  });
  const kv = await Deno.openKv(":memory:");
  const base = { credentials: CREDENTIALS, tokenUrl: emulator.tokenUrl };
  const plain = createDualSecretAuth(base);
  const memory = createDualSecretAuth({
    ...base,
    shared: createFleet(createMemoryFleetStore()),
  });
  const onKv = createDualSecretAuth({
    ...base,
    shared: createKvFleet(kv, { prefix: ["bench"] }),
  });
  const onRedis = redisServer === undefined ? undefined : createDualSecretAuth({
    ...base,
    shared: createRedisFleet({ url: redisServer.url, prefix: "bench:hot" }),
  });
  const contenders: Record<string, ReturnType<typeof createDualSecretAuth>> = {
    plain,
    memory,
    onKv,
    ...(onRedis === undefined ? {} : { onRedis }),
  };
  let sink = 0;
  const times: Record<string, number[]> = {
    plain: [],
    memory: [],
    onKv: [],
    onRedis: [],
  };
  try {
    for (const auth of Object.values(contenders)) await auth.getAccessToken();
    const entries = Object.entries(contenders);
    for (let b = 0; b < batches; b++) {
      // Alternate the order, so no contender always runs right after another.
      for (const [name, auth] of b % 2 ? entries : [...entries].reverse()) {
        const start = performance.now();
        for (let i = 0; i < batchSize; i++) {
          sink += (await auth.getAccessToken()).length;
        }
        times[name].push(((performance.now() - start) * 1e6) / batchSize);
      }
    }
  } finally {
    for (const auth of Object.values(contenders)) await auth.close();
    kv.close();
  }
  if (sink === 0) throw new Error("unreachable");
  return {
    plainNs: median(times.plain),
    memoryNs: median(times.memory),
    kvNs: median(times.onKv),
    ...(onRedis === undefined ? {} : { redisNs: median(times.onRedis) }),
  };
}

/** The fleet figures and their markdown section. */
export interface FleetBenchResult {
  /** Every figure. */
  readonly figures: Record<string, unknown>;
  /** The section for BENCHMARKS.md. */
  readonly markdown: string;
}

/**
 * Runs the four fleet measurements.
 *
 * @param options `quick`: fewer lifetimes, rotations and batches; `progress`: a status line sink.
 * @returns The figures and their markdown.
 */
export async function runFleetBench(
  options: { quick?: boolean; progress?: (text: string) => void } = {},
): Promise<FleetBenchResult> {
  const quick = options.quick ?? false;
  if (options.progress) progress = options.progress;
  if (findRedisServer() !== undefined) redisServer = await startRedisServer();
  else progress("redis-server not found: the Redis figures are left out");
  try {
    return await measure(quick);
  } finally {
    await redisServer?.[Symbol.asyncDispose]();
    redisServer = undefined;
  }
}

async function measure(quick: boolean): Promise<FleetBenchResult> {
  progress("fleet 1/4: token requests per lifetime, 16 processes");
  const withoutStore = await tokenRequests(false, quick ? 1 : 3);
  const withStore = await tokenRequests(true, quick ? 1 : 3);
  const withRedis = redisServer === undefined
    ? undefined
    : await tokenRequests(true, quick ? 1 : 3, "redis");
  progress("fleet 2/4: 429s at the per-token limit");
  const k1 = await rateLimited(1);
  const kSized = await rateLimited(8);
  progress("fleet 3/4: rotation propagation");
  const rotations = quick ? 2 : 6;
  const delaysDefault = await propagation(rotations);
  const delaysFast = await propagation(rotations, 200);
  const redisDelaysDefault = redisServer === undefined
    ? undefined
    : await propagation(rotations, undefined, "redis");
  const redisDelaysFast = redisServer === undefined
    ? undefined
    : await propagation(rotations, 200, "redis");
  progress("fleet 4/4: cached getAccessToken");
  const hot = await hotPath(quick ? 20 : 100, 10_000);
  const delayFigures = (delays: number[]) => ({
    samples: delays.length,
    p50: percentile(delays, 50),
    p99: percentile(delays, 99),
  });

  const figures = {
    processes: PROCESSES,
    tokenRequestsPerLifetime: {
      withoutStore,
      withStore,
      ...(withRedis === undefined ? {} : { withRedis }),
    },
    api429: {
      k1,
      kSized: { tokensPerCredential: 8, ...kSized },
      load:
        "16 processes x 10 API calls/s for 3 s; limit 100 per token per minute",
    },
    rotationPropagationMs: {
      pollInterval1000: {
        samples: delaysDefault.length,
        p50: percentile(delaysDefault, 50),
        p99: percentile(delaysDefault, 99),
      },
      pollInterval200: {
        samples: delaysFast.length,
        p50: percentile(delaysFast, 50),
        p99: percentile(delaysFast, 99),
      },
      ...(redisDelaysDefault === undefined || redisDelaysFast === undefined
        ? {}
        : {
          redisPollInterval1000: delayFigures(redisDelaysDefault),
          redisPollInterval200: delayFigures(redisDelaysFast),
        }),
    },
    hotPathNs: {
      ...hot,
      memoryRatio: hot.memoryNs / hot.plainNs,
      kvRatio: hot.kvNs / hot.plainNs,
      ...(hot.redisNs === undefined
        ? {}
        : { redisRatio: hot.redisNs / hot.plainNs }),
    },
  };

  const f = figures;
  const r = (n: number, d = 1) => n.toFixed(d);
  const rp = f.rotationPropagationMs;
  const delayRow = (
    name: string,
    d: { samples: number; p50: number; p99: number } | undefined,
  ) =>
    d === undefined
      ? ""
      : `| ${name} | ${d.samples} | ${r(d.p50, 0)} | ${r(d.p99, 0)} |\n`;
  const tr = f.tokenRequestsPerLifetime;
  const redisCell = (cell: (x: typeof tr.withStore) => string) =>
    tr.withRedis === undefined ? "" : ` ${cell(tr.withRedis)} |`;
  const markdown = `## Fleet mode (${PROCESSES} processes, one local KV file${
    tr.withRedis === undefined ? "" : " or one local redis-server"
  })

| 4 s tokens, a call every 50 ms per process | without the store | with the store (Deno KV) |${
    tr.withRedis === undefined ? "" : " with the store (Redis) |"
  }
|---|---|---|${tr.withRedis === undefined ? "" : "---|"}
| token requests at cold start | ${tr.withoutStore.coldStart} | ${tr.withStore.coldStart} |${
    redisCell((x) => String(x.coldStart))
  }
| token requests per token lifetime (steady state) | ${
    r(tr.withoutStore.perLifetime)
  } | ${r(tr.withStore.perLifetime)} |${redisCell((x) => r(x.perLifetime))}

| per-token API limit (${f.api429.load}; Deno KV) | API 429s | API calls served |
|---|---|---|
| K = 1 | ${f.api429.k1.api429} | ${f.api429.k1.apiOk} |
| K = 8 | ${f.api429.kSized.api429} | ${f.api429.kSized.apiOk} |

| rotation propagation | samples | p50 ms | p99 ms |
|---|---|---|---|
${delayRow("Deno KV, pollIntervalMs 1000 (default)", rp.pollInterval1000)}${
    delayRow("Deno KV, pollIntervalMs 200", rp.pollInterval200)
  }${
    delayRow(
      "Redis (pub/sub + poll), pollIntervalMs 1000",
      rp.redisPollInterval1000,
    )
  }${
    delayRow(
      "Redis (pub/sub + poll), pollIntervalMs 200",
      rp.redisPollInterval200,
    )
  }
| cached getAccessToken() | ns per call (median of batches) | ratio |
|---|---|---|
| no fleet | ${r(f.hotPathNs.plainNs)} | 1.00 |
| fleet, memory store | ${r(f.hotPathNs.memoryNs)} | ${
    r(f.hotPathNs.memoryRatio, 2)
  } |
| fleet, Deno KV | ${r(f.hotPathNs.kvNs)} | ${r(f.hotPathNs.kvRatio, 2)} |
${
    f.hotPathNs.redisNs === undefined
      ? ""
      : `| fleet, Redis | ${r(f.hotPathNs.redisNs)} | ${
        r(f.hotPathNs.redisRatio!, 2)
      } |\n`
  }`;
  return { figures, markdown };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
    },
  });
  const { figures, markdown } = await runFleetBench({ quick: values.quick });
  console.log(values.json ? JSON.stringify(figures, null, 2) : markdown);
}
