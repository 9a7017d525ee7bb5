/**
 * Fleet mode across processes: 8 `deno run` instances share one local KV
 * file and the emulator (tokens of a few seconds).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startGenesysEmulator } from "../../testing.ts";
import type { ChildConfig } from "./child.ts";
import {
  assertNoFailures,
  assertRevokedActiveRecovers,
  type ChildMessage,
  type FleetChild,
  startFleet,
} from "./harness.ts";

const N = 8;
const LOCK_FILE = fileURLToPath(new URL("./lock_file.ts", import.meta.url));
const CREDENTIALS = [
  { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
  { label: "green", clientId: "green-id", clientSecret: "green-secret" },
];
const TIMING = {
  pollIntervalMs: 200,
  leaseMs: 1_500,
  // Generous on a loaded machine: a slower store call counts as the store
  // being down (then an instance requests its own token).
  storeTimeoutMs: 1_500,
  heartbeatMs: 6_000,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withFleet(
  options: {
    lifetimeSeconds: number;
    tokensPerCredential?: number;
    refreshMarginMs?: number;
    apiRateLimitPerMinute?: number;
    n?: number;
  },
  body: (ctx: {
    children: FleetChild[];
    emulator: ReturnType<typeof startGenesysEmulator>;
    kvPath: string;
  }) => Promise<void>,
): Promise<ChildMessage[]> {
  const dir = await Deno.makeTempDir({ prefix: "fleet-" });
  const kvPath = `${dir}/fleet.sqlite`;
  await using emulator = startGenesysEmulator({
    clients: [
      {
        clientId: "blue-id",
        secret: "blue-secret",
        tokenLifetimeSeconds: options.lifetimeSeconds,
      },
      {
        clientId: "green-id",
        secret: "green-secret",
        tokenLifetimeSeconds: options.lifetimeSeconds,
      },
    ],
    apiRateLimitPerMinute: options.apiRateLimitPerMinute,
  });
  const n = options.n ?? N;
  const config = (i: number): ChildConfig => ({
    kvPath,
    tokenUrl: emulator.tokenUrl,
    apiUrl: emulator.apiUrl,
    instanceId: `p${i}`,
    fleetSize: n,
    credentials: CREDENTIALS,
    tokensPerCredential: options.tokensPerCredential,
    refreshMarginMs: options.refreshMarginMs ?? 1_000,
    ...TIMING,
  });
  const children = await startFleet(n, config, dir);
  const summaries: ChildMessage[] = [];
  try {
    await body({ children, emulator, kvPath });
  } finally {
    for (const summary of await Promise.all(children.map((c) => c.stop()))) {
      if (summary) summaries.push(summary);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
  return summaries;
}

Deno.test({
  name:
    "8 processes, one KV file: cold start costs K per credential, a fleet-wide refresh K",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const K = 2;
  let coldStart = 0;
  let total = 0;
  const runMs = 6_000;
  const summaries = await withFleet(
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
  assert.equal(
    coldStart,
    K,
    `cold start: ${coldStart} token requests for ${N} processes: ${
      JSON.stringify(summaries.map((s) => [s.instanceId, s.warnings]))
    }`,
  );
  // A 3 s token refreshed 0.8-1 s before expiry lasts at least 2 s: the run
  // sees at most ceil(6 / 2) refresh rounds of K each, where N processes on
  // their own would need N per round.
  const rounds = Math.ceil(runMs / 2_000);
  assert.ok(total >= K * 2, `refreshes happened: ${total}`);
  assert.ok(
    total <= K * (rounds + 1),
    `${total} token requests in ${runMs} ms`,
  );
});

Deno.test({
  name:
    "8 processes: the lease holder killed mid-request, the others recover, 0 failed calls",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  let killed = "";
  let started = 0;
  const summaries = await withFleet(
    { lifetimeSeconds: 30 },
    async ({ children, emulator, kvPath }) => {
      emulator.injectTokenFaults({ kind: "delay", ms: 4_000 }, 1);
      started = Date.now();
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 50 })),
      );
      const kv = await Deno.openKv(kvPath);
      try {
        const end = Date.now() + 3_000;
        while (!killed && Date.now() < end) {
          for await (
            const entry of kv.list<Uint8Array>({
              prefix: ["fleet-test", "slot"],
            })
          ) {
            if (entry.key.at(-1) === "lease") {
              killed = JSON.parse(new TextDecoder().decode(entry.value)).holder;
            }
          }
          if (!killed) await sleep(20);
        }
      } finally {
        kv.close();
      }
      assert.ok(killed, "a lease holder was found");
      children.find((c) => c.instanceId === killed)!.kill();
      await sleep(TIMING.leaseMs + 2_000);
      assert.equal(emulator.stats().tokenRequestsByClient["blue-id"], 2);
    },
  );
  assertNoFailures(summaries, N - 1);
  assert.ok(!summaries.some((s) => s.instanceId === killed));
  // Served once the dead holder's lease lapsed: the lease bound plus one
  // token request, with a loaded machine's slack.
  const recovery = Math.max(
    ...summaries.map((s) => (s.firstOkAt as number) - started),
  );
  assert.ok(
    recovery <= TIMING.leaseMs + 2_000,
    `recovered after ${recovery} ms`,
  );
});

Deno.test({
  name:
    "8 processes: rotate() on one reaches all within the poll bound, 0 failed calls",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const delays: number[] = [];
  const summaries = await withFleet(
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
  // Bound: one poll interval, plus a loaded machine's scheduling slack.
  assert.ok(
    Math.max(...delays) <= TIMING.pollIntervalMs + 1_500,
    `delays ${delays}`,
  );
});

Deno.test({
  name:
    "8 processes: the active secret regenerated behind the fleet's back costs one rejected request",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const summaries = await withFleet(
    { lifetimeSeconds: 3, refreshMarginMs: 1_000 },
    async ({ children, emulator }) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
      );
      await sleep(500);
      emulator.regenerateSecret("blue-id");
      // The next refresh of blue (within 3 s) is rejected; the fleet moves to green.
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
  name:
    "8 processes: the KV file locked mid-traffic, 0 failed calls while tokens are valid",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const summaries = await withFleet(
    { lifetimeSeconds: 3, refreshMarginMs: 1_000 },
    async ({ children, kvPath }) => {
      await Promise.all(
        children.map((c) => c.send({ cmd: "traffic", intervalMs: 30 })),
      );
      await sleep(500);
      // Another process takes the SQLite write lock for 3 s (past a refresh)
      // and the file is made unreadable meanwhile.
      const locker = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", LOCK_FILE, kvPath, "3000"],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = locker.stdout.getReader();
      const { value } = await reader.read();
      assert.match(new TextDecoder().decode(value), /locked/);
      // Unreadable too (for a process without root's override).
      await Deno.chmod(kvPath, 0o000);
      await reader.cancel();
      assert.equal((await locker.status).code, 0);
      await Deno.chmod(kvPath, 0o644);
      await sleep(1_500);
    },
  );
  assertNoFailures(summaries, N);
  assert.ok(
    summaries.some((s) =>
      (s.warnings as string[]).includes("FLEET_STORE_UNAVAILABLE")
    ),
    `the lock was felt: ${JSON.stringify(summaries.map((s) => s.warnings))}`,
  );
});

Deno.test({
  name:
    "8 processes at the per-token API limit: 429s with K = 1, none with K sized to the load",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  // 8 processes x 10 calls a second for 3 s = 240 calls; 80 per token per
  // minute allowed. K = 4: two processes per token, 60 calls each token.
  const run = (K: number) =>
    withFleet(
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
  name:
    "8 processes: the active secret regenerated with its tokens revoked, calls through auth.fetch: 0 failed calls (the 401 removes the grant from the store before the replay)",
  sanitizeResources: false,
  sanitizeOps: false,
}, () => assertRevokedActiveRecovers(withFleet, N));
