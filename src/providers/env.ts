/**
 * The operator tasks' configuration for every identity provider, from
 * provider-neutral environment variables (`AUTH_PROVIDER`, `AUTH_CLIENT_ID_<LABEL>`,
 * `AUTH_CLIENT_SECRET_<LABEL>`, `AUTH_ACTIVE`, …). With `AUTH_PROVIDER` unset
 * or `genesys`, the `GENESYS_*` variables are read as before, by
 * `readRotationEnv`. A pure function of a `Record<string, string | undefined>`;
 * the provider's admin adapter is imported only when
 * {@linkcode ProviderEnvConfig.createProvider} is called, so each operator
 * loads only the code of the provider they use.
 *
 * @module
 */
import type { CredentialInput } from "../config.ts";
import {
  AllCredentialsRejectedError,
  ConfigError,
  CredentialRejectedError,
  DualSecretAuthError,
} from "../errors.ts";
import type { SecretModel, SecretProvider } from "../rotation/provider.ts";
import type { OperatorNames } from "../rotation/describe_error.ts";
import {
  clientSecretEnvVar,
  EnvConfigError,
  type EnvProblem,
  readRotationEnv,
  type ReadRotationEnvOptions,
  requiredVariable,
  ROTATION_ENV_VARS,
  ROTATION_LABELS,
  type RotationEnvConfig,
  type RotationLabel,
  secretVariable,
} from "../rotation/env_config.ts";
import { Secret } from "../secret.ts";
import type { TokenAuthMethod } from "../token_endpoint.ts";
import type { AdminIoOptions } from "./admin_http.ts";
import {
  auth0 as auth0Preset,
  cognito as cognitoPreset,
  entra as entraPreset,
  keycloak as keycloakPreset,
  okta as oktaPreset,
  type ProviderPreset,
} from "./presets.ts";
import { resolveAllowedUrl } from "../allowed_url.ts";

/** The providers `AUTH_PROVIDER` may name. */
export const AUTH_PROVIDERS: readonly [
  "genesys",
  "okta",
  "entra",
  "keycloak",
  "cognito",
  "auth0",
] = Object.freeze(
  ["genesys", "okta", "entra", "keycloak", "cognito", "auth0"] as const,
);

/** One of {@linkcode AUTH_PROVIDERS}. */
export type AuthProvider = typeof AUTH_PROVIDERS[number];

/** The variable naming the provider. */
export const PROVIDER_ENV_VAR = "AUTH_PROVIDER";

/** The variable holding the active label, for every provider but Genesys. */
export const AUTH_ACTIVE_ENV_VAR = "AUTH_ACTIVE";

/**
 * The variable holding a label's client id, such as `AUTH_CLIENT_ID_GREEN`.
 *
 * @param label The label.
 * @returns The variable name.
 */
export function authClientIdEnvVar(label: string): string {
  return `AUTH_CLIENT_ID_${label.toUpperCase()}`;
}

/**
 * The variable holding a label's secret, such as `AUTH_CLIENT_SECRET_GREEN`.
 *
 * @param label The label.
 * @returns The variable name.
 */
export function authClientSecretEnvVar(label: string): string {
  return `AUTH_CLIENT_SECRET_${label.toUpperCase()}`;
}

/** The variables a provider's configuration reads: those it cannot do without, and the rest. */
export interface ProviderVariables {
  /** Read and needed (an alternative such as `AUTH_TOKEN_URL` for `AUTH_DOMAIN` is listed under `optional`). */
  readonly required: readonly string[];
  /** Read when set. */
  readonly optional: readonly string[];
}

const LABEL_VARS = ROTATION_LABELS.flatMap((label) => [
  authClientIdEnvVar(label),
  authClientSecretEnvVar(label),
]);
const COMMON_REQUIRED = [PROVIDER_ENV_VAR, ...LABEL_VARS, AUTH_ACTIVE_ENV_VAR];
const COMMON_OPTIONAL = ["AUTH_TOKEN_URL", "AUTH_TOKEN_ENDPOINT_AUTH_METHOD"];
const ADMIN_CLIENT = ["AUTH_ADMIN_CLIENT_ID", "AUTH_ADMIN_CLIENT_SECRET"];

/**
 * The variable recording the provider's id of a label's secret (two-secret
 * providers): written by `rotate` with the secret, read back by the next
 * rotation, such as `AUTH_SECRET_ID_GREEN`.
 *
 * @param label The label.
 * @returns The variable's name.
 */
export function secretIdEnvVar(label: string): string {
  return `AUTH_SECRET_ID_${label.toUpperCase()}`;
}

/** The variables recording each label's secret id (two-secret providers), such as `AUTH_SECRET_ID_BLUE`. */
export const SECRET_ID_ENV_VARS: readonly string[] = Object.freeze(
  ROTATION_LABELS.map(secretIdEnvVar),
);

/** Every variable each provider reads, for the env examples and the permission list. */
export const PROVIDER_VARIABLES: Readonly<
  Record<AuthProvider, ProviderVariables>
