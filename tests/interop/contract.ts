/**
 * The core's interop contract, one table of steps run against any
 * client-credentials token endpoint: a token with the scope granted, failover
 * on a changed secret, that rejection as a CredentialRejectedError, rotating
 * back, and invalid_scope / invalid_request as TokenRequestErrors. Each
 * endpoint states where its shapes differ (auth method, scope, extra token
 * parameters, its rejection answer) and why it skips a step.
 */
import assert from "node:assert/strict";
import {
  type AuthEvent,
  createDualSecretAuth,
  type CredentialInput,
  CredentialRejectedError,
  type DualSecretAuth,
  type DualSecretAuthOptions,
  RotationFailedError,
  TokenRequestError,
} from "../../mod.ts";

/** One token request and its answer, as they crossed the wire. */
export interface Exchange {
  readonly authorization: string;
  readonly form: URLSearchParams;
  readonly status: number;
  readonly wwwAuthenticate: string | null;
  readonly body: Record<string, unknown>;
}

/**
 * A real `fetch` that records each exchange; `rewriteForm` may change the
 * form before it is sent (to provoke errors the library never causes).
 */
export function recordingFetch(
  exchanges: Exchange[],
  rewriteForm?: (form: URLSearchParams) => void,
): typeof fetch {
  return async (input, init) => {
    const form = new URLSearchParams(String(init?.body ?? ""));
    rewriteForm?.(form);
    const response = await fetch(input, { ...init, body: form });
    const text = await response.clone().text();
    exchanges.push({
      authorization: new Headers(init?.headers).get("authorization") ?? "",
      form,
      status: response.status,
      wwwAuthenticate: response.headers.get("www-authenticate"),
      body: JSON.parse(text),
    });
    return response;
  };
}

/** The client id an exchange presented, in the Basic header or the form. */
export function clientIdOf(exchange: Exchange): string {
  if (exchange.authorization === "") {
    return exchange.form.get("client_id") ?? "";
  }
  const decoded = atob(exchange.authorization.replace(/^Basic /, ""));
  return decodeURIComponent(decoded.slice(0, decoded.indexOf(":")));
}

/** An error answer an endpoint gives. */
export interface ErrorAnswer {
  readonly status: number;
  readonly error: string;
}

/** A token endpoint with two clients, blue and green, and its shapes. */
export interface ContractEndpoint {
  readonly tokenUrl: string;
  readonly blue: { readonly clientId: string; readonly secret: string };
  readonly green: { readonly clientId: string; readonly secret: string };
  /** @default {"client_secret_basic"} */
  readonly authMethod?: "client_secret_basic" | "client_secret_post";
  /** The scope to request (as a provider preset gives it). */
  readonly scope?: string | readonly string[];
  /** Further token parameters (as a provider preset gives them). */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /** The `scope` the token answer echoes; undefined when it echoes none. */
  readonly grantedScope?: string;
  /** The `expires_in` the endpoint gives the clients' tokens. */
  readonly ttlSeconds: number;
  /** Changes blue's secret on the server, with its admin hook. */
  setBlueSecret(secret: string): void | Promise<void>;
  /** How a wrong secret is answered; `wwwAuthenticate` when it sends one. */
  readonly rejection: ErrorAnswer & { readonly wwwAuthenticate?: RegExp };
  /** A scope the endpoint refuses with invalid_scope, or why it cannot. */
  readonly invalidScope:
    | (ErrorAnswer & { readonly scope: string })
    | { readonly skip: string };
  /** How a request without grant_type is answered, or why it cannot be. */
  readonly invalidRequest: ErrorAnswer | { readonly skip: string };
}

/** Blue (with the secret given) and green, as the endpoint takes them. */
function credentialsOf(
  endpoint: ContractEndpoint,
  blueSecret: string,
): CredentialInput[] {
  const authMethod = endpoint.authMethod ?? "client_secret_basic";
  return [
    {
      label: "blue",
      clientId: endpoint.blue.clientId,
      clientSecret: blueSecret,
      authMethod,
    },
    {
      label: "green",
      clientId: endpoint.green.clientId,
      clientSecret: endpoint.green.secret,
      authMethod,
    },
  ];
}

