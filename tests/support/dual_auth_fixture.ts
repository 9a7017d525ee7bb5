/**
 * The blue/green instance most core tests start from: a fake token endpoint
 * that accepts both credentials, a fake clock at 0, no jitter and every event
 * recorded. One fixture, so the core suites cannot drift apart.
 *
 * @module
 */
import type { DualSecretAuthOptions } from "../../src/config.ts";
import { createDualSecretAuth } from "../../src/dual_secret_auth.ts";
import type { AuthEvent } from "../../src/events.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { acceptingHandler, FakeTokenEndpoint } from "./fake_token_endpoint.ts";

/** Prefix of every access token the fixture's endpoint issues. */
export const TOKEN_PREFIX = "CANARY-TOKEN-";

/** The blue and green credentials of a fixture. */
export interface FixtureCredentials {
  readonly blue: { label: string; clientId: string; clientSecret: string };
  readonly green: { label: string; clientId: string; clientSecret: string };
}

/**
 * Blue and green credentials with the given secrets.
 *
 * @param blueSecret Blue's secret.
 * @param greenSecret Green's secret.
 * @returns The two credential inputs.
 */
export function fixtureCredentials(
  blueSecret: string,
  greenSecret: string,
): FixtureCredentials {
  return {
    blue: { label: "blue", clientId: "blue-id", clientSecret: blueSecret },
    green: { label: "green", clientId: "green-id", clientSecret: greenSecret },
  };
}

/**
 * Starts the fixture.
 *
 * @param credentials The blue and green credentials the endpoint accepts.
 * @param options Options that replace the fixture's own.
 * @returns The instance, its endpoint, clock and recorded events.
 */
export function startDualAuthFixture(
  { blue, green }: FixtureCredentials,
  options: Partial<DualSecretAuthOptions> = {},
) {
  const accepted = new Set([
    `${blue.clientId}:${blue.clientSecret}`,
    `${green.clientId}:${green.clientSecret}`,
  ]);
  const endpoint = new FakeTokenEndpoint({
    tokenHandler: acceptingHandler(accepted, {
      prefix: TOKEN_PREFIX,
      expiresIn: 600,
    }),
  });
  const clock = new FakeClock(0);
  const events: AuthEvent[] = [];
  const auth = createDualSecretAuth({
    credentials: [blue, green],
    tokenUrl: endpoint.tokenUrl,
    fetch: endpoint.fetch,
    clock,
    random: () => 0,
    refreshMarginMs: 60_000,
    onEvent: (event) => events.push(event),
    ...options,
  });
  const ofType = <T extends AuthEvent["type"]>(type: T) =>
    events.filter((e): e is Extract<AuthEvent, { type: T }> => e.type === type);
  const clientsAsked = () => endpoint.tokenRequests.map((r) => r.clientId);
  return { accepted, endpoint, clock, events, auth, ofType, clientsAsked };
}
