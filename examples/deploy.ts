/**
 * A Deno Deploy edge function that proxies allow-listed, read-only Genesys
 * Cloud API calls with a blue/green pair of OAuth clients, so the standby
 * client's secret can be regenerated at any time without failed requests.
 *
 * Configuration, from environment variables only (no file system):
 *
 * - `GENESYS_ENVIRONMENT` (such as `mypurecloud.ie`), or `GENESYS_TOKEN_URL`
 *   and `GENESYS_API_URL` for another OAuth server or a local emulator;
 * - `GENESYS_CLIENT_ID_BLUE`, `GENESYS_CLIENT_SECRET_BLUE`,
 *   `GENESYS_CLIENT_ID_GREEN`, `GENESYS_CLIENT_SECRET_GREEN`;
 * - `GENESYS_ACTIVE`: `blue` or `green` (default `blue`);
 * - `PROXY_KEY` (optional): callers must send it in `x-proxy-key`. Anyone
 *   who can reach the proxy acts with the OAuth clients' roles, so set it
 *   unless something in front of the proxy authenticates callers;
 * - `HOST`: the interface to listen on, default `0.0.0.0`; `PORT`: default
 *   8000, `0` picks a free port. Deploy ignores both.
 *
 * Routes: `GET /healthz` answers `auth.status()` (labels, client ids, states,
 * expiry times and error codes; never a secret or token), and `GET` of an
 * allow-listed `/api/v2/...` path is forwarded with a Bearer token.
 *
 * Run locally:
 *
 * ```sh
 * deno run --allow-net --allow-env=GENESYS_ENVIRONMENT,GENESYS_TOKEN_URL,GENESYS_API_URL,GENESYS_CLIENT_ID_BLUE,GENESYS_CLIENT_SECRET_BLUE,GENESYS_CLIENT_ID_GREEN,GENESYS_CLIENT_SECRET_GREEN,GENESYS_ACTIVE,PROXY_KEY,HOST,PORT examples/deploy.ts
 * ```
 *
 * @module
 */
import {
  createDualSecretAuth,
  type DualSecretAuth,
  DualSecretAuthError,
  RateLimitedError,
  resolveRegion,
} from "../mod.ts";

/** Every environment variable the proxy reads; grant exactly these. */
export const ENV_NAMES = [
  "GENESYS_ENVIRONMENT",
  "GENESYS_TOKEN_URL",
  "GENESYS_API_URL",
  "GENESYS_CLIENT_ID_BLUE",
  "GENESYS_CLIENT_SECRET_BLUE",
  "GENESYS_CLIENT_ID_GREEN",
  "GENESYS_CLIENT_SECRET_GREEN",
  "GENESYS_ACTIVE",
  "PROXY_KEY",
  "HOST",
  "PORT",
] as const;

/**
 * The API paths the proxy forwards. A proxy holding organization-wide roles
 * must not become a general gateway, so anything else is a 404.
 */
export const ALLOWED_PATHS: ReadonlySet<string> = new Set([
  "/api/v2/tokens/me",
  "/api/v2/organizations/me",
  "/api/v2/oauth/clients",
]);

/** Request headers passed upstream; the caller's own credentials never are. */
const FORWARDED_REQUEST_HEADERS = ["accept", "accept-language"];
/** Response headers passed back; rate-limit headers let callers slow down. */
const FORWARDED_RESPONSE_HEADERS = [
  "content-type",
  "retry-after",
  "inin-correlation-id",
  "inin-ratelimit-allowed",
  "inin-ratelimit-count",
  "inin-ratelimit-reset",
];

/** What the proxy needs to serve. */
export interface ProxyOptions {
  /** The auth instance that signs upstream requests. */
  readonly auth: DualSecretAuth;
  /** The API origin, such as `https://api.mypurecloud.ie`. */
  readonly apiUrl: string;
  /** A key callers must present in `x-proxy-key`, if any. */
  readonly proxyKey?: string;
}

/**
 * Builds the request handler: `/healthz` and allow-listed `GET /api/v2/...`.
 *
 * @param options Auth instance, API origin and optional caller key.
 * @returns A handler for `Deno.serve`.
 */
