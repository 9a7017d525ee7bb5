/**
 * A member's heartbeat and the fleet's roster: what the heartbeat says, one
 * instance keeping a digest of the live ids (the roster keeper, by lock),
 * the others listing heartbeats only when it changes, and the even
 * assignment of pool slots over the live instances.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { poolKey } from "../credential_slot.ts";
import type { CachedGrant } from "../store.ts";
import type { FleetCredential } from "./link.ts";
import { digest } from "./seal.ts";
import type {
  FleetStore,
  InstanceCredential,
  InstanceRecord,
} from "./store.ts";

/** The library version written into heartbeats. */
export const LIBRARY_VERSION = "0.1.0";

/** The roster: its lock (one keeper) and its document (a digest of the live instance ids). */
const ROSTER = "fleet/roster";

function hostName(): string | undefined {
  try {
    return (globalThis as unknown as { Deno?: { hostname(): string } }).Deno
      ?.hostname();
  } catch {
    return undefined; // No --allow-sys: the heartbeat goes without it.
  }
}

/**
 * A heartbeat record.
 *
 * @param beat Who beats, since when, what it serves and for how long it holds.
 * @returns The record.
 */
export function heartbeatRecord(beat: {
  readonly instanceId: string;
  readonly active: string;
  readonly credentials: () => InstanceCredential[];
  readonly startedAt: number;
  readonly now: number;
  readonly heartbeatMs: number;
}): InstanceRecord {
  const host = hostName();
  return {
    instanceId: beat.instanceId,
    ...(host === undefined ? {} : { host }),
    active: beat.active,
    credentials: beat.credentials(),
    version: LIBRARY_VERSION,
    startedAt: beat.startedAt,
    seenAt: beat.now,
    until: beat.now + beat.heartbeatMs,
  };
}

/**
 * The latest expiry of this instance's unexpired tokens of a credential.
 *
 * @param grants The local mirror, by pool key.
 * @param credential The credential.
 * @param tokensPerCredential The pool size.
 * @param now The time.
 * @returns The expiry, if any token is held.
 */
export function heldUntil(
  grants: ReadonlyMap<string, CachedGrant>,
  credential: FleetCredential,
  tokensPerCredential: number,
  now: number,
): number | undefined {
  let until: number | undefined;
  for (let slot = 0; slot < tokensPerCredential; slot++) {
    const grant = grants.get(poolKey(credential.label, slot));
    if (
      grant !== undefined && grant.clientId === credential.clientId &&
      grant.expiresAt > now &&
      (until === undefined || grant.expiresAt > until)
    ) {
      until = grant.expiresAt;
    }
  }
  return until;
}

/** What the roster needs of its member. */
export interface RosterPort {
  /** This instance's id. */
  readonly instanceId: string;
  /** The instance's clock. */
  readonly clock: Clock;
  /** How long a heartbeat stays valid, in ms (the roster lock's lifetime). */
  readonly heartbeatMs: number;
  /** Distinct tokens per credential across the fleet. */
  readonly tokensPerCredential: number;
  /** The store (authenticated once the member is set up). */
  readonly store: () => FleetStore;
  /** The service namespace (known once the member is set up). */
  readonly service: () => string;
  /** One bounded store call. */
  readonly call: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The heartbeats this version can read. */
  readonly listInstances: () => Promise<InstanceRecord[]>;
}

/** The live instances as this member last listed them, and its pool slots. */
export class Roster {
  readonly #port: RosterPort;
  #live: InstanceRecord[] = [];
  /** The roster digest the current `#live` was listed for (undefined: never listed). */
  #seen: string | undefined;
  /** The fence of this instance's hold of the roster lock, while it keeps the roster. */
  #fence: number | undefined;
  #assigned: readonly number[] = [0];

  /**
   * A roster of this instance alone, until it lists the others.
   *
   * @param port What the roster needs of its member.
   */
  constructor(port: RosterPort) {
    this.#port = port;
    this.#assign();
  }