> = Object.freeze({
  genesys: {
    required: [
      ...ROTATION_LABELS.flatMap((l) => [
        `GENESYS_CLIENT_ID_${l.toUpperCase()}`,
        clientSecretEnvVar(l),
      ]),
      "GENESYS_ACTIVE",
    ],
    optional: [
      PROVIDER_ENV_VAR,
      "GENESYS_ENVIRONMENT",
      "GENESYS_TOKEN_URL",
      "GENESYS_API_URL",
      "GENESYS_ADMIN_CLIENT_ID",
      "GENESYS_ADMIN_CLIENT_SECRET",
    ],
  },
  okta: {
    required: [...COMMON_REQUIRED, "AUTH_SCOPE", "AUTH_ADMIN_TOKEN"],
    optional: [
      ...COMMON_OPTIONAL,
      "AUTH_DOMAIN",
      "AUTH_AUTH_SERVER_ID",
      "AUTH_API_URL",
      "AUTH_ADMIN_TOKEN_SCHEME",
    ],
  },
  entra: {
    required: [...COMMON_REQUIRED, "AUTH_SCOPE", ...ADMIN_CLIENT],
    optional: [
      ...COMMON_OPTIONAL,
      "AUTH_TENANT_ID",
      "AUTH_API_URL",
      "AUTH_ADMIN_SCOPE",
    ],
  },
  keycloak: {
    required: [
      ...COMMON_REQUIRED,
      "AUTH_BASE_URL",
      "AUTH_REALM",
      ...ADMIN_CLIENT,
    ],
    optional: [...COMMON_OPTIONAL, "AUTH_SCOPE"],
  },
  cognito: {
    required: [
      ...COMMON_REQUIRED,
      "AUTH_USER_POOL_ID",
      "AUTH_ADMIN_ACCESS_KEY_ID",
      "AUTH_ADMIN_SECRET_ACCESS_KEY",
    ],
    optional: [
      ...COMMON_OPTIONAL,
      "AUTH_SCOPE",
      "AUTH_DOMAIN",
      "AUTH_USER_POOL_DOMAIN",
      "AUTH_REGION",
      "AUTH_API_URL",
      "AUTH_ADMIN_SESSION_TOKEN",
    ],
  },
  auth0: {
    required: [...COMMON_REQUIRED, "AUTH_AUDIENCE", ...ADMIN_CLIENT],
    optional: [
      ...COMMON_OPTIONAL,
      "AUTH_DOMAIN",
      "AUTH_SCOPE",
      "AUTH_API_URL",
      "AUTH_ADMIN_AUDIENCE",
    ],
  },
});

/** Every variable the configuration of any provider reads (the tasks' env permission lists these). */
export const PROVIDER_ENV_VARS: readonly string[] = Object.freeze([
  ...new Set([
    ...ROTATION_ENV_VARS,
    ...Object.values(PROVIDER_VARIABLES).flatMap((v) => [
      ...v.required,
      ...v.optional,
    ]),
  ]),
]);

/** One credential, with how it authenticates at the token endpoint. */
export interface ProviderCredential extends CredentialInput {
  /** The secret. */
  readonly clientSecret: Secret;
  /** `client_secret_basic` or `client_secret_post`. */
  readonly authMethod: TokenAuthMethod;
}

/** The admin credential and how `createProvider` uses it. */
export interface ProviderAdmin {
  /**
   * `client-credentials`: a token from a token endpoint (Genesys, Entra,
   * Keycloak, Auth0); `api-token`: a token given as is (Okta);
   * `aws-keys`: an AWS access key that signs each call (Cognito).
   */
  readonly kind: "client-credentials" | "api-token" | "aws-keys";
  /** The label it is shown under: `admin`, or the active label when it administers. */
  readonly label: string;
  /** The variable of its secret (to name when it is refused). */
  readonly secretVariable: string;
  /**
   * `client-credentials`: the credential, its token endpoint and parameters.
   *
   * @default undefined (not a client-credentials admin)
   */
  readonly credential?: ProviderCredential;
  /**
   * `client-credentials`: the admin's token endpoint.
   *
   * @default undefined
   */
  readonly tokenUrl?: string;
  /**
   * `client-credentials`: the scope of admin tokens (Entra's Graph `.default`).
   *
   * @default undefined (none)
   */
  readonly scope?: string;
  /**
   * `client-credentials`: further parameters (Auth0's Management API `audience`).
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /**
   * The id of the admin credential (client id or access key id), for display.
   *
   * @default undefined (an API token has none)
   */
  readonly id?: string;
}

/** A provider's admin adapter, built; close it when done (it may hold a token client). */
export interface ProviderHandle extends AsyncDisposable {
  /** The adapter behind the rotation engine's port. */
  readonly provider: SecretProvider;
  /** Closes the admin token client, if any. */
  close(): Promise<void>;
}

