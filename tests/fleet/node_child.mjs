// One fleet instance in Node: the bundle of mod.ts + kv.ts with `openKv` of
// npm:@deno/kv on the same local KV file as the Deno instances. Same JSON
// line protocol as tests/fleet/child.ts (ready, traffic, stop → summary).
//
// argv[2]: JSON { bundle, denoKv, kvPath, tokenUrl, instanceId, fleetSize,
//                 credentials, pollIntervalMs, leaseMs, storeTimeoutMs, heartbeatMs }
import process from "node:process";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.argv[2]);
const { createDualSecretAuth, createKvFleet } = await import(
  pathToFileURL(config.bundle).href
);
const { openKv } = await import(pathToFileURL(config.denoKv).href);
const say = (line) =>
  console.log(JSON.stringify({ instanceId: config.instanceId, ...line }));

const kv = await openKv(config.kvPath);
const requested = [];
const warnings = [];
const fleet = createKvFleet(kv, {
  prefix: ["fleet-test"],
  instanceId: config.instanceId,
  pollIntervalMs: config.pollIntervalMs,
  leaseMs: config.leaseMs,
  storeTimeoutMs: config.storeTimeoutMs,
  heartbeatMs: config.heartbeatMs,
});
const auth = createDualSecretAuth({
  credentials: config.credentials,
  tokenUrl: config.tokenUrl,
  onEvent: (event) => {
    if (event.type === "token.acquired") requested.push(event.label);
    if (event.type === "warning") warnings.push(event.code);
  },
  shared: fleet,
});

let ok = 0;
let failed = 0;
const errors = [];
const tokens = new Set();
let stopping = false;
let traffic;

async function run(intervalMs) {
  const pending = new Set();
  while (!stopping) {
    const call = auth.getAccessToken().then((token) => {
      ok++;
      tokens.add(token);
    }, (error) => {
      failed++;
      errors.push(String(error));
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
say({ type: "ready", slots: fleet.summary()?.slots });

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
    } else if (command.cmd === "stop") {
      stopping = true;
      await traffic;
      say({
        type: "summary",
        runtime: `node ${process.version}`,
        ok,
        failed,
        errors: errors.slice(0, 5),
        tokens: tokens.size,
        requested,
        warnings: [...new Set(warnings)],
        status: { ...auth.status(), fleet: fleet.summary() },
      });
      await auth.close();
      kv.close();
      process.exit(0);
    }
  }
}
