/**
 * Each provider's token endpoint, as `identity-provider-facts.md` describes
 * its answers, played by the fake token endpoint: the library gets a token
 * (with the parameters and client authentication the provider needs), fails
 * over on the provider's rejection, and retries its throttling without
 * failing over.
 */
import assert from "node:assert/strict";
import {
  type AuthEvent,
  createDualSecretAuth,
  ErrorCode,
  RateLimitedError,
  type TokenAuthMethod,
} from "../../mod.ts";
import {
  auth0,
  cognito,
  entra,
  keycloak,
  okta,
  type ProviderPreset,
} from "../../providers.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import {
  driveClock,
  FakeTokenEndpoint,
  type Handler,
  jsonResponse,
  type RecordedTokenRequest,
} from "../support/fake_token_endpoint.ts";

/** One provider's token endpoint, as the facts file describes it. */
interface ProviderCase {
  readonly name: string;
  readonly preset: ProviderPreset;
  /** How the clients are registered. */
  readonly authMethod: TokenAuthMethod;
  /** Two secrets of one client (true) or twin clients (false). */
  readonly oneClient: boolean;
  /** Answers a request that is not wrong in the provider's own ways. */
  readonly success: (request: RecordedTokenRequest, n: number) => Response;
  /** What the provider checks before the secret; a response refuses. */
  readonly precheck?: (request: RecordedTokenRequest) => Response | undefined;
  /** Its answers to a wrong or expired secret. */
  readonly rejections: Record<string, () => Response>;
  /** Its throttling answers. */
  readonly throttles: Record<string, () => Response>;
}