/** The configuration of one provider, read from the environment. */
export interface ProviderEnvConfig {
  /** Which provider. */
  readonly provider: AuthProvider;
  /** Its name as people write it, such as `Microsoft Entra ID`. */
  readonly title: string;
  /** Twin clients or two secrets on one client (Keycloak: two secrets when both labels name one client). */
  readonly model: SecretModel;
  /** The token endpoint of the credentials. */
  readonly tokenUrl: string;
  /**
   * The scope the credentials request.
   *
   * @default undefined (none)
   */
  readonly scope?: string;
  /**
   * Further token request parameters (Auth0's `audience`).
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /** Blue and green, in that order. */
  readonly credentials: readonly ProviderCredential[];
  /** The label serving traffic. */
  readonly active: RotationLabel;
  /** The other label. */
  readonly standby: RotationLabel;
  /** The admin credential. */
  readonly admin: ProviderAdmin;
  /** The variable holding the active label (`GENESYS_ACTIVE` or `AUTH_ACTIVE`). */
  readonly activeVariable: string;
  /** The variable of a label's secret. */
  readonly secretVariable: (label: string) => string;
  /** The variables an operator's error message names (`explainError`). */
  readonly names: OperatorNames;
  /**
   * Two-secret providers: the provider's id of each label's secret, as an
   * earlier rotation recorded it (`AUTH_SECRET_ID_<LABEL>`), for the labels
   * that have one. Read here only, so every task takes them from one reader.
   *
   * @default {} (twin clients, or nothing recorded yet)
   */
  readonly secretIds: Readonly<Record<string, string>>;
  /**
   * Genesys: the configuration `readRotationEnv` read.
   *
   * @default undefined (another provider)
   */
  readonly genesys?: RotationEnvConfig;
  /**
   * Imports this provider's adapter (and only it) and builds it with the
   * admin credential.
   *
   * @param options I/O of the adapter (fetch, clock, retry bounds).
   * @returns The adapter and its closer.
   */
  createProvider(options?: AdminIoOptions): Promise<ProviderHandle>;
}

/** The code of {@linkcode ProviderAdminRejectedError}. */
export const PROVIDER_ADMIN_REJECTED = "PROVIDER_ADMIN_REJECTED" as const;

/** The admin credential was refused at its token endpoint; the message names the variable to fix. */
export class ProviderAdminRejectedError extends DualSecretAuthError {
  /** The variable holding the refused secret. */
  readonly variable: string;

  /**
   * Creates the error.
   *
   * @param provider The provider's name.
   * @param variable The variable to fix.
   * @param cause The token endpoint's refusal.
   */
  constructor(provider: string, variable: string, cause: unknown) {
    super(
      PROVIDER_ADMIN_REJECTED,
      `the ${provider} token endpoint refused the admin credential; check ${variable} (and the client id beside it)`,
      { cause },
    );
    this.variable = variable;
  }
}

const TITLES: Readonly<Record<AuthProvider, string>> = {
  genesys: "Genesys Cloud",
  okta: "Okta",
  entra: "Microsoft Entra ID",
  keycloak: "Keycloak",
  cognito: "AWS Cognito",
  auth0: "Auth0",
};

/**
 * Reads and checks the configuration of the provider `AUTH_PROVIDER` names.
 * Every problem is collected, so one run names every missing or invalid
 * variable; no message holds a secret.
 *
 * @param env Variable values, such as those read from `Deno.env`.
 * @param options The standby the operator asked for, if any.
 * @returns The configuration.
 * @throws {EnvConfigError} Naming each variable at fault.
 *
 * @example Okta, both secrets of one app
 * ```ts
 * import { readProviderEnv } from "./env.ts";
 *
 * const config = readProviderEnv({
 *   AUTH_PROVIDER: "okta",
 *   AUTH_DOMAIN: "dev-123456.okta.com",
 *   AUTH_SCOPE: "orders.read",
 *   AUTH_CLIENT_ID_BLUE: "0oa1", AUTH_CLIENT_SECRET_BLUE: "first-secret-value",
 *   AUTH_CLIENT_ID_GREEN: "0oa1", AUTH_CLIENT_SECRET_GREEN: "second-secret-value",
 *   AUTH_ACTIVE: "blue",
 *   AUTH_ADMIN_TOKEN: "00api-token",
 * });
 * if (config.tokenUrl !== "https://dev-123456.okta.com/oauth2/default/v1/token") throw new Error();
 * if (config.model !== "two-secrets" || config.standby !== "green") throw new Error();
 * ```
 */
