/**
 * `deno task emulator`: the bundled Genesys Cloud emulator, standalone, so
 * the runbook can be rehearsed locally. It serves blue, green and an admin
 * client allowed everything the runbook does (verify, rotate, setup,
 * incident) and writes a matching env file (never over an existing one).
 * `--provider okta|entra|keycloak|cognito|auth0` starts that provider's
 * emulator instead and writes `.env.<provider>`.
 *
 * @module
 */
import { startGenesysEmulator } from "../testing.ts";
import { readEnvValues } from "../src/rotation/env_file.ts";
import {
  isRehearsalProvider,
  REHEARSAL_PROVIDERS,
  startProviderRehearsal,
} from "../src/testing/providers/rehearsal.ts";
import {
  COMMON_OPTIONS,
  noStoreOptions,
  OperatorError,
  parseTaskArgs,
  runTask,
  type TaskOptions,
  UsageError,
} from "./_cli.ts";

/** The options the emulator parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  port: { type: "string", default: "8080" },
  "env-file": { type: "string", default: ".env" },
  "no-env-file": { type: "boolean", default: false },
  "blue-only": { type: "boolean", default: false },
  "token-lifetime": { type: "string", default: "86400" },
  "token-rate-limit": { type: "string", default: "300" },
  "api-rate-limit": { type: "string", default: "300" },
  provider: { type: "string", default: "genesys" },
  json: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
  yes: {
    type: "boolean",
    default: false,
    noEffect: "the emulator asks no question (it never overwrites a file)",
  },
  ...noStoreOptions(
    "the emulator keeps no fleet store (a fleet's instances bring their own Deno KV or Redis)",
  ),
} as const satisfies TaskOptions;

/** The options of the Genesys emulator only, refused beside `--provider`. */
const GENESYS_ONLY = [
  "blue-only",
  "token-lifetime",
  "token-rate-limit",
  "api-rate-limit",
];

const HELP = `Usage: deno task emulator [options]

Starts the bundled Genesys Cloud emulator (token endpoint, Platform API and
OAuth client API) on 127.0.0.1 with three OAuth clients: blue and green, which
hold the role "App" in all divisions, and an admin client with the role
"OAuth admin" (oauth:client:view, add, edit and delete) and "App", so that it
may read, regenerate, create and disable clients and grant a twin blue's role.
Writes a matching env file so that "deno task verify", "rotate", "promote",
"setup" and "incident" run against it. Secrets are random per start. Stop it
with Ctrl-C.

Options:
  --provider <name>        okta, entra, keycloak, cognito or auth0: start that provider's emulator
                           instead, with one client holding two secrets (twin clients for auth0)
                           and an admin, and write .env.<name>; takes --port, --env-file,
                           --no-env-file, --dry-run, --json, not the four Genesys options below
                           (default genesys)
  --port <n>               the port to listen on (default 8080, as .env.example suggests; 0 for any)
  --env-file <path>        the env file to write (default .env); an existing file is never overwritten
  --no-env-file            write no env file (print the variables instead)
  --dry-run                the same as --no-env-file: the emulator starts, nothing on disk
                           changes
  --blue-only              create no green client and leave it out of the env file, to rehearse
                           "deno task setup --from blue"
  --token-lifetime <s>     lifetime of the clients' tokens in seconds (default 86400, Genesys's
                           default; Genesys allows 300 to 172800, shorter ones rehearse expiry)
  --token-rate-limit <n>   tokens one client may create a minute (default 300, Genesys's
                           client.credentials.token.rate.per.minute; 0 for no limit)
  --api-rate-limit <n>     API requests one token may make a minute (default 300, Genesys's
                           token.rate.per.minute; 0 for no limit)
  --json                   once listening, print one JSON line instead of text: the
                           endpoints, the env file written (null with --no-env-file, which
                           adds the variables), then nothing more
  -h, --help               show this help
  -V, --version            show the version

Exit codes:
  0    stopped with Ctrl-C or SIGTERM
  2    bad option, the port is taken, or the env file exists already
`;

