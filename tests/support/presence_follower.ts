/**
 * An auth instance stand-in for the presence tests: what `followSource`
 * uses of an instance (setCredentials, rotate, status), with the switch and
 * each label's token expiry in the test's hands, so the presence a
 * follower writes and the revoke gate that reads it are exercised without
 * timing on a token endpoint.
 *
 * @module
 */
import type { CredentialInput } from "../../src/config.ts";
import type { FollowedAuth } from "../../src/sources/follow.ts";
import { writeFileAtomic } from "../../src/rotation/env_file.ts";

/** The stand-in and the switches the test controls. */
export interface FakeFollowedAuth extends FollowedAuth {
  /** The label it serves. */
  active: string;
  /** Whether `rotate` succeeds (a target that gets a token). */
  canSwitch: boolean;
  /** Per label, when its cached token expires. */
  readonly expires: Map<string, number>;
  /** The credentials last set. */
  credentials: readonly CredentialInput[];
}

/**
 * A stand-in serving `active`, whose active label's token lives
 * `lifetimeMs` and is refreshed ahead of expiry.
 *
 * @param active The label it serves at start.
 * @param lifetimeMs The token lifetime.
 * @returns The stand-in.
 */
export function fakeFollowedAuth(
  active: string,
  lifetimeMs: number,
): FakeFollowedAuth {
  const fake: FakeFollowedAuth = {
    active,
    canSwitch: true,
    expires: new Map([[active, Date.now() + lifetimeMs]]),
    credentials: [],
    setCredentials(list) {
      fake.credentials = list;
    },
    rotate({ to }) {
      if (!fake.canSwitch) {
        return Promise.reject(new Error(`"${to}" did not get a token`));
      }
      fake.active = to;
      fake.expires.set(to, Date.now() + lifetimeMs);
      return Promise.resolve({});
    },
    status() {
      // The active label's token is refreshed ahead of expiry, as an
      // instance under traffic does; a label left keeps its last token.
      const now = Date.now();
      if ((fake.expires.get(fake.active) ?? 0) < now + lifetimeMs / 2) {
        fake.expires.set(fake.active, now + lifetimeMs);
      }
      return {
        active: fake.active,
        credentials: [...fake.expires].map(([label, expiresAt]) => ({
          label,
          expiresAt,
        })),
      };
    },
  };
  return fake;
}

/** The secrets of the env files these tests write. */
export const SECRETS = {
  blue: "blue-old-secret-CANARY-0123456789",
  green: "green-new-secret-CANARY-9876543210",
} as const;

/**
 * Writes an env file (atomically, as the tasks do) with both labels.
 *
 * @param path The file.
 * @param active The active label.
 * @param secrets Each label's secret (default {@linkcode SECRETS}).
 */
export async function writeEnvFile(
  path: string,
  active: string,
  secrets: { readonly blue?: string; readonly green?: string } = {},
): Promise<void> {
  const { blue = SECRETS.blue, green = SECRETS.green } = secrets;
  await writeFileAtomic(
    path,
    [
      "GENESYS_CLIENT_ID_BLUE=app",
      `GENESYS_CLIENT_SECRET_BLUE=${blue}`,
      "GENESYS_CLIENT_ID_GREEN=app",
      `GENESYS_CLIENT_SECRET_GREEN=${green}`,
      `GENESYS_ACTIVE=${active}`,
      "",
    ].join("\n"),
  );
}

/**
 * Waits until `condition` holds.
 *
 * @param what What is waited for, for the error.
 * @param condition The check.
 * @param timeoutMs How long to wait.
 */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const started = Date.now();
  while (!await condition()) {
    if (Date.now() - started > timeoutMs) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
