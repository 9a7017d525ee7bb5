/**
 * Setting up the twin OAuth client by API: Genesys Cloud has no copy
 * endpoint, so the existing client is read (`GET /api/v2/oauth/clients/{id}`)
 * and a new one is created with the same grant type, roles and token
 * lifetime (`POST /api/v2/oauth/clients`). Its secret is shown only in that
 * response, so it is stored in the sink before anything else happens; then a
 * token request proves it.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { AbortedError, DualSecretAuthError } from "../errors.ts";
import type {
  GenesysOAuthClientAdmin,
  OAuthClientDetails,
  OAuthRoleDivision,
} from "../genesys/admin_client.ts";
import {
  AdminForbiddenError,
  RoleGrantRefusedError,
} from "../genesys/errors.ts";
import type { Secret } from "../secret.ts";
import { setEnvValue, writeFileAtomic } from "./env_file.ts";
import { clientIdEnvVar, clientSecretEnvVar } from "./env_config.ts";
import type { SecretSink } from "./sinks.ts";
import { describeError } from "./describe_error.ts";
import { proveCredential } from "./prove_credential.ts";
import { runSteps, StepFailedError, type StepSpec } from "./runner.ts";

/** The stable error codes of {@linkcode TwinSetupError}, one per step. */
export const TwinSetupErrorCode: {
  readonly READ_FAILED: "SETUP_READ_FAILED";
  readonly CREATE_FAILED: "SETUP_CREATE_FAILED";
  readonly STORE_FAILED: "SETUP_STORE_FAILED";
  readonly VERIFY_FAILED: "SETUP_VERIFY_FAILED";
} = Object.freeze(
  {
    READ_FAILED: "SETUP_READ_FAILED",
    CREATE_FAILED: "SETUP_CREATE_FAILED",
    STORE_FAILED: "SETUP_STORE_FAILED",
    VERIFY_FAILED: "SETUP_VERIFY_FAILED",
  } as const,
);

/** One of the values of {@linkcode TwinSetupErrorCode}. */
export type TwinSetupErrorCode =
  typeof TwinSetupErrorCode[keyof typeof TwinSetupErrorCode];

/** The steps of a set-up, in order. */
export type TwinSetupStep = "read" | "create" | "store" | "verify";

/** What happened in one step. */
export interface TwinSetupEvent {
  /** The step. */
  readonly step: TwinSetupStep;
  /** How it ended. */
  readonly status: "completed" | "skipped" | "failed";
  /** A sentence for the operator; never a secret. */
  readonly detail: string;
  /** When it ended, ISO 8601. */
  readonly at: string;
}

/** What the twin is (to be) created as. */
export interface TwinDefinition {
  /** Its display name: the source's, suffixed with the twin's label. */
  readonly name: string;
  /** Always `CLIENT-CREDENTIALS`. */
  readonly authorizedGrantType: "CLIENT-CREDENTIALS";
  /** The source's roles, each in its division. */
  readonly roleDivisions: readonly OAuthRoleDivision[];
  /** The source's token lifetime, when the API said. */
  readonly accessTokenValiditySeconds?: number;
  /** The source's description, when it has one. */
  readonly description?: string;
}

/** The outcome of {@linkcode setUpTwinClient}. */
export interface TwinSetupReport {
  /** Whether nothing was changed. */
  readonly dryRun: boolean;
  /** The label of the existing client. */
  readonly from: string;
  /** The label of the twin. */
  readonly to: string;
  /** The existing client. */
  readonly source: { readonly id: string; readonly name: string };
  /** What was (or would be) created. */
  readonly twin: TwinDefinition & {
    /** The new client's id; absent on a dry run. */
    readonly id?: string;
  };
  /** Where the id and secret went (or would go). */
  readonly sink: string;
  /** Whether a token request with the new secret succeeded. */
  readonly verified: boolean;
  /** Each step, in order. */
  readonly steps: readonly TwinSetupEvent[];
  /** What the operator should do next. */
  readonly nextStep: string;
}

