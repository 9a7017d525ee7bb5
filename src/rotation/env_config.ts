/**
 * The rotation tasks' configuration from environment variables: a pure
 * function of a `Record<string, string | undefined>`, so it is testable and
 * the tasks read only the variables named in {@linkcode ROTATION_ENV_VARS}.
 *
 * @module
 */
import type { CredentialInput } from "../config.ts";
import { isLoopback } from "../config.ts";
import { DualSecretAuthError } from "../errors.ts";
import { resolveRegion } from "../regions.ts";
import { Secret } from "../secret.ts";

/** The labels of the two credentials, in order. */
export const ROTATION_LABELS: readonly ["blue", "green"] = Object.freeze(
  ["blue", "green"] as const,
);

/** One of {@linkcode ROTATION_LABELS}. */
export type RotationLabel = typeof ROTATION_LABELS[number];

/** The variable holding the active label. */
export const ACTIVE_ENV_VAR = "GENESYS_ACTIVE";

/**
 * The variable holding a label's client id, such as `GENESYS_CLIENT_ID_GREEN`.
 *
 * @param label The label.
 * @returns The variable name.
 */
export function clientIdEnvVar(label: string): string {
  return `GENESYS_CLIENT_ID_${label.toUpperCase()}`;
}

/**
 * The variable holding a label's secret, such as `GENESYS_CLIENT_SECRET_GREEN`.
 *
 * @param label The label.
 * @returns The variable name.
 */
export function clientSecretEnvVar(label: string): string {
  return `GENESYS_CLIENT_SECRET_${label.toUpperCase()}`;
}

/** Every variable the configuration reads (the tasks' env permission lists these and `NO_COLOR`). */
export const ROTATION_ENV_VARS: readonly string[] = Object.freeze([
  "GENESYS_ENVIRONMENT",
  "GENESYS_TOKEN_URL",
  "GENESYS_API_URL",
  ...ROTATION_LABELS.flatMap((l) => [clientIdEnvVar(l), clientSecretEnvVar(l)]),
  ACTIVE_ENV_VAR,
  "GENESYS_ADMIN_CLIENT_ID",
  "GENESYS_ADMIN_CLIENT_SECRET",
]);

/** The code of {@linkcode EnvConfigError}. */
export const ENV_CONFIG_INVALID = "ENV_CONFIG_INVALID" as const;

/** One problem with one variable. */
export interface EnvProblem {
  /** The variable at fault. */
  readonly variable: string;
  /** What is wrong and how to fix it (never the value of a secret). */
  readonly problem: string;
}

/** The environment does not describe a usable configuration; lists every problem at once. */
export class EnvConfigError extends DualSecretAuthError {
  /** Every problem found. */
  readonly problems: readonly EnvProblem[];
  /** The variables at fault. */
  readonly variables: readonly string[];

  /**
   * Creates the error.
   *
   * @param problems Every problem found.
   */
  constructor(problems: readonly EnvProblem[]) {
    super(
      ENV_CONFIG_INVALID,
      `The environment is not a valid rotation configuration:\n` +
        problems.map((p) => `  - ${p.variable}: ${p.problem}`).join("\n") +
        `\nSee .env.example.`,
    );
    this.problems = Object.freeze([...problems]);
    this.variables = Object.freeze([
      ...new Set(problems.map((p) => p.variable)),
    ]);
  }
}

/** The configuration the tasks work with. */
export interface RotationEnvConfig {
  /** The region domain, when given by `GENESYS_ENVIRONMENT`. */
  readonly environment?: string;
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The Platform API base URL. */
  readonly apiUrl: string;
  /** Blue and green, in that order. */
  readonly credentials: readonly CredentialInput[];
  /** The label serving traffic. */
  readonly active: RotationLabel;
  /** The other label. */
  readonly standby: RotationLabel;
  /** Separate admin credentials, when given; else the active credential administers. */
  readonly admin?: { readonly clientId: string; readonly clientSecret: Secret };
}

/** Options of {@linkcode readRotationEnv}. */
export interface ReadRotationEnvOptions {
  /**
   * The label to rotate, when the operator named one; must not be the active one.
   *
   * @default the label that is not `GENESYS_ACTIVE`
   */
  readonly standby?: string;
}

