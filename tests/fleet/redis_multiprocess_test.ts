/**
 * Fleet mode across processes on Redis: the multi-process scenarios of the
 * Deno KV fleet (8 `deno run` instances, tests/fleet/child.ts) against a real
 * redis-server, plus Redis restarted mid-traffic and Node and Deno processes
 * sharing one Redis.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
// deno-lint-ignore no-import-prefix
import { createClient } from "npm:@redis/client@^6.3.1";
import { startGenesysEmulator } from "../../testing.ts";
import { runToEnd } from "../support/child_process.ts";
import {
  ignoreWithoutRedis,
  sharedOrOwnRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import type { ChildConfig } from "./child.ts";
import {
  assertNoFailures,
  assertRevokedActiveRecovers,
  type ChildMessage,
  type FleetChild,
  startFleet,
  startFleetChild,
} from "./harness.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE_CHILD = fileURLToPath(
  new URL("./redis_node_child.mjs", import.meta.url),
);
const ignore = ignoreWithoutRedis();
const N = 8;
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const TIMING = {
  pollIntervalMs: 200,
  leaseMs: 1_500,
  // Generous on a loaded machine: a slower store call counts as the store
  // being down (then an instance requests its own token). A Redis that is
  // down fails at once regardless (no offline queue).
  storeTimeoutMs: 1_500,
  heartbeatMs: 6_000,
};
let unique = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FleetContext {
  children: FleetChild[];
  emulator: ReturnType<typeof startGenesysEmulator>;
  redisUrl: string;
  prefix: string;
}

async function withRedisFleet(
  options: {
    lifetimeSeconds: number;
    tokensPerCredential?: number;
    refreshMarginMs?: number;
    apiRateLimitPerMinute?: number;
    /** A server of this test's own (to kill and restart); default shared. */
    redisUrl?: string;
  },
  body: (ctx: FleetContext) => Promise<void>,
): Promise<ChildMessage[]> {
  await using shared = options.redisUrl === undefined
    ? await sharedOrOwnRedis()
    : undefined;
  const redisUrl = options.redisUrl ?? shared!.url;
  const prefix = `mp:${Date.now()}:${unique++}`;
  const dir = await Deno.makeTempDir({ prefix: "redis-fleet-" });
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
      tokenLifetimeSeconds: options.lifetimeSeconds,
    })),
    apiRateLimitPerMinute: options.apiRateLimitPerMinute,
  });
  const config = (i: number): ChildConfig => ({
    redisUrl,
    redisPrefix: prefix,
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    instanceId: `p${i}`,
    fleetSize: N,
    credentials: CREDENTIALS,
    tokensPerCredential: options.tokensPerCredential,
    refreshMarginMs: options.refreshMarginMs ?? 1_000,
    ...TIMING,
  });
  const children = await startFleet(N, config, dir);
  const summaries: ChildMessage[] = [];
  try {
    await body({ children, emulator, redisUrl, prefix });
  } finally {
    for (const summary of await Promise.all(children.map((c) => c.stop()))) {
      if (summary) summaries.push(summary);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
  return summaries;
}

const MULTI = { ignore, sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...MULTI,
  name:
    "Redis, 8 processes: cold start costs K per credential, a fleet-wide refresh K",
}, async () => {
  const K = 2;
  let coldStart = 0;
  let total = 0;
  const runMs = 6_000;
  const summaries = await withRedisFleet(
    { lifetimeSeconds: 3, tokensPerCredential: K, refreshMarginMs: 1_000 },
    async ({ children, emulator }) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 25 })),
      );
      await sleep(1_000);
      coldStart = emulator.stats().tokenRequestsByClient["blue-id"] ?? 0;
      await sleep(runMs - 1_000);
      total = emulator.stats().tokenRequestsByClient["blue-id"] ?? 0;
    },
  );
  assertNoFailures(summaries, N);
  assert.equal(coldStart, K, `cold start: ${coldStart} for ${N} processes`);
  const rounds = Math.ceil(runMs / 2_000);
  assert.ok(total >= K * 2, `refreshes happened: ${total}`);
  assert.ok(
    total <= K * (rounds + 1),
    `${total} token requests in ${runMs} ms`,
  );
});

