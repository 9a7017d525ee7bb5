/**
 * The evidence half of the single-host revoke gate (`envFileRevokeGate`):
 * the presence files of the processes that follow the env file (see
 * `followSource`'s `presence`), read and judged the way the fleet's gate
 * judges heartbeats. A live process keeps the old secret unrevoked while it
 * serves with it (its active label holds that secret) or a token it served
 * with it still lives. A stale file whose process is gone is ignored and
 * reported; a stale one whose process still runs keeps the gate shut (it
 * may hold the old secret and cannot say). Reads only.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { ConfigError, DualSecretAuthError } from "../errors.ts";
import { delay } from "../retry.ts";
import {
  presenceDirectoryOf,
  type PresenceEntry,
  readPresence,
} from "../sources/presence.ts";
import { readEnvValues, resolveWriteTarget } from "./env_file.ts";
import { fingerprintSecret } from "./journal.ts";

/** The stable error codes of the single-host revoke gate. */
export const PresenceGateErrorCode: {
  readonly IN_USE: "REVOKE_GATE_IN_USE";
  readonly UNREADABLE: "REVOKE_GATE_UNREADABLE";
} = Object.freeze(
  {
    IN_USE: "REVOKE_GATE_IN_USE",
    UNREADABLE: "REVOKE_GATE_UNREADABLE",
  } as const,
);

/** The default of {@linkcode PresenceGateOptions.gateTimeoutMs}. */
export const DEFAULT_GATE_TIMEOUT_MS = 60_000;

/** Why a process keeps the gate shut. */
export type PresenceHoldReason =
  /** Its active label holds the old secret. */
  | "active"
  /** A token it served with the old secret still lives. */
  | "used-recently"
  /** It runs (its lock is held) but stopped refreshing its presence. */
  | "stuck"
  /** Its presence file is not one this version reads, and it runs. */
  | "unreadable";

/** One process that keeps the gate shut. */
export interface PresenceHolder {
  /** Its presence file. */
  readonly file: string;
  /** Its instance name. */
  readonly instance: string;
  /**
   * Its process id.
   *
   * @default undefined (unreadable file)
   */
  readonly pid?: number;
  /**
   * Its host.
   *
   * @default undefined
   */
  readonly host?: string;
  /** Why. */
  readonly reason: PresenceHoldReason;
  /**
   * Until when a token it served with the old secret lives (ms since the epoch).
   *
   * @default undefined
   */
  readonly usedUntil?: number;
  /**
   * How old its presence file is, in ms.
   *
   * @default undefined
   */
  readonly ageMs?: number;
}

/** What the gate found at one moment. */
export interface PresenceVerdict {
  /** Whether the old secret may be revoked as far as presence says. */
  readonly open: boolean;
  /** The presence directory read. */
  readonly directory: string;
  /** The live processes. */
  readonly live: readonly PresenceEntry[];
  /** Leftover files of processes that are gone (ignored). */
  readonly ignored: readonly PresenceEntry[];
  /** The processes that keep it shut. */
  readonly holders: readonly PresenceHolder[];
}

/**
 * The gate stayed shut: processes on this host still hold or use the old
 * secret. Nothing was revoked.
 */
export class RevokeGateInUseError extends DualSecretAuthError {
  /** Always {@linkcode PresenceGateErrorCode.IN_USE}. */
  declare readonly code: typeof PresenceGateErrorCode.IN_USE;
  /** The processes that kept it shut. */
  readonly holders: readonly PresenceHolder[];

  /**
   * Creates the error.
   *
   * @param message What holds it and what to do.
   * @param holders The processes.
   */
  constructor(message: string, holders: readonly PresenceHolder[]) {
    super(PresenceGateErrorCode.IN_USE, message);
    this.holders = Object.freeze([...holders]);
  }
}

/**
 * The presence directory exists but cannot be read (another user's, or not
 * a directory): what the services there do is unknown. Nothing was
 * revoked.
 */
export class RevokeGateUnreadableError extends DualSecretAuthError {
  /** Always {@linkcode PresenceGateErrorCode.UNREADABLE}. */
  declare readonly code: typeof PresenceGateErrorCode.UNREADABLE;

