/**
 * Parsing of what clients send: Basic and Bearer headers, form bodies,
 * scopes, API routes and permission patterns.
 *
 * @module
 */
import type { ApiRoute } from "./emulator_types.ts";

export interface Credentials {
  readonly id: string;
  readonly secret: string;
}

/**
 * Candidate credentials from a Basic header: the URL-decoded pair first (as
 * RFC 6749 asks), then the raw pair, since many clients do not encode.
 */
export function parseBasicCredentials(
  header: string | null,
): Credentials[] | undefined {
  const match = header?.match(/^\s*basic\s+(\S+)\s*$/i);
  if (!match) return undefined;
  const decoded = decodeBase64Utf8(match[1]);
  if (decoded === undefined) return undefined;
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  const raw = { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
  const unescaped = {
    id: safeDecodeURIComponent(raw.id),
    secret: safeDecodeURIComponent(raw.secret),
  };
  const same = unescaped.id === raw.id && unescaped.secret === raw.secret;
  return same ? [raw] : [unescaped, raw];
}

export function decodeBase64Utf8(text: string): string | undefined {
  try {
    const binary = atob(text);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

export function safeDecodeURIComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function bearerToken(header: string | null): string | undefined {
  return header?.match(/^\s*bearer\s+(\S+)\s*$/i)?.[1];
}

/** The form body, or why the request is not a valid form post. */
export async function readForm(
  request: Request,
): Promise<URLSearchParams | string> {
  const contentType = request.headers.get("content-type") ?? "";
  if (
    contentType.split(";")[0].trim().toLowerCase() !==
      "application/x-www-form-urlencoded"
  ) {
    return "Content-Type must be application/x-www-form-urlencoded";
  }
  let text: string;
  try {
    text = await request.text();
  } catch {
    return "Unreadable request body";
  }
  if (text.trim() === "") return "Missing request body";
  return new URLSearchParams(text);
}

export function scopesOf(form: URLSearchParams): string[] {
  return (form.get("scope") ?? "").split(/\s+/).filter((scope) => scope !== "");
}

export function matchRoute(path: string): ApiRoute | undefined {
  const trimmed = path.length > 1 && path.endsWith("/")
    ? path.slice(0, -1)
    : path;
  if (trimmed === "/api/v2/tokens/me") return { kind: "tokensMe" };
  if (trimmed === "/api/v2/oauth/clients") return { kind: "clients" };
  const results = trimmed.match(
    /^\/api\/v2\/oauth\/clients\/([^/]+)\/usage\/query\/results\/([^/]+)$/,
  );
  if (results) {
    return {
      kind: "usageResults",
      id: safeDecodeURIComponent(results[1]),
      executionId: safeDecodeURIComponent(results[2]),
    };
  }
  const usage = trimmed.match(
    /^\/api\/v2\/oauth\/clients\/([^/]+)\/usage\/(query|summary)$/,
  );
  if (usage) {
    return {
      kind: usage[2] === "query" ? "usageQuery" : "usageSummary",
      id: safeDecodeURIComponent(usage[1]),
    };
  }
  const secret = trimmed.match(/^\/api\/v2\/oauth\/clients\/([^/]+)\/secret$/);
  if (secret) {
    return { kind: "clientSecret", id: safeDecodeURIComponent(secret[1]) };
  }
  const client = trimmed.match(/^\/api\/v2\/oauth\/clients\/([^/]+)$/);
  if (client) return { kind: "client", id: safeDecodeURIComponent(client[1]) };
  return undefined;
}

/** Genesys permissions are `domain:entity:action`; `*` matches one segment. */
export function permissionMatches(granted: string, needed: string): boolean {
  const have = granted.split(":");
  const want = needed.split(":");
  return have.length === want.length &&
    have.every((part, i) => part === "*" || part === want[i]);
}

/**
 * The route's template as Genesys's usage rows name it (`templateUri`:
 * no leading slash, path parameters in braces).
 */
export function templateUriOf(route: ApiRoute): string {
  switch (route.kind) {
    case "tokensMe":
      return "api/v2/tokens/me";
    case "clients":
      return "api/v2/oauth/clients";
    case "client":
      return "api/v2/oauth/clients/{clientId}";
    case "clientSecret":
      return "api/v2/oauth/clients/{clientId}/secret";
    case "usageQuery":
      return "api/v2/oauth/clients/{clientId}/usage/query";
    case "usageSummary":
      return "api/v2/oauth/clients/{clientId}/usage/summary";
    case "usageResults":
      return "api/v2/oauth/clients/{clientId}/usage/query/results/{executionId}";
  }
}

/** The body as JSON, or `undefined` when it is not JSON. */
export async function readJson(request: Request): Promise<unknown> {
  try {
    return JSON.parse(await request.text());
  } catch {
    return undefined;
  }
}
