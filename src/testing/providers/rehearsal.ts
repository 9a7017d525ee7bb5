/**
 * A provider emulator set up for a local rehearsal of a rotation, as
 * `deno task emulator --provider …` starts it: an app client with two live
 * secrets (Okta, Entra ID, Keycloak, Cognito) or two twin clients (Auth0),
 * and an admin credential holding exactly the permissions a rotation needs,
 * with the settings an operator copies into an env file.
 *
 * The variable names are those `readProviderEnv` (src/providers/env.ts)
 * reads, so the file written is what `deno task verify --env-file` checks.
 *
 * @module
 */
import { secretIdOf } from "../../providers/keycloak.ts";
import {
  type CognitoEmulator,
  type OktaEmulator,
  type ProviderEmulator,
  startAuth0Emulator,
  startCognitoEmulator,
  startEntraEmulator,
  startKeycloakEmulator,
  startOktaEmulator,
} from "../../../testing.ts";

/** The providers a rehearsal can emulate. */
export const REHEARSAL_PROVIDERS = [
  "okta",
  "entra",
  "keycloak",
  "cognito",
  "auth0",
] as const;

/** One of {@linkcode REHEARSAL_PROVIDERS}. */
export type RehearsalProvider = typeof REHEARSAL_PROVIDERS[number];

/** A running rehearsal emulator and what an operator needs to use it. */
export interface ProviderRehearsal {
  /** The running emulator; close it when done. */
  readonly emulator: ProviderEmulator;
  /** The provider's name as people write it, such as `Microsoft Entra ID`. */
  readonly title: string;
  /** The settings, in the order an env file lists them. */
  readonly settings: readonly (readonly [name: string, value: string])[];
  /** One line on what was set up. */
  readonly summary: string;
}

/** Options of {@linkcode startProviderRehearsal}. */
export interface ProviderRehearsalOptions {
  /**
   * Port to listen on; 0 picks any free port.
   *
   * @default 0
   */
  readonly port?: number;
}

/**
 * Whether a text names a provider a rehearsal can emulate.
 *
 * @param name The text.
 * @returns Whether it is one of {@linkcode REHEARSAL_PROVIDERS}.
 */
export function isRehearsalProvider(name: string): name is RehearsalProvider {
  return (REHEARSAL_PROVIDERS as readonly string[]).includes(name);
}

/**
 * Starts a provider emulator on 127.0.0.1 with random secrets.
 *
 * @param provider Which provider.
 * @param options The port.
 * @returns The emulator, once it accepts connections, and its settings.
 */
export async function startProviderRehearsal(
  provider: RehearsalProvider,
  options: ProviderRehearsalOptions = {},
): Promise<ProviderRehearsal> {
  const port = options.port ?? 0;
  const rehearsal = SETUPS[provider](port);
  await rehearsal.emulator.ready;
  return { ...rehearsal, settings: await rehearsal.settings() };
}

interface Setup {
  readonly emulator: ProviderEmulator;
  readonly title: string;
  readonly summary: string;
  /** Read once the emulator listens: its URLs are known only then. */
  settings():
    | readonly (readonly [string, string])[]
    | Promise<readonly (readonly [string, string])[]>;
}

/** The `ocs…` id of an Okta app's secret, by its value. */
function oktaSecretId(emulator: OktaEmulator, value: string): string {
  return emulator.secrets("0oaemulatedapp").find((s) =>
    s.client_secret === value
  )!.id;
}

/** The `ClientSecretId` of a Cognito app client's secret, by its value. */
function cognitoSecretId(emulator: CognitoEmulator, value: string): string {
  return emulator.secrets("emulatedappclient").find((s) => s.value === value)!
    .secretId;
}

