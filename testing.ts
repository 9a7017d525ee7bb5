/**
 * Test helpers shipped with the package: a local Genesys Cloud emulator (token
 * endpoint, Platform API, OAuth client admin API, fault injection) and a fake
 * clock.
 *
 * @example
 * ```ts
 * import { FakeClock, startGenesysEmulator } from "./testing.ts";
 * const clock = new FakeClock();
 * await using emulator = startGenesysEmulator({
 *   clock,
 *   clients: [{ clientId: "id", secret: "secret", tokenLifetimeSeconds: 300 }],
 * });
 * if (!emulator.tokenUrl.endsWith("/oauth/token")) throw new Error();
 * ```
 *
 * @module
 */
export * from "./src/testing/emulator.ts";
export { FakeClock } from "./src/testing/fake_clock.ts";