export function readProviderEnv(
  env: Readonly<Record<string, string | undefined>>,
  options?: ReadRotationEnvOptions,
): ProviderEnvConfig {
  const value = (name: string): string | undefined => {
    const text = env[name]?.trim();
    return text === undefined || text === "" ? undefined : text;
  };
  const named = value(PROVIDER_ENV_VAR)?.toLowerCase() ?? "genesys";
  if (!(AUTH_PROVIDERS as readonly string[]).includes(named)) {
    throw new EnvConfigError([{
      variable: PROVIDER_ENV_VAR,
      problem:
        `"${named}" is not a provider this tool knows; set it to one of ${
          AUTH_PROVIDERS.join(", ")
        } (examples/env/<provider>.env.example shows each one's variables)`,
    }]);
  }
  const provider = named as AuthProvider;
  if (provider === "genesys") {
    try {
      return genesysConfig(readRotationEnv(env, options));
    } catch (error) {
      const authNames = Object.keys(env).filter((name) =>
        name.startsWith("AUTH_") && value(name) !== undefined
      );
      if (
        !(error instanceof EnvConfigError) || value(PROVIDER_ENV_VAR) ||
        authNames.length === 0
      ) throw error;
      // AUTH_* settings without AUTH_PROVIDER: say what is missing first.
      throw new EnvConfigError([{
        variable: PROVIDER_ENV_VAR,
        problem: `is not set, so the GENESYS_* variables were read, but ${
          authNames[0]
        } is set; set AUTH_PROVIDER to okta, entra, keycloak, cognito or auth0 (or remove the AUTH_* variables for Genesys Cloud)`,
      }, ...error.problems]);
    }
  }
  const problems: EnvProblem[] = [];
  const read = READERS[provider](value, problems);
  const authMethod = readAuthMethod(
    value,
    problems,
    provider === "auth0" ? "client_secret_post" : "client_secret_basic",
  );
  const credentials: ProviderCredential[] = [];
  for (const label of ROTATION_LABELS) {
    const clientId = requiredVariable(
      (name) => env[name],
      authClientIdEnvVar(label),
      problems,
    );
    const secret = secretVariable(
      (name) => env[name],
      authClientSecretEnvVar(label),
      problems,
      true,
    );
    if (clientId !== undefined && secret !== undefined) {
      credentials.push({ label, clientId, clientSecret: secret, authMethod });
    }
  }
  const model = checkModel(provider, value, problems);
  const active = readActive(value, problems);
  let standby: RotationLabel | undefined;
  const requested = options?.standby;
  if (requested !== undefined) {
    if (!(ROTATION_LABELS as readonly string[]).includes(requested)) {
      problems.push({
        variable: "standby",
        problem: `"${requested}" is not blue or green`,
      });
    } else if (requested === active) {
      problems.push({
        variable: "standby",
        problem:
          `"${requested}" is the active credential (${AUTH_ACTIVE_ENV_VAR}); only the standby may be rotated`,
      });
    } else standby = requested as RotationLabel;
  } else if (active !== undefined) {
    standby = active === "blue" ? "green" : "blue";
  }
  if (
    problems.length > 0 || read === undefined || active === undefined ||
    standby === undefined || model === undefined
  ) {
    // A preset may name a variable already named (a missing scope): once.
    throw new EnvConfigError(
      problems.filter((p, i) =>
        problems.findIndex((q) => q.variable === p.variable) === i
      ),
    );
  }
  const { admin, build } = read.admin(authMethod);
  const title = TITLES[provider];
  return Object.freeze({
    provider,
    title,
    model,
    tokenUrl: read.preset.tokenUrl,
    ...(read.preset.scope === undefined
      ? {}
      : { scope: scopeText(read.preset.scope) }),
    ...(read.preset.tokenParams === undefined
      ? {}
      : { tokenParams: read.preset.tokenParams }),
    credentials: Object.freeze(credentials),
    active,
    standby,
    admin: Object.freeze(admin),
    activeVariable: AUTH_ACTIVE_ENV_VAR,
    secretVariable: authClientSecretEnvVar,
    names: Object.freeze({
      secretVariable: (label: string) =>
        label === "admin"
          ? admin.secretVariable
          : authClientSecretEnvVar(label),
      endpointVariables: `${ENDPOINT_VARIABLES[provider]} or AUTH_TOKEN_URL`,
    }),
    secretIds: model === "two-secrets" ? readSecretIds(value) : {},
    createProvider: (io: AdminIoOptions = {}) =>
      build(io, model, withAdminToken(title, admin)),
  });
}

type Read = (name: string) => string | undefined;

/** The variables that give each provider's token endpoint besides `AUTH_TOKEN_URL`. */
const ENDPOINT_VARIABLES: Readonly<Record<AuthProvider, string>> = {
  genesys: "GENESYS_ENVIRONMENT",
  okta: "AUTH_DOMAIN and AUTH_AUTH_SERVER_ID",
  entra: "AUTH_TENANT_ID",
  keycloak: "AUTH_BASE_URL and AUTH_REALM",
  cognito: "AUTH_DOMAIN (or AUTH_USER_POOL_DOMAIN and AUTH_REGION)",
  auth0: "AUTH_DOMAIN",
};

/** `AUTH_SECRET_ID_<LABEL>` of each label that has one. */
function readSecretIds(value: Read): Readonly<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const label of ROTATION_LABELS) {
    const id = value(secretIdEnvVar(label));
    if (id !== undefined) ids[label] = id;
  }
  return Object.freeze(ids);
}

/** A token source built on the admin credential, or undefined for key-based admins. */
type AdminTokens = (
  io: AdminIoOptions,
) => Promise<
  {
    getAccessToken: (o?: { signal?: AbortSignal }) => Promise<string>;
    invalidateToken: (token: string) => void;
    close: () => Promise<void>;
  }
>;

interface ProviderRead {
  readonly preset: ProviderPreset;
  admin(authMethod: TokenAuthMethod): {
    admin: ProviderAdmin;
    build: (
      io: AdminIoOptions,
      model: SecretModel,
      tokens: AdminTokens,
    ) => Promise<ProviderHandle>;
  };
}

function handle(
  provider: SecretProvider,
  close: () => Promise<void> = () => Promise.resolve(),
): ProviderHandle {
  return Object.freeze({
    provider,
    close,
    [Symbol.asyncDispose]: close,
  });
}