/** Options of {@linkcode setUpTwinClient}. */
export interface TwinSetupOptions {
  /** The label of the existing client, such as `blue`. */
  readonly from: string;
  /** The label of the twin, such as `green`. */
  readonly to: string;
  /** The existing client's id. */
  readonly sourceClientId: string;
  /** An admin client allowed `oauth:client:view` and `oauth:client:add`. */
  readonly admin: Pick<
    GenesysOAuthClientAdmin,
    "describeClient" | "createClient"
  >;
  /**
   * Receives the twin's label, id and secret right after the create call
   * returns. It must store both the id and the secret (the env-file one of
   * {@linkcode createEnvFileClientSink} does, in one atomic write).
   */
  readonly sink: SecretSink;
  /** The token endpoint the new secret is proven against. */
  readonly tokenUrl: string;
  /**
   * Read and plan only; create nothing.
   *
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Who administers, in the operator's words, for error messages, such as
   * `GENESYS_ADMIN_CLIENT_ID (admin-id)`.
   *
   * @default "the admin credential"
   */
  readonly adminName?: string;
  /**
   * The command that runs the set-up again, for error messages.
   *
   * @default "the set-up"
   */
  readonly rerun?: string;
  /**
   * Token requests made to prove the new secret (Genesys may take a moment
   * to accept a new client).
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
   * Timeout of one token request, body included, in ms.
   *
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
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
  /**
   * Stops the set-up between steps and during waits, never during the
   * create call (whose answer is the only copy of the secret) or the store.
   */
  readonly signal?: AbortSignal;
  /** Called after each step. */
  readonly onStep?: (event: TwinSetupEvent) => void;
}

/** A set-up step failed; `step` and `message` say what state things are in. */
export class TwinSetupError extends StepFailedError {
  /** One of {@linkcode TwinSetupErrorCode}. */
  declare readonly code: TwinSetupErrorCode;
  /** The flow: always `"setup"`. */
  declare readonly flow: "setup";
  /** The step that failed. */
  declare readonly step: TwinSetupStep;
  /** The new client's id, when it was created. */
  readonly createdClientId?: string;
  /**
   * Whether the failure is the admin credential's missing permission or role
   * (the operator must grant something), not an outage.
   */
  readonly needsGrant: boolean;
  /** The steps up to and including the failed one. */
  readonly steps: readonly TwinSetupEvent[];

  /**
   * Creates the error.
   *
   * @param step The step that failed.
   * @param message What happened, what state things are in, what to do.
   * @param details The created client, the steps, whether a grant is missing.
   * @param options The underlying cause.
   */
  constructor(
    step: TwinSetupStep,
    message: string,
    details: {
      readonly createdClientId?: string;
      readonly needsGrant?: boolean;
      readonly steps: readonly TwinSetupEvent[];
    },
    options?: ErrorOptions,
  ) {
    super(
      `SETUP_${step.toUpperCase()}_FAILED` as TwinSetupErrorCode,
      message,
      { flow: "setup", step },
      options,
    );
    this.createdClientId = details.createdClientId;
    this.needsGrant = details.needsGrant ?? false;
    this.steps = Object.freeze([...details.steps]);
  }
}

/**
 * The twin's name: the source's name without a trailing `(blue)` or
 * `(green)`, suffixed with the twin's label.
 *
 * @param sourceName The existing client's name.
 * @param to The twin's label.
 * @returns The name, such as `Orders (green)`.
 *
 * @example
 * ```ts
 * import { twinName } from "@rotating/dual-secret-auth/genesys";
 * if (twinName("Orders (blue)", "green") !== "Orders (green)") throw new Error();
 * if (twinName("Orders", "green") !== "Orders (green)") throw new Error();
 * ```
 */
export function twinName(sourceName: string, to: string): string {
  const base = sourceName.replace(/\s*\((blue|green)\)\s*$/i, "").trim();
  return `${base || sourceName} (${to})`;
}

/**
 * The timeline of a set-up (a twin client's or a second secret's): each
 * step's end, stamped, kept and told to `onStep`. Internal to the set-ups.
 *
 * @param clock Stamps each event.
 * @param onStep Told of each event as it is recorded.
 * @returns The events so far and the function that records one.
 */
export function setupTimeline(
  clock: Clock,
  onStep: ((event: TwinSetupEvent) => void) | undefined,
): {
  steps: TwinSetupEvent[];
  record: (
    step: TwinSetupStep,
    status: TwinSetupEvent["status"],
    detail: string,
  ) => void;
} {
  const steps: TwinSetupEvent[] = [];
  const record = (
    step: TwinSetupStep,
    status: TwinSetupEvent["status"],
    detail: string,
  ) => {
    const event = Object.freeze({
      step,
      status,
      detail,
      at: new Date(clock.now()).toISOString(),
    });
    steps.push(event);
    onStep?.(event);
  };
  return { steps, record };
}

