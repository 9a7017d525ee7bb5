/**
 * `fetch` with a Bearer token, and one replay with a fresh token when the API
 * says the token is no longer valid.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { AbortedError } from "./errors.ts";
import type { ApiRateLimitedEvent, ApiReplaySkippedEvent } from "./events.ts";
import { parseRetryAfter, withRetry } from "./retry.ts";

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
 * import { parseWwwAuthenticate } from "@rotating/dual-secret-auth";
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

/** How `auth.fetch` waits out an API's 429 (Genesys Cloud: 300 requests a minute per token). */
export interface ApiRateLimitOptions {
  /**
   * Most retries after a 429, per call; the last 429 is then returned.
   *
   * @default {2}
   */
  readonly maxRetries?: number;
  /**
   * The longest `Retry-After` waited; a 429 asking for longer is returned at
   * once (a retry sooner would be refused again).
   *
   * @default {60_000}
   */
  readonly maxRetryAfterMs?: number;
  /**
   * The methods retried. Only idempotent ones by default; add `"POST"` (or
   * `"PATCH"`) only where sending the request twice is safe.
   *
   * @default {["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]}
   */
  readonly methods?: readonly string[];
}

/** The defaults of {@linkcode ApiRateLimitOptions}. */
export const DEFAULT_API_RATE_LIMIT: Readonly<
  Required<ApiRateLimitOptions>
> = Object.freeze({
  maxRetries: 2,
  maxRetryAfterMs: 60_000,
  methods: Object.freeze(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]),
});

/**
 * A 401 on a token that a replay fetched less than this long ago is returned
 * without another replay: a token that fresh is not stale, so the API (a
 * proxy, a wrong region, an outage) refuses good tokens, and replaying would
 * only spend the token endpoint's budget (Genesys Cloud: 300 tokens a minute
 * per client).
 */
export const REPLAY_COOLDOWN_MS: number = 10_000;

/**
 * The most replays in a row, each on the token the previous one fetched,
 * before 401s on the last token are returned without one. The count starts
 * again with a token no replay fetched (the refresh ahead of expiry, once per
 * token lifetime), so a 401 storm costs at most this many token requests per
 * token lifetime.
 */
export const MAX_REPLAYS_PER_TOKEN_LIFETIME: number = 3;

/** The most tokens whose replays are remembered; the oldest is forgotten first. */
const MAX_TRACKED_REPLAYS = 256;

/** A token a replay fetched: when, and after how many replays in a row. */
export interface ReplayRecord {
  /** When the replay got it (the context's clock), in ms. */
  readonly at: number;
  /** Replays in a row that led to it, from 1. */
  readonly count: number;
  /**
   * Whether the replay that got it moved to another credential (a failover):
   * then the 401 before it was the credential's fault, not the API's, and a
   * 401 on this token is replayed even while it is fresh.
   */
  readonly failedOver?: boolean;
}

/** What {@linkcode authorizedFetch} needs. */
export interface AuthorizedFetchContext {
  /** Gets a valid token. */
  getAccessToken(options?: { signal?: AbortSignal }): Promise<string>;
  /** Drops a cached token. */
  invalidate(token: string): void;
  /** The label serving now, to tell a replay that failed over from one that did not. */
  readonly activeLabel?: () => string;
  /** The fetch to send with. */
  readonly fetch: typeof fetch;
  /** Aborts every call in flight when the owner closes (they reject with its reason). */
  readonly closeSignal?: AbortSignal;
  /**
   * Calls in flight with a caller's signal, each linked to it by one
   * controller, which the owner aborts on close; created on first use.
   */
  linked?: Set<AbortController>;
  /**
   * The clock of 429 waits and of {@linkcode REPLAY_COOLDOWN_MS}; without
   * it, a 429 is returned as it is and a token a replay fetched is never
   * replayed again.
   */
  readonly clock?: Clock;
  /** How 429s are waited out. */
  readonly rateLimit?: ApiRateLimitOptions;
  /** Receives an event before each 429 wait and for each replay skipped. */
  readonly emit?: (event: ApiRateLimitedEvent | ApiReplaySkippedEvent) => void;
  /**
   * The tokens replays fetched, newest last; created on the first replay
   * (so an instance that never replays holds no map).
   */
  replays?: Map<string, ReplayRecord>;
  /** The token a replay dropped last, and when; set on the first replay. */
  lastDropped?: { readonly token: string; readonly at: number };
}

/** A request taken apart (or a Request without a body) so it can be sent twice. */
interface ReplayableRequest {
  readonly url: string | URL | Request;
  readonly init: RequestInit;
}

/** Thrown inside the retry loop for a 429 worth waiting out. */
class RetriableResponse {
  constructor(readonly response: Response, readonly waitMs: number | true) {}
}

