/**
 * Requests the provider emulator tests send: a form post to a token
 * endpoint, with or without Basic client authentication, and JSON calls.
 *
 * @module
 */

/** `Basic base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 says. */
export function basic(id: string, secret: string): string {
  return `Basic ${
    btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)
  }`;
}

/** POSTs `fields` as a form, with `authorization` when given. */
export function postForm(
  url: string,
  fields: Record<string, string>,
  authorization?: string,
): Promise<Response> {
  const headers = new Headers({
    "content-type": "application/x-www-form-urlencoded",
  });
  if (authorization !== undefined) headers.set("authorization", authorization);
  return fetch(url, {
    method: "POST",
    headers,
    body: new URLSearchParams(fields),
  });
}

/** Sends a JSON request and reads the status and JSON body (if any). */
export async function call(
  url: string,
  authorization: string | undefined,
  method = "GET",
  body?: unknown,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers = new Headers();
  if (authorization !== undefined) headers.set("authorization", authorization);
  if (body !== undefined) headers.set("content-type", "application/json");
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text === "" ? undefined : JSON.parse(text),
    headers: response.headers,
  };
}
