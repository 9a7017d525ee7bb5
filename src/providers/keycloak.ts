/**
 * Keycloak behind the rotation engine's provider port, either way Keycloak
 * allows. **Two secrets** (the default) needs the preview feature
 * `client-secret-rotation` and a client policy with the `secret-rotation`
 * executor: regenerating then keeps the old secret as the "rotated" one
 * until its own expiration, and revoking deletes the rotated secret.
 * Without the policy, regenerating kills the secret in use at once, so the
 * adapter refuses. **Twin clients** (`model: "twin-clients"`) works on any
 * Keycloak: two clients, only the standby regenerated.
 *
 * Keycloak gives its secrets no ids: the adapter names each by a digest of
 * its value (`kc-` and 16 hex digits of its SHA-256), which says nothing of
 * the value and stays the same while the secret lives.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { type Clock, systemClock } from "../clock.ts";
import type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  ProviderSecretInfo,
  SecretModel,
  SecretProvider,
} from "../rotation/provider.ts";
import { SECRET_HINT_LENGTH } from "../rotation/provider.ts";
import { Secret } from "../secret.ts";
import {
  type AdminIoOptions,
  type AdminRefusal,
  type AdminRequest,
  type AdminTransport,
  baseUrl,
  bearer,
  createAdminTransport,
  isDotSegment,
  isObject,
  kindOfStatus,
  nonNegativeMs,
  ProviderApiError,
  type ProviderErrorCodes,
  type ProviderFailure,
  requireId,
  stringField,
  throttleWait,
  undocumentedAnswer,
  unlessGone,
} from "./admin_http.ts";

/** The stable error codes of the Keycloak adapter. */
export const KeycloakErrorCode: {
  readonly UNAUTHORIZED: "KEYCLOAK_ADMIN_UNAUTHORIZED";
  readonly FORBIDDEN: "KEYCLOAK_ADMIN_FORBIDDEN";
  readonly NOT_FOUND: "KEYCLOAK_NOT_FOUND";
  readonly LIMIT_REACHED: "KEYCLOAK_ROTATED_SECRET_EXISTS";
  readonly REFUSED: "KEYCLOAK_REQUEST_REFUSED";
  readonly ROTATION_POLICY_OFF: "KEYCLOAK_ROTATION_POLICY_OFF";
  readonly ROTATION_POLICY_UNVERIFIABLE:
    "KEYCLOAK_ROTATION_POLICY_UNVERIFIABLE";
  readonly OLD_SECRET_LOST: "KEYCLOAK_OLD_SECRET_LOST";
  readonly RATE_LIMITED: "KEYCLOAK_RATE_LIMITED";
  readonly UNAVAILABLE: "KEYCLOAK_API_UNAVAILABLE";
  readonly REQUEST_FAILED: "KEYCLOAK_API_REQUEST_FAILED";
} = Object.freeze(
  {
    UNAUTHORIZED: "KEYCLOAK_ADMIN_UNAUTHORIZED",
    FORBIDDEN: "KEYCLOAK_ADMIN_FORBIDDEN",
    NOT_FOUND: "KEYCLOAK_NOT_FOUND",
    LIMIT_REACHED: "KEYCLOAK_ROTATED_SECRET_EXISTS",
    REFUSED: "KEYCLOAK_REQUEST_REFUSED",
    ROTATION_POLICY_OFF: "KEYCLOAK_ROTATION_POLICY_OFF",
    ROTATION_POLICY_UNVERIFIABLE: "KEYCLOAK_ROTATION_POLICY_UNVERIFIABLE",
    OLD_SECRET_LOST: "KEYCLOAK_OLD_SECRET_LOST",
    RATE_LIMITED: "KEYCLOAK_RATE_LIMITED",
    UNAVAILABLE: "KEYCLOAK_API_UNAVAILABLE",
    REQUEST_FAILED: "KEYCLOAK_API_REQUEST_FAILED",
  } as const satisfies ProviderErrorCodes & {
    readonly ROTATION_POLICY_OFF: string;
    readonly ROTATION_POLICY_UNVERIFIABLE: string;
    readonly OLD_SECRET_LOST: string;
  },
);

/** One of the values of {@linkcode KeycloakErrorCode}. */
export type KeycloakErrorCode =
  typeof KeycloakErrorCode[keyof typeof KeycloakErrorCode];

