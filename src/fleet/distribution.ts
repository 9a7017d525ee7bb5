/**
 * Sealed secret distribution: a rotation publishes a credential's new secret
 * into the fleet store, sealed with AES-256-GCM under a seal key that only
 * the operator and the instances hold (`DUAL_SECRET_SEAL_KEY`); instances pick
 * a newer generation up, prove it with a token request, and only then use it.
 *
 * The additional data binds each ciphertext to its service, label, client id
 * and generation, so a sealed secret copied to another record (or replayed as
 * an older generation) does not open. Each seal key has an id (written next to
 * the ciphertext), so a fleet can hold the next key before the operator seals
 * with it: give instances `secretSealKeys: [next, current]` first.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { Secret } from "../secret.ts";
import { digest, importSealKey, seal, sealKeyBytes, unseal } from "./seal.ts";
import type { ControlStore } from "./store.ts";

/** The name of the environment variable the tasks read the seal key from. */
export const SEAL_KEY_VARIABLE = "DUAL_SECRET_SEAL_KEY";

/** One seal key with its id. */
export interface SealKey {
  /** The key's id: given as `id:base64`, or derived from the key (a digest). */
  readonly id: string;
  /** The WebCrypto AES-256-GCM key. */
  readonly key: CryptoKey;
  /**
   * The control plane's MAC key (HMAC-SHA-256), derived from the seal key
   * with HKDF-SHA-256: it authenticates heartbeats, the active record,
   * documents, audit entries and rejections (see `./control.ts`).
   */
  readonly control: CryptoKey;
}

/** Seal keys: the first seals, every one opens. */
export interface SealKeyring {
  /** The key new secrets are sealed with. */
  readonly current: SealKey;
  /** Every key, by id. */
  readonly keys: ReadonlyMap<string, SealKey>;
}

/**
 * Imports seal keys: each base64 of 32 bytes (`openssl rand -base64 32`),
 * optionally prefixed by its id and a colon (`2026-12:BASE64`); without a
 * prefix the id is derived from the key. Several keys may also be given as
 * one comma-separated text (as in `DUAL_SECRET_SEAL_KEY`).
 *
 * @param input One key, a comma-separated list, or a list; the first seals.
 * @returns The keyring.
 * @throws {ConfigError} When a key is not 32 bytes of base64.
 *
 * @example
 * ```ts
 * import { importSealKeyring } from "./distribution.ts";
 * const ring = await importSealKeyring(`k1:${btoa("k".repeat(32))}`);
 * if (ring.current.id !== "k1") throw new Error();
 * ```
 */
export async function importSealKeyring(
  input: string | readonly string[],
): Promise<SealKeyring> {
  const texts = (typeof input === "string" ? input.split(",") : input)
    .map((text) => text.trim()).filter((text) => text !== "");
  if (texts.length === 0) {
    throw new ConfigError(
      SEAL_KEY_VARIABLE,
      "is empty; generate a key with `openssl rand -base64 32`",
    );
  }
  const keys = new Map<string, SealKey>();
  let current: SealKey | undefined;
  for (const text of texts) {
    const colon = text.indexOf(":");
    const material = colon === -1 ? text : text.slice(colon + 1);
    let key: CryptoKey;
    try {
      key = await importSealKey(material);
    } catch (error) {
      throw new ConfigError(
        SEAL_KEY_VARIABLE,
        error instanceof Error ? error.message : String(error),
      );
    }
    const id = colon === -1
      ? (await digest("seal-key-id", material.trim())).slice(0, 12)
      : text.slice(0, colon);
    const entry = { id, key, control: await deriveControlKey(material) };
    current ??= entry;
    keys.set(id, entry);
  }
  return Object.freeze({ current: current!, keys });
}

/** HKDF-SHA-256 of the seal key to an HMAC key: the key's one other use, kept apart by its info. */
async function deriveControlKey(material: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey(
    "raw",
    sealKeyBytes(material),
    "HKDF",
    false,
    ["deriveKey"],
  );
  return await crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(32),
      info: new TextEncoder().encode("dual-secret-auth/control/v1"),
    },
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