/**
 * Runs the emulator until SIGINT or SIGTERM.
 *
 * @param args The command-line arguments.
 * @returns The exit code.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const values = parseTaskArgs("deno task emulator", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  // What the emulator changes is the env file it writes.
  const noEnvFile = values["no-env-file"] || values["dry-run"];
  if (values.provider !== "genesys") {
    const genesysOnly = GENESYS_ONLY.find((name) =>
      args.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))
    );
    if (genesysOnly !== undefined) {
      throw new UsageError(
        `--${genesysOnly} applies to the Genesys emulator only, not --provider ${values.provider}; drop it`,
      );
    }
    return await provider(
      values.provider,
      values.port,
      // The Genesys default (.env) is not the provider's (.env.<name>).
      args.some((arg) => /^--env-file(=|$)/.test(arg))
        ? values["env-file"]
        : undefined,
      noEnvFile,
      values.json,
    );
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`--port "${values.port}" is not a port number`);
  }
  const tokenLifetime = wholeNumber(
    values["token-lifetime"],
    "--token-lifetime",
  );
  if (tokenLifetime === 0) {
    throw new UsageError("--token-lifetime must be at least 1 second");
  }
  const tokenRateLimit = wholeNumber(
    values["token-rate-limit"],
    "--token-rate-limit",
  );
  const apiRateLimit = wholeNumber(
    values["api-rate-limit"],
    "--api-rate-limit",
  );
  const envFile = values["env-file"];
  if (!noEnvFile) await refuseExisting(envFile);
  const secret = () => crypto.randomUUID().replaceAll("-", "");
  const app = [{ roleId: "role-app", divisionId: "*" }];
  const clients = {
    blue: {
      clientId: "blue-client-id",
      secret: `blue-${secret()}`,
      name: "App (blue)",
      tokenLifetimeSeconds: tokenLifetime,
      roleDivisions: app,
    },
    green: {
      clientId: "green-client-id",
      secret: `green-${secret()}`,
      name: "App (green)",
      tokenLifetimeSeconds: tokenLifetime,
      roleDivisions: app,
    },
    admin: {
      clientId: "admin-client-id",
      secret: `admin-${secret()}`,
      name: "Rotation admin",
      tokenLifetimeSeconds: tokenLifetime,
      // "App" too: a client may grant only the roles it holds itself.
      roleDivisions: [{ roleId: "role-oauth-admin", divisionId: "*" }, ...app],
    },
  };
  const blueOnly = values["blue-only"];
  let emulator;
  try {
    emulator = startGenesysEmulator({
      port,
      roles: [
        { id: "role-app", name: "App", permissions: ["routing:queue:view"] },
        {
          id: "role-oauth-admin",
          name: "OAuth admin",
          permissions: [
            "oauth:client:view",
            "oauth:client:add",
            "oauth:client:edit",
            "oauth:client:delete",
          ],
        },
      ],
      clients: blueOnly
        ? [clients.blue, clients.admin]
        : [clients.blue, clients.green, clients.admin],
      organization: { id: "emulated-org", name: "Emulated organization" },
      // Stricter than Genesys documents: a regenerated client's tokens die
      // at once, so a rehearsal shows any service still using them.
      revokeTokensOnRegenerate: true,
      ...(tokenRateLimit === 0
        ? {}
        : { tokenRateLimitPerMinute: tokenRateLimit }),
      ...(apiRateLimit === 0 ? {} : { apiRateLimitPerMinute: apiRateLimit }),
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      // Thrown, so that runTask reports it as JSON too under --json.
      throw new UsageError(
        `Port ${port} is in use; pass --port <another> (and use it in GENESYS_TOKEN_URL).`,
      );
    }
    throw error;
  }
  const text = [
    "# Written by deno task emulator: a local rehearsal, not Genesys Cloud.",
    `GENESYS_TOKEN_URL=${emulator.tokenUrl}`,
    `GENESYS_API_URL=${emulator.apiUrl}`,
    `GENESYS_CLIENT_ID_BLUE=${clients.blue.clientId}`,
    `GENESYS_CLIENT_SECRET_BLUE=${clients.blue.secret}`,
    ...(blueOnly ? [] : [
      `GENESYS_CLIENT_ID_GREEN=${clients.green.clientId}`,
      `GENESYS_CLIENT_SECRET_GREEN=${clients.green.secret}`,
    ]),
    "GENESYS_ACTIVE=blue",
    `GENESYS_ADMIN_CLIENT_ID=${clients.admin.clientId}`,
    `GENESYS_ADMIN_CLIENT_SECRET=${clients.admin.secret}`,
    "",
  ].join("\n");
  if (!noEnvFile) {
    await writeNewEnvFile(envFile, text, emulator);
  }
  if (values.json) {
    printStarted({
      provider: "genesys",
      url: emulator.url,
      tokenUrl: emulator.tokenUrl,
      apiUrl: emulator.apiUrl,
      envFile: noEnvFile ? null : envFile,
      ...(noEnvFile ? { variables: readEnvValues(text) } : {}),
    });
    return await runUntilSignal(emulator, true);
  }
  if (noEnvFile) console.log(text);
  console.log(`Genesys emulator listening on ${emulator.url}`);
  if (!noEnvFile) {
    console.log(
      blueOnly
        ? `Wrote ${envFile} (blue active, no green yet, admin client). Try: deno task setup --from blue`
        : `Wrote ${envFile} (blue active, green standby, admin client). Try: deno task verify`,
    );
  }
  console.log("Stop it with Ctrl-C.");
  return await runUntilSignal(emulator, false);
}

/** What `--json` prints once the emulator listens, as one line (with `ok: true`). */
export interface EmulatorStarted {
  /** genesys, or the `--provider`. */
  readonly provider: string;
  /** The emulator's base URL. */
  readonly url: string;
  /** The token endpoint (Genesys). */
  readonly tokenUrl?: string;
  /** The Platform API (Genesys). */
  readonly apiUrl?: string;
  /** The env file written, or null with `--no-env-file`. */
  readonly envFile: string | null;
  /** The variables, when no env file holds them (or a provider's, always: its text output prints them too). */
  readonly variables?: Record<string, string>;
}

