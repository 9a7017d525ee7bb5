/**
 * A scriptable fake `fetch` for unit tests: it plays the OAuth token endpoint
 * and a protected API without any network. Replies are queued per call or
 * produced by a handler; every request is recorded; a deferred reply stays
 * pending until the test settles it, which makes single-flight and in-flight
 * behaviour observable. Like the real `fetch`, a pending reply rejects as soon
 * as the request's signal aborts.
 *
 * @module
 */

/** The default token endpoint URL of {@linkcode FakeTokenEndpoint}. */
export const FAKE_TOKEN_URL = "https://login.example.test/oauth/token";
/** The default API base URL of {@linkcode FakeTokenEndpoint}. */
export const FAKE_API_URL = "https://api.example.test";

/** One request as the fake saw it. */
export interface RecordedRequest {
  /** The full URL. */
  readonly url: string;
  /** The HTTP method. */
  readonly method: string;
  /** The request headers. */
  readonly headers: Headers;
  /** The body as text ("" when there was none). */
  readonly body: string;
  /** The redirect mode the caller asked for. */
  readonly redirect: RequestRedirect;
  /** The signal the caller passed, if any. */
  readonly signal: AbortSignal | undefined;
}

/** A token request, with its client authentication and form decoded. */
export interface RecordedTokenRequest extends RecordedRequest {
  /**
   * The client id from the Basic header (form-decoded), else from the form's
   * `client_id`, or "" without either.
   */
  readonly clientId: string;
  /**
   * The client secret from the Basic header (form-decoded), else from the
   * form's `client_secret`, or "" without either.
   */
  readonly clientSecret: string;
  /**
   * Where the client authenticated: the Basic header, the form body, or
   * nowhere. A request with both counts as Basic; `form` shows the rest.
   */
  readonly authMethod: "client_secret_basic" | "client_secret_post" | "none";
  /** The form body. */
  readonly form: URLSearchParams;
}

/**
 * A reply that stays pending until the test settles it. Create it with
 * {@linkcode deferred}, queue it, then await {@linkcode Deferred.started} to
 * know the request arrived.
 */
export interface Deferred<R extends RecordedRequest = RecordedRequest> {
  /** Resolves with the request once the fake received it. */
  readonly started: Promise<R>;
  /** Answers the pending request. */
  resolve(response: Response): void;
  /** Fails the pending request, as a network error would. */
  reject(error: unknown): void;
  /** Whether the request's signal aborted the reply before it was settled. */
  readonly aborted: boolean;
}

/** What a queued entry or a handler may answer with. */
export type Reply<R extends RecordedRequest = RecordedRequest> =
  | Response
  | Error
  | Deferred<R>
  | ((request: R) => Response | Error | Promise<Response | Error>);

/** Produces the reply when the queue is empty. */
export type Handler<R extends RecordedRequest> = (
  request: R,
) => Reply<R> | Promise<Reply<R>>;

interface DeferredInternals<R extends RecordedRequest> extends Deferred<R> {
  attach(request: R, signal: AbortSignal | undefined): Promise<Response>;
}

/**
 * Creates a reply that stays pending until settled by hand.
 *
 * @returns The deferred reply.
 */
export function deferred<
  R extends RecordedRequest = RecordedTokenRequest,
>(): Deferred<R> {
  let markStarted!: (request: R) => void;
  const started = new Promise<R>((resolve) => markStarted = resolve);
  let settle: { resolve(r: Response): void; reject(e: unknown): void } | null =
    null;
  let early: { response?: Response; error?: unknown } | null = null;
  let aborted = false;
  const handle: DeferredInternals<R> = {
    started,
    get aborted() {
      return aborted;
    },
    resolve(response) {
      if (settle) settle.resolve(response);
      else early = { response };
    },
    reject(error) {
      if (settle) settle.reject(error);
      else early = { error };
    },
    attach(request, signal) {
      markStarted(request);
      return new Promise<Response>((resolve, reject) => {
        const onAbort = () => {
          aborted = true;
          settle = null;
          reject(signal!.reason);
        };
        const done = <T>(fn: (value: T) => void) => (value: T) => {
          signal?.removeEventListener("abort", onAbort);
          settle = null;
          fn(value);
        };
        settle = { resolve: done(resolve), reject: done(reject) };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener("abort", onAbort, { once: true });
        if (early?.error !== undefined) settle.reject(early.error);
        else if (early?.response) settle.resolve(early.response);
      });
    },
  };
  return handle;
}

