/**
 * Keycloak's official admin client, for the test that checks the Keycloak
 * emulator answers what a real server answers. Re-exported from here so only
 * that test installs it (see oidc_provider.ts).
 *
 * @module
 */
export { default } from "npm:@keycloak/keycloak-admin-client@26.7.4";