/** Options of {@linkcode keycloakSecretProvider}. */
export interface KeycloakSecretProviderOptions extends AdminIoOptions {
  /** The server's base URL, such as `https://sso.example.com` (with `/auth` before Keycloak 17). */
  readonly baseUrl: string;
  /** The realm of the clients. */
  readonly realm: string;
  /**
   * Gives an access token of an admin client of the realm whose service
   * account holds `realm-management` `view-clients` (inspect),
   * `manage-clients` (issue, revoke) and, in the two-secret model,
   * `view-realm` (issue: it reads the realm's client policies).
   */
  readonly getAccessToken: (
    options?: { signal?: AbortSignal },
  ) => Promise<string>;
  /**
   * Drops a cached token Keycloak refused (such as `auth.invalidate`); when
   * given, a 401 is replayed once with a fresh token.
   *
   * @default undefined (a 401 is final)
   */
  readonly invalidateToken?: (token: string) => void;
  /**
   * `two-secrets`: both labels are secrets of one client (needs the
   * secret-rotation policy; refused without it). `twin-clients`: each label
   * is its own client, and regenerating the standby's secret kills its old
   * one (a rotated one the policy kept is deleted at once).
   *
   * @default "two-secrets"
   */
  readonly model?: SecretModel;
  /**
   * Called by `inspectClient` when the main secret expires within
   * `warnBeforeExpiryMs` (or has expired): after its expiration time
   * Keycloak refuses it even with the right value.
   *
   * @default undefined (no warning; `expiresAt` is in the inspection)
   */
  readonly onWarning?: (message: string) => void;
  /**
   * How long before the main secret's expiration `onWarning` is called, in ms.
   *
   * @default 864_000_000 (10 days, the executor's default remaining-rotation-period)
   */
  readonly warnBeforeExpiryMs?: number;
  /**
   * Two secrets only. `true` says the operator checked, themselves, that an
   * enabled client policy of the realm applies to every client this adapter
   * regenerates, through a profile whose `secret-rotation` executor has a
   * `rotated-expiration-period` above 0. `issueSecret` then does not read
   * the realm's client policies (the admin client needs no `view-realm`)
   * and refuses only a client without `client.secret.expiration.time`; it
   * still checks after regenerating that the old secret became the rotated
   * one, and fails with `KEYCLOAK_OLD_SECRET_LOST` when it did not (the
   * secret in use is then dead). Leave it `false` unless granting
   * `view-realm` is not an option.
   *
   * @default false (issueSecret reads the client policies and refuses unless they prove the policy)
   */
  readonly rotationPolicyCheckedByOperator?: boolean;
}

const VIEW = "realm-management role view-clients";
const VIEW_REALM = "realm-management role view-realm";
const MANAGE = "realm-management role manage-clients";
const EXPIRATION = "client.secret.expiration.time";
const CREATION = "client.secret.creation.time";
const ROTATED_EXPIRATION = "client.secret.rotated.expiration.time";
const TEN_DAYS_MS = 10 * 24 * 60 * 60 * 1000;

/**
 * Keycloak's admin REST client-secret API as a {@linkcode SecretProvider}.
 *
 * Two secrets (the default): `inspectClient` lists the main secret (with
 * its `expiresAt` from `client.secret.expiration.time`) and the rotated one
 * (each `inactive` once its expiration time has passed),
 * and calls `onWarning` before the main one expires; `issueSecret`
 * regenerates (`POST client-secret`), so the secret in use becomes the
 * rotated one. Before that it reads the realm's client policies and
 * profiles (`view-realm`) and refuses, changing nothing, unless an enabled
 * policy applies to the client with a `secret-rotation` executor keeping
 * rotated secrets (`rotated-expiration-period` > 0) and none that applies
 * keeps none: the client attribute `client.secret.expiration.time` proves
 * nothing, since Keycloak leaves it when the policy goes, and without the
 * policy regenerating kills the secret in use. A condition the adapter
 * cannot evaluate is refused rather than guessed. It also refuses while the
 * client already has a rotated secret (regenerating would drop it: revoke
 * it first). After regenerating it reads the rotated secret back and fails
 * with `KEYCLOAK_OLD_SECRET_LOST` when it is not the old one.
 * `revokeSecret` deletes the rotated secret (`DELETE client-secret/rotated`),
 * resolves when it is gone already, and refuses to touch the main secret.
 * `inspectClient` still reads `maxSecrets` (2) from the expiration
 * attribute: it needs no `view-realm`, and only `issueSecret` acts on it.
 *
 * Twin clients: `issueSecret` regenerates the standby client's secret and
 * deletes any rotated one; there is no `revokeSecret`.
 *
 * Throttling by a proxy in front (429), 5xx and network failures are
 * retried; regenerating only when throttled in the two-secret model, where
 * a second regeneration would drop the secret in use.
 *
 * @param options The server, realm, admin token getter, model and I/O.
 * @returns The provider; errors are {@linkcode ProviderApiError}s with a
 *   {@linkcode KeycloakErrorCode}.
 * @throws {ConfigError} When `baseUrl` is not https (or http on loopback),
 *   `realm` is empty, or `model` is neither model.
 *
 * @example Regenerate under the rotation policy, then delete the rotated secret
 * ```ts
 * import { keycloakSecretProvider } from "@rotating/dual-secret-auth/providers";
 * import { startKeycloakEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using keycloak = startKeycloakEmulator({
 *   secretRotation: {},
 *   clients: [
 *     { clientId: "service", secret: "old-secret" },
 *     {
 *       clientId: "admin",
 *       secret: "admin-secret",
 *       realmManagementRoles: ["manage-clients", "view-realm"],
 *     },
 *   ],
 * });
 * const adminToken = async () => {
 *   const response = await fetch(keycloak.tokenUrl, {
 *     method: "POST",
 *     body: new URLSearchParams({
 *       grant_type: "client_credentials",
 *       client_id: "admin",
 *       client_secret: "admin-secret",
 *     }),
 *   });
 *   return (await response.json()).access_token as string;
 * };
 * const provider = keycloakSecretProvider({
 *   baseUrl: keycloak.url,
 *   realm: keycloak.realm,
 *   getAccessToken: adminToken,
 * });
 * const [old] = (await provider.inspectClient("service")).secrets!;
 * const issued = await provider.issueSecret("service");
 * if (keycloak.secretState("service").rotated !== "old-secret") throw new Error();
 * // … prove issued.secret, switch every consumer to it, then:
 * await provider.revokeSecret!("service", old.secretId);
 * if (keycloak.secretState("service").rotated !== undefined) throw new Error();
 * ```
 */
