/**
 * The engine-agnostic fleet member: the local mirror (synchronous reads for
 * the hot path), the poll loop, the lease protocol for token requests, the
 * shared active label, published rejections, heartbeats and the even
 * assignment of pool slots. Every engine entry (`./kv`, `./redis`) wraps its
 * {@linkcode FleetStore} with {@linkcode createFleet}.
 *
 * @module
 */
import { poolKey } from "../credential_slot.ts";
import { CredentialRejectedError } from "../errors.ts";
import { delay } from "../retry.ts";
import type { CachedGrant } from "../store.ts";
import {
  type ActiveStore,
  type Fleet,
  type FleetCredential,
  type FleetJoinContext,
  type FleetLink,
  type FleetRequestMode,
  fleetSharedState,
  type FleetSummary,
  type TokenStore,
} from "./link.ts";
import { digest } from "./seal.ts";
import { authenticateStore, keyedSecretHash } from "./control.ts";
import {
  importSealKeyring,
  type SealKeyring,
  serviceNamespace,
} from "./distribution.ts";
import {
  type ActiveRecord,
  type FleetStore,
  type GrantKey,
  type InstanceRecord,
  isActiveRecord,
  isInstanceRecord,
  type RejectionRecord,
  type StoredGrant,
} from "./store.ts";
import {
  type FleetOptions,
  type Resolved,
  resolveFleetOptions,
} from "./member_options.ts";
import {
  fromStoredGrant,
  grantKeyOf,
  honouredRejection,
  type Known,
  toStoredGrant,
} from "./member_grants.ts";
import { heartbeatRecord, heldUntil, Roster } from "./member_roster.ts";
import { SecretFollower } from "./member_secrets.ts";
import { PollLoop } from "./member_poll.ts";

export { FLEET_DEFAULTS, type FleetOptions } from "./member_options.ts";
export { LIBRARY_VERSION } from "./member_roster.ts";

/** How many lease lengths a waiter waits at most before it requests on its own. */
const WAIT_LEASES = 3;
/** How often a waiter re-reads the store for the lease holder's grant. */
const WAIT_STEP_MS = 50;

class StoreTimeoutError extends Error {
  constructor(ms: number) {
    super(`the fleet store did not answer within ${ms} ms`);
  }
}

/**
 * Wraps a store as a {@linkcode Fleet} for the `shared` option of
 * `createDualSecretAuth`.
 *
 * @param store The engine.
 * @param options Timing, instance id and seal key.
 * @param onClose Runs when the auth instance closed and the member left.
 * @returns The fleet.
 * @throws {ConfigError} When an option is invalid.
 *
 * @example
 * ```ts
 * import { createFleet } from "./member.ts";
 * import { createMemoryFleetStore } from "./store.ts";
 * const fleet = createFleet(createMemoryFleetStore(), { instanceId: "web-1" });
 * if (fleet.instanceId !== "web-1") throw new Error();
 * ```
 */
export function createFleet(
  store: FleetStore,
  options: FleetOptions = {},
  onClose?: () => Promise<void>,
): Fleet {
  const resolved = resolveFleetOptions(options);
  return fleetSharedState(
    resolved.instanceId,
    (context) => new Member(store, resolved, context),
    onClose,
  );
}

