/**
 * `deno task verify` on every provider other than Genesys, as a subprocess
 * with the operator permission set, against each provider's emulator: the
 * env file `deno task emulator --provider` writes passes; a wrong standby
 * secret and an admin credential missing its read permission each exit 1,
 * naming what to fix in the provider's words; no secret is printed.
 */
import assert from "node:assert/strict";
import {
  type ProviderEmulator,
  startAuth0Emulator,
  startCognitoEmulator,
  startEntraEmulator,
  startKeycloakEmulator,
  startOktaEmulator,
} from "../../testing.ts";
import {
  REHEARSAL_PROVIDERS,
  type RehearsalProvider,
  startProviderRehearsal,
} from "../../src/testing/providers/rehearsal.ts";
import { envOf, PROVIDERS, writeEnv } from "./rotate_provider_scenario.ts";
import { createWorkspace, type Workspace } from "./workspace.ts";

interface Verified {
  readonly code: number;
  readonly report: {
    ok: boolean;
    provider: string;
    usable: boolean;
    failover: boolean;
    canRotate: boolean;
    rotateProblem?: string;
    uncheckedPermission?: string;
    notes: string[];
    credentials: { label: string; status: string; detail?: string }[];
  };
  readonly output: string;
}

async function verify(
  ws: Workspace,
  settings: readonly (readonly [string, string])[],
  json = true,
): Promise<Verified> {
  const file = ".env.provider";
  await Deno.writeTextFile(
    `${ws.dir}/${file}`,
    settings.map(([k, v]) => `${k}=${v}\n`).join(""),
  );
  const run = await ws.task(
    "verify",
    json ? ["--env-file", file, "--json"] : ["--env-file", file],
  );
  const output = run.stdout + run.stderr;
  return {
    code: run.code,
    report: json ? JSON.parse(run.stdout) : undefined!,
    output,
  };
}

function secretsOf(settings: readonly (readonly [string, string])[]): string[] {
  // AUTH_SECRET_ID_* name a secret; they are not one.
  return settings.filter(([name]) => /SECRET(?!_ID)|TOKEN$/.test(name)).map((
    [, value],
  ) => value);
}

function replaced(
  settings: readonly (readonly [string, string])[],
  name: string,
  value: string,
): [string, string][] {
  return settings.map(([k, v]) => [k, k === name ? value : v]);
}

Deno.test("verify on each provider's rehearsal env file: every credential works, the admin reads the standby, exit 0", async (t) => {
  await using ws = await createWorkspace();
  for (const provider of REHEARSAL_PROVIDERS) {
    await t.step(provider, async () => {
      const rehearsal = await startProviderRehearsal(provider);
      try {
        const { code, report, output } = await verify(ws, rehearsal.settings);
        assert.equal(code, 0, output);
        assert.equal(report.provider, provider);
        assert.deepEqual(
          report.credentials.map((c) => [c.label, c.status]),
          [
            ["blue", "ok"],
            ["green", "ok"],
            ...(
              provider === "okta" || provider === "cognito"
                ? []
                : [["admin", "ok"]]
            ),
          ],
        );
        assert.equal(report.canRotate, true);
        if (provider === "auth0") {
          // Auth0 lists the admin token's scopes: update:client_keys was checked.
          assert.equal(report.uncheckedPermission, undefined);
        } else {
          assert.ok(
            report.uncheckedPermission,
            "the write permission is named",
          );
        }
        for (const secret of secretsOf(rehearsal.settings)) {
          assert.ok(!output.includes(secret), "no secret in the output");
        }
      } finally {
        await rehearsal.emulator.close();
      }
    });
  }
});

Deno.test("verify on each provider: a wrong standby secret is rejected at the token endpoint and failover is reported unavailable, exit 1", async (t) => {
  await using ws = await createWorkspace();
  for (const provider of REHEARSAL_PROVIDERS) {
    await t.step(provider, async () => {
      const rehearsal = await startProviderRehearsal(provider);
      try {
        const wrong = replaced(
          rehearsal.settings,
          "AUTH_CLIENT_SECRET_GREEN",
          "wrong-secret-value-0123456789",
        );
        const { code, report, output } = await verify(ws, wrong);
        assert.equal(code, 1, output);
        assert.equal(report.usable, true);
        assert.equal(report.failover, false);
        const green = report.credentials.find((c) => c.label === "green")!;
        assert.equal(green.status, "rejected", output);
        assert.ok(!output.includes("wrong-secret-value"), "no secret quoted");
        const text = await verify(ws, wrong, false);
        assert.equal(text.code, 1);
        assert.match(text.output, /Failover is NOT available/);
        assert.match(text.output, /AUTH_CLIENT_SECRET_GREEN/);
      } finally {
        await rehearsal.emulator.close();
      }
    });
  }
});

