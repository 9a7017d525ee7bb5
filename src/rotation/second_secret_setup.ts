/**
 * Setting up the second label on a two-secret provider (Okta, Entra ID,
 * Cognito): there is no twin client to create, so the standby label becomes
 * a second secret of the one client. The secret is issued
 * (`SecretProvider.issueSecret`), stored with its id at once (Entra shows it
 * only once), then proven with a token request. Keycloak is not set up this
 * way: its second secret is the rotated one, which expires.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { AbortedError, ConfigError } from "../errors.ts";
import type { Secret } from "../secret.ts";
import type { TokenAuthMethod } from "../token_endpoint.ts";
import { describeError } from "./describe_error.ts";
import { tokenRequestOptions } from "./proof.ts";
import { proveCredential } from "./prove_credential.ts";
import {
  type IssuedSecret,
  maybeSecretOf,
  type ProviderSecretInfo,
  type SecretProvider,
} from "./provider.ts";
import { runSteps, type StepSpec } from "./runner.ts";
import type { SecretUpdate } from "./sinks.ts";
import {
  setupTimeline,
  TwinSetupError,
  type TwinSetupEvent,
  type TwinSetupStep,
} from "./twin_setup.ts";

/** What the store step hands over: the new secret of `to`, and the id of `from`'s when the provider's list told it. */
export interface SecondSecretUpdate extends SecretUpdate {
  /**
   * The provider's id of the existing label's secret, when the client held
   * it alone before (recorded with it, so a later rotation knows which
   * secret that label uses).
   *
   * @default undefined (not known)
   */
  readonly fromSecretId?: string;
}

/** Where the second secret goes: stored durably before anything else happens. */
export interface SecondSecretSink {
  /** A short description for reports, such as `env file .env.okta`. */
  readonly name: string;
  /**
   * Stores the second secret (its client id, value and id).
   *
   * @param update The new secret and whose it is.
   */
  publish(update: SecondSecretUpdate): Promise<void>;
}

/** Options of {@linkcode setUpSecondSecret}. */
export interface SecondSecretSetupOptions {
  /** The label whose secret exists and serves, such as `blue`. */
  readonly from: string;
  /** The label to set up, such as `green`. */
  readonly to: string;
  /** The one OAuth client both labels name. */
  readonly clientId: string;
  /** The provider's admin API; its model must be `two-secrets`. */
  readonly provider: SecretProvider;
  /** Where the new secret is stored, right after it is issued. */
  readonly sink: SecondSecretSink;
  /** The token endpoint the new secret is proven against. */
  readonly tokenUrl: string;
  /**
   * The scope of the proof's token request (Okta and Entra ID need one).
   *
   * @default undefined (none)
   */
  readonly scope?: string;
  /**
   * Further parameters of that request.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /**
   * How the secret is sent to the token endpoint.
   *
   * @default the token endpoint's default (HTTP Basic)
   */
  readonly authMethod?: TokenAuthMethod;
  /**
   * The id of `from`'s secret, as recorded already.
   *
   * @default undefined (found from the provider's list when the client holds one secret)
   */
  readonly fromSecretId?: string;
  /**
   * The id of `to`'s secret as recorded already, when it is replaced
   * (`setup --force`): revoked before the new one is issued, as a rotation
   * revokes the standby's old secret, when the client still lists it and
   * `from`'s id is known and another (else it is kept, and the report says
   * so).
   *
   * @default undefined (nothing replaced)
   */
  readonly replaceSecretId?: string;
  /**
   * `from`'s secret, to tell by the provider's hint of each value that the
   * replaced secret is not the one `from` serves with.
   *
   * @default undefined (the ids alone tell)
   */
  readonly fromSecret?: Secret;
  /**
   * Read only; issue nothing.
   *
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Token requests made to prove the new secret (Entra ID's take seconds to work).
   *
   * @default 10
   */
  readonly verifyAttempts?: number;
  /**
   * First wait between them, in ms; it doubles up to 5 s.
   *
   * @default 1000
   */
  readonly verifyDelayMs?: number;
  /**
   * The fetch of the token requests.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock of waits and timestamps.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /** Stops the set-up between steps and during waits, never between the issue call and the store. */
  readonly signal?: AbortSignal;
  /** Called after each step. */
  readonly onStep?: (event: TwinSetupEvent) => void;
}

/** The outcome of {@linkcode setUpSecondSecret}. */
export interface SecondSecretSetupReport {
  /** Whether nothing was changed. */
  readonly dryRun: boolean;
  /** The existing label. */
  readonly from: string;
  /** The label set up. */
  readonly to: string;
  /** The one OAuth client. */
  readonly clientId: string;
  /**
   * The new secret's id.
   *
   * @default undefined (a dry run)
   */
  readonly secretId?: string;
  /**
   * The id of `from`'s secret, when known.
   *
   * @default undefined (not known)
   */
  readonly fromSecretId?: string;
  /** Where the secret went (or would go). */
  readonly sink: string;
  /** Whether a token request with the new secret succeeded. */
  readonly verified: boolean;
  /** Each step, in order. */
  readonly steps: readonly TwinSetupEvent[];
  /** What the operator should do next. */
  readonly nextStep: string;
}

