/**
 * One fleet instance in its own process, for the multi-process tests and the
 * benchmark. Configured by a JSON argument; driven by JSON lines on stdin
 * (`traffic`, `rotate`, `stop`); reports JSON lines on stdout (`ready`,
 * `active`, `rotated`, `summary`).
 *
 * @module
 */
import { createDualSecretAuth } from "../../mod.ts";
import { createKvFleet, openKvRetrying } from "../../kv.ts";

/** The child's configuration (the first argument, as JSON). */
export interface ChildConfig {
  /** The shared KV file; absent (and no `redisUrl`): no fleet (each process on its own). */
  readonly kvPath?: string;
  /** The shared Redis instead of a KV file (`./redis`). */
  readonly redisUrl?: string;
  /** A Redis Sentinel set instead of `redisUrl`. */
  readonly redisSentinel?: { name: string; sentinels: string[] };
  /** A Redis Cluster instead of `redisUrl`. */
  readonly redisCluster?: { nodes: string[] };
  /** The KV key prefix; default `["fleet-test"]`. */
  readonly kvPrefix?: readonly string[];
  /** The Redis key prefix; default `fleet-test`. */
  readonly redisPrefix?: string;
  /** The emulator's token endpoint. */
  readonly tokenUrl: string;
  /** The emulator's API base URL. */
  readonly apiUrl: string;
  /** This instance's id. */
  readonly instanceId: string;
  /** How many instances make up the fleet (ready once all are seen). */
  readonly fleetSize: number;
  /** The credentials. */
  readonly credentials: readonly {
    label: string;
    clientId: string;
    clientSecret: string;
  }[];
  /** Pool size. */
  readonly tokensPerCredential?: number;
  /** Refresh margin. */
  readonly refreshMarginMs?: number;
  /** Fleet timing. */
  readonly pollIntervalMs?: number;
  /** Fleet timing. */
  readonly leaseMs?: number;
  /** Fleet timing. */
  readonly storeTimeoutMs?: number;
  /** Fleet timing. */
  readonly heartbeatMs?: number;
  /** Seal keys of distributed secrets (`secretSealKeys`). */
  readonly secretSealKeys?: string;
  /** Another provider: the scope its token requests send. */
  readonly scope?: string;
  /** Another provider: further token request parameters (Auth0's audience). */
  readonly tokenParams?: Record<string, string>;
  /** Another provider: each credential's auth method. */
  readonly authMethod?: "client_secret_basic" | "client_secret_post";
  /** What `viaAuth` traffic calls; default the Genesys emulator's `/api/v2/tokens/me`. */
  readonly resourceUrl?: string;
}

const config: ChildConfig = JSON.parse(Deno.args[0]);
const say = (line: Record<string, unknown>) =>
  console.log(JSON.stringify({ instanceId: config.instanceId, ...line }));

const kv = config.kvPath === undefined
  ? undefined
  : await openKvRetrying(config.kvPath);
// Imported only when asked for, so KV children do not load the Redis client.
const onRedis = config.redisUrl !== undefined ||
  config.redisSentinel !== undefined || config.redisCluster !== undefined;
const redisFleet = !onRedis
  ? undefined
  : (await import("../../redis.ts")).createRedisFleet({
    ...(config.redisUrl === undefined ? {} : { url: config.redisUrl }),
    ...(config.redisSentinel === undefined
      ? {}
      : { sentinel: config.redisSentinel }),
    ...(config.redisCluster === undefined
      ? {}
      : { cluster: config.redisCluster }),
    prefix: config.redisPrefix ?? "fleet-test",
    instanceId: config.instanceId,
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: config.leaseMs,
    storeTimeoutMs: config.storeTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    ...(config.secretSealKeys === undefined
      ? {}
      : { secretSealKeys: config.secretSealKeys }),
  });