export function keycloakSecretProvider(
  options: KeycloakSecretProviderOptions,
): SecretProvider {
  const realm = requireId(options.realm, "realm");
  const api = `${baseUrl("baseUrl", options.baseUrl)}/admin/realms/${
    encodeURIComponent(realm)
  }`;
  const model = options.model ?? "two-secrets";
  if (model !== "two-secrets" && model !== "twin-clients") {
    throw new ConfigError("model", 'must be "two-secrets" or "twin-clients"');
  }
  const warnBeforeMs = nonNegativeMs(
    "warnBeforeExpiryMs",
    options.warnBeforeExpiryMs ?? TEN_DAYS_MS,
  );
  const clock = options.clock ?? systemClock;
  const transport = createAdminTransport({
    provider: "Keycloak",
    codes: KeycloakErrorCode,
    authorize: bearer(options.getAccessToken),
    invalidate: options.invalidateToken,
    classify,
    fetch: options.fetch,
    clock,
    retry: options.retry,
    requestTimeoutMs: options.requestTimeoutMs,
    random: options.random,
  });
  const client = new ClientApi(transport, api);

  const base = {
    name: "Keycloak",
    model,
    issuedTokens:
      "Keycloak's client-secret API has no call to end access tokens already issued: treat them as valid until they expire (the realm's access token lifespan)",
    async inspectClient(
      clientId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<ProviderClientInfo> {
      const signal = callOptions?.signal;
      const rep = await client.representation(clientId, signal);
      const lifespan = Number(rep.attributes["access.token.lifespan"]);
      const info = {
        clientId,
        state: rep.enabled ? "active" as const : "disabled" as const,
        ...(Number.isInteger(lifespan) && lifespan > 0
          ? { tokenLifetimeSeconds: lifespan }
          : {}),
      };
      if (model === "twin-clients") return info;
      const main = await client.secret(clientId, false, signal);
      const rotated = await client.secret(clientId, true, signal);
      const expiresAt = epochMs(rep.attributes[EXPIRATION]);
      warnOfExpiry(clientId, expiresAt, clock, warnBeforeMs, options.onWarning);
      const secrets: ProviderSecretInfo[] = [{
        secretId: await secretIdOf(main!),
        hint: main!.slice(0, SECRET_HINT_LENGTH),
        // Past its expiration time Keycloak keeps the secret but refuses it.
        status: expired(expiresAt, clock) ? "inactive" : "active",
        ...optional("createdAt", epochMs(rep.attributes[CREATION])),
        ...optional("expiresAt", expiresAt),
      }];
      if (rotated !== undefined) {
        const rotatedExpiresAt = epochMs(rep.attributes[ROTATED_EXPIRATION]);
        secrets.push({
          secretId: await secretIdOf(rotated),
          hint: rotated.slice(0, SECRET_HINT_LENGTH),
          status: expired(rotatedExpiresAt, clock) ? "inactive" : "rotated",
          ...optional("expiresAt", rotatedExpiresAt),
        });
      }
      return {
        ...info,
        secrets,
        maxSecrets: expiresAt === undefined ? 1 : 2,
      };
    },
  };

  if (model === "twin-clients") {
    return Object.freeze({
      ...base,
      async issueSecret(clientId: string): Promise<IssuedSecret> {
        // Regenerating the standby twice is harmless: only the last is used.
        const value = await client.regenerate(clientId, true);
        // Under a rotation policy the old secret would live on as the
        // rotated one; twin clients promise it dies.
        await client.deleteRotated(clientId);
        return { clientId, secret: new Secret(value) };
      },
    });
  }
  const operatorChecked = options.rotationPolicyCheckedByOperator ?? false;
  if (typeof operatorChecked !== "boolean") {
    throw new ConfigError(
      "rotationPolicyCheckedByOperator",
      "must be true or false",
    );
  }
  return Object.freeze({
    ...base,
    async issueSecret(clientId: string): Promise<IssuedSecret> {
      // No signal: once sent, the call must return so its secret is stored.
      const rep = await client.representation(clientId);
      if (operatorChecked) {
        if (epochMs(rep.attributes[EXPIRATION]) === undefined) {
          throw policyOff(
            clientId,
            `the client has no ${EXPIRATION}, so no secret-rotation executor has ever ` +
              `covered it, although rotationPolicyCheckedByOperator says one does`,
          );
        }
      } else {
        await client.requireRotationPolicy(clientId, rep);
      }
      if (await client.secret(clientId, true) !== undefined) {
        throw new ProviderApiError(
          KeycloakErrorCode.LIMIT_REACHED,
          "Keycloak",
          `regenerate the secret of Keycloak client ${clientId}`,
          {
            kind: "limit",
            message:
              `the client already has a rotated secret, and Keycloak keeps only one: ` +
              `regenerating now would drop it. Revoke it (DELETE client-secret/rotated) ` +
              `once no instance holds or uses it, then issue again.`,
          },
        );
      }
      const old = await client.secret(clientId, false);
      // Not retried on a 5xx: a second regeneration would push the secret
      // in use out of the rotated slot.
      const value = await client.regenerate(clientId, false);
      // The policy was proven a moment ago, yet the realm may have changed
      // since (or the preview feature be off): only the answer proves it.
      if (await client.secret(clientId, true) !== old) {
        throw new ProviderApiError(
          KeycloakErrorCode.OLD_SECRET_LOST,
          "Keycloak",
          `regenerate the secret of Keycloak client ${clientId}`,
          {
            kind: "request-failed",
            message:
              `KEYCLOAK REGENERATED THE SECRET BUT DID NOT KEEP THE OLD ONE AS THE ROTATED ` +
              `SECRET: the secret in use no longer works. Every consumer of the client fails ` +
              `until it gets the new main secret: read it now (GET client-secret) and ` +
              `distribute it at once, then check the realm's secret-rotation client policy ` +
              `(and the client-secret-rotation feature) before rotating again.`,
          },
        );
      }
      return {
        clientId,
        secret: new Secret(value),
        secretId: await secretIdOf(value),
      };
    },
    async revokeSecret(
      clientId: string,
      secretId: string,
      callOptions?: ProviderCallOptions,
    ): Promise<void> {
      const signal = callOptions?.signal;
      requireId(secretId, "secretId");
      const rotated = await client.secret(clientId, true, signal);
      if (rotated !== undefined && await secretIdOf(rotated) === secretId) {
        await client.deleteRotated(clientId, signal);
        return;
      }
      const main = await client.secret(clientId, false, signal);
      if (main !== undefined && await secretIdOf(main) === secretId) {
        throw new ProviderApiError(
          KeycloakErrorCode.REFUSED,
          "Keycloak",
          `revoke secret ${secretId} of Keycloak client ${clientId}`,
          {
            kind: "refused",
            message:
              `it is the client's main secret, and Keycloak deletes only the rotated one. ` +
              `Issue a new secret first (the main one then becomes the rotated one).`,
          },
        );
      }
      // Neither: it was replaced or expired already, so it is gone.
    },
  });
}

/** A client's representation, as far as the adapter reads it. */
interface ClientRepresentation {
  readonly uuid: string;
  readonly enabled: boolean;
  /** Keycloak's access type, as the `client-access-type` condition reads it. */
  readonly accessType: "public" | "bearer-only" | "confidential";
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** The admin REST calls on one realm's clients, addressed by client id. */
class ClientApi {
  readonly #send: AdminTransport;
  readonly #api: string;
  /** Client id → internal uuid; a client's uuid never changes. */
  readonly #uuids = new Map<string, string>();

  constructor(send: AdminTransport, api: string) {
    this.#send = send;
    this.#api = api;
  }

  async representation(
    clientId: string,
    signal?: AbortSignal,
  ): Promise<ClientRepresentation> {
    requireId(clientId, "clientId");
    const operation = `find Keycloak client ${clientId}`;
    const { body } = await this.#send({
      method: "GET",
      url: `${this.#api}/clients?clientId=${encodeURIComponent(clientId)}`,
      operation,
      permission: VIEW,
      idempotent: true,
      signal,
    });
    const found = Array.isArray(body)
      ? body.find((rep) => isObject(rep) && rep.clientId === clientId)
      : undefined;
    if (!Array.isArray(body)) {
      throw undocumented(operation, "a list of clients");
    }
    if (!isObject(found)) {
      throw new ProviderApiError(
        KeycloakErrorCode.NOT_FOUND,
        "Keycloak",
        operation,
        {
          kind: "not-found",
          message:
            `the realm has no client with clientId ${clientId}. Check the client id and the realm.`,
        },
      );
    }
    const uuid = stringField(found, "id");
    // The uuid goes into paths: a dot segment would address another one.
    if (uuid === undefined || isDotSegment(uuid)) {
      throw undocumented(operation, "the client's id");
    }
    this.#uuids.set(clientId, uuid);
    return {
      uuid,
      enabled: found.enabled !== false,
      // Keycloak reads a missing flag as false.
      accessType: found.publicClient === true
        ? "public"
        : found.bearerOnly === true
        ? "bearer-only"
        : "confidential",
      attributes: isObject(found.attributes) ? found.attributes : {},
    };
  }

  /** The main or the rotated secret's value; `undefined` when there is no rotated one. */
  async secret(
    clientId: string,
    rotated: boolean,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const operation = `read the ${
      rotated ? "rotated" : "main"
    } secret of Keycloak client ${clientId}`;
    const read = async () => {
      const { body } = await this.#send({
        method: "GET",
        url: await this.#secretUrl(clientId, rotated, signal),
        operation,
        permission: VIEW,
        idempotent: true,
        signal,
      });
      const value = stringField(body, "value");
      if (value === undefined) throw undocumented(operation, "the value");
      return value;
    };
    // 404 "Client does not have a rotated secret"; the main one is always there.
    return rotated ? await unlessGone(read) : await read();
  }

  async regenerate(clientId: string, idempotent: boolean): Promise<string> {
    const operation = `regenerate the secret of Keycloak client ${clientId}`;
    const { body } = await this.#send({
      method: "POST",
      url: await this.#secretUrl(clientId, false),
      operation,
      permission: MANAGE,
      idempotent,
    });
    const value = stringField(body, "value");
    if (value === undefined) {
      throw undocumented(
        operation,
        "the new value (the secret was regenerated anyway: read it with GET client-secret)",
      );
    }
    return value;
  }

  /**
   * Refuses, by a {@linkcode ProviderApiError}, unless the realm's client
   * policies prove that regenerating keeps the old secret as the rotated one.
   */
  async requireRotationPolicy(
    clientId: string,
    rep: ClientRepresentation,
  ): Promise<void> {
    const operation =
      `read the client policies of Keycloak client ${clientId}'s realm`;
    const read = async (path: string) => {
      try {
        return (await this.#send({
          method: "GET",
          url: `${this.#api}/client-policies/${path}`,
          operation,
          permission: VIEW_REALM,
          idempotent: true,
        })).body;
      } catch (error) {
        if (error instanceof ProviderApiError && error.kind === "forbidden") {
          throw new ProviderApiError(
            KeycloakErrorCode.FORBIDDEN,
            "Keycloak",
            `regenerate the secret of Keycloak client ${clientId}`,
            {
              kind: "forbidden",
              status: error.status,
              providerCode: error.providerCode,
              permission: VIEW_REALM,
              message:
                `nothing was changed: the admin client's service account lacks the ` +
                `${VIEW_REALM}, which reading the realm's client policies needs, and only ` +
                `they prove that regenerating keeps the secret in use as the rotated one. ` +
                `Assign view-realm under Service accounts roles, or, having checked the ` +
                `secret-rotation policy yourself, set rotationPolicyCheckedByOperator.`,
            },
            { cause: error },
          );
        }
        throw error;
      }
    };
    const policies = await read("policies?include-global-policies=true");
    const profiles = await read("profiles?include-global-profiles=true");
    const verdict = rotationPolicyVerdict(policies, profiles, rep.accessType);
    if (verdict.kind === "proven") return;
    if (verdict.kind === "off") throw policyOff(clientId, verdict.reason);
    throw new ProviderApiError(
      KeycloakErrorCode.ROTATION_POLICY_UNVERIFIABLE,
      "Keycloak",
      `regenerate the secret of Keycloak client ${clientId}`,
      {
        kind: "refused",
        message:
          `nothing was changed: ${verdict.reason}, so the adapter cannot tell ` +
          `whether regenerating keeps the secret in use as the rotated one, and it does ` +
          `not guess. Express the secret-rotation policy with the any-client or ` +
          `client-access-type condition, or, having checked it yourself, set ` +
          `rotationPolicyCheckedByOperator.`,
      },
    );
  }

  /** Deletes the rotated secret; Keycloak answers 204 whether or not there was one. */
  async deleteRotated(clientId: string, signal?: AbortSignal): Promise<void> {
    await this.#send({
      method: "DELETE",
      url: await this.#secretUrl(clientId, true, signal),
      operation: `delete the rotated secret of Keycloak client ${clientId}`,
      permission: MANAGE,
      idempotent: true,
      signal,
    });
  }

  async #secretUrl(
    clientId: string,
    rotated: boolean,
    signal?: AbortSignal,
  ): Promise<string> {
    const uuid = this.#uuids.get(clientId) ??
      (await this.representation(clientId, signal)).uuid;
    return `${this.#api}/clients/${encodeURIComponent(uuid)}/client-secret${
      rotated ? "/rotated" : ""
    }`;
  }
}

