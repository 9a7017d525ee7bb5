/**
 * The emulator's fault queue and the responses of injected faults.
 *
 * @module
 */
import type { EmulatorFault, PendingFault } from "./emulator_types.ts";
import {
  INVALID_CLIENT_DESCRIPTION,
  NULL_BODY_STATUSES,
} from "./emulator_types.ts";
import {
  genesysErrorBody,
  oauthErrorBody,
  rateLimitBody,
} from "./emulator_responses.ts";
import { GENESYS_CODES, STATUS_TEXT } from "./emulator_helpers.ts";

export function pendingFault(
  fault: EmulatorFault,
  count: number,
): PendingFault {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(
      `Fault count must be a positive integer, got ${count}`,
    );
  }
  validateFault(fault);
  return { fault, remaining: count };
}

export function validateFault(fault: EmulatorFault): void {
  const status = fault.kind === "status"
    ? fault.status
    : fault.kind === "body"
    ? fault.status ?? 200
    : 200;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError(
      `Fault status must be an integer from 200 to 599, got ${status}`,
    );
  }
  if (fault.kind === "delay" && !(fault.ms >= 0 && Number.isFinite(fault.ms))) {
    throw new RangeError(
      `Fault delay must be a finite number of ms >= 0, got ${fault.ms}`,
    );
  }
}

/** Takes one delivery from the head of a FIFO fault queue. */
export function takeFault(queue: PendingFault[]): EmulatorFault | undefined {
  const head = queue[0];
  if (!head) return undefined;
  head.remaining--;
  if (head.remaining === 0) queue.shift();
  return head.fault;
}

export function statusFaultResponse(
  fault: Extract<EmulatorFault, { kind: "status" }>,
  request: Request,
  target: "token" | "api",
  contextId: string,
  now: number,
): Response {
  const headers = new Headers();
  const retryAfter = fault.retryAfter ??
    (target === "api" && fault.status === 429 ? "1" : undefined);
  if (retryAfter) headers.set("retry-after", retryAfter);
  if (target === "api") headers.set("inin-correlation-id", contextId);
  const waitSeconds = retryAfter
    ? retryAfterSeconds(retryAfter, now)
    : undefined;
  const contentType = fault.contentType ?? "application/json";
  const body = fault.body ??
    defaultFaultBody(fault.status, target, contentType, contextId, waitSeconds);
  headers.set("content-type", contentType);
  for (const [name, value] of Object.entries(fault.headers ?? {})) {
    headers.set(name, value);
  }
  const withoutBody = request.method === "HEAD" ||
    NULL_BODY_STATUSES.has(fault.status);
  return new Response(withoutBody ? null : body, {
    status: fault.status,
    headers,
  });
}

export function bodyFaultResponse(
  fault: Extract<EmulatorFault, { kind: "body" }>,
  target: "token" | "api",
  contextId: string,
): Response {
  const status = fault.status ?? 200;
  const headers = new Headers({
    "content-type": fault.contentType ?? "application/json",
  });
  if (target === "api") headers.set("inin-correlation-id", contextId);
  return new Response(NULL_BODY_STATUSES.has(status) ? null : fault.body, {
    status,
    headers,
  });
}

/** A plausible body for an injected status with none given. */
export function defaultFaultBody(
  status: number,
  target: "token" | "api",
  contentType: string,
  contextId: string,
  waitSeconds: number | undefined,
): string {
  const reason = STATUS_TEXT[status] ?? "Error";
  if (contentType.toLowerCase().startsWith("text/html")) {
    return `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n</body>\r\n</html>\r\n`;
  }
  if (!contentType.toLowerCase().includes("json")) return `${status} ${reason}`;
  if (target === "token") {
    return JSON.stringify(
      oauthErrorBody(...oauthFaultError(status, waitSeconds)),
    );
  }
  if (status === 429) {
    return JSON.stringify(rateLimitBody(waitSeconds ?? 1, contextId));
  }
  return JSON.stringify(
    genesysErrorBody(
      status,
      GENESYS_CODES[status] ?? "error",
      reason,
      contextId,
    ),
  );
}

/** The OAuth `error` code and description for an injected token-endpoint status. */
export function oauthFaultError(
  status: number,
  waitSeconds: number | undefined,
): [string, string] {
  if (status === 429) {
    const retry = waitSeconds === undefined
      ? ""
      : ` Retry the request in [${waitSeconds}] seconds`;
    return ["too_many_requests", `Rate limit exceeded the maximum.${retry}`];
  }
  if (status === 401) return ["invalid_client", INVALID_CLIENT_DESCRIPTION];
  if (status === 503) return ["temporarily_unavailable", STATUS_TEXT[503]];
  if (status >= 500) {
    return ["server_error", STATUS_TEXT[status] ?? "Server error"];
  }
  return ["invalid_request", STATUS_TEXT[status] ?? "Invalid request"];
}

/**
 * Replaces a response's body with one that sends its first half and then
 * fails, so the connection dies after the headers.
 */
export async function resetResponse(response: Response): Promise<Response> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const partial = bytes.length > 1
    ? bytes.slice(0, Math.ceil(bytes.length / 2))
    : new TextEncoder().encode("{");
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(partial);
    },
    pull(controller) {
      controller.error(new Error("connection reset by the Genesys emulator"));
    },
  });
  return new Response(body, { status: response.status, headers });
}

/** Seconds to wait for a `Retry-After` value: delta-seconds or an HTTP date. */
export function retryAfterSeconds(value: string, now: number): number {
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) {
    return Math.max(0, Math.ceil(seconds));
  }
  const date = Date.parse(value);
  if (Number.isNaN(date)) return 1;
  return Math.max(0, Math.ceil((date - now) / 1000));
}
