/**
 * Sealed secret distribution as a member follows it: the distributed secret
 * of each label read at each poll, opened, proven and only then used; a
 * failure reported in the heartbeat; and a secret the store lost (its data
 * gone) sealed back in by an instance that uses it.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { FleetCredential, FleetJoinContext } from "./link.ts";
import { unverifiedValue } from "./control.ts";
import {
  credentialDocument,
  credentialFingerprint,
  isSealedCredentialRecord,
  openCredential,
  reseedSealedCredential,
  type SealKeyring,
} from "./distribution.ts";
import type { WarnOnce } from "./member_grants.ts";
import type {
  FleetStore,
  InstanceCredential,
  InstanceRecord,
} from "./store.ts";

/** A distributed secret that failed its proof is tried again after this long. */
const SECRET_RETRY_MS = 5_000;

/** What the secret follower needs of its member. */
export interface SecretsPort {
  /** This instance's id. */
  readonly instanceId: string;
  /** The instance's clock. */
  readonly clock: Clock;
  /** How long a heartbeat stays valid, in ms (how long a lost secret waits to be re-seeded). */
  readonly heartbeatMs: number;
  /** Proves a distributed secret and puts it in place; absent: nothing is picked up. */
  readonly adopt: FleetJoinContext["adoptSecret"];
  /** The store (authenticated once the member is set up). */
  readonly store: () => FleetStore;
  /** The service namespace (known once the member is set up). */
  readonly service: () => string;
  /** The keys of distributed secrets, if any. */
  readonly keyring: () => SealKeyring | undefined;
  /** One bounded store call. */
  readonly call: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The heartbeats this version can read. */
  readonly listInstances: () => Promise<InstanceRecord[]>;
  /** Emits a warning. */
  readonly warn: (code: string, message: string, label?: string) => void;
  /** Emits a warning once per key. */
  readonly warnOnce: WarnOnce;
  /** Tracks a task that close awaits. */
  readonly track: (task: Promise<unknown>) => void;
}

/** Per label, the distributed secret loaded, being proven or refused. */
export class SecretFollower {
  readonly #port: SecretsPort;
  /**
   * Per label, the distributed secret in use (or found equal to the one in
   * use): its record's fingerprint, which the heartbeat reports, and
   * generation. The fingerprint decides what is new, never the counter: a
   * store that lost its data counts from 1 again.
   */
  readonly #secretLoaded = new Map<
    string,
    {
      fingerprint: string;
      generation: number;
      secretId?: string;
      retiredAt?: number;
    }
  >();
  /** Per label, a distributed secret being proven or that failed, when, and why. */
  readonly #secretAttempts = new Map<
    string,
    {
      fingerprint: string;
      at: number;
      running: boolean;
      reason: NonNullable<InstanceCredential["secretProblem"]>["reason"];
    }
  >();
  /** Per label, the last sealed text read and its fingerprint (one digest per new record). */
  readonly #sealedSeen = new Map<
    string,
    { sealed: string; fingerprint: string }
  >();
  /** Per label, when this instance first found the store without its sealed secret. */
  readonly #lostSince = new Map<string, number>();

  /**
   * A follower that has loaded nothing yet.
   *
   * @param port What the follower needs of its member.
   */
  constructor(port: SecretsPort) {
    this.#port = port;
  }

  /**
   * Forgets the secret loaded for a label (its credential was replaced), so
   * the heartbeat does not report a secret no longer in use.
   *
   * @param label The label.
   */
  forget(label: string): void {
    this.#secretLoaded.delete(label);
  }

