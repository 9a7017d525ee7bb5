/**
 * What the Okta, Entra ID and Keycloak emulators share: the server and its
 * lifecycle, JWT-shaped tokens and their book, client authentication read
 * from a Basic header or the form body, the stand-in protected resource,
 * throttling and statistics. Each provider's module keeps its own bodies,
 * status codes and rules; only the plumbing is here.
 *
 * @module
 */
import type { Clock } from "../../clock.ts";
import { systemClock } from "../../clock.ts";
import { type LocalServer, serveLocally } from "../http_server.ts";
import { json } from "../emulator_responses.ts";
import {
  bearerToken,
  type Credentials,
  parseBasicCredentials,
} from "../emulator_parsing.ts";
import { increment, randomBase64Url } from "../emulator_helpers.ts";

/** Options every provider emulator takes. */
export interface ProviderEmulatorOptions {
  /**
   * Source of time for token expiry, secret expiry and propagation.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Interface to listen on.
   *
   * @default "127.0.0.1"
   */
  readonly hostname?: string;
  /**
   * Port to listen on; 0 picks any free port.
   *
   * @default 0
   */
  readonly port?: number;
  /**
   * How long a newly created secret is refused by the token endpoint (as a
   * wrong secret) before it starts to work, in ms on the emulator's clock: a
   * number, or a function called once per new secret (say, a draw from the
   * 4 000–18 000 ms users of Entra ID report). No provider documents a
   * delay. Secrets given in the options work at once.
   *
   * @default 0
   */
  readonly propagationDelayMs?: number | (() => number);
  /**
   * Whether removing or deactivating a secret also kills the access tokens
   * issued with it. The providers issue self-contained JWTs and document no
   * revocation, so by default the tokens live until they expire.
   *
   * @default false
   */
  readonly revokeTokensWithSecret?: boolean;
}

/**
 * Counters kept by a provider emulator since it started or was reset. The
 * fields are those of the Cognito and Auth0 emulators' stats (branch emu-b),
 * plus `tokensBySecret`, so one type can serve every provider.
 */
export interface ProviderEmulatorStats {
  /** Requests to the token endpoint, whatever their outcome. */
  tokenRequests: number;
  /** Token requests by the client id they presented (header or body). */
  tokenRequestsByClient: Record<string, number>;
  /** Token requests answered with a status of 400 or more. */
  tokenFailures: number;
  /** Tokens issued by the token endpoint. */
  tokensIssued: number;
  /**
   * Tokens issued, by the id of the secret that authenticated the request
   * (Okta's `ocs…` id, Entra's `keyId`, Keycloak's `secretState().secretId`).
   *
   * @default {} (present on the Okta, Entra ID and Keycloak emulators)
   */
  tokensBySecret?: Record<string, number>;
  /** Requests to the secret-management API, whatever their outcome. */
  apiRequests: number;
  /** API requests answered with a status of 400 or more. */
  apiFailures: number;
  /** Requests to the stand-in protected resource. */
  resourceRequests: number;
  /** Resource requests answered 401. */
  resourceUnauthorized: number;
  /** Secrets created or regenerated, through the API or the control methods. */
  secretsCreated: number;
  /** Secrets deleted, deactivated or replaced. */
  secretsRevoked: number;
}

