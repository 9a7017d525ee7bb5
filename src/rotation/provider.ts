/**
 * The rotation engine's provider port: what the engine needs of an identity
 * provider's admin API to rotate one label's secret, and nothing more.
 *
 * Two models exist. **Twin clients** (Genesys Cloud, Auth0, Keycloak without
 * its rotation policy): each label is its own OAuth client with one secret;
 * issuing a label's secret kills that client's old one at once, so only the
 * standby client is ever issued. **Two secrets** (Okta, Entra ID, Cognito,
 * Keycloak with its rotation policy): both labels are secrets of one client;
 * issuing adds a secret beside the one in use, and the old one is revoked by
 * id once no instance holds or uses it.
 *
 * Each provider's adapter lives outside the engine (`src/genesys/`,
 * `src/providers/`); the engine imports only this file.
 *
 * @module
 */
import type { Secret } from "../secret.ts";

/** How a provider keeps two credentials of one service live. */
export type SecretModel = "twin-clients" | "two-secrets";

/** Options of every provider call. */
export interface ProviderCallOptions {
  /**
   * Stops the call. Never given to {@linkcode SecretProvider.issueSecret}:
   * once sent, that call runs to its end so its secret can be stored.
   *
   * @default undefined (not abortable)
   */
  readonly signal?: AbortSignal;
}

/** One secret of a client, as the provider lists it. Never the secret's value. */
export interface ProviderSecretInfo {
  /** The provider's id of the secret (Okta `ocs…`, Entra `keyId`, Cognito `ClientSecretId`). */
  readonly secretId: string;
  /**
   * `active` works at the token endpoint; `inactive` is kept but refused
   * (Okta); `rotated` is Keycloak's old secret that still works until its
   * rotated expiration.
   */
  readonly status: "active" | "inactive" | "rotated";
  /**
   * The first characters of the secret's value as the provider shows them
   * (Entra ID's `hint`, three characters; as many of the value Okta lists,
   * and of Keycloak's): enough to tell which label's secret an id is (ids
   * recorded wrongly or swapped), never enough to use it.
   *
   * @default undefined (the provider shows nothing of the value: Cognito)
   */
  readonly hint?: string;
  /**
   * When it was created, epoch ms.
   *
   * @default undefined (the provider does not say)
   */
  readonly createdAt?: number;
  /**
   * When the provider stops accepting it, epoch ms.
   *
   * @default undefined (no expiry)
   */
  readonly expiresAt?: number;
}

/** What the provider says of one OAuth client. Never a secret. */
export interface ProviderClientInfo {
  /** The OAuth client id. */
  readonly clientId: string;
  /** Whether the client can get tokens now. */
  readonly state: "active" | "inactive" | "disabled";
  /**
   * The lifetime of the client's access tokens, in seconds.
   *
   * @default undefined (the provider does not say)
   */
  readonly tokenLifetimeSeconds?: number;
  /**
   * Two-secret providers: the client's secrets.
   *
   * @default undefined (twin clients)
   */
  readonly secrets?: readonly ProviderSecretInfo[];
  /**
   * Two-secret providers: how many secrets the client may hold at once.
   *
   * @default undefined (no limit the provider documents)
   */
  readonly maxSecrets?: number;
}

/** A secret just issued: stored by the engine before anything else happens. */
export interface IssuedSecret {
  /** The OAuth client the secret belongs to. */
  readonly clientId: string;
  /** The secret's value (redacted in output); the provider may never show it again. */
  readonly secret: Secret;
  /**
   * Two-secret providers: the new secret's id, to revoke it by later.
   *
   * @default undefined (twin clients)
   */
  readonly secretId?: string;
  /**
   * How long the provider says the new secret may take to work, in ms
   * (Auth0: up to 30 s); the proof waits at least this long before giving up.
   *
   * @default undefined (the engine's propagation timeout alone)
   */
  readonly propagationMs?: number;
  /**
   * When the provider stops accepting the new secret, epoch ms.
   *
   * @default undefined (no expiry)
   */
  readonly expiresAt?: number;
}

/**
 * An identity provider's secret API as the rotation engine uses it.
 *
 * `inspectClient` only reads. `issueSecret` is the one call that creates a
 * secret; `revokeSecret` the one that ends one. An adapter throws its own
 * errors (with a stable `code`, a `cause`, and a message naming the missing
 * permission or the limit reached in the provider's words).
 */
export interface SecretProvider {
  /** The provider's name in operator messages, such as `"Okta"`. */
  readonly name: string;
  /** Twin clients or two secrets on one client. */
  readonly model: SecretModel;
  /**
   * What becomes of the access tokens already issued with a secret once it
   * is revoked or regenerated, and whether this provider's API can end
   * them, in the provider's terms: incident mode says it to the operator.
   *
   * @default undefined (not documented: assume they stay valid until they expire)
   */
  readonly issuedTokens?: string;
  /**
   * Reads an OAuth client and, for two-secret providers, its secrets.
   * Changes nothing.
   */
  inspectClient(
    clientId: string,
    options?: ProviderCallOptions,
  ): Promise<ProviderClientInfo>;
  /**
   * Issues a new secret for `clientId`. Twin clients: regenerates that
   * client's only secret (its old one stops working at once; the engine
   * calls this on the standby client only). Two secrets: adds a secret
   * beside the one in use, or refuses when the client is at its limit.
   */
  issueSecret(
    clientId: string,
    options?: ProviderCallOptions,
  ): Promise<IssuedSecret>;
  /**
   * Two-secret providers: ends one secret of `clientId` by id (Okta:
   * deactivate then delete; Entra: `removePassword`; Cognito:
   * `DeleteUserPoolClientSecret`; Keycloak: delete the rotated secret).
   * The engine calls it only after the revoke gate said no instance holds
   * or uses that secret.
   *
   * @default undefined (twin clients have nothing to revoke)
   */
  readonly revokeSecret?: (
    clientId: string,
    secretId: string,
    options?: ProviderCallOptions,
  ) => Promise<void>;
}

/** How many characters of a secret's value {@linkcode ProviderSecretInfo.hint} keeps, as Entra ID's. */
export const SECRET_HINT_LENGTH = 3;

/**
 * Whether a listed secret may be the one with this value: `false` only when
 * the provider shows a hint of its value and the value does not begin with
 * it. Wrongly recorded or swapped ids are caught before anything is revoked.
 *
 * @param info The secret as the provider lists it.
 * @param value The value a label holds.
 * @returns Whether the listed secret may have that value.
 *
 * @example A hint tells two secrets apart
 * ```ts
 * import { maybeSecretOf } from "./provider.ts";
 *
 * const info = { secretId: "k1", status: "active" as const, hint: "abc" };
 * if (!maybeSecretOf(info, "abcdef") || maybeSecretOf(info, "xyz123")) {
 *   throw new Error();
 * }
 * ```
 */
export function maybeSecretOf(
  info: ProviderSecretInfo,
  value: string,
): boolean {
  return info.hint === undefined || value.startsWith(info.hint);
}