Deno.test({
  ...MULTI,
  name:
    "Redis, 8 processes: the lease holder killed mid-request, the others recover, 0 failed calls",
}, async () => {
  let killed = "";
  let started = 0;
  const summaries = await withRedisFleet(
    { lifetimeSeconds: 30 },
    async ({ children, emulator, redisUrl, prefix }) => {
      emulator.injectTokenFaults({ kind: "delay", ms: 4_000 }, 1);
      started = Date.now();
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 50 })),
      );
      const raw = createClient({ url: redisUrl });
      raw.on("error", () => undefined);
      await raw.connect();
      try {
        const end = Date.now() + 3_000;
        while (!killed && Date.now() < end) {
          for await (
            const keys of raw.scanIterator({ MATCH: `{${prefix}}:lease:*` })
          ) {
            for (const key of keys) {
              const value = await raw.get(key);
              if (value) killed = JSON.parse(value).holder;
            }
          }
          if (!killed) await sleep(20);
        }
      } finally {
        raw.destroy();
      }
      assert.ok(killed, "a lease holder was found");
      children.find((c) => c.instanceId === killed)!.kill();
      await sleep(TIMING.leaseMs + 2_000);
      assert.equal(emulator.stats().tokenRequestsByClient["blue-id"], 2);
    },
  );
  assertNoFailures(summaries, N - 1);
  assert.ok(!summaries.some((s) => s.instanceId === killed));
  const recovery = Math.max(
    ...summaries.map((s) => (s.firstOkAt as number) - started),
  );
  assert.ok(
    recovery <= TIMING.leaseMs + 2_000,
    `recovered after ${recovery} ms`,
  );
});

Deno.test({
  ...MULTI,
  name:
    "Redis, 8 processes: rotate() on one reaches all within the poll bound, 0 failed calls",
}, async () => {
  const delays: number[] = [];
  const summaries = await withRedisFleet(
    { lifetimeSeconds: 30 },
    async ({ children }) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
      );
      await sleep(500);
      await children[0].send({ cmd: "rotate", to: "green" });
      const rotated = await children[0].next("rotated", 10_000);
      assert.equal(rotated.to, "green", JSON.stringify(rotated));
      for (const child of children.slice(1)) {
        const seen = await child.next("active", 10_000);
        assert.equal(seen.label, "green");
        delays.push((seen.at as number) - (rotated.at as number));
      }
      await sleep(300);
    },
  );
  assertNoFailures(summaries, N);
  assert.ok(
    summaries.every((s) => (s.status as { active: string }).active === "green"),
  );
  assert.ok(
    Math.max(...delays) <= TIMING.pollIntervalMs + 1_500,
    `delays ${delays}`,
  );
});

Deno.test({
  ...MULTI,
  name:
    "Redis, 8 processes: the active secret regenerated behind the fleet's back costs one rejected request",
}, async () => {
  const summaries = await withRedisFleet(
    { lifetimeSeconds: 3, refreshMarginMs: 1_000 },
    async ({ children, emulator }) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
      );
      await sleep(500);
      emulator.regenerateSecret("blue-id");
      const end = Date.now() + 8_000;
      while (Date.now() < end) {
        await sleep(100);
        if (emulator.stats().tokenFailures > 0) break;
      }
      await sleep(2_000);
      const stats = emulator.stats();
      assert.equal(stats.tokenFailures, 1, JSON.stringify(stats));
    },
  );
  assertNoFailures(summaries, N);
  assert.ok(
    summaries.every((s) => (s.status as { active: string }).active === "green"),
  );
});

Deno.test({
  ...MULTI,
  name:
    "Redis, 8 processes: Redis killed and restarted mid-traffic (data lost), 0 failed calls",
}, async () => {
  await using server = await startRedisServer();
  const summaries = await withRedisFleet(
    { lifetimeSeconds: 3, refreshMarginMs: 1_000, redisUrl: server.url },
    async ({ children }) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
      );
      await sleep(500);
      // Down for 3 s: past a refresh and a token's expiry.
      await server.kill();
      await sleep(3_000);
      await server.start();
      await sleep(2_500);
    },
  );
  assertNoFailures(summaries, N);
  assert.ok(
    summaries.some((s) =>
      (s.warnings as string[]).includes("FLEET_STORE_UNAVAILABLE")
    ),
    `the outage was felt: ${JSON.stringify(summaries.map((s) => s.warnings))}`,
  );
  assert.ok(
    summaries.every((s) =>
      (s.status as { fleet: { store: string } }).fleet.store === "ok"
    ),
    "every instance is back on the store",
  );
});