/**
 * Reads and checks the configuration. Every problem is collected, so one run
 * names every missing or invalid variable.
 *
 * @param env Variable values, such as those read from `Deno.env`.
 * @param options The standby the operator asked for, if any.
 * @returns The configuration.
 * @throws {EnvConfigError} Naming each variable at fault.
 *
 * @example
 * ```ts
 * import { readRotationEnv } from "@rotating/dual-secret-auth/genesys";
 * const config = readRotationEnv({
 *   GENESYS_ENVIRONMENT: "mypurecloud.ie",
 *   GENESYS_CLIENT_ID_BLUE: "b", GENESYS_CLIENT_SECRET_BLUE: "bs",
 *   GENESYS_CLIENT_ID_GREEN: "g", GENESYS_CLIENT_SECRET_GREEN: "gs",
 *   GENESYS_ACTIVE: "blue",
 * });
 * if (config.standby !== "green" || config.apiUrl !== "https://api.mypurecloud.ie") throw new Error();
 * ```
 */
export function readRotationEnv(
  env: Readonly<Record<string, string | undefined>>,
  options?: ReadRotationEnvOptions,
): RotationEnvConfig {
  const requested = options?.standby;
  const problems: EnvProblem[] = [];
  const value = (name: string): string | undefined => {
    const text = env[name];
    return text === undefined || text === "" ? undefined : text;
  };
  const urls = readUrls(value, problems);

  const credentials: CredentialInput[] = [];
  for (const label of ROTATION_LABELS) {
    const clientId = requiredVariable(value, clientIdEnvVar(label), problems);
    const secret = secretVariable(
      value,
      clientSecretEnvVar(label),
      problems,
      true,
    );
    if (clientId !== undefined && secret !== undefined) {
      credentials.push({ label, clientId, clientSecret: secret });
    }
  }
  const [blueId, greenId] = ROTATION_LABELS.map((l) =>
    value(clientIdEnvVar(l))?.trim()
  );
  if (blueId !== undefined && blueId === greenId) {
    problems.push({
      variable: clientIdEnvVar("green"),
      problem: `is the same OAuth client as ${
        clientIdEnvVar("blue")
      }; rotation needs two clients with the same roles`,
    });
  }

  const active = readActive(value, problems);
  let standby: RotationLabel | undefined;
  if (requested !== undefined) {
    if (!isLabel(requested)) {
      problems.push({
        variable: "standby",
        problem: `"${requested}" is not blue or green`,
      });
    } else if (requested === active) {
      problems.push({
        variable: "standby",
        problem:
          `"${requested}" is the active credential (${ACTIVE_ENV_VAR}); only the standby may be regenerated`,
      });
    } else standby = requested;
  } else if (active !== undefined) {
    standby = active === "blue" ? "green" : "blue";
  }

  const admin = readAdmin(value, problems);
  if (problems.length > 0 || !urls || !active || !standby) {
    throw new EnvConfigError(problems);
  }
  return Object.freeze({
    ...urls,
    credentials: Object.freeze(credentials),
    active,
    standby,
    ...(admin ? { admin } : {}),
  });
}

/** Reads one variable. */
export type Read = (name: string) => string | undefined;

function readUrls(
  value: Read,
  problems: EnvProblem[],
): { environment?: string; tokenUrl: string; apiUrl: string } | undefined {
  const environment = value("GENESYS_ENVIRONMENT")?.trim();
  const tokenUrl = value("GENESYS_TOKEN_URL")?.trim();
  const apiUrl = value("GENESYS_API_URL")?.trim();
  if (environment !== undefined) {
    if (tokenUrl !== undefined || apiUrl !== undefined) {
      problems.push({
        variable: tokenUrl ? "GENESYS_TOKEN_URL" : "GENESYS_API_URL",
        problem:
          "give either GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL with GENESYS_API_URL, not both",
      });
      return undefined;
    }
    try {
      const region = resolveRegion(environment);
      return {
        environment: region.domain,
        tokenUrl: region.tokenUrl,
        apiUrl: region.apiUrl,
      };
    } catch {
      problems.push({
        variable: "GENESYS_ENVIRONMENT",
        problem:
          `"${environment}" is not a Genesys Cloud region domain (such as mypurecloud.com, mypurecloud.ie, usw2.pure.cloud)`,
      });
      return undefined;
    }
  }
  if (tokenUrl === undefined && apiUrl === undefined) {
    problems.push({
      variable: "GENESYS_ENVIRONMENT",
      problem:
        "is not set; set it to your region domain (such as mypurecloud.com), or set GENESYS_TOKEN_URL and GENESYS_API_URL",
    });
    return undefined;
  }
  const token = checkUrl("GENESYS_TOKEN_URL", tokenUrl, problems);
  const api = checkUrl("GENESYS_API_URL", apiUrl, problems);
  return token && api ? { tokenUrl: token, apiUrl: api } : undefined;
}