  /**
   * Creates the error.
   *
   * @param message What could not be read and what to do.
   * @param options The underlying `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(PresenceGateErrorCode.UNREADABLE, message, options);
  }
}

/**
 * Judges the presence files of an env file's followers for the revoke of
 * one label's old secret. Reads only.
 *
 * @param directory The presence directory.
 * @param label The label whose old secret would be revoked.
 * @param oldSecret That secret, as the env file holds it (matched by
 *   fingerprint); `undefined` matches by label alone.
 * @param now The time, ms since the epoch.
 * @returns The verdict.
 */
export async function checkPresenceGate(
  directory: string,
  label: string,
  oldSecret: string | undefined,
  now: number,
): Promise<PresenceVerdict> {
  const entries = await readPresence(directory, now);
  const live: PresenceEntry[] = [];
  const ignored: PresenceEntry[] = [];
  const holders: PresenceHolder[] = [];
  for (const entry of entries) {
    const record = entry.record;
    const base = {
      file: entry.file,
      instance: entry.instance,
      ...(record === undefined ? {} : { pid: record.pid }),
      ...(record?.host === undefined ? {} : { host: record.host }),
      ...(entry.ageMs === undefined ? {} : { ageMs: entry.ageMs }),
    };
    if (entry.state === "gone") {
      ignored.push(entry);
      continue;
    }
    if (entry.state !== "live" || record === undefined) {
      holders.push({
        ...base,
        reason: entry.state === "stuck" ? "stuck" : "unreadable",
      });
      continue;
    }
    live.push(entry);
    const fingerprint = oldSecret === undefined
      ? undefined
      : await fingerprintSecret(oldSecret, record.salt);
    const old = record.credentials.filter((c) =>
      fingerprint === undefined
        ? c.label === label
        : c.fingerprint === fingerprint
    );
    const usedUntil = Math.max(0, ...old.map((c) => c.usedUntil ?? 0));
    const timing = usedUntil > now ? { usedUntil } : {};
    // Still on the label whose secret goes: it serves with that label's
    // secret whatever its file lists (a follower that never read the file
    // lists no credential at all).
    if (
      record.active === label || old.some((c) => c.label === record.active)
    ) {
      holders.push({ ...base, reason: "active", ...timing });
    } else if (usedUntil > now) {
      holders.push({ ...base, reason: "used-recently", usedUntil });
    }
  }
  return { open: holders.length === 0, directory, live, ignored, holders };
}

/** Options of {@linkcode awaitPresenceGate}. */
export interface PresenceGateOptions {
  /**
   * How long to wait for the processes to let go of the old secret, in ms.
   *
   * @default DEFAULT_GATE_TIMEOUT_MS
   */
  readonly gateTimeoutMs?: number;
  /**
   * The env variable of a label's secret, to fingerprint the old one.
   *
   * @default `AUTH_CLIENT_SECRET_<LABEL>`, else `GENESYS_CLIENT_SECRET_<LABEL>`
   *   (whichever the file holds)
   */
  readonly secretVariable?: (label: string) => string;
  /**
   * How often the presence files are read again while the gate is shut, in ms.
   *
   * @default 500
   */
  readonly pollMs?: number;
  /**
   * Receives a line each time the set of processes that hold the gate changes.
   *
   * @default undefined (silent)
   */
  readonly onProgress?: (line: string) => void;
  /**
   * The clock (wall-clock time: compared with the files' times).
   *
   * @default systemClock
   */
  readonly clock?: Clock;
}

/**
 * Waits until no live process that follows `envFile` holds or uses the old
 * secret of `label`, within `gateTimeoutMs`; resolves with a line for the
 * report. With no live presence at all it resolves at once and says that
 * the reload wait was the only evidence.
 *
 * @param envFile The env file.
 * @param label The label whose old secret would be revoked.
 * @param options The timeout, the variable names, progress and the clock.
 * @param signal Stops the wait; it then rejects.
 * @returns The line.
 * @throws {RevokeGateInUseError} When processes still hold or use it at the
 *   deadline, or hold a token that outlives it.
 * @throws {RevokeGateUnreadableError} When the presence directory exists
 *   but cannot be read.
 * @throws {ConfigError} When `gateTimeoutMs` or `pollMs` is not a valid
 *   number of milliseconds.
 */
export async function awaitPresenceGate(
  envFile: string,
  label: string,
  options: PresenceGateOptions = {},
  signal?: AbortSignal,
): Promise<string> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.gateTimeoutMs ?? DEFAULT_GATE_TIMEOUT_MS;
  const pollMs = options.pollMs ?? 500;
  // NaN would never time out, and a poll of 0 would spin on the directory.
  if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) {
    throw new ConfigError(
      "gateTimeoutMs",
      `must be a number of milliseconds, 0 or more (default ${DEFAULT_GATE_TIMEOUT_MS})`,
    );
  }
  if (typeof pollMs !== "number" || !(pollMs >= 10) || pollMs > 2 ** 31 - 1) {
    throw new ConfigError(
      "pollMs",
      "must be a number of milliseconds from 10 to 2147483647 (default 500)",
    );
  }
  const target = await resolveWriteTarget(envFile);
  const directory = presenceDirectoryOf(target);
  const oldSecret = await secretOf(target, label, options.secretVariable);
  const started = clock.now();
  const deadline = started + timeoutMs;
  let said = "";
  for (;;) {
    const now = clock.now();
    let verdict: PresenceVerdict;
    try {
      verdict = await checkPresenceGate(directory, label, oldSecret, now);
    } catch (error) {
      throw new RevokeGateUnreadableError(
        `cannot read the presence files in ${directory} (${
          error instanceof Error ? `${error.name}: ${error.message}` : "error"
        }): whether a service still uses the old secret of "${label}" is unknown; nothing was revoked. Next: run rotate as a user that may read that directory and its files (the services' user or group: they are created 0750/0640), or fix what is there; then run the rotation again: it only revokes the old secret.`,
        { cause: error },
      );
    }
    const gone = ignoredWords(verdict.ignored, now);
    if (verdict.live.length === 0 && verdict.holders.length === 0) {
      return `no live process announces its presence in ${directory}${gone}: the reload wait is the only evidence`;
    }
    if (verdict.open) {
      const waited = now - started;
      return `presence: ${verdict.live.length} live process(es) (${
        verdict.live.map((e) => `pid ${e.record!.pid}`).join(", ")
      }), none serves with the old secret of "${label}" or served a token of it that still lives (a warm standby's token is not counted; a process that does not announce itself is not seen)${
        waited > 0 ? ` (waited ${seconds(waited)})` : ""
      }${gone}`;
    }
    const words = holderWords(verdict.holders, label);
    // A token that outlives the deadline cannot be waited out: say when.
    const outlives = verdict.holders.some((h) =>
      h.usedUntil !== undefined && h.usedUntil > deadline
    );
    if (now >= deadline || outlives) {
      throw new RevokeGateInUseError(
        `the old secret of "${label}" is still held or used on this host${
          now >= deadline ? ` after ${seconds(now - started)}` : ""
        }: ${words}; nothing was revoked. ${
          nextWords(verdict.holders, envFile)
        }`,
        verdict.holders,
      );
    }
    if (words !== said) {
      said = words;
      options.onProgress?.(
        `revoke gate: waiting (up to ${seconds(deadline - now)}) for ${words}`,
      );
    }
    await delay(Math.min(pollMs, Math.max(0, deadline - now)), clock, signal);
  }
}