Deno.test({
  ...MULTI,
  name:
    "Redis, 8 processes at the per-token API limit: 429s with K = 1, none with K sized to the load",
}, async () => {
  const run = (K: number) =>
    withRedisFleet(
      {
        lifetimeSeconds: 60,
        tokensPerCredential: K,
        apiRateLimitPerMinute: 80,
      },
      async ({ children }) => {
        await Promise.all(
          children.map((c) =>
            c.send({ cmd: "traffic", intervalMs: 100, api: true })
          ),
        );
        await sleep(3_000);
      },
    );
  const single = await run(1);
  const sized = await run(4);
  assertNoFailures(single, N);
  assertNoFailures(sized, N);
  const count = (s: ChildMessage[]) =>
    s.reduce((sum, m) => sum + (m.api429 as number), 0);
  const served = (s: ChildMessage[]) =>
    s.reduce((sum, m) => sum + (m.apiOk as number), 0);
  assert.ok(
    count(single) > 0,
    `K = 1: ${count(single)} 429s of ${served(single)}`,
  );
  assert.equal(
    count(sized),
    0,
    `K = 4: ${count(sized)} 429s of ${served(sized)}`,
  );
});

Deno.test({
  ...MULTI,
  name:
    "Node and Deno processes sharing one Redis: one token request, one token, rotate reaches both",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "redis-node-" });
  await using redis = await sharedOrOwnRedis();
  await using emulator = startGenesysEmulator({
    clients: CREDENTIALS.map((c) => ({
      clientId: c.clientId,
      secret: c.clientSecret,
      tokenLifetimeSeconds: 60,
    })),
  });
  const children: FleetChild[] = [];
  try {
    const entry = `${dir}/entry.ts`;
    const bundle = `${dir}/fleet.mjs`;
    await Deno.writeTextFile(
      entry,
      `export { createDualSecretAuth } from ${
        JSON.stringify(`${ROOT}mod.ts`)
      };\nexport { createRedisFleet } from ${
        JSON.stringify(`${ROOT}redis.ts`)
      };\n`,
    );
    const bundled = await runToEnd(Deno.execPath(), [
      "bundle",
      "--platform",
      "node",
      `--config=${ROOT}deno.json`,
      "-o",
      bundle,
      entry,
    ], { cwd: ROOT, env: { NO_COLOR: "1" } });
    assert.equal(bundled.code, 0, bundled.stderr);
    const prefix = `mixed:${Date.now()}`;
    const n = 4;
    const config = (i: number): ChildConfig & { bundle: string } => ({
      bundle,
      redisUrl: redis.url,
      redisPrefix: prefix,
      tokenUrl: emulator.tokenUrl,
      apiUrl: emulator.apiUrl,
      instanceId: i % 2 === 0 ? `deno-${i}` : `node-${i}`,
      fleetSize: n,
      credentials: CREDENTIALS,
      ...TIMING,
    });
    for (let i = 0; i < n; i++) {
      children.push(
        i % 2 === 0
          ? startFleetChild(config(i), dir)
          : startFleetChild(config(i), dir, {
            program: "node",
            args: [NODE_CHILD],
          }),
      );
    }
    const ready = await Promise.all(
      children.map((c) => c.next("ready", 60_000)),
    );
    assert.equal(ready.filter((m) => m.runtime === "node").length, n / 2);
    await Promise.all(
      children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
    );
    await sleep(1_000);
    assert.equal(
      emulator.stats().tokenRequests,
      1,
      "one token request for the Node and Deno processes together",
    );
    await children[1].send({ cmd: "rotate", to: "green" }); // a Node process
    const rotated = await children[1].next("rotated", 10_000);
    assert.equal(rotated.to, "green", JSON.stringify(rotated));
    for (const child of [children[0], children[2], children[3]]) {
      assert.equal((await child.next("active", 10_000)).label, "green");
    }
    await sleep(300);
    // The Node process lists the fleet in its summary: stop it first, while
    // the others still beat (each removes its heartbeat when it stops).
    const nodeSummary = await children[1].stop();
    const summaries = [
      nodeSummary,
      ...await Promise.all(
        children.filter((_, i) => i !== 1).map((c) => c.stop()),
      ),
    ];
    for (const summary of summaries) {
      assert.ok(summary, "every process reported");
      assert.equal(summary.failed, 0, JSON.stringify(summary.errors));
      assert.equal((summary.status as { active: string }).active, "green");
    }
    const node = summaries.find((s) => s!.instanceId === "node-1")!;
    assert.match(String(node.runtime), /^node v/);
    assert.deepEqual(
      [...(node.instances as string[])].sort(),
      ["deno-0", "deno-2", "node-1", "node-3"],
      "the Node process lists the Deno processes' heartbeats too",
    );
    // Blue once (shared), green once (the proof of rotate, then shared).
    assert.deepEqual(emulator.stats().tokenRequestsByClient, {
      "blue-id": 1,
      "green-id": 1,
    });
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
});

Deno.test({
  name:
    "8 processes on Redis: the active secret regenerated with its tokens revoked, calls through auth.fetch: 0 failed calls (the 401 removes the grant from the store before the replay)",
  ...MULTI,
}, () => assertRevokedActiveRecovers(withRedisFleet, N));