/** Keycloak's id-less secrets named by a digest of their value. */
/**
 * The id this adapter gives a Keycloak secret (Keycloak gives none): `kc-`
 * and 16 hex digits of the value's SHA-256.
 *
 * @param value The secret's value.
 * @returns Its id.
 */
export async function secretIdOf(value: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)),
  );
  return `kc-${
    [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0"))
      .join("")
  }`;
}

function warnOfExpiry(
  clientId: string,
  expiresAt: number | undefined,
  clock: Clock,
  warnBeforeMs: number,
  onWarning: ((message: string) => void) | undefined,
): void {
  if (expiresAt === undefined || onWarning === undefined) return;
  const left = expiresAt - clock.now();
  if (left > warnBeforeMs) return;
  const at = new Date(expiresAt).toISOString();
  onWarning(
    left <= 0
      ? `Keycloak client ${clientId}'s secret expired at ${at}: Keycloak refuses it even with the right value. Rotate now.`
      : `Keycloak client ${clientId}'s secret expires at ${at} (in ${
        Math.ceil(left / 3_600_000)
      } h); after that Keycloak refuses it even with the right value. Rotate before then.`,
  );
}

function policyOff(clientId: string, reason: string): ProviderApiError {
  return new ProviderApiError(
    KeycloakErrorCode.ROTATION_POLICY_OFF,
    "Keycloak",
    `regenerate the secret of Keycloak client ${clientId}`,
    {
      kind: "refused",
      message:
        `nothing was changed: ${reason}. Without a secret-rotation executor that ` +
        `keeps rotated secrets, Keycloak kills the old secret when it regenerates: ` +
        `regenerating now would kill the secret in use. Enable the client-secret-rotation ` +
        `feature and an enabled client policy for this client whose profile has the ` +
        `secret-rotation executor with rotated-expiration-period above 0, ` +
        `or rotate twin clients (model: "twin-clients").`,
    },
  );
}

