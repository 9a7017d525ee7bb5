/**
 * Following a credential source: a running auth instance picks up new
 * credentials and a new active label within a poll interval (and usually
 * at once, when the source can watch). It uses only the instance's public
 * methods: `setCredentials` for new secrets, `rotate({ to })` for a new
 * active label (which verifies the target first and keeps the current
 * label if the target fails). A source that cannot be read or is malformed
 * keeps the last good configuration and is reported as a `warning`. With
 * `presence`, the follower also keeps this process's presence file for the
 * single-host revoke gate (see ./presence.ts).
 *
 * @module
 */
import { abortable } from "../abortable.ts";
import type { ConfigWarning, CredentialInput } from "../config.ts";
import { ConfigError } from "../errors.ts";
import { deliver, type WarningEvent } from "../events.ts";
import {
  type PresenceOptions,
  type PresenceWriter,
  startPresence,
} from "./presence.ts";
import {
  type CredentialSnapshot,
  type CredentialSource,
  DEFAULT_SOURCE_POLL_INTERVAL_MS,
  loadSource,
  type SourceWatch,
} from "./source.ts";

/** A target that failed to verify is tried again after this long (or when the source changes). */
const SWITCH_RETRY_MS = 5_000;

/** A running follower; stop it before closing the auth instance (`await using` does, in reverse order). */
export interface SourceFollower extends AsyncDisposable {
  /** Re-reads the source now and applies what changed. */
  refresh(): Promise<void>;
  /** Stops watching and polling; resolves once the last re-read settled. */
  stop(): Promise<void>;
}

/** Options of {@linkcode followSource}. */
export interface FollowSourceOptions {
  /**
   * Receives the follower's `warning` events (`SOURCE_INVALID`,
   * `SOURCE_SWITCH_FAILED`, `PRESENCE_FAILED`); give it the auth
   * instance's `onEvent`.
   */
  readonly onEvent?: (event: WarningEvent) => unknown;
  /**
   * Announce this process beside the source (`true`, or where and how
   * often), so that the revoke gate of a two-secret rotation on this host
   * (`envFileRevokeGate`) sees which label it serves, which secrets it
   * holds (salted fingerprints) and until when a token of each lives,
   * instead of only waiting. Needs write access to the directory
   * (`<env file>.presence/` for `envFileSource`); the files are removed by
   * `stop()`.
   *
   * @default undefined (no presence: the gate falls back to its reload wait)
   */
  readonly presence?: boolean | PresenceOptions;
}

/** What the follower uses of an auth instance: its public methods. */
export interface FollowedAuth {
  /**
   * Replaces the credentials (`auth.setCredentials`).
   *
   * @param credentials The new list.
   */
  setCredentials(credentials: readonly CredentialInput[]): void;
  /**
   * Verifies and switches (`auth.rotate`).
   *
   * @param options The target and a signal.
   * @returns Once switched.
   */
  rotate(
    options: { readonly to: string; readonly signal?: AbortSignal },
  ): Promise<unknown>;
  /**
   * The status (`auth.status`): `active`, and with presence, the expiry of
   * each credential's cached token.
   *
   * @returns The status.
   */
  status(): {
    readonly active: string;
    readonly credentials?: readonly {
      readonly label: string;
      readonly expiresAt?: number;
    }[];
  };
}