/** What the store holds of a distributed credential: never the secret in the clear. */
export interface SealedCredentialRecord {
  /** The label, such as `green`. */
  readonly label: string;
  /** The OAuth client id. */
  readonly clientId: string;
  /** Counts the secrets published for this label; each publication adds one. */
  readonly generation: number;
  /** The id of the seal key. */
  readonly keyId: string;
  /** The secret sealed with AES-256-GCM (`v1.` + base64url of iv and ciphertext). */
  readonly sealed: string;
  /** When it was published, in ms since the epoch. */
  readonly publishedAt: number;
  /** Who published it (the operator's host or the scheduler's id). */
  readonly publishedBy: string;
  /**
   * Two-secret providers (Okta, Entra ID, Cognito, Keycloak with its
   * rotation policy): the provider's id of this secret, so a later rotation
   * revokes exactly the secret this label used once nothing uses it.
   *
   * @default undefined (twin clients, or not recorded)
   */
  readonly secretId?: string;
  /**
   * When the provider's secret of this record was retired (revoked, behind
   * the fleet's revoke gate), in ms since the epoch: instances no longer load
   * it, and a promotion to the label is refused until it is rotated again.
   *
   * @default undefined (in service)
   */
  readonly retiredAt?: number;
}

/**
 * The store document of a label's distributed secret.
 *
 * @param label The label.
 * @returns The document name.
 */
export function credentialDocument(label: string): string {
  return `credential/${label}`;
}

/**
 * The service namespace every fleet member uses for its service-wide records
 * (the active label, documents, the audit trail): a digest of the token URL
 * and the scope.
 *
 * @param tokenUrl The token endpoint.
 * @param scope The scope requested, if any.
 * @returns The namespace.
 */
export function serviceNamespace(
  tokenUrl: string,
  scope?: string,
): Promise<string> {
  return digest("service", tokenUrl, scope ?? "");
}

const aadOf = (
  service: string,
  label: string,
  clientId: string,
  generation: number,
) =>
  JSON.stringify([
    "dual-secret-auth/credential/v1",
    service,
    label,
    clientId,
    generation,
  ]);

/**
 * Seals a secret for a record.
 *
 * @param ring The keyring (its current key seals).
 * @param service The service namespace.
 * @param fields The label, client id and generation the ciphertext is bound to.
 * @param secret The secret.
 * @returns The key id and the sealed text.
 */
export async function sealCredential(
  ring: SealKeyring,
  service: string,
  fields: { label: string; clientId: string; generation: number },
  secret: Secret,
): Promise<{ keyId: string; sealed: string }> {
  return {
    keyId: ring.current.id,
    sealed: await seal(
      ring.current.key,
      secret.reveal(),
      aadOf(service, fields.label, fields.clientId, fields.generation),
    ),
  };
}

/** Why a sealed credential did not open. */
export type UnsealProblem = "unknown-key" | "does-not-open";

/**
 * Opens a sealed credential record.
 *
 * @param ring The keyring.
 * @param service The service namespace.
 * @param record The record.
 * @returns The secret, or why it did not open.
 */
export async function openCredential(
  ring: SealKeyring,
  service: string,
  record: SealedCredentialRecord,
): Promise<Secret | UnsealProblem> {
  const key = ring.keys.get(record.keyId);
  if (key === undefined) return "unknown-key";
  const plain = await unseal(
    key.key,
    record.sealed,
    aadOf(service, record.label, record.clientId, record.generation),
  );
  return plain === undefined ? "does-not-open" : new Secret(plain);
}

/**
 * The fingerprint of a sealed credential record: a digest of its ciphertext,
 * which a fresh IV makes unique to each publication. It names the secret a
 * record carries without revealing anything of it, and it differs between
 * two publications that share a generation (a store that lost its data and
 * counted again from 1), so instances compare it, never the counter, to know
 * whether a record is new to them. Heartbeats report the fingerprint an
 * instance proved; the operator and the scheduler compare it with the
 * store's record.
 *
 * @param record The record.
 * @returns 16 hex characters.
 *
 * @example
 * ```ts
 * import { credentialFingerprint } from "./distribution.ts";
 * const fingerprint = await credentialFingerprint({ sealed: "v1.abc" });
 * if (fingerprint.length !== 16) throw new Error();
 * ```
 */
export async function credentialFingerprint(
  record: Pick<SealedCredentialRecord, "sealed">,
): Promise<string> {
  return (await digest("sealed-credential", record.sealed)).slice(0, 16);
}

/**
 * Whether a value read from the store is a {@linkcode SealedCredentialRecord}.
 *
 * @param value The value.
 * @returns Whether it has every field with its type.
 */