/** What every provider emulator offers besides its own controls. */
export interface ProviderEmulator extends AsyncDisposable {
  /** Base URL, such as `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The provider's client-credentials token endpoint. */
  readonly tokenUrl: string;
  /** Base URL of the provider's secret-management API. */
  readonly apiUrl: string;
  /**
   * A protected resource standing in for the caller's own API (not part of
   * the provider): `GET` answers 200 with the token's client id and scope
   * for a live token of this emulator, 401 with
   * `WWW-Authenticate: Bearer error="invalid_token"` otherwise.
   */
  readonly resourceUrl: string;
  /**
   * Resolves once the server accepts connections (at once on Deno and Bun;
   * on Node read the URLs only after it resolved).
   */
  readonly ready: Promise<void>;
  /**
   * Makes the next `count` token requests fail with the provider's
   * throttling answer, before any other check.
   *
   * @param count How many requests; 1 if left out.
   */
  throttleTokenRequests(count?: number): void;
  /**
   * Kills every access token issued to a client.
   *
   * @param clientId The client id.
   */
  revokeTokensOf(clientId: string): void;
  /**
   * Reads the counters.
   *
   * @returns A snapshot; later requests do not change it.
   */
  stats(): ProviderEmulatorStats;
  /** Sets every counter back to zero. */
  resetStats(): void;
  /**
   * Stops the server; calling it again returns the same promise.
   *
   * @returns A promise that resolves once the server has stopped.
   */
  close(): Promise<void>;
}

/** What the book knows of an issued token. */
export interface IssuedToken {
  readonly clientId: string;
  readonly secretId: string | undefined;
  readonly audience: string;
  readonly scope: string;
  readonly expiresAt: number;
  readonly claims: Readonly<Record<string, unknown>>;
  revoked: boolean;
}

/** The shape of a token request's client authentication. */
export interface ClientAuthentication {
  /** Candidates from `Authorization: Basic` (decoded, then raw). */
  readonly basic: readonly Credentials[] | undefined;
  /** `client_id` of the form body. */
  readonly bodyId: string | undefined;
  /** `client_secret` of the form body. */
  readonly bodySecret: string | undefined;
}

/** A non-negative finite number of ms, or a RangeError naming the option. */
export function validDelay(name: string, value: number | undefined): number {
  const ms = value ?? 0;
  if (!(ms >= 0 && Number.isFinite(ms))) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
  }
  return ms;
}

/** A positive lifetime in seconds, or a RangeError naming the option. */
export function validSeconds(
  name: string,
  value: number | undefined,
  fallback: number,
): number {
  const seconds = value ?? fallback;
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return seconds;
}

/** A positive integer count, or a RangeError. */
export function validCount(count: number): number {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  return count;
}

/** Random characters from `alphabet`. */
export function randomFrom(alphabet: string, length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (byte) => alphabet[byte % alphabet.length]).join(
    "",
  );
}

/** The stand-in answer, in JSON, with `no-store`. */
export function noStore(
  status: number,
  body: unknown,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("cache-control", "no-store");
  all.set("pragma", "no-cache");
  return json(status, body, all);
}

/**
 * Issues and looks up JWT-shaped access tokens. The signature is random
 * bytes: resource servers of the emulator look tokens up instead of checking
 * signatures, and clients that decode the payload (Keycloak's admin client
 * reads `exp`) see the claims a real token carries.
 */
export class TokenBook {
  readonly #clock: Clock;
  readonly #tokens = new Map<string, IssuedToken>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  mint(
    issued: Omit<IssuedToken, "revoked" | "expiresAt" | "claims">,
    lifetimeSeconds: number,
    claims: Record<string, unknown>,
  ): string {
    const now = this.#clock.now();
    const expiresAt = now + lifetimeSeconds * 1000;
    const payload = {
      ...claims,
      iat: Math.floor(now / 1000),
      exp: Math.floor(expiresAt / 1000),
    };
    const token = [
      base64UrlJson({ alg: "RS256", typ: "JWT", kid: "emulator" }),
      base64UrlJson(payload),
      randomBase64Url(32),
    ].join(".");
    // The map would grow without end under a long load test; expired
    // tokens are dropped whenever a new one is minted past a bound.
    if (this.#tokens.size > 10_000) this.#sweep(now);
    this.#tokens.set(token, {
      ...issued,
      expiresAt,
      claims: payload,
      revoked: false,
    });
    return token;
  }

  /** The live record of a token, or why it is not live. */
  lookup(token: string): IssuedToken | "unknown" | "revoked" | "expired" {
    const record = this.#tokens.get(token);
    if (!record) return "unknown";
    if (record.revoked) return "revoked";
    if (this.#clock.now() >= record.expiresAt) return "expired";
    return record;
  }

  revokeWhere(match: (record: IssuedToken) => boolean): void {
    for (const record of this.#tokens.values()) {
      if (match(record)) record.revoked = true;
    }
  }

  #sweep(now: number): void {
    for (const [token, record] of this.#tokens) {
      if (now >= record.expiresAt || record.revoked) this.#tokens.delete(token);
    }
  }
}

