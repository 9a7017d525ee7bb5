/**
 * Okta's official management SDK, for the test that checks the Okta emulator
 * answers what a real org answers. Re-exported from here so only that test
 * installs it (see oidc_provider.ts); typed by okta_sdk.d.ts (why: there).
 *
 * @module
 */
// The SDK pulls in @types/node 15 (through njwt), and Deno types every
// `node:` import of the whole check with the newest @types/node it resolved:
// naming a current one keeps tests/ type-checked against today's Node types.
// deno-lint-ignore no-import-prefix -- pinned here, beside the SDK that needs it, like the SDK itself
import type {} from "npm:@types/node@^24";
// @ts-types="./okta_sdk.d.ts"
export * from "npm:@okta/okta-sdk-nodejs@8.1.0";
