/**
 * `deno task verify`: for every configured credential, get a token and call
 * `GET /api/v2/tokens/me`; print a table (or `--json`); exit 1 when the
 * active credential is not usable, 2 on bad input.
 *
 * @module
 */
import { systemClock } from "../src/clock.ts";
import {
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../src/errors.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import { clientSecretEnvVar } from "../src/rotation/env_config.ts";
import {
  PROVIDER_ENV_VARS,
  ProviderAdminRejectedError,
  type ProviderEnvConfig,
  readProviderEnv,
  SECRET_ID_ENV_VARS,
} from "../src/providers/env.ts";
import { ProviderApiError } from "../src/providers/admin_http.ts";
import { secretIdEnvVar } from "../src/providers/env.ts";
import {
  maybeSecretOf,
  type ProviderSecretInfo,
} from "../src/rotation/provider.ts";
import type { Secret } from "../src/secret.ts";
import { createRedactor, credentialForms } from "../src/redact.ts";
import { send, SendFailure } from "../src/send.ts";
import { requestToken } from "../src/token_endpoint.ts";
import {
  COMMON_OPTIONS,
  EXIT_CODES_HELP,
  EXIT_FAILED,
  explain,
  noStoreOptions,
  overrideNotice,
  parseTaskArgs,
  readOnlyOptions,
  readRotationVariables,
  runTask,
  setUpLogging,
  table,
  taskLogLevel,
  type TaskOptions,
  useColour,
} from "./_cli.ts";

/** The options the verify parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  "env-file": { type: "string", default: ".env" },
  json: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
  ...readOnlyOptions("verify"),
  ...noStoreOptions(
    "verify checks the credentials of the env file; status --kv <path> | --redis env reads a fleet's store",
  ),
} as const satisfies TaskOptions;

const HELP = `Usage: deno task verify [options]
       genesys-rotate verify [options]

Genesys Cloud (AUTH_PROVIDER unset or genesys): checks every configured
credential (blue, green, and admin when GENESYS_ADMIN_CLIENT_ID is set): gets
a token and calls GET /api/v2/tokens/me. Then checks that the admin credential
(or the active one, without a separate admin) may read the standby's OAuth
client, as a rotation must.

Okta, Entra ID, Keycloak, Cognito, Auth0 (AUTH_PROVIDER=okta|entra|keycloak|
cognito|auth0, variables in examples/env/<provider>.env.example): gets a token
with blue, green (and the admin client, where it has one) at the provider's
token endpoint with its scope or audience, then reads the standby's client and
its secrets through the admin API, naming the permission to grant when
refused, and the write permission a read cannot prove.

Two secrets of one client (Okta, Entra ID, Cognito, Keycloak): after a
rotation or an incident revoked the old label's secret, the standby holds no
secret at rest; verify reports it as "none" (the next rotation issues it)
and does not fail for it. It compares the client's secrets with the ids the
env file records (AUTH_SECRET_ID_<LABEL>).

Exits 1 when the active credential is not usable, when the standby is not
(failover is then unavailable: a rejected active credential would have
nothing to fail over to) unless it holds no secret at rest, when a recorded
secret id of the active label is not at the provider or a recorded one has
expired, or when the admin credential cannot rotate.

Options:
  --env-file <path>  read the GENESYS_* or AUTH_* variables from this file
                     (default .env, such as .env.okta from deno task emulator
                     --provider okta; variables set in the shell win, with a
                     notice)
  --json             print JSON instead of a table (failures too)
  --verbose          log debug details to stderr
  -h, --help         show this help
  -V, --version      show the version

${EXIT_CODES_HELP}
`;

/**
 * The outcome of one credential; `none`: a two-secret provider's standby
 * label holds no secret at rest (the last rotation revoked it).
 */
type Status = "ok" | "rejected" | "unreachable" | "error" | "none";

interface Row {
  label: string;
  clientId: string;
  active: boolean;
  status: Status;
  tokenLifetimeSeconds?: number;
  organization?: string;
  /** The scope granted, when the token endpoint said (other providers than Genesys). */
  scope?: string;
  detail?: string;
}

/**
 * Runs the verify task. Errors are thrown, not reported: wrap it in
 * {@linkcode runTask} for a one-line message and an exit code.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code; the process is left running.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const values = parseTaskArgs("deno task verify", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  const log = await setUpLogging("verify", taskLogLevel(values));
  const read = readProviderEnv(
    await readRotationVariables(
      values["env-file"],
      (override) => console.error(overrideNotice(override)),
      [...PROVIDER_ENV_VARS, ...SECRET_ID_ENV_VARS],
    ),
  );
  if (read.genesys === undefined) {
    return await verifyProvider(read, values.json === true, log);
  }
  const config = read.genesys;
  const targets = config.credentials.map((c) => ({
    label: c.label,
    clientId: c.clientId,
    secret: c.clientSecret as Secret,
    active: c.label === config.active,
  }));
  if (config.admin) {
    targets.push({
      label: "admin",
      clientId: config.admin.clientId,
      secret: config.admin.clientSecret,
      active: false,
    });
  }
  log.info("Verifying {count} credentials against {tokenUrl}", {
    count: targets.length,
    tokenUrl: withoutUserInfo(config.tokenUrl),
  });
  const rows = await Promise.all(
    targets.map((target) => check(target, config.tokenUrl, config.apiUrl)),
  );
  for (const row of rows) {
    log.debug("{label}: {status} {detail}", {
      ...row,
      detail: row.detail ?? "",
    });
  }
  const { activeRow, usable, failover, failoverProblem } = judgeFailover(
    rows,
    config,
    `${
      clientSecretEnvVar(config.standby)
    }; a fleet rotated through its store (rotate --kv|--redis) keeps the new secret there, not in this file`,
  );
  const adminLabel = config.admin ? "admin" : config.active;
  const adminRow = rows.find((row) => row.label === adminLabel)!;
  const standbyId =
    config.credentials.find((c) => c.label === config.standby)!.clientId;
  const canRotate = adminRow.status === "ok"
    ? await checkAdmin(
      targets.find((t) => t.label === adminLabel)!,
      config.tokenUrl,
      config.apiUrl,
      standbyId,
      config.admin
        ? "GENESYS_ADMIN_CLIENT_SECRET"
        : clientSecretEnvVar(config.active),
    )
    : {
      ok: false,
      detail: `the admin credential "${adminLabel}" does not get a token (${
        adminRow.detail ?? adminRow.status
      }); check ${
        config.admin
          ? "GENESYS_ADMIN_CLIENT_SECRET"
          : clientSecretEnvVar(config.active)
      }`,
    };
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          ok: usable && failover && canRotate.ok,
          active: config.active,
          usable,
          failover,
          ...(failoverProblem === undefined ? {} : { failoverProblem }),
          canRotate: canRotate.ok,
          ...(canRotate.ok ? {} : { rotateProblem: canRotate.detail }),
          credentials: rows,
        },
        null,
        2,
      ),
    );
  } else {
    printTable(rows);
    console.log(
      usable
        ? `\nThe active credential "${config.active}" is usable.`
        : `\nThe active credential "${config.active}" is NOT usable: ${
          activeRow.detail ?? activeRow.status
        }`,
    );
    if (failoverProblem !== undefined) {
      console.log(`Failover is NOT available: ${failoverProblem}.`);
    }
    console.log(
      canRotate.ok
        ? `The admin credential "${adminLabel}" can read the standby's OAuth client (${standbyId}); rotation can proceed.`
        : `The admin credential "${adminLabel}" CANNOT rotate: ${canRotate.detail}`,
    );
  }
  return usable && failover && canRotate.ok ? 0 : EXIT_FAILED;
}

/**
 * Whether the admin credential may do what a rotation does first: read the
 * standby's OAuth client (`oauth:client:view`). Regenerating
 * (`oauth:client:edit`) cannot be checked without doing it.
 */
async function checkAdmin(
  target: { label: string; clientId: string; secret: Secret },
  tokenUrl: string,
  apiUrl: string,
  standbyId: string,
  variable: string,
): Promise<{ ok: boolean; detail?: string }> {
  const admin = createGenesysAdminClient({
    apiUrl,
    getAccessToken: async () =>
      (await requestToken({
        tokenUrl,
        label: target.label,
        clientId: target.clientId,
        clientSecret: target.secret,
        fetch: globalThis.fetch,
        clock: systemClock,
      })).accessToken,
    retry: { maxAttempts: 2 },
  });
  try {
    await admin.getClient(standbyId);
    return { ok: true };
  } catch (error) {
    const code = error instanceof DualSecretAuthError ? error.code : "";
    const words = code === "GENESYS_ADMIN_UNAUTHORIZED"
      ? `GENESYS_ADMIN_UNAUTHORIZED: the API rejected its token; check ${variable} and the region`
      : explain(error).message;
    return { ok: false, detail: words };
  }
}

/** A URL without user name or password, for printing. */
function withoutUserInfo(text: string): string {
  try {
    const url = new URL(text);
    url.username = "";
    url.password = "";
    return url.href;
  } catch {
    return "(invalid URL)";
  }
}

async function check(
  target: { label: string; clientId: string; secret: Secret; active: boolean },
  tokenUrl: string,
  apiUrl: string,
): Promise<Row> {
  const row: Row = {
    label: target.label,
    clientId: target.clientId,
    active: target.active,
    status: "ok",
  };
  let token: string;
  try {
    const grant = await requestToken({
      tokenUrl,
      label: target.label,
      clientId: target.clientId,
      clientSecret: target.secret,
      fetch: globalThis.fetch,
      clock: systemClock,
    });
    token = grant.accessToken;
    row.tokenLifetimeSeconds = Math.round(grant.lifetimeMs / 1000);
  } catch (error) {
    return { ...row, ...classify(error, "token request") };
  }
  let sent;
  try {
    sent = await send(`${apiUrl}/api/v2/tokens/me`, {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    }, {
      fetch: globalThis.fetch,
      clock: systemClock,
      redact: createRedactor(() => [
        token,
        ...credentialForms(target.clientId, target.secret.reveal()),
      ]),
    });
  } catch (error) {
    if (!(error instanceof SendFailure)) {
      return { ...row, ...classify(error, "GET /api/v2/tokens/me") };
    }
    return {
      ...row,
      status: "unreachable",
      detail: `GET /api/v2/tokens/me failed (${error.message})`,
    };
  }
  const { response, text } = sent;
  if (response.status === 401) {
    return {
      ...row,
      status: "rejected",
      detail: "the API rejected the token (HTTP 401); wrong region?",
    };
  }
  if (!response.ok) {
    return {
      ...row,
      status: response.status >= 500 || response.status === 429
        ? "unreachable"
        : "error",
      detail: `GET /api/v2/tokens/me answered HTTP ${response.status}`,
    };
  }
  let body: { organization?: { name?: unknown } } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  row.organization = typeof body?.organization?.name === "string"
    ? sent.quote(body.organization.name)
    : undefined;
  return row;
}

function classify(
  error: unknown,
  what: string,
): Pick<Row, "status" | "detail"> {
  if (error instanceof CredentialRejectedError) {
    return {
      status: "rejected",
      detail: `${what}: ${error.oauthError} (HTTP ${error.status})`,
    };
  }
  // Operator words only: server text may echo what was sent.
  if (
    error instanceof TokenEndpointUnavailableError ||
    error instanceof RateLimitedError
  ) {
    return {
      status: "unreachable",
      detail: `${what}: ${explain(error).message}`,
    };
  }
  if (error instanceof DualSecretAuthError) {
    return { status: "error", detail: `${what}: ${explain(error).message}` };
  }
  throw error;
}

function printTable(
  rows: readonly Row[],
  last: "ORGANIZATION" | "GRANTED SCOPE" = "ORGANIZATION",
): void {
  const colour = useColour();
  const tint = {
    ok: "green",
    rejected: "red",
    unreachable: "yellow",
    error: "red",
    none: "dim",
  } as const;
  const lines = table(
    ["LABEL", "CLIENT ID", "STATUS", "TOKEN LIFETIME", last],
    rows.map((row) => [
      row.active ? `${row.label} (active)` : row.label,
      row.clientId,
      { text: row.status, colour: tint[row.status] },
      row.tokenLifetimeSeconds === undefined
        ? "-"
        : formatDuration(row.tokenLifetimeSeconds),
      (last === "ORGANIZATION" ? row.organization : row.scope) ?? "-",
    ]),
    colour,
  );
  console.log(lines.join("\n"));
  for (const row of rows) {
    if (row.detail) console.log(`${row.label}: ${row.detail}`);
  }
}

function formatDuration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** Per provider: the write permission a rotation needs, which a read cannot prove. */
const WRITE_PERMISSION: Readonly<
  Record<Exclude<ProviderEnvConfig["provider"], "genesys">, string>
> = {
  okta:
    "okta.apps.manage (add, deactivate and delete a secret; with an API token, an admin role that may manage the app)",
  entra:
    "Application.ReadWrite.OwnedBy with the admin's service principal an owner of the application, or Application.ReadWrite.All (addPassword, removePassword); a read succeeds with Application.Read.All alone",
  keycloak:
    "realm-management manage-clients (regenerate the secret, delete the rotated one)",
  cognito:
    "cognito-idp:AddUserPoolClientSecret and cognito-idp:DeleteUserPoolClientSecret on the user pool",
  auth0: "update:client_keys (rotate-secret)",
};

/** Auth0 lists an admin token's scopes: its write scope can be checked there. */
const AUTH0_WRITE_SCOPE = "update:client_keys";

/** How long before a secret's expiry verify warns (the Keycloak executor's default remaining period). */
const EXPIRY_WARNING_MS = 10 * 24 * 3600 * 1000;

/**
 * `verify` for a provider other than Genesys: proves each credential at the
 * provider's token endpoint with its parameters, then reads the standby's
 * client through the provider's admin API, as a rotation does first.
 */
async function verifyProvider(
  config: ProviderEnvConfig,
  json: boolean,
  log: Awaited<ReturnType<typeof setUpLogging>>,
): Promise<number> {
  const targets = config.credentials.map((c) => ({
    label: c.label,
    clientId: c.clientId,
    secret: c.clientSecret,
    active: c.label === config.active,
    authMethod: c.authMethod,
    tokenUrl: config.tokenUrl,
    scope: config.scope,
    params: config.tokenParams,
  }));
  const admin = config.admin;
  if (admin.credential) {
    targets.push({
      label: "admin",
      clientId: admin.credential.clientId,
      secret: admin.credential.clientSecret,
      active: false,
      authMethod: admin.credential.authMethod,
      tokenUrl: admin.tokenUrl!,
      scope: admin.scope,
      params: admin.tokenParams,
    });
  }
  log.info("Verifying {count} {provider} credentials against {tokenUrl}", {
    count: targets.length,
    provider: config.title,
    tokenUrl: withoutUserInfo(config.tokenUrl),
  });
  const rows = await Promise.all(targets.map(async (target): Promise<Row> => {
    const row: Row = {
      label: target.label,
      clientId: target.clientId,
      active: target.active,
      status: "ok",
    };
    try {
      const grant = await requestToken({
        tokenUrl: target.tokenUrl,
        label: target.label,
        clientId: target.clientId,
        clientSecret: target.secret,
        authMethod: target.authMethod,
        ...(target.scope === undefined ? {} : { scope: target.scope }),
        ...(target.params === undefined ? {} : { params: target.params }),
        fetch: globalThis.fetch,
        clock: systemClock,
      });
      row.tokenLifetimeSeconds = Math.round(grant.lifetimeMs / 1000);
      if (grant.scope !== undefined) row.scope = grant.scope;
      return row;
    } catch (error) {
      return { ...row, ...classify(error, "token request") };
    }
  }));
  const standbyId =
    config.credentials.find((c) => c.label === config.standby)!.clientId;
  const adminRow = rows.find((row) => row.label === "admin");
  const rotate = adminRow !== undefined && adminRow.status !== "ok"
    ? {
      ok: false,
      detail: `the admin credential does not get a token (${
        adminRow.detail ?? adminRow.status
      }); check ${admin.secretVariable} and AUTH_ADMIN_CLIENT_ID`,
      notes: [] as string[],
    }
    : await checkProviderAdmin(config, standbyId, adminRow?.scope);
  const recorded = config.model === "two-secrets" && rotate.secrets
    ? judgeSecretIds(config, rows, rotate.secrets)
    : { problems: [] };
  const { activeRow, usable, failover, failoverProblem } = judgeFailover(
    rows,
    config,
    config.secretVariable(config.standby),
  );
  const unchecked = config.provider === "auth0" && rotate.writeChecked
    ? undefined
    : WRITE_PERMISSION[config.provider as keyof typeof WRITE_PERMISSION];
  const ok = usable && failover && rotate.ok && recorded.problems.length === 0;
  if (json) {
    console.log(JSON.stringify(
      {
        ok,
        provider: config.provider,
        active: config.active,
        usable,
        failover,
        ...(failoverProblem === undefined ? {} : { failoverProblem }),
        ...(recorded.atRest === undefined
          ? {}
          : { standbyAtRest: recorded.atRest }),
        ...(recorded.problems.length === 0
          ? {}
          : { secretIdProblems: recorded.problems }),
        canRotate: rotate.ok,
        ...(rotate.ok ? {} : { rotateProblem: rotate.detail }),
        ...(unchecked === undefined ? {} : { uncheckedPermission: unchecked }),
        notes: rotate.notes,
        credentials: rows,
      },
      null,
      2,
    ));
  } else {
    printTable(rows, "GRANTED SCOPE");
    console.log(
      usable
        ? `\nThe active credential "${config.active}" is usable at the ${config.title} token endpoint.`
        : `\nThe active credential "${config.active}" is NOT usable: ${
          activeRow.detail ?? activeRow.status
        }; check ${config.secretVariable(config.active)}`,
    );
    if (failoverProblem !== undefined) {
      console.log(`Failover is NOT available: ${failoverProblem}.`);
    }
    if (recorded.atRest !== undefined) console.log(recorded.atRest);
    for (const problem of recorded.problems) console.log(problem);
    console.log(
      rotate.ok
        ? `The admin credential can read ${config.title} client ${standbyId}; rotation can proceed.`
        : `The admin credential CANNOT rotate: ${rotate.detail}`,
    );
    for (const note of rotate.notes) console.log(note);
    if (rotate.ok && unchecked !== undefined) {
      console.log(
        `Not checked (it cannot be without changing a secret): ${unchecked}.`,
      );
    }
  }
  return ok ? 0 : EXIT_FAILED;
}

/**
 * Reads the standby's client through the provider's admin API (the read
 * permission), and what the inspection says of the rotation to come.
 */
async function checkProviderAdmin(
  config: ProviderEnvConfig,
  clientId: string,
  grantedScope: string | undefined,
): Promise<
  {
    ok: boolean;
    detail?: string;
    notes: string[];
    writeChecked?: boolean;
    secrets?: readonly ProviderSecretInfo[];
  }
> {
  const notes: string[] = [];
  await using built = await config.createProvider({
    retry: { maxAttempts: 2 },
  });
  let info;
  try {
    info = await built.provider.inspectClient(clientId);
  } catch (error) {
    return { ok: false, detail: adminProblem(config, error), notes };
  }
  if (info.state !== "active") {
    return {
      ok: false,
      detail: `${config.title} client ${clientId} is ${info.state}`,
      notes,
    };
  }
  const listed = info.secrets === undefined ? {} : { secrets: info.secrets };
  if (config.provider === "keycloak" && info.maxSecrets === 1) {
    return {
      ok: false,
      detail:
        `Keycloak client ${clientId} has no client.secret.expiration.time, so no client policy with the secret-rotation executor covers it: regenerating would kill the secret in use. Enable the client-secret-rotation feature and a client policy with the secret-rotation executor for it, or use two clients (different AUTH_CLIENT_ID_BLUE and AUTH_CLIENT_ID_GREEN)`,
      notes,
    };
  }
  const secrets = info.secrets ?? [];
  if (info.maxSecrets !== undefined && secrets.length >= info.maxSecrets) {
    notes.push(
      `${config.title} client ${clientId} holds ${secrets.length} of the ${info.maxSecrets} secrets it may have: a new secret can be added only once the one no instance holds or uses is revoked.`,
    );
  }
  const now = systemClock.now();
  for (const secret of secrets) {
    if (secret.expiresAt === undefined) continue;
    const at = new Date(secret.expiresAt).toISOString();
    if (secret.expiresAt <= now) {
      notes.push(
        `The ${secret.status} secret ${secret.secretId} expired at ${at}: ${config.title} refuses it. Rotate now.`,
      );
    } else if (secret.expiresAt - now <= EXPIRY_WARNING_MS) {
      notes.push(
        `The ${secret.status} secret ${secret.secretId} expires at ${at}: ${config.title} refuses it after then.`,
      );
    }
  }
  if (config.provider === "auth0" && grantedScope !== undefined) {
    const scopes = grantedScope.split(" ");
    if (!scopes.includes(AUTH0_WRITE_SCOPE)) {
      return {
        ok: false,
        detail:
          `the admin application's Management API token lacks the scope ${AUTH0_WRITE_SCOPE}, which rotate-secret needs; grant it (Applications › APIs › Auth0 Management API › Machine to Machine Applications)`,
        notes,
      };
    }
    return { ok: true, notes, writeChecked: true };
  }
  return { ok: true, notes, ...listed };
}

/**
 * Two-secret providers: what the provider lists against the secret ids
 * the env file records. At rest (after a rotation or an incident revoked
 * the old label's secret) the standby label holds no secret: its token is
 * refused and its recorded id, if any, is gone. That is expected, and its
 * row says so. A problem is a recorded id of the active label that the
 * provider does not list, or a recorded id that has expired.
 */
function judgeSecretIds(
  config: ProviderEnvConfig,
  rows: Row[],
  secrets: readonly ProviderSecretInfo[],
): { atRest?: string; problems: string[] } {
  const problems: string[] = [];
  const now = systemClock.now();
  const ids = config.secretIds;
  const find = (id: string | undefined) =>
    id === undefined ? undefined : secrets.find((s) => s.secretId === id);
  for (const label of [config.active, config.standby]) {
    const id = ids[label];
    const found = find(id);
    const variable = secretIdEnvVar(label);
    if (id !== undefined && found === undefined && label === config.active) {
      problems.push(
        `${variable} names ${id}, which ${config.title} does not list for client ${
          config.credentials[0].clientId
        }: the secret "${label}" serves with is not the recorded one, so a rotation could not tell which secret to keep. ` +
          `Record the id of the secret in ${
            config.secretVariable(label)
          } (or remove ${variable} when the client holds that one secret alone).`,
      );
    }
    const value = config.credentials.find((c) => c.label === label)
      ?.clientSecret;
    if (
      found !== undefined && value !== undefined &&
      !maybeSecretOf(found, value.reveal())
    ) {
      problems.push(
        `${variable} names ${id}, whose value is not the one in ${
          config.secretVariable(label)
        } (${config.title} shows the beginning of each value): the recorded ids are wrong or swapped, and a ` +
          `rotation or an incident response would act on the wrong secret. Record the id of the secret in ${
            config.secretVariable(label)
          }.`,
      );
    }
    if (found?.expiresAt !== undefined && found.expiresAt <= now) {
      problems.push(
        `${variable} names ${id}, which expired at ${
          new Date(found.expiresAt).toISOString()
        }: ${config.title} refuses it. ${
          label === config.active
            ? "Rotate now (deno task rotate --promote)."
            : "The next rotation replaces it."
        }`,
      );
    }
  }
  const standby = rows.find((row) => row.label === config.standby)!;
  const standbyId = ids[config.standby];
  const activeId = ids[config.active];
  // No secret of the standby's at the provider: its recorded one is gone,
  // or nothing is recorded and the client holds only the active's.
  const none = standbyId !== undefined
    ? find(standbyId) === undefined
    : secrets.filter((s) => s.secretId !== activeId).length === 0 ||
      (activeId === undefined && secrets.length <= 1);
  if (standby.status !== "rejected" || !none) return { problems };
  standby.status = "none";
  standby.detail = `no second secret at rest${
    standbyId === undefined ? "" : ` (${standbyId} was revoked)`
  }; the next rotation issues it`;
  return {
    atRest:
      `Standby "${config.standby}": no second secret at rest, as a rotation of ${config.title} leaves it; ` +
      `the next rotation issues it (until then there is nothing to fail over to).`,
    problems,
  };
}

/** An admin API failure in the operator's words: the permission to grant, or the variable to check. */
function adminProblem(config: ProviderEnvConfig, error: unknown): string {
  if (error instanceof ProviderAdminRejectedError) return error.message;
  if (error instanceof ProviderApiError) {
    // The adapters name the permission in the provider's words already.
    if (
      error.kind === "forbidden" && error.permission !== undefined &&
      !error.message.includes(error.permission)
    ) {
      return `${error.message}. Grant the admin credential ${error.permission}`;
    }
    if (error.kind === "unauthorized") {
      const id = config.admin.kind === "aws-keys"
        ? " and AUTH_ADMIN_ACCESS_KEY_ID"
        : config.admin.kind === "api-token"
        ? " (and AUTH_ADMIN_TOKEN_SCHEME)"
        : " and AUTH_ADMIN_CLIENT_ID";
      return `${error.message}. Check ${config.admin.secretVariable}${id}`;
    }
    if (error.kind === "not-found") {
      return `${error.message}. Check ${
        config.provider === "keycloak" ? "AUTH_REALM and " : ""
      }AUTH_CLIENT_ID_${config.standby.toUpperCase()}`;
    }
  }
  return explain(error).message;
}

if (import.meta.main) {
  Deno.exit(await runTask("verify", main, Deno.args));
}

/**
 * Whether the active credential serves and the standby can take over; when
 * it cannot, why, and what to check (`check`: the variable and any hint).
 */
function judgeFailover<
  Row extends {
    label: string;
    active?: boolean;
    status: string;
    detail?: string;
  },
>(
  rows: readonly Row[],
  config: { readonly active: string; readonly standby: string },
  check: string,
): {
  activeRow: Row;
  usable: boolean;
  failover: boolean;
  failoverProblem: string | undefined;
} {
  const activeRow = rows.find((row) => row.active)!;
  const standbyRow = rows.find((row) => row.label === config.standby)!;
  // At rest, a two-secret provider's standby holds no secret: expected.
  const failover = standbyRow.status === "ok" || standbyRow.status === "none";
  return {
    activeRow,
    usable: activeRow.status === "ok",
    failover,
    failoverProblem: failover
      ? undefined
      : `the standby "${config.standby}" does not work (${
        standbyRow.detail ?? standbyRow.status
      }), so a failure of "${config.active}" has nothing to fail over to. Check ${check}`,
  };
}
