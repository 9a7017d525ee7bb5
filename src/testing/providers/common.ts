/**
 * What the five provider emulators (Okta, Entra ID, Keycloak, Cognito and
 * Auth0) share: the server and its lifecycle, JWT-shaped tokens and their
 * book on the injected clock, client authentication read from a Basic header
 * or the form body, the stand-in protected resource, injected throttling, a
 * fixed-window rate limiter, injected token faults, and statistics. Each
 * provider's module keeps its own bodies, status codes and rules; only the
 * plumbing is here.
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
import {
  bodyFaultResponse,
  pendingFault,
  resetResponse,
  statusFaultResponse,
  takeFault,
} from "../emulator_faults.ts";
import type { EmulatorFault, PendingFault } from "../emulator_types.ts";

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

/** Counters kept by a provider emulator since it started or was reset. */
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
   * Tokens issued by the token endpoint, by the id of the secret that
   * authenticated the request (Okta's `ocs…` id, Entra's `keyId`, Keycloak's
   * `secretState().secretId`, Cognito's `ClientSecretId`, Auth0's rotation
   * count of the client, from `"0"`).
   */
  tokensBySecret: Record<string, number>;
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
  /** The secret it was obtained with (its id), so a revoke can reach it. */
  readonly secretId: string | undefined;
  /** Its audience; a resource answer leaves `aud` out when there is none. */
  readonly audience: string | undefined;
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
  lookup(
    token: string | undefined,
  ): IssuedToken | "missing" | "unknown" | "revoked" | "expired" {
    if (token === undefined) return "missing";
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

/** Routes of one provider, given to {@linkcode ProviderHost.listen}. */
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

/** The path of the stand-in protected resource every emulator serves. */
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
  #server: LocalServer | undefined;
  #ready: Promise<void> | undefined;
  #throttles = 0;
  #stats: ProviderEmulatorStats = emptyProviderStats();
  #closing: Promise<void> | undefined;

  constructor(name: string, options: ProviderEmulatorOptions) {
    this.#name = name;
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
   * @param routes The provider's answers.
   * @returns Resolves once the server accepts connections.
   */
  listen(routes: ProviderRoutes): Promise<void> {
    if (this.#server) throw new Error("listen() was already called");
    this.#server = serveLocally({
      hostname: this.#hostname,
      port: this.#port,
      onError: () => routes.serverError(),
    }, (request) => this.#handle(request, routes));
    this.#ready = this.#server.listening.then(() => {});
    return this.#ready;
  }

  /** What {@linkcode ProviderHost.listen} returned. */
  get ready(): Promise<void> {
    if (!this.#ready) throw new Error("listen() was not called");
    return this.#ready;
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
    if (!auth.basic) this.countBodyClient(auth.bodyId);
    return auth;
  }

  /**
   * Counts the client id of a token request's body when the request had no
   * Basic header (whose id the host counted when the request came in).
   *
   * @param clientId The body's `client_id`, if any.
   */
  countBodyClient(clientId: string | undefined): void {
    if (clientId !== undefined) {
      increment(this.#stats.tokenRequestsByClient, clientId);
    }
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
    increment(this.#stats.tokensBySecret, secretId);
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

  async #handle(request: Request, routes: ProviderRoutes): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (routes.isTokenPath(path)) {
      this.#stats.tokenRequests++;
      // A form's client id is counted when the provider reads the form
      // (countBodyClient): cloning the request here would make Deno warn
      // about request.signal on every response.
      const basic = parseBasicCredentials(request.headers.get("authorization"));
      if (basic) increment(this.#stats.tokenRequestsByClient, basic[0].id);
      let response: Response;
      if (this.#throttles > 0) {
        this.#throttles--;
        response = routes.throttled();
      } else {
        response = await routes.token(request, path);
      }
      if (response.status >= 400) this.#stats.tokenFailures++;
      return response;
    }
    if (path === RESOURCE_PATH) return this.#resource(request);
    if (routes.isApiPath(path)) {
      this.#stats.apiRequests++;
      const response = await routes.api(request, path);
      if (response.status >= 400) this.#stats.apiFailures++;
      return response;
    }
    return routes.notFound();
  }

  #resource(request: Request): Response {
    this.#stats.resourceRequests++;
    const token = bearerToken(request.headers.get("authorization"));
    const record = this.tokens.lookup(token);
    if (typeof record === "string") {
      this.#stats.resourceUnauthorized++;
      return json(401, { message: "Unauthorized" }, {
        "www-authenticate": record === "missing"
          ? 'Bearer realm="emulator"'
          : `Bearer realm="emulator", error="invalid_token", error_description="The access token is ${
            record === "expired" ? "expired" : "invalid"
          }"`,
      });
    }
    return json(200, {
      client_id: record.clientId,
      scope: record.scope,
      ...(record.audience === undefined ? {} : { aud: record.audience }),
    });
  }
}

/**
 * The controls every provider emulator offers, delegated to its
 * {@linkcode ProviderHost}; a provider's class extends it, sets up its state
 * and calls `host.listen(routes)` at the end of its constructor.
 */
export abstract class HostedProviderEmulator implements ProviderEmulator {
  /** The shared plumbing; for the provider's class only. */
  protected readonly host: ProviderHost;

  constructor(name: string, options: ProviderEmulatorOptions) {
    this.host = new ProviderHost(name, options);
  }

  abstract readonly tokenUrl: string;
  abstract readonly apiUrl: string;

  get ready(): Promise<void> {
    return this.host.ready;
  }

  get url(): string {
    return this.host.url;
  }

  get resourceUrl(): string {
    return `${this.url}${RESOURCE_PATH}`;
  }

  throttleTokenRequests(count: number = 1): void {
    this.host.throttle(count);
  }

  revokeTokensOf(clientId: string): void {
    this.host.tokens.revokeWhere((record) => record.clientId === clientId);
  }

  stats(): ProviderEmulatorStats {
    return this.host.stats();
  }

  resetStats(): void {
    this.host.resetStats();
  }

  close(): Promise<void> {
    return this.host.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Token-fault controls of the emulators that offer them (Cognito, Auth0). */
export interface TokenFaultInjection {
  /**
   * Makes the next `count` token requests fail with `fault` (as the Genesys
   * emulator's faults do); an injected status without a body gets this
   * provider's error body.
   *
   * @param fault What to do.
   * @param count How many requests; 1 if left out.
   */
  injectTokenFaults(fault: EmulatorFault, count?: number): void;
  /** Drops every fault not yet delivered. */
  clearFaults(): void;
}

/**
 * A {@linkcode HostedProviderEmulator} whose token endpoint also delivers
 * injected faults: the provider's `token` route answers through
 * {@linkcode FaultInjectingProviderEmulator.faulted}.
 */
export abstract class FaultInjectingProviderEmulator
  extends HostedProviderEmulator
  implements TokenFaultInjection {
  readonly #faults: TokenFaults;

  constructor(
    name: string,
    options: ProviderEmulatorOptions,
    faultBody: (status: number) => string,
  ) {
    super(name, options);
    this.#faults = new TokenFaults(faultBody);
  }

  injectTokenFaults(fault: EmulatorFault, count: number = 1): void {
    this.#faults.inject(fault, count);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  override close(): Promise<void> {
    // Held-back responses would keep the server's shutdown waiting.
    this.#faults.releaseAll();
    return super.close();
  }

  /** Answers a token request through the next fault, else with `process`. */
  protected faulted(
    request: Request,
    process: () => Promise<Response>,
  ): Promise<Response> {
    return this.#faults.apply(request, this.host.clock.now(), process);
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

/** The body as text, or `undefined` when it cannot be read. */
export async function readText(request: Request): Promise<string | undefined> {
  try {
    return await request.text();
  } catch {
    return undefined;
  }
}

/** A fixed-window limit: `limit` requests per `windowSeconds`. */
export interface RateLimit {
  /** Requests allowed in one window. */
  readonly limit: number;
  /** The window's length in seconds. */
  readonly windowSeconds: number;
}

/** The outcome of counting one request against a {@linkcode RateLimit}. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** When the window ends, in epoch seconds. */
  readonly resetEpochSeconds: number;
  /** Seconds until then, at least 1. */
  readonly retryAfterSeconds: number;
}

/** Counts requests against a {@linkcode RateLimit} on the emulator's clock. */
export class FixedWindow {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  #start = Number.NEGATIVE_INFINITY;
  #count = 0;

  constructor(limit: RateLimit, clock: Clock) {
    if (!Number.isInteger(limit.limit) || limit.limit < 1) {
      throw new RangeError(
        `A rate limit must allow a positive whole number of requests, got ${limit.limit}`,
      );
    }
    if (!(limit.windowSeconds > 0 && Number.isFinite(limit.windowSeconds))) {
      throw new RangeError(
        `A rate-limit window must be a positive number of seconds, got ${limit.windowSeconds}`,
      );
    }
    this.#limit = limit;
    this.#clock = clock;
  }

  take(): RateDecision {
    const now = this.#clock.now();
    const windowMs = this.#limit.windowSeconds * 1000;
    if (now >= this.#start + windowMs || now < this.#start) {
      this.#start = now;
      this.#count = 0;
    }
    this.#count++;
    const end = this.#start + windowMs;
    return {
      allowed: this.#count <= this.#limit.limit,
      limit: this.#limit.limit,
      remaining: Math.max(0, this.#limit.limit - this.#count),
      resetEpochSeconds: Math.ceil(end / 1000),
      retryAfterSeconds: Math.max(1, Math.ceil((end - now) / 1000)),
    };
  }
}

/**
 * Faults injected into upcoming token requests, delivered as the Genesys
 * emulator delivers them; an injected status without a body gets the
 * provider's own error body. The host has counted the request already.
 */
export class TokenFaults {
  readonly #queue: PendingFault[] = [];
  readonly #held = new Set<() => void>();
  readonly #defaultBody: (status: number) => string;
  #closed = false;

  constructor(defaultBody: (status: number) => string) {
    this.#defaultBody = defaultBody;
  }

  inject(fault: EmulatorFault, count: number): void {
    this.#queue.push(pendingFault(fault, count));
  }

  clear(): void {
    this.#queue.length = 0;
  }

  /** Answers through the next fault, if any, else with `process()`. */
  async apply(
    request: Request,
    now: number,
    process: () => Promise<Response>,
  ): Promise<Response> {
    const fault = takeFault(this.#queue);
    switch (fault?.kind) {
      case undefined:
        return await process();
      case "status": {
        const json = (fault.contentType ?? "application/json").includes("json");
        const body = fault.body ??
          (json ? this.#defaultBody(fault.status) : undefined);
        return statusFaultResponse(
          { ...fault, body },
          request,
          "token",
          "",
          now,
        );
      }
      case "body":
        return bodyFaultResponse(fault, "token", "");
      case "delay": {
        const response = await process();
        await this.#hold(fault.ms);
        return response;
      }
      case "reset":
        return resetResponse(await process());
    }
  }

  /** Releases every held response, so the server can stop. */
  releaseAll(): void {
    this.#closed = true;
    for (const release of [...this.#held]) release();
  }

  #hold(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.#held.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      this.#held.add(release);
    });
  }
}
