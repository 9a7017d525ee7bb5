/**
 * `fetch` with a Bearer token, and one replay with a fresh token when the API
 * says the token is no longer valid.
 *
 * @module
 */

/** One challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** The scheme, lower-cased (`bearer`, `basic`, …). */
  readonly scheme: string;
  /** Its auth-params, names lower-cased. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` header value (RFC 9110 §11.6.1) into challenges.
 * Quoted strings may hold commas and escaped quotes.
 *
 * @param header The header value.
 * @returns The challenges, in order.
 *
 * @example
 * ```ts
 * import { parseWwwAuthenticate } from "./authorized_fetch.ts";
 * const [bearer] = parseWwwAuthenticate('Bearer realm="a, b", error="invalid_token"');
 * if (bearer.scheme !== "bearer" || bearer.params.error !== "invalid_token") throw new Error();
 * ```
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  const token = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
  let at = 0;
  const skip = (pattern: RegExp) => {
    pattern.lastIndex = at;
    const match = pattern.exec(header);
    if (match) at = pattern.lastIndex;
    return match?.[0];
  };
  while (at < header.length) {
    skip(/[\s,]*/y);
    const word = skip(token);
    if (word === undefined) break;
    const afterWord = at;
    skip(/\s*/y);
    if (header[at] === "=" && challenges.length > 0) {
      at++;
      skip(/\s*/y);
      const current = challenges[challenges.length - 1];
      current.params[word.toLowerCase()] = readValue() ?? "";
      continue;
    }
    at = afterWord;
    challenges.push({ scheme: word.toLowerCase(), params: {} });
    // token68 form (e.g. `Negotiate abc==`) carries no named params.
    skip(/\s+[A-Za-z0-9._~+/-]+=*\s*(?=,|$)/y);
  }
  return challenges;

  function readValue(): string | undefined {
    if (header[at] !== '"') return skip(token);
    let value = "";
    for (at++; at < header.length && header[at] !== '"'; at++) {
      if (header[at] === "\\") at++;
      value += header[at] ?? "";
    }
    at++;
    return value;
  }
}

/**
 * Whether a 401 response says the token itself is bad, so one replay with a
 * fresh token may succeed: no challenge at all, a Bearer challenge without an
 * error, or `error="invalid_token"`. `insufficient_scope` and other errors are
 * the caller's to handle.
 *
 * @param response A response with status 401.
 * @returns Whether to invalidate the token and replay once.
 */
export function isStaleTokenChallenge(response: Response): boolean {
  const header = response.headers.get("www-authenticate");
  if (header === null || header.trim() === "") return true;
  const bearer = parseWwwAuthenticate(header).find((c) =>
    c.scheme === "bearer"
  );
  if (bearer === undefined) return false;
  return bearer.params.error === undefined ||
    bearer.params.error === "invalid_token";
}

/** What {@linkcode authorizedFetch} needs. */
export interface AuthorizedFetchContext {
  /** Gets a valid token. */
  getAccessToken(options?: { signal?: AbortSignal }): Promise<string>;
  /** Drops a cached token. */
  invalidate(token: string): void;
  /** The fetch to send with. */
  readonly fetch: typeof fetch;
}

/** A request taken apart so it can be sent twice. */
interface ReplayableRequest {
  readonly url: string | URL;
  readonly init: RequestInit;
}

/**
 * Sends a request with `Authorization: Bearer <token>`. On a 401 whose
 * challenge says the token is stale, drops that token, gets a fresh one and
 * sends the request once more. A stream body is buffered first so it can be
 * sent twice. 403 and other statuses are returned as they are.
 *
 * @param context Token source and fetch.
 * @param input What `fetch` takes.
 * @param init What `fetch` takes.
 * @returns The response.
 */
export async function authorizedFetch(
  context: AuthorizedFetchContext,
  input: RequestInfo | URL,
  init?: RequestInit,
): Promise<Response> {
  const request =
    input instanceof Request || init?.body instanceof ReadableStream
      ? await buffered(input, init)
      : { url: input, init: init ?? {} };
  // Sending (url, init), rather than a Request built from another Request,
  // keeps the wrapper's cost per call small.
  const send = (token: string) =>
    context.fetch(request.url, {
      ...request.init,
      headers: withBearer(request.init.headers, token),
    });
  const signal = request.init.signal ?? undefined;
  const token = await context.getAccessToken({ signal });
  const response = await send(token);
  if (response.status !== 401 || !isStaleTokenChallenge(response)) {
    return response;
  }
  await response.body?.cancel();
  context.invalidate(token);
  return await send(await context.getAccessToken({ signal }));
}

/** The caller's headers plus `Authorization`, leaving the caller's object as it was. */
function withBearer(
  headers: HeadersInit | undefined,
  token: string,
): HeadersInit {
  const authorization = `Bearer ${token}`;
  if (headers === undefined) return { authorization };
  if (headers instanceof Headers || Array.isArray(headers)) {
    const copy = new Headers(headers);
    copy.set("authorization", authorization);
    return copy;
  }
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== "authorization") copy[name] = value;
  }
  copy.authorization = authorization;
  return copy;
}

function buffered(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
): Promise<ReplayableRequest> {
  return input instanceof Request
    ? fromRequest(init === undefined ? input : new Request(input, init))
    : fromInit(input, init);
}

async function fromInit(
  input: string | URL,
  init: RequestInit | undefined,
): Promise<ReplayableRequest> {
  if (!(init?.body instanceof ReadableStream)) {
    return { url: input, init: init ?? {} };
  }
  return {
    url: input,
    init: { ...init, body: await new Response(init.body).arrayBuffer() },
  };
}

async function fromRequest(request: Request): Promise<ReplayableRequest> {
  return {
    url: request.url,
    init: {
      method: request.method,
      headers: request.headers,
      body: request.body === null ? null : await request.arrayBuffer(),
      signal: request.signal,
      redirect: request.redirect,
      credentials: request.credentials,
      cache: request.cache,
      mode: request.mode,
      referrer: request.referrer,
      referrerPolicy: request.referrerPolicy,
      integrity: request.integrity,
      keepalive: request.keepalive,
    },
  };
}
