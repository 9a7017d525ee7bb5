/**
 * AWS Signature Version 4 checking for the Cognito emulator: recomputes the
 * signature of a request from its canonical form (header-signed requests,
 * `AWS4-HMAC-SHA256`) with the secret key of the access key it names, and
 * says why it refuses one in the words AWS uses.
 *
 * @module
 */
import { timingSafeEqual } from "../emulator_helpers.ts";
import { safeDecodeURIComponent } from "../emulator_parsing.ts";

/** An AWS access key the emulator knows. */
export interface SigV4Key {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Why a request's signature was refused: an AWS error type and message. */
export interface SigV4Refusal {
  readonly type: string;
  readonly message: string;
}

/** What a request signed with a known key proves. */
export interface SigV4Signer<K extends SigV4Key> {
  readonly key: K;
}

/** AWS refuses a signature made more than 5 minutes from its own time. */
export const MAX_SKEW_MS = 5 * 60 * 1000;

const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

/**
 * Checks a header-signed request.
 *
 * @param request The request; its body must not have been read.
 * @param body The body text, read by the caller.
 * @param keys The known keys, by access key id.
 * @param scope The region and service the credential must be scoped to.
 * @param now The emulator's time, for the date check.
 * @returns The signer, or why the request is refused.
 */
export async function verifySigV4<K extends SigV4Key>(
  request: Request,
  body: string,
  keys: ReadonlyMap<string, K>,
  scope: { readonly region: string; readonly service: string },
  now: number,
): Promise<SigV4Signer<K> | SigV4Refusal> {
  const header = request.headers.get("authorization");
  if (header === null) {
    return {
      type: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token",
    };
  }
  const match = header.match(AUTH_PATTERN);
  if (!match) {
    return {
      type: "IncompleteSignatureException",
      message:
        `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${
          header.split(/\s/)[0]
        }`,
    };
  }
  const [, credential, signedHeaderList, signature] = match;
  const parts = credential.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request") {
    return {
      type: "IncompleteSignatureException",
      message:
        `Credential should have exactly 5 parts, got ${parts.length}: ${credential}`,
    };
  }
  const [accessKeyId, date, region, service] = parts;
  const key = keys.get(accessKeyId);
  if (!key) {
    return {
      type: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    };
  }
  const sessionToken = request.headers.get("x-amz-security-token");
  if ((key.sessionToken ?? null) !== sessionToken) {
    return {
      type: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    };
  }
  const amzDate = request.headers.get("x-amz-date");
  const signedAt = amzDate === null ? Number.NaN : parseAmzDate(amzDate);
  if (Number.isNaN(signedAt)) {
    return {
      type: "IncompleteSignatureException",
      message:
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    };
  }
  if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    const earlier = signedAt < now;
    return {
      type: "InvalidSignatureException",
      message: `Signature expired: ${amzDate} is now ${
        earlier ? "earlier" : "later"
      } than ${amzStamp(now + (earlier ? -MAX_SKEW_MS : MAX_SKEW_MS))} (${
        amzStamp(now)
      } ${earlier ? "-" : "+"} 5 min.)`,
    };
  }
  if (date !== amzDate!.slice(0, 8)) {
    return {
      type: "InvalidSignatureException",
      message:
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${date}' != '${
          amzDate!.slice(0, 8)
        }', from '${amzDate}'.`,
    };
  }
  if (service !== scope.service) {
    return {
      type: "InvalidSignatureException",
      message:
        `Credential should be scoped to correct service: '${scope.service}'. `,
    };
  }
  if (region !== scope.region) {
    return {
      type: "InvalidSignatureException",
      message:
        `Credential should be scoped to a valid region, not '${region}'. `,
    };
  }
  const signedHeaders = signedHeaderList.split(";");
  if (!signedHeaders.includes("host")) {
    return {
      type: "InvalidSignatureException",
      message: "'Host' must be a 'SignedHeader' in the AWS Authorization.",
    };
  }
  const canonical = await canonicalRequest(request, body, signedHeaders);
  const expected = await signatureOf(
    key.secretAccessKey,
    amzDate!,
    `${date}/${region}/${service}/aws4_request`,
    canonical,
  );
  if (!timingSafeEqual(expected, signature)) {
    return {
      type: "InvalidSignatureException",
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    };
  }
  return { key };
}

/**
 * The canonical request of SigV4 for a service other than S3: the path's
 * segments encoded twice, the query sorted, the signed headers trimmed.
 */
export async function canonicalRequest(
  request: Request,
  body: string,
  signedHeaders: readonly string[],
): Promise<string> {
  const url = new URL(request.url);
  const path =
    url.pathname.split("/").map((segment) =>
      awsEncode(awsEncode(safeDecodeURIComponent(segment)))
    ).join("/") || "/";
  const query = [...url.searchParams]
    .map(([name, value]) => [awsEncode(name), awsEncode(value)])
    .sort(([a, x], [b, y]) => a < b ? -1 : a > b ? 1 : x < y ? -1 : 1)
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
  const headers = signedHeaders.map((name) =>
    `${name}:${(request.headers.get(name) ?? "").trim().replace(/\s+/g, " ")}\n`
  ).join("");
  const payloadHash = request.headers.get("x-amz-content-sha256") ??
    await sha256Hex(body);
  return [
    request.method,
    path,
    query,
    headers,
    signedHeaders.join(";"),
    payloadHash,
  ].join("\n");
}

/** The hex signature of a canonical request (AWS4-HMAC-SHA256). */
export async function signatureOf(
  secretAccessKey: string,
  amzDate: string,
  credentialScope: string,
  canonical: string,
): Promise<string> {
  const [date, region, service] = credentialScope.split("/");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    credentialScope,
    await sha256Hex(canonical),
  ].join("\n");
  let key = await hmac(encode(`AWS4${secretAccessKey}`), date);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  return hex(await hmac(key, stringToSign));
}

/** `YYYYMMDDTHHMMSSZ` of an epoch-ms time. */
export function amzStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(
    /\.\d{3}/,
    "",
  );
}

function parseAmzDate(value: string): number {
  const match = value.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  if (!match) return Number.NaN;
  const [, y, mo, d, h, mi, s] = match.map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

/** RFC 3986 encoding as SigV4 wants it: only unreserved characters stay. */
function awsEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function encode(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

async function hmac(
  key: Uint8Array<ArrayBuffer>,
  data: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", cryptoKey, encode(data)),
  );
}

async function sha256Hex(text: string): Promise<string> {
  return hex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", encode(text))),
  );
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
