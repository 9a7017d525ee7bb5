/**
 * Proves the oidc-provider harness with raw `fetch` only, and pins the exact
 * wire responses a client-credentials client sees from a real, independently
 * written OAuth 2.0 server (oidc-provider 9.x). Sanitizers are ON (defaults).
 */
import assert from "node:assert/strict";
import { startOidcServer } from "./oidc_server.ts";

const CLIENT_ID = "svc:billing"; // ':' must be form-urlencoded in Basic auth
const SECRET = "s3cr%t with spaces/+&=";
const NEW_SECRET = "rotated-s3cret";

function basic(id: string, secret: string): string {
  return `Basic ${
    btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)
  }`;
}

interface Observed {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function tokenRequest(
  url: string,
  body: string,
  authorization?: string,
): Promise<Observed> {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text(); // always consume: no leaked bodies
  return { status: res.status, headers: res.headers, body: JSON.parse(text) };
}

function assertJsonNoStore(o: Observed): void {
  assert.equal(
    o.headers.get("content-type"),
    "application/json; charset=utf-8",
  );
  assert.equal(o.headers.get("cache-control"), "no-store");
}

Deno.test("oidc-provider harness: client_credentials wire behaviour", async (t) => {
  const server = await startOidcServer({
    clients: [{
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      scope: "read write",
    }],
    scopes: ["admin"],
    accessTokenTtlSeconds: 300,
  });
  const auth = basic(CLIENT_ID, SECRET);
  try {
    await t.step("issuer and tokenUrl match discovery", async () => {
      assert.match(server.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(server.tokenUrl, `${server.issuer}/token`);
      const res = await fetch(
        `${server.issuer}/.well-known/openid-configuration`,
      );
      const meta = await res.json();
      assert.equal(res.status, 200);
      assert.equal(meta.issuer, server.issuer);
      assert.equal(meta.token_endpoint, server.tokenUrl);
      assert.ok(meta.grant_types_supported.includes("client_credentials"));
    });

    await t.step(
      "success without scope: 200, Bearer, expires_in, no scope",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=client_credentials",
          auth,
        );
        assert.equal(o.status, 200);
        assertJsonNoStore(o);
        assert.equal(o.headers.get("www-authenticate"), null);
        assert.deepEqual(Object.keys(o.body).sort(), [
          "access_token",
          "expires_in",
          "token_type",
        ]);
        assert.equal(o.body.token_type, "Bearer"); // exact case
        assert.equal(o.body.expires_in, 300);
        assert.match(o.body.access_token as string, /^[A-Za-z0-9_-]{43}$/); // opaque
      },
    );

    await t.step("success with allowed scope echoes scope", async () => {
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials&scope=read%20write",
        auth,
      );
      assert.equal(o.status, 200);
      assertJsonNoStore(o);
      assert.equal(o.body.token_type, "Bearer");
      assert.equal(o.body.expires_in, 300);
      assert.equal(o.body.scope, "read write");
      const one = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials&scope=read",
        auth,
      );
      assert.equal(one.status, 200);
      assert.equal(one.body.scope, "read");
    });

