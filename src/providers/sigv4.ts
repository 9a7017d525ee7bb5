/**
 * AWS Signature Version 4 (`AWS4-HMAC-SHA256`, header-signed), the one
 * implementation of the library: the Cognito adapter signs with it and the
 * Cognito emulator's verifier recomputes signatures with it, so the
 * emulator's test with the official AWS SDK (whose signer is AWS's own)
 * checks this code too. Web Crypto only; no dependency.
 *
 * @module
 */

/** An AWS access key, long-term or temporary. */
export interface AwsCredentials {
  /** The access key id, such as `AKIA…` or `ASIA…`. */
  readonly accessKeyId: string;
  /** The secret access key. */
  readonly secretAccessKey: string;
  /**
   * The session token of temporary credentials (STS, an assumed role).
   *
   * @default undefined (long-term credentials)
   */
  readonly sessionToken?: string;
}

/** A request to sign. */
export interface SigV4Request {
  /** The method. */
  readonly method: string;
  /** The full URL. */
  readonly url: string;
  /** The headers to sign besides `host`, `x-amz-date` and the session token (lower-case names). */
  readonly headers: Readonly<Record<string, string>>;
  /** The body text. */
  readonly body: string;
  /** The region, such as `eu-west-1`. */
  readonly region: string;
  /** The service, such as `cognito-idp`. */
  readonly service: string;
  /** The signing time, in ms since the epoch. */
  readonly now: number;
}

/**
 * Signs a request: the headers to send with it (`x-amz-date`, the session
 * token when there is one, and `authorization`). `host` is signed but not
 * returned: fetch sets it from the URL.
 *
 * @param request What to sign.
 * @param credentials The access key.
 * @returns The headers to add.
 */
export async function signSigV4(
  request: SigV4Request,
  credentials: AwsCredentials,
): Promise<Record<string, string>> {
  const amzDate = amzStamp(request.now);
  const added: Record<string, string> = { "x-amz-date": amzDate };
  // An empty token means none, as AWS's own signer reads it (an unset
  // AWS_SESSION_TOKEN often arrives as "").
  if (credentials.sessionToken) {
    added["x-amz-security-token"] = credentials.sessionToken;
  }
  const signing = new Headers({
    ...request.headers,
    ...added,
    host: new URL(request.url).host,
  });
  const signedHeaders = [...signing.keys()].sort();
  const canonical = await canonicalRequest(
    new Request(request.url, { method: request.method, headers: signing }),
    request.body,
    signedHeaders,
  );
  const scope = `${
    amzDate.slice(0, 8)
  }/${request.region}/${request.service}/aws4_request`;
  const signature = await signatureOf(
    credentials.secretAccessKey,
    amzDate,
    scope,
    canonical,
  );
  return {
    ...added,
    authorization:
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${
        signedHeaders.join(";")
      }, Signature=${signature}`,
  };
}

/**
 * The canonical request of SigV4 for a service other than S3: the path's
 * segments encoded twice, the query sorted, the signed headers trimmed.
 *
 * @param request The request (its headers and URL are read, not its body).
 * @param body The body text.
 * @param signedHeaders The lower-case names of the signed headers, sorted.
 * @returns The canonical request.
 */
export async function canonicalRequest(
  request: Request,
  body: string,
  signedHeaders: readonly string[],
): Promise<string> {
  const url = new URL(request.url);
  const path =
    url.pathname.split("/").map((segment) =>
      awsEncode(awsEncode(safeDecode(segment)))
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

/**
 * The hex signature of a canonical request (AWS4-HMAC-SHA256).
 *
 * @param secretAccessKey The secret access key.
 * @param amzDate The signing time, `YYYYMMDDTHHMMSSZ`.
 * @param credentialScope `date/region/service/aws4_request`.
 * @param canonical The canonical request.
 * @returns The signature, 64 hex digits.
 */
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

/**
 * `YYYYMMDDTHHMMSSZ` of an epoch-ms time.
 *
 * @param ms The time.
 * @returns The stamp.
 */
export function amzStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(
    /\.\d{3}/,
    "",
  );
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
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
