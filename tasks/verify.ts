/**
 * `deno task verify`: for every configured credential, get a token and call
 * `GET /api/v2/tokens/me`; print a table (or `--json`); exit 1 when the
 * active credential is not usable, 2 on bad input.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { systemClock } from "../src/clock.ts";
import {
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "../src/errors.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  clientSecretEnvVar,
  readRotationEnv,
} from "../src/rotation/env_config.ts";
import type { Secret } from "../src/secret.ts";
import { createRedactor, credentialForms } from "../src/redact.ts";
import { send, SendFailure } from "../src/send.ts";
import { requestToken } from "../src/token_endpoint.ts";
import {
  EXIT_CODES_HELP,
  EXIT_FAILED,
  explain,
  overrideNotice,
  readRotationVariables,
  runTask,
  setUpLogging,
  table,
  taskLogLevel,
  useColour,
} from "./_cli.ts";

const HELP = `Usage: deno task verify [options]
       genesys-rotate verify [options]

Checks every configured Genesys Cloud credential (blue, green, and admin when
GENESYS_ADMIN_CLIENT_ID is set): gets a token and calls GET /api/v2/tokens/me.
Then checks that the admin credential (or the active one, without a separate
admin) may read the standby's OAuth client, as a rotation must. Exits 1 when
the active credential is not usable, when the standby is not (failover is then
unavailable: a rejected active credential would have nothing to fail over
to), or when the admin credential cannot rotate.

Options:
  --env-file <path>  read the GENESYS_* variables from this file (default .env;
                     variables set in the shell win, with a notice)
  --json             print JSON instead of a table (failures too)
  --verbose          log debug details to stderr
  -h, --help         show this help

${EXIT_CODES_HELP}
`;

/** The outcome of one credential. */
type Status = "ok" | "rejected" | "unreachable" | "error";

interface Row {
  label: string;
  clientId: string;
  active: boolean;
  status: Status;
  tokenLifetimeSeconds?: number;
  organization?: string;
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
  const { values } = parseArgs({
    args: [...args],
    options: {
      "env-file": { type: "string", default: ".env" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const log = await setUpLogging("verify", taskLogLevel(values));
  const config = readRotationEnv(
    await readRotationVariables(
      values["env-file"],
      (override) => console.error(overrideNotice(override)),
    ),
  );
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
  const activeRow = rows.find((row) => row.active)!;
  const usable = activeRow.status === "ok";
  const standbyRow = rows.find((row) => row.label === config.standby)!;
  const failover = standbyRow.status === "ok";
  const failoverProblem = failover
    ? undefined
    : `the standby "${config.standby}" does not work (${
      standbyRow.detail ?? standbyRow.status
    }), so a failure of "${config.active}" has nothing to fail over to. Check ${
      clientSecretEnvVar(config.standby)
    }; a fleet rotated through its store (rotate --kv|--redis) keeps the new secret there, not in this file`;
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

function printTable(rows: readonly Row[]): void {
  const colour = useColour();
  const tint = {
    ok: "green",
    rejected: "red",
    unreachable: "yellow",
    error: "red",
  } as const;
  const lines = table(
    ["LABEL", "CLIENT ID", "STATUS", "TOKEN LIFETIME", "ORGANIZATION"],
    rows.map((row) => [
      row.active ? `${row.label} (active)` : row.label,
      row.clientId,
      { text: row.status, colour: tint[row.status] },
      row.tokenLifetimeSeconds === undefined
        ? "-"
        : formatDuration(row.tokenLifetimeSeconds),
      row.organization ?? "-",
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

if (import.meta.main) {
  Deno.exit(await runTask("verify", main, Deno.args));
}