/**
 * Reads the existing client and creates its twin: same grant type, roles and
 * token lifetime, the name suffixed with the twin's label. The id and secret
 * go to the sink at once (the secret is never shown again), then a token
 * request proves them, retried a bounded number of times.
 *
 * @param options Who, where, and the I/O.
 * @returns The report; on a dry run, what would be created.
 * @throws {TwinSetupError} Naming the step, what exists now, and what to do.
 *
 * @example Create green from blue on the emulator
 * ```ts
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 * import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
 * import { createCallbackSink } from "@rotating/dual-secret-auth/rotation";
 * import { setUpTwinClient } from "@rotating/dual-secret-auth/genesys";
 *
 * await using emulator = startGenesysEmulator({
 *   roles: [{ id: "r", permissions: ["oauth:client:add", "oauth:client:view"] }],
 *   clients: [{
 *     clientId: "blue-id", secret: "s", name: "Orders (blue)",
 *     roleDivisions: [{ roleId: "r", divisionId: "*" }],
 *   }],
 * });
 * const stored: string[] = [];
 * const report = await setUpTwinClient({
 *   from: "blue", to: "green", sourceClientId: "blue-id",
 *   admin: createGenesysAdminClient({
 *     apiUrl: emulator.apiUrl,
 *     getAccessToken: () => Promise.resolve(emulator.issueToken("blue-id")),
 *   }),
 *   sink: createCallbackSink((update) => void stored.push(update.clientId)),
 *   tokenUrl: emulator.tokenUrl,
 * });
 * if (!report.verified || report.twin.name !== "Orders (green)") throw new Error();
 * if (stored[0] !== report.twin.id) throw new Error();
 * ```
 */
export async function setUpTwinClient(
  options: TwinSetupOptions,
): Promise<TwinSetupReport> {
  const clock = options.clock ?? systemClock;
  const { steps, record } = setupTimeline(clock, options.onStep);
  const run: TwinRun = {
    options,
    clock,
    adminName: options.adminName ?? "the admin credential",
    rerun: options.rerun ?? "the set-up",
  };
  await runSteps(TWIN_SETUP_STEPS, run, {
    // The timeline keeps how each step ended; a failure is recorded by `fail`.
    emit: (step, status, detail) => {
      if (status === "completed" || status === "skipped") {
        record(step, status, detail ?? "");
      }
    },
    signal: options.signal,
    dryRun: options.dryRun ?? false,
    fail: (step, failure, error) => {
      if (error instanceof AbortedError) return error;
      if (step === "verify" && options.signal?.aborted) {
        return new AbortedError({ cause: options.signal.reason });
      }
      record(step, "failed", failure.message);
      return new TwinSetupError(step, failure.message, {
        ...failure.details,
        steps,
      }, { cause: failure.cause === undefined ? error : failure.cause });
    },
  });
  const twin = run.twin!;
  const source = run.source!;
  const base = {
    from: options.from,
    to: options.to,
    source: Object.freeze({ id: source.id, name: source.name }),
    sink: options.sink.name,
  };
  if (options.dryRun) {
    return Object.freeze({
      ...base,
      dryRun: true,
      twin,
      verified: false,
      steps: Object.freeze([...steps]),
      nextStep:
        `Run it without --dry-run to create "${twin.name}". ${
          capitalized(run.adminName)
        } needs oauth:client:add and must hold ` +
        `${rolesText(twin.roleDivisions)} itself.`,
    });
  }
  return Object.freeze({
    ...base,
    dryRun: false,
    twin: Object.freeze({ ...twin, id: run.created!.id }),
    verified: true,
    steps: Object.freeze([...steps]),
    nextStep:
      `Both clients are ready: run deno task verify, then rotate as usual (the active one stays ${options.from}` +
      ` until you promote ${options.to}).`,
  });
}

/** Everything the set-up's steps share. */
interface TwinRun {
  readonly options: TwinSetupOptions;
  readonly clock: Clock;
  readonly adminName: string;
  readonly rerun: string;
  source?: OAuthClientDetails;
  twin?: TwinDefinition;
  created?: { id: string; secret: Secret };
}

