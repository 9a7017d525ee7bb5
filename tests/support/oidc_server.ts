/**
 * Test harness: a real, independently written OAuth 2.0 authorization server
 * (`oidc-provider` by panva, OpenID certified) running in-process on
 * 127.0.0.1 with an ephemeral port, configured for the client_credentials
 * grant only.
 *
 * Design notes (verified against oidc-provider 9.13.x under Deno 2):
 *
 * - In-process works with Deno's sanitizers on: oidc-provider and its default
 *   dependencies start no timers, and `close()` shuts the `node:http` server
 *   down (dropping kept-alive sockets) and awaits it.
 * - Clients are NOT passed through the provider's static `clients` option:
 *   static clients are cached for the Provider's lifetime, so a secret change
 *   would need a new Provider. Instead a per-server in-memory adapter serves
 *   the `Client` model from a Map. oidc-provider caches adapter-supplied
 *   clients keyed by a SHA-256 of their full metadata, so changing the secret
 *   yields a new cache key and takes effect on the very next request. That is
 *   what makes {@link OidcServer.setClientSecret} possible without a restart.
 * - Allowed scopes: the provider's `scopes` option lists the scopes it
 *   recognises; a client's `scope` metadata is its allow-list. Requesting a
 *   recognised scope not on the client's list gives `invalid_scope`. Scopes
 *   the provider does not recognise at all are silently ignored by
 *   oidc-provider (not an error) — use a recognised-but-not-granted scope to
 *   provoke `invalid_scope`.
 * - No resource indicator is sent, so the access token is opaque (43 chars,
 *   base64url) and `token_type` is `"Bearer"`.
 * - Output is silenced: the only unavoidable message ("Unsupported runtime",
 *   printed at module evaluation under Deno) is suppressed by importing the
 *   module dynamically with `console.warn`/`console.info` muted; everything
 *   else that would print a notice (dev signing keys, in-memory adapter,
 *   default TTL functions, devInteractions, unacknowledged features) is
 *   configured explicitly so it never fires.
 *
 * @module
 */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A confidential client registered at the test server. */
export interface OidcClientSpec {
  clientId: string;
  clientSecret: string;
  /** Space-separated scopes this client may request; omit for "no scope restrictions". */
  scope?: string;
  /** The client's registered `token_endpoint_auth_method`; default `client_secret_basic`. */
  authMethod?: "client_secret_basic" | "client_secret_post";
}

/** Handle to a running test authorization server. */
export interface OidcServer {
  /** Issuer identifier, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly issuer: string;
  /** Token endpoint: `${issuer}/token`. */
  readonly tokenUrl: string;
  /**
   * Replaces a registered client's secret. Takes effect on the next request:
   * the old secret is rejected with `invalid_client`, the new one accepted.
   * Throws if the client is unknown.
   */
  setClientSecret(clientId: string, clientSecret: string): void;
  /** Stops the server and releases all sockets. Idempotent. */
  close(): Promise<void>;
}

/** Options for {@link startOidcServer}. */
export interface StartOidcServerOptions {
  clients: OidcClientSpec[];
  /** Scopes the provider recognises (union with every client's `scope` is added automatically). */
  scopes?: string[];
  /** Lifetime of issued access tokens (`expires_in`); default 3600. */
  accessTokenTtlSeconds?: number;
}

// deno-lint-ignore no-explicit-any
type AnyRecord = Record<string, any>;
// deno-lint-ignore no-explicit-any
type ProviderCtor = new (issuer: string, config: AnyRecord) => any;

let providerCtor: Promise<ProviderCtor> | undefined;

/** Imports oidc-provider once, muting the banner it prints at module evaluation. */
function loadProvider(): Promise<ProviderCtor> {
  providerCtor ??= (async () => {
    const { warn, info } = console;
    console.warn = () => {};
    console.info = () => {};
    try {
      const mod = await import("oidc-provider");
      return mod.default as ProviderCtor;
    } finally {
      console.warn = warn;
      console.info = info;
    }
  })();
  return providerCtor;
}

let signingKey: Promise<JsonWebKey> | undefined;

/** One ES256 key per process, so the provider never falls back to its dev keys. */
function loadSigningKey(): Promise<JsonWebKey> {
  signingKey ??= (async () => {
    const pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    );
    const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
    delete jwk.key_ops;
    delete jwk.ext;
    return { ...jwk, use: "sig", alg: "ES256" } as JsonWebKey;
  })();
  return signingKey;
}