  /** This instance's pool slots. */
  get assigned(): readonly number[] {
    return this.#assigned;
  }

  /** How many instances are live, this one included. */
  get size(): number {
    const ids = new Set(this.#live.map((record) => record.instanceId));
    ids.add(this.#port.instanceId);
    return ids.size;
  }

  /** Whether this instance keeps the roster (holds its lock). */
  get keeping(): boolean {
    return this.#fence !== undefined;
  }

  /**
   * Spreads the live instances evenly over the pool: by rank of instance id,
   * instance r of N serves slot r mod K when N >= K, else every slot s with
   * s mod N = r. Every instance computes the same from the same heartbeats.
   */
  #assign(): void {
    const k = this.#port.tokensPerCredential;
    const id = this.#port.instanceId;
    const ids = new Set(this.#live.map((record) => record.instanceId));
    ids.add(id);
    const sorted = [...ids].sort();
    const rank = sorted.indexOf(id);
    const n = sorted.length;
    if (n >= k) {
      this.#assigned = [rank % k];
      return;
    }
    const mine: number[] = [];
    for (let slot = rank; slot < k; slot += n) mine.push(slot);
    this.#assigned = mine;
  }

  /** Takes or renews the roster lock at each beat: one instance of the fleet keeps the roster. */
  async claim(): Promise<void> {
    const { call, store, service, instanceId, heartbeatMs } = this.#port;
    const lock = await call(() =>
      store().claimLock(service(), ROSTER, {
        holder: instanceId,
        ttlMs: Math.min(2 ** 31 - 1, Math.ceil(heartbeatMs)),
        note: "keeps the fleet's roster",
      })
    ).catch(() => undefined);
    this.#fence = lock?.held ? lock.fence : undefined;
  }

  /** Keeps the roster when this instance holds its lock, else follows it. */
  async sync(): Promise<void> {
    if (this.#fence !== undefined) await this.#keep();
    else await this.#follow();
  }

  /**
   * The roster keeper lists the heartbeats at each poll (the one instance
   * whose reads grow with the fleet) and records a digest of the live ids
   * when it changed; the others list only when the digest changes.
   */
  async #keep(): Promise<void> {
    const { call, store, service } = this.#port;
    await this.#list();
    const ids = this.#live.map((record) => record.instanceId);
    ids.push(this.#port.instanceId);
    const unique = [...new Set(ids)].sort();
    const roster = { count: unique.length, digest: await digest(...unique) };
    if (roster.digest === this.#seen) return;
    const document = await call(() => store().readDocument(service(), ROSTER));
    if (
      (document?.value as { digest?: unknown } | undefined)?.digest !==
        roster.digest
    ) {
      const written = await call(() =>
        store().writeDocument(
          service(),
          ROSTER,
          document?.version ?? 0,
          roster,
        )
      );
      if (!written) return; // Tried again at the next poll.
    }
    this.#seen = roster.digest;
  }

  /**
   * Lists the heartbeats only when the roster changed (or never listed):
   * a poll reads one roster entry, not one per instance of the fleet.
   */
  async #follow(): Promise<void> {
    const { call, store, service } = this.#port;
    const document = await call(() => store().readDocument(service(), ROSTER));
    const value = (document?.value as { digest?: unknown } | undefined)
      ?.digest;
    const current = typeof value === "string" ? value : "";
    if (current === this.#seen) return;
    await this.#list();
    this.#seen = current;
  }

  async #list(): Promise<void> {
    const instances = await this.#port.listInstances();
    this.#live = instances.filter((record) =>
      record.until > this.#port.clock.now()
    );
    this.#assign();
  }

  /** Releases the roster lock on leaving: another instance keeps the roster from its next beat. */
  async release(): Promise<void> {
    if (this.#fence === undefined) return;
    const { call, store, service, instanceId } = this.#port;
    const fence = this.#fence;
    await call(() => store().releaseLock(service(), ROSTER, instanceId, fence))
      .catch(() => undefined);
  }
}