export function createProxyHandler(
  options: ProxyOptions,
): (request: Request) => Promise<Response> {
  const { auth, proxyKey } = options;
  const apiOrigin = new URL(options.apiUrl).origin;
  return async (request) => {
    const url = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return json(405, { error: "method_not_allowed" }, { allow: "GET, HEAD" });
    }
    if (url.pathname === "/healthz") return json(200, auth.status());
    if (!ALLOWED_PATHS.has(url.pathname)) {
      return json(404, { error: "not_allowed", path: url.pathname });
    }
    if (proxyKey !== undefined && !sameText(request, proxyKey)) {
      return json(401, { error: "proxy_key_required" });
    }
    const headers = new Headers();
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    try {
      const upstream = await auth.fetch(
        `${apiOrigin}${url.pathname}${url.search}`,
        { method: request.method, headers, signal: request.signal },
      );
      const responseHeaders = new Headers();
      for (const name of FORWARDED_RESPONSE_HEADERS) {
        const value = upstream.headers.get(name);
        if (value !== null) responseHeaders.set(name, value);
      }
      return new Response(upstream.body, {
        status: upstream.status,
        headers: responseHeaders,
      });
    } catch (error) {
      return authFailure(error);
    }
  };
}

/** Maps a token failure to a response; the library's messages hold no secrets. */
function authFailure(error: unknown): Response {
  if (error instanceof RateLimitedError) {
    const seconds = Math.ceil((error.retryAfterMs ?? 1_000) / 1_000);
    return json(503, { error: error.code, message: error.message }, {
      "retry-after": String(seconds),
    });
  }
  if (error instanceof DualSecretAuthError) {
    return json(502, { error: error.code, message: error.message });
  }
  return json(502, { error: "UPSTREAM_UNREACHABLE" });
}

/** Compares the caller's key in constant time, so timing leaks nothing. */
function sameText(request: Request, expected: string): boolean {
  const given = new TextEncoder().encode(
    request.headers.get("x-proxy-key") ?? "",
  );
  const wanted = new TextEncoder().encode(expected);
  let difference = given.length ^ wanted.length;
  for (let i = 0; i < wanted.length; i++) {
    difference |= wanted[i] ^ (given[i] ?? 0);
  }
  return difference === 0;
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return Response.json(body, {
    status,
    headers: { "cache-control": "no-store", ...headers },
  });
}

function required(name: (typeof ENV_NAMES)[number]): string {
  const value = Deno.env.get(name);
  if (value === undefined || value.trim() === "") {
    throw new Error(`Set the environment variable ${name}.`);
  }
  return value;
}

/**
 * Reads the configuration from the environment and creates the auth instance.
 *
 * @returns The auth instance and the API origin to forward to.
 * @throws {Error} When a variable is missing; the message names it, never a value.
 */
export function fromEnvironment(): { auth: DualSecretAuth; apiUrl: string } {
  const environment = Deno.env.get("GENESYS_ENVIRONMENT");
  const endpoint = environment !== undefined
    ? { environment }
    : { tokenUrl: required("GENESYS_TOKEN_URL") };
  const apiUrl = environment !== undefined
    ? resolveRegion(environment).apiUrl
    : required("GENESYS_API_URL");
  const auth = createDualSecretAuth({
    credentials: [
      {
        label: "blue",
        clientId: required("GENESYS_CLIENT_ID_BLUE"),
        clientSecret: required("GENESYS_CLIENT_SECRET_BLUE"),
      },
      {
        label: "green",
        clientId: required("GENESYS_CLIENT_ID_GREEN"),
        clientSecret: required("GENESYS_CLIENT_SECRET_GREEN"),
      },
    ],
    ...endpoint,
    active: Deno.env.get("GENESYS_ACTIVE") ?? "blue",
    onEvent: (event) => {
      // Events carry labels and error codes, never secrets: safe to log.
      if (event.type !== "token.acquired") console.log(JSON.stringify(event));
    },
  });
  return { auth, apiUrl };
}

if (import.meta.main) {
  const { auth, apiUrl } = fromEnvironment();
  const port = Number(Deno.env.get("PORT") ?? "8000");
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error("PORT must be a whole number from 0 to 65535.");
  }
  Deno.serve({
    port,
    hostname: Deno.env.get("HOST") ?? "0.0.0.0",
    onListen: ({ hostname, port }) =>
      console.log(`Listening on http://${hostname}:${port}/`),
  }, createProxyHandler({ auth, apiUrl, proxyKey: Deno.env.get("PROXY_KEY") }));
}
