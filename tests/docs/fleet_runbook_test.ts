/**
 * The fleet runbooks of docs/hands-free.md, run as written: the lines between
 * the `fleet-runbook:begin` and `fleet-runbook:end` markers (Deno KV) and
 * between the `fleet-runbook-redis:…` markers (Redis, `--redis env`), in a
 * workspace whose `.env` names the emulator's clients, against four
 * `deno run` instances sharing the store the lines name (under the prefix
 * they name) and calling the Platform API all along. Every line must exit 0,
 * the fleet must end on the rotated label, and no instance may fail a call.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createFleetWorkspace,
  type FleetChild,
  fleetInstance,
  startFleet,
  startFleetEmulator,
} from "../fleet/harness.ts";
import {
  ignoreWithoutRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import { ROOT } from "./_commands.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const SECRETS = {
  blue: "blue-CANARY-d0c5",
  green: "green-CANARY-d0c5",
  admin: "admin-CANARY-d0c5",
};
const N = 4;

/** One line of the runbook: a variable it exports, or a task. */
type Step =
  | { kind: "export"; line: string; name: string }
  | { kind: "task"; line: string; task: string; args: string[] };

/**
 * A fleet runbook's lines, parsed from docs/hands-free.md.
 *
 * @param marker `fleet-runbook` (Deno KV) or `fleet-runbook-redis`.
 */
