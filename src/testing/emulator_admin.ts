/**
 * The emulator's OAuth client administration rules: reading an
 * `OAuthClientRequest` body (the create and update calls) the way Genesys
 * validates it, and the role-subset rule (a caller may grant only the
 * role-division pairs it holds itself).
 *
 * @module
 */
import type {
  EmulatorClientState,
  EmulatorRole,
  EmulatorRoleDivision,
} from "./emulator_types.ts";
import { DEFAULT_TOKEN_LIFETIME_SECONDS } from "./emulator_types.ts";

/** Genesys's bounds on `accessTokenValiditySeconds`. */
export const MIN_API_TOKEN_LIFETIME_SECONDS = 300;
export const MAX_API_TOKEN_LIFETIME_SECONDS = 172_800;

/** The code of a refused grant: the caller does not hold a role it grants. */
export const ROLE_NOT_HELD_CODE = "oauth.client.role.not.held";

const STATES: readonly EmulatorClientState[] = [
  "active",
  "inactive",
  "disabled",
];
const OTHER_GRANT_TYPES = [
  "CODE",
  "TOKEN",
  "SAML2BEARER",
  "PASSWORD",
  "CODE-PKCE",
];

/** A valid `OAuthClientRequest`, defaults applied. */
export interface OAuthClientRequestBody {
  readonly name: string;
  readonly description?: string;
  readonly lifetimeSeconds: number;
  readonly roleDivisions: readonly EmulatorRoleDivision[];
  readonly state: EmulatorClientState;
}

/**
 * Checks a create or update body; the answer is the request, or the message
 * of a 400 `bad.request`. The deprecated `roleIds` is still accepted, as
 * Genesys accepts it: each role is granted in the home division.
 */
export function readClientRequest(
  body: unknown,
  roles: ReadonlyMap<string, EmulatorRole>,
  homeDivisionId: string,
): OAuthClientRequestBody | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "The request body must be a JSON object (OAuthClientRequest).";
  }
  const fields = body as Record<string, unknown>;
  const { name, description, authorizedGrantType } = fields;
  if (typeof name !== "string" || name.trim() === "") {
    return "name is required.";
  }
  if (description !== undefined && typeof description !== "string") {
    return "description must be a string.";
  }
  if (authorizedGrantType !== "CLIENT-CREDENTIALS") {
    return typeof authorizedGrantType === "string" &&
        OTHER_GRANT_TYPES.includes(authorizedGrantType)
      ? `The emulator implements only the CLIENT-CREDENTIALS grant, not ${authorizedGrantType}.`
      : "authorizedGrantType is required and must be a valid grant type such as CLIENT-CREDENTIALS.";
  }
  const lifetime = fields.accessTokenValiditySeconds ??
    DEFAULT_TOKEN_LIFETIME_SECONDS;
  if (
    typeof lifetime !== "number" || !Number.isInteger(lifetime) ||
    lifetime < MIN_API_TOKEN_LIFETIME_SECONDS ||
    lifetime > MAX_API_TOKEN_LIFETIME_SECONDS
  ) {
    return `accessTokenValiditySeconds must be an integer from ${MIN_API_TOKEN_LIFETIME_SECONDS} to ${MAX_API_TOKEN_LIFETIME_SECONDS}.`;
  }
  const state = fields.state ?? "active";
  if (!STATES.includes(state as EmulatorClientState)) {
    return "state must be one of active, inactive, disabled.";
  }
  const roleDivisions = readRoleDivisions(fields.roleDivisions ?? [], roles);
  if (typeof roleDivisions === "string") return roleDivisions;
  const fromRoleIds = readRoleIds(fields.roleIds, roles);
  if (typeof fromRoleIds === "string") return fromRoleIds;
  // A GET answer written back carries both fields: a role that roleDivisions
  // already grants is not granted again in the home division.
  for (const roleId of fromRoleIds) {
    if (!roleDivisions.some((pair) => pair.roleId === roleId)) {
      roleDivisions.push({ roleId, divisionId: homeDivisionId });
    }
  }
  return {
    name,
    ...(description === undefined ? {} : { description }),
    lifetimeSeconds: lifetime,
    roleDivisions,
    state: state as EmulatorClientState,
  };
}

function readRoleIds(
  value: unknown,
  roles: ReadonlyMap<string, EmulatorRole>,
): string[] | string {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    return "roleIds must be an array of role ids (deprecated: prefer roleDivisions).";
  }
  const ids: string[] = [];
  for (const roleId of value) {
    if (typeof roleId !== "string" || roleId === "") {
      return "Each roleIds entry must be a role id.";
    }
    if (!roles.has(roleId)) return `Role ${roleId} does not exist.`;
    if (!ids.includes(roleId)) ids.push(roleId);
  }
  return ids;
}

function readRoleDivisions(
  value: unknown,
  roles: ReadonlyMap<string, EmulatorRole>,
): EmulatorRoleDivision[] | string {
  if (!Array.isArray(value)) {
    return "roleDivisions must be an array of { roleId, divisionId }.";
  }
  const pairs: EmulatorRoleDivision[] = [];
  for (const entry of value) {
    const { roleId, divisionId } = (entry ?? {}) as Record<string, unknown>;
    if (
      typeof roleId !== "string" || roleId === "" ||
      typeof divisionId !== "string" || divisionId === ""
    ) {
      return "Each roleDivisions entry needs a roleId and a divisionId.";
    }
    if (!roles.has(roleId)) return `Role ${roleId} does not exist.`;
    if (
      !pairs.some((p) => p.roleId === roleId && p.divisionId === divisionId)
    ) {
      pairs.push({ roleId, divisionId });
    }
  }
  return pairs;
}

/** Whether a held pair covers a wanted one: same role, same division or `*`. */
export function covers(
  held: EmulatorRoleDivision,
  wanted: EmulatorRoleDivision,
): boolean {
  return held.roleId === wanted.roleId &&
    (held.divisionId === "*" || held.divisionId === wanted.divisionId);
}

/** The pairs of `wanted` that no pair of `held` covers. */
export function notHeld(
  held: readonly EmulatorRoleDivision[],
  wanted: readonly EmulatorRoleDivision[],
): EmulatorRoleDivision[] {
  return wanted.filter((pair) => !held.some((h) => covers(h, pair)));
}

/** The message of a refused grant, naming each role and division. */
export function roleNotHeldMessage(
  missing: readonly EmulatorRoleDivision[],
  roles: ReadonlyMap<string, EmulatorRole>,
): string {
  const list = missing.map((pair) => {
    const name = roles.get(pair.roleId)?.name ?? pair.roleId;
    const division = pair.divisionId === "*"
      ? "all divisions"
      : `division ${pair.divisionId}`;
    return `role ${pair.roleId} (${name}) in ${division}`;
  }).join(", ");
  return `You may only grant roles you hold yourself; the caller does not hold: ${list}.`;
}
