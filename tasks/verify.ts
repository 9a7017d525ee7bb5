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
import { readRotationEnv } from "../src/rotation/env_config.ts";
import type { Secret } from "../src/secret.ts";
import { createRedactor, credentialForms } from "../src/redact.ts";
import { send, SendFailure } from "../src/send.ts";
import { requestToken } from "../src/token_endpoint.ts";
import {
  EXIT_FAILED,
  readRotationVariables,
  runTask,
  setUpLogging,
  table,
  useColour,
} from "./_cli.ts";

const HELP = `Usage: deno task verify [options]
       genesys-rotate verify [options]

Checks every configured Genesys Cloud credential (blue, green, and admin when
GENESYS_ADMIN_CLIENT_ID is set): gets a token and calls GET /api/v2/tokens/me.
Exits 1 when the active credential (GENESYS_ACTIVE) is not usable.

Options:
  --env-file <path>  also read the GENESYS_* variables from this file
  --json             print JSON instead of a table
  --verbose          log debug details to stderr
  -h, --help         show this help
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
      "env-file": { type: "string" },
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
  const log = await setUpLogging(
    "verify",
    values.verbose ? "debug" : values.json ? "warning" : "info",
  );
  const config = readRotationEnv(
    await readRotationVariables(values["env-file"]),
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
    tokenUrl: config.tokenUrl,
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
  if (values.json) {
    console.log(
      JSON.stringify(
        { active: config.active, usable, credentials: rows },
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
  }
  return usable ? 0 : EXIT_FAILED;
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
  if (
    error instanceof TokenEndpointUnavailableError ||
    error instanceof RateLimitedError
  ) {
    return { status: "unreachable", detail: `${what}: ${error.message}` };
  }
  if (error instanceof DualSecretAuthError) {
    return { status: "error", detail: `${what}: ${error.message}` };
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
