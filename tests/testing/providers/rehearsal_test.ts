/**
 * The rehearsal set-ups behind `deno task emulator --provider`: each admin
 * credential reaches the app's secrets through the provider's own API, and
 * lists the two secrets (or reads a twin's one).
 */
import assert from "node:assert/strict";
import {
  CognitoIdentityProviderClient,
  ListUserPoolClientSecretsCommand,
} from "../../deps/aws_cognito_sdk.ts";
import {
  type ProviderRehearsal,
  REHEARSAL_PROVIDERS,
  startProviderRehearsal,
} from "../../../src/testing/providers/rehearsal.ts";
import { basic, postForm } from "./support.ts";

/** A client-credentials token, Basic or (Auth0's default) in the form. */
async function adminToken(
  tokenUrl: string,
  id: string,
  secret: string,
  fields: Record<string, string>,
  inForm = false,
): Promise<string> {
  const response = inForm
    ? await postForm(tokenUrl, {
      grant_type: "client_credentials",
      client_id: id,
      client_secret: secret,
      ...fields,
    })
    : await postForm(
      tokenUrl,
      { grant_type: "client_credentials", ...fields },
      basic(id, secret),
    );
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.access_token;
}

async function getJson(
  url: string,
  authorization: string,
): Promise<unknown> {
  const response = await fetch(url, { headers: { authorization } });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

/** What the admin reads through the API: how many secrets it sees. */
const ADMIN_READS: Record<
  typeof REHEARSAL_PROVIDERS[number],
  (env: Record<string, string>) => Promise<number>
> = {
  async okta(env) {
    const secrets = await getJson(
      `${env.AUTH_API_URL}/api/v1/apps/${env.AUTH_CLIENT_ID_BLUE}/credentials/secrets`,
      `SSWS ${env.AUTH_ADMIN_TOKEN}`,
    );
    return (secrets as unknown[]).length;
  },
  async entra(env) {
    const token = await adminToken(
      env.AUTH_TOKEN_URL,
      env.AUTH_ADMIN_CLIENT_ID,
      env.AUTH_ADMIN_CLIENT_SECRET,
      { scope: "https://graph.microsoft.com/.default" },
    );
    const app = await getJson(
      `${env.AUTH_API_URL}/applications(appId='${env.AUTH_CLIENT_ID_BLUE}')`,
      `Bearer ${token}`,
    ) as { passwordCredentials: unknown[] };
    return app.passwordCredentials.length;
  },
  async keycloak(env) {
    const realm = `${env.AUTH_BASE_URL}/realms/${env.AUTH_REALM}`;
    const admin = `${env.AUTH_BASE_URL}/admin/realms/${env.AUTH_REALM}`;
    const token = await adminToken(
      `${realm}/protocol/openid-connect/token`,
      env.AUTH_ADMIN_CLIENT_ID,
      env.AUTH_ADMIN_CLIENT_SECRET,
      {},
    );
    const [client] = await getJson(
      `${admin}/clients?clientId=${env.AUTH_CLIENT_ID_BLUE}`,
      `Bearer ${token}`,
    ) as { id: string }[];
    const main = await getJson(
      `${admin}/clients/${client.id}/client-secret`,
      `Bearer ${token}`,
    ) as { value: string };
    const rotated = await getJson(
      `${admin}/clients/${client.id}/client-secret/rotated`,
      `Bearer ${token}`,
    ) as { value: string };
    assert.equal(main.value, env.AUTH_CLIENT_SECRET_BLUE);
    assert.equal(rotated.value, env.AUTH_CLIENT_SECRET_GREEN);
    return 2;
  },
  async cognito(env) {
    const sdk = new CognitoIdentityProviderClient({
      region: env.AUTH_REGION,
      endpoint: env.AUTH_API_URL,
      credentials: {
        accessKeyId: env.AUTH_ADMIN_ACCESS_KEY_ID,
        secretAccessKey: env.AUTH_ADMIN_SECRET_ACCESS_KEY,
      },
      maxAttempts: 1,
    });
    try {
      const listed = await sdk.send(
        new ListUserPoolClientSecretsCommand({
          UserPoolId: env.AUTH_USER_POOL_ID,
          ClientId: env.AUTH_CLIENT_ID_BLUE,
        }),
      );
      return listed.ClientSecrets?.length ?? 0;
    } finally {
      sdk.destroy();
    }
  },
  async auth0(env) {
    const token = await adminToken(
      env.AUTH_TOKEN_URL,
      env.AUTH_ADMIN_CLIENT_ID,
      env.AUTH_ADMIN_CLIENT_SECRET,
      { audience: env.AUTH_ADMIN_AUDIENCE },
      true,
    );
    const client = await getJson(
      `${env.AUTH_API_URL}/clients/${env.AUTH_CLIENT_ID_GREEN}`,
      `Bearer ${token}`,
    ) as { client_secret: string };
    assert.equal(client.client_secret, env.AUTH_CLIENT_SECRET_GREEN);
    return 1;
  },
};

Deno.test("each rehearsal's admin credential reads the app's secrets through the provider's API", async (t) => {
  for (const provider of REHEARSAL_PROVIDERS) {
    await t.step(provider, async () => {
      const rehearsal: ProviderRehearsal = await startProviderRehearsal(
        provider,
      );
      try {
        const env = Object.fromEntries(rehearsal.settings);
        assert.equal(env.AUTH_PROVIDER, provider);
        const seen = await ADMIN_READS[provider](env);
        assert.equal(seen, provider === "auth0" ? 1 : 2);
      } finally {
        await rehearsal.emulator.close();
      }
    });
  }
});
