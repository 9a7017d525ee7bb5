/**
 * The provider worlds of `deno task rotate` on each provider's emulator,
 * shared by tests/tasks/rotate_provider_test.ts and the benchmark
 * (bench/scenarios/provider_rotation.ts): each emulator set up as a previous
 * rotation left it (the active label's secret live, the standby's old value
 * revoked for two-secret providers, live for twin clients), an admin with
 * exactly the permissions a rotation needs and one lacking the write
 * permission; and one rotation run while 4 services (subprocesses following
 * the env file, tests/tasks/provider_service.ts) call the emulator's
 * protected resource through `auth.fetch`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { PROVIDER_ENV_VARS } from "../../src/providers/env.ts";
import { readEnvValues } from "../../src/rotation/env_file.ts";
import {
  type ProviderEmulator,
  startAuth0Emulator,
  startCognitoEmulator,
  startEntraEmulator,
  startKeycloakEmulator,
  startOktaEmulator,
} from "../../testing.ts";
import {
  type FollowingService,
  type ServiceReport,
  startFollowingService,
} from "../support/following_service.ts";
import { FAILPOINT_VAR, type Workspace } from "./workspace.ts";

const SERVICE = fileURLToPath(
  new URL("./provider_service.ts", import.meta.url),
);
/** The services that call during a rotation. */
export const SERVICES = 4;
const STALE = "stale0revoked0secret0value0000000000";

