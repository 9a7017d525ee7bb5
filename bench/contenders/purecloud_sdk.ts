/**
 * Contender: the official Genesys Cloud JavaScript SDK
 * (`purecloud-platform-client-v2`), logging in with
 * `loginClientCredentialsGrant(clientId, secret)` as its README shows and
 * calling `TokensApi.getTokensMe()`. It is pointed at the emulator with its
 * documented gateway setting (`setGateway({ host, protocol: "http", port })`),
 * which replaces both `login.<env>` and `api.<env>`.
 *
 * The SDK keeps the token and its expiry (`authData.tokenExpiryTime`) but
 * never logs in again by itself for client credentials, and does nothing on a
 * 401 without a refresh token. The only glue added: log in when there is no
 * token or the SDK's own expiry time has passed. One credential.
 *
 * @module
 */
import type { ContenderFactory } from "./contender.ts";

type Sdk = typeof import("purecloud-platform-client-v2");
let sdk: Sdk | undefined;

interface ExtendedError {
  readonly status?: number;
}

/** `ApiClient.authData`, which the README documents but the typings omit. */
interface WithAuthData {
  readonly authData: { accessToken?: string; tokenExpiryTime?: number };
}

/** `purecloud-platform-client-v2` 262.0.0. */
export const purecloudSdk: ContenderFactory = {
  name: "purecloud-platform-client-v2",
  credentialCount: 1,
  // One login per caller: 10,000 concurrent callers already take seconds.
  herdLimit: 10_000,
  async load() {
    sdk ??= (await import("purecloud-platform-client-v2")).default;
  },
  create(setup) {
    if (!sdk) throw new Error("load() first");
    const [credential] = setup.credentials;
    let secret = credential.secret;
    const origin = new URL(setup.origin);
    const client = new sdk.ApiClientClass();
    client.setGateway({
      host: origin.hostname,
      protocol: "http",
      port: Number(origin.port),
    });
    // Statuses instead of bare bodies, so a failed call says what it was.
    client.setReturnExtendedResponses(true);
    const tokens = new sdk.TokensApi(client);
    const getAccessToken = async () => {
      const auth = (client as unknown as WithAuthData).authData;
      if (auth.accessToken && Date.now() < (auth.tokenExpiryTime ?? 0)) {
        return auth.accessToken;
      }
      const data = await client.loginClientCredentialsGrant(
        credential.clientId,
        secret,
      );
      return data.accessToken;
    };
    const close = () => {
      // Stops the SDK's watch on its config file.
      client.config.live_reload_config = false;
      return Promise.resolve();
    };
    return {
      getAccessToken,
      async get() {
        await getAccessToken();
        try {
          await tokens.getTokensMe();
          return 200;
        } catch (error) {
          const status = (error as ExtendedError | undefined)?.status;
          if (typeof status === "number") return status;
          throw error;
        }
      },
      activeClientId: () => credential.clientId,
      updateSecret(clientId, newSecret) {
        if (clientId === credential.clientId) secret = newSecret;
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  },
};