function clientMetadata(spec: OidcClientSpec): AnyRecord {
  const metadata: AnyRecord = {
    client_id: spec.clientId,
    client_secret: spec.clientSecret,
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: spec.authMethod ?? "client_secret_basic",
    id_token_signed_response_alg: "ES256",
  };
  if (spec.scope !== undefined) metadata.scope = spec.scope;
  return metadata;
}

/**
 * Builds an oidc-provider adapter class bound to this server's own storage.
 * The `Client` model is served from `clients`; every other model (e.g.
 * `ClientCredentials` tokens) lives in a plain Map (no expiry timers — the
 * provider checks `exp` itself, and the Map dies with the server).
 */
function makeAdapter(clients: Map<string, AnyRecord>) {
  const store = new Map<string, AnyRecord>();
  return class InMemoryAdapter {
    #name: string;
    constructor(name: string) {
      this.#name = name;
    }
    #key(id: string) {
      return `${this.#name}:${id}`;
    }
    upsert(id: string, payload: AnyRecord): Promise<void> {
      if (this.#name === "Client") clients.set(id, { ...payload });
      else store.set(this.#key(id), { ...payload });
      return Promise.resolve();
    }
    find(id: string): Promise<AnyRecord | undefined> {
      if (this.#name === "Client") {
        const found = clients.get(id);
        return Promise.resolve(found ? { ...found } : undefined);
      }
      const found = store.get(this.#key(id));
      return Promise.resolve(found ? { ...found } : undefined);
    }
    findByUserCode(): Promise<undefined> {
      return Promise.resolve(undefined);
    }
    findByUid(): Promise<undefined> {
      return Promise.resolve(undefined);
    }
    consume(id: string): Promise<void> {
      const found = store.get(this.#key(id));
      if (found) found.consumed = Math.floor(Date.now() / 1000);
      return Promise.resolve();
    }
    destroy(id: string): Promise<void> {
      if (this.#name === "Client") clients.delete(id);
      else store.delete(this.#key(id));
      return Promise.resolve();
    }
    revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, value] of store) {
        if (value.grantId === grantId) store.delete(key);
      }
      return Promise.resolve();
    }
  };
}

/** Starts oidc-provider on `127.0.0.1:<ephemeral>`; always `await close()` it. */
export async function startOidcServer(
  options: StartOidcServerOptions,
): Promise<OidcServer> {
  const Provider = await loadProvider();
  const jwk = await loadSigningKey();
  const ttl = options.accessTokenTtlSeconds ?? 3600;

  const clients = new Map<string, AnyRecord>();
  const scopes = new Set(options.scopes ?? []);
  for (const spec of options.clients) {
    if (clients.has(spec.clientId)) {
      throw new Error(`duplicate clientId ${spec.clientId}`);
    }
    clients.set(spec.clientId, clientMetadata(spec));
    for (const s of spec.scope?.split(" ") ?? []) if (s) scopes.add(s);
  }

  // deno-lint-ignore no-explicit-any
  let handler: ((req: any, res: any) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (handler) return handler(req, res);
    res.statusCode = 503;
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  let provider;
  try {
    provider = new Provider(issuer, {
      adapter: makeAdapter(clients),
      jwks: { keys: [jwk] },
      cookies: { keys: [crypto.randomUUID()] },
      scopes: [...scopes],
      // No users ever exist; client_credentials never calls this.
      findAccount: () => undefined,
      features: {
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
        introspection: { enabled: false },
        revocation: { enabled: false },
      },
      clientDefaults: {
        grant_types: ["client_credentials"],
        response_types: [],
        id_token_signed_response_alg: "ES256",
        token_endpoint_auth_method: "client_secret_basic",
      },
      ttl: { ClientCredentials: ttl, AccessToken: ttl },
      // Errors are rendered as JSON for the token endpoint; keep the HTML
      // renderer from ever touching the default (which prints a notice).
      renderError(ctx: AnyRecord, out: AnyRecord) {
        ctx.type = "json";
        ctx.body = out;
      },
    });
  } catch (err) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  // The Provider is a Koa app; Koa would console.error() unexpected (500)
  // errors. Keep output quiet — they still reach the test as HTTP 500.
  provider.silent = true;
  handler = provider.callback();

  let closing: Promise<void> | undefined;
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    setClientSecret(clientId: string, clientSecret: string) {
      const current = clients.get(clientId);
      if (!current) throw new Error(`unknown clientId ${clientId}`);
      clients.set(clientId, { ...current, client_secret: clientSecret });
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        handler = undefined;
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
