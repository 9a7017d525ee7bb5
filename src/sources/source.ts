/**
 * Credential sources: where a running service reads its credentials and
 * active label from, so that it follows a rotation done elsewhere (the
 * rotate and promote tasks rewriting `.env`, or Kubernetes updating a
 * mounted secret). A source only reads; {@linkcode followSource} applies
 * changes through the auth instance's public methods.
 *
 * @module
 */
import type { CredentialInput } from "../config.ts";
import { ConfigError, DualSecretAuthError } from "../errors.ts";

/** Credentials and the active label, as read from a source at one moment. */
export interface CredentialSnapshot {
  /** The credentials, such as blue and green. */
  readonly credentials: readonly CredentialInput[];
  /** The label that should serve traffic. */
  readonly active: string;
}

/** Somewhere credentials live that may change while a service runs. */
export interface CredentialSource {
  /** A short, secret-free description, such as `env file /srv/app/.env`. */
  readonly name: string;
  /**
   * Reads the configuration at once, when the auth instance is created.
   *
   * @returns The snapshot.
   * @throws {SourceInvalidError} When the source does not describe a usable configuration.
   */
  loadSync(): CredentialSnapshot;
  /**
   * Reads the configuration now.
   *
   * @returns The snapshot; rejects with {@linkcode SourceInvalidError} when
   *   the source is malformed or half-written.
   */
  read(): Promise<CredentialSnapshot>;
  /**
   * Calls `onChange` when the source may have changed (such as a file system
   * notice), until the returned handle is closed. Optional: without it, the
   * periodic re-read alone brings changes.
   *
   * @param onChange Called on each possible change; the follower re-reads.
   * @returns A handle to stop watching.
   */
  watch?(onChange: () => void): SourceWatch;
  /** How often the source is re-read even without a change notice, in ms. */
  readonly pollIntervalMs: number;
  /**
   * Where followers of this source announce their presence when asked to
   * (`followSource`'s `presence`), for a revoke gate on the same host.
   *
   * @default undefined (none: a follower's presence needs a `directory`)
   */
  readonly presenceDirectory?: string;
}

/** A running watch of a source. */
export interface SourceWatch {
  /** Stops watching; resolves once nothing more will be called. */
  close(): Promise<void>;
}

/** The code of {@linkcode SourceInvalidError}. */
export const SOURCE_INVALID = "SOURCE_INVALID" as const;

/** A source does not describe a usable configuration (now). */
export class SourceInvalidError extends DualSecretAuthError {
  /** The variables at fault. */
  readonly variables: readonly string[];

  /**
   * Creates the error.
   *
   * @param source The source's name.
   * @param problems What is wrong, per variable.
   */
  constructor(
    source: string,
    problems: readonly { variable: string; problem: string }[],
  ) {
    super(
      SOURCE_INVALID,
      `${source} is not a usable configuration: ${
        problems.map((p) => `${p.variable} ${p.problem}`).join("; ")
      }.`,
    );
    this.variables = Object.freeze(problems.map((p) => p.variable));
  }
}

/** Which variables a source reads; the same names the tasks use by default. */
export interface SourceVariables {
  /**
   * The labels, in order.
   *
   * @default ["blue", "green"]
   */
  readonly labels?: readonly string[];
  /**
   * The variable of a label's client id.
   *
   * @default (label) => `GENESYS_CLIENT_ID_${label.toUpperCase()}`
   */
  readonly clientIdVariable?: (label: string) => string;
  /**
   * The variable of a label's secret.
   *
   * @default (label) => `GENESYS_CLIENT_SECRET_${label.toUpperCase()}`
   */
  readonly clientSecretVariable?: (label: string) => string;
  /**
   * The variable of the active label.
   *
   * @default "GENESYS_ACTIVE"
   */
  readonly activeVariable?: string;
  /**
   * How often the source is re-read even without a change notice, in ms.
   *
   * @default 1_000
   */
  readonly pollIntervalMs?: number;
}

/** The default of {@linkcode SourceVariables.pollIntervalMs}. */
export const DEFAULT_SOURCE_POLL_INTERVAL_MS = 1_000;

/**
 * The poll interval a source option asks for, checked: a positive, finite
 * number of milliseconds (0 would re-read the source in a busy loop).
 *
 * @param value The option's value.
 * @returns The interval in ms (the default when not given).
 * @throws {ConfigError} When it is not a positive, finite number.
 */