function createAuth(
  endpoint: ContractEndpoint,
  blueSecret: string,
  exchanges: Exchange[],
  events: AuthEvent[],
  options: Partial<DualSecretAuthOptions> = {},
): DualSecretAuth {
  return createDualSecretAuth({
    credentials: credentialsOf(endpoint, blueSecret),
    tokenUrl: endpoint.tokenUrl,
    ...(endpoint.scope === undefined ? {} : { scope: endpoint.scope }),
    ...(endpoint.tokenParams === undefined
      ? {}
      : { tokenParams: endpoint.tokenParams }),
    fetch: recordingFetch(exchanges),
    onEvent: (event) => events.push(event),
    retry: { maxAttempts: 1 },
    ...options,
  });
}

function scopeText(scope: string | readonly string[] | undefined) {
  return typeof scope === "string" ? scope : scope?.join(" ");
}

/**
 * Runs the contract's steps on one endpoint, in order (each builds on the
 * last); a step the endpoint cannot show is ignored with the reason in its
 * name.
 *
 * @param t The test context.
 * @param endpoint The endpoint and its shapes.
 */
export async function runContract(
  t: Deno.TestContext,
  endpoint: ContractEndpoint,
): Promise<void> {
  const exchanges: Exchange[] = [];
  const events: AuthEvent[] = [];
  await using auth = createAuth(
    endpoint,
    endpoint.blue.secret,
    exchanges,
    events,
  );
  const basic = (endpoint.authMethod ?? "client_secret_basic") ===
    "client_secret_basic";
  const blueSecret2 = `${endpoint.blue.secret}-2`;
  let blueToken = "";
  const { rejection } = endpoint;

  await t.step(
    `gets a token with ${
      basic ? "Basic auth" : "the credentials in the form"
    }; the scope is granted`,
    async () => {
      const before = Date.now();
      blueToken = await auth.getAccessToken();
      assert.equal(exchanges.length, 1);
      const [exchange] = exchanges;
      if (basic) {
        assert.match(exchange.authorization, /^Basic [A-Za-z0-9+/]+=*$/);
        assert.equal(exchange.form.has("client_secret"), false);
      } else {
        assert.equal(exchange.authorization, "");
        assert.equal(exchange.form.get("client_secret"), endpoint.blue.secret);
      }
      assert.equal(clientIdOf(exchange), endpoint.blue.clientId);
      assert.equal(exchange.form.get("grant_type"), "client_credentials");
      assert.equal(
        exchange.form.get("scope") ?? undefined,
        scopeText(endpoint.scope),
      );
      for (const [name, value] of Object.entries(endpoint.tokenParams ?? {})) {
        assert.equal(exchange.form.get(name), value);
      }
      assert.equal(exchange.status, 200);
      assert.equal(exchange.body.access_token, blueToken);
      assert.equal(exchange.body.scope, endpoint.grantedScope);
      assert.equal(exchange.body.expires_in, endpoint.ttlSeconds);
      const blue = auth.status().credentials.find((c) => c.label === "blue");
      assert.equal(blue?.state, "ready");
      assert.ok(blue.expiresAt! >= before + endpoint.ttlSeconds * 1000);
      assert.ok(blue.expiresAt! <= Date.now() + endpoint.ttlSeconds * 1000);
    },
  );

  await t.step(
    `a changed secret (${rejection.status} ${rejection.error}) fails over to the standby, with a failover event`,
    async () => {
      await endpoint.setBlueSecret(blueSecret2);
      auth.invalidate(); // As if the cached token had run out.
      const token = await auth.getAccessToken();
      assert.notEqual(token, blueToken);
      assert.equal(auth.status().active, "green");
      const [rejected, served] = exchanges.slice(1);
      assert.equal(clientIdOf(rejected), endpoint.blue.clientId);
      assert.equal(rejected.status, rejection.status);
      assert.equal(rejected.body.error, rejection.error);
      if (rejection.wwwAuthenticate) {
        assert.match(rejected.wwwAuthenticate ?? "", rejection.wwwAuthenticate);
      }
      assert.equal(clientIdOf(served), endpoint.green.clientId);
      assert.equal(served.body.access_token, token);
      const failovers = events.filter((e) => e.type === "failover");
      assert.equal(failovers.length, 1);
      const [failover] = failovers;
      assert.ok(failover.type === "failover");
      assert.equal(failover.from, "blue");
      assert.equal(failover.to, "green");
      assert.equal(failover.error.code, "CREDENTIAL_REJECTED");
      assert.equal(failover.error.oauthError, rejection.error);
      assert.equal(failover.error.status, rejection.status);
    },
  );

  await t.step(
    "that rejection is a CredentialRejectedError when rotating to it",
    async () => {
      const error = await auth.rotate({ to: "blue" }).catch((e) => e);
      assert.ok(error instanceof RotationFailedError, String(error));
      assert.ok(error.cause instanceof CredentialRejectedError);
      assert.equal(error.cause.label, "blue");
      assert.equal(error.cause.status, rejection.status);
      assert.equal(error.cause.oauthError, rejection.error);
      assert.equal(auth.status().active, "green");
      assert.equal(exchanges.at(-1)?.status, rejection.status);
    },
  );

  await t.step("the fixed secret verifies and rotates back", async () => {
    auth.setCredentials(credentialsOf(endpoint, blueSecret2));
    const result = await auth.rotate({ to: "blue" });
    assert.deepEqual([result.from, result.to], ["green", "blue"]);
    assert.equal(exchanges.at(-1)?.status, 200);
    assert.equal(clientIdOf(exchanges.at(-1)!), endpoint.blue.clientId);
    assert.equal(
      await auth.getAccessToken(),
      exchanges.at(-1)?.body.access_token,
    );
  });

  const { invalidScope, invalidRequest } = endpoint;
  await t.step({
    name: "skip" in invalidScope
      ? `invalid_scope: skipped, ${invalidScope.skip}`
      : "invalid_scope is a TokenRequestError and causes no failover",
    ignore: "skip" in invalidScope,
    fn: async () => {
      assert.ok(!("skip" in invalidScope));
      const scopeExchanges: Exchange[] = [];
      const scopeEvents: AuthEvent[] = [];
      await using scoped = createAuth(
        endpoint,
        blueSecret2,
        scopeExchanges,
        scopeEvents,
        {
          scope: invalidScope.scope,
          retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
        },
      );
      const error = await scoped.getAccessToken().catch((e) => e);
      assert.ok(error instanceof TokenRequestError, String(error));
      assert.equal(error.code, "TOKEN_REQUEST_FAILED");
      assert.equal(error.status, invalidScope.status);
      assert.equal(error.oauthError, invalidScope.error);
      assert.equal(scopeExchanges.length, 1, "retried or tried the standby");
      assert.equal(scopeExchanges[0].body.error, invalidScope.error);
      assert.equal(scoped.status().active, "blue");
      assert.equal(scopeEvents.filter((e) => e.type === "failover").length, 0);
    },
  });

  await t.step({
    name: "skip" in invalidRequest
      ? `invalid_request: skipped, ${invalidRequest.skip}`
      : "invalid_request (no grant_type) is a TokenRequestError",
    ignore: "skip" in invalidRequest,
    fn: async () => {
      assert.ok(!("skip" in invalidRequest));
      const badExchanges: Exchange[] = [];
      const badEvents: AuthEvent[] = [];
      await using broken = createAuth(
        endpoint,
        blueSecret2,
        badExchanges,
        badEvents,
        {
          fetch: recordingFetch(
            badExchanges,
            (form) => form.delete("grant_type"),
          ),
        },
      );
      const error = await broken.getAccessToken().catch((e) => e);
      assert.ok(error instanceof TokenRequestError, String(error));
      assert.equal(error.status, invalidRequest.status);
      assert.equal(error.oauthError, invalidRequest.error);
      assert.equal(badExchanges.length, 1);
      assert.equal(badExchanges[0].body.error, invalidRequest.error);
      assert.equal(broken.status().active, "blue");
      assert.equal(badEvents.filter((e) => e.type === "failover").length, 0);
    },
  });
}
