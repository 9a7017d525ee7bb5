/**
 * Response builders in the shapes Genesys Cloud answers with: JSON, Genesys
 * error bodies with correlation ids, OAuth errors, the public client view.
 *
 * @module
 */
import type { ApiContext, ClientRecord } from "./emulator_types.ts";

export function json(
  status: number,
  body: unknown,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("content-type", "application/json");
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: all,
  });
}

/** An authenticated API response with the rate-limit and correlation headers. */
export function apiResponse(
  context: ApiContext,
  status: number,
  body: unknown,
): Response {
  const headers = new Headers(context.headers);
  headers.set("inin-correlation-id", context.contextId);
  return json(status, body, headers);
}

export function genesysErrorBody(
  status: number,
  code: string,
  message: string,
  contextId: string,
) {
  return { message, code, status, contextId, details: [], errors: [] };
}

export function genesysError(
  status: number,
  code: string,
  message: string,
  contextId: string,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("inin-correlation-id", contextId);
  return json(status, genesysErrorBody(status, code, message, contextId), all);
}

export function rateLimitBody(seconds: number, contextId: string) {
  const message =
    `Rate limit exceeded the maximum. Retry the request in [${seconds}] seconds`;
  return genesysErrorBody(
    429,
    "too.many.requests.retry.after",
    message,
    contextId,
  );
}

export function rateLimited(
  seconds: number,
  contextId: string,
  headers: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("inin-correlation-id", contextId);
  return json(429, rateLimitBody(seconds, contextId), all);
}

export function notFound(contextId: string): Response {
  return genesysError(
    404,
    "not.found",
    "The requested resource was not found.",
    contextId,
  );
}

export function clientNotFound(
  context: ApiContext,
  clientId: string,
): Response {
  const message = `Unable to find an OAuth client with ID ${clientId}`;
  return genesysError(
    404,
    "not.found",
    message,
    context.contextId,
    context.headers,
  );
}

export function badRequest(context: ApiContext, message: string): Response {
  return genesysError(
    400,
    "bad.request",
    message,
    context.contextId,
    context.headers,
  );
}

export function methodNotAllowed(context: ApiContext, allow: string): Response {
  const headers = new Headers(context.headers);
  headers.set("allow", allow);
  const message =
    `HTTP method ${context.request.method} is not supported by this resource.`;
  return genesysError(
    405,
    "method.not.allowed",
    message,
    context.contextId,
    headers,
  );
}

export function oauthErrorBody(error: string, description: string) {
  return { error, description, error_description: description };
}

export function oauthError(
  status: number,
  error: string,
  description: string,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("cache-control", "no-store");
  return json(status, oauthErrorBody(error, description), all);
}

/** The client as Genesys returns it from GET: never with the secret. */
export function publicClient(client: ClientRecord) {
  return {
    id: client.id,
    name: client.name,
    accessTokenValiditySeconds: client.lifetimeSeconds,
    authorizedGrantType: "CLIENT-CREDENTIALS",
    state: client.state,
    roleDivisions: client.roleDivisions.map((pair) => ({ ...pair })),
    // Deprecated but still in Genesys's OAuthClient model: the roles' ids.
    roleIds: [...new Set(client.roleDivisions.map((pair) => pair.roleId))],
    ...(client.description === undefined
      ? {}
      : { description: client.description }),
    dateCreated: client.dateCreated,
    dateModified: client.dateModified,
    selfUri: `/api/v2/oauth/clients/${encodeURIComponent(client.id)}`,
  };
}

/**
 * The answer past the token-creation limit. Genesys does not document it;
 * its Terraform provider retries on `400 - invalid_request (rate limit
 * exceeded;`, so the description starts with exactly that text. As a 429 it
 * also says when the window ends (`Retry-After`).
 */
export function tokenRateLimited(
  limit: number,
  status: 400 | 429,
  waitSeconds: number,
): Response {
  return oauthError(
    status,
    "invalid_request",
    `rate limit exceeded; client.credentials.token.rate.per.minute is ${limit} for this client`,
    status === 429 ? { "retry-after": String(waitSeconds) } : undefined,
  );
}