function checkUrl(
  variable: string,
  text: string | undefined,
  problems: EnvProblem[],
): string | undefined {
  if (text === undefined) {
    problems.push({
      variable,
      problem: "is not set; GENESYS_TOKEN_URL and GENESYS_API_URL go together",
    });
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push({ variable, problem: "is not a valid absolute URL" });
    return undefined;
  }
  const secure = url.protocol === "https:" ||
    (url.protocol === "http:" && isLoopback(url.hostname));
  if (!secure) {
    problems.push({
      variable,
      problem: "must be an https:// URL (http:// only on loopback)",
    });
    return undefined;
  }
  // Not quoted: it may be a password. The library refuses such a URL too,
  // but by its option name (tokenUrl), which means nothing to an operator.
  if (url.username || url.password) {
    problems.push({
      variable,
      problem:
        "must not contain a user name or password (user:password@); remove them: the credentials are GENESYS_CLIENT_ID_<LABEL> and GENESYS_CLIENT_SECRET_<LABEL>",
    });
    return undefined;
  }
  return url.href.replace(/\/$/, "");
}

/**
 * A variable that must be set, without surrounding whitespace.
 *
 * @param value Reads a variable.
 * @param name The variable.
 * @param problems Where a problem is added, naming the variable.
 * @returns Its value, or undefined after adding a problem.
 */
export function requiredVariable(
  value: Read,
  name: string,
  problems: EnvProblem[],
): string | undefined {
  const text = value(name);
  if (text === undefined || text.trim() === "") {
    problems.push({ variable: name, problem: "is not set" });
    return undefined;
  }
  if (text !== text.trim()) {
    problems.push({
      variable: name,
      problem: "has leading or trailing whitespace; remove it",
    });
    return undefined;
  }
  return text;
}

/**
 * A secret variable: set (when mandatory) and holding no whitespace.
 *
 * @param value Reads a variable.
 * @param name The variable.
 * @param problems Where a problem is added, naming the variable (never the value).
 * @param mandatory Whether it must be set.
 * @returns The secret, or undefined.
 */
export function secretVariable(
  value: Read,
  name: string,
  problems: EnvProblem[],
  mandatory: boolean,
): Secret | undefined {
  const text = value(name);
  if (text === undefined || text.trim() === "") {
    if (mandatory) problems.push({ variable: name, problem: "is not set" });
    return undefined;
  }
  if (/\s/.test(text)) {
    problems.push({
      variable: name,
      problem:
        "contains whitespace (a line break from a copied or mounted value?); secrets have none, so fix its source",
    });
    return undefined;
  }
  return new Secret(text);
}

function readActive(
  value: Read,
  problems: EnvProblem[],
): RotationLabel | undefined {
  const text = value(ACTIVE_ENV_VAR)?.trim().toLowerCase();
  if (text === undefined) {
    problems.push({
      variable: ACTIVE_ENV_VAR,
      problem:
        "is not set; set it to the label serving traffic now (blue or green)",
    });
    return undefined;
  }
  if (!isLabel(text)) {
    problems.push({
      variable: ACTIVE_ENV_VAR,
      problem: `"${text}" is not blue or green`,
    });
    return undefined;
  }
  return text;
}