export function isSealedCredentialRecord(
  value: unknown,
): value is SealedCredentialRecord {
  const record = value as Partial<SealedCredentialRecord> | null;
  return typeof record === "object" && record !== null &&
    typeof record.label === "string" && typeof record.clientId === "string" &&
    Number.isInteger(record.generation) && typeof record.keyId === "string" &&
    typeof record.sealed === "string" &&
    typeof record.publishedAt === "number" &&
    typeof record.publishedBy === "string" &&
    (record.secretId === undefined || typeof record.secretId === "string") &&
    (record.retiredAt === undefined || typeof record.retiredAt === "number");
}

/** Options of {@linkcode publishSealedCredential}. */
export interface PublishSealedOptions {
  /** The store (its control plane: the sealed record is a document). */
  readonly store: ControlStore;
  /** The service namespace ({@linkcode serviceNamespace}). */
  readonly service: string;
  /** The keyring. */
  readonly ring: SealKeyring;
  /** Who publishes (recorded, secret-free). */
  readonly by: string;
  /** The current time, in ms since the epoch. */
  readonly now: number;
  /**
   * The generation written is above this as well as above the stored
   * record's: the highest generation live instances report loaded, so a
   * store that lost its data does not count from 1 again.
   *
   * @default 0
   */
  readonly minGeneration?: number;
}

/**
 * Publishes a new secret for a label: the next generation, sealed, written
 * with compare-and-set on the document's version (a concurrent publisher
 * makes this one re-read and take the generation after it).
 *
 * @param options Store, service, keyring, publisher and time.
 * @param update The label, client id, new secret and (two-secret providers) its id.
 * @returns The generation written.
 */
export async function publishSealedCredential(
  options: PublishSealedOptions,
  update: {
    label: string;
    clientId: string;
    secret: Secret;
    secretId?: string;
  },
): Promise<number> {
  const { store, service, ring } = options;
  const name = credentialDocument(update.label);
  for (let lap = 0; lap < 10; lap++) {
    const current = await store.readDocument(service, name);
    const previous = current !== undefined &&
        isSealedCredentialRecord(current.value)
      ? current.value.generation
      : 0;
    const generation = Math.max(previous, options.minGeneration ?? 0) + 1;
    const { keyId, sealed } = await sealCredential(ring, service, {
      label: update.label,
      clientId: update.clientId,
      generation,
    }, update.secret);
    const record: SealedCredentialRecord = {
      label: update.label,
      clientId: update.clientId,
      generation,
      keyId,
      sealed,
      publishedAt: options.now,
      publishedBy: options.by,
      ...(update.secretId === undefined ? {} : { secretId: update.secretId }),
    };
    if (
      await store.writeDocument(service, name, current?.version ?? 0, record)
    ) {
      return generation;
    }
  }
  throw new Error(
    `the fleet store kept changing ${name} under this write; check for another rotation running`,
  );
}

/**
 * Seals a secret back into a store that lost it: written only where the
 * store holds no record of the label (compare-and-set on absent), at the
 * generation given, so many writers race harmlessly (one writes; the others
 * find a record and load it as any other) and the counter does not go back.
 * For an instance that proved a secret distributed through the store and
 * finds the store without it (a Redis restarted without persistence,
 * `FLUSHALL`, a KV restored from an old backup).
 *
 * @param options Store, service, keyring, publisher and time.
 * @param update The label, client id, secret in use, the generation it was
 * loaded at and (two-secret providers) the provider's id of it and when it
 * was retired, as the lost record carried them.
 * @returns Whether this call wrote it.
 */
export async function reseedSealedCredential(
  options: PublishSealedOptions,
  update: {
    label: string;
    clientId: string;
    secret: Secret;
    generation: number;
    secretId?: string;
    retiredAt?: number;
  },
): Promise<boolean> {
  const { keyId, sealed } = await sealCredential(
    options.ring,
    options.service,
    update,
    update.secret,
  );
  const record: SealedCredentialRecord = {
    label: update.label,
    clientId: update.clientId,
    generation: update.generation,
    keyId,
    sealed,
    publishedAt: options.now,
    publishedBy: options.by,
    ...(update.secretId === undefined ? {} : { secretId: update.secretId }),
    ...(update.retiredAt === undefined ? {} : { retiredAt: update.retiredAt }),
  };
  return await options.store.writeDocument(
    options.service,
    credentialDocument(update.label),
    0,
    record,
  );
}