function secret(): string {
  return crypto.randomUUID().replaceAll("-", "") +
    crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/** One provider's world: its emulator, the env file, and what each case needs. */
export interface World extends AsyncDisposable {
  readonly emulator: ProviderEmulator;
  readonly env: Record<string, string>;
  /** The admin variables replaced by an admin lacking the write permission. */
  readonly limitedAdmin: Record<string, string>;
  /** The permission the refusal must name. */
  readonly permission: RegExp;
  /** What the service sends besides the credential. */
  readonly request: {
    readonly scope?: string;
    readonly tokenParams?: Record<string, string>;
    readonly authMethod: "client_secret_basic" | "client_secret_post";
  };
  /** Live secrets of the app client (two secrets) or undefined (twin clients). */
  liveSecrets(): number | undefined;
  /**
   * Adds a secret no label uses (another app's, say), where the provider
   * has no limit of two (Entra ID).
   *
   * @default undefined (a limit of two leaves no room)
   */
  readonly addUnrelatedSecret?: () => void;
  /** Puts the provider at its own limit; the refusal must match `limitWords`. */
  readonly atLimit?: () => void;
  readonly limitWords?: RegExp;
  /**
   * The exit code of that refusal: 2 when the plan refuses before any call
   * (the engine's limit check, a configuration error), 1 when the provider
   * refuses the call.
   */
  readonly limitExit?: number;
}

/** Options of a world. */
export interface WorldOptions {
  /**
   * The lifetime of the service's access tokens, in seconds.
   *
   * @default the emulator's (the provider's default)
   */
  readonly tokenLifetimeSeconds?: number;
}

/** Starts a world. */
export type Start = (options?: WorldOptions) => Promise<World>;

function twoSecretEnv(
  provider: string,
  emulator: ProviderEmulator,
  clientId: string,
  blue: string,
): Record<string, string> {
  return {
    AUTH_PROVIDER: provider,
    AUTH_TOKEN_URL: emulator.tokenUrl,
    AUTH_API_URL: emulator.apiUrl,
    AUTH_CLIENT_ID_BLUE: clientId,
    AUTH_CLIENT_SECRET_BLUE: blue,
    AUTH_CLIENT_ID_GREEN: clientId,
    AUTH_CLIENT_SECRET_GREEN: STALE,
    AUTH_ACTIVE: "blue",
  };
}

function lifetimeOf(
  options: WorldOptions,
): { tokenLifetimeSeconds?: number } {
  return options.tokenLifetimeSeconds === undefined
    ? {}
    : { tokenLifetimeSeconds: options.tokenLifetimeSeconds };
}

function disposer(emulator: ProviderEmulator) {
  return () => emulator.close();
}

/**
 * The Okta world.
 *
 * @param tokenLifetimeSeconds The app's token lifetime (default Okta's 3600).
 * @returns The world.
 */
export async function oktaWorld(
  tokenLifetimeSeconds?: number,
): Promise<World> {
  const [blue, admin, limited] = [secret(), `00${secret()}`, `00${secret()}`];
  const emulator = startOktaEmulator({
    scopes: ["api"],
    apps: [{
      clientId: "0oaapp",
      secrets: [blue],
      ...(tokenLifetimeSeconds === undefined ? {} : { tokenLifetimeSeconds }),
    }],
    adminTokens: [
      { token: admin, scopes: ["okta.apps.read", "okta.apps.manage"] },
      { token: limited, scopes: ["okta.apps.read"] },
    ],
  });
  await emulator.ready;
  return {
    emulator,
    env: {
      ...twoSecretEnv("okta", emulator, "0oaapp", blue),
      AUTH_SCOPE: "api",
      AUTH_ADMIN_TOKEN: admin,
    },
    limitedAdmin: { AUTH_ADMIN_TOKEN: limited },
    permission: /okta\.apps\.manage/,
    request: { scope: "api", authMethod: "client_secret_basic" },
    liveSecrets: () =>
      emulator.secrets("0oaapp").filter((s) => s.status === "ACTIVE")
        .length,
    atLimit: () => void emulator.addSecret("0oaapp"),
    limitWords: /holds 2 secrets, Okta's limit of 2/,
    limitExit: 2,
    [Symbol.asyncDispose]: disposer(emulator),
  };
}

/**
 * Entra ID's world; `propagationDelayMs`: how long a secret added through
 * Graph takes to work (0 by default).
 */
export async function entraWorld(
  options: WorldOptions & { readonly propagationDelayMs?: number } = {},
): Promise<World> {
  const { propagationDelayMs } = options;
  const lifetime = lifetimeOf(options);
  const [blue, admin, limited] = [secret(), secret(), secret()];
  const appId = "11111111-1111-4111-8111-111111111111";
  const adminId = "22222222-2222-4222-8222-222222222222";
  const limitedId = "44444444-4444-4444-8444-444444444444";
  const emulator = startEntraEmulator({
    ...(propagationDelayMs === undefined ? {} : { propagationDelayMs }),
    applications: [
      { appId, displayName: "App", secrets: [blue], ...lifetime },
      {
        appId: adminId,
        displayName: "Rotation admin",
        secrets: [admin],
        graphPermissions: ["Application.ReadWrite.OwnedBy"],
        owns: [appId],
      },
      {
        appId: limitedId,
        displayName: "Reader",
        secrets: [limited],
        graphPermissions: ["Application.Read.All"],
      },
    ],
  });
  await emulator.ready;
  return {
    emulator,
    env: {
      ...twoSecretEnv("entra", emulator, appId, blue),
      AUTH_SCOPE: `api://${appId}/.default`,
      AUTH_ADMIN_CLIENT_ID: adminId,
      AUTH_ADMIN_CLIENT_SECRET: admin,
    },
    limitedAdmin: {
      AUTH_ADMIN_CLIENT_ID: limitedId,
      AUTH_ADMIN_CLIENT_SECRET: limited,
    },
    permission: /Application\.ReadWrite\.OwnedBy/,
    request: {
      scope: `api://${appId}/.default`,
      authMethod: "client_secret_basic",
    },
    liveSecrets: () => emulator.passwordCredentials(appId).length,
    addUnrelatedSecret: () =>
      void emulator.addPassword(appId, { displayName: "another service" }),
    [Symbol.asyncDispose]: disposer(emulator),
  };
}

/** Each provider's world, by the name `AUTH_PROVIDER` takes. */
export const PROVIDERS: Record<string, Start> = {
  okta: (options = {}) => oktaWorld(options.tokenLifetimeSeconds),
  entra: (options = {}) => entraWorld(options),
  async keycloak(options = {}) {
    const lifetime = lifetimeOf(options);
    const [blue, admin, limited] = [secret(), secret(), secret()];
    const emulator = startKeycloakEmulator({
      secretRotation: {},
      clients: [
        { clientId: "app", secret: blue, ...lifetime },
        {
          clientId: "rotation-admin",
          secret: admin,
          realmManagementRoles: [
            "view-clients",
            "manage-clients",
            "view-realm",
          ],
        },
        {
          clientId: "reader",
          secret: limited,
          realmManagementRoles: ["view-clients", "view-realm"],
        },
      ],
    });
    await emulator.ready;
    return {
      emulator,
      env: {
        ...twoSecretEnv("keycloak", emulator, "app", blue),
        AUTH_BASE_URL: emulator.url,
        AUTH_REALM: emulator.realm,
        AUTH_ADMIN_CLIENT_ID: "rotation-admin",
        AUTH_ADMIN_CLIENT_SECRET: admin,
      },
      limitedAdmin: {
        AUTH_ADMIN_CLIENT_ID: "reader",
        AUTH_ADMIN_CLIENT_SECRET: limited,
      },
      permission: /manage-clients/,
      request: { authMethod: "client_secret_basic" },
      liveSecrets: () => {
        const state = emulator.secretState("app");
        return state.rotated === undefined ? 1 : 2;
      },
      atLimit: () => emulator.setSecretRotation(false),
      limitWords: /polic/i,
      limitExit: 1,
      [Symbol.asyncDispose]: disposer(emulator),
    };
  },
  async cognito(options = {}) {
    const lifetime = lifetimeOf(options);
    const [blue, admin, limited] = [secret(), secret(), secret()];
    const emulator = startCognitoEmulator({
      clients: [{ clientId: "appclient", secrets: [blue], ...lifetime }],
      principals: [
        { accessKeyId: "AKIAROTATIONADMIN000", secretAccessKey: admin },
        {
          accessKeyId: "AKIAREADONLYADMIN000",
          secretAccessKey: limited,
          actions: ["cognito-idp:ListUserPoolClientSecrets"],
        },
      ],
    });
    await emulator.ready;
    return {
      emulator,
      env: {
        ...twoSecretEnv("cognito", emulator, "appclient", blue),
        AUTH_REGION: emulator.region,
        AUTH_USER_POOL_ID: emulator.userPoolId,
        AUTH_ADMIN_ACCESS_KEY_ID: "AKIAROTATIONADMIN000",
        AUTH_ADMIN_SECRET_ACCESS_KEY: admin,
      },
      limitedAdmin: {
        AUTH_ADMIN_ACCESS_KEY_ID: "AKIAREADONLYADMIN000",
        AUTH_ADMIN_SECRET_ACCESS_KEY: limited,
      },
      permission: /AddUserPoolClientSecret/,
      request: { authMethod: "client_secret_basic" },
      liveSecrets: () => emulator.secrets("appclient").length,
      atLimit: () => void emulator.addSecret("appclient"),
      limitWords: /holds 2 secrets, .*limit of 2/,
      limitExit: 2,
      [Symbol.asyncDispose]: disposer(emulator),
    };
  },
  async auth0(options = {}) {
    const lifetime = lifetimeOf(options);
    const [blue, green, admin, limited] = [
      secret(),
      secret(),
      secret(),
      secret(),
    ];
    const audience = "https://api.emulated.example/";
    const app = [{ audience, scopes: [] }];
    const emulator = startAuth0Emulator({
      apis: [{ identifier: audience, ...lifetime }],
    });
    await emulator.ready;
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
    emulator.addClient({
      clientId: "reader",
      secret: limited,
      grants: [{
        audience: emulator.managementAudience,
        scopes: ["read:client_keys"],
      }],
    });
    return {
      emulator,
      env: {
        AUTH_PROVIDER: "auth0",
        AUTH_TOKEN_URL: emulator.tokenUrl,
        AUTH_API_URL: emulator.apiUrl,
        AUTH_CLIENT_ID_BLUE: "blue",
        AUTH_CLIENT_SECRET_BLUE: blue,
        AUTH_CLIENT_ID_GREEN: "green",
        AUTH_CLIENT_SECRET_GREEN: green,
        AUTH_ACTIVE: "blue",
        AUTH_AUDIENCE: audience,
        AUTH_ADMIN_AUDIENCE: emulator.managementAudience,
        AUTH_ADMIN_CLIENT_ID: "rotation-admin",
        AUTH_ADMIN_CLIENT_SECRET: admin,
      },
      limitedAdmin: {
        AUTH_ADMIN_CLIENT_ID: "reader",
        AUTH_ADMIN_CLIENT_SECRET: limited,
      },
      permission: /update:client_keys/,
      request: {
        tokenParams: { audience },
        authMethod: "client_secret_post",
      },
      liveSecrets: () => undefined,
      [Symbol.asyncDispose]: disposer(emulator),
    };
  },
};

/** Writes an env file into the workspace. */
export async function writeEnv(
  ws: Workspace,
  file: string,
  values: Record<string, string>,
): Promise<void> {
  await Deno.writeTextFile(
    `${ws.dir}/${file}`,
    Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join(""),
  );
}

/** Reads an env file of the workspace. */
export async function envOf(
  ws: Workspace,
  file: string,
): Promise<Record<string, string>> {
  return readEnvValues(await Deno.readTextFile(`${ws.dir}/${file}`));
}

/**
 * A task (default rotate) with the failpoint variable readable, SIGKILLed at
 * `point`; `env` adds variables it may read (such as the seal key).
 */
export async function killAt(
  ws: Workspace,
  args: string[],
  point: string,
  task: "rotate" | "incident" = "rotate",
  env: Record<string, string> = {},
) {
  const run = ws.spawn([
    "run",
    "-q",
    "-P=operator",
    // An --allow-env flag replaces the set's list, so repeat it.
    `--allow-env=${
      [...PROVIDER_ENV_VARS, "NO_COLOR", FAILPOINT_VAR, ...Object.keys(env)]
        .join(",")
    }`,
    `tasks/${task}.ts`,
    ...args,
  ], { ...env, [FAILPOINT_VAR]: point });
  try {
    await run.waitFor(new RegExp(`failpoint ${point} reached`), 20_000);
  } finally {
    try {
      run.child.kill("SIGKILL");
    } catch {
      // It ended by itself: the wait above says why.
    }
    await run.finished();
  }
}

/** What one rotation with services calling measured. */
export interface RotationRun {
  /** The task's exit code. */
  readonly code: number;
  /** Its output. */
  readonly stdout: string;
  /** Its error output. */
  readonly stderr: string;
  /** Wall time of the task process, in ms. */
  readonly durationMs: number;
  /** Token requests the emulator saw while the task ran (services and task). */
  readonly tokenRequests: number;
  /** Of them, by the client id they presented. */
  readonly tokenRequestsByClient: Readonly<Record<string, number>>;
  /** Of them, answered with an error. */
  readonly tokenFailures: number;
  /** Requests to the secret-management API while the task ran. */
  readonly apiRequests: number;
  /** Secrets created while the task ran. */
  readonly secretsCreated: number;
  /** Each service's report. */
  readonly reports: readonly ServiceReport[];
}

/**
 * Runs `deno task rotate <args>` on the env file while `services` services
 * follow it and call the emulator's protected resource, then lets them see
 * the switch and stops them.
 *
 * @param world The provider's world.
 * @param ws The workspace holding the env file.
 * @param file The env file's name in the workspace.
 * @param args The rotate task's arguments.
 * @param services How many services (default 4).
 * @param presence Whether the services announce their presence beside the
 *   env file, for the revoke gate (default false).
 * @returns The figures.
 */
export async function rotateWithServices(
  world: World,
  ws: Workspace,
  file: string,
  args: readonly string[],
  services = SERVICES,
  presence = false,
): Promise<RotationRun> {
  const { emulator } = world;
  const settings = JSON.stringify({
    tokenUrl: emulator.tokenUrl,
    ...world.request,
    ...(presence ? { presence: { intervalMs: 500 } } : {}),
  });
  const running: FollowingService[] = await Promise.all(
    Array.from(
      { length: services },
      () =>
        startFollowingService(ws, emulator, {
          script: SERVICE,
          args: [`${ws.dir}/${file}`, emulator.resourceUrl, settings],
          writable: presence,
        }),
    ),
  );
  try {
    const before = emulator.stats();
    const started = performance.now();
    const run = await ws.task("rotate", [...args]);
    const durationMs = performance.now() - started;
    const during = emulator.stats();
    // Let every service see the switch before it stops.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const reports = await Promise.all(running.map((s) => s.stop()));
    return {
      ...run,
      durationMs,
      tokenRequests: during.tokenRequests - before.tokenRequests,
      tokenRequestsByClient: Object.fromEntries(
        Object.entries(during.tokenRequestsByClient).map((
          [id, n],
        ) => [id, n - (before.tokenRequestsByClient[id] ?? 0)]).filter((
          [, n],
        ) => (n as number) > 0),
      ),
      tokenFailures: during.tokenFailures - before.tokenFailures,
      apiRequests: during.apiRequests - before.apiRequests,
      secretsCreated: during.secretsCreated - before.secretsCreated,
      reports,
    };
  } finally {
    await Promise.all(running.map((s) => s.stop().catch(() => {})));
  }
}