/** An emulator whose admin credential lacks the permission to read the app, and its settings. */
interface Limited {
  readonly emulator: ProviderEmulator;
  readonly settings: readonly (readonly [string, string])[];
  /** What verify must tell the operator to grant, in the provider's words. */
  readonly grant: RegExp;
}

const BLUE = "blue-secret-value-0123456789";
const GREEN = "green-secret-value-0123456789";
const ADMIN = "admin-secret-value-0123456789";

function pair(
  provider: RehearsalProvider,
  emulator: ProviderEmulator,
  clientId: string,
  greenId = clientId,
): [string, string][] {
  return [
    ["AUTH_PROVIDER", provider],
    ["AUTH_TOKEN_URL", emulator.tokenUrl],
    ["AUTH_API_URL", emulator.apiUrl],
    ["AUTH_CLIENT_ID_BLUE", clientId],
    ["AUTH_CLIENT_SECRET_BLUE", BLUE],
    ["AUTH_CLIENT_ID_GREEN", greenId],
    ["AUTH_CLIENT_SECRET_GREEN", GREEN],
    ["AUTH_ACTIVE", "blue"],
  ];
}

const LIMITED: Record<RehearsalProvider, () => Promise<Limited>> = {
  async okta() {
    const emulator = startOktaEmulator({
      scopes: ["api"],
      apps: [{ clientId: "0oaapp", secrets: [BLUE, GREEN] }],
      // okta.apps.manage includes the read (as in Okta): a token with neither.
      adminTokens: [{ token: ADMIN, scopes: [] }],
    });
    await emulator.ready;
    return {
      emulator,
      settings: [
        ...pair("okta", emulator, "0oaapp"),
        ["AUTH_SCOPE", "api"],
        ["AUTH_ADMIN_TOKEN", ADMIN],
      ],
      grant: /okta\.apps\.read/,
    };
  },
  async entra() {
    const appId = "11111111-1111-4111-8111-111111111111";
    const adminId = "22222222-2222-4222-8222-222222222222";
    const emulator = startEntraEmulator({
      applications: [
        { appId, displayName: "App", secrets: [BLUE, GREEN] },
        // Not an owner of the app, and no Graph permission.
        { appId: adminId, displayName: "Admin", secrets: [ADMIN] },
      ],
    });
    await emulator.ready;
    return {
      emulator,
      settings: [
        ...pair("entra", emulator, appId),
        ["AUTH_SCOPE", `api://${appId}/.default`],
        ["AUTH_ADMIN_CLIENT_ID", adminId],
        ["AUTH_ADMIN_CLIENT_SECRET", ADMIN],
      ],
      grant: /Application\.(Read|ReadWrite)\./,
    };
  },
  async keycloak() {
    const emulator = startKeycloakEmulator({
      secretRotation: {},
      clients: [
        { clientId: "app", secret: BLUE },
        { clientId: "rotation-admin", secret: ADMIN, realmManagementRoles: [] },
      ],
    });
    emulator.regenerateSecret("app", GREEN);
    await emulator.ready;
    return {
      emulator,
      settings: [
        ["AUTH_PROVIDER", "keycloak"],
        ["AUTH_BASE_URL", emulator.url],
        ["AUTH_REALM", emulator.realm],
        ["AUTH_CLIENT_ID_BLUE", "app"],
        ["AUTH_CLIENT_SECRET_BLUE", BLUE],
        ["AUTH_CLIENT_ID_GREEN", "app"],
        ["AUTH_CLIENT_SECRET_GREEN", GREEN],
        ["AUTH_ACTIVE", "blue"],
        ["AUTH_ADMIN_CLIENT_ID", "rotation-admin"],
        ["AUTH_ADMIN_CLIENT_SECRET", ADMIN],
      ],
      grant: /view-clients/,
    };
  },
  async cognito() {
    const accessKeyId = "AKIAEMULATEDLIMITED0";
    const emulator = startCognitoEmulator({
      clients: [{ clientId: "appclient", secrets: [BLUE, GREEN] }],
      principals: [{
        accessKeyId,
        secretAccessKey: ADMIN,
        actions: ["cognito-idp:AddUserPoolClientSecret"],
      }],
    });
    await emulator.ready;
    return {
      emulator,
      settings: [
        ...pair("cognito", emulator, "appclient"),
        ["AUTH_REGION", emulator.region],
        ["AUTH_USER_POOL_ID", emulator.userPoolId],
        ["AUTH_ADMIN_ACCESS_KEY_ID", accessKeyId],
        ["AUTH_ADMIN_SECRET_ACCESS_KEY", ADMIN],
      ],
      grant: /cognito-idp:ListUserPoolClientSecrets/,
    };
  },
  async auth0() {
    const audience = "https://api.emulated.example/";
    const emulator = startAuth0Emulator({ apis: [{ identifier: audience }] });
    const app = [{ audience, scopes: [] }];
    emulator.addClient({ clientId: "blue", secret: BLUE, grants: app });
    emulator.addClient({ clientId: "green", secret: GREEN, grants: app });
    emulator.addClient({
      clientId: "rotation-admin",
      secret: ADMIN,
      grants: [{
        audience: emulator.managementAudience,
        scopes: ["update:client_keys"],
      }],
    });
    await emulator.ready;
    return {
      emulator,
      settings: [
        ...pair("auth0", emulator, "blue", "green"),
        ["AUTH_AUDIENCE", audience],
        ["AUTH_ADMIN_AUDIENCE", emulator.managementAudience],
        ["AUTH_ADMIN_CLIENT_ID", "rotation-admin"],
        ["AUTH_ADMIN_CLIENT_SECRET", ADMIN],
      ],
      grant: /read:clients/,
    };
  },
};

