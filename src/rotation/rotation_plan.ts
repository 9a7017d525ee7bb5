/**
 * The plan phase of a staged rotation: validate everything, check that
 * rotating is safe (the active credential works, the standby client is
 * active, every file the run writes can be written), and decide from the
 * journal what an earlier run left to resume. Changes nothing.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import {
  type ConfigWarning,
  resolveConfig,
  type ResolvedCredential,
} from "../config.ts";
import { AbortedError, ConfigError } from "../errors.ts";
import { fingerprintSecret, type RotationJournalRecord } from "./journal.ts";
import {
  oneTokenRequest,
  type ProofTokenRequest,
  tokenRequestOptions,
} from "./proof.ts";
import {
  maybeSecretOf,
  type ProviderClientInfo,
  type SecretProvider,
} from "./provider.ts";
import { genesysSecretProvider } from "../genesys/secret_provider.ts";
import {
  RotationJournalError,
  RotationJournalErrorCode,
} from "./rotation_errors.ts";
import type { StagedRotationOptions } from "./staged_rotation.ts";

const DEFAULT_MAX_JOURNAL_AGE_MS = 24 * 60 * 60 * 1000;

/** How a run relates to the journal's last record. */
export type Resume =
  /** Nothing to resume: regenerate. */
  | { readonly kind: "none"; readonly note?: string }
  /** The new secret is stored: prove it (and promote if asked). */
  | { readonly kind: "prove"; readonly record: RotationJournalRecord }
  /** A finished rotation was not promoted and promotion is asked: prove and promote. */
  | { readonly kind: "promote-only"; readonly record: RotationJournalRecord }
  /** The active label already names the rotated credential: only finish. */
  | { readonly kind: "promoted"; readonly record: RotationJournalRecord };

export interface Plan {
  readonly active: ResolvedCredential;
  readonly standby: ResolvedCredential;
  /** The validated scope and token parameters every token request sends. */
  readonly tokenRequest: ProofTokenRequest;
  /** Issues the standby's secret. */
  readonly provider: SecretProvider;
  readonly resume: Resume;
  readonly tokenLifetimeSeconds?: number;
  readonly warnings: readonly string[];
  /** Two-secret providers: the id of the secret the active label uses, when known. */
  readonly activeSecretId?: string;
  /**
   * Two-secret providers: a secret an earlier run issued and never stored
   * (nobody holds it); revoked before issuing again.
   */
  readonly orphanSecretId?: string;
  /**
   * Two-secret providers: the standby label's own old secret, still held
   * (recorded with the label, never the active's), revoked before issuing,
   * as regenerating a twin client's standby ends its old secret.
   */
  readonly standbyOldSecretId?: string;
}

/** What planning needs besides the options. */
export interface PlanInput {
  /** The rotation's options. */
  readonly options: StagedRotationOptions;
  /** The clock. */
  readonly clock: Clock;
  /** The fetch for token requests. */
  readonly fetchFn: typeof fetch;
  /** The words of "start over" for the journal's refusals. */
  readonly freshWords: string;
}