    await t.step(
      "wrong secret: 401 invalid_client with WWW-Authenticate",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=client_credentials",
          basic(CLIENT_ID, "wrong"),
        );
        assert.equal(o.status, 401);
        assertJsonNoStore(o);
        assert.equal(
          o.headers.get("www-authenticate"),
          `Basic realm="${server.issuer}", error="invalid_client", error_description="client authentication failed"`,
        );
        assert.deepEqual(o.body, {
          error: "invalid_client",
          error_description: "client authentication failed",
        });
      },
    );

    await t.step("unknown client: identical 401 invalid_client", async () => {
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials",
        basic("nobody", SECRET),
      );
      assert.equal(o.status, 401);
      assert.deepEqual(o.body, {
        error: "invalid_client",
        error_description: "client authentication failed",
      });
    });

    await t.step(
      "scope known to server but not granted: 400 invalid_scope",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=client_credentials&scope=admin",
          auth,
        );
        assert.equal(o.status, 400);
        assertJsonNoStore(o);
        assert.equal(o.headers.get("www-authenticate"), null);
        assert.deepEqual(o.body, {
          error: "invalid_scope",
          error_description: "requested scope is not allowed",
          scope: "admin",
        });
      },
    );

    await t.step(
      "scope unknown to server is silently dropped: 200 without scope",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=client_credentials&scope=nope",
          auth,
        );
        assert.equal(o.status, 200);
        assert.equal(o.body.scope, undefined);
      },
    );

    await t.step("missing grant_type: 400 invalid_request", async () => {
      const o = await tokenRequest(server.tokenUrl, "", auth);
      assert.equal(o.status, 400);
      assertJsonNoStore(o);
      assert.equal(o.headers.get("www-authenticate"), null);
      assert.deepEqual(o.body, {
        error: "invalid_request",
        error_description: "missing required parameter 'grant_type'",
      });
    });

    await t.step(
      "no client authentication at all: 400 invalid_request",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=client_credentials",
        );
        assert.equal(o.status, 400);
        assert.deepEqual(o.body, {
          error: "invalid_request",
          error_description: "no client authentication mechanism provided",
        });
      },
    );

    await t.step(
      "Basic credentials not form-urlencoded: 400 invalid_request",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=client_credentials",
          `Basic ${btoa(`${CLIENT_ID}:${SECRET}`)}`,
        );
        assert.equal(o.status, 400);
        assert.deepEqual(o.body, {
          error: "invalid_request",
          error_description:
            "client_id and client_secret in the authorization header are not properly encoded",
        });
      },
    );

    await t.step(
      "unsupported grant_type: 400 unsupported_grant_type",
      async () => {
        const o = await tokenRequest(
          server.tokenUrl,
          "grant_type=password",
          auth,
        );
        assert.equal(o.status, 400);
        assert.deepEqual(o.body, {
          error: "unsupported_grant_type",
          error_description: "unsupported grant_type requested",
        });
      },
    );
  } finally {
    await server.close();
  }
});

Deno.test("oidc-provider harness: setClientSecret rotates without restart", async (t) => {
  const server = await startOidcServer({
    clients: [
      { clientId: CLIENT_ID, clientSecret: SECRET },
      { clientId: "other", clientSecret: "other-secret" },
    ],
  });
  try {
    await t.step("old secret works before rotation", async () => {
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials",
        basic(CLIENT_ID, SECRET),
      );
      assert.equal(o.status, 200);
    });

    server.setClientSecret(CLIENT_ID, NEW_SECRET);

    await t.step("after rotation: old secret gets invalid_client", async () => {
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials",
        basic(CLIENT_ID, SECRET),
      );
      assert.equal(o.status, 401);
      assert.equal(o.body.error, "invalid_client");
    });

    await t.step("after rotation: new secret works", async () => {
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials",
        basic(CLIENT_ID, NEW_SECRET),
      );
      assert.equal(o.status, 200);
      assert.equal(o.body.token_type, "Bearer");
    });

    await t.step("other clients are unaffected", async () => {
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials",
        basic("other", "other-secret"),
      );
      assert.equal(o.status, 200);
    });

    await t.step("rotating back restores the old secret", async () => {
      server.setClientSecret(CLIENT_ID, SECRET);
      const o = await tokenRequest(
        server.tokenUrl,
        "grant_type=client_credentials",
        basic(CLIENT_ID, SECRET),
      );
      assert.equal(o.status, 200);
    });

    await t.step("unknown client id throws", () => {
      assert.throws(
        () => server.setClientSecret("nobody", "x"),
        /unknown clientId nobody/,
      );
    });
  } finally {
    await server.close();
  }
});

Deno.test("oidc-provider harness: close is idempotent and frees the port", async () => {
  const server = await startOidcServer({
    clients: [{ clientId: "a", clientSecret: "b" }],
  });
  const o = await tokenRequest(
    server.tokenUrl,
    "grant_type=client_credentials",
    basic("a", "b"),
  );
  assert.equal(o.status, 200);
  await Promise.all([server.close(), server.close()]);
  await server.close();
  await assert.rejects(
    fetch(server.tokenUrl, {
      method: "POST",
      body: "grant_type=client_credentials",
    }),
  );
});