/** A set-up step's failure: the message, what exists, the cause to keep. */
interface TwinFailure {
  readonly message: string;
  readonly details?: { createdClientId?: string; needsGrant?: boolean };
  /** @default the error thrown */
  readonly cause?: unknown;
}

/** The source client uses another grant than client credentials. */
class NotClientCredentials extends Error {}

/** The twin set-up as a table, run by the one step runner. */
const TWIN_SETUP_STEPS: readonly StepSpec<
  TwinRun,
  TwinSetupStep,
  never,
  TwinFailure
>[] = [
  {
    name: "read",
    abortable: true,
    inDryRun: true,
    run: async (run) => {
      const { options } = run;
      const source = await options.admin.describeClient(
        options.sourceClientId,
        { signal: options.signal },
      );
      if (source.authorizedGrantType !== "CLIENT-CREDENTIALS") {
        throw new NotClientCredentials(
          `The ${options.from} OAuth client ${source.id} uses the ${source.authorizedGrantType} grant; ` +
            `a twin for rotation is a client-credentials client. Nothing was created.`,
        );
      }
      run.source = source;
      run.twin = Object.freeze({
        name: twinName(source.name, options.to),
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleDivisions: source.roleDivisions,
        ...(source.accessTokenValiditySeconds === undefined
          ? {}
          : { accessTokenValiditySeconds: source.accessTokenValiditySeconds }),
        ...(source.description === undefined
          ? {}
          : { description: source.description }),
      });
      return `${options.from} is "${source.name}" (${source.id}): ${
        rolesText(source.roleDivisions)
      }, tokens for ${source.accessTokenValiditySeconds ?? "the default"} s`;
    },
    onFailure: (run, error) => {
      if (error instanceof NotClientCredentials) {
        return { message: error.message, cause: undefined };
      }
      const { options } = run;
      const grant = missingGrant(error, run.adminName, run.rerun);
      return {
        message: grant ??
          `Could not read the ${options.from} OAuth client ${options.sourceClientId}: ${
            describeError(error)
          } Nothing was created.`,
        details: { needsGrant: grant !== undefined },
      };
    },
  },
  {
    name: "create",
    abortable: true,
    dryRunDetail: (run) =>
      `would create "${run.twin!.name}" with ${
        rolesText(run.twin!.roleDivisions)
      } and store its id and secret in ${run.options.sink.name}`,
    run: async (run) => {
      const twin = run.twin!;
      // Not abortable: an abandoned create may still make a client whose
      // secret nobody would ever see. It is bounded by the request timeout.
      run.created = await run.options.admin.createClient({
        name: twin.name,
        authorizedGrantType: "CLIENT-CREDENTIALS",
        roleDivisions: twin.roleDivisions,
        ...(twin.accessTokenValiditySeconds === undefined
          ? {}
          : { accessTokenValiditySeconds: twin.accessTokenValiditySeconds }),
        ...(twin.description === undefined
          ? {}
          : { description: twin.description }),
        state: "active",
      });
      return `created "${twin.name}" (${run.created.id})`;
    },
    onFailure: (run, error) => {
      const twin = run.twin!;
      const grant = missingGrant(error, run.adminName, run.rerun);
      const unsure = grant === undefined &&
        !(error instanceof DualSecretAuthError &&
          "status" in error && typeof error.status === "number" &&
          error.status < 500);
      return {
        message: grant ??
          `Could not create "${twin.name}": ${describeError(error)}` +
            (unsure
              ? ` The client may have been created anyway: look for "${twin.name}" under Admin > Integrations > OAuth and delete it before running ${run.rerun} again.`
              : " Nothing was created."),
        details: { needsGrant: grant !== undefined },
      };
    },
  },
  {
    // At once, since the secret is shown only in the create response.
    name: "store",
    abortable: false,
    run: async (run) => {
      const { options } = run;
      await options.sink.publish({
        label: options.to,
        clientId: run.created!.id,
        secret: run.created!.secret,
      });
      return `stored the ${options.to} id and secret in ${options.sink.name}`;
    },
    onFailure: (run, error) => {
      const { id } = run.created!;
      return {
        message:
          `OAuth client "${
            run.twin!.name
          }" (${id}) was created, but its id and secret could not be stored in ` +
          `${run.options.sink.name}: ${
            describeError(error)
          } Its secret was shown only once and is lost: ` +
          `delete client ${id} under Admin > Integrations > OAuth, fix the cause, and run ${run.rerun} again.`,
        details: { createdClientId: id },
      };
    },
  },
  {
    name: "verify",
    abortable: false,
    run: async (run) => {
      const { options } = run;
      await proveCredential({
        tokenUrl: options.tokenUrl,
        label: options.to,
        clientId: run.created!.id,
        secret: run.created!.secret,
        attempts: Math.max(1, options.verifyAttempts ?? 10),
        delayMs: options.verifyDelayMs,
        requestTimeoutMs: options.requestTimeoutMs,
        fetch: options.fetch,
        clock: run.clock,
        signal: options.signal,
      });
      return `${options.to} got a token with its new secret`;
    },
    onFailure: (run, error) => {
      const { id } = run.created!;
      return {
        message:
          `OAuth client "${
            run.twin!.name
          }" (${id}) was created and stored in ${run.options.sink.name}, ` +
          `but it got no token after ${
            Math.max(1, run.options.verifyAttempts ?? 10)
          } attempt(s): ${describeError(error)} ` +
          `Genesys may still be propagating it; check again in a minute (deno task verify).`,
        details: { createdClientId: id },
      };
    },
  },
];