Deno.test("verify on each provider: an admin credential without the read permission cannot rotate, and verify names the permission to grant, exit 1", async (t) => {
  await using ws = await createWorkspace();
  for (const provider of REHEARSAL_PROVIDERS) {
    await t.step(provider, async () => {
      const limited = await LIMITED[provider]();
      try {
        const { code, report, output } = await verify(ws, limited.settings);
        assert.equal(code, 1, output);
        assert.equal(report.usable, true, output);
        assert.equal(report.failover, true, output);
        assert.equal(report.canRotate, false);
        assert.match(report.rotateProblem!, limited.grant);
        // What to do about it, in the provider's words: grant, allow (AWS), assign (Keycloak).
        assert.match(report.rotateProblem!, /Grant|Allow|Assign/);
        for (const secret of [BLUE, GREEN, ADMIN]) {
          assert.ok(!output.includes(secret), "no secret in the output");
        }
      } finally {
        await limited.emulator.close();
      }
    });
  }
});

Deno.test("verify on Auth0: an admin token without update:client_keys can read but cannot rotate, checked from the token's scopes", async () => {
  await using ws = await createWorkspace();
  const audience = "https://api.emulated.example/";
  await using emulator = startAuth0Emulator({
    apis: [{ identifier: audience }],
  });
  const app = [{ audience, scopes: [] }];
  emulator.addClient({ clientId: "blue", secret: BLUE, grants: app });
  emulator.addClient({ clientId: "green", secret: GREEN, grants: app });
  emulator.addClient({
    clientId: "reader",
    secret: ADMIN,
    grants: [{
      audience: emulator.managementAudience,
      scopes: ["read:clients"],
    }],
  });
  await emulator.ready;
  const { code, report, output } = await verify(ws, [
    ...pair("auth0", emulator, "blue", "green"),
    ["AUTH_AUDIENCE", audience],
    ["AUTH_ADMIN_AUDIENCE", emulator.managementAudience],
    ["AUTH_ADMIN_CLIENT_ID", "reader"],
    ["AUTH_ADMIN_CLIENT_SECRET", ADMIN],
  ]);
  assert.equal(code, 1, output);
  assert.equal(report.canRotate, false);
  assert.match(report.rotateProblem!, /update:client_keys/);
});

Deno.test("verify on Keycloak: one client without the secret-rotation policy cannot rotate, and verify says why; a wrong admin secret names AUTH_ADMIN_CLIENT_SECRET", async () => {
  await using ws = await createWorkspace();
  await using emulator = startKeycloakEmulator({
    clients: [
      { clientId: "app", secret: BLUE },
      {
        clientId: "rotation-admin",
        secret: ADMIN,
        realmManagementRoles: ["view-clients", "manage-clients"],
      },
    ],
  });
  await emulator.ready;
  const settings: [string, string][] = [
    ["AUTH_PROVIDER", "keycloak"],
    ["AUTH_BASE_URL", emulator.url],
    ["AUTH_REALM", emulator.realm],
    ["AUTH_CLIENT_ID_BLUE", "app"],
    ["AUTH_CLIENT_SECRET_BLUE", BLUE],
    ["AUTH_CLIENT_ID_GREEN", "app"],
    // Without the policy the client has one secret: both labels hold it.
    ["AUTH_CLIENT_SECRET_GREEN", BLUE],
    ["AUTH_ACTIVE", "blue"],
    ["AUTH_ADMIN_CLIENT_ID", "rotation-admin"],
    ["AUTH_ADMIN_CLIENT_SECRET", ADMIN],
  ];
  const off = await verify(ws, settings);
  assert.equal(off.code, 1, off.output);
  assert.equal(off.report.canRotate, false);
  assert.match(off.report.rotateProblem!, /secret-rotation executor/);

  const wrong = await verify(
    ws,
    replaced(settings, "AUTH_ADMIN_CLIENT_SECRET", "wrong-admin-value-0123"),
  );
  assert.equal(wrong.code, 1, wrong.output);
  assert.equal(
    wrong.report.credentials.find((c) => c.label === "admin")?.status,
    "rejected",
  );
  assert.match(wrong.report.rotateProblem!, /AUTH_ADMIN_CLIENT_SECRET/);
  assert.ok(!wrong.output.includes("wrong-admin-value"));
});