/** Everything the steps share. */
interface SecondRun {
  readonly options: SecondSecretSetupOptions;
  readonly clock: Clock;
  secrets?: readonly ProviderSecretInfo[];
  fromSecretId?: string;
  /** `to`'s replaced secret, revoked before issuing. */
  replaced?: string;
  /** `to`'s replaced secret when it is kept (which one `from` uses is not known). */
  kept?: string;
  issued?: IssuedSecret;
}

interface SecondFailure {
  readonly message: string;
  readonly needsGrant?: boolean;
}

/** The provider's own refusal, read before anything is issued. */
class Refusal extends Error {}

const STEPS: readonly StepSpec<
  SecondRun,
  TwinSetupStep,
  never,
  SecondFailure
>[] = [
  {
    name: "read",
    abortable: true,
    inDryRun: true,
    run: async (run) => {
      const { options } = run;
      const { provider, clientId, from, to } = options;
      const client = await provider.inspectClient(clientId, {
        signal: options.signal,
      });
      if (client.state !== "active") {
        throw new Refusal(
          `${provider.name} client ${clientId} is ${client.state}; activate it first. Nothing was issued.`,
        );
      }
      const secrets = client.secrets ?? [];
      run.secrets = secrets;
      run.fromSecretId = options.fromSecretId ??
        (secrets.length === 1 ? secrets[0].secretId : undefined);
      const old = options.replaceSecretId;
      const listedOld = secrets.find((s) => s.secretId === old);
      if (old !== undefined && listedOld !== undefined) {
        // Never what `from` may serve with: its id must be known, and not
        // it, and where the provider shows a hint of each value, not one
        // beginning as `from`'s secret (ids recorded wrongly or swapped).
        const fromValue = options.fromSecret?.reveal();
        if (
          run.fromSecretId !== undefined && run.fromSecretId !== old &&
          provider.revokeSecret !== undefined &&
          (listedOld.hint === undefined || fromValue === undefined ||
            !maybeSecretOf(listedOld, fromValue))
        ) run.replaced = old;
        else run.kept = old;
      }
      const held = secrets.length - (run.replaced === undefined ? 0 : 1);
      if (client.maxSecrets !== undefined && held >= client.maxSecrets) {
        throw new Refusal(
          `${provider.name} client ${clientId} holds ${secrets.length} secrets (${
            secrets.map((s) => s.secretId).join(", ")
          }), ${provider.name}'s limit of ${client.maxSecrets}: a secret for "${to}" would be refused. ` +
            `Revoke the one "${from}" does not use (in ${provider.name}'s console), then run the set-up again. ` +
            `Nothing was issued.`,
        );
      }
      return `${provider.name} client ${clientId} holds ${secrets.length} secret${
        secrets.length === 1 ? "" : "s"
      }${
        run.fromSecretId === undefined
          ? ""
          : `; "${from}" uses ${run.fromSecretId}`
      }${
        run.kept === undefined
          ? ""
          : `; "${to}"'s replaced secret ${run.kept} is kept (which secret "${from}" uses is not recorded): ` +
            `revoke it in ${provider.name}'s console once nothing uses it`
      }`;
    },
    onFailure: (run, error) => ({
      message: error instanceof Refusal
        ? error.message
        : `Could not read ${run.options.provider.name} client ${run.options.clientId}: ${
          describeError(error)
        } Nothing was issued.`,
      needsGrant: (error as { kind?: string }).kind === "forbidden",
    }),
  },
  {
    name: "create",
    abortable: true,
    dryRunDetail: (run) =>
      `${
        run.replaced === undefined
          ? ""
          : `would revoke ${run.replaced} ("${run.options.to}"'s replaced secret), then `
      }would issue a second secret of ${run.options.provider.name} client ${run.options.clientId} for "${run.options.to}"`,
    run: async (run) => {
      const { provider, clientId } = run.options;
      if (run.replaced !== undefined) {
        // As a rotation does with the standby's old secret: nobody would
        // hold it once the new one is stored, and it would stay valid.
        await provider.revokeSecret!(clientId, run.replaced, {
          signal: run.options.signal,
        });
      }
      // No signal: once sent, the call must return so its secret is stored.
      const issued = await provider.issueSecret(clientId);
      if (issued.clientId !== clientId) {
        throw new ConfigError(
          "provider",
          `${provider.name} issued a secret for client ${issued.clientId}, not ${clientId}`,
        );
      }
      run.issued = issued;
      return `${
        run.replaced === undefined
          ? ""
          : `revoked ${run.replaced} ("${run.options.to}"'s replaced secret); `
      }issued a second secret of ${clientId}${
        issued.secretId === undefined ? "" : ` (id ${issued.secretId})`
      }`;
    },
    onFailure: (run, error) => ({
      message:
        `Could not issue a second secret of ${run.options.provider.name} client ${run.options.clientId}: ${
          describeError(error)
        } Nothing serving traffic changed.`,
      needsGrant: (error as { kind?: string }).kind === "forbidden",
    }),
  },
  {
    name: "store",
    abortable: false,
    run: async (run) => {
      const { options } = run;
      const issued = run.issued!;
      await options.sink.publish({
        label: options.to,
        clientId: options.clientId,
        secret: issued.secret,
        ...(issued.secretId === undefined ? {} : { secretId: issued.secretId }),
        ...(run.fromSecretId === undefined
          ? {}
          : { fromSecretId: run.fromSecretId }),
      });
      return `stored "${options.to}"'s secret${
        issued.secretId === undefined ? "" : ` and its id`
      } in ${options.sink.name}`;
    },
    onFailure: (run, error) => ({
      message: `The second secret ${
        run.issued?.secretId ?? ""
      } of client ${run.options.clientId} was issued but could not be stored in ${run.options.sink.name}: ${
        describeError(error)
      } Nobody holds it: revoke it in ${run.options.provider.name}'s console, fix the cause, and run the set-up again.`,
    }),
  },
  {
    name: "verify",
    abortable: true,
    run: async (run) => {
      const { options } = run;
      await proveCredential({
        tokenUrl: options.tokenUrl,
        label: options.to,
        clientId: options.clientId,
        secret: run.issued!.secret as Secret,
        ...(options.authMethod === undefined
          ? {}
          : { authMethod: options.authMethod }),
        ...tokenRequestOptions(options),
        attempts: options.verifyAttempts,
        delayMs: options.verifyDelayMs,
        fetch: options.fetch,
        clock: run.clock,
        signal: options.signal,
      });
      return `"${options.to}" got a token with its new secret`;
    },
    onFailure: (run, error) => ({
      message:
        `The second secret of client ${run.options.clientId} is stored in ${run.options.sink.name} but got no token yet: ${
          describeError(error)
        } "${run.options.from}" serves traffic, so nothing is down; check again in a minute (deno task verify).`,
    }),
  },
];