/** The admin token source: one credential through `createDualSecretAuth`, never a failover. */
function withAdminToken(title: string, admin: ProviderAdmin): AdminTokens {
  return async (io) => {
    const { createDualSecretAuth } = await import("../dual_secret_auth.ts");
    const credential = admin.credential!;
    const auth = createDualSecretAuth({
      credentials: [credential],
      tokenUrl: admin.tokenUrl!,
      ...(admin.scope === undefined ? {} : { scope: admin.scope }),
      ...(admin.tokenParams === undefined
        ? {}
        : { tokenParams: admin.tokenParams }),
      ...(io.fetch === undefined ? {} : { fetch: io.fetch }),
      ...(io.clock === undefined ? {} : { clock: io.clock }),
    });
    return {
      async getAccessToken(options) {
        try {
          return await auth.getAccessToken(options);
        } catch (error) {
          if (
            error instanceof CredentialRejectedError ||
            error instanceof AllCredentialsRejectedError
          ) {
            throw new ProviderAdminRejectedError(
              title,
              admin.secretVariable,
              error,
            );
          }
          throw error;
        }
      },
      invalidateToken: (token) => auth.invalidate(token),
      close: () => auth.close(),
    };
  };
}

function genesysConfig(config: RotationEnvConfig): ProviderEnvConfig {
  const credentials = config.credentials.map((c) =>
    Object.freeze({
      label: c.label,
      clientId: c.clientId,
      clientSecret: c.clientSecret as Secret,
      authMethod: "client_secret_basic" as const,
    })
  );
  const adminCredential: ProviderCredential = config.admin
    ? {
      label: "admin",
      clientId: config.admin.clientId,
      clientSecret: config.admin.clientSecret,
      authMethod: "client_secret_basic",
    }
    : credentials.find((c) => c.label === config.active)!;
  const admin: ProviderAdmin = Object.freeze({
    kind: "client-credentials",
    label: config.admin ? "admin" : config.active,
    secretVariable: config.admin
      ? "GENESYS_ADMIN_CLIENT_SECRET"
      : clientSecretEnvVar(config.active),
    credential: adminCredential,
    tokenUrl: config.tokenUrl,
    id: adminCredential.clientId,
  });
  const title = TITLES.genesys;
  const tokens = withAdminToken(title, admin);
  return Object.freeze({
    provider: "genesys" as const,
    title,
    model: "twin-clients" as const,
    tokenUrl: config.tokenUrl,
    credentials: Object.freeze(credentials),
    active: config.active,
    standby: config.standby,
    admin,
    activeVariable: "GENESYS_ACTIVE",
    secretVariable: clientSecretEnvVar,
    names: Object.freeze({}),
    secretIds: {},
    genesys: config,
    async createProvider(io: AdminIoOptions = {}) {
      const [{ createGenesysAdminClient }, { genesysSecretProvider }] =
        await Promise.all([
          import("../genesys/admin_client.ts"),
          import("../genesys/secret_provider.ts"),
        ]);
      const source = await tokens(io);
      const client = createGenesysAdminClient({
        apiUrl: config.apiUrl,
        getAccessToken: source.getAccessToken,
        invalidateToken: source.invalidateToken,
        ...(io.fetch === undefined ? {} : { fetch: io.fetch }),
        ...(io.clock === undefined ? {} : { clock: io.clock }),
        ...(io.retry === undefined ? {} : { retry: io.retry }),
      });
      return handle(genesysSecretProvider(client), source.close);
    },
  });
}

/** The admin client of Entra, Keycloak and Auth0: a client-credentials pair. */
function adminClient(
  tokenUrl: string,
  authMethod: TokenAuthMethod,
  extra: { scope?: string; tokenParams?: Readonly<Record<string, string>> },
  value: Read,
): ProviderAdmin {
  const clientId = value("AUTH_ADMIN_CLIENT_ID")!;
  return {
    kind: "client-credentials",
    label: "admin",
    secretVariable: "AUTH_ADMIN_CLIENT_SECRET",
    credential: {
      label: "admin",
      clientId,
      clientSecret: new Secret(value("AUTH_ADMIN_CLIENT_SECRET")!),
      authMethod,
    },
    tokenUrl,
    id: clientId,
    ...extra,
  };
}

const READERS: Readonly<
  Record<
    Exclude<AuthProvider, "genesys">,
    (value: Read, problems: EnvProblem[]) => ProviderRead | undefined
  >
