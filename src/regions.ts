/**
 * Genesys Cloud regions: each region domain has a login host (OAuth) and an
 * API host (Platform API).
 *
 * @module
 */
import { ConfigError } from "./errors.ts";

/** Every Genesys Cloud region domain, with its AWS region where it is known. */
export const GENESYS_REGIONS: Readonly<Record<string, string>> = Object.freeze({
  "mypurecloud.com": "us-east-1",
  "mypurecloud.ie": "eu-west-1",
  "mypurecloud.com.au": "ap-southeast-2",
  "mypurecloud.jp": "ap-northeast-1",
  "mypurecloud.de": "eu-central-1",
  "usw2.pure.cloud": "us-west-2",
  "cac1.pure.cloud": "ca-central-1",
  "apne2.pure.cloud": "ap-northeast-2",
  "euw2.pure.cloud": "eu-west-2",
  "aps1.pure.cloud": "ap-south-1",
  "use2.us-gov-pure.cloud": "us-east-2 (FedRAMP)",
  "sae1.pure.cloud": "sa-east-1",
  "mec1.pure.cloud": "me-central-1",
  "apne3.pure.cloud": "ap-northeast-3",
  "euc2.pure.cloud": "eu-central-2",
  "mxc1.pure.cloud": "mx-central-1",
  "apse1.pure.cloud": "ap-southeast-1",
  "edee1.eusc-pure.cloud": "eusc-de-east-1",
});

/** The hosts of one Genesys Cloud region. */
export interface GenesysRegion {
  /** The region domain, such as `mypurecloud.ie`. */
  readonly domain: string;
  /** The OAuth token endpoint: `https://login.<domain>/oauth/token`. */
  readonly tokenUrl: string;
  /** The Platform API base URL: `https://api.<domain>`. */
  readonly apiUrl: string;
  /** The login host name. */
  readonly loginHost: string;
  /** The API host name. */
  readonly apiHost: string;
}

/**
 * Resolves a Genesys Cloud region domain to its hosts. Accepts the bare domain
 * (`mypurecloud.de`) and, for convenience, a URL or host such as
 * `https://api.mypurecloud.de` or `login.mypurecloud.de`.
 *
 * @param environment The region domain.
 * @returns The region's hosts.
 * @throws {ConfigError} When the domain is not a Genesys Cloud region; the
 *   message lists the valid ones.
 *
 * @example
 * ```ts
 * import { resolveRegion } from "@rotating/dual-secret-auth";
 * const region = resolveRegion("mypurecloud.ie");
 * if (region.tokenUrl !== "https://login.mypurecloud.ie/oauth/token") throw new Error();
 * ```
 */
export function resolveRegion(environment: string): GenesysRegion {
  if (typeof environment !== "string" || environment.includes("@")) {
    // User info in a URL may hold a password: refuse it without quoting it.
    throw new ConfigError(
      "environment",
      "must be a bare region domain such as mypurecloud.com, without user info",
    );
  }
  const domain = normaliseDomain(environment);
  if (!Object.hasOwn(GENESYS_REGIONS, domain)) {
    throw new ConfigError(
      "environment",
      `"${domain}" is not a Genesys Cloud region domain. Use one of: ${
        Object.keys(GENESYS_REGIONS).join(", ")
      }; or pass tokenUrl for another OAuth server.`,
    );
  }
  return Object.freeze({
    domain,
    tokenUrl: `https://login.${domain}/oauth/token`,
    apiUrl: `https://api.${domain}`,
    loginHost: `login.${domain}`,
    apiHost: `api.${domain}`,
  });
}

function normaliseDomain(environment: string): string {
  const host = environment.trim().toLowerCase()
    .replace(/^https?:\/\//, "")
    .replace(/[/:].*$/, "");
  return host.replace(/^(login|api|apps)\./, "");
}