async function readFleetRunbook(marker: string): Promise<Step[]> {
  const guide = await Deno.readTextFile(`${ROOT}docs/hands-free.md`);
  const block = guide.match(
    new RegExp(
      `<!-- ${marker}:begin -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${marker}:end -->`,
    ),
  );
  if (!block) throw new Error(`docs/hands-free.md has no ${marker} block`);
  const steps: Step[] = [];
  for (const raw of block[1].split("\n")) {
    const line = raw.replace(/\s+#.*$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const exported = line.match(/^export ([A-Z_]+)=/);
    if (exported) {
      steps.push({ kind: "export", line, name: exported[1] });
      continue;
    }
    const words = line.split(/\s+/);
    if (words[0] !== "deno" || words[1] !== "task") {
      throw new Error(`not a deno task line: ${raw}`);
    }
    steps.push({ kind: "task", line, task: words[2], args: words.slice(3) });
  }
  return steps;
}

function valueOf(args: readonly string[], flag: string): string {
  const at = args.indexOf(flag);
  assert.ok(at !== -1 && at + 1 < args.length, `the runbook names ${flag}`);
  return args[at + 1];
}

type Engine = "kv" | "redis";

/**
 * Runs one engine's runbook against its own fleet.
 *
 * @param engine Deno KV or Redis.
 */
async function rehearse(engine: Engine): Promise<void> {
  const steps = await readFleetRunbook(
    engine === "kv" ? "fleet-runbook" : "fleet-runbook-redis",
  );
  const tasks = steps.filter((s) => s.kind === "task");
  assert.deepEqual(tasks.map((s) => s.task), [
    "rotate",
    "fleet",
    "promote",
    "fleet",
  ]);
  await using stack = new AsyncDisposableStack();
  const redis = engine === "redis"
    ? stack.use(await startRedisServer())
    : undefined;
  // What the operator exports, the test provides: the fleet's seal key and,
  // on Redis, the URL of its server.
  const provided: Record<string, string> = {
    DUAL_SECRET_SEAL_KEY: KEY,
    ...(redis ? { REDIS_URL: redis.url } : {}),
  };
  const env: Record<string, string> = {};
  for (const step of steps) {
    if (step.kind !== "export") continue;
    assert.ok(step.name in provided, `the runbook exports ${step.name}`);
    env[step.name] = provided[step.name];
  }
  assert.deepEqual(
    Object.keys(env).sort(),
    Object.keys(provided).sort(),
    "the runbook exports the seal key (and REDIS_URL for --redis env)",
  );
  // The store and prefix the lines name, for the instances to share.
  const prefix = valueOf(tasks[0].args, "--prefix");
  if (engine === "redis") {
    assert.equal(valueOf(tasks[0].args, "--redis"), "env");
  }

  const emulator = stack.use(startFleetEmulator(SECRETS, 6));
  const ws = stack.use(await createFleetWorkspace(emulator, SECRETS));
  const children: FleetChild[] = await startFleet(
    N,
    (i) =>
      fleetInstance(emulator, SECRETS, KEY, {
        ...(redis ? { redisUrl: redis.url, redisPrefix: prefix } : {
          kvPath: `${ws.dir}/${valueOf(tasks[0].args, "--kv")}`,
          kvPrefix: prefix.split("/"),
        }),
        instanceId: `web-${i}`,
        fleetSize: N,
        heartbeatMs: 900,
      }),
    ws.dir,
  );
  let stopped = false;
  const stop = () => {
    stopped = true;
    return Promise.all(children.map((c) => c.stop()));
  };
  try {
    for (const child of children) {
      await child.send({ cmd: "traffic", intervalMs: 20, api: true });
    }
    const outputs: string[] = [];
    for (const step of tasks) {
      const run = await ws.task(step.task as "rotate", step.args, env);
      assert.equal(run.code, 0, `${step.line}:\n${run.stdout}\n${run.stderr}`);
      outputs.push(run.stdout + run.stderr);
      if (step.task === "fleet" && !step.args.includes("--history")) {
        // What the runbook tells the operator to look at: every instance,
        // none that cannot load the store's secret.
        for (let i = 0; i < N; i++) {
          assert.match(run.stdout, new RegExp(`\\bweb-${i}\\b`));
        }
        assert.doesNotMatch(
          run.stdout,
          /seal key mismatch|no seal key|client mismatch|proof failed/,
        );
      }
      if (step.task === "promote") {
        assert.match(
          run.stderr,
          new RegExp(`${N}/${N} live instances on "green"`),
        );
      }
    }
    // After promote (which waited for every instance to prove green), the
    // fleet line's SECRETS column shows each instance on the one new secret.
    const fleetLine = tasks[1];
    const listed = await ws.task("fleet", [...fleetLine.args, "--json"], env);
    assert.equal(listed.code, 0, listed.stderr);
    const instances = JSON.parse(listed.stdout) as {
      instanceId: string;
      credentials: {
        label: string;
        secretGeneration?: number;
        secretFingerprint?: string;
      }[];
    }[];
    const held = instances.map(({ credentials }) =>
      credentials.find((c) => c.label === "green")
    );
    assert.equal(held.length, N);
    assert.equal(
      new Set(held.map((c) => c?.secretFingerprint)).size,
      1,
      "every instance holds the same green secret",
    );
    const table = await ws.task("fleet", [...fleetLine.args], env);
    assert.match(table.stdout, /SECRETS \(generation, fingerprint\)/);
    for (const [i, { instanceId }] of instances.entries()) {
      const row = table.stdout.split("\n").find((line) =>
        new RegExp(`\\b${instanceId}\\b`).test(line)
      );
      assert.ok(
        row?.includes(
          `green g${held[i]!.secretGeneration} ${held[i]!.secretFingerprint!}`,
        ),
        `${instanceId}: ${row}`,
      );
    }
    const history = outputs[3];
    for (const action of ["rotate\\.gate", "secret\\.publish", "promote"]) {
      assert.match(history, new RegExp(`\\b${action}\\b`));
    }
    const newGreen = emulator.getClientSecret("green-id");
    assert.notEqual(newGreen, SECRETS.green, "green was regenerated");
    for (const secret of [...Object.values(SECRETS), newGreen, KEY]) {
      for (const output of outputs) assert.ok(!output.includes(secret));
    }
    const summaries = await stop();
    const errors = summaries.flatMap((s) => (s?.errors as string[]) ?? []);
    assert.equal(
      summaries.reduce((sum, s) => sum + Number(s?.failed ?? 1), 0),
      0,
      `failed calls: ${errors.join("; ")}`,
    );
    assert.ok(
      summaries.every((s) => Number(s?.ok) > 0),
      "every instance made calls",
    );
    assert.deepEqual(
      summaries.map((s) => (s?.status as { active: string }).active),
      Array(N).fill("green"),
    );
  } finally {
    if (!stopped) await stop();
  }
}

Deno.test({
  name:
    `the fleet runbook on Deno KV (docs/hands-free.md), as written: ${N} instances under traffic, rotate, fleet, promote, history; 0 failed calls`,
  sanitizeResources: false,
  fn: () => rehearse("kv"),
});

Deno.test({
  name:
    `the fleet runbook on Redis (docs/hands-free.md, --redis env), as written: ${N} instances under traffic, rotate, fleet, promote, history; 0 failed calls`,
  ignore: ignoreWithoutRedis(),
  sanitizeResources: false,
  fn: () => rehearse("redis"),
});