/** What the realm's client policies say of regenerating one client's secret. */
type PolicyVerdict =
  | { readonly kind: "proven" }
  | { readonly kind: "off" | "unverifiable"; readonly reason: string };

const SECRET_ROTATION = "secret-rotation";
/** The executor's default, `ClientSecretRotationExecutorFactory`'s 2 days. */
const DEFAULT_ROTATED_EXPIRATION_SECONDS = 172_800;

/**
 * Evaluates `ClientPoliciesRepresentation` and `ClientProfilesRepresentation`
 * (both with their global lists) as Keycloak does on the event a
 * regeneration raises (`UPDATED`, a `ClientSecretRotationContext`): a policy
 * applies when it is enabled, no condition votes no and one votes yes
 * (negative logic flips a vote); every `secret-rotation` executor of an
 * applying policy's profiles then runs, and one with
 * `rotated-expiration-period` 0 removes the rotated secret. A policy whose
 * conditions the adapter cannot evaluate is harmless when all its
 * executors keep rotated secrets, and otherwise makes the verdict
 * unverifiable; so does one that alone could prove the policy.
 */
function rotationPolicyVerdict(
  policiesBody: unknown,
  profilesBody: unknown,
  accessType: ClientRepresentation["accessType"],
): PolicyVerdict {
  const unverifiable = (reason: string) =>
    ({ kind: "unverifiable", reason }) as const;
  const policies = listOf(policiesBody, "policies", "globalPolicies");
  const profiles = listOf(profilesBody, "profiles", "globalProfiles");
  if (policies === undefined || profiles === undefined) {
    return unverifiable(
      "Keycloak answered the client policies in a shape it does not document",
    );
  }
  const profileByName = new Map<string, Record<string, unknown>>();
  for (const profile of profiles) {
    if (!isObject(profile) || typeof profile.name !== "string") {
      return unverifiable("a client profile has no name");
    }
    profileByName.set(profile.name, profile);
  }
  // The executor skips public and bearer-only clients.
  if (accessType !== "confidential") {
    return {
      kind: "off",
      reason:
        `the client is ${accessType}, and the secret-rotation executor skips such clients`,
    };
  }
  const periods: number[] = [];
  let undecided: string | undefined;
  for (const policy of policies) {
    if (!isObject(policy)) {
      return unverifiable("a client policy is not an object");
    }
    const name = typeof policy.name === "string" ? policy.name : "(unnamed)";
    if (policy.enabled !== true) continue;
    const names = policy.profiles ?? [];
    if (!Array.isArray(names)) {
      return unverifiable(`policy ${name} lists no profiles`);
    }
    const executors: Record<string, unknown>[] = [];
    for (const profileName of names) {
      const profile = typeof profileName === "string"
        ? profileByName.get(profileName)
        : undefined;
      if (profile === undefined) {
        return unverifiable(
          `policy ${name} names a profile the realm does not list`,
        );
      }
      const list = profile.executors ?? [];
      if (!Array.isArray(list) || !list.every(isObject)) {
        return unverifiable(
          `profile ${
            String(profileName)
          } lists its executors in an undocumented shape`,
        );
      }
      executors.push(...list.filter((e) => e.executor === SECRET_ROTATION));
    }
    // Conditions of a policy without the executor cannot touch the secret.
    if (executors.length === 0) continue;
    const own = executors.map((executor) =>
      rotatedPeriod(executor.configuration)
    );
    if (own.some((period) => period === undefined)) {
      return unverifiable(
        `policy ${name}'s secret-rotation executor has a rotated-expiration-period that is not a number`,
      );
    }
    const applies = policyApplies(policy, accessType);
    if (typeof applies === "string") {
      // Another executor keeping rotated secrets changes nothing (it sets
      // the same old secret as the rotated one); one keeping none would.
      if (own.every((period) => period! > 0)) {
        undecided ??= `policy ${name} ${applies}`;
        continue;
      }
      return unverifiable(`policy ${name} ${applies}`);
    }
    if (!applies) continue;
    for (const period of own) {
      if (period! <= 0) {
        return {
          kind: "off",
          reason:
            `policy ${name} applies to the client with a secret-rotation executor whose ` +
            `rotated-expiration-period is ${period}: Keycloak then keeps no rotated secret`,
        };
      }
      periods.push(period!);
    }
  }
  if (periods.length > 0) return { kind: "proven" };
  if (undecided !== undefined) return unverifiable(undecided);
  return {
    kind: "off",
    reason:
      `no enabled client policy of the realm applies a secret-rotation executor to the ` +
      `client (its ${EXPIRATION}, if any, is left over: Keycloak keeps it when the ` +
      `policy goes)`,
  };
}

