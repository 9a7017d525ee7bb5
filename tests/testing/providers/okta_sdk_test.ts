import assert from "node:assert/strict";
import { Client } from "../../deps/okta_sdk.ts";
import { startOktaEmulator } from "@rotating/dual-secret-auth/testing";
import { basic, postForm } from "./support.ts";

Deno.test("@okta/okta-sdk-nodejs drives the Okta emulator's secret API through a rotation", async () => {
  await using okta = startOktaEmulator({
    apps: [{ clientId: "0oaservice", secrets: ["first-secret-value-0001"] }],
    adminTokens: [{ token: "admin-token" }],
  });
  const client = new Client({ orgUrl: okta.url, token: "admin-token" });
  const api = client.applicationSSOPublicKeysApi;
  const appId = "0oaservice";

  const [old] = await collect(await api.listOAuth2ClientSecrets({ appId }));
  assert.equal(old.status, "ACTIVE");

  const created = await api.createOAuth2ClientSecret({
    appId,
    oAuth2ClientSecretRequestBody: {},
  });
  assert.equal(created.status, "ACTIVE");
  assert.equal(typeof created.client_secret, "string");
  const token = await postForm(
    okta.tokenUrl,
    { grant_type: "client_credentials", scope: "api" },
    basic(appId, created.client_secret!),
  );
  assert.equal(token.status, 200);
  await token.body?.cancel();

  await assert.rejects(
    api.createOAuth2ClientSecret({ appId, oAuth2ClientSecretRequestBody: {} }),
    (error: { status?: number; errorCode?: string; errorCauses?: unknown }) => {
      assert.equal(error.status, 400);
      assert.equal(error.errorCode, "E0000001");
      return true;
    },
  );
  await assert.rejects(
    api.deleteOAuth2ClientSecret({ appId, secretId: old.id! }),
    (error: { status?: number }) => error.status === 400,
  );

  const deactivated = await api.deactivateOAuth2ClientSecret({
    appId,
    secretId: old.id!,
  });
  assert.equal(deactivated.status, "INACTIVE");
  await api.deleteOAuth2ClientSecret({ appId, secretId: old.id! });
  const left = await collect(await api.listOAuth2ClientSecrets({ appId }));
  assert.deepEqual(left.map((secret) => secret.id), [created.id]);
});

/** Reads an SDK collection to the end. */
async function collect<T>(
  collection: { each(fn: (item: T) => void): Promise<unknown> },
): Promise<T[]> {
  const items: T[] = [];
  await collection.each((item) => void items.push(item));
  return items;
}