> = {
  okta(value, problems) {
    const token = secretVariable(value, "AUTH_ADMIN_TOKEN", problems, true);
    const scheme = value("AUTH_ADMIN_TOKEN_SCHEME") ?? "SSWS";
    if (scheme !== "SSWS" && scheme !== "Bearer") {
      problems.push({
        variable: "AUTH_ADMIN_TOKEN_SCHEME",
        problem:
          `"${scheme}" is not SSWS (an API token from Security › API › Tokens) or Bearer (an access token of a service app)`,
      });
    }
    const domain = value("AUTH_DOMAIN");
    const preset = fromPreset(
      problems,
      {
        "okta.domain": "AUTH_DOMAIN",
        "okta.authServerId": "AUTH_AUTH_SERVER_ID",
        "okta.scope": "AUTH_SCOPE",
      },
      () =>
        explicitTokenUrl(value, problems, requiredScope(value, problems)) ??
          oktaPreset({
            domain: domain ??
              missingDomain(
                "AUTH_DOMAIN",
                "your Okta org's domain, such as dev-123456.okta.com",
              ),
            ...(value("AUTH_AUTH_SERVER_ID") === undefined
              ? {}
              : { authServerId: value("AUTH_AUTH_SERVER_ID")! }),
            scope: value("AUTH_SCOPE") ?? "",
          }),
    );
    const orgUrl = apiUrl(
      value,
      problems,
      domain,
      (d) => `https://${d}`,
      "is not set; set AUTH_DOMAIN to your Okta org's domain (or AUTH_API_URL to the org's URL)",
    );
    if (!preset || !orgUrl || token === undefined) return undefined;
    return {
      preset,
      admin: () => ({
        admin: {
          kind: "api-token",
          label: "admin",
          secretVariable: "AUTH_ADMIN_TOKEN",
        },
        async build(io) {
          const { oktaSecretProvider } = await import("./okta.ts");
          return handle(oktaSecretProvider({
            ...io,
            orgUrl,
            scheme: scheme as "SSWS" | "Bearer",
            getAccessToken: () => Promise.resolve(token.reveal()),
          }));
        },
      }),
    };
  },
  entra(value, problems) {
    const admin = adminVars(value, problems);
    const preset = fromPreset(
      problems,
      {
        "entra.tenantId": "AUTH_TENANT_ID",
        "entra.resource": "AUTH_SCOPE",
      },
      () =>
        explicitTokenUrl(value, problems, requiredScope(value, problems)) ??
          entraPreset({
            tenantId: value("AUTH_TENANT_ID") ??
              missingDomain(
                "AUTH_TENANT_ID",
                "the directory (tenant) id from the app's Overview page",
              ),
            resource: value("AUTH_SCOPE") ?? "",
          }),
    );
    const graphUrl = apiUrl(
      value,
      problems,
      "graph.microsoft.com",
      () => "https://graph.microsoft.com/v1.0",
      "",
    );
    if (!preset || !graphUrl || !admin) return undefined;
    return {
      preset,
      admin: (authMethod) => ({
        admin: adminClient(preset.tokenUrl, authMethod, {
          scope: value("AUTH_ADMIN_SCOPE") ??
            "https://graph.microsoft.com/.default",
        }, value),
        async build(io, _model, tokens) {
          const { entraSecretProvider } = await import("./entra.ts");
          const source = await tokens(io);
          return handle(
            entraSecretProvider({
              ...io,
              graphUrl,
              getAccessToken: source.getAccessToken,
              invalidateToken: source.invalidateToken,
            }),
            source.close,
          );
        },
      }),
    };
  },
  keycloak(value, problems) {
    const admin = adminVars(value, problems);
    const baseUrl = value("AUTH_BASE_URL");
    const realm = value("AUTH_REALM");
    if (baseUrl === undefined) {
      problems.push({
        variable: "AUTH_BASE_URL",
        problem:
          "is not set; set it to the Keycloak server's URL, such as https://sso.example.com (with /auth before Keycloak 17)",
      });
    }
    if (realm === undefined) {
      problems.push({
        variable: "AUTH_REALM",
        problem: "is not set; set it to the realm of the clients",
      });
    }
    if (baseUrl === undefined || realm === undefined) return undefined;
    const scope = value("AUTH_SCOPE");
    const preset = fromPreset(problems, {
      "keycloak.baseUrl": "AUTH_BASE_URL",
      "keycloak.realm": "AUTH_REALM",
    }, () => {
      const derived = keycloakPreset({
        baseUrl,
        realm,
        ...(scope === undefined ? {} : { scope }),
      });
      return explicitTokenUrl(value, problems, scope) ?? derived;
    });
    if (!preset || !admin) return undefined;
    return {
      preset,
      admin: (authMethod) => ({
        // The admin client belongs to the same realm: its token endpoint.
        admin: adminClient(preset.tokenUrl, authMethod, {}, value),
        async build(io, model, tokens) {
          const { keycloakSecretProvider } = await import("./keycloak.ts");
          const source = await tokens(io);
          return handle(
            keycloakSecretProvider({
              ...io,
              baseUrl,
              realm,
              model,
              getAccessToken: source.getAccessToken,
              invalidateToken: source.invalidateToken,
            }),
            source.close,
          );
        },
      }),
    };
  },
  cognito(value, problems) {
    const keyId = value("AUTH_ADMIN_ACCESS_KEY_ID");
    if (keyId === undefined) {
      problems.push({
        variable: "AUTH_ADMIN_ACCESS_KEY_ID",
        problem:
          "is not set; set it to the access key id of an IAM principal allowed cognito-idp:ListUserPoolClientSecrets, AddUserPoolClientSecret and DeleteUserPoolClientSecret",
      });
    }
    const secretKey = secretVariable(
      value,
      "AUTH_ADMIN_SECRET_ACCESS_KEY",
      problems,
      true,
    );
    const sessionToken = value("AUTH_ADMIN_SESSION_TOKEN");
    const userPoolId = value("AUTH_USER_POOL_ID");
    const region = value("AUTH_REGION") ??
      userPoolId?.match(/^([a-z]{2}(?:-[a-z]+)+-\d+)_/)?.[1];
    if (userPoolId === undefined) {
      problems.push({
        variable: "AUTH_USER_POOL_ID",
        problem:
          "is not set; set it to the user pool's id, such as eu-west-1_AbCdEf123",
      });
    } else if (region === undefined) {
      problems.push({
        variable: "AUTH_REGION",
        problem:
          "is not set and AUTH_USER_POOL_ID has no region prefix; set it to the pool's region, such as eu-west-1",
      });
    }
    const domain = value("AUTH_DOMAIN");
    const prefix = value("AUTH_USER_POOL_DOMAIN");
    const scope = value("AUTH_SCOPE");
    const preset = fromPreset(problems, {
      "cognito.domain": "AUTH_DOMAIN",
      "cognito.userPoolDomain": "AUTH_USER_POOL_DOMAIN",
      "cognito.region": "AUTH_REGION",
    }, () =>
      explicitTokenUrl(value, problems, scope) ??
        cognitoPreset(
          domain !== undefined
            ? { domain, ...(scope === undefined ? {} : { scope }) }
            : {
              userPoolDomain: prefix ??
                missingDomain(
                  "AUTH_USER_POOL_DOMAIN",
                  "the pool's Cognito domain prefix (App integration › Domain), or set AUTH_DOMAIN to its whole domain",
                ),
              region: region ?? "",
              ...(scope === undefined ? {} : { scope }),
            },
        ));
    const endpoint = apiUrl(
      value,
      problems,
      region,
      (r) => `https://cognito-idp.${r}.amazonaws.com/`,
      "is not set; set AUTH_REGION (or AUTH_API_URL to the cognito-idp endpoint)",
    );
    if (
      !preset || !endpoint || keyId === undefined || secretKey === undefined ||
      userPoolId === undefined || region === undefined
    ) return undefined;
    return {
      preset,
      admin: () => ({
        admin: {
          kind: "aws-keys",
          label: "admin",
          secretVariable: "AUTH_ADMIN_SECRET_ACCESS_KEY",
          id: keyId,
        },
        async build(io) {
          const { cognitoSecretProvider } = await import("./cognito.ts");
          return handle(cognitoSecretProvider({
            ...io,
            userPoolId,
            region,
            apiUrl: endpoint,
            getCredentials: () =>
              Promise.resolve({
                accessKeyId: keyId,
                secretAccessKey: secretKey.reveal(),
                ...(sessionToken === undefined ? {} : { sessionToken }),
              }),
          }));
        },
      }),
    };
  },
  auth0(value, problems) {
    const admin = adminVars(value, problems);
    const domain = value("AUTH_DOMAIN");
    const audience = value("AUTH_AUDIENCE");
    const scope = value("AUTH_SCOPE");
    if (audience === undefined) {
      problems.push({
        variable: "AUTH_AUDIENCE",
        problem:
          "is not set; set it to the API's identifier (Applications › APIs): Auth0 requires an audience for client credentials",
      });
    }
    const preset = fromPreset(problems, {
      "auth0.domain": "AUTH_DOMAIN",
      "auth0.audience": "AUTH_AUDIENCE",
    }, () => {
      const explicit = explicitTokenUrl(value, problems, scope);
      return explicit
        ? { ...explicit, tokenParams: { audience: audience ?? "" } }
        : auth0Preset({
          domain: domain ??
            missingDomain(
              "AUTH_DOMAIN",
              "your tenant's domain, such as my-tenant.eu.auth0.com",
            ),
          audience: audience ?? "",
          ...(scope === undefined ? {} : { scope }),
        });
    });
    const managementUrl = apiUrl(
      value,
      problems,
      domain,
      (d) => `https://${d}/api/v2`,
      "is not set; set AUTH_DOMAIN to your tenant's domain (or AUTH_API_URL to the Management API's URL)",
    );
    const managementAudience = value("AUTH_ADMIN_AUDIENCE") ??
      (domain === undefined ? undefined : `https://${domain}/api/v2/`);
    if (managementAudience === undefined) {
      problems.push({
        variable: "AUTH_ADMIN_AUDIENCE",
        problem:
          "is not set and AUTH_DOMAIN is not either; set AUTH_DOMAIN (the Management API's audience is https://<domain>/api/v2/)",
      });
    }
    if (
      !preset || !managementUrl || !admin || audience === undefined ||
      managementAudience === undefined
    ) return undefined;
    return {
      preset,
      admin: (authMethod) => ({
        admin: adminClient(preset.tokenUrl, authMethod, {
          tokenParams: { audience: managementAudience },
        }, value),
        async build(io, _model, tokens) {
          const { auth0SecretProvider } = await import("./auth0.ts");
          const source = await tokens(io);
          return handle(
            auth0SecretProvider({
              ...io,
              apiUrl: managementUrl,
              getAccessToken: source.getAccessToken,
              invalidateToken: source.invalidateToken,
            }),
            source.close,
          );
        },
      }),
    };
  },
};