class Member implements FleetLink {
  /** The engine; wrapped by `authenticateStore` once a seal key is imported. */
  #store: FleetStore;
  readonly #options: Resolved;
  readonly #context: FleetJoinContext;
  readonly #id: string;
  readonly #grants = new Map<string, CachedGrant>();
  readonly #known = new Map<string, Known>();
  readonly #rejections = new Map<string, RejectionRecord>();
  readonly #lastUsed = new Map<string, number>();
  #usedLabel: string | undefined;
  #usedAt = 0;
  readonly #closer = new AbortController();
  readonly #startedAt: number;
  #credentials: readonly FleetCredential[];
  #service = "";
  /** The keys tokens are sealed with (the first) and opened with (any), if any. */
  #sealKey: SealKeyring | undefined;
  #keyring: SealKeyring | undefined;
  /** The keys of the control plane's MACs and of the keyed secret hash, if any. */
  #control: SealKeyring | undefined;
  #ready: Promise<void>;
  #active: string;
  #generation = 0;
  /** When the active record this instance follows (or wrote) was written, by its writer's clock. */
  #activeAt: number | undefined;
  #pendingActive: { label: string; reason: ActiveRecord["reason"] } | undefined;
  /** Whether the configured credentials were learnt (later ones replace them). */
  #learnedOnce = false;
  #healthy = true;
  #lastSyncAt: number | undefined;
  #nextBeatAt = 0;
  #unwatch: (() => void) | undefined;
  #closed = false;
  #warned = new Set<string>();
  readonly #secrets: SecretFollower;
  readonly #loop: PollLoop;
  readonly #roster: Roster;