const fleet = redisFleet ?? (kv === undefined ? undefined : createKvFleet(kv, {
  prefix: config.kvPrefix ?? ["fleet-test"],
  instanceId: config.instanceId,
  pollIntervalMs: config.pollIntervalMs,
  leaseMs: config.leaseMs,
  storeTimeoutMs: config.storeTimeoutMs,
  heartbeatMs: config.heartbeatMs,
  ...(config.secretSealKeys === undefined
    ? {}
    : { secretSealKeys: config.secretSealKeys }),
}));
const inFleet = fleet !== undefined;
const warnings: string[] = [];
const requested: { at: number; background: boolean; label: string }[] = [];
const auth = createDualSecretAuth({
  credentials: config.authMethod === undefined
    ? config.credentials
    : config.credentials.map((c) => ({ ...c, authMethod: config.authMethod })),
  tokenUrl: config.tokenUrl,
  ...(config.scope === undefined ? {} : { scope: config.scope }),
  ...(config.tokenParams === undefined
    ? {}
    : { tokenParams: config.tokenParams }),
  tokensPerCredential: config.tokensPerCredential,
  refreshMarginMs: config.refreshMarginMs,
  onEvent: (event) => {
    if (event.type === "warning") warnings.push(event.code);
    if (event.type === "token.acquired") {
      requested.push({
        at: Date.now(),
        background: event.background,
        label: event.label,
      });
    }
  },
  ...(fleet === undefined ? {} : { shared: fleet }),
});

let ok = 0;
let failed = 0;
let api429 = 0;
let apiOk = 0;
let apiFailed = 0;
let firstOkAt: number | undefined;
const errors: string[] = [];
let traffic: Promise<void> | undefined;
let stopping = false;
let lastActive = auth.status().active;

const watcher = setInterval(() => {
  const active = auth.status().active;
  if (active !== lastActive) {
    lastActive = active;
    say({ type: "active", label: active, at: Date.now() });
  }
}, 5);

/** One API call through `auth.fetch` (its 401 replay): failed unless 2xx. */
async function oneAuthFetch(): Promise<void> {
  try {
    const response = await auth.fetch(
      config.resourceUrl ?? `${config.apiUrl}/api/v2/tokens/me`,
    );
    await response.body?.cancel();
    if (response.ok) {
      ok++;
      apiOk++;
      firstOkAt ??= Date.now();
    } else if (response.status === 429) {
      api429++;
    } else {
      failed++;
      errors.push(`auth.fetch ${response.status}`);
    }
  } catch (error) {
    failed++;
    errors.push(
      error instanceof Error
        ? `${error.name}: ${error.message}`
        : String(error),
    );
  }
}

async function oneCall(api: boolean): Promise<void> {
  try {
    const token = await auth.getAccessToken();
    ok++;
    firstOkAt ??= Date.now();
    if (api) {
      const response = await fetch(`${config.apiUrl}/api/v2/tokens/me`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await response.body?.cancel();
      if (response.status === 429) api429++;
      else if (response.ok) apiOk++;
      else {
        apiFailed++;
        errors.push(`api ${response.status}`);
      }
    }
  } catch (error) {
    failed++;
    errors.push(
      error instanceof Error
        ? `${error.name}: ${error.message}`
        : String(error),
    );
  }
}

async function run(
  intervalMs: number,
  api: boolean,
  viaAuth: boolean,
): Promise<void> {
  const pending = new Set<Promise<void>>();
  while (!stopping) {
    const call = (viaAuth ? oneAuthFetch() : oneCall(api)).finally(() =>
      pending.delete(call)
    );
    pending.add(call);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  await Promise.all(pending);
}

// Ready once this instance sees the whole fleet (so the pool is assigned).
const readyBy = Date.now() + 20_000;
while (
  inFleet &&
  (fleet?.summary()?.instances ?? 0) < config.fleetSize &&
  Date.now() < readyBy
) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
say({ type: "ready", slots: fleet?.summary()?.slots });

const decoder = new TextDecoder();
let buffer = "";
for await (const chunk of Deno.stdin.readable) {
  buffer += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = buffer.indexOf("\n")) >= 0) {
    const command = JSON.parse(buffer.slice(0, newline));
    buffer = buffer.slice(newline + 1);
    if (command.cmd === "traffic") {
      traffic = run(
        command.intervalMs ?? 20,
        command.api ?? false,
        command.viaAuth ?? false,
      );
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
        ok,
        failed,
        apiOk,
        api429,
        apiFailed,
        firstOkAt,
        requested,
        errors: errors.slice(0, 5),
        warnings: [...new Set(warnings)],
        status: { ...auth.status(), fleet: fleet?.summary() },
      });
      await auth.close();
      kv?.close();
      Deno.exit(0);
    }
  }
}
