/**
 * The fleet's state as an operator sees it, read from a fleet store in one
 * pass: live instances (from their heartbeats), and per service the active
 * label and its history, a rotation in progress (journal and lock), the
 * revoke gate and the drain, the schedule, the audit timeline and each
 * distributed secret's age. Built field by field from an allow-list, so no
 * secret, sealed secret or token can reach it. Reads only.
 *
 * The reads are the ones `deno task fleet` makes (`listKvInstances`,
 * `listRedisInstances`, the audit listings) and the operator's own
 * (`readScheduleState`, `checkRevokeGate`), over the store interface.
 *
 * @module
 */
import type { KvKey, KvLike } from "./kv_store.ts";
import { createKvFleetStore } from "./kv_store.ts";
import { listKvAudit, listKvInstances } from "./kv_listing.ts";
import { checkRevokeGate, type FleetTarget } from "./operator.ts";
import { readScheduleState } from "./schedule.ts";
import type {
  AuditEntry,
  FleetStore,
  InstanceCredential,
  InstanceRecord,
} from "./store.ts";

/** Where the status is read from: what a {@linkcode readFleetStatus} needs. */
export interface FleetStatusSource {
  /** A secret-free name of the store, such as `kv fleet.db prefix fleet-test`. */
  readonly name: string;
  /**
   * Lists the live heartbeats.
   *
   * @param now The current time.
   * @returns The instances with the prefix they live under.
   */
  instances(now: number): Promise<{ prefix: string; record: InstanceRecord }[]>;
  /**
   * Lists the latest audit entries, oldest first.
   *
   * @param limit At most this many.
   * @returns The entries with their service namespace.
   */
  audit(limit: number): Promise<{ service: string; entry: AuditEntry }[]>;
  /** The store, for the service-wide records (read only here). */
  readonly store: FleetStore;
  /** Closes what the source opened. */
  close(): Promise<void>;
}

/**
 * A status source over a Deno KV database.
 *
 * @param kv The open database (closed by the caller).
 * @param prefix The fleet's own key prefix.
 * @param name A secret-free name for the page.
 * @returns The source; its `close` does nothing (the caller owns `kv`).
 */
export function kvStatusSource(
  kv: KvLike,
  prefix: KvKey,
  name: string,
): FleetStatusSource {
  return {
    name,
    instances: async (now) =>
      (await listKvInstances(kv, prefix, now)).map((entry) => ({
        prefix: entry.prefix.map(String).join("/"),
        record: entry.record,
      })),
    audit: (limit) => listKvAudit(kv, prefix, limit),
    store: createKvFleetStore(kv, { prefix }),
    close: () => Promise.resolve(),
  };
}

/** One credential of an instance, as shown. No secret, no token. */
export interface StatusCredential {
  /** The label. */
  readonly label: string;
  /** The OAuth client id. */
  readonly clientId: string;
  /** The pool slots it serves from. */
  readonly slots: readonly number[];
  /** When it last served a token of it. */
  readonly lastUsedAt?: number;
  /** Until when it holds a token of it. */
  readonly heldUntil?: number;
  /** How long that token has left, in ms (0 when expired). */
  readonly tokenLeftMs?: number;
  /** The distributed secret's generation it uses. */
  readonly secretGeneration?: number;
  /** The fingerprint of the distributed secret it proved, when its heartbeat says. */
  readonly secretFingerprint?: string;
  /** Why it did not load the store's secret, when its heartbeat says. */
  readonly secretProblem?: string;
}

/** One live instance, as shown. */
export interface StatusInstance {
  /** The key prefix it lives under. */
  readonly prefix: string;
  /** Its id. */
  readonly instanceId: string;
  /** Its host, if it reported one. */
  readonly host?: string;
  /** The label it serves. */
  readonly active: string;
  /** The library version. */
  readonly version: string;
  /** When it joined. */
  readonly startedAt: number;
  /** When it last beat. */
  readonly seenAt: number;
  /**
   * `ok` (it opened a distributed secret), why its seal keys do not open the
   * store's secret, or `not reported` (it has opened none and says nothing).
   */
  readonly sealKey: string;
  /** Its credentials. */
  readonly credentials: readonly StatusCredential[];
}

