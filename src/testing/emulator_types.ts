/**
 * The emulator's data model: the public option, client, fault and stats
 * types, the records it keeps for clients and tokens, and its constants.
 *
 * @module
 */
import type { Clock } from "../clock.ts";

/**
 * A role granted in a division, as Genesys's `roleDivisions` lists them.
 * Division `*` means every division.
 */
export interface EmulatorRoleDivision {
  /** The role's id. */
  readonly roleId: string;
  /** The division's id, or `*` for all divisions. */
  readonly divisionId: string;
}

/** A role of the emulated organization: a named set of permissions. */
export interface EmulatorRole {
  /** The role's id, as `roleDivisions` refer to it. */
  readonly id: string;
  /**
   * Display name.
   *
   * @default the role id
   */
  readonly name?: string;
  /**
   * Permissions the role grants, such as `"oauth:client:add"`; `*` matches
   * any one segment.
   *
   * @default []
   */
  readonly permissions?: readonly string[];
}

/**
 * The state of an OAuth client. Only `active` clients get tokens; setting a
 * client `inactive` or `disabled` through the API also invalidates its
 * outstanding tokens (they stay dead after it is active again).
 */
export type EmulatorClientState = "active" | "inactive" | "disabled";

/** An OAuth client (client-credentials grant) known to the emulator. */
export interface EmulatorClient {
  /** The OAuth client id. */
  clientId: string;
  /** The client's one current secret. */
  secret: string;
  /**
   * Display name.
   *
   * @default the client id
   */
  name?: string;
  /**
   * Lifetime of issued tokens in seconds. Genesys allows 300 to 172800, but
   * any positive value is accepted so tests can use short ones.
   *
   * @default 86400
   */
  tokenLifetimeSeconds?: number;
  /**
   * Inactive and disabled clients cannot get tokens (`invalid_client`).
   *
   * @default "active"
   */
  state?: EmulatorClientState;
  /**
   * Permissions granted to tokens of this client directly, such as
   * `"oauth:client:view"`; `*` matches any one segment. Its roles'
   * permissions ({@linkcode EmulatorClient.roleDivisions}) add to these.
   *
   * @default []
   */
  permissions?: readonly string[];
  /**
   * Roles the client holds, each in a division; their ids must be among the
   * emulator's {@linkcode GenesysEmulatorOptions.roles}. A client may grant
   * a new client only role-division pairs it holds itself.
   *
   * @default []
   */
  roleDivisions?: readonly EmulatorRoleDivision[];
  /**
   * Description shown by the API.
   *
   * @default undefined (none)
   */
  description?: string;
}

/** Options for {@linkcode startGenesysEmulator}. */
export interface GenesysEmulatorOptions {
  /**
   * Roles of the organization, which clients hold through `roleDivisions`.
   *
   * @default []
   */
  roles?: readonly EmulatorRole[];
  /**
   * OAuth clients present from the start.
   *
   * @default []
   */
  clients?: readonly EmulatorClient[];
  /**
   * Source of time for expiry, rate-limit windows and `Retry-After` dates.
   *
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Interface to listen on.
   *
   * @default "127.0.0.1"
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks any free port.
   *
   * @default 0
   */
  port?: number;
  /**
   * The organization reported by `/api/v2/tokens/me`.
   *
   * @default { id: "00000000-0000-4000-8000-00000000e0e0", name: "Genesys Emulator" }
   */
  organization?: { id: string; name: string };
  /**
   * Whether regenerating a secret revokes the client's tokens at once; if
   * not, they stay valid until they expire. Genesys does not document which.
   *
   * @default false
   */
  revokeTokensOnRegenerate?: boolean;
  /**
   * Requests per token per minute on `/api/v2/*`, or no limit. Genesys
   * allows a client-credentials token 300 (`token.rate.per.minute`); past it
   * the emulator answers 429 `too.many.requests.retry.after` with
   * `Retry-After`, as Genesys does.
   *
   * @default undefined (no limit)
   */
  apiRateLimitPerMinute?: number;
  /**
   * Tokens one client may create per minute at `/oauth/token`, or no limit.
   * Genesys limits this per client (`client.credentials.token.rate.per.minute`,
   * 300). Past it the emulator answers 400 `invalid_request` with a
   * description starting `rate limit exceeded;`, the text Genesys's own
   * Terraform provider retries on; failed authentications do not count.
   *
   * @default undefined (no limit)
   */
  tokenRateLimitPerMinute?: number;
  /**
   * The status past {@linkcode GenesysEmulatorOptions.tokenRateLimitPerMinute}:
   * 400 (`invalid_request`, what Genesys's Terraform provider expects) or 429
   * (with `Retry-After`). Genesys does not document which; a client should
   * treat both as throttling.
   *
   * @default 400
   */
  tokenRateLimitStatus?: 400 | 429;
  /**
   * The division that roles granted through the deprecated `roleIds` field
   * of a create or update body land in (Genesys grants them in the home
   * division).
   *
   * @default "00000000-0000-4000-8000-0000000d0000"
   */
  homeDivisionId?: string;
  /**
   * How many times a usage query's results answer `queryStatus: "Running"`
   * before they answer `"Complete"` with the rows, so that a client must poll
   * as it must on Genesys.
   *
   * @default 1
   */
  usageQueryRunningPolls?: number;
  /**
   * The `token_type` of issued tokens.
   *
   * @default "bearer"
   */
  tokenType?: string;
}