/** Validates everything, checks that rotating is safe, and decides what to resume. Changes nothing. */
export async function makePlan(run: PlanInput): Promise<Plan> {
  const { options, clock, fetchFn } = run;
  const configWarnings: ConfigWarning[] = [];
  const config = resolveConfig({
    credentials: options.credentials,
    active: options.active,
    tokenUrl: options.tokenUrl,
    scope: options.scope,
    tokenParams: options.tokenParams,
  }, configWarnings);
  const tokenRequest = tokenRequestOptions(config);
  const active = config.credentials.find((c) => c.label === config.active)!;
  const standby = pickStandby(config.credentials, active, options.standby);
  const provider = options.provider ??
    (options.admin && typeof options.admin.regenerateSecret === "function"
      ? genesysSecretProvider(options.admin)
      : undefined);
  if (!provider || typeof provider.issueSecret !== "function") {
    throw new ConfigError(
      "provider",
      "give a SecretProvider (or a GenesysAdminClient as admin)",
    );
  }
  const twoSecrets = provider.model === "two-secrets";
  if (twoSecrets) {
    // Both labels are secrets of one client: issuing adds one beside the
    // active label's, which keeps working.
    if (standby.clientId !== active.clientId) {
      throw new ConfigError(
        "standby",
        `${provider.name} keeps two secrets on one OAuth client: "${standby.label}" (${standby.clientId}) ` +
          `and "${active.label}" (${active.clientId}) must name the same client.`,
      );
    }
    if (typeof provider.revokeSecret !== "function") {
      throw new ConfigError(
        "provider",
        `${provider.name} is a two-secret provider without revokeSecret`,
      );
    }
  } else if (standby.clientId === active.clientId) {
    throw new ConfigError(
      "standby",
      `"${standby.label}" and "${active.label}" share OAuth client ${active.clientId}; ` +
        `regenerating its secret would break traffic. Use two OAuth clients with the same roles.`,
    );
  }
  if (!options.sink || typeof options.sink.publish !== "function") {
    throw new ConfigError("sink", "give a SecretSink");
  }
  if (options.promote && typeof options.onPromote !== "function") {
    throw new ConfigError(
      "onPromote",
      "promote needs onPromote to say how traffic is switched",
    );
  }
  // Every path the run will write is checked before anything changes.
  const warnings = [...(await options.sink.check?.() ?? [])];
  await options.journal?.check?.();
  checkAborted(options.signal);
  // Regenerating the standby while the active one is broken would leave no
  // working credential at all.
  await oneTokenRequest(config.tokenUrl, active, active.clientSecret, {
    clock,
    fetchFn,
    signal: options.signal,
    ...tokenRequest,
  });
  const previous = options.fresh ? undefined : await options.journal?.read();
  const resume = await decideResume(
    run,
    previous,
    config.credentials,
    active,
    standby,
  );
  let tokenLifetimeSeconds: number | undefined;
  let orphanSecretId: string | undefined;
  let standbyOldSecretId: string | undefined;
  const activeSecretId = options.secretIds?.[active.label];
  if (resume.kind === "none") {
    const client = await provider.inspectClient(standby.clientId, {
      signal: options.signal,
    });
    if (client.state !== "active") {
      throw new ConfigError(
        "standby",
        `OAuth client ${standby.clientId} of "${standby.label}" is ${client.state}; ` +
          `an inactive client cannot get tokens. Activate it first.`,
      );
    }
    tokenLifetimeSeconds = client.tokenLifetimeSeconds;
    if (twoSecrets) {
      orphanSecretId = orphanOf(previous, client);
      const recordedOld = options.secretIds?.[standby.label];
      standbyOldSecretId = standbyOldOf(
        client,
        recordedOld,
        activeSecretId,
        orphanSecretId,
        active.clientSecret.reveal(),
      );
      const keptOld = client.secrets?.find((s) =>
        s.secretId === recordedOld && s.secretId !== orphanSecretId
      );
      if (
        standbyOldSecretId === undefined && keptOld !== undefined &&
        recordedOld !== activeSecretId
      ) {
        warnings.push(
          `${recordedOld}, recorded as the old secret of "${standby.label}", is kept: ${
            keptOld.hint === undefined
              ? `which secret "${active.label}" serves with is not recorded with the label, and ${provider.name} shows nothing of its value`
              : `${provider.name} shows the beginning of its value, and it is that of the secret "${active.label}" serves with (the recorded ids are wrong or swapped)`
          }, so it may be that one. Record the right ids; if ${recordedOld} is not ` +
            `"${active.label}"'s, revoke it in ${provider.name}'s console once nothing uses it.`,
        );
      }
      checkSecretLimit(
        provider.name,
        client,
        active.label,
        activeSecretId,
        standby.label,
        [orphanSecretId, standbyOldSecretId],
      );
    }
  }
  return {
    active,
    standby,
    tokenRequest,
    provider,
    resume,
    tokenLifetimeSeconds,
    warnings: Object.freeze(warnings),
    ...(activeSecretId === undefined ? {} : { activeSecretId }),
    ...(orphanSecretId === undefined ? {} : { orphanSecretId }),
    ...(standbyOldSecretId === undefined ? {} : { standbyOldSecretId }),
  };
}