Deno.test("verify with a missing provider variable exits 2 naming it; AUTH_* without AUTH_PROVIDER says to set it", async () => {
  await using ws = await createWorkspace();
  const missing = await verify(ws, [
    ["AUTH_PROVIDER", "okta"],
    ["AUTH_DOMAIN", "dev-123456.okta.com"],
    ["AUTH_CLIENT_ID_BLUE", "0oa1"],
    ["AUTH_CLIENT_SECRET_BLUE", BLUE],
    ["AUTH_CLIENT_ID_GREEN", "0oa1"],
    ["AUTH_CLIENT_SECRET_GREEN", GREEN],
    ["AUTH_ACTIVE", "blue"],
    ["AUTH_ADMIN_TOKEN", ADMIN],
  ], false);
  assert.equal(missing.code, 2, missing.output);
  assert.match(missing.output, /AUTH_SCOPE/);
  assert.ok(!missing.output.includes(BLUE));

  const unnamed = await verify(ws, [
    ["AUTH_DOMAIN", "dev-123456.okta.com"],
    ["AUTH_CLIENT_ID_BLUE", "0oa1"],
  ], false);
  assert.equal(unnamed.code, 2, unnamed.output);
  assert.match(unnamed.output, /AUTH_PROVIDER: is not set/);
});

Deno.test("verify on each provider: a wrong admin secret cannot rotate, and verify names the variable holding it, exit 1", async (t) => {
  await using ws = await createWorkspace();
  for (const provider of REHEARSAL_PROVIDERS) {
    await t.step(provider, async () => {
      const rehearsal = await startProviderRehearsal(provider);
      try {
        const variable = rehearsal.settings.map(([name]) => name).find((
          name,
        ) =>
          [
            "AUTH_ADMIN_TOKEN",
            "AUTH_ADMIN_CLIENT_SECRET",
            "AUTH_ADMIN_SECRET_ACCESS_KEY",
          ].includes(name)
        )!;
        const { code, report, output } = await verify(
          ws,
          replaced(
            rehearsal.settings,
            variable,
            "wrong-admin-value-0123456789",
          ),
        );
        assert.equal(code, 1, output);
        assert.equal(report.usable, true);
        assert.equal(report.failover, true);
        assert.equal(report.canRotate, false);
        assert.match(report.rotateProblem!, new RegExp(variable));
        assert.ok(!output.includes("wrong-admin-value"), "no secret quoted");
      } finally {
        await rehearsal.emulator.close();
      }
    });
  }
});

for (const name of ["okta", "entra"]) {
  Deno.test(`verify on ${name}: the labels' recorded secret ids swapped fail, named (the provider shows the beginning of each value)`, async () => {
    await using world = await PROVIDERS[name]();
    await using ws = await createWorkspace();
    const file = `.env.${name}`;
    const {
      AUTH_CLIENT_ID_GREEN: _id,
      AUTH_CLIENT_SECRET_GREEN: _secret,
      ...initial
    } = world.env;
    await writeEnv(ws, file, initial);
    const setup = await ws.task("setup", [
      "--from",
      "blue",
      "--env-file",
      file,
      "--yes",
    ]);
    assert.equal(setup.code, 0, setup.stdout + setup.stderr);
    const env = await envOf(ws, file);
    const ok = await ws.task("verify", ["--env-file", file]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    await writeEnv(ws, file, {
      ...env,
      AUTH_SECRET_ID_BLUE: env.AUTH_SECRET_ID_GREEN,
      AUTH_SECRET_ID_GREEN: env.AUTH_SECRET_ID_BLUE,
    });
    const swapped = await ws.task("verify", ["--env-file", file]);
    assert.equal(swapped.code, 1, swapped.stdout + swapped.stderr);
    assert.match(
      swapped.stdout,
      new RegExp(
        `AUTH_SECRET_ID_BLUE names ${env.AUTH_SECRET_ID_GREEN}, whose value is not the one in AUTH_CLIENT_SECRET_BLUE`,
      ),
    );
    for (
      const value of [env.AUTH_CLIENT_SECRET_BLUE, env.AUTH_CLIENT_SECRET_GREEN]
    ) {
      assert.ok(
        !swapped.stdout.includes(value) && !swapped.stderr.includes(value),
      );
    }
  });
}
