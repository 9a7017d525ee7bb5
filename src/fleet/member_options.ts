/**
 * The options of a fleet member, their defaults and their validation: a
 * malformed option is refused synchronously, when the fleet is created.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { sealKeyBytes } from "./seal.ts";

/** Options every fleet engine accepts. */
export interface FleetOptions {
  /**
   * This instance's id, unique in the fleet.
   *
   * @default a random id
   */
  readonly instanceId?: string;
  /**
   * How often the instance reads the store (active label, grants,
   * rejections, heartbeats), in ms: the bound on how late a change reaches it.
   *
   * @default 1000
   */
  readonly pollIntervalMs?: number;
  /**
   * How long a lease to request a token lasts, in ms. When the holder dies,
   * one of the others takes the lease over once it lapses; a caller waits at
   * most three lease lengths before it requests on its own.
   *
   * @default 10000
   */
  readonly leaseMs?: number;
  /**
   * How long a heartbeat stays valid, in ms: a dead instance drops out of
   * {@linkcode FleetLink.instances} within this. The instance beats every
   * third of it.
   *
   * @default 30000
   */
  readonly heartbeatMs?: number;
  /**
   * The longest one store call may take before the instance serves without
   * the store, in ms.
   *
   * @default 1000
   */
  readonly storeTimeoutMs?: number;
  /**
   * The keys to seal tokens with (AES-256-GCM) before they enter the store:
   * base64 of 32 bytes (`openssl rand -base64 32`), optionally `id:` first;
   * several comma-separated or as a list while changing keys (the first
   * seals, every one opens). Without it, whoever can read the store holds
   * bearer tokens. Every instance of the fleet needs the same keys.
   *
   * @default secretSealKeys (one keyring seals tokens and secrets)
   */
  readonly sealKey?: string | readonly string[];
  /**
   * The seal keys of distributed secrets (`DUAL_SECRET_SEAL_KEY`: base64 of
   * 32 bytes, optionally `id:` first; several comma-separated or as a list).
   * With them the instance picks up a newer secret a rotation published into
   * the store, proves it with a token request and only then uses it.
   */
  readonly secretSealKeys?: string | readonly string[];
}

/** Defaults of {@linkcode FleetOptions}. */
export const FLEET_DEFAULTS: Readonly<{
  pollIntervalMs: number;
  leaseMs: number;
  heartbeatMs: number;
  storeTimeoutMs: number;
}> = Object.freeze({
  pollIntervalMs: 1_000,
  leaseMs: 10_000,
  heartbeatMs: 30_000,
  storeTimeoutMs: 1_000,
});

/** The longest delay a timer takes as it is (2^31 - 1 ms, about 24.8 days): longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function positive(name: string, value: number | undefined, fallback: number) {
  if (value === undefined) return fallback;
  // Every one of these ends up in a timer (or a third of it does), and a
  // timer past 2^31 - 1 ms fires at once: a busy loop, not a long wait.
  if (!Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new ConfigError(
      `fleet.${name}`,
      `must be a positive number of ms up to ${MAX_TIMER_MS} (about 24.8 days), got ${value}`,
    );
  }
  return value;
}

/** The options a member runs with: every timing resolved, the keys as given. */
export type Resolved =
  & Required<Omit<FleetOptions, "sealKey" | "secretSealKeys">>
  & {
    sealKey?: string | readonly string[];
    secretSealKeys?: string | readonly string[];
  };

/**
 * Resolves and validates the options of `createFleet`.
 *
 * @param options The options as given.
 * @returns The options with every default filled in.
 * @throws {ConfigError} When an option is invalid.
 */
export function resolveFleetOptions(options: FleetOptions): Resolved {
  const resolved = {
    instanceId: options.instanceId ?? crypto.randomUUID().slice(0, 13),
    pollIntervalMs: positive(
      "pollIntervalMs",
      options.pollIntervalMs,
      FLEET_DEFAULTS.pollIntervalMs,
    ),
    leaseMs: positive("leaseMs", options.leaseMs, FLEET_DEFAULTS.leaseMs),
    heartbeatMs: positive(
      "heartbeatMs",
      options.heartbeatMs,
      FLEET_DEFAULTS.heartbeatMs,
    ),
    storeTimeoutMs: positive(
      "storeTimeoutMs",
      options.storeTimeoutMs,
      FLEET_DEFAULTS.storeTimeoutMs,
    ),
    sealKey: options.sealKey,
    secretSealKeys: options.secretSealKeys,
  };
  // A malformed key is a configuration error, not a fleet that quietly
  // serves on its own: refuse it here, synchronously.
  const texts = (option: string, input?: string | readonly string[]) =>
    input === undefined
      ? []
      : (typeof input === "string" ? input.split(",") : input).map((
        text,
      ) => [option, text.slice(text.indexOf(":") + 1)]);
  const keyTexts = [
    ...texts("fleet.sealKey", options.sealKey),
    ...texts("fleet.secretSealKeys", options.secretSealKeys),
  ];
  if (
    options.sealKey !== undefined &&
    keyTexts.every(([option, text]) =>
      option !== "fleet.sealKey" || text.trim() === ""
    )
  ) {
    throw new ConfigError(
      "fleet.sealKey",
      "is empty; generate a key with `openssl rand -base64 32`",
    );
  }
  for (const [option, material] of keyTexts) {
    if (material.trim() === "") continue;
    try {
      sealKeyBytes(material);
    } catch (error) {
      throw new ConfigError(option, (error as Error).message);
    }
  }
  if (resolved.instanceId === "" || resolved.instanceId.length > 200) {
    throw new ConfigError("fleet.instanceId", "must be 1 to 200 characters");
  }
  return resolved;
}