/**
 * Sends a request with `Authorization: Bearer <token>`. On a 401 whose
 * challenge says the token is stale, drops that token, gets a fresh one and
 * sends the request once more. On a 429 for a method that may be retried,
 * waits `Retry-After` (bounded) and sends again, a bounded number of times. A
 * stream body is buffered first so it can be sent twice. 403 and other
 * statuses are returned as they are.
 *
 * Replay rule (a 401 storm cannot drain the token budget): a stale-token 401
 * is returned as it is, with an `api.replay_skipped` event and no token
 * request, when its token was itself fetched by a replay less than
 * {@linkcode REPLAY_COOLDOWN_MS} ago (or at all, without a clock), or after
 * {@linkcode MAX_REPLAYS_PER_TOKEN_LIFETIME} replays in a row, or when a
 * replay dropped another token less than {@linkcode REPLAY_COOLDOWN_MS} ago
 * (a token pool would otherwise lose its tokens one by one). A replay that
 * failed over to another credential lifts both cooldowns: that 401 was the
 * credential's (its secret was replaced), so a rotation under load that
 * replaces the next secret moments later fails no call. An API that
 * answers 401 to every token then costs at most one token request per
 * cooldown and a few per token lifetime, and the callers sharing the token
 * keep it.
 *
 * Abort rule: a signal already aborted rejects at once with
 * `AbortedError` (cause: `signal.reason`), and so does an abort during the
 * token wait, the request or a 429 wait; the owner's close rejects calls in
 * flight with its reason (`AbortedError`, code `CLOSED`).
 *
 * @param context Token source, fetch, and the owner's close signal and clock.
 * @param input What `fetch` takes.
 * @param init What `fetch` takes.
 * @returns The response.
 */
export async function authorizedFetch(
  context: AuthorizedFetchContext,
  input: RequestInfo | URL,
  init?: RequestInit,
): Promise<Response> {
  const callerSignal = input instanceof Request
    ? (init?.signal ?? input.signal)
    : init?.signal ?? undefined;
  if (callerSignal?.aborted) {
    throw new AbortedError({ cause: callerSignal.reason });
  }
  // Only a body that can be read once is buffered, so it can be sent twice;
  // a Request without a body is sent as it is, with the token added.
  const request = input instanceof Request
    ? input.body === null && init === undefined
      ? { url: input, init: { headers: input.headers } }
      : await buffered(input, init)
    : init?.body instanceof ReadableStream
    ? await buffered(input, init)
    : { url: input, init: init ?? {} };
  const { closeSignal } = context;
  // Without a caller signal the close signal goes as it is: no allocation.
  // With one (a Request always has one), a controller follows it and the
  // owner's close aborts it: AbortSignal.any costs some 15 µs a call in Deno
  // 2.9, a controller and a listener about 1.5 µs.
  let signal = closeSignal ?? callerSignal;
  let linked: AbortController | undefined;
  let follow: (() => void) | undefined;
  if (callerSignal !== undefined && closeSignal !== undefined) {
    const controller = linked = new AbortController();
    follow = () => controller.abort(callerSignal.reason);
    callerSignal.addEventListener("abort", follow, { once: true });
    (context.linked ??= new Set()).add(controller);
    signal = controller.signal;
  }
  // Sending (url, init), rather than a Request built from another Request,
  // keeps the wrapper's cost per call small.
  const send = (token: string) =>
    context.fetch(request.url, {
      ...request.init,
      headers: withBearer(request.init.headers, token),
      signal,
    });
  const sendWithReplay = async () => {
    const token = await context.getAccessToken({ signal: callerSignal });
    const response = await send(token);
    if (response.status !== 401 || !isStaleTokenChallenge(response)) {
      return response;
    }
    const prior = context.replays?.get(token);
    const skipped = replaySkipped(context, token, prior);
    if (skipped !== undefined) {
      context.emit?.({
        type: "api.replay_skipped",
        method: methodOf(request),
        url: describeUrl(request.url),
        reason: skipped,
        replays: prior?.count ?? 0,
      });
      return response;
    }
    await response.body?.cancel();
    const droppedAt = context.clock?.now() ?? 0;
    if (context.lastDropped?.token !== token) {
      context.lastDropped = { token, at: droppedAt };
    }
    const before = context.activeLabel?.();
    context.invalidate(token);
    const fresh = await context.getAccessToken({ signal: callerSignal });
    const failedOver = before !== context.activeLabel?.();
    recordReplay(
      context,
      token,
      fresh,
      prior,
      context.clock?.now() ?? 0,
      failedOver,
    );
    // A drop that failed over was the credential's fault: it says nothing of
    // the API refusing good tokens, so it holds back no other token's replay.
    if (failedOver && context.lastDropped?.token === token) {
      context.lastDropped = undefined;
    }
    return await send(fresh);
  };
  try {
    const first = await sendWithReplay();
    if (first.status !== 429 || context.clock === undefined) return first;
    return await retryRateLimited(
      context,
      first,
      sendWithReplay,
      request,
      signal,
    );
  } catch (error) {
    if (closeSignal?.aborted) throw closeSignal.reason;
    if (callerSignal?.aborted && !(error instanceof AbortedError)) {
      throw new AbortedError({ cause: callerSignal.reason });
    }
    throw error;
  } finally {
    if (linked !== undefined) {
      callerSignal!.removeEventListener("abort", follow!);
      context.linked!.delete(linked);
    }
  }
}