/** Thrown inside a preset call when the value it needs is missing; turned into a problem. */
class Missing extends Error {
  constructor(readonly variable: string, readonly what: string) {
    super(variable);
  }
}

function missingDomain(variable: string, what: string): never {
  throw new Missing(variable, what);
}

/** Runs a preset, turning its `ConfigError` (named by option) into a problem named by variable. */
function fromPreset(
  problems: EnvProblem[],
  variables: Readonly<Record<string, string>>,
  make: () => ProviderPreset | undefined,
): ProviderPreset | undefined {
  const before = problems.length;
  try {
    const preset = make();
    return problems.length > before ? undefined : preset;
  } catch (error) {
    if (error instanceof Missing) {
      problems.push({
        variable: error.variable,
        problem: `is not set; set it to ${error.what}, or set AUTH_TOKEN_URL`,
      });
      return undefined;
    }
    if (!(error instanceof ConfigError)) throw error;
    const variable = variables[error.option] ?? error.option;
    problems.push({
      variable,
      problem: error.message.replace(/^Invalid option \S+: /, ""),
    });
    return undefined;
  }
}

/** `AUTH_TOKEN_URL`, when set: it wins over the values a preset derives the URL from. */
function explicitTokenUrl(
  value: Read,
  problems: EnvProblem[],
  scope: string | undefined,
): ProviderPreset | undefined {
  const text = value("AUTH_TOKEN_URL");
  if (text === undefined) return undefined;
  const url = checkUrl("AUTH_TOKEN_URL", text, problems);
  if (url === undefined) return { tokenUrl: "" };
  return scope === undefined ? { tokenUrl: url } : { tokenUrl: url, scope };
}

