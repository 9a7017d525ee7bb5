/**
 * What the Cognito and Auth0 emulators share: the token book (minting,
 * checking and revoking access tokens on the injected clock), a fixed-window
 * rate limiter, the stand-in protected resource, request statistics and the
 * server's lifecycle. Provider-specific bodies stay in each emulator.
 *
 * @module
 */
import type { Clock } from "../../clock.ts";
import {
  bodyFaultResponse,
  pendingFault,
  resetResponse,
  statusFaultResponse,
  takeFault,
} from "../emulator_faults.ts";
import { increment, randomBase64Url } from "../emulator_helpers.ts";
import { bearerToken } from "../emulator_parsing.ts";
import { json } from "../emulator_responses.ts";
import type { EmulatorFault, PendingFault } from "../emulator_types.ts";
import { type LocalServer, serveLocally } from "../http_server.ts";

// One type for every provider emulator (./testing exports it once).
import type { ProviderEmulatorStats } from "./common.ts";
export type { ProviderEmulatorStats };

export function emptyProviderStats(): ProviderEmulatorStats {
  return {
    tokenRequests: 0,
    tokenRequestsByClient: {},
    tokenFailures: 0,
    tokensIssued: 0,
    apiRequests: 0,
    apiFailures: 0,
    resourceRequests: 0,
    resourceUnauthorized: 0,
    secretsCreated: 0,
    secretsRevoked: 0,
  };
}

export function copyStats(stats: ProviderEmulatorStats): ProviderEmulatorStats {
  return {
    ...stats,
    tokenRequestsByClient: { ...stats.tokenRequestsByClient },
  };
}

export function countTokenRequest(
  stats: ProviderEmulatorStats,
  clientId: string | undefined,
): void {
  stats.tokenRequests++;
  if (clientId !== undefined) increment(stats.tokenRequestsByClient, clientId);
}

/** An issued access token. */
export interface IssuedToken {
  readonly clientId: string;
  readonly audience: string | undefined;
  readonly scopes: readonly string[];
  readonly expiresAt: number;
  /** The secret it was obtained with (its id), so a revoke can reach it. */
  readonly secretId: string | undefined;
  revoked: boolean;
}

/** Why a token is not accepted, or the token. */
export type TokenCheck =
  | { readonly ok: true; readonly token: IssuedToken }
  | { readonly ok: false; readonly reason: "missing" | "unknown" | "expired" };

/** Access tokens of one emulator, judged on its clock. */
export class TokenBook {
  readonly #clock: Clock;
  readonly #tokens = new Map<string, IssuedToken>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  mint(
    fields: Omit<IssuedToken, "revoked" | "expiresAt">,
    lifetimeSeconds: number,
  ): string {
    const value = randomBase64Url(48);
    this.#tokens.set(value, {
      ...fields,
      expiresAt: this.#clock.now() + lifetimeSeconds * 1000,
      revoked: false,
    });
    return value;
  }

  check(value: string | undefined): TokenCheck {
    if (value === undefined) return { ok: false, reason: "missing" };
    const token = this.#tokens.get(value);
    if (!token || token.revoked) return { ok: false, reason: "unknown" };
    if (this.#clock.now() >= token.expiresAt) {
      return { ok: false, reason: "expired" };
    }
    return { ok: true, token };
  }

  revoke(value: string): void {
    const token = this.#tokens.get(value);
    if (token) token.revoked = true;
  }

  /** Revokes the client's tokens, or only those got with one secret. */
  revokeWhere(clientId: string, secretId?: string): void {
    for (const token of this.#tokens.values()) {
      if (
        token.clientId === clientId &&
        (secretId === undefined || token.secretId === secretId)
      ) {
        token.revoked = true;
      }
    }
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

/** Path of the stand-in protected resource every provider emulator serves. */
export const RESOURCE_PATH = "/resource";

/**
 * The stand-in for the caller's own API: 200 with the token's client and
 * scopes while it lives, 401 with an RFC 6750 challenge otherwise.
 */
export function resourceResponse(
  request: Request,
  book: TokenBook,
  stats: ProviderEmulatorStats,
): Response {
  stats.resourceRequests++;
  const check = book.check(bearerToken(request.headers.get("authorization")));
  if (!check.ok) {
    stats.resourceUnauthorized++;
    const challenge = check.reason === "missing"
      ? 'Bearer realm="emulator"'
      : `Bearer realm="emulator", error="invalid_token", error_description="The access token is ${
        check.reason === "expired" ? "expired" : "invalid"
      }"`;
    return json(401, { message: "Unauthorized" }, {
      "www-authenticate": challenge,
    });
  }
  return json(200, {
    client_id: check.token.clientId,
    scope: check.token.scopes.join(" "),
    ...(check.token.audience === undefined
      ? {}
      : { aud: check.token.audience }),
  });
}

/** The listening server and its URL, shared by the provider emulators. */
export class EmulatorServer {
  readonly ready: Promise<void>;
  readonly #server: LocalServer;
  readonly #name: string;
  #closing: Promise<void> | undefined;

  constructor(
    name: string,
    options: { readonly hostname?: string; readonly port?: number },
    onError: () => Response,
    handler: (request: Request) => Promise<Response>,
  ) {
    this.#name = name;
    this.#server = serveLocally({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      onError,
    }, handler);
    this.ready = this.#server.listening.then(() => {});
  }

  get url(): string {
    const origin = this.#server.origin();
    if (origin === undefined) {
      throw new Error(
        `The ${this.#name} emulator is still starting: await emulator.ready before reading its URL (needed on Node)`,
      );
    }
    return origin;
  }

  close(): Promise<void> {
    this.#closing ??= this.#server.shutdown();
    return this.#closing;
  }
}

/** The body as text, or `undefined` when it cannot be read. */
export async function readText(request: Request): Promise<string | undefined> {
  try {
    return await request.text();
  } catch {
    return undefined;
  }
}

/** Milliseconds or `undefined` checked as a non-negative finite number. */
export function validMs(name: string, value: number | undefined): number {
  const ms = value ?? 0;
  if (!(ms >= 0 && Number.isFinite(ms))) {
    throw new RangeError(
      `${name} must be a finite number of ms >= 0, got ${ms}`,
    );
  }
  return ms;
}

/**
 * Faults injected into upcoming token requests, delivered as the Genesys
 * emulator delivers them; an injected status without a body gets the
 * provider's own error body.
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
    unprocessed: () => void,
  ): Promise<Response> {
    const fault = takeFault(this.#queue);
    switch (fault?.kind) {
      case undefined:
        return await process();
      case "status": {
        unprocessed();
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
        unprocessed();
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