/** The state of one service namespace of the fleet. */
export interface ServiceStatus {
  /** The service namespace. */
  readonly service: string;
  /** The shared active label, if one was ever set. */
  readonly active?: {
    readonly label: string;
    readonly generation: number;
    readonly by: string;
    readonly at: number;
    readonly reason: string;
  };
  /** The active label's changes in the audit trail, oldest first. */
  readonly activeHistory: readonly AuditEntry[];
  /** The rotation journal: a rotation in progress or the last one. */
  readonly rotation?: {
    readonly standby: string;
    readonly active: string;
    readonly phase: string;
    readonly startedAt: number;
    readonly completedAt?: number;
    readonly inProgress: boolean;
  };
  /** The rotation lock, while held. */
  readonly lock?: {
    readonly holder: string;
    readonly command: string;
    readonly until: number;
  };
  /** The scheduler's state, if a scheduler ever ran. */
  readonly schedule?: {
    readonly step: string;
    readonly completed: number;
    readonly standby?: string;
    readonly from?: string;
    readonly generation?: number;
    readonly stepStartedAt: number;
    readonly cycleStartedAt?: number;
    readonly lastCompletedAt?: number;
    readonly leader?: { readonly holder: string; readonly until: number };
  };
  /** The revoke gate of the standby label (the one not active). */
  readonly gate?: {
    readonly label: string;
    readonly open: boolean;
    readonly blockers: readonly {
      readonly instanceId: string;
      readonly host?: string;
      readonly reason: string;
      readonly heldUntil?: number;
      readonly lastUsedAt?: number;
    }[];
  };
  /**
   * Live instances behind the fleet: not yet on the shared active label
   * (the drain), or, while a cycle propagates, not yet on its generation.
   */
  readonly stragglers: readonly {
    readonly instanceId: string;
    readonly host?: string;
    readonly reason: string;
  }[];
  /** The distributed secret of each label: generation and age. */
  readonly secrets: readonly {
    readonly label: string;
    readonly generation: number;
    readonly publishedAt: number;
    readonly publishedBy: string;
    readonly keyId: string;
    /** Two secrets on one client: the provider's id of the secret. */
    readonly secretId?: string;
    /** When a two-secret rotation retired (revoked) it; instances no longer load it. */
    readonly retiredAt?: number;
  }[];
}

/** The fleet's state at one moment. */
export interface FleetStatus {
  /** When it was read. */
  readonly readAt: number;
  /** The store's secret-free name. */
  readonly source: string;
  /** The live instances. */
  readonly instances: readonly StatusInstance[];
  /** Per service namespace found in the audit trail. */
  readonly services: readonly ServiceStatus[];
  /** The audit timeline, oldest first. */
  readonly audit: readonly (AuditEntry & { readonly service: string })[];
}

/** Options of {@linkcode readFleetStatus}. */
export interface ReadFleetStatusOptions {
  /** The current time. */
  readonly now: number;
  /**
   * A token's lifetime, for the revoke gate's "used recently", in ms.
   *
   * @default 86400000 (Genesys Cloud's default of 24 h)
   */
  readonly tokenLifetimeMs?: number;
  /**
   * How many audit entries to read.
   *
   * @default 50
   */
  readonly auditLimit?: number;
}

const JOURNAL = "rotation/journal";
const LOCK = "rotation/lock";
const LEADER = "schedule/leader";
const LABELS = ["blue", "green"];

const str = (value: unknown): string | undefined =>
  typeof value === "string" ? value : undefined;
const num = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined;

/** Copies only the fields an entry of the audit trail may carry. */
function auditOf(entry: AuditEntry): AuditEntry {
  return {
    at: num(entry.at) ?? 0,
    by: str(entry.by) ?? "",
    action: str(entry.action) ?? "",
    outcome: str(entry.outcome) ?? "",
    ...(str(entry.label) === undefined ? {} : { label: entry.label }),
    ...(str(entry.detail) === undefined ? {} : { detail: entry.detail }),
  };
}