/** `AUTH_API_URL`, or the provider's API derived from another value. */
function apiUrl(
  value: Read,
  problems: EnvProblem[],
  from: string | undefined,
  derive: (from: string) => string,
  missing: string,
): string | undefined {
  const text = value("AUTH_API_URL");
  if (text !== undefined) return checkUrl("AUTH_API_URL", text, problems);
  if (from !== undefined) return derive(from);
  // The preset names the missing value when the token URL needs it too.
  if (value("AUTH_TOKEN_URL") !== undefined) {
    problems.push({ variable: "AUTH_API_URL", problem: missing });
  }
  return undefined;
}

function checkUrl(
  variable: string,
  text: string,
  problems: EnvProblem[],
): string | undefined {
  try {
    return resolveAllowedUrl(variable, text).href.replace(/\/$/, "");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push({
      variable,
      problem: error.message.replace(/^Invalid option \S+: /, ""),
    });
    return undefined;
  }
}

function requiredScope(
  value: Read,
  problems: EnvProblem[],
): string | undefined {
  const scope = value("AUTH_SCOPE");
  if (scope === undefined) {
    problems.push({
      variable: "AUTH_SCOPE",
      problem:
        "is not set; this provider's token endpoint refuses client credentials without a scope (Okta: a scope of the authorization server; Entra: <resource>/.default)",
    });
  }
  return scope;
}

function adminVars(value: Read, problems: EnvProblem[]): boolean {
  let ok = true;
  if (value("AUTH_ADMIN_CLIENT_ID") === undefined) {
    problems.push({
      variable: "AUTH_ADMIN_CLIENT_ID",
      problem:
        "is not set; set it to the client id of the admin application that may manage the clients' secrets",
    });
    ok = false;
  }
  if (
    secretVariable(value, "AUTH_ADMIN_CLIENT_SECRET", problems, true) ===
      undefined
  ) {
    ok = false;
  }
  return ok;
}

function readAuthMethod(
  value: Read,
  problems: EnvProblem[],
  fallback: TokenAuthMethod,
): TokenAuthMethod {
  const text = value("AUTH_TOKEN_ENDPOINT_AUTH_METHOD");
  if (text === undefined) return fallback;
  if (text === "client_secret_basic" || text === "client_secret_post") {
    return text;
  }
  problems.push({
    variable: "AUTH_TOKEN_ENDPOINT_AUTH_METHOD",
    problem:
      `"${text}" is not client_secret_basic or client_secret_post (what the client is registered for)`,
  });
  return fallback;
}

/** Two-secret providers need one client id; Auth0 needs two; Keycloak takes either. */
function checkModel(
  provider: Exclude<AuthProvider, "genesys">,
  value: Read,
  problems: EnvProblem[],
): SecretModel | undefined {
  const [blue, green] = ROTATION_LABELS.map((l) =>
    value(authClientIdEnvVar(l))
  );
  if (blue === undefined || green === undefined) return undefined;
  const same = blue === green;
  if (provider === "keycloak") return same ? "two-secrets" : "twin-clients";
  if (provider === "auth0") {
    if (same) {
      problems.push({
        variable: authClientIdEnvVar("green"),
        problem: `is the same application as ${
          authClientIdEnvVar("blue")
        }; Auth0 keeps one secret per application, so rotation needs two applications with the same grants`,
      });
      return undefined;
    }
    return "twin-clients";
  }
  if (!same) {
    problems.push({
      variable: authClientIdEnvVar("green"),
      problem: `is not the client of ${authClientIdEnvVar("blue")}; ${
        TITLES[provider]
      } keeps both secrets on one client, so both labels name it`,
    });
    return undefined;
  }
  return "two-secrets";
}

function readActive(
  value: Read,
  problems: EnvProblem[],
): RotationLabel | undefined {
  const text = value(AUTH_ACTIVE_ENV_VAR)?.toLowerCase();
  if (text === undefined) {
    problems.push({
      variable: AUTH_ACTIVE_ENV_VAR,
      problem:
        "is not set; set it to the label serving traffic now (blue or green)",
    });
    return undefined;
  }
  if (!(ROTATION_LABELS as readonly string[]).includes(text)) {
    problems.push({
      variable: AUTH_ACTIVE_ENV_VAR,
      problem: `"${text}" is not blue or green`,
    });
    return undefined;
  }
  return text as RotationLabel;
}

function scopeText(scope: string | readonly string[]): string {
  return typeof scope === "string" ? scope : scope.join(" ");
}