  /**
   * Reads the distributed secrets of this instance's labels; a record whose
   * fingerprint differs from the one loaded (whatever its generation) is
   * opened and, when its secret differs from the one in use, handed to the
   * auth instance, which proves it before using it. A failure keeps the
   * current secret, with a warning, and the heartbeat says why.
   *
   * @param credentials The credentials in use.
   */
  async pickUp(credentials: readonly FleetCredential[]): Promise<void> {
    const adopt = this.#port.adopt;
    if (adopt === undefined) return;
    const { clock } = this.#port;
    for (const credential of credentials) {
      const { label } = credential;
      const document = await this.#port.call(() =>
        this.#port.store().readDocument(
          this.#port.service(),
          credentialDocument(label),
        )
      );
      if (document === undefined) {
        await this.#reseed(credential);
        continue;
      }
      this.#lostSince.delete(label);
      const record = document.value;
      const refused = unverifiedValue(document);
      if (isSealedCredentialRecord(refused)) {
        // No valid MAC for this instance's keys (warned by the wrapper):
        // reported as a straggler's reason, never opened.
        this.#secretAttempts.set(label, {
          fingerprint: await credentialFingerprint(refused),
          at: clock.now(),
          running: false,
          reason: "seal key mismatch",
        });
        continue;
      }
      if (!isSealedCredentialRecord(record) || record.label !== label) {
        this.#port.warnOnce(
          "FLEET_SECRET_INVALID",
          `The fleet store's distributed secret of "${label}" is not a record this version can read; this instance keeps its current credentials.`,
          label,
        );
        continue;
      }
      // Its provider secret was revoked by a two-secret rotation: never
      // loaded, so no instance offers it again (a promotion to the label is
      // refused until it is rotated).
      if (record.retiredAt !== undefined) {
        // Remembered with the secret in use, so a store that loses its data
        // gets it back retired, not in service (a promotion to a revoked
        // secret would break every call).
        const loaded = this.#secretLoaded.get(label);
        if (
          loaded !== undefined && loaded.retiredAt === undefined &&
          loaded.fingerprint === await credentialFingerprint(record)
        ) {
          this.#secretLoaded.set(label, {
            ...loaded,
            retiredAt: record.retiredAt,
          });
        }
        continue;
      }
      let seen = this.#sealedSeen.get(label);
      if (seen?.sealed !== record.sealed) {
        seen = {
          sealed: record.sealed,
          fingerprint: await credentialFingerprint(record),
        };
        this.#sealedSeen.set(label, seen);
      }
      const { fingerprint } = seen;
      if (this.#secretLoaded.get(label)?.fingerprint === fingerprint) continue;
      const attempt = this.#secretAttempts.get(label);
      if (
        attempt !== undefined && attempt.fingerprint === fingerprint &&
        (attempt.running || clock.now() - attempt.at < SECRET_RETRY_MS)
      ) {
        continue;
      }
      const note = (
        reason: NonNullable<InstanceCredential["secretProblem"]>["reason"],
      ) =>
        this.#secretAttempts.set(label, {
          fingerprint,
          at: clock.now(),
          running: reason === "proving",
          reason,
        });
      if (record.clientId !== credential.clientId) {
        note("client mismatch");
        this.#port.warnOnce(
          "FLEET_SECRET_CLIENT_MISMATCH",
          `The fleet store's secret generation ${record.generation} of "${label}" is for client ${record.clientId}, but this instance has ${credential.clientId}; it keeps its current credentials. Configure the same client ids on every instance.`,
          label,
          `FLEET_SECRET_CLIENT_MISMATCH:${label}:${fingerprint}`,
        );
        continue;
      }
      const keyring = this.#port.keyring();
      if (keyring === undefined) {
        note("no seal key");
        this.#port.warnOnce(
          "FLEET_SECRET_NO_KEY",
          `The fleet store holds a new sealed secret of "${label}" (generation ${record.generation}) but this instance has no seal key; it keeps its current credentials. Give it DUAL_SECRET_SEAL_KEY (the secretSealKeys option).`,
          label,
        );
        continue;
      }
      const opened = await openCredential(
        keyring,
        this.#port.service(),
        record,
      );
      if (typeof opened === "string") {
        note("seal key mismatch");
        this.#port.warnOnce(
          "FLEET_SECRET_SEAL_MISMATCH",
          opened === "unknown-key"
            ? `The new secret of "${label}" (generation ${record.generation}) is sealed with key id ${record.keyId}, which this instance does not have (it has ${
              [...keyring.keys.keys()].join(", ")
            }); it keeps its current credentials. Give it the same DUAL_SECRET_SEAL_KEY as the rotation.`
            : `The new secret of "${label}" (generation ${record.generation}) does not open with this instance's seal key ${record.keyId} (a wrong key with that id, or a tampered record); it keeps its current credentials. Give it the same DUAL_SECRET_SEAL_KEY as the rotation.`,
          label,
          `FLEET_SECRET_SEAL_MISMATCH:${label}:${fingerprint}`,
        );
        continue;
      }
      // The provider's id goes back with the secret if the store loses it.
      const loaded = {
        fingerprint,
        generation: record.generation,
        ...(record.secretId === undefined ? {} : { secretId: record.secretId }),
      };
      if (opened.equals(credential.clientSecret)) {
        // The secret this instance already uses (the operator proved it
        // before publishing it): nothing to prove or put in place.
        this.#secretLoaded.set(label, loaded);
        this.#secretAttempts.delete(label);
        continue;
      }
      note("proving");
      this.#port.track(
        adopt(label, record.clientId, opened).then(() => {
          this.#secretLoaded.set(label, loaded);
          this.#secretAttempts.delete(label);
        }, (error) => {
          note("proof failed");
          this.#port.warnOnce(
            "FLEET_SECRET_PROOF_FAILED",
            `The new secret of "${label}" (generation ${record.generation}) from the fleet store did not get a token (${
              error instanceof Error ? error.message : String(error)
            }); this instance keeps its current credentials and tries again in ${
              SECRET_RETRY_MS / 1000
            } s.`,
            label,
            `FLEET_SECRET_PROOF_FAILED:${label}:${fingerprint}`,
          );
        }),
      );
    }
  }

  /**
   * The store no longer holds the sealed secret of a label this instance
   * loaded from it: the store lost its data. The secret in use goes back in,
   * sealed, at the generation loaded (only where nothing is), so an operator
   * reading the store proves the credential again instead of failing on an
   * env file's stale secret, and the next rotation counts on from there.
   */
  async #reseed(credential: FleetCredential): Promise<void> {
    const { label } = credential;
    const loaded = this.#secretLoaded.get(label);
    const ring = this.#port.keyring();
    if (loaded === undefined || ring === undefined) return;
    // A straggler must not seal back a secret regenerated since (a dead
    // one: the instances that proved the newer one would find it in the
    // store, fail to prove it and keep theirs, and the store would hold a
    // dead secret). This one is a straggler when it could not load a newer
    // record, or when a live instance reports a later generation; the
    // heartbeats were lost with the store, so that is judged only after a
    // heartbeat's lifetime, by when every live instance has beaten again.
    if (this.#secretAttempts.has(label)) return;
    const now = this.#port.clock.now();
    const since = this.#lostSince.get(label) ?? now;
    this.#lostSince.set(label, since);
    if (now - since < this.#port.heartbeatMs) return;
    // Lapsed heartbeats count too: an instance whose beat is late (a slow
    // store) still proved that a later secret exists.
    const newer = (await this.#port.listInstances()).some((record) =>
      record.instanceId !== this.#port.instanceId &&
      (record.credentials.find((c) => c.label === label)?.secretGeneration ??
          0) > loaded.generation
    );
    if (newer) return;
    const written = await this.#port.call(() =>
      reseedSealedCredential({
        store: this.#port.store(),
        service: this.#port.service(),
        ring,
        by: `${this.#port.instanceId} (re-seeded)`,
        now: this.#port.clock.now(),
      }, {
        label: credential.label,
        clientId: credential.clientId,
        secret: credential.clientSecret,
        generation: loaded.generation,
        ...(loaded.secretId === undefined ? {} : { secretId: loaded.secretId }),
        ...(loaded.retiredAt === undefined
          ? {}
          : { retiredAt: loaded.retiredAt }),
      })
    );
    if (!written) return;
    this.#port.warn(
      "FLEET_SECRET_RESEEDED",
      `The fleet store had lost the sealed secret of "${credential.label}" (generation ${loaded.generation}) that this instance uses; it sealed it back into the store. Check why the store lost its data (a Redis without persistence, FLUSHALL, a restored backup).`,
      credential.label,
    );
    await this.#port.call(() =>
      this.#port.store().appendAudit(this.#port.service(), {
        at: this.#port.clock.now(),
        by: this.#port.instanceId,
        action: "secret.reseed",
        outcome: "ok",
        label: credential.label,
        detail: `generation ${loaded.generation}: the store had lost it`,
      })
    ).catch(() => undefined);
  }

  /**
   * What the heartbeat says of a label's distributed secret: loaded, or why not.
   *
   * @param label The label.
   * @returns The heartbeat's fields of it.
   */
  report(
    label: string,
  ): Pick<
    InstanceCredential,
    "secretGeneration" | "secretFingerprint" | "secretProblem"
  > {
    const loaded = this.#secretLoaded.get(label);
    const attempt = this.#secretAttempts.get(label);
    return {
      ...(loaded === undefined ? {} : {
        secretGeneration: loaded.generation,
        secretFingerprint: loaded.fingerprint,
      }),
      ...(attempt === undefined || attempt.fingerprint === loaded?.fingerprint
        ? {}
        : {
          secretProblem: {
            fingerprint: attempt.fingerprint,
            reason: attempt.reason,
          },
        }),
    };
  }
}