/**
 * A failure to inject into upcoming requests.
 *
 * - `status`: the request is not processed; the emulator answers `status` with
 *   `body` (or a plausible default body for the endpoint) and `retryAfter` as
 *   the `Retry-After` header. An API 429 always carries `Retry-After` (default
 *   `"1"`), as Genesys does; pass `retryAfter: ""` to leave it out.
 * - `delay`: the request is processed at once, but the response is held back
 *   for `ms` real milliseconds (a client that gives up has still, say, rotated
 *   a secret).
 * - `reset`: the request is processed, then the connection dies part-way
 *   through the body, so the client's `fetch()` or body read rejects.
 * - `body`: the request is not processed; the emulator answers with exactly
 *   `body` (default status 200, `application/json`).
 */
export type EmulatorFault =
  | {
    kind: "status";
    status: number;
    retryAfter?: string;
    body?: string;
    contentType?: string;
    headers?: Record<string, string>;
  }
  | { kind: "delay"; ms: number }
  | { kind: "reset" }
  | { kind: "body"; body: string; status?: number; contentType?: string };

/** Counters kept by the emulator since it started or since the last reset. */
export interface EmulatorStats {
  /** Requests to `/oauth/token`, whatever their outcome. */
  tokenRequests: number;
  /** Token requests by the client id in their `Authorization` header. */
  tokenRequestsByClient: Record<string, number>;
  /** Token requests answered with a status of 400 or more. */
  tokenFailures: number;
  /** Requests to `/api/v2/*`, whatever their outcome. */
  apiRequests: number;
  /** API requests by the client of the token presented (if the token is known). */
  apiRequestsByClient: Record<string, number>;
  /** API requests answered 401. */
  apiUnauthorized: number;
  /** API requests that presented a token that had expired. */
  expiredTokenUses: number;
  /** Secrets regenerated, through the API or {@linkcode GenesysEmulator.regenerateSecret}. */
  secretRegenerations: number;
}