  constructor(store: FleetStore, options: Resolved, context: FleetJoinContext) {
    this.#store = store;
    this.#options = options;
    this.#context = context;
    this.#id = options.instanceId;
    this.#credentials = context.credentials;
    this.#active = context.active;
    this.#startedAt = context.clock.now();
    this.#roster = new Roster({
      instanceId: this.#id,
      clock: context.clock,
      heartbeatMs: options.heartbeatMs,
      tokensPerCredential: context.tokensPerCredential,
      store: () => this.#store,
      service: () => this.#service,
      call: (fn) => this.#call(fn),
      listInstances: () => this.#listInstances(),
    });
    this.#secrets = new SecretFollower({
      instanceId: this.#id,
      clock: context.clock,
      heartbeatMs: options.heartbeatMs,
      adopt: context.adoptSecret,
      store: () => this.#store,
      service: () => this.#service,
      keyring: () => this.#keyring,
      call: (fn) => this.#call(fn),
      listInstances: () => this.#listInstances(),
      warn: (code, message, label) => context.warn(code, message, label),
      warnOnce: (code, message, label, key) =>
        this.#warnOnce(code, message, label, key),
      track: (task) => this.#track(task),
    });
    this.#ready = this.#prepare().catch((error) => {
      this.#warnOnce(
        "FLEET_SETUP_FAILED",
        `The fleet could not be set up (${
          error instanceof Error ? error.message : error
        }); this instance serves on its own.`,
      );
      throw error;
    });
    this.#ready.catch(() => undefined);
    this.#loop = new PollLoop({
      clock: context.clock,
      pollIntervalMs: options.pollIntervalMs,
      poll: () => this.#poll(),
      closed: () => this.#closed,
    });
    this.#loop.schedule(0);
  }

  readonly tokens: TokenStore = {
    get: (key) => this.#grants.get(key),
    set: (key, grant) => {
      // A token this instance dropped (a 401) never comes back to it.
      if (!this.#revoked.has(grant.accessToken)) this.#grants.set(key, grant);
    },
    delete: (key) => {
      const grant = this.#grants.get(key);
      this.#grants.delete(key);
      if (grant !== undefined) this.#dropShared(key, grant);
    },
  };

  /**
   * Access tokens this instance dropped (a 401 said they are dead), until
   * they expire: never served again, from the store or from a poll that
   * read the store before the drop landed.
   */
  readonly #revoked = new Map<string, number>();
  /** Per pool key, the removal of a dropped grant from the store, while it runs. */
  readonly #drops = new Map<string, Promise<void>>();

  readonly active: ActiveStore = {
    get: () => this.#active,
    set: (label) => void (this.#active = label),
  };

  async #prepare(): Promise<void> {
    const { tokenUrl, scope } = this.#context;
    this.#service = await serviceNamespace(tokenUrl, scope);
    if (this.#options.secretSealKeys !== undefined) {
      this.#keyring = await importSealKeyring(this.#options.secretSealKeys);
    }
    // One keyring: without a token key of their own, tokens are sealed
    // with the secrets' keys.
    this.#sealKey = this.#options.sealKey === undefined
      ? this.#keyring
      : await importSealKeyring(this.#options.sealKey);
    // The control plane is authenticated with the fleet's seal keys (the
    // secrets' keyring, else the tokens' key): a store writer without them
    // cannot steer this instance.
    const control = this.#keyring ?? this.#sealKey;
    if (control !== undefined) {
      this.#control = control;
      this.#store = authenticateStore(
        this.#store,
        control,
        (kind, where, why) =>
          this.#warnOnce(
            "FLEET_RECORD_FORGED",
            `A ${kind} record in the fleet store (${where}) is ignored: ${why}. It was written without the fleet's seal key, or with another one. Check who writes to the store, and give every instance and operator the same seal key (DUAL_SECRET_SEAL_KEY, or sealKey).`,
            undefined,
            `FLEET_RECORD_FORGED:${kind}`,
          ),
      );
    }
    await this.#learn(this.#credentials);
    // Where the engine announces changes (Redis pub/sub), poll at once on
    // one; the poll interval stays the bound when announcements are lost.
    if (!this.#closed) {
      this.#unwatch = this.#store.watch?.(
        this.#service,
        [],
        () => this.#loop.soon(),
      );
    }
  }

  async #learn(credentials: readonly FleetCredential[]): Promise<void> {
    const { tokenUrl, scope } = this.#context;
    for (const credential of credentials) {
      // Two secrets of one client (Okta, Entra ID, Cognito, Keycloak): the
      // labels share a client id, so the label keeps their tokens, slots and
      // heartbeat figures apart (the revoke gate asks about one secret).
      const shared = credentials.some((other) =>
        other.label !== credential.label &&
        other.clientId === credential.clientId
      );
      const ns = await digest(
        "credential",
        tokenUrl,
        scope ?? "",
        credential.clientId,
        ...(shared ? [credential.label] : []),
      );
      // Keyed, so the store's reader cannot test candidate secrets against
      // it; without a key there is no hash: a rejection names the credential.
      const secretHash = this.#control === undefined
        ? ""
        : await keyedSecretHash(
          this.#control,
          ns,
          credential.clientSecret.reveal(),
        );
      const previous = this.#known.get(credential.label);
      const learnedAt = previous !== undefined
        ? previous.learnedAt
        : this.#learnedOnce
        ? this.#context.clock.now()
        : 0;
      this.#known.set(credential.label, {
        credential,
        ns,
        secretHash,
        learnedAt,
      });
    }
    this.#learnedOnce = true;
  }

  #warnOnce(code: string, message: string, label?: string, key = code): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#context.warn(code, message, label);
  }

  /** One store call, bounded by `storeTimeoutMs`; a failure marks the store unavailable. */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    const { clock } = this.#context;
    const ms = this.#options.storeTimeoutMs;
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => reject(new StoreTimeoutError(ms)), ms);
    });
    try {
      const result = await Promise.race([fn(), timeout]);
      if (!this.#healthy) {
        this.#healthy = true;
        this.#warned.delete("FLEET_STORE_UNAVAILABLE");
        this.#context.warn(
          "FLEET_STORE_RECOVERED",
          "The fleet store answers again; this instance shares tokens with the fleet again.",
        );
      }
      return result;
    } catch (error) {
      this.#healthy = false;
      this.#warnOnce(
        "FLEET_STORE_UNAVAILABLE",
        `The fleet store failed (${
          error instanceof Error ? error.message : String(error)
        }); this instance serves from its own cache and requests its own tokens until the store answers again.`,
      );
      throw error;
    } finally {
      clock.clearTimeout(timer);
    }
  }

  /** Waits for setup, at most one store timeout; false when setup is not done. */
  async #prepared(): Promise<boolean> {
    const { clock } = this.#context;
    let timer: unknown;
    try {
      return await Promise.race([
        this.#ready.then(() => true, () => false),
        new Promise<boolean>((resolve) => {
          timer = clock.setTimeout(
            () => resolve(false),
            this.#options.storeTimeoutMs,
          );
        }),
      ]);
    } finally {
      clock.clearTimeout(timer);
    }
  }

  #toStored(key: GrantKey, grant: CachedGrant): Promise<StoredGrant> {
    return toStoredGrant(
      key,
      grant,
      this.#sealKey,
      () => this.#context.clock.now(),
      this.#id,
    );
  }

  #fromStored(
    key: GrantKey,
    stored: StoredGrant | undefined,
    known: Known,
  ): Promise<CachedGrant | undefined> {
    return fromStoredGrant(
      key,
      stored,
      known.credential.clientId,
      this.#sealKey,
      (code, message, label, warnKey) =>
        this.#warnOnce(code, message, label, warnKey),
    );
  }

  #rejectionOf(known: Known, now: number): RejectionRecord | undefined {
    return honouredRejection(this.#rejections, known, now);
  }

  #noteRejections(records: readonly RejectionRecord[], ns?: string): void {
    for (const key of [...this.#rejections.keys()]) {
      if (ns === undefined || key.startsWith(`${ns}/`)) {
        this.#rejections.delete(key);
      }
    }
    for (const record of records) {
      this.#rejections.set(`${record.credential}/${record.secretHash}`, record);
    }
  }

  slotsOf(_label: string): readonly number[] {
    return this.#roster.assigned;
  }

  async request(
    label: string,
    slot: number,
    mode: FleetRequestMode,
    send: () => Promise<CachedGrant>,
  ): Promise<CachedGrant> {
    const known = (await this.#prepared()) ? this.#known.get(label) : undefined;
    if (known === undefined || this.#closed) return await send();
    // A replay after a 401 comes here: the dead grant leaves the store
    // first, so neither this instance nor another gets it back (bounded by
    // the store timeout; on a failure the tombstone still keeps it out here).
    await this.#drops.get(poolKey(label, slot));
    const { clock } = this.#context;
    const started = clock.now();
    const published = this.#rejectionOf(known, started);
    // A probe goes on: when nothing serves, one instance of the fleet (the
    // lease holder) must try the credential again, or a brief fault would
    // stop the whole fleet for as long as the rejection is honoured.
    if (published !== undefined && !mode.verify && !mode.probe) {
      throw this.#asError(published);
    }
    const key = grantKeyOf(known, slot);
    if (!this.#healthy) {
      // The store failed lately: serve on our own at once, without waiting
      // on it; the poll finds out when it is back.
      return await this.#sendAndShare(known, key, send, false, false);
    }
    // A dead holder's lease lapses within leaseMs and one waiter takes it
    // over; past a few lease lengths the store itself is suspect.
    const deadline = clock.now() + WAIT_LEASES * this.#options.leaseMs;
    for (let lap = 0;; lap++) {
      const now = clock.now();
      try {
        if (!mode.verify) {
          const grant = await this.#sharedGrant(known, key, mode, now);
          if (grant !== undefined) return grant;
        }
        const leased = await this.#call(() =>
          this.#store.tryLease(key, {
            holder: this.#id,
            until: now + this.#options.leaseMs,
          }, now)
        );
        if (leased && !mode.verify) {
          // The previous holder may have written and released between our
          // read and our lease: read again before sending.
          const grant = await this.#sharedGrant(known, key, mode, now);
          if (grant !== undefined) {
            await this.#release(key);
            return grant;
          }
        }
        if (!mode.verify && (leased || lap > 0)) {
          // Read after taking the lease: a holder that was rejected published
          // before it released, so this sees it and sends no second request.
          const records = await this.#call(() =>
            this.#store.readRejections([known.ns])
          );
          this.#noteRejections(records, known.ns);
          const rejection = this.#rejectionOf(known, clock.now());
          // A prober holding the lease sends; one waiting for the holder's
          // probe gives up only on a rejection published since it started.
          const stands = rejection !== undefined &&
            (!mode.probe || (!leased && rejection.at >= started));
          if (stands) {
            if (leased) await this.#release(key);
            throw this.#asError(rejection!);
          }
        }
        if (leased || mode.verify) {
          return await this.#sendAndShare(known, key, send, leased);
        }
      } catch (error) {
        if (error instanceof CredentialRejectedError) throw error;
        // The store failed: serve on our own.
        return await this.#sendAndShare(known, key, send, false);
      }
      if (clock.now() >= deadline) {
        // The holder is slow or gone: do not keep callers waiting on it.
        return await this.#sendAndShare(known, key, send, false);
      }
      await delay(
        Math.min(WAIT_STEP_MS, this.#options.pollIntervalMs),
        clock,
        this.#closer.signal,
      ).catch(() => undefined);
      if (this.#closed) return await send();
    }
  }

  /** The store's grant of a slot if it serves this request (fresh enough), mirrored locally. */
  async #sharedGrant(
    known: Known,
    key: GrantKey,
    mode: FleetRequestMode,
    now: number,
  ): Promise<CachedGrant | undefined> {
    const [record] = await this.#call(() => this.#store.readSlots([key]));
    const grant = await this.#fromStored(key, record.grant, known);
    const enough = grant !== undefined &&
      !this.#revoked.has(grant.accessToken) &&
      (mode.background ? now < grant.refreshAt : now < grant.expiresAt);
    if (!enough) return undefined;
    this.#grants.set(poolKey(known.credential.label, key.slot), grant);
    return grant;
  }

  #asError(record: RejectionRecord): CredentialRejectedError {
    const label = this.#labelOf(record.credential) ?? record.label;
    return new CredentialRejectedError(label, {
      status: record.status ?? 400,
      oauthError: record.oauthError,
    });
  }

  #labelOf(ns: string): string | undefined {
    for (const [label, known] of this.#known) {
      if (known.ns === ns) return label;
    }
    return undefined;
  }

  async #sendAndShare(
    known: Known,
    key: GrantKey,
    send: () => Promise<CachedGrant>,
    leased: boolean,
    awaitShare = true,
  ): Promise<CachedGrant> {
    let grant: CachedGrant;
    try {
      grant = await send();
    } catch (error) {
      if (error instanceof CredentialRejectedError) {
        await this.#publish(known, error).catch(() => undefined);
      }
      if (leased) await this.#release(key);
      throw error;
    }
    this.#grants.set(poolKey(known.credential.label, key.slot), grant);
    // Sharing is best-effort: the caller has its token either way. A store
    // seen down is not waited for.
    const sharing = this.#share(known, key, grant);
    if (awaitShare) await sharing;
    else this.#track(sharing);
    return grant;
  }

  async #share(known: Known, key: GrantKey, grant: CachedGrant): Promise<void> {
    try {
      const stored = await this.#toStored(key, grant);
      await this.#call(() => this.#store.writeGrant(key, stored, this.#id));
      if (this.#rejections.has(`${known.ns}/${known.secretHash}`)) {
        // The secret works after all (the rejection was a passing fault).
        await this.#call(() =>
          this.#store.clearRejections(known.ns, undefined)
        );
        this.#noteRejections([], known.ns);
      }
    } catch {
      // Warned by #call.
    }
  }

  async #release(key: GrantKey): Promise<void> {
    await this.#call(() => this.#store.releaseLease(key, this.#id)).catch(
      () => undefined,
    );
  }

  async #publish(known: Known, error: CredentialRejectedError): Promise<void> {
    const record: RejectionRecord = {
      credential: known.ns,
      label: known.credential.label,
      clientId: known.credential.clientId,
      secretHash: known.secretHash,
      at: this.#context.clock.now(),
      by: this.#id,
      status: error.status,
      oauthError: error.oauthError,
    };
    this.#rejections.set(`${known.ns}/${known.secretHash}`, record);
    const first = await this.#call(() => this.#store.publishRejection(record));
    if (!first) {
      // Rejected again (a probe): renew the record, so those waiting for
      // this probe see a rejection newer than their start.
      await this.#call(() => this.#store.clearRejections(known.ns, undefined));
      await this.#call(() => this.#store.publishRejection(record));
    }
  }

  #dropShared(key: string, grant: CachedGrant): void {
    // An invalidated token must not come back from the store.
    this.#revoked.set(grant.accessToken, grant.expiresAt);
    const [label, index] = key.includes("#")
      ? [
        key.slice(0, key.lastIndexOf("#")),
        Number(key.slice(key.lastIndexOf("#") + 1)),
      ]
      : [key, 0];
    const known = this.#known.get(label);
    if (known === undefined || this.#closed) return;
    const grantKey = grantKeyOf(known, index);
    const task = (async () => {
      const [record] = await this.#call(() =>
        this.#store.readSlots([grantKey])
      );
      const stored = await this.#fromStored(grantKey, record.grant, known);
      if (stored?.accessToken === grant.accessToken && record.grant) {
        // Compare-and-delete: only this very grant, never a newer one
        // another instance wrote meanwhile.
        const token = record.grant.token;
        await this.#call(() => this.#store.dropGrant(grantKey, token));
      }
    })().catch(() => undefined).finally(() => {
      if (this.#drops.get(key) === task) this.#drops.delete(key);
    });
    this.#drops.set(key, task);
    this.#track(task);
  }

  readonly #tasks = new Set<Promise<unknown>>();
  #track(task: Promise<unknown>): void {
    const tracked = task.catch(() => undefined).finally(() =>
      this.#tasks.delete(tracked)
    );
    this.#tasks.add(tracked);
  }

  failedOver(to: string): void {
    this.#active = to;
    this.#pendingActive = { label: to, reason: "failover" };
    this.#track(this.#publishActive());
  }

  async rotated(to: string): Promise<void> {
    this.#active = to;
    this.#pendingActive = { label: to, reason: "rotate" };
    await this.#publishActive().catch(() => undefined);
    if (this.#pendingActive?.label === to) {
      this.#context.warn(
        "FLEET_ACTIVE_NOT_SHARED",
        `"${to}" is active on this instance, but the fleet store could not record it yet; it is retried at every poll.`,
        to,
      );
    }
  }

  /** Writes the pending active label with compare-and-set; on a lost race, adopts the winner. */
  async #publishActive(): Promise<void> {
    if (!(await this.#prepared())) return;
    for (let lap = 0; lap < 5; lap++) {
      const pending = this.#pendingActive;
      if (pending === undefined) return;
      const current = await this.#readActive();
      if (current === "invalid") return;
      const generation = current?.generation ?? 0;
      if (current !== undefined && current.label === pending.label) {
        this.#generation = generation;
        this.#activeAt = current.at;
        this.#pendingActive = undefined;
        return;
      }
      if (
        pending.reason !== "rotate" && generation > this.#generation &&
        current !== undefined && this.#known.has(current.label)
      ) {
        // Someone moved the fleet on since we last looked: follow them.
        this.#adoptActive(current);
        this.#pendingActive = undefined;
        return;
      }
      const next: ActiveRecord = {
        label: pending.label,
        // Past both: a store restored from an old backup (its generation
        // went back) is overwritten with a generation every instance follows.
        generation: Math.max(generation, this.#generation) + 1,
        by: this.#id,
        at: this.#context.clock.now(),
        reason: pending.reason,
      };
      const won = await this.#call(() =>
        this.#store.compareAndSetActive(this.#service, generation, next)
      );
      if (won) {
        this.#generation = next.generation;
        this.#activeAt = next.at;
        if (this.#pendingActive === pending) this.#pendingActive = undefined;
        return;
      }
    }
  }

  /** The heartbeats this version can read; others (another version's, a hostile writer's) are skipped. */
  async #listInstances(): Promise<InstanceRecord[]> {
    const all = await this.#call(() => this.#store.listInstances());
    const readable = all.filter(isInstanceRecord);
    if (readable.length < all.length) {
      this.#warnOnce(
        "FLEET_RECORD_INVALID",
        `${
          all.length - readable.length
        } heartbeat(s) in the fleet store are not records this version can read; they are left out of the instances and of the pool assignment.`,
        undefined,
        "FLEET_RECORD_INVALID:instance",
      );
    }
    return readable;
  }

  /** The shared active record, or `"invalid"` (with a warning) when it is malformed. */
  async #readActive(): Promise<ActiveRecord | undefined | "invalid"> {
    const record = await this.#call(() =>
      this.#store.readActive(this.#service)
    );
    if (record === undefined || isActiveRecord(record)) return record;
    this.#warnOnce(
      "FLEET_RECORD_INVALID",
      "The fleet store's active credential record is not one this version can read; this instance keeps its active credential. Run `deno task promote` with --kv or --redis to write a valid one.",
      undefined,
      "FLEET_RECORD_INVALID:active",
    );
    return "invalid";
  }

  #adoptActive(record: ActiveRecord): void {
    this.#generation = record.generation;
    this.#activeAt = record.at;
    if (this.#known.has(record.label)) {
      this.#active = record.label;
    } else {
      this.#warnOnce(
        "FLEET_ACTIVE_UNKNOWN",
        `The fleet's active credential "${record.label}" is not configured on this instance; it keeps "${this.#active}". Configure the same labels on every instance.`,
        record.label,
      );
    }
  }

  used(label: string, now: number): void {
    // On the hot path: two field writes; the map is written on a change of label.
    if (label !== this.#usedLabel) {
      if (this.#usedLabel !== undefined) {
        this.#lastUsed.set(this.#usedLabel, this.#usedAt);
      }
      this.#usedLabel = label;
    }
    this.#usedAt = now;
  }

  #lastUsedOf(label: string): number | undefined {
    return label === this.#usedLabel ? this.#usedAt : this.#lastUsed.get(label);
  }

  credentialsChanged(credentials: readonly FleetCredential[]): void {
    this.#credentials = credentials;
    // A removed or replaced credential is forgotten at once (its requests
    // bypass the fleet until its namespace and secret hash are learnt), so
    // the old secret's published rejection never applies to the new one;
    // it stays published for instances still on the old secret.
    for (const [label, known] of [...this.#known]) {
      const now = credentials.find((c) => c.label === label);
      if (
        now === undefined || now.clientId !== known.credential.clientId ||
        !now.clientSecret.equals(known.credential.clientSecret)
      ) {
        this.#known.delete(label);
        // The heartbeat must not report a secret no longer in use: the next
        // poll compares the store's record with the new secret again.
        this.#secrets.forget(label);
      }
    }
    const learning = this.#ready.then(() => this.#learn(credentials));
    this.#ready = learning;
    learning.catch(() => undefined);
  }

  async instances(): Promise<InstanceRecord[]> {
    const now = this.#context.clock.now();
    const all = await this.#listInstances();
    return all.filter((record) => record.until > now).sort((a, b) =>
      a.instanceId.localeCompare(b.instanceId)
    );
  }

  summary(): FleetSummary {
    const slots: Record<string, readonly number[]> = {};
    for (const credential of this.#credentials) {
      slots[credential.label] = this.slotsOf(credential.label);
    }
    return {
      instanceId: this.#id,
      store: this.#healthy ? "ok" : "unavailable",
      instances: this.#roster.size,
      activeGeneration: this.#generation,
      slots,
      ...(this.#lastSyncAt === undefined
        ? {}
        : { lastSyncAt: this.#lastSyncAt }),
    };
  }

  async #poll(): Promise<void> {
    if (!(await this.#prepared()) || this.#closed) return;
    const { clock } = this.#context;
    const now = clock.now();
    if (now >= this.#nextBeatAt) {
      await this.#call(() => this.#store.heartbeat(this.#heartbeat(now)));
      this.#nextBeatAt = now + this.#options.heartbeatMs / 3;
      await this.#roster.claim();
    }
    await this.#roster.sync();
    if (this.#pendingActive !== undefined) await this.#publishActive();
    const active = await this.#readActive();
    if (active === "invalid") {
      // Neither followed nor overwritten: the operator repairs it (promote).
    } else if (active === undefined) {
      this.#pendingActive ??= { label: this.#active, reason: "initial" };
      await this.#publishActive();
    } else if (active.generation > this.#generation) {
      this.#adoptActive(active);
    } else if (
      active.label !== this.#active && this.#activeAt !== undefined &&
      Number.isFinite(active.at) && active.at > this.#activeAt
    ) {
      // Not above this instance's generation, yet written after the record
      // it follows: the store lost its data and a promotion wrote since
      // (counting from 1 again). Followed, not overwritten as a store
      // restored from an old backup would be.
      this.#adoptActive(active);
    } else if (
      active.generation < this.#generation && active.label !== this.#active
    ) {
      // The store went back (restored, or written by another process): do
      // not follow a label this instance has not seen proven; republish its
      // own above both generations, so later rotations reach it again.
      this.#pendingActive ??= { label: this.#active, reason: "initial" };
      await this.#publishActive();
    } else if (active.generation < this.#generation) {
      this.#generation = active.generation;
      this.#activeAt = active.at;
    }
    for (const [token, expiresAt] of this.#revoked) {
      if (expiresAt <= now) this.#revoked.delete(token);
    }
    await this.#secrets.pickUp(this.#credentials);
    const known = [...this.#known.values()];
    const rejections = await this.#call(() =>
      this.#store.readRejections(known.map((k) => k.ns))
    );
    this.#noteRejections(rejections);
    const wanted = known.flatMap((k) =>
      this.slotsOf(k.credential.label).map((slot) => ({ known: k, slot }))
    );
    const records = await this.#call(() =>
      this.#store.readSlots(wanted.map((w) => grantKeyOf(w.known, w.slot)))
    );
    for (let i = 0; i < wanted.length; i++) {
      const { known: k, slot } = wanted[i];
      const key = grantKeyOf(k, slot);
      const grant = await this.#fromStored(key, records[i].grant, k);
      const local = poolKey(k.credential.label, slot);
      const mine = this.#grants.get(local);
      if (
        grant !== undefined && clock.now() < grant.expiresAt &&
        !this.#revoked.has(grant.accessToken) &&
        (mine === undefined || mine.clientId !== grant.clientId ||
          grant.expiresAt > mine.expiresAt)
      ) {
        this.#grants.set(local, grant);
      }
    }
    this.#lastSyncAt = clock.now();
  }

  #heartbeat(now: number): InstanceRecord {
    return heartbeatRecord({
      instanceId: this.#id,
      active: this.#active,
      credentials: () =>
        this.#credentials.map((credential) => {
          const lastUsedAt = this.#lastUsedOf(credential.label);
          const held = heldUntil(
            this.#grants,
            credential,
            this.#context.tokensPerCredential,
            now,
          );
          return {
            label: credential.label,
            clientId: credential.clientId,
            slots: this.slotsOf(credential.label),
            ...(lastUsedAt === undefined ? {} : { lastUsedAt }),
            ...(held === undefined ? {} : { heldUntil: held }),
            ...this.#secrets.report(credential.label),
          };
        }),
      startedAt: this.#startedAt,
      now,
      heartbeatMs: this.#options.heartbeatMs,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closer.abort();
    await this.#loop.stop();
    await Promise.allSettled([...this.#tasks]);
    await this.#ready.catch(() => undefined);
    await this.#call(() => this.#store.removeInstance(this.#id)).catch(
      () => undefined,
    );
    // Another instance keeps the roster from its next beat.
    await this.#roster.release();
    // Last: @deno/kv (Node, Bun) can leave an operation still in flight
    // unsettled forever when a watch is cancelled beside it.
    this.#unwatch?.();
  }
}