const CASES: readonly ProviderCase[] = [
  {
    name: "Okta",
    preset: okta({ domain: "dev-1.okta.com", scope: "orders.read" }),
    authMethod: "client_secret_basic",
    oneClient: true,
    precheck: (request) => {
      if (
        request.authMethod === "client_secret_basic" &&
        request.form.has("client_secret")
      ) {
        return okta400(
          "invalid_request",
          "Cannot supply multiple client credentials.",
        );
      }
      if (!request.form.get("scope")) {
        return okta400("invalid_scope", "No scopes were requested.");
      }
    },
    success: (request, n) =>
      jsonResponse(200, {
        token_type: "Bearer",
        expires_in: 3600,
        access_token: `okta-${n}`,
        scope: request.form.get("scope"),
      }),
    rejections: {
      "401 invalid_client": () =>
        jsonResponse(401, {
          error: "invalid_client",
          error_description:
            "The client secret supplied for a confidential client is invalid.",
        }),
    },
    throttles: {
      "429 E0000047 with X-Rate-Limit headers": () =>
        jsonResponse(429, {
          errorCode: "E0000047",
          errorSummary:
            "API call exceeded rate limit due to too many requests.",
          errorLink: "E0000047",
          errorId: "oae1",
          errorCauses: [],
        }, {
          "x-rate-limit-limit": "600",
          "x-rate-limit-remaining": "0",
          "x-rate-limit-reset": "1767225660",
        }),
    },
  },
  {
    name: "Entra ID",
    preset: entra({
      tenantId: "contoso.onmicrosoft.com",
      resource: "api://orders",
    }),
    authMethod: "client_secret_post",
    oneClient: true,
    precheck: (request) =>
      request.form.get("scope") === "api://orders/.default"
        ? undefined
        : entraError(
          400,
          "invalid_scope",
          70011,
          "The provided value for the input parameter 'scope' is not valid.",
        ),
    success: (_, n) =>
      jsonResponse(200, {
        token_type: "Bearer",
        expires_in: 3599,
        ext_expires_in: 3599,
        access_token: `entra-${n}`,
      }),
    // The facts leave 400 or 401 open for 7000215: both are rejections.
    rejections: {
      "401 AADSTS7000215 (invalid secret)": () =>
        entraError(
          401,
          "invalid_client",
          7000215,
          "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        ),
      "400 AADSTS7000215 (invalid secret)": () =>
        entraError(
          400,
          "invalid_client",
          7000215,
          "Invalid client secret provided.",
        ),
      "401 AADSTS7000222 (expired secret)": () =>
        entraError(
          401,
          "invalid_client",
          7000222,
          "The provided client secret keys for app '1' are expired.",
        ),
      // Read from the description even beside another OAuth code.
      "400 AADSTS7000222 beside invalid_request": () =>
        entraError(
          400,
          "invalid_request",
          7000222,
          "The provided client secret keys for app '1' are expired.",
        ),
    },
    // The facts do not give AADSTS90055's status: each is throttling.
    throttles: {
      "400 AADSTS90055": () =>
        entraError(
          400,
          "invalid_request",
          90055,
          "TenantThrottlingError: There are too many incoming requests.",
        ),
      "429 AADSTS90055": () =>
        entraError(
          429,
          "temporarily_unavailable",
          90055,
          "TenantThrottlingError: There are too many incoming requests.",
        ),
      "503 AADSTS90055": () =>
        entraError(
          503,
          "temporarily_unavailable",
          90055,
          "TenantThrottlingError: There are too many incoming requests.",
        ),
    },
  },
  {
    name: "Keycloak",
    preset: keycloak({ baseUrl: "https://sso.example.com", realm: "prod" }),
    authMethod: "client_secret_post",
    oneClient: true,
    success: (_, n) =>
      jsonResponse(200, {
        access_token: `kc-${n}`,
        expires_in: 300,
        refresh_expires_in: 0,
        token_type: "Bearer",
        "not-before-policy": 0,
        scope: "profile email",
      }),
    rejections: {
      "401 unauthorized_client": () =>
        jsonResponse(401, {
          error: "unauthorized_client",
          error_description: "Invalid client or Invalid client credentials",
        }),
    },
    // Keycloak has no built-in rate limit; a proxy's 429 in front of it.
    throttles: { "429 from a proxy": () => new Response("", { status: 429 }) },
  },
  {
    name: "Cognito",
    preset: cognito({ userPoolDomain: "orders", region: "eu-west-1" }),
    authMethod: "client_secret_basic",
    oneClient: true,
    precheck: (request) =>
      request.authMethod === "client_secret_basic"
        ? undefined
        : jsonResponse(400, { error: "invalid_client" }),
    success: (_, n) =>
      jsonResponse(200, {
        access_token: `cognito-${n}`,
        token_type: "Bearer",
        expires_in: 3600,
      }),
    rejections: {
      "400 invalid_client without a description": () =>
        jsonResponse(400, { error: "invalid_client" }),
    },
    throttles: {
      "429": () => new Response("", { status: 429 }),
    },
  },
  {
    name: "Auth0",
    preset: auth0({
      domain: "tenant.eu.auth0.com",
      audience: "https://orders",
    }),
    authMethod: "client_secret_post",
    oneClient: false,
    precheck: (request) =>
      // The facts say audience is required, not how a request without one
      // is answered; this answer is the test's choice.
      request.form.get("audience") === "https://orders"
        ? undefined
        : jsonResponse(403, {
          error: "access_denied",
          error_description: "No audience parameter was provided",
        }),
    success: (_, n) =>
      jsonResponse(200, {
        access_token: `auth0-${n}`,
        token_type: "Bearer",
        expires_in: 86400,
      }),
    rejections: {
      "401 access_denied": () =>
        jsonResponse(401, {
          error: "access_denied",
          error_description: "Unauthorized",
        }),
    },
    throttles: {
      "429 with x-ratelimit headers": () =>
        jsonResponse(429, {
          statusCode: 429,
          error: "Too Many Requests",
          message: "Global limit has been reached",
        }, {
          "x-ratelimit-limit": "10",
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": "1767225660",
        }),
    },
  },
];

function okta400(error: string, description: string): Response {
  return jsonResponse(400, { error, error_description: description });
}

function entraError(
  status: number,
  error: string,
  code: number,
  text: string,
): Response {
  return jsonResponse(status, {
    error,
    error_description:
      `AADSTS${code}: ${text} Trace ID: t Correlation ID: c Timestamp: 2026-01-01 00:00:00Z`,
    error_codes: [code],
    timestamp: "2026-01-01 00:00:00Z",
    trace_id: "t",
    correlation_id: "c",
  });
}

/** The credentials of a case: blue and green, one client or twins. */
function credentials(c: ProviderCase) {
  return ["blue", "green"].map((label) => ({
    label,
    clientId: c.oneClient ? "client" : `${label}-id`,
    clientSecret: `${label}-secret`,
    authMethod: c.authMethod,
  }));
}

/** A fake of the provider's endpoint that accepts the `accepted` pairs. */
function setUp(c: ProviderCase, accepted: Set<string>) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  let issued = 0;
  const handler: Handler<RecordedTokenRequest> = (request) => {
    const refusal = c.precheck?.(request);
    if (refusal) return refusal;
    if (!accepted.has(`${request.clientId}:${request.clientSecret}`)) {
      return Object.values(c.rejections)[0]();
    }
    return c.success(request, ++issued);
  };
  const endpoint = new FakeTokenEndpoint({
    tokenUrl: c.preset.tokenUrl,
    tokenHandler: handler,
  });
  const events: AuthEvent[] = [];
  const auth = createDualSecretAuth({
    ...c.preset,
    credentials: credentials(c),
    fetch: endpoint.fetch,
    clock,
    random: () => 0.5,
    retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 },
    onEvent: (event) => events.push(event),
  });
  return { clock, endpoint, events, auth };
}

