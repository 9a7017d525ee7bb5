/**
 * Fleet mode benchmark (part of `deno task bench`, never a timed test):
 *
 * 1. token requests per token lifetime for 16 processes, with and without
 *    the shared KV store;
 * 2. API 429s at the emulator's per-token limit with K = 1 and K sized;
 * 3. rotation propagation delay, p50 / p99 over every instance and rotation;
 * 4. cached `getAccessToken()` with a fleet against without (goal ≤ 1.2×).
 *
 * Processes are `deno run` instances of tests/fleet/child.ts on one local KV
 * file. `deno task bench` runs it after the contender scenarios and writes
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
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import type { ChildConfig } from "../../tests/fleet/child.ts";
import {
  type ChildMessage,
  type FleetChild,
  startFleet,
} from "../../tests/fleet/harness.ts";
import { median, percentile } from "../stats.ts";

const PROCESSES = 16;
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let progress: (text: string) => void = (text) =>
  void Deno.stderr.writeSync(new TextEncoder().encode(text + "\n"));

async function fleetRun(
  options: {
    shared: boolean;
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
    ...(options.shared ? { kvPath: `${dir}/fleet.sqlite` } : {}),
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    instanceId: `p${String(i).padStart(2, "0")}`,
    fleetSize: PROCESSES,
    credentials: CREDENTIALS,
    tokensPerCredential: options.tokensPerCredential,
    refreshMarginMs: 1_000,
    pollIntervalMs: options.pollIntervalMs,
  });
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
async function tokenRequests(shared: boolean, lifetimes: number) {
  const lifetimeSeconds = 4;
  let cold = 0;
  let steady = 0;
  await fleetRun({ shared, lifetimeSeconds }, async (children, emulator) => {
    await Promise.all(
      children.map((c) => c.send({ cmd: "traffic", intervalMs: 50 })),
    );
    await sleep(1_000);
    cold = emulator.stats().tokenRequests;
    await sleep(lifetimes * lifetimeSeconds * 1_000);
    steady = (emulator.stats().tokenRequests - cold) / lifetimes;
  });
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
async function propagation(rotations: number, pollIntervalMs?: number) {
  const delays: number[] = [];
  await fleetRun(
    { shared: true, lifetimeSeconds: 300, pollIntervalMs },
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
    fleet: createFleet(createMemoryFleetStore()),
  });
  const onKv = createDualSecretAuth({
    ...base,
    fleet: createKvFleet(kv, { prefix: ["bench"] }),
  });
  const contenders = { plain, memory, onKv };
  let sink = 0;
  const times: Record<string, number[]> = { plain: [], memory: [], onKv: [] };
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
  progress("fleet 1/4: token requests per lifetime, 16 processes");
  const withoutStore = await tokenRequests(false, quick ? 1 : 3);
  const withStore = await tokenRequests(true, quick ? 1 : 3);
  progress("fleet 2/4: 429s at the per-token limit");
  const k1 = await rateLimited(1);
  const kSized = await rateLimited(8);
  progress("fleet 3/4: rotation propagation");
  const rotations = quick ? 2 : 6;
  const delaysDefault = await propagation(rotations);
  const delaysFast = await propagation(rotations, 200);
  progress("fleet 4/4: cached getAccessToken");
  const hot = await hotPath(quick ? 20 : 100, 10_000);

  const figures = {
    processes: PROCESSES,
    tokenRequestsPerLifetime: { withoutStore, withStore },
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
    },
    hotPathNs: {
      ...hot,
      memoryRatio: hot.memoryNs / hot.plainNs,
      kvRatio: hot.kvNs / hot.plainNs,
    },
  };

  const f = figures;
  const r = (n: number, d = 1) => n.toFixed(d);
  const markdown = `## Fleet mode (${PROCESSES} processes, one local KV file)

| 4 s tokens, a call every 50 ms per process | without the store | with the store |
|---|---|---|
| token requests at cold start | ${f.tokenRequestsPerLifetime.withoutStore.coldStart} | ${f.tokenRequestsPerLifetime.withStore.coldStart} |
| token requests per token lifetime (steady state) | ${
    r(f.tokenRequestsPerLifetime.withoutStore.perLifetime)
  } | ${r(f.tokenRequestsPerLifetime.withStore.perLifetime)} |

| per-token API limit (${f.api429.load}) | API 429s | API calls served |
|---|---|---|
| K = 1 | ${f.api429.k1.api429} | ${f.api429.k1.apiOk} |
| K = 8 | ${f.api429.kSized.api429} | ${f.api429.kSized.apiOk} |

| rotation propagation | samples | p50 ms | p99 ms |
|---|---|---|---|
| pollIntervalMs 1000 (default) | ${f.rotationPropagationMs.pollInterval1000.samples} | ${
    r(f.rotationPropagationMs.pollInterval1000.p50, 0)
  } | ${r(f.rotationPropagationMs.pollInterval1000.p99, 0)} |
| pollIntervalMs 200 | ${f.rotationPropagationMs.pollInterval200.samples} | ${
    r(f.rotationPropagationMs.pollInterval200.p50, 0)
  } | ${r(f.rotationPropagationMs.pollInterval200.p99, 0)} |

| cached getAccessToken() | ns per call (median of batches) | ratio |
|---|---|---|
| no fleet | ${r(f.hotPathNs.plainNs)} | 1.00 |
| fleet, memory store | ${r(f.hotPathNs.memoryNs)} | ${
    r(f.hotPathNs.memoryRatio, 2)
  } |
| fleet, Deno KV | ${r(f.hotPathNs.kvNs)} | ${r(f.hotPathNs.kvRatio, 2)} |
`;
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
