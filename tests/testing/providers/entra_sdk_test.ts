import assert from "node:assert/strict";
import {
  Client,
  type Context,
  GraphError,
  HTTPMessageHandler,
  type Middleware,
  RetryHandler,
} from "../../deps/microsoft_graph_client.ts";
import {
  type EntraEmulator,
  startEntraEmulator,
} from "@rotating/dual-secret-auth/testing";
import { postForm } from "./support.ts";

/**
 * Sets the bearer token. The SDK's own AuthenticationHandler attaches a
 * token only to `https://` Graph hosts or `customHosts` (and deletes an
 * Authorization header on any other URL), so over the emulator's
 * `http://127.0.0.1` this one-line middleware stands in for it; the rest of
 * the chain, the request builder and the error parsing are the SDK's.
 */
class BearerMiddleware implements Middleware {
  #next: Middleware | undefined;
  constructor(private readonly token: () => Promise<string>) {}
  async execute(context: Context): Promise<void> {
    const headers = new Headers(context.options?.headers as HeadersInit);
    headers.set("authorization", `Bearer ${await this.token()}`);
    context.options = { ...context.options, headers };
    await this.#next!.execute(context);
  }
  setNext(next: Middleware): void {
    this.#next = next;
  }
}

async function graphToken(entra: EntraEmulator): Promise<string> {
  const response = await postForm(entra.tokenUrl, {
    grant_type: "client_credentials",
    client_id: "rotator",
    client_secret: "rotator-secret",
    scope: "https://graph.microsoft.com/.default",
  });
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

Deno.test("@microsoft/microsoft-graph-client drives the Entra emulator's addPassword/removePassword", async () => {
  await using entra = startEntraEmulator({
    applications: [
      { appId: "service", secrets: ["old-secret-value"] },
      {
        appId: "rotator",
        secrets: ["rotator-secret"],
        graphPermissions: ["Application.ReadWrite.OwnedBy"],
        owns: ["service"],
      },
      { appId: "other", secrets: ["other-secret"] },
    ],
  });
  const auth = new BearerMiddleware(() => graphToken(entra));
  const retry = new RetryHandler();
  auth.setNext(retry);
  retry.setNext(new HTTPMessageHandler());
  const client = Client.initWithMiddleware({
    baseUrl: `${entra.url}/`,
    defaultVersion: "v1.0",
    middleware: auth,
  });
  const id = entra.objectIdOf("service");

  const app = await client.api(`/applications/${id}`)
    .select("passwordCredentials").get();
  assert.equal(app.passwordCredentials.length, 1);
  const [old] = app.passwordCredentials;
  assert.equal(old.secretText, null);

  const added = await client.api(`/applications/${id}/addPassword`).post({
    passwordCredential: { displayName: "rotation" },
  });
  assert.equal(typeof added.secretText, "string");
  assert.equal(added.displayName, "rotation");
  const token = await postForm(entra.tokenUrl, {
    grant_type: "client_credentials",
    client_id: "service",
    client_secret: added.secretText,
    scope: "api://service/.default",
  });
  assert.equal(token.status, 200);
  await token.body?.cancel();

  await client.api(`/applications/${id}/removePassword`).post({
    keyId: old.keyId,
  });
  const after = await client.api(`/applications/${id}`)
    .select("passwordCredentials").get();
  assert.deepEqual(
    after.passwordCredentials.map((entry: { keyId: string }) => entry.keyId),
    [added.keyId],
  );

  const error = await client.api(
    `/applications/${entra.objectIdOf("other")}/addPassword`,
  ).post({}).then(() => undefined, (caught: unknown) => caught);
  assert.ok(error instanceof GraphError);
  assert.equal(error.statusCode, 403);
  assert.equal(error.code, "Authorization_RequestDenied");
});
