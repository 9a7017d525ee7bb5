/**
 * AWS Signature Version 4 checking for the Cognito emulator: recomputes the
 * signature of a request from its canonical form (header-signed requests,
 * `AWS4-HMAC-SHA256`) with the secret key of the access key it names, and
 * says why it refuses one in the words AWS uses. The canonical form and the
 * signature are the library's own (`src/providers/sigv4.ts`, which the
 * Cognito adapter signs with).
 *
 * @module
 */
import { timingSafeEqual } from "../emulator_helpers.ts";
import {
  amzStamp,
  canonicalRequest,
  signatureOf,
} from "../../providers/sigv4.ts";

// The library's one SigV4 implementation, which the Cognito adapter signs
// with: re-exported for the emulator's tests.
export { amzStamp, canonicalRequest, signatureOf };

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

function parseAmzDate(value: string): number {
  const match = value.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  if (!match) return Number.NaN;
  const [, y, mo, d, h, mi, s] = match.map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s);
}