async function decideResume(
  run: PlanInput,
  previous: RotationJournalRecord | undefined,
  credentials: readonly ResolvedCredential[],
  active: ResolvedCredential,
  standby: ResolvedCredential,
): Promise<Resume> {
  const { options, clock } = run;
  if (previous === undefined) return { kind: "none" };
  const age = clock.now() - previous.startedAt;
  const maxAge = options.maxJournalAgeMs ?? DEFAULT_MAX_JOURNAL_AGE_MS;
  const sameSink = previous.sink === options.sink.name;
  const known = credentials.some((c) =>
    c.label === previous.standby && c.clientId === previous.clientId
  );
  if (previous.completedAt !== undefined) {
    const promoteOnly = options.promote === true &&
      previous.promotedAt === undefined && previous.standby === standby.label &&
      sameSink && known && age <= maxAge;
    return promoteOnly
      ? { kind: "promote-only", record: previous }
      : { kind: "none" };
  }
  const started = `started ${iso(previous.startedAt)}`;
  if (!sameSink || !known) {
    throw new RotationJournalError(
      RotationJournalErrorCode.MISMATCH,
      previous,
      `The rotation journal holds an unfinished rotation (${started}) of "${previous.standby}" ` +
        `(OAuth client ${previous.clientId}, ${previous.sink}) that this configuration does not describe ` +
        `(${
          !sameSink
            ? `this run stores to ${options.sink.name}`
            : "that client id is not configured for that label"
        }). ` +
        `It is not resumed. Check which env file you meant; to start over, ${run.freshWords}.`,
    );
  }
  if (age > maxAge) {
    throw new RotationJournalError(
      RotationJournalErrorCode.STALE,
      previous,
      `The rotation journal holds an unfinished rotation of "${previous.standby}" ${started}, ` +
        `${
          Math.floor(age / 3_600_000)
        } h ago; it is too old to resume safely. ` +
        `Check that "${previous.standby}" works (deno task verify), then, to start over, ${run.freshWords}.`,
    );
  }
  if (previous.standby === active.label) {
    return { kind: "promoted", record: previous };
  }
  const stored = previous.publishedAt !== undefined ||
    (previous.standbyFingerprintBefore !== undefined &&
      previous.fingerprintSalt !== undefined &&
      await fingerprintSecret(
          standby.clientSecret.reveal(),
          previous.fingerprintSalt,
        ) !== previous.standbyFingerprintBefore);
  if (stored) return { kind: "prove", record: previous };
  return {
    kind: "none",
    note: previous.regenerateRequestedAt === undefined
      ? `rotation ${previous.rotationId} stopped before regenerating`
      : `rotation ${previous.rotationId} stopped before its new secret was stored; regenerating again (the standby serves no traffic)`,
  };
}

/**
 * A secret the journal's unfinished run issued and never stored: its id was
 * journaled, nothing was published, and the client still lists it.
 */
function orphanOf(
  previous: RotationJournalRecord | undefined,
  client: ProviderClientInfo,
): string | undefined {
  if (
    previous === undefined || previous.completedAt !== undefined ||
    previous.secretId === undefined || previous.publishedAt !== undefined
  ) return undefined;
  return client.secrets?.some((s) => s.secretId === previous.secretId)
    ? previous.secretId
    : undefined;
}

/**
 * The standby label's recorded old secret, when the client still holds it:
 * it goes before issuing, as regenerating a twin client's standby ends its
 * old secret, since only the standby's secret is ever replaced. At a limit
 * of two it makes room; without a limit (Entra ID) it would otherwise stay
 * valid with nobody using it. Never the active's: with the active label's
 * id not recorded, the standby's recorded id may name the very secret the
 * active serves with (copied, swapped, never updated), so nothing goes.
 */