function readAdmin(
  value: Read,
  problems: EnvProblem[],
): RotationEnvConfig["admin"] {
  const clientId = value("GENESYS_ADMIN_CLIENT_ID")?.trim();
  const secret = secretVariable(
    value,
    "GENESYS_ADMIN_CLIENT_SECRET",
    problems,
    false,
  );
  const secretGiven = value("GENESYS_ADMIN_CLIENT_SECRET") !== undefined;
  if (clientId === undefined && !secretGiven) return undefined;
  if (clientId === undefined || !secretGiven) {
    problems.push({
      variable: clientId === undefined
        ? "GENESYS_ADMIN_CLIENT_ID"
        : "GENESYS_ADMIN_CLIENT_SECRET",
      problem:
        "is not set; the admin credential needs both GENESYS_ADMIN_CLIENT_ID and GENESYS_ADMIN_CLIENT_SECRET (or neither, to administer with the active credential)",
    });
    return undefined;
  }
  return secret ? Object.freeze({ clientId, clientSecret: secret }) : undefined;
}

function isLabel(text: string): text is RotationLabel {
  return (ROTATION_LABELS as readonly string[]).includes(text);
}

/** What `deno task setup` works with: the existing client and where its twin goes. */
export interface SetupEnvConfig {
  /** The region domain, when given by `GENESYS_ENVIRONMENT`. */
  readonly environment?: string;
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The Platform API base URL. */
  readonly apiUrl: string;
  /** The label of the existing client. */
  readonly from: RotationLabel;
  /** The label of the twin: the other one. */
  readonly to: RotationLabel;
  /** The existing client's id. */
  readonly sourceClientId: string;
  /** The existing client's secret, when given (needed only without a separate admin). */
  readonly sourceClientSecret?: Secret;
  /** The twin's client id when one is configured already. */
  readonly configuredTargetId?: string;
  /** `GENESYS_ACTIVE`, when set to a valid label. */
  readonly active?: RotationLabel;
  /** Separate admin credentials, when given; else the existing client administers. */
  readonly admin?: { readonly clientId: string; readonly clientSecret: Secret };
}

/**
 * Reads the set-up's configuration: the URLs, the `from` label's client id
 * (and secret, unless separate admin credentials are given), and whether the
 * other label is configured already. Every problem is collected.
 *
 * @param env Variable values, such as those read from `Deno.env`.
 * @param from The label of the existing client.
 * @returns The configuration.
 * @throws {EnvConfigError} Naming each variable at fault.
 *
 * @example
 * ```ts
 * import { readSetupEnv } from "@rotating/dual-secret-auth/genesys";
 * const config = readSetupEnv({
 *   GENESYS_ENVIRONMENT: "mypurecloud.ie",
 *   GENESYS_CLIENT_ID_BLUE: "b", GENESYS_CLIENT_SECRET_BLUE: "bs",
 * }, "blue");
 * if (config.to !== "green" || config.configuredTargetId !== undefined) throw new Error();
 * ```
 */
export function readSetupEnv(
  env: Readonly<Record<string, string | undefined>>,
  from: string,
): SetupEnvConfig {
  const problems: EnvProblem[] = [];
  const value = (name: string): string | undefined => {
    const text = env[name];
    return text === undefined || text === "" ? undefined : text;
  };
  const urls = readUrls(value, problems);
  const label = from.trim().toLowerCase();
  if (!isLabel(label)) {
    problems.push({
      variable: "--from",
      problem: `"${from}" is not blue or green`,
    });
    throw new EnvConfigError(problems);
  }
  const to: RotationLabel = label === "blue" ? "green" : "blue";
  const admin = readAdmin(value, problems);
  const sourceClientId = requiredVariable(
    value,
    clientIdEnvVar(label),
    problems,
  );
  const sourceClientSecret = secretVariable(
    value,
    clientSecretEnvVar(label),
    problems,
    admin === undefined && value("GENESYS_ADMIN_CLIENT_ID") === undefined,
  );
  const configuredTargetId = value(clientIdEnvVar(to))?.trim() || undefined;
  const activeText = value(ACTIVE_ENV_VAR)?.trim().toLowerCase();
  const active = activeText !== undefined && isLabel(activeText)
    ? activeText
    : undefined;
  if (problems.length > 0 || !urls || sourceClientId === undefined) {
    throw new EnvConfigError(problems);
  }
  return Object.freeze({
    ...urls,
    from: label,
    to,
    sourceClientId,
    ...(sourceClientSecret ? { sourceClientSecret } : {}),
    ...(configuredTargetId ? { configuredTargetId } : {}),
    ...(active ? { active } : {}),
    ...(admin ? { admin } : {}),
  });
}