/** A representation's own and global lists, or undefined when not lists. */
function listOf(
  body: unknown,
  own: string,
  global: string,
): unknown[] | undefined {
  if (!isObject(body)) return undefined;
  const lists = [body[own] ?? [], body[global] ?? []];
  return lists.every(Array.isArray) ? lists.flat() : undefined;
}

/**
 * Whether an enabled policy applies to a client on a regeneration, or why
 * the adapter cannot tell. Only conditions whose vote on that event the
 * adapter knows from Keycloak's source are evaluated: `any-client` (yes)
 * and `client-access-type` (yes when the client's type is listed). None of
 * them abstains, so `DEFAULT` and `STRICT` modes agree.
 */
function policyApplies(
  policy: Record<string, unknown>,
  accessType: ClientRepresentation["accessType"],
): boolean | string {
  const mode = policy.mode ?? "DEFAULT";
  if (mode !== "DEFAULT" && mode !== "STRICT") {
    return `has the mode ${JSON.stringify(mode)}`;
  }
  const conditions = policy.conditions ?? [];
  if (!Array.isArray(conditions)) {
    return "lists its conditions in an undocumented shape";
  }
  // Keycloak applies no policy without a condition.
  if (conditions.length === 0) return false;
  let applies = true;
  for (const condition of conditions) {
    if (!isObject(condition)) return "has a condition that is not an object";
    const config = condition.configuration ?? {};
    if (!isObject(config)) {
      return "has a condition without a configuration object";
    }
    const negative = flag(config["is-negative-logic"]);
    if (negative === undefined) return "has an unreadable is-negative-logic";
    let vote: boolean;
    if (condition.condition === "any-client") {
      vote = true;
    } else if (condition.condition === "client-access-type") {
      const types = config.type ?? [];
      if (!Array.isArray(types) || !types.every((t) => typeof t === "string")) {
        return "has a client-access-type condition whose type is not a list";
      }
      vote = types.includes(accessType);
    } else {
      return `has the condition ${
        JSON.stringify(condition.condition)
      }, which the adapter does not evaluate`;
    }
    if (vote === negative) applies = false;
  }
  return applies;
}

