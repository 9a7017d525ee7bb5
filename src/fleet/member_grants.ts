/**
 * The shared grant's record in the store: a token sealed to its slot, client
 * and times on the way in, checked and opened on the way out; and which
 * published rejection a member still honours.
 *
 * @module
 */
import type { CachedGrant } from "../store.ts";
import type { FleetCredential } from "./link.ts";
import { seal, unseal } from "./seal.ts";
import type { SealKeyring } from "./distribution.ts";
import {
  type GrantKey,
  isStoredGrant,
  type RejectionRecord,
  type StoredGrant,
} from "./store.ts";

/** A credential as the fleet knows it: its namespace and keyed secret hash. */
export interface Known {
  /** The credential. */
  readonly credential: FleetCredential;
  /** Namespace: hash of token URL, scope and client id. */
  readonly ns: string;
  /** A keyed hash of the secret; "" without a seal key. */
  readonly secretHash: string;
  /**
   * When this instance replaced the credential's secret (0: configured at
   * start). Without a key a rejection names no secret, so one published
   * before the replacement is taken as the old secret's.
   */
  readonly learnedAt: number;
}

/** Warns once per key (the code when no key is given). */
export type WarnOnce = (
  code: string,
  message: string,
  label?: string,
  key?: string,
) => void;

/** A published rejection is honoured this long; then a probe may go through again. */
const REJECTION_HONOURED_MS = 300_000;

/**
 * The store key of a credential's pool slot.
 *
 * @param known The credential.
 * @param slot The pool slot.
 * @returns The key.
 */
export function grantKeyOf(known: Known, slot: number): GrantKey {
  return { credential: known.ns, slot };
}

/** Binds a sealed token to its slot, client and times: a writer without the key cannot extend it. */
function grantAad(
  key: GrantKey,
  grant: Pick<StoredGrant, "clientId" | "expiresAt" | "refreshAt">,
): string {
  return JSON.stringify([
    "grant/v2",
    key.credential,
    key.slot,
    grant.clientId,
    grant.expiresAt,
    grant.refreshAt,
  ]);
}

/**
 * The store's record of a grant: its token sealed with the ring's current
 * key, or as it is without a ring.
 *
 * @param key The slot.
 * @param grant The grant.
 * @param ring The token keys, if any.
 * @param now The clock (read once the token is sealed).
 * @param by This instance's id.
 * @returns The record.
 */
export async function toStoredGrant(
  key: GrantKey,
  grant: CachedGrant,
  ring: SealKeyring | undefined,
  now: () => number,
  by: string,
): Promise<StoredGrant> {
  return {
    token: ring === undefined ? grant.accessToken : await seal(
      ring.current.key,
      grant.accessToken,
      grantAad(key, grant),
    ),
    sealed: ring !== undefined,
    ...(ring === undefined ? {} : { keyId: ring.current.id }),
    clientId: grant.clientId,
    expiresAt: grant.expiresAt,
    refreshAt: grant.refreshAt,
    writtenAt: now(),
    writtenBy: by,
  };
}

/**
 * The grant of a store record, when it is one this instance can read, of
 * its client, and opens with its keys; else undefined, with a warning.
 *
 * @param key The slot.
 * @param stored The record, if any.
 * @param clientId The credential's client id.
 * @param ring The token keys, if any.
 * @param warnOnce Warns of a record that cannot be used.
 * @returns The grant, if usable.
 */
export async function fromStoredGrant(
  key: GrantKey,
  stored: StoredGrant | undefined,
  clientId: string,
  ring: SealKeyring | undefined,
  warnOnce: WarnOnce,
): Promise<CachedGrant | undefined> {
  if (stored === undefined) return undefined;
  if (!isStoredGrant(stored)) {
    warnOnce(
      "FLEET_RECORD_INVALID",
      "The fleet store holds a token record this version cannot read (written by another version or process); this instance ignores it and requests its own token.",
      undefined,
      "FLEET_RECORD_INVALID:grant",
    );
    return undefined;
  }
  if (stored.clientId !== clientId) return undefined;
  if (stored.sealed !== (ring !== undefined)) {
    warnOnce(
      "FLEET_SEAL_MISMATCH",
      stored.sealed
        ? "The fleet store holds sealed tokens but this instance has no sealKey; give every instance the same sealKey."
        : "The fleet store holds unsealed tokens but this instance has a sealKey; they are ignored. Give every instance the same sealKey.",
    );
    return undefined;
  }
  const accessToken = ring === undefined
    ? stored.token
    : await unsealToken(key, stored, ring);
  if (accessToken === undefined) {
    warnOnce(
      "FLEET_SEAL_MISMATCH",
      "A sealed token in the fleet store does not open with this instance's sealKey; give every instance the same sealKey.",
    );
    return undefined;
  }
  return {
    accessToken,
    expiresAt: stored.expiresAt,
    refreshAt: stored.refreshAt,
    clientId: stored.clientId,
  };
}

/** Opens a sealed token with the key its id names (any key, for a token without one). */
async function unsealToken(
  key: GrantKey,
  stored: StoredGrant,
  ring: SealKeyring,
): Promise<string | undefined> {
  const keys = typeof stored.keyId === "string"
    ? [ring.keys.get(stored.keyId)].filter((k) => k !== undefined)
    : [...ring.keys.values()];
  for (const { key: cryptoKey } of keys) {
    const plain = await unseal(cryptoKey, stored.token, grantAad(key, stored));
    if (plain !== undefined) return plain;
  }
  return undefined;
}

/**
 * The published rejection of a credential's secret that still stands.
 *
 * @param rejections Rejections read, by `namespace/secretHash`.
 * @param known The credential.
 * @param now The time.
 * @returns The rejection, while it is honoured.
 */
export function honouredRejection(
  rejections: ReadonlyMap<string, RejectionRecord>,
  known: Known,
  now: number,
): RejectionRecord | undefined {
  const record = rejections.get(`${known.ns}/${known.secretHash}`);
  return record !== undefined && now - record.at < REJECTION_HONOURED_MS &&
      (known.secretHash !== "" || record.at >= known.learnedAt)
    ? record
    : undefined;
}
