// One fleet instance in Node, sharing a Redis with Deno instances
// (tests/fleet/child.ts): the same JSON lines on stdin and stdout. It imports
// a `deno bundle --platform node` of mod.ts and redis.ts, named in its
// configuration (the last argument, as JSON).
import process from "node:process";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.argv.at(-1));
const { createDualSecretAuth, createRedisFleet } = await import(
  pathToFileURL(config.bundle).href
);
const say = (line) =>
  process.stdout.write(
    JSON.stringify({ instanceId: config.instanceId, ...line }) + "\n",
  );

const warnings = [];
const fleet = createRedisFleet({
  url: config.redisUrl,
  prefix: config.redisPrefix ?? "fleet-test",
  instanceId: config.instanceId,
  pollIntervalMs: config.pollIntervalMs,
  leaseMs: config.leaseMs,
  storeTimeoutMs: config.storeTimeoutMs,
  heartbeatMs: config.heartbeatMs,
});
const auth = createDualSecretAuth({
  credentials: config.credentials,
  tokenUrl: config.tokenUrl,
  tokensPerCredential: config.tokensPerCredential,
  refreshMarginMs: config.refreshMarginMs,
  onEvent: (event) => {
    if (event.type === "warning") warnings.push(event.code);
  },
  shared: fleet,
});

let ok = 0;
let failed = 0;
let firstOkAt;
const errors = [];
const tokens = new Set();
let traffic;
let stopping = false;
let lastActive = auth.status().active;
const watcher = setInterval(() => {
  const active = auth.status().active;
  if (active !== lastActive) {
    lastActive = active;
    say({ type: "active", label: active, at: Date.now() });
  }
}, 5);

async function run(intervalMs) {
  const pending = new Set();
  while (!stopping) {
    const call = auth.getAccessToken().then((token) => {
      ok++;
      firstOkAt ??= Date.now();
      tokens.add(token);
    }, (error) => {
      failed++;
      errors.push(`${error?.name}: ${error?.message}`);
    }).finally(() => pending.delete(call));
    pending.add(call);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  await Promise.all(pending);
}

const readyBy = Date.now() + 20_000;
while (
  (fleet.summary()?.instances ?? 0) < config.fleetSize &&
  Date.now() < readyBy
) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
say({ type: "ready", slots: fleet.summary()?.slots, runtime: "node" });

let buffer = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) {
  buffer += chunk;
  let newline;
  while ((newline = buffer.indexOf("\n")) >= 0) {
    const command = JSON.parse(buffer.slice(0, newline));
    buffer = buffer.slice(newline + 1);
    if (command.cmd === "traffic") {
      traffic = run(command.intervalMs ?? 20);
    } else if (command.cmd === "rotate") {
      try {
        await auth.rotate({ to: command.to });
        say({ type: "rotated", to: command.to, at: Date.now() });
      } catch (error) {
        say({ type: "rotated", error: String(error) });
      }
    } else if (command.cmd === "stop") {
      stopping = true;
      await traffic;
      clearInterval(watcher);
      say({
        type: "summary",
        runtime: `node ${process.version}`,
        ok,
        failed,
        firstOkAt,
        tokens: tokens.size,
        errors: errors.slice(0, 5),
        warnings: [...new Set(warnings)],
        status: { ...auth.status(), fleet: fleet.summary() },
        instances: (await fleet.instances()).map((i) => i.instanceId),
      });
      await auth.close();
      process.exit(0);
    }
  }
}