function credentialOf(
  credential: InstanceCredential,
  now: number,
): StatusCredential {
  // Fields a newer heartbeat may carry (proved fingerprints, why a secret
  // was not loaded): read by shape, never copied whole.
  const extra = credential as InstanceCredential & {
    secretFingerprint?: unknown;
    secretProblem?: { reason?: unknown };
  };
  const heldUntil = num(credential.heldUntil);
  const fingerprint = str(extra.secretFingerprint);
  const problem = str(extra.secretProblem?.reason);
  return {
    label: str(credential.label) ?? "",
    clientId: str(credential.clientId) ?? "",
    slots: credential.slots.filter((slot) => typeof slot === "number"),
    ...(num(credential.lastUsedAt) === undefined
      ? {}
      : { lastUsedAt: credential.lastUsedAt }),
    ...(heldUntil === undefined
      ? {}
      : { heldUntil, tokenLeftMs: Math.max(0, heldUntil - now) }),
    ...(num(credential.secretGeneration) === undefined
      ? {}
      : { secretGeneration: credential.secretGeneration }),
    ...(fingerprint === undefined ? {} : { secretFingerprint: fingerprint }),
    ...(problem === undefined ? {} : { secretProblem: problem }),
  };
}

function instanceOf(
  prefix: string,
  record: InstanceRecord,
  now: number,
): StatusInstance {
  const credentials = record.credentials.map((c) => credentialOf(c, now));
  const sealProblem = credentials.find((c) =>
    c.secretProblem === "seal key mismatch" ||
    c.secretProblem === "no seal key"
  );
  return {
    prefix,
    instanceId: record.instanceId,
    ...(str(record.host) === undefined ? {} : { host: record.host }),
    active: record.active,
    version: str(record.version) ?? "",
    startedAt: num(record.startedAt) ?? 0,
    seenAt: num(record.seenAt) ?? 0,
    // "ok" only on evidence: the instance opened a distributed secret.
    sealKey: sealProblem !== undefined
      ? `${sealProblem.secretProblem} (${sealProblem.label})`
      : credentials.some((c) =>
          c.secretGeneration !== undefined ||
          c.secretFingerprint !== undefined
        )
      ? "ok"
      : "not reported",
    credentials,
  };
}

/**
 * Reads the fleet's state. Reads only: every call is a list or a get.
 *
 * @param source Where from.
 * @param options The time and bounds.
 * @returns The state, secret-free.
 */
export async function readFleetStatus(
  source: FleetStatusSource,
  options: ReadFleetStatusOptions,
): Promise<FleetStatus> {
  const { now } = options;
  const records = await source.instances(now);
  const instances = records.map(({ prefix, record }) =>
    instanceOf(prefix, record, now)
  );
  const audit = (await source.audit(options.auditLimit ?? 50)).map((
    { service, entry },
  ) => ({ service, ...auditOf(entry) }));
  const services: ServiceStatus[] = [];
  for (const service of new Set(audit.map((entry) => entry.service))) {
    services.push(
      await readService(source, service, records, audit, options),
    );
  }
  return { readAt: now, source: source.name, instances, services, audit };
}

