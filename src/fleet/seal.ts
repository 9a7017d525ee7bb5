/**
 * Sealing of tokens before they enter a fleet store: AES-256-GCM through
 * WebCrypto, with the record's key as additional data so a sealed token
 * cannot be replayed under another key.
 *
 * @module
 */

const PREFIX = "v1.";
const IV_BYTES = 12;

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const normal = text.replaceAll("-", "+").replaceAll("_", "/");
  const binary = atob(normal + "=".repeat((4 - normal.length % 4) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/**
 * Decodes a seal key synchronously, so a malformed one is refused where it is
 * configured; the message never contains the key.
 *
 * @param base64 The key, as `openssl rand -base64 32` prints it.
 * @returns Its 32 bytes.
 * @throws {TypeError} When the key is not 32 bytes of base64.
 */
export function sealKeyBytes(base64: string): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64(base64.trim());
  } catch {
    throw new TypeError(
      "sealKey is not base64; generate one with `openssl rand -base64 32`",
    );
  }
  if (bytes.length !== 32) {
    throw new TypeError(
      `sealKey must be 32 bytes (AES-256), got ${bytes.length}; generate one with \`openssl rand -base64 32\``,
    );
  }
  return bytes;
}

/**
 * Imports a seal key: 32 bytes, base64 or base64url encoded.
 *
 * @param base64 The key, as `openssl rand -base64 32` prints it.
 * @returns The WebCrypto key.
 * @throws {TypeError} When the key is not 32 bytes of base64.
 *
 * @example
 * ```ts
 * import { importSealKey, seal, unseal } from "./seal.ts";
 * const key = await importSealKey(btoa("k".repeat(32)));
 * const sealed = await seal(key, "token", "slot-1");
 * if (await unseal(key, sealed, "slot-1") !== "token") throw new Error();
 * ```
 */
export async function importSealKey(base64: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "raw",
    sealKeyBytes(base64),
    "AES-GCM",
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Seals a text.
 *
 * @param key The seal key.
 * @param plaintext The text (an access token).
 * @param additionalData What the sealed text is bound to (its store key).
 * @returns `v1.` followed by base64url of the iv and the ciphertext.
 */
export async function seal(
  key: CryptoKey,
  plaintext: string,
  additionalData: string,
): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const encoder = new TextEncoder();
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(additionalData) },
      key,
      encoder.encode(plaintext),
    ),
  );
  const out = new Uint8Array(IV_BYTES + ciphertext.length);
  out.set(iv);
  out.set(ciphertext, IV_BYTES);
  return PREFIX + toBase64Url(out);
}

/**
 * Opens a sealed text.
 *
 * @param key The seal key.
 * @param sealed The output of {@linkcode seal}.
 * @param additionalData The same additional data as when sealing.
 * @returns The text, or `undefined` when it was sealed with another key, for
 * another key, or tampered with.
 */
export async function unseal(
  key: CryptoKey,
  sealed: string,
  additionalData: string,
): Promise<string | undefined> {
  if (!sealed.startsWith(PREFIX)) return undefined;
  try {
    const bytes = fromBase64(sealed.slice(PREFIX.length));
    const plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: bytes.subarray(0, IV_BYTES),
        additionalData: new TextEncoder().encode(additionalData),
      },
      key,
      bytes.subarray(IV_BYTES),
    );
    return new TextDecoder().decode(plain);
  } catch {
    return undefined;
  }
}

/**
 * A short hex SHA-256 digest of the parts, joined unambiguously: for key
 * namespaces and for the hash of a secret's generation.
 *
 * @param parts The texts to digest.
 * @returns 32 hex characters (128 bits).
 */
export async function digest(...parts: readonly string[]): Promise<string> {
  const bytes = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(JSON.stringify(parts)),
    ),
  );
  return [...bytes.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