/** Random characters, long enough for every provider's secret rules. */
function secret(): string {
  return crypto.randomUUID().replaceAll("-", "") +
    crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/** The settings every rehearsal has, for one client with two secrets. */
function twoSecrets(
  provider: RehearsalProvider,
  urls: readonly (readonly [string, string])[],
  clientId: string,
  blue: readonly [secret: string, secretId: string],
  green: readonly [secret: string, secretId: string],
): (readonly [string, string])[] {
  // The ids tell a rotation which secret is the standby's: at the client's
  // limit, that one is revoked before the new one is issued.
  return [
    ["AUTH_PROVIDER", provider],
    ...urls,
    ["AUTH_CLIENT_ID_BLUE", clientId],
    ["AUTH_CLIENT_SECRET_BLUE", blue[0]],
    ["AUTH_SECRET_ID_BLUE", blue[1]],
    ["AUTH_CLIENT_ID_GREEN", clientId],
    ["AUTH_CLIENT_SECRET_GREEN", green[0]],
    ["AUTH_SECRET_ID_GREEN", green[1]],
    ["AUTH_ACTIVE", "blue"],
  ];
}

/** The token endpoint and the admin API, given whole (the presets derive them only for https hosts). */
function urlsOf(emulator: ProviderEmulator): (readonly [string, string])[] {
  return [
    ["AUTH_TOKEN_URL", emulator.tokenUrl],
    ["AUTH_API_URL", emulator.apiUrl],
  ];
}

const TWO_SECRETS = "one app client with two live secrets (blue, green)";

const SETUPS: Record<RehearsalProvider, (port: number) => Setup> = {
  okta(port) {
    const [blue, green, admin] = [secret(), secret(), `00${secret()}`];
    const emulator = startOktaEmulator({
      port,
      scopes: ["api"],
      apps: [{ clientId: "0oaemulatedapp", secrets: [blue, green] }],
      adminTokens: [{
        token: admin,
        scopes: ["okta.apps.read", "okta.apps.manage"],
      }],
    });
    return {
      emulator,
      title: "Okta",
      summary:
        `${TWO_SECRETS}, an admin token (okta.apps.read, okta.apps.manage)`,
      settings: () => [
        ...twoSecrets(
          "okta",
          urlsOf(emulator),
          "0oaemulatedapp",
          [blue, oktaSecretId(emulator, blue)],
          [green, oktaSecretId(emulator, green)],
        ),
        ["AUTH_SCOPE", "api"],
        ["AUTH_ADMIN_TOKEN", admin],
      ],
    };
  },
  entra(port) {
    const [blue, green, admin] = [secret(), secret(), secret()];
    const appId = "11111111-1111-4111-8111-111111111111";
    const adminId = "22222222-2222-4222-8222-222222222222";
    const objectId = "33333333-3333-4333-8333-333333333333";
    const emulator = startEntraEmulator({
      port,
      applications: [
        { appId, objectId, displayName: "App", secrets: [blue, green] },
        {
          appId: adminId,
          displayName: "Rotation admin",
          secrets: [admin],
          graphPermissions: ["Application.ReadWrite.OwnedBy"],
          owns: [appId],
        },
      ],
    });
    return {
      emulator,
      title: "Microsoft Entra ID",
      summary:
        `${TWO_SECRETS}, an admin application (Application.ReadWrite.OwnedBy, owner of the app)`,
      settings: () => [
        ...twoSecrets(
          "entra",
          urlsOf(emulator),
          appId,
          // Listed oldest first: blue was added before green.
          [blue, emulator.passwordCredentials(appId)[0].keyId],
          [green, emulator.passwordCredentials(appId)[1].keyId],
        ),
        ["AUTH_SCOPE", `api://${appId}/.default`],
        ["AUTH_ADMIN_CLIENT_ID", adminId],
        ["AUTH_ADMIN_CLIENT_SECRET", admin],
      ],
    };
  },
  keycloak(port) {
    const [blue, green, admin] = [secret(), secret(), secret()];
    const emulator = startKeycloakEmulator({
      port,
      secretRotation: {},
      clients: [
        { clientId: "app", secret: green },
        {
          clientId: "rotation-admin",
          secret: admin,
          realmManagementRoles: [
            "view-clients",
            "manage-clients",
            "view-realm",
          ],
        },
      ],
    });
    // With the rotation policy on, regenerating keeps the old secret as the
    // "rotated" one: green (rotated, the standby) and blue (main, active)
    // both work; a rotation of green deletes the rotated secret first, as
    // only the rotated one can be deleted.
    emulator.regenerateSecret("app", blue);
    return {
      emulator,
      title: "Keycloak",
      summary:
        `${TWO_SECRETS} under the secret-rotation policy, an admin client (view-clients, manage-clients, view-realm)`,
      settings: async () => [
        // Keycloak's token endpoint and admin API both derive from the base
        // URL and the realm; the token URL is written too, for curl.
        ...twoSecrets(
          "keycloak",
          [
            ["AUTH_BASE_URL", emulator.url],
            ["AUTH_REALM", emulator.realm],
            ["AUTH_TOKEN_URL", emulator.tokenUrl],
          ],
          "app",
          [blue, await secretIdOf(blue)],
          [green, await secretIdOf(green)],
        ),
        ["AUTH_ADMIN_CLIENT_ID", "rotation-admin"],
        ["AUTH_ADMIN_CLIENT_SECRET", admin],
      ],
    };
  },
  cognito(port) {
    const [blue, green, admin] = [secret(), secret(), secret()];
    const accessKeyId = "AKIAEMULATEDADMIN000";
    const emulator = startCognitoEmulator({
      port,
      clients: [{ clientId: "emulatedappclient", secrets: [blue, green] }],
      principals: [{ accessKeyId, secretAccessKey: admin }],
    });
    return {
      emulator,
      title: "AWS Cognito",
      summary:
        `${TWO_SECRETS}, an access key allowed Add/List/DeleteUserPoolClientSecret`,
      settings: () => [
        ...twoSecrets(
          "cognito",
          urlsOf(emulator),
          "emulatedappclient",
          [blue, cognitoSecretId(emulator, blue)],
          [green, cognitoSecretId(emulator, green)],
        ),
        ["AUTH_REGION", emulator.region],
        ["AUTH_USER_POOL_ID", emulator.userPoolId],
        ["AUTH_ADMIN_ACCESS_KEY_ID", accessKeyId],
        ["AUTH_ADMIN_SECRET_ACCESS_KEY", admin],
      ],
    };
  },
  auth0(port) {
    const [blue, green, admin] = [secret(), secret(), secret()];
    const audience = "https://api.emulated.example/";
    const app = [{ audience, scopes: [] }];
    const emulator = startAuth0Emulator({
      port,
      apis: [{ identifier: audience }],
    });
    emulator.addClient({ clientId: "blue", secret: blue, grants: app });
    emulator.addClient({ clientId: "green", secret: green, grants: app });
    emulator.addClient({
      clientId: "rotation-admin",
      secret: admin,
      grants: [{
        audience: emulator.managementAudience,
        scopes: ["read:client_keys", "update:client_keys"],
      }],
    });
    return {
      emulator,
      title: "Auth0",
      summary:
        "twin clients (blue, green), an admin client (read:client_keys, update:client_keys)",
      settings: () => [
        ["AUTH_PROVIDER", "auth0"],
        ["AUTH_TOKEN_URL", emulator.tokenUrl],
        ["AUTH_API_URL", emulator.apiUrl],
        ["AUTH_CLIENT_ID_BLUE", "blue"],
        ["AUTH_CLIENT_SECRET_BLUE", blue],
        ["AUTH_CLIENT_ID_GREEN", "green"],
        ["AUTH_CLIENT_SECRET_GREEN", green],
        ["AUTH_ACTIVE", "blue"],
        ["AUTH_AUDIENCE", audience],
        // The Management API's audience names the tenant's domain, which the
        // emulator's URL does not show.
        ["AUTH_ADMIN_AUDIENCE", emulator.managementAudience],
        ["AUTH_ADMIN_CLIENT_ID", "rotation-admin"],
        ["AUTH_ADMIN_CLIENT_SECRET", admin],
      ],
    };
  },
};