export function sourcePollInterval(value: number | undefined): number {
  if (value === undefined) return DEFAULT_SOURCE_POLL_INTERVAL_MS;
  // An interval timer past 2^31 - 1 ms fires at once: a busy loop.
  if (
    typeof value !== "number" || !Number.isFinite(value) || value <= 0 ||
    value > 2 ** 31 - 1
  ) {
    throw new ConfigError(
      "pollIntervalMs",
      `must be a positive number of milliseconds up to 2147483647 (default ${DEFAULT_SOURCE_POLL_INTERVAL_MS}); ` +
        "the source is re-read that often even without a change notice",
    );
  }
  return value;
}

/**
 * Every variable a source with these options reads.
 *
 * @param options The variable names.
 * @returns The names, client ids and secrets first, the active label last.
 */
export function sourceVariableNames(options: SourceVariables = {}): string[] {
  const names = resolveNames(options);
  return [
    ...names.labels.flatMap((l) => [names.id(l), names.secret(l)]),
    names.active,
  ];
}

function resolveNames(options: SourceVariables) {
  return {
    labels: options.labels ?? ["blue", "green"],
    id: options.clientIdVariable ??
      ((label: string) => `GENESYS_CLIENT_ID_${label.toUpperCase()}`),
    secret: options.clientSecretVariable ??
      ((label: string) => `GENESYS_CLIENT_SECRET_${label.toUpperCase()}`),
    active: options.activeVariable ?? "GENESYS_ACTIVE",
  };
}

/**
 * Turns variable values into a snapshot, checking every variable: all set,
 * no whitespace in secrets, the active label one of the labels.
 *
 * @param source The source's name, for errors.
 * @param values The values by variable name.
 * @param options The variable names.
 * @returns The snapshot.
 * @throws {SourceInvalidError} Naming every variable at fault.
 */
export function snapshotFromVariables(
  source: string,
  values: Readonly<Record<string, string | undefined>>,
  options: SourceVariables = {},
): CredentialSnapshot {
  const names = resolveNames(options);
  const problems: { variable: string; problem: string }[] = [];
  const credentials: CredentialInput[] = [];
  for (const label of names.labels) {
    const clientId = values[names.id(label)]?.trim();
    const secret = values[names.secret(label)];
    if (!clientId) {
      problems.push({ variable: names.id(label), problem: "is not set" });
    }
    if (secret === undefined || secret.trim() === "") {
      problems.push({ variable: names.secret(label), problem: "is not set" });
    } else if (/\s/.test(secret)) {
      problems.push({
        variable: names.secret(label),
        problem: "contains whitespace",
      });
    }
    if (clientId && secret && !/\s/.test(secret)) {
      credentials.push({ label, clientId, clientSecret: secret });
    }
  }
  const active = values[names.active]?.trim().toLowerCase();
  if (!active) {
    problems.push({ variable: names.active, problem: "is not set" });
  } else if (!names.labels.includes(active)) {
    problems.push({
      variable: names.active,
      problem: `is "${active}", not one of ${names.labels.join(", ")}`,
    });
  }
  if (problems.length > 0) throw new SourceInvalidError(source, problems);
  return Object.freeze({
    credentials: Object.freeze(credentials),
    active: active!,
  });
}

/**
 * Checks a source and reads it once, for `createDualSecretAuth`
 * (`{ ...loadSource(source), tokenUrl }`).
 *
 * @param source The source.
 * @returns The snapshot to start with: `credentials` and `active`.
 * @throws {ConfigError} When it is not a source or is not usable now.
 */
export function loadSource(source: unknown): CredentialSnapshot {
  const candidate = source as Partial<CredentialSource> | null;
  if (
    typeof candidate !== "object" || candidate === null ||
    typeof candidate.loadSync !== "function" ||
    typeof candidate.read !== "function" ||
    (candidate.watch !== undefined && typeof candidate.watch !== "function")
  ) {
    throw new ConfigError(
      "source",
      "must be a credential source, such as envFileSource(path) from ./sources",
    );
  }
  try {
    return candidate.loadSync();
  } catch (error) {
    if (error instanceof SourceInvalidError) {
      throw new ConfigError("source", error.message);
    }
    throw error;
  }
}
