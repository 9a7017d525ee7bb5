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

/**
 * Sends a request with `Authorization: Bearer <token>`. On a 401 whose
 * challenge says the token is stale, drops that token, gets a fresh one and
 * sends the request once more. The body is buffered first so it can be sent
 * twice. 403 and other statuses are returned as they are.
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
  const template = new Request(input, init);
  const body = template.body === null ? null : await template.arrayBuffer();
  const send = async (token: string) => {
    const headers = new Headers(template.headers);
    headers.set("authorization", `Bearer ${token}`);
    return await context.fetch(new Request(template, { headers, body }));
  };
  const signal = template.signal;
  const token = await context.getAccessToken({ signal });
  const response = await send(token);
  if (response.status !== 401 || !isStaleTokenChallenge(response)) {
    return response;
  }
  await response.body?.cancel();
  context.invalidate(token);
  return await send(await context.getAccessToken({ signal }));
}