/** Jackson's reading of an optional Boolean (absent is false). */
function flag(value: unknown): boolean | undefined {
  if (value === undefined || value === null) return false;
  if (typeof value === "boolean") return value;
  if (value === "true" || value === "false") return value === "true";
  return undefined;
}

/** `rotated-expiration-period` in seconds (a number or its digits), with the default. */
function rotatedPeriod(configuration: unknown): number | undefined {
  if (configuration === undefined || configuration === null) {
    return DEFAULT_ROTATED_EXPIRATION_SECONDS;
  }
  if (!isObject(configuration)) return undefined;
  const value = configuration["rotated-expiration-period"];
  if (value === undefined || value === null) {
    return DEFAULT_ROTATED_EXPIRATION_SECONDS;
  }
  const seconds = typeof value === "string" && /^-?\d+$/.test(value)
    ? Number(value)
    : value;
  return typeof seconds === "number" && Number.isInteger(seconds)
    ? seconds
    : undefined;
}

/** Reads Keycloak's error bodies (`{error, error_description}` or `{errorMessage}`). */
function classify(
  refusal: AdminRefusal,
  request: AdminRequest,
): ProviderFailure {
  const { status, body, quote } = refusal;
  const said = quote(
    stringField(body, "errorMessage") ??
      stringField(body, "error_description") ?? stringField(body, "error"),
  );
  const words = `HTTP ${status}${said ? `: "${said}"` : ""}`;
  const common = { status, providerCode: quote(stringField(body, "error")) };
  if (status === 401) {
    return {
      ...common,
      kind: "unauthorized",
      message: `Keycloak refused the admin access token (${words}). Get it ` +
        `from a client of this realm (or master) with a service account.`,
    };
  }
  if (status === 403) {
    return {
      ...common,
      kind: "forbidden",
      permission: request.permission,
      message: `the admin client's service account lacks the ` +
        `${request.permission} (${words}). Assign it under Service accounts roles.`,
    };
  }
  if (status === 404) {
    return {
      ...common,
      kind: "not-found",
      message: `Keycloak has no such client or secret (${words}). Check ` +
        `the client id, the realm and the base URL (/auth before Keycloak 17).`,
    };
  }
  if (status === 429) {
    const retryAfterMs = throttleWait(refusal.headers, refusal.now);
    return {
      ...common,
      kind: "rate-limited",
      retryAfterMs,
      message: `a proxy in front of Keycloak is rate limiting (${words}). ` +
        `Retry later.`,
    };
  }
  const kind = kindOfStatus(status);
  return {
    ...common,
    kind,
    message: kind === "unavailable"
      ? `Keycloak is unavailable (${words}); retry later.`
      : `Keycloak refused the request (${words}).`,
  };
}

/** Whether an expiration time (epoch ms) has passed on the clock. */
function expired(expiresAt: number | undefined, clock: Clock): boolean {
  return expiresAt !== undefined && expiresAt <= clock.now();
}

/** Epoch seconds (as Keycloak's client attributes hold them) in ms. */
function epochMs(value: unknown): number | undefined {
  const seconds = typeof value === "string" ? Number(value) : value;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0
    ? seconds * 1000
    : undefined;
}

function optional<K extends string>(
  key: K,
  value: number | undefined,
): Partial<Record<K, number>> {
  return value === undefined ? {} : { [key]: value } as Record<K, number>;
}

function undocumented(operation: string, what: string): ProviderApiError {
  return undocumentedAnswer(KeycloakErrorCode, "Keycloak", operation, what);
}