const pair = (c: ProviderCase, label: string) =>
  `${c.oneClient ? "client" : `${label}-id`}:${label}-secret`;

for (const c of CASES) {
  Deno.test(`${c.name}'s token endpoint`, async (t) => {
    await t.step(
      `a token, sent as ${c.authMethod} with the preset's parameters`,
      async () => {
        const { clock, endpoint, auth } = setUp(
          c,
          new Set([pair(c, "blue"), pair(c, "green")]),
        );
        await using _ = auth;
        const token = await driveClock(clock, auth.getAccessToken());
        assert.match(token, /-1$/);
        const [request] = endpoint.tokenRequests;
        assert.equal(endpoint.tokenRequests.length, 1);
        assert.equal(request.url, c.preset.tokenUrl);
        assert.equal(request.authMethod, c.authMethod);
        assert.equal(
          request.headers.has("authorization"),
          c.authMethod === "client_secret_basic",
        );
        assert.equal(request.form.get("grant_type"), "client_credentials");
        const scope = c.preset.scope;
        assert.equal(
          request.form.get("scope"),
          scope === undefined ? null : [scope].flat().join(" "),
        );
        for (
          const [name, value] of Object.entries(c.preset.tokenParams ?? {})
        ) {
          assert.equal(request.form.get(name), value);
        }
        // A post request never carries the secret twice, a Basic one never in the form.
        assert.equal(
          request.form.has("client_secret"),
          c.authMethod === "client_secret_post",
        );
      },
    );

    for (const [name, rejection] of Object.entries(c.rejections)) {
      await t.step(`${name}: rejected, fails over to green`, async () => {
        const { clock, endpoint, events, auth } = setUp(
          c,
          new Set([pair(c, "green")]),
        );
        await using _ = auth;
        endpoint.queueToken(rejection());
        const token = await driveClock(clock, auth.getAccessToken());
        assert.match(token, /-1$/);
        assert.equal(auth.status().active, "green");
        const failovers = events.filter((e) => e.type === "failover");
        assert.equal(failovers.length, 1);
        assert.equal(failovers[0].from, "blue");
        assert.equal(failovers[0].to, "green");
        assert.equal(failovers[0].error.code, ErrorCode.CREDENTIAL_REJECTED);
        // A rejection is not retried: one request for blue, one for green.
        assert.deepEqual(
          endpoint.tokenRequests.map((r) => r.clientSecret),
          ["blue-secret", "green-secret"],
        );
        assert.equal(events.filter((e) => e.type === "retry").length, 0);
      });
    }

    for (const [name, throttle] of Object.entries(c.throttles)) {
      await t.step(`${name}: retried, never failed over`, async () => {
        const { clock, endpoint, events, auth } = setUp(
          c,
          new Set([pair(c, "blue"), pair(c, "green")]),
        );
        await using _ = auth;
        endpoint.queueToken(throttle(), throttle());
        const token = await driveClock(clock, auth.getAccessToken());
        assert.match(token, /-1$/);
        assert.equal(auth.status().active, "blue");
        assert.deepEqual(
          endpoint.tokenRequests.map((r) => r.clientSecret),
          ["blue-secret", "blue-secret", "blue-secret"],
        );
        const retries = events.filter((e) => e.type === "retry");
        assert.equal(retries.length, 2);
        for (const retry of retries) {
          assert.equal(retry.error.code, ErrorCode.RATE_LIMITED);
        }
        assert.equal(events.filter((e) => e.type === "failover").length, 0);

        // Throttled past the retry budget: RATE_LIMITED, still no failover.
        auth.invalidate();
        endpoint.queueToken(throttle(), throttle(), throttle());
        const error = await driveClock(clock, auth.getAccessToken()).catch((
          e,
        ) => e);
        assert.ok(error instanceof RateLimitedError, String(error));
        assert.equal(error.code, ErrorCode.RATE_LIMITED);
        assert.equal(auth.status().active, "blue");
        assert.equal(events.filter((e) => e.type === "failover").length, 0);
      });
    }
  });
}