function base64UrlJson(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll(
    "/",
    "_",
  ).replace(/=+$/, "");
}

/** Routes of one provider, given to {@linkcode ProviderHost}. */
export interface ProviderRoutes {
  /** Whether `path` is the token endpoint (counted as a token request). */
  isTokenPath(path: string): boolean;
  /** Whether `path` belongs to the admin API (counted as an API request). */
  isApiPath(path: string): boolean;
  /** Answers a token request. */
  token(request: Request, path: string): Promise<Response>;
  /** Answers the provider's throttling of a token request. */
  throttled(): Response;
  /** Answers an admin API request. */
  api(request: Request, path: string): Promise<Response> | Response;
  /** Answers any other path. */
  notFound(): Response;
  /** Answers when a handler throws. */
  serverError(): Response;
}

/** The path of the stand-in protected resource (as on branch emu-b). */
export const RESOURCE_PATH = "/resource";

/**
 * The server, counters, throttling and token book behind each provider
 * emulator. A provider emulator holds one, sets up its state, then calls
 * {@linkcode ProviderHost.listen}: a set-up that throws leaves no server
 * behind.
 */
export class ProviderHost {
  readonly clock: Clock;
  readonly tokens: TokenBook;
  readonly #propagationDelay: () => number;
  readonly revokeTokensWithSecret: boolean;
  readonly #name: string;
  readonly #hostname: string;
  readonly #port: number;
  readonly #routes: ProviderRoutes;
  #server: LocalServer | undefined;
  #throttles = 0;
  #stats: ProviderEmulatorStats = emptyProviderStats();
  #closing: Promise<void> | undefined;

  constructor(
    name: string,
    options: ProviderEmulatorOptions,
    routes: ProviderRoutes,
  ) {
    this.#name = name;
    this.#routes = routes;
    this.clock = options.clock ?? systemClock;
    this.tokens = new TokenBook(this.clock);
    const delay = options.propagationDelayMs;
    this.#propagationDelay = typeof delay === "function"
      ? () => validDelay("propagationDelayMs()", delay())
      : ((ms) => () => ms)(validDelay("propagationDelayMs", delay));
    this.revokeTokensWithSecret = options.revokeTokensWithSecret ?? false;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
  }

  /**
   * Starts serving; call once, after the provider's set-up.
   *
   * @returns Resolves once the server accepts connections.
   */
  listen(): Promise<void> {
    if (this.#server) throw new Error("listen() was already called");
    this.#server = serveLocally({
      hostname: this.#hostname,
      port: this.#port,
      onError: () => this.#routes.serverError(),
    }, (request) => this.#handle(request));
    return this.#server.listening.then(() => {});
  }

  get url(): string {
    const origin = this.#server?.origin();
    if (origin === undefined) {
      throw new Error(
        `The ${this.#name} emulator is still starting: await emulator.ready before reading its URL (needed on Node)`,
      );
    }
    return origin;
  }

  throttle(count: number): void {
    this.#throttles += validCount(count);
  }