async function readService(
  source: FleetStatusSource,
  service: string,
  records: readonly { record: InstanceRecord }[],
  audit: readonly (AuditEntry & { service: string })[],
  options: ReadFleetStatusOptions,
): Promise<ServiceStatus> {
  const { now } = options;
  const { store } = source;
  const target: FleetTarget = { store, service, by: "status", now: () => now };
  const live = records.map(({ record }) => record);
  const shared = await store.readActive(service);
  const journal = (await store.readDocument(service, JOURNAL))?.value as
    | Record<string, unknown>
    | undefined;
  const lock = (await store.readDocument(service, LOCK))?.value as
    | Record<string, unknown>
    | undefined;
  const leader = (await store.readDocument(service, LEADER))?.value as
    | Record<string, unknown>
    | undefined;
  const schedule = await readScheduleState(target);
  const labels = new Set(LABELS);
  for (const record of live) {
    for (const credential of record.credentials) labels.add(credential.label);
  }
  const secrets: ServiceStatus["secrets"][number][] = [];
  for (const label of labels) {
    const value = (await store.readDocument(service, `credential/${label}`))
      ?.value as Record<string, unknown> | undefined;
    const generation = num(value?.generation);
    if (generation === undefined) continue;
    secrets.push({
      label,
      generation,
      publishedAt: num(value?.publishedAt) ?? 0,
      publishedBy: str(value?.publishedBy) ?? "",
      keyId: str(value?.keyId) ?? "",
      ...(str(value?.secretId) === undefined
        ? {}
        : { secretId: str(value?.secretId)! }),
      ...(num(value?.retiredAt) === undefined
        ? {}
        : { retiredAt: num(value?.retiredAt)! }),
    });
  }
  const activeLabel = shared?.label ??
    mostCommon(live.map((record) => record.active));
  const standby = schedule !== undefined && schedule.step !== "done"
    ? schedule.standby
    : [...labels].find((label) => label !== activeLabel);
  let gate: ServiceStatus["gate"];
  const clientId = live.flatMap((record) => record.credentials)
    .find((credential) => credential.label === standby)?.clientId;
  if (standby !== undefined && clientId !== undefined) {
    const report = await checkRevokeGate(
      target,
      { label: standby, clientId },
      options.tokenLifetimeMs ?? 86_400_000,
    );
    gate = {
      label: standby,
      open: report.open,
      blockers: report.blockers.map((b) => ({
        instanceId: b.instanceId,
        ...(b.host === undefined ? {} : { host: b.host }),
        reason: b.reason,
        ...(b.heldUntil === undefined ? {} : { heldUntil: b.heldUntil }),
        ...(b.lastUsedAt === undefined ? {} : { lastUsedAt: b.lastUsedAt }),
      })),
    };
  }
  const stragglers: ServiceStatus["stragglers"][number][] = [];
  const add = (record: InstanceRecord, reason: string) =>
    stragglers.push({
      instanceId: record.instanceId,
      ...(record.host === undefined ? {} : { host: record.host }),
      reason,
    });
  if (
    schedule?.step === "propagate" && schedule.standby !== undefined
  ) {
    for (const record of live) {
      const held = record.credentials.find((c) => c.label === schedule.standby);
      if (held?.secretGeneration !== schedule.generation) {
        const problem = str(
          (held as { secretProblem?: { reason?: unknown } } | undefined)
            ?.secretProblem?.reason,
        );
        add(
          record,
          `on generation ${
            held?.secretGeneration ?? "none"
          } of "${schedule.standby}", not ${schedule.generation}${
            problem === undefined ? "" : `: ${problem}`
          }`,
        );
      }
    }
  } else if (shared !== undefined) {
    for (const record of live) {
      if (record.active !== shared.label) {
        add(record, `serves "${record.active}", not "${shared.label}"`);
      }
    }
  }
  const journalInProgress = journal !== undefined &&
    num(journal.completedAt) === undefined;
  return {
    service,
    ...(shared === undefined ? {} : {
      active: {
        label: shared.label,
        generation: shared.generation,
        by: str(shared.by) ?? "",
        at: num(shared.at) ?? 0,
        reason: str(shared.reason) ?? "",
      },
    }),
    // Changes only: a rotation that skipped its promotion changed nothing.
    activeHistory: audit.filter((entry) =>
      entry.service === service &&
      /(^|\.)promote$|failover|incident/.test(entry.action) &&
      entry.outcome !== "skipped"
    ).map(auditOf),
    ...(journal === undefined ? {} : {
      rotation: {
        standby: str(journal.standby) ?? "",
        active: str(journal.active) ?? "",
        phase: str(journal.phase) ?? "",
        startedAt: num(journal.startedAt) ?? 0,
        ...(num(journal.completedAt) === undefined
          ? {}
          : { completedAt: journal.completedAt as number }),
        inProgress: journalInProgress,
      },
    }),
    ...(lock === undefined || (num(lock.until) ?? 0) <= now ? {} : {
      lock: {
        holder: str(lock.holder) ?? "",
        command: str(lock.command) ?? "",
        until: num(lock.until) ?? 0,
      },
    }),
    ...(schedule === undefined ? {} : {
      schedule: {
        step: schedule.step,
        completed: schedule.completed,
        ...(schedule.standby === undefined
          ? {}
          : { standby: schedule.standby }),
        ...(schedule.from === undefined ? {} : { from: schedule.from }),
        ...(schedule.generation === undefined
          ? {}
          : { generation: schedule.generation }),
        stepStartedAt: schedule.stepStartedAt,
        ...(schedule.cycleStartedAt === undefined
          ? {}
          : { cycleStartedAt: schedule.cycleStartedAt }),
        ...(schedule.lastCompletedAt === undefined
          ? {}
          : { lastCompletedAt: schedule.lastCompletedAt }),
        ...(leader === undefined || (num(leader.until) ?? 0) <= now ? {} : {
          leader: {
            holder: str(leader.holder) ?? "",
            until: num(leader.until) ?? 0,
          },
        }),
      },
    }),
    ...(gate === undefined ? {} : { gate }),
    stragglers,
    secrets,
  };
}

function mostCommon(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}