/** Waits out 429s through the one retry loop; gives the last 429 back when it gives up. */
async function retryRateLimited(
  context: AuthorizedFetchContext,
  first: Response,
  sendWithReplay: () => Promise<Response>,
  request: ReplayableRequest,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const limits = { ...DEFAULT_API_RATE_LIMIT, ...context.rateLimit };
  const method = methodOf(request);
  if (!limits.methods.includes(method)) return first;
  const clock = context.clock!;
  const verdict = (response: Response) => {
    if (response.status !== 429) return undefined;
    const asked = parseRetryAfter(
      response.headers.get("retry-after"),
      clock.now(),
    );
    return asked === undefined ? true : asked;
  };
  try {
    return await withRetry(async (attempt) => {
      const response = attempt === 1 ? first : await sendWithReplay();
      const wait = verdict(response);
      if (wait === undefined) return response;
      throw new RetriableResponse(response, wait);
    }, {
      maxAttempts: limits.maxRetries + 1,
      maxRetryAfterMs: limits.maxRetryAfterMs,
      maxElapsedMs: Infinity,
      baseDelayMs: 1_000,
      maxDelayMs: limits.maxRetryAfterMs,
      clock,
      signal,
      isRetriable: (thrown) =>
        thrown instanceof RetriableResponse &&
        (thrown.waitMs === true || thrown.waitMs <= limits.maxRetryAfterMs) &&
        thrown.waitMs,
      onRetry: ({ attempt, delayMs, error }) => {
        void (error as RetriableResponse).response.body?.cancel();
        context.emit?.({
          type: "api.rate_limited",
          method,
          url: describeUrl(request.url),
          attempt,
          delayMs,
        });
      },
    });
  } catch (thrown) {
    if (thrown instanceof RetriableResponse) return thrown.response;
    throw thrown;
  }
}

/**
 * Why a stale-token 401 is returned without a replay, if it is: its token came
 * from a replay moments ago (one that did not fail over) or at the end of a
 * chain of them, or another token was dropped moments ago by a replay that did
 * not fail over (a pool hands out several tokens, each of which would
 * otherwise be dropped in turn). A replay that failed over shows the 401 was
 * the credential's (its secret was replaced), so the next 401 is replayed.
 */
function replaySkipped(
  context: AuthorizedFetchContext,
  token: string,
  prior: ReplayRecord | undefined,
): "recent" | "limit" | undefined {
  const now = context.clock?.now();
  // A clock that went back makes nothing recent: the count still bounds.
  const recent = (at: number) =>
    now === undefined || (now - at >= 0 && now - at < REPLAY_COOLDOWN_MS);
  if (prior !== undefined) {
    if (recent(prior.at) && prior.failedOver !== true) return "recent";
    if (prior.count >= MAX_REPLAYS_PER_TOKEN_LIFETIME) return "limit";
  }
  const dropped = context.lastDropped;
  // Without a clock this rule is off: it would stop every later drop.
  return now !== undefined && dropped !== undefined &&
      dropped.token !== token && recent(dropped.at)
    ? "recent"
    : undefined;
}

/**
 * Remembers that a replay dropped `stale` and got `fresh`. The chain moves on
 * to `fresh` (a late 401 on `stale` finds it no longer cached, so its replay
 * costs no token request); a token another replay already recorded keeps its
 * record, so concurrent 401s on one token count as one replay.
 */
function recordReplay(
  context: AuthorizedFetchContext,
  stale: string,
  fresh: string,
  prior: ReplayRecord | undefined,
  at: number,
  failedOver: boolean,
): void {
  const replays = context.replays ??= new Map();
  if (fresh !== stale) {
    replays.delete(stale);
    if (replays.has(fresh)) return;
  }
  replays.delete(fresh);
  replays.set(fresh, { at, count: (prior?.count ?? 0) + 1, failedOver });
  if (replays.size > MAX_TRACKED_REPLAYS) {
    replays.delete(replays.keys().next().value!);
  }
}

/** The request's method, upper-cased. */
function methodOf(request: ReplayableRequest): string {
  return (request.url instanceof Request
    ? request.url.method
    : request.init.method ?? "GET").toUpperCase();
}

/** A URL without its query and fragment, which may carry secrets. */
function describeUrl(url: string | URL | Request): string {
  try {
    const parsed = new URL(url instanceof Request ? url.url : url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(relative URL)";
  }
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