function standbyOldOf(
  client: ProviderClientInfo,
  standbySecretId: string | undefined,
  activeSecretId: string | undefined,
  orphanSecretId: string | undefined,
  activeValue: string,
): string | undefined {
  if (standbySecretId === undefined || standbySecretId === activeSecretId) {
    return undefined;
  }
  const secrets = client.secrets ?? [];
  const held = secrets.filter((s) => s.secretId !== orphanSecretId);
  const old = held.find((s) => s.secretId === standbySecretId);
  if (old === undefined) return undefined;
  // The provider shows the beginning of each value: that tells whether it
  // may be the active's, whatever the records say.
  if (old.hint !== undefined) {
    return maybeSecretOf(old, activeValue) ? undefined : standbySecretId;
  }
  // Only the records tell: without the active's, it may be that one.
  return activeSecretId === undefined ? undefined : standbySecretId;
}

/**
 * A two-secret client at its limit cannot take another secret: say so
 * before acting, and name what to revoke (never the active label's).
 */
function checkSecretLimit(
  providerName: string,
  client: ProviderClientInfo,
  activeLabel: string,
  activeSecretId: string | undefined,
  standbyLabel: string,
  revokedFirst: readonly (string | undefined)[],
): void {
  const secrets = client.secrets ?? [];
  const max = client.maxSecrets;
  // What is revoked before issuing does not count.
  const held = secrets.filter((s) => !revokedFirst.includes(s.secretId));
  if (max === undefined || held.length < max) return;
  const revocable = held.filter((s) => s.secretId !== activeSecretId);
  const named = activeSecretId === undefined
    ? `one of ${
      held.map((s) => s.secretId).join(", ")
    } that "${activeLabel}" does not use (which one it uses is not recorded with the label)`
    : revocable.map((s) => s.secretId).join(", ");
  throw new ConfigError(
    "provider",
    `OAuth client ${client.clientId} holds ${held.length} secrets, ${providerName}'s limit of ${max}; ` +
      `issuing a new one for "${standbyLabel}" would be refused. Nothing was changed. ` +
      `Revoke ${named} first (the old secret of "${standbyLabel}", once nothing uses it), then run the rotation again.` +
      (activeSecretId === undefined
        ? ""
        : ` Never revoke ${activeSecretId}: "${activeLabel}" serves traffic with it.`),
  );
}

function pickStandby(
  credentials: readonly ResolvedCredential[],
  active: ResolvedCredential,
  wanted: string | undefined,
): ResolvedCredential {
  if (wanted !== undefined) {
    if (wanted === active.label) {
      throw new ConfigError(
        "standby",
        `"${wanted}" is the active credential; only the standby may be regenerated`,
      );
    }
    const found = credentials.find((c) => c.label === wanted);
    if (!found) {
      throw new ConfigError(
        "standby",
        `"${wanted}" is not a configured label (${
          credentials.map((c) => c.label).join(", ")
        })`,
      );
    }
    return found;
  }
  const others = credentials.filter((c) => c.label !== active.label);
  if (others.length !== 1) {
    throw new ConfigError(
      "standby",
      others.length === 0
        ? "there is no standby credential; configure two (blue and green)"
        : `several standby candidates (${
          others.map((c) => c.label).join(", ")
        }); name one`,
    );
  }
  return others[0];
}

/**
 * Throws an {@linkcode AbortedError} once the signal aborted.
 *
 * @param signal The signal, if any.
 */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
}

/**
 * A time for people.
 *
 * @param ms Milliseconds since the epoch, if known.
 * @returns ISO 8601, or "an unknown time".
 */
export function iso(ms: number | undefined): string {
  return ms === undefined ? "an unknown time" : new Date(ms).toISOString();
}
