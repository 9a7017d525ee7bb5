/**
 * Store traffic per instance against the fleet's size (never a timed test):
 * a store holds the heartbeats of N instances (10, 100, 1,000; all but a few
 * simulated: live heartbeats written once, far from expiry), a few real
 * instances serve cached tokens on it at the default timings
 * (`pollIntervalMs` 1 s, `heartbeatMs` 30 s), and every store call of the
 * real instances is counted in entries: a read of k records counts k, a
 * listing counts what it returns, a write counts 1. Reported per real
 * instance and second, on Deno KV (a local file) and on Redis (a throwaway
 * local redis-server, when the binary is found).
 *
 * Usage: `deno run -A bench/scenarios/fleet_traffic.ts [--seconds 30] [--json]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createFleetAuth, fleetFor } from "../../tests/support/fleet_auth.ts";
import { startGenesysEmulator } from "../../testing.ts";
import { createFleet } from "../../src/fleet/member.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createRedisFleetStore } from "../../src/fleet/redis_store.ts";
import type { FleetStore } from "../../src/fleet/store.ts";
import { serviceNamespace } from "../../src/fleet/distribution.ts";
import {
  findRedisServer,
  startRedisServer,
} from "../../tests/support/redis_server.ts";

/** The real instances measured in each fleet. */
const REAL = 4;
const SIZES = [10, 100, 1_000] as const;

interface Counts {
  read: number;
  written: number;
}

/** Counts the entries the member reads and writes through a store. */
function counting(store: FleetStore, counts: Counts): FleetStore {
  const read = <T>(n: (value: T) => number) => (value: T) => {
    counts.read += n(value);
    return value;
  };
  const wrote = <T>(value: T) => {
    counts.written++;
    return value;
  };
  return {
    ...store,
    readSlots: (keys) =>
      store.readSlots(keys).then(read(() => 2 * keys.length)),
    readActive: (service) => store.readActive(service).then(read(() => 1)),
    readDocument: (service, name) =>
      store.readDocument(service, name).then(read(() => 1)),
    readRejections: (credentials) =>
      store.readRejections(credentials).then(
        read((all) => Math.max(credentials.length, all.length)),
      ),
    listInstances: () =>
      store.listInstances().then(read((all) => Math.max(1, all.length))),
    listAudit: (service, limit) =>
      store.listAudit(service, limit).then(read((all) => all.length)),
    readLock: (service, name) =>
      store.readLock(service, name).then(read(() => 1)),
    tryLease: (key, lease, now) => store.tryLease(key, lease, now).then(wrote),
    writeGrant: (key, grant, holder) =>
      store.writeGrant(key, grant, holder).then(wrote),
    releaseLease: (key, holder) => store.releaseLease(key, holder).then(wrote),
    dropGrant: (key, token) => store.dropGrant(key, token).then(wrote),
    compareAndSetActive: (service, expected, next) =>
      store.compareAndSetActive(service, expected, next).then(wrote),
    publishRejection: (record) => store.publishRejection(record).then(wrote),
    clearRejections: (credential, keep) =>
      store.clearRejections(credential, keep).then(wrote),
    heartbeat: (record) => store.heartbeat(record).then(wrote),
    removeInstance: (id) => store.removeInstance(id).then(wrote),
    writeDocument: (service, name, expected, value, fence) =>
      store.writeDocument(service, name, expected, value, fence).then(wrote),
    claimLock: (service, name, claim) =>
      store.claimLock(service, name, claim).then(wrote),
    releaseLock: (service, name, holder, fence) =>
      store.releaseLock(service, name, holder, fence).then(wrote),
    appendAudit: (service, entry) =>
      store.appendAudit(service, entry).then(wrote),
  };
}

/** One figure: a fleet size on an engine. */
export interface TrafficFigure {
  /** The engine. */
  readonly engine: "kv" | "redis";
  /** Instances in the fleet (heartbeats in the store). */
  readonly instances: number;
  /** Entries read per second by an instance (the mean of the real ones that do not keep the roster). */
  readonly readPerSecond: number;
  /** Entries written per second by such an instance. */
  readonly writtenPerSecond: number;
  /** Entries read per second by the roster keeper (one instance of the fleet). */
  readonly keeperReadPerSecond: number;
  /** Entries read per second per instance over the whole fleet: (N - 1) instances and the keeper. */
  readonly fleetMeanReadPerSecond: number;
  /** How long the window was, in s. */
  readonly seconds: number;
}