  /**
   * Reads client authentication from both places a client may put it, and
   * counts a client id sent only in the form.
   *
   * @param request The token request.
   * @param form Its form body.
   * @returns What was sent where.
   */
  readClientAuthentication(
    request: Request,
    form: URLSearchParams,
  ): ClientAuthentication {
    const auth: ClientAuthentication = {
      basic: parseBasicCredentials(request.headers.get("authorization")),
      bodyId: form.get("client_id") ?? undefined,
      bodySecret: form.get("client_secret") ?? undefined,
    };
    if (!auth.basic && auth.bodyId !== undefined) {
      increment(this.#stats.tokenRequestsByClient, auth.bodyId);
    }
    return auth;
  }

  /**
   * When a secret created now starts to work.
   *
   * @returns A time in ms on the clock.
   */
  usableAt(): number {
    return this.clock.now() + this.#propagationDelay();
  }

  /** Counts a token issued with a secret. */
  issued(secretId: string): void {
    this.#stats.tokensIssued++;
    increment(this.#stats.tokensBySecret!, secretId);
  }

  /** Counts a secret created after start (seeded ones are not counted). */
  secretCreated(): void {
    this.#stats.secretsCreated++;
  }

  /**
   * Counts a secret that stopped working by request, and kills its tokens
   * when the switch says so.
   */
  secretRemoved(clientId: string, secretId: string): void {
    this.#stats.secretsRevoked++;
    if (!this.revokeTokensWithSecret) return;
    this.tokens.revokeWhere((record) =>
      record.clientId === clientId && record.secretId === secretId
    );
  }

  stats(): ProviderEmulatorStats {
    return {
      ...this.#stats,
      tokenRequestsByClient: { ...this.#stats.tokenRequestsByClient },
      tokensBySecret: { ...this.#stats.tokensBySecret },
    };
  }

  resetStats(): void {
    this.#stats = emptyProviderStats();
  }

  close(): Promise<void> {
    this.#closing ??= this.#server?.shutdown() ?? Promise.resolve();
    return this.#closing;
  }

  async #handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (this.#routes.isTokenPath(path)) {
      this.#stats.tokenRequests++;
      // A form's client id is counted when the provider reads the form
      // (readClientAuthentication): cloning the request here would make
      // Deno warn about request.signal on every response.
      const basic = parseBasicCredentials(request.headers.get("authorization"));
      if (basic) increment(this.#stats.tokenRequestsByClient, basic[0].id);
      let response: Response;
      if (this.#throttles > 0) {
        this.#throttles--;
        response = this.#routes.throttled();
      } else {
        response = await this.#routes.token(request, path);
      }
      if (response.status >= 400) this.#stats.tokenFailures++;
      return response;
    }
    if (path === RESOURCE_PATH) return this.#resource(request);
    if (this.#routes.isApiPath(path)) {
      this.#stats.apiRequests++;
      const response = await this.#routes.api(request, path);
      if (response.status >= 400) this.#stats.apiFailures++;
      return response;
    }
    return this.#routes.notFound();
  }

  #resource(request: Request): Response {
    this.#stats.resourceRequests++;
    const token = bearerToken(request.headers.get("authorization"));
    const record = token === undefined ? "unknown" : this.tokens.lookup(token);
    if (typeof record === "string") {
      this.#stats.resourceUnauthorized++;
      return json(401, { message: "Unauthorized" }, {
        "www-authenticate": token === undefined
          ? 'Bearer realm="emulator"'
          : `Bearer realm="emulator", error="invalid_token", error_description="The access token is ${
            record === "expired" ? "expired" : "invalid"
          }"`,
      });
    }
    return json(200, {
      client_id: record.clientId,
      scope: record.scope,
      aud: record.audience,
    });
  }
}

function emptyProviderStats(): ProviderEmulatorStats {
  return {
    tokenRequests: 0,
    tokenRequestsByClient: {},
    tokenFailures: 0,
    tokensIssued: 0,
    tokensBySecret: {},
    apiRequests: 0,
    apiFailures: 0,
    resourceRequests: 0,
    resourceUnauthorized: 0,
    secretsCreated: 0,
    secretsRevoked: 0,
  };
}

/** Whether a value is a plain JSON object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