/**
 * Starts following `source` for `auth`, an instance created from the same
 * source (`createDualSecretAuth({ ...loadSource(source), tokenUrl })`).
 *
 * @param auth The auth instance (only its public methods are used).
 * @param source The source it was created from.
 * @param options Where warnings go.
 * @returns The follower; stop it before closing `auth`.
 *
 * @example Follow the env file the tasks rewrite
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import {
 *   envFileSource,
 *   followSource,
 *   loadSource,
 * } from "@rotating/dual-secret-auth/sources";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.env`, [
 *   "GENESYS_CLIENT_ID_BLUE=blue-id", "GENESYS_CLIENT_SECRET_BLUE=blue-secret",
 *   "GENESYS_CLIENT_ID_GREEN=green-id", "GENESYS_CLIENT_SECRET_GREEN=green-secret",
 *   "GENESYS_ACTIVE=green", "",
 * ].join("\n"));
 * const source = envFileSource(`${dir}/.env`);
 * {
 *   await using auth = createDualSecretAuth({
 *     ...loadSource(source),
 *     environment: "mypurecloud.ie",
 *   });
 *   await using _follower = followSource(auth, source);
 *   if (auth.status().active !== "green") throw new Error();
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function followSource(
  auth: FollowedAuth,
  source: CredentialSource,
  options: FollowSourceOptions = {},
): SourceFollower {
  const warn = (warning: ConfigWarning) =>
    deliver(options.onEvent, { type: "warning", ...warning });
  let current = "";
  // The credentials the instance holds, as far as the follower knows.
  let held: readonly CredentialInput[] = [];
  try {
    // The instance was created from this snapshot: only a change is applied.
    held = loadSource(source).credentials;
    current = fingerprint(held);
  } catch {
    // Unreadable now: the first re-read applies whatever it finds.
  }
  let stopped = false;
  let lastWarning = "";
  let failedSwitch: { to: string; at: number; credentials: string } | undefined;
  let running: Promise<void> = Promise.resolve();
  let again = false;
  // stop() must not wait for a slow source or a target's token request
  // (up to its timeout and retries): it aborts them.
  const stopping = new AbortController();

  const warnOnce = (warning: ConfigWarning) => {
    const key = `${warning.code}:${warning.message}`;
    if (key === lastWarning) return;
    lastWarning = key;
    warn(warning);
  };

  async function apply(): Promise<void> {
    let snapshot: CredentialSnapshot;
    try {
      snapshot = await abortable(source.read(), stopping.signal);
    } catch (error) {
      if (stopped) return;
      warnOnce({
        code: "SOURCE_INVALID",
        message: `${
          error instanceof Error ? error.message : String(error)
        } The last good configuration stays in use.`,
      });
      return;
    }
    if (stopped) return;
    const next = fingerprint(snapshot.credentials);
    if (next !== current) {
      try {
        auth.setCredentials(snapshot.credentials);
        current = next;
        held = snapshot.credentials;
        void presence?.refresh();
      } catch (error) {
        warnOnce({
          code: "SOURCE_INVALID",
          message: `${source.name} holds credentials the library refuses (${
            error instanceof Error ? error.message : String(error)
          }); the last good configuration stays in use.`,
        });
        return;
      }
    }
    lastWarning = lastWarning.startsWith("SOURCE_INVALID") ? "" : lastWarning;
    const active = auth.status().active;
    if (snapshot.active === active) {
      failedSwitch = undefined;
      return;
    }
    const recentlyFailed = failedSwitch !== undefined &&
      failedSwitch.to === snapshot.active &&
      failedSwitch.credentials === current &&
      Date.now() - failedSwitch.at < SWITCH_RETRY_MS;
    if (recentlyFailed) return;
    // The presence sees the label being left (and its token) first.
    void presence?.refresh();
    try {
      await auth.rotate({ to: snapshot.active, signal: stopping.signal });
      failedSwitch = undefined;
      lastWarning = "";
      void presence?.refresh();
    } catch (error) {
      if (stopped) return;
      failedSwitch = {
        to: snapshot.active,
        at: Date.now(),
        credentials: current,
      };
      warnOnce({
        code: "SOURCE_SWITCH_FAILED",
        label: snapshot.active,
        message:
          `${source.name} names "${snapshot.active}" as active, but it did not get a token (${
            error instanceof Error ? error.message : String(error)
          }); "${active}" stays active. Retried every ${
            SWITCH_RETRY_MS / 1000
          } s and on every change.`,
      });
    }
  }

  function refresh(): Promise<void> {
    if (stopped) return running;
    if (again) return running;
    again = true;
    running = running.then(async () => {
      again = false;
      if (!stopped) await apply();
    });
    return running;
  }

  // A custom source's interval is not checked at construction: one that is
  // missing, 0, not a number or past what a timer takes (2^31 - 1 ms) would
  // re-read in a busy loop.
  const interval = Number.isFinite(source.pollIntervalMs) &&
      source.pollIntervalMs > 0 && source.pollIntervalMs <= 2 ** 31 - 1
    ? source.pollIntervalMs
    : DEFAULT_SOURCE_POLL_INTERVAL_MS;
  const presence = options.presence
    ? announce(auth, source, () => held, options.presence, warn)
    : undefined;
  const poll = setInterval(() => void refresh(), interval);
  let watch: SourceWatch | undefined;
  try {
    watch = source.watch?.(() => void refresh());
  } catch {
    // A source that cannot watch is still re-read periodically.
  }

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    stopping.abort();
    clearInterval(poll);
    await watch?.close().catch(() => {});
    await running;
    await presence?.stop();
  }
  return { refresh, stop, [Symbol.asyncDispose]: stop };
}

/** Starts the follower's presence (see {@linkcode FollowSourceOptions.presence}). */
function announce(
  auth: FollowedAuth,
  source: CredentialSource,
  held: () => readonly CredentialInput[],
  presence: true | PresenceOptions,
  warn: (warning: ConfigWarning) => void,
): PresenceWriter {
  const options = presence === true ? {} : presence;
  const directory = options.directory ?? source.presenceDirectory;
  if (directory === undefined) {
    throw new ConfigError(
      "presence",
      `${source.name} has no presence directory: give presence.directory`,
    );
  }
  return startPresence(
    directory,
    source.name,
    () => {
      const status = auth.status();
      return {
        active: status.active,
        credentials: held(),
        tokens: status.credentials ?? [],
      };
    },
    options,
    (message) => warn({ code: "PRESENCE_FAILED", message }),
  );
}

/** A comparable form of a credential list (kept in memory only, like the credentials). */
function fingerprint(credentials: readonly CredentialInput[]): string {
  return JSON.stringify(credentials.map((c) => [
    c.label,
    c.clientId,
    typeof c.clientSecret === "string"
      ? c.clientSecret
      : c.clientSecret.reveal(),
  ]));
}
