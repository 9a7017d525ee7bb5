/**
 * Microsoft's official Graph client, for the test that checks the Entra ID
 * emulator answers what a real tenant answers. Re-exported from here so only
 * that test installs it (see oidc_provider.ts).
 *
 * @module
 */
export * from "npm:@microsoft/microsoft-graph-client@3.0.7";