async function measure(
  engine: "kv" | "redis",
  instances: number,
  seconds: number,
  open: () => Promise<{ store: FleetStore; close(): Promise<void> }>,
): Promise<TrafficFigure> {
  await using emulator = startGenesysEmulator({
    clients: [
      { clientId: "blue-id", secret: "blue-secret" },
      { clientId: "green-id", secret: "green-secret" },
    ],
  });
  const { store, close } = await open();
  try {
    const now = Date.now();
    for (let i = 0; i < instances - REAL; i++) {
      await store.heartbeat({
        instanceId: `sim-${String(i).padStart(4, "0")}`,
        active: "blue",
        credentials: [
          { label: "blue", clientId: "blue-id", slots: [0] },
          { label: "green", clientId: "green-id", slots: [0] },
        ],
        version: "0.1.0",
        startedAt: now,
        seenAt: now,
        until: now + 3_600_000,
      });
    }
    const counts: Counts[] = Array.from(
      { length: REAL },
      () => ({ read: 0, written: 0 }),
    );
    const auths = Array.from({ length: REAL }, (_, i) =>
      createFleetAuth({
        credentials: [
          { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
          {
            label: "green",
            clientId: "green-id",
            clientSecret: "green-secret",
          },
        ],
        tokenUrl: emulator.tokenUrl,
        shared: createFleet(counting(store, counts[i]), {
          instanceId: `real-${i}`,
          storeTimeoutMs: 5_000,
        }),
      }));
    try {
      await Promise.all(auths.map((auth) => auth.getAccessToken()));
      // Past the start (first beat, first listing, first grant): steady state.
      await new Promise((r) => setTimeout(r, 2_000));
      for (const count of counts) count.read = count.written = 0;
      const started = performance.now();
      const end = Date.now() + seconds * 1_000;
      while (Date.now() < end) {
        await Promise.all(auths.map((auth) => auth.getAccessToken()));
        await new Promise((r) => setTimeout(r, 100));
      }
      const elapsed = (performance.now() - started) / 1_000;
      const keeper = (await store.readLock(
        await serviceNamespace(emulator.tokenUrl),
        "fleet/roster",
      ))?.holder;
      const index = auths.findIndex((auth) =>
        fleetFor(auth).instanceId === keeper
      );
      const others = counts.filter((_, i) => i !== index);
      const mean = (f: (c: Counts) => number) =>
        others.reduce((sum, c) => sum + f(c), 0) / others.length / elapsed;
      const readPerSecond = mean((c) => c.read);
      const keeperReadPerSecond = index < 0 ? 0 : counts[index].read / elapsed;
      return {
        engine,
        instances,
        readPerSecond,
        writtenPerSecond: mean((c) => c.written),
        keeperReadPerSecond,
        fleetMeanReadPerSecond:
          ((instances - 1) * readPerSecond + keeperReadPerSecond) / instances,
        seconds: Math.round(elapsed * 10) / 10,
      };
    } finally {
      await Promise.all(auths.map((auth) => auth.close()));
    }
  } finally {
    await close();
  }
}

/**
 * Runs every engine and size.
 *
 * @param seconds The window of each figure, in s.
 * @param progress Told of each figure.
 * @returns The figures.
 */
export async function runFleetTraffic(
  seconds: number,
  progress: (line: string) => void,
): Promise<TrafficFigure[]> {
  const figures: TrafficFigure[] = [];
  const dir = await Deno.makeTempDir({ prefix: "fleet-traffic-" });
  try {
    for (const n of SIZES) {
      const figure = await measure("kv", n, seconds, async () => {
        const kv = await Deno.openKv(`${dir}/kv-${n}.db`);
        return {
          store: createKvFleetStore(kv, { prefix: ["traffic"] }),
          close: () => Promise.resolve(kv.close()),
        };
      });
      progress(JSON.stringify(figure));
      figures.push(figure);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
  if (findRedisServer() === undefined) {
    progress("redis-server not found: the Redis figures are left out");
    return figures;
  }
  await using server = await startRedisServer();
  for (const n of SIZES) {
    const figure = await measure("redis", n, seconds, () => {
      const store = createRedisFleetStore({
        url: server.url,
        prefix: `traffic:${n}`,
      });
      return Promise.resolve({ store, close: () => store.close() });
    });
    progress(JSON.stringify(figure));
    figures.push(figure);
  }
  return figures;
}

/**
 * Renders the figures as a markdown table.
 *
 * @param figures The figures.
 * @returns The table.
 */
export function trafficMarkdown(figures: readonly TrafficFigure[]): string {
  const rows = figures.map((f) =>
    [
      f.engine === "kv" ? "Deno KV (file)" : "Redis",
      f.instances.toLocaleString("en"),
      f.readPerSecond.toFixed(1),
      f.writtenPerSecond.toFixed(2),
      f.keeperReadPerSecond.toFixed(1),
      f.fleetMeanReadPerSecond.toFixed(1),
      String(f.seconds),
    ].join(" | ")
  ).map((row) => `| ${row} |`);
  return [
    "| engine | instances | read / s, an instance | written / s, an instance | read / s, the roster keeper | read / s per instance, fleet mean | window (s) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "30" },
      json: { type: "boolean", default: false },
    },
  });
  const figures = await runFleetTraffic(
    Number(values.seconds),
    (line) => console.error(line),
  );
  console.log(
    values.json ? JSON.stringify(figures, null, 2) : trafficMarkdown(figures),
  );
}
