/**
 * The one way the library sends a request it reads the answer of (the token
 * endpoint, the Genesys admin API, the verify task): a timeout that covers the
 * body, the caller's signal, a bounded body read as a stream, redirects
 * refused, and server text quoted only through the owner's redactor.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { RedirectRefusedError } from "./errors.ts";
import { quoteServerText, type Redactor } from "./redact.ts";

/** The default timeout of one request, body included: ten seconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The default limit of a response body read by {@linkcode send}: 64 KiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 65_536;

/** How to send. */
export interface SendOptions {
  /** The fetch to send with. */
  readonly fetch: typeof fetch;
  /** The clock of the timeout. */
  readonly clock: Clock;
  /**
   * Abort after this many ms, body included.
   *
   * @default {10_000}
   */
  readonly timeoutMs?: number;
  /** The caller's signal. */
  readonly signal?: AbortSignal;
  /**
   * The largest body read; a longer one is cancelled.
   *
   * @default {65_536}
   */
  readonly maxResponseBytes?: number;
  /** Redacts what the request's owner knows: secrets and tokens. */
  readonly redact: Redactor;
}

/** A response whose body was read within the limit. */
export interface SentResponse {
  /** The response (its body already read). */
  readonly response: Response;
  /** The body as text, unredacted: parse it, never quote it. */
  readonly text: string;
  /**
   * Quotes a value the server sent (from the body or a header): redacted,
   * capped, or `undefined` when it is not a non-empty string.
   */
  quote(value: unknown): string | undefined;
}

/** Why {@linkcode send} got no response; each caller maps it to its own error. */
export type SendFailureKind =
  | "timeout"
  | "aborted"
  | "network"
  | "permission"
  | "too-large";

/** {@linkcode send} got no usable response. Internal: callers rethrow it as their own typed error. */
export class SendFailure extends Error {
  /** Why. */
  readonly kind: SendFailureKind;
  /** The HTTP status, when a response came (a body over the limit). */
  readonly status?: number;

  /**
   * Creates the failure.
   *
   * @param kind Why.
   * @param detail A short description, holding no server text.
   * @param options The underlying cause.
   * @param status The HTTP status, when a response came.
   */
  constructor(
    kind: SendFailureKind,
    detail: string,
    options?: ErrorOptions,
    status?: number,
  ) {
    super(detail, options);
    this.kind = kind;
    this.status = status;
    this.name = "SendFailure";
  }
}

/**
 * Sends one request and reads its body within the limit. Does not retry and
 * does not classify statuses.
 *
 * @param url Where to send.
 * @param init Method, headers and body; `signal` and `redirect` are set here.
 * @param options Fetch, clock, timeout, signal, limit and redactor.
 * @returns The response and its body.
 * @throws {SendFailure} On timeout, abort, network or permission failure, or
 *   a body over the limit.
 * @throws {RedirectRefusedError} On a 3xx: credentials never follow a redirect.
 *
 * @example
 * ```ts
 * import { send } from "./send.ts";
 * import { systemClock } from "./clock.ts";
 * const sent = await send("https://idp.example/token", { method: "POST" }, {
 *   fetch: () => Promise.resolve(new Response('{"ok":true}')),
 *   clock: systemClock,
 *   redact: (text) => text,
 * });
 * if (JSON.parse(sent.text).ok !== true) throw new Error();
 * ```
 */
export async function send(
  url: string,
  init: RequestInit,
  options: SendOptions,
): Promise<SentResponse> {
  const { clock, signal } = options;
  const limit = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const controller = new AbortController();
  let timedOut = false;
  const timer = clock.setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException("request timed out", "TimeoutError"));
  }, options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    const response = await options.fetch(url, {
      ...init,
      signal: controller.signal,
      redirect: "manual",
    });
    if (
      response.type === "opaqueredirect" ||
      (response.status >= 300 && response.status < 400)
    ) {
      await response.body?.cancel().catch(() => undefined);
      throw new RedirectRefusedError(
        new URL(url).host,
        quoteServerText(
          hostOf(response.headers.get("location"), url),
          options.redact,
        ),
      );
    }
    const text = await readBounded(response, limit);
    return {
      response,
      text,
      quote: (value) => quoteServerText(value, options.redact),
    };
  } catch (error) {
    if (error instanceof RedirectRefusedError) throw error;
    if (error instanceof SendFailure) throw error;
    if (timedOut) {
      throw new SendFailure("timeout", "request timed out", { cause: error });
    }
    if (signal?.aborted) {
      throw new SendFailure("aborted", "aborted", { cause: signal.reason });
    }
    const name = error instanceof Error ? error.name : "error";
    // Deno's NotCapable (and the older PermissionDenied), named without a
    // reference to `Deno` so the library stays web-standard.
    if (name === "NotCapable" || name === "PermissionDenied") {
      throw new SendFailure(
        "permission",
        (error as Error).message.replace(/, run again with.*$/s, ""),
        { cause: error },
      );
    }
    throw new SendFailure("network", `network ${name}`, { cause: error });
  } finally {
    clock.clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Reads a body as UTF-8 text, cancelling it once it passes `limit` bytes (a
 * `Content-Length` over the limit is refused before reading).
 */
async function readBounded(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? 0);
  const tooLarge = () =>
    new SendFailure(
      "too-large",
      `the response body is larger than ${limit} bytes`,
      undefined,
      response.status,
    );
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

function hostOf(location: string | null, base: string): string | undefined {
  try {
    return location === null ? undefined : new URL(location, base).host;
  } catch {
    return undefined;
  }
}