async function secretOf(
  envFile: string,
  label: string,
  variable: ((label: string) => string) | undefined,
): Promise<string | undefined> {
  let values: Record<string, string>;
  try {
    values = readEnvValues(await Deno.readTextFile(envFile));
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return undefined;
  }
  const names = variable === undefined
    ? [
      `AUTH_CLIENT_SECRET_${label.toUpperCase()}`,
      `GENESYS_CLIENT_SECRET_${label.toUpperCase()}`,
    ]
    : [variable(label)];
  for (const name of names) {
    const value = values[name]?.trim();
    if (value) return value;
  }
  return undefined;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function who(holder: { pid?: number; host?: string; instance: string }) {
  return holder.pid === undefined
    ? `instance ${holder.instance}`
    : `pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ""}`;
}

function holderWords(
  holders: readonly PresenceHolder[],
  label: string,
): string {
  return holders.map((h) => {
    switch (h.reason) {
      case "active":
        return `${who(h)} serves with it ("${label}" active)`;
      case "used-recently":
        return `${who(h)} served a token of it that lives until ${
          new Date(h.usedUntil!).toISOString()
        }`;
      case "stuck":
        return `${who(h)} runs but has not refreshed ${h.file} for ${
          seconds(h.ageMs ?? 0)
        }`;
      case "unreadable":
        return `${h.file} is not a presence file this version reads and its process runs`;
    }
  }).join("; ");
}

function nextWords(holders: readonly PresenceHolder[], envFile: string) {
  const steps: string[] = [];
  const active = holders.filter((h) => h.reason === "active");
  if (active.length > 0) {
    steps.push(
      `restart ${
        active.map(who).join(", ")
      } (it did not switch: check that it follows ${envFile} and gets a token with the new label)`,
    );
  }
  const stuck = holders.filter((h) =>
    h.reason === "stuck" || h.reason === "unreadable"
  );
  if (stuck.length > 0) {
    steps.push(
      `restart ${stuck.map(who).join(", ")}, or delete ${
        stuck.map((h) => h.file).join(", ")
      } if no such process is yours`,
    );
  }
  const until = Math.max(0, ...holders.map((h) => h.usedUntil ?? 0));
  if (until > 0) {
    steps.push(
      `wait until ${
        new Date(until).toISOString()
      } for the tokens of the old secret to expire`,
    );
  }
  return `Next: ${
    steps.join("; ")
  }; then run the rotation again: it only revokes the old secret.`;
}

const IGNORED_NAMED = 5;

function ignoredWords(ignored: readonly PresenceEntry[], now: number): string {
  if (ignored.length === 0) return "";
  // A crash loop leaves one per start: the line names a few, counts the rest.
  const named = ignored.slice(0, IGNORED_NAMED).map((e) =>
    e.record === undefined
      ? e.file
      : `pid ${e.record.pid}, ${seconds(now - e.record.updatedAt)} old`
  );
  const more = ignored.length - named.length;
  return `; ignored ${ignored.length} stale file(s) of processes that are gone (${
    named.join(", ")
  }${more > 0 ? `, and ${more} more` : ""})`;
}