/**
 * A sink that stores a label's client id and secret
 * (`GENESYS_CLIENT_ID_<LABEL>`, `GENESYS_CLIENT_SECRET_<LABEL>`) in an env
 * file, both in one atomic rewrite: every other line stays as it was.
 *
 * @param path The env file, such as `.env`.
 * @returns The sink.
 *
 * @example
 * ```ts
 * import { createEnvFileClientSink } from "@rotating/dual-secret-auth/genesys";
 * import { Secret } from "@rotating/dual-secret-auth";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.env`, "GENESYS_ACTIVE=blue\n");
 * await createEnvFileClientSink(`${dir}/.env`).publish({
 *   label: "green", clientId: "g-id", secret: new Secret("g-secret"),
 * });
 * const text = await Deno.readTextFile(`${dir}/.env`);
 * if (!text.includes("GENESYS_CLIENT_ID_GREEN=g-id\nGENESYS_CLIENT_SECRET_GREEN=g-secret")) {
 *   throw new Error(text);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function createEnvFileClientSink(path: string): SecretSink {
  return Object.freeze(
    {
      name: `env file ${path}`,
      async publish(update): Promise<void> {
        let text = "";
        try {
          text = await Deno.readTextFile(path);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
        text = setEnvValue(text, clientIdEnvVar(update.label), update.clientId);
        text = setEnvValue(
          text,
          clientSecretEnvVar(update.label),
          update.secret.reveal(),
        );
        await writeFileAtomic(path, text);
      },
    } satisfies SecretSink,
  );
}

/** The operator's next step when the admin credential lacks a permission or a role. */
function missingGrant(
  error: unknown,
  adminName: string,
  rerun: string,
): string | undefined {
  if (error instanceof RoleGrantRefusedError) {
    return `${
      capitalized(adminName)
    } may grant only roles it holds itself, and the twin needs ${
      rolesText(error.roleDivisions)
    }. Give ${adminName}'s OAuth client those roles in those divisions (or use an admin credential ` +
      `that holds them), then run ${rerun} again. Nothing was created.`;
  }
  if (error instanceof AdminForbiddenError) {
    const words = PERMISSION_WORDS[error.permission] ?? error.permission;
    return `${
      capitalized(adminName)
    } lacks the permission ${error.permission}: give its OAuth client a role with ` +
      `${words}, then run ${rerun} again. Nothing was created.`;
  }
  return undefined;
}

/** How the Genesys Cloud admin UI names each permission. */
const PERMISSION_WORDS: Readonly<Record<string, string>> = {
  "oauth:client:add": "OAuth > Client > Add (oauth:client:add)",
  "oauth:client:view": "OAuth > Client > View (oauth:client:view)",
  "oauth:client:edit": "OAuth > Client > Edit (oauth:client:edit)",
};

function rolesText(pairs: readonly OAuthRoleDivision[]): string {
  if (pairs.length === 0) return "no roles";
  return pairs.map((pair) =>
    `role ${pair.roleId} in ${
      pair.divisionId === "*" ? "all divisions" : `division ${pair.divisionId}`
    }`
  ).join(", ");
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