/**
 * A token endpoint response.
 *
 * @param accessToken The token to issue.
 * @param expiresIn `expires_in` in seconds (anything, to test validation).
 * @param extra More body fields, or overrides (`token_type`, …).
 * @returns A 200 JSON response.
 */
export function tokenResponse(
  accessToken: string,
  expiresIn: unknown = 3600,
  extra: Record<string, unknown> = {},
): Response {
  return jsonResponse(200, {
    access_token: accessToken,
    token_type: "bearer",
    expires_in: expiresIn,
    ...extra,
  });
}

/**
 * An OAuth error response (RFC 6749 §5.2).
 *
 * @param status The HTTP status.
 * @param error The `error` code.
 * @param description The `error_description`, if any.
 * @returns The response.
 */
export function oauthErrorResponse(
  status: number,
  error: string,
  description?: string,
): Response {
  return jsonResponse(status, {
    error,
    ...(description === undefined ? {} : { error_description: description }),
  });
}

/**
 * A JSON response.
 *
 * @param status The HTTP status.
 * @param body The value to serialise.
 * @param headers Extra headers.
 * @returns The response.
 */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: HeadersInit = {},
): Response {
  const all = new Headers(headers);
  all.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers: all });
}

/**
 * A plain-text response.
 *
 * @param status The HTTP status.
 * @param text The body.
 * @param headers Extra headers.
 * @returns The response.
 */
export function textResponse(
  status: number,
  text = "",
  headers: HeadersInit = {},
): Response {
  return new Response(status === 204 ? null : text, { status, headers });
}

/** The error a real `fetch` throws when the network fails. */
export function networkError(): TypeError {
  return new TypeError("error sending request: connection refused");
}

/**
 * A handler that issues a numbered token to each accepted client id/secret
 * pair and answers 401 `invalid_client` to anything else, as Genesys Cloud
 * does. Token values are `<prefix><clientId>-<n>`.
 *
 * @param accepted The `clientId:secret` pairs that work; mutate it to change
 *   which do.
 * @param options The token prefix and `expires_in` to use.
 * @returns The handler.
 */
export function acceptingHandler(
  accepted: Set<string>,
  options: { prefix?: string; expiresIn?: number } = {},
): Handler<RecordedTokenRequest> {
  let issued = 0;
  return (request) => {
    if (!accepted.has(`${request.clientId}:${request.clientSecret}`)) {
      return oauthErrorResponse(
        401,
        "invalid_client",
        "authentication failed",
      );
    }
    issued++;
    return tokenResponse(
      `${options.prefix ?? "tok-"}${request.clientId}-${issued}`,
      options.expiresIn ?? 3600,
    );
  };
}

/** Options of {@linkcode FakeTokenEndpoint}. */
export interface FakeTokenEndpointOptions {
  /** Requests to this URL (query ignored) are token requests. */
  readonly tokenUrl?: string;
  /** Answers token requests once the queue is empty. Default: HTTP 500. */
  readonly tokenHandler?: Handler<RecordedTokenRequest>;
  /** Answers API requests once the queue is empty. Default: 200 "ok". */
  readonly apiHandler?: Handler<RecordedRequest>;
}

/** A fake token endpoint and API behind one `fetch` function. */
export class FakeTokenEndpoint {
  /** The token endpoint URL. */
  readonly tokenUrl: string;
  /** The API base URL (any URL that is not the token URL is an API call). */
  readonly apiUrl: string = FAKE_API_URL;
  /** Every token request, in arrival order. */
  readonly tokenRequests: RecordedTokenRequest[] = [];
  /** Every API request, in arrival order. */
  readonly apiRequests: RecordedRequest[] = [];
  /** The fallback for token requests; replace at will. */
  tokenHandler: Handler<RecordedTokenRequest>;
  /** The fallback for API requests; replace at will. */
  apiHandler: Handler<RecordedRequest>;
  readonly #tokenQueue: Reply<RecordedTokenRequest>[] = [];
  readonly #apiQueue: Reply<RecordedRequest>[] = [];

