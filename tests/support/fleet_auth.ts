/**
 * Fleet tests reach the fleet of an auth instance: the fleet is the
 * instance's `shared` state, kept beside the instance here.
 *
 * @module
 */
import {
  createDualSecretAuth,
  type DualSecretAuth,
} from "../../src/dual_secret_auth.ts";
import type { DualSecretAuthOptions } from "../../src/config.ts";
import type { Fleet } from "../../src/fleet/link.ts";

const fleets = new WeakMap<DualSecretAuth, Fleet>();

/**
 * `createDualSecretAuth` with a fleet as its shared state, remembered for
 * {@linkcode fleetFor}.
 *
 * @param options The options, with the fleet as `shared`.
 * @returns The instance.
 */
export function createFleetAuth(
  options: DualSecretAuthOptions & { readonly shared: Fleet },
): DualSecretAuth {
  const auth = createDualSecretAuth(options);
  fleets.set(auth, options.shared);
  return auth;
}

/**
 * The fleet an instance was created with by {@linkcode createFleetAuth}.
 *
 * @param auth The instance.
 * @returns Its fleet.
 */
export function fleetFor(auth: DualSecretAuth): Fleet {
  const fleet = fleets.get(auth);
  if (fleet === undefined) throw new Error("not created by createFleetAuth");
  return fleet;
}