/** One JSON line on stdout, for a script that starts the emulator and reads where it listens. */
function printStarted(started: EmulatorStarted): void {
  console.log(JSON.stringify({ ok: true, ...started }));
}

/** Serves until SIGINT or SIGTERM, then closes the emulator; quiet with `--json`. */
async function runUntilSignal(
  emulator: { close(): Promise<void> },
  json: boolean,
): Promise<number> {
  await untilSignal();
  await emulator.close();
  if (!json) console.log("Emulator stopped.");
  return 0;
}

/**
 * Runs a provider's emulator (`--provider`) until SIGINT or SIGTERM.
 *
 * @param name The provider, as given to `--provider`.
 * @param portText `--port`.
 * @param envFileGiven `--env-file`, when given (else `.env.<name>`).
 * @param noEnvFile `--no-env-file` or `--dry-run`: write no env file.
 * @param json `--json`.
 * @returns The exit code.
 */
async function provider(
  name: string,
  portText: string,
  envFileGiven: string | undefined,
  noEnvFile: boolean,
  json: boolean,
): Promise<number> {
  if (!isRehearsalProvider(name)) {
    throw new UsageError(
      `--provider "${name}" is not one of genesys, ${
        REHEARSAL_PROVIDERS.join(", ")
      }`,
    );
  }
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`--port "${portText}" is not a port number`);
  }
  const envFile = envFileGiven ?? `.env.${name}`;
  if (!noEnvFile) await refuseExisting(envFile);
  let rehearsal;
  try {
    rehearsal = await startProviderRehearsal(name, { port });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UsageError(`Port ${port} is in use; pass --port <another>.`);
    }
    throw error;
  }
  const { emulator } = rehearsal;
  const text = [
    `# Written by deno task emulator --provider ${name}: a local rehearsal, not ${rehearsal.title}.`,
    ...rehearsal.settings.map(([key, value]) => `${key}=${value}`),
    "",
  ].join("\n");
  if (!noEnvFile) {
    await writeNewEnvFile(envFile, text, emulator);
  }
  if (json) {
    printStarted({
      provider: name,
      url: emulator.url,
      envFile: noEnvFile ? null : envFile,
      variables: Object.fromEntries(rehearsal.settings),
    });
    return await runUntilSignal(emulator, true);
  }
  // Printed either way: the operator copies what a service needs from here.
  console.log(text);
  console.log(`${rehearsal.title} emulator listening on ${emulator.url}`);
  if (!noEnvFile) {
    console.log(`Wrote ${envFile} (${rehearsal.summary}).`);
  }
  console.log("Stop it with Ctrl-C.");
  return await runUntilSignal(emulator, false);
}

/** Refuses an env file that exists already: the emulator never overwrites. */
async function refuseExisting(envFile: string): Promise<void> {
  try {
    await Deno.lstat(envFile);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  throw new OperatorError(
    "ENV_FILE_EXISTS",
    `${envFile} exists already; the emulator never overwrites it. ` +
      `Move it away, or pass --env-file <another path> (or --no-env-file).`,
  );
}

/**
 * Writes the env file, which must not exist (owner-only); on failure stops
 * the emulator, which nothing else would stop.
 */
async function writeNewEnvFile(
  envFile: string,
  text: string,
  emulator: { close(): Promise<void> },
): Promise<void> {
  try {
    await Deno.writeTextFile(envFile, text, { createNew: true, mode: 0o600 });
  } catch (error) {
    await emulator.close();
    throw error;
  }
}

/** Resolves on SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => resolve();
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      try {
        Deno.addSignalListener(name, stop);
      } catch {
        // SIGTERM cannot be listened for on Windows.
      }
    }
  });
}

/** A whole number of at least 0 from an option's text, or a usage error. */
function wholeNumber(text: string, option: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new UsageError(`${option} "${text}" is not a whole number`);
  }
  return value;
}

if (import.meta.main) {
  Deno.exit(await runTask("emulator", main, Deno.args));
}
