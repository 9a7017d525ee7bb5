/**
 * AWS's Cognito user-pool SDK, to check that the Cognito emulator answers
 * what a real user pool answers. Re-exported from here, not mapped in
 * deno.json's imports, so only the test that imports it installs it.
 *
 * @module
 */
export * from "npm:@aws-sdk/client-cognito-identity-provider@3.1178.0";