/**
 * Issues a second secret of a two-secret provider's client for the standby
 * label, stores it (with its id, and the existing label's id when the
 * client held that secret alone), and proves it: both labels then work, as
 * after a Genesys twin set-up.
 *
 * @param options The labels, the client, the provider, the sink and the I/O.
 * @returns The report; on a dry run, what would be issued.
 * @throws {TwinSetupError} Naming the step, what exists now, and what to do.
 * @throws {ConfigError} When the provider is not a two-secret one.
 */
export async function setUpSecondSecret(
  options: SecondSecretSetupOptions,
): Promise<SecondSecretSetupReport> {
  if (options.provider.model !== "two-secrets") {
    throw new ConfigError(
      "provider",
      `${options.provider.name} keeps one secret per client: a second label is a twin client`,
    );
  }
  const clock = options.clock ?? systemClock;
  const { steps, record } = setupTimeline(clock, options.onStep);
  const run: SecondRun = { options, clock };
  await runSteps(STEPS, run, {
    emit: (step, status, detail) => {
      if (status === "completed" || status === "skipped") {
        record(step, status, detail ?? "");
      }
    },
    signal: options.signal,
    dryRun: options.dryRun ?? false,
    fail: (step, failure, error) => {
      if (error instanceof AbortedError) return error;
      record(step, "failed", failure.message);
      return new TwinSetupError(step, failure.message, {
        needsGrant: failure.needsGrant ?? false,
        steps,
      }, { cause: error });
    },
  });
  const base = {
    from: options.from,
    to: options.to,
    clientId: options.clientId,
    sink: options.sink.name,
    ...(run.fromSecretId === undefined
      ? {}
      : { fromSecretId: run.fromSecretId }),
    steps: Object.freeze([...steps]),
  };
  if (options.dryRun) {
    return Object.freeze({
      ...base,
      dryRun: true,
      verified: false,
      nextStep:
        `Run it without --dry-run to issue "${options.to}"'s secret on client ${options.clientId}.`,
    });
  }
  return Object.freeze({
    ...base,
    dryRun: false,
    verified: true,
    ...(run.issued?.secretId === undefined
      ? {}
      : { secretId: run.issued.secretId }),
    nextStep:
      `Both labels work (two secrets of client ${options.clientId}): run deno task verify, then rotate as usual ` +
      `(the active one stays ${options.from} until you promote ${options.to}).`,
  });
}