/** A running emulator; close it with {@linkcode GenesysEmulator.close} or `await using`. */
export interface GenesysEmulator extends AsyncDisposable {
  /** Base URL, such as `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The token endpoint: {@linkcode GenesysEmulator.url} + `/oauth/token`. */
  readonly tokenUrl: string;
  /** The API base URL; the same origin as {@linkcode GenesysEmulator.url}. */
  readonly apiUrl: string;
  /**
   * Resolves once the server accepts connections. On Deno and Bun it has
   * already resolved when {@linkcode startGenesysEmulator} returns; on Node
   * the port is known only then, and reading `url` before it throws.
   */
  readonly ready: Promise<void>;
  /**
   * Adds an OAuth client.
   *
   * @param client The client; its id must be new.
   */
  addClient(client: EmulatorClient): void;
  /**
   * Reads a client's current secret.
   *
   * @param clientId An existing client id.
   * @returns The secret.
   */
  getClientSecret(clientId: string): string;
  /**
   * Regenerates a client's secret behind the caller's back: the old secret
   * stops working at once.
   *
   * @param clientId An existing client id.
   * @param newSecret The new secret; a random one if left out.
   * @returns The new secret.
   */
  regenerateSecret(clientId: string, newSecret?: string): string;
  /**
   * Changes a client's state behind the caller's back. Only `active` clients
   * get tokens. Existing tokens survive unless `revokeTokens` says otherwise
   * (the API's `PUT` always revokes them when the state is not `active`, as
   * Genesys does).
   *
   * @param clientId An existing client id.
   * @param state The new state.
   * @param options Whether the client's tokens go too.
   */
  setClientState(
    clientId: string,
    state: EmulatorClientState,
    options?: {
      /**
       * Also invalidate the client's tokens.
       *
       * @default true for `disabled`, false otherwise
       */
      readonly revokeTokens?: boolean;
    },
  ): void;
  /**
   * Reads a client's state.
   *
   * @param clientId An existing client id.
   * @returns The state.
   */
  getClientState(clientId: string): EmulatorClientState;
  /**
   * The ids of every client, in the order they were added or created.
   *
   * @returns The ids.
   */
  clientIds(): string[];
  /**
   * Mints a valid token without an HTTP request (not counted in stats).
   *
   * @param clientId An existing client id, active or not.
   * @returns The access token.
   */
  issueToken(clientId: string): string;
  /**
   * Revokes one token; unknown tokens are ignored.
   *
   * @param token The access token.
   */
  revokeToken(token: string): void;
  /**
   * Revokes every token issued to a client.
   *
   * @param clientId The client id.
   */
  revokeTokensOf(clientId: string): void;
  /**
   * Makes the next `count` requests to `/oauth/token` fail with `fault`.
   *
   * @param fault What to do.
   * @param count How many requests; 1 if left out.
   */
  injectTokenFaults(fault: EmulatorFault, count?: number): void;
  /**
   * Makes the next `count` requests to `/api/v2/*` fail with `fault`.
   *
   * @param fault What to do.
   * @param count How many requests; 1 if left out.
   */
  injectApiFaults(fault: EmulatorFault, count?: number): void;
  /** Drops every fault not yet delivered. */
  clearFaults(): void;
  /**
   * Reads the counters.
   *
   * @returns A snapshot; later requests do not change it.
   */
  stats(): EmulatorStats;
  /** Sets every counter back to zero. */
  resetStats(): void;
  /**
   * Stops the server. Responses held back by `delay` faults are released at
   * once. Calling it again returns the same promise.
   *
   * @returns A promise that resolves once the server has stopped.
   */
  close(): Promise<void>;
}

/** Default token lifetime of a Genesys OAuth client, in seconds. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 86_400;
export const RATE_WINDOW_MS = 60_000;
/**
 * Advertised in `inin-ratelimit-allowed` when no limit is configured, large
 * enough that a client throttling itself on the headers never slows down.
 */
export const UNLIMITED_ADVERTISED = 2_147_483_647;
export const DEFAULT_HOME_DIVISION_ID = "00000000-0000-4000-8000-0000000d0000";
export const DEFAULT_ORGANIZATION = Object.freeze({
  id: "00000000-0000-4000-8000-00000000e0e0",
  name: "Genesys Emulator",
});
export const INVALID_CLIENT_DESCRIPTION = "authentication failed";
export const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([
  101,
  204,
  205,
  304,
]);

export interface ClientRecord {
  readonly id: string;
  name: string;
  secret: string;
  lifetimeSeconds: number;
  state: EmulatorClientState;
  permissions: readonly string[];
  roleDivisions: readonly EmulatorRoleDivision[];
  description: string | undefined;
  readonly dateCreated: string;
  dateModified: string;
}

/** Tokens a client created in the current one-minute window. */
export interface TokenWindow {
  start: number;
  count: number;
}

export interface TokenRecord {
  readonly clientId: string;
  readonly expiresAt: number;
  readonly scopes: readonly string[];
  revoked: boolean;
  windowStart: number;
  windowCount: number;
}

export interface PendingFault {
  readonly fault: EmulatorFault;
  remaining: number;
}

export interface PendingDelay {
  readonly timer: ReturnType<typeof setTimeout>;
  readonly release: () => void;
}

export type ApiRoute =
  | { kind: "tokensMe" }
  | { kind: "clients" }
  | { kind: "client"; id: string }
  | { kind: "clientSecret"; id: string }
  | { kind: "usageQuery"; id: string }
  | { kind: "usageSummary"; id: string }
  | { kind: "usageResults"; id: string; executionId: string };

/** What an authenticated API handler gets to work with. */
export interface ApiContext {
  readonly request: Request;
  readonly token: string;
  readonly record: TokenRecord;
  readonly contextId: string;
  readonly headers: Headers;
}