  /**
   * Creates the fake.
   *
   * @param options URLs and fallbacks.
   */
  constructor(options: FakeTokenEndpointOptions = {}) {
    this.tokenUrl = options.tokenUrl ?? FAKE_TOKEN_URL;
    this.tokenHandler = options.tokenHandler ??
      (() => textResponse(500, "no reply scripted"));
    this.apiHandler = options.apiHandler ?? (() => textResponse(200, "ok"));
  }

  /** How many token requests arrived. */
  get tokenCalls(): number {
    return this.tokenRequests.length;
  }

  /** How many API requests arrived. */
  get apiCalls(): number {
    return this.apiRequests.length;
  }

  /**
   * Queues replies for the next token requests, one per request.
   *
   * @param replies The replies, in order.
   * @returns This fake.
   */
  queueToken(...replies: Reply<RecordedTokenRequest>[]): this {
    this.#tokenQueue.push(...replies);
    return this;
  }

  /**
   * Queues replies for the next API requests, one per request.
   *
   * @param replies The replies, in order.
   * @returns This fake.
   */
  queueApi(...replies: Reply<RecordedRequest>[]): this {
    this.#apiQueue.push(...replies);
    return this;
  }

  /** How many queued token replies are still unused. */
  get queuedTokenReplies(): number {
    return this.#tokenQueue.length;
  }

  /** The `fetch` to inject. */
  readonly fetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const signal = init?.signal ??
      (input instanceof Request ? input.signal : undefined) ?? undefined;
    const recorded: RecordedRequest = {
      url: request.url,
      method: request.method,
      headers: new Headers(request.headers),
      body: request.body === null ? "" : await request.text(),
      redirect: request.redirect,
      signal,
    };
    if (stripQuery(recorded.url) === stripQuery(this.tokenUrl)) {
      const tokenRequest = decodeTokenRequest(recorded);
      this.tokenRequests.push(tokenRequest);
      const reply = this.#tokenQueue.shift() ??
        await this.tokenHandler(tokenRequest);
      return await answer(reply, tokenRequest, signal);
    }
    this.apiRequests.push(recorded);
    const reply = this.#apiQueue.shift() ?? await this.apiHandler(recorded);
    return await answer(reply, recorded, signal);
  };
}

async function answer<R extends RecordedRequest>(
  reply: Reply<R>,
  request: R,
  signal: AbortSignal | undefined,
): Promise<Response> {
  if (signal?.aborted) throw signal.reason;
  if (typeof reply === "function") {
    return await answer(await reply(request), request, signal);
  }
  if (reply instanceof Response) return reply;
  if (reply instanceof Error) throw reply;
  return await (reply as DeferredInternals<R>).attach(request, signal);
}

function stripQuery(url: string): string {
  return url.replace(/[?#].*$/, "");
}

function decodeTokenRequest(recorded: RecordedRequest): RecordedTokenRequest {
  const authorization = recorded.headers.get("authorization") ?? "";
  const form = new URLSearchParams(recorded.body);
  if (/^basic /i.test(authorization)) {
    const decoded = atob(authorization.slice(6).trim());
    const colon = decoded.indexOf(":");
    return {
      ...recorded,
      clientId: formDecode(decoded.slice(0, colon)),
      clientSecret: formDecode(decoded.slice(colon + 1)),
      authMethod: "client_secret_basic",
      form,
    };
  }
  const clientId = form.get("client_id");
  return {
    ...recorded,
    clientId: clientId ?? "",
    clientSecret: form.get("client_secret") ?? "",
    authMethod: clientId === null ? "none" : "client_secret_post",
    form,
  };
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, " "));
}

/** A clock whose timers can be run by hand (such as `FakeClock`). */
export interface DrivableClock {
  /** Runs due timers, moving time up to `limitMs` ahead. */
  runAll(limitMs?: number): Promise<void>;
}

/**
 * Runs the clock's timers until `promise` settles, so retry delays and
 * timeouts on a fake clock pass without real waiting.
 *
 * @param clock The fake clock.
 * @param promise The work to drive.
 * @param limitMs The most fake time one round may let pass.
 * @returns The promise's outcome.
 */
export async function driveClock<T>(
  clock: DrivableClock,
  promise: Promise<T>,
  limitMs?: number,
): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => settled = true);
  watched.catch(() => undefined);
  for (let round = 0; round < 1_000 && !settled; round++) {
    await clock.runAll(limitMs);
    if (!settled) await new Promise<void>((r) => setTimeout(r, 0));
  }
  return await watched;
}
