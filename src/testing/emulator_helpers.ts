/**
 * Small helpers of the emulator: counters, random tokens, constant-time
 * comparison, option validation and status texts.
 *
 * @module
 */
import type { EmulatorStats } from "./emulator_types.ts";
import { DEFAULT_TOKEN_LIFETIME_SECONDS } from "./emulator_types.ts";

export function emptyStats(): EmulatorStats {
  return {
    tokenRequests: 0,
    tokenRequestsByClient: {},
    tokenFailures: 0,
    apiRequests: 0,
    apiRequestsByClient: {},
    apiUnauthorized: 0,
    expiredTokenUses: 0,
    secretRegenerations: 0,
  };
}

export function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export function randomBase64Url(byteLength: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(byteLength));
  const binary = String.fromCharCode(...bytes);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/** Compares secrets without an early exit, as a real server would. */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return diff === 0;
}

export function validLifetime(seconds: number | undefined): number {
  const value = seconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS;
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(
      `tokenLifetimeSeconds must be a positive number, got ${value}`,
    );
  }
  return value;
}

export function validRateLimit(
  limit: number | undefined,
  option: string,
): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`${option} must be a positive integer, got ${limit}`);
  }
  return limit;
}

export function validLimitStatus(status: number | undefined): 400 | 429 {
  const value = status ?? 400;
  if (value !== 400 && value !== 429) {
    throw new RangeError(
      `tokenRateLimitStatus must be 400 or 429, got ${value}`,
    );
  }
  return value;
}

export function validPolls(polls: number | undefined): number {
  const value = polls ?? 1;
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `usageQueryRunningPolls must be an integer >= 0, got ${value}`,
    );
  }
  return value;
}

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export const GENESYS_CODES: Readonly<Record<number, string>> = {
  400: "bad.request",
  401: "bad.credentials",
  403: "forbidden",
  404: "not.found",
  405: "method.not.allowed",
  408: "request.timeout",
  409: "conflict",
  500: "internal.server.error",
  502: "bad.gateway",
  503: "service.unavailable",
  504: "gateway.timeout",
};
