/**
 * Okta's official management SDK, for the test that checks the Okta emulator
 * answers what a real org answers. Re-exported from here so only that test
 * installs it (see oidc_provider.ts); typed by okta_sdk.d.ts (why: there).
 *
 * @module
 */
// @ts-types="./okta_sdk.d.ts"
export * from "npm:@okta/okta-sdk-nodejs@8.1.0";
