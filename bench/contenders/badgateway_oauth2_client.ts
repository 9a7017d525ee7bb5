/**
 * Contender: `@badgateway/oauth2-client`, its client-credentials grant behind
 * its `OAuth2Fetch` wrapper as the README shows (`getNewToken: () =>
 * client.clientCredentials()`). It holds one credential; on a 401 it gets a
 * new token and replays once. A delivered secret means a new `OAuth2Client`
 * (its settings cannot be changed).
 *
 * @module
 */
import type { ContenderFactory } from "./contender.ts";
import { consume } from "./contender.ts";

type Library = typeof import("@badgateway/oauth2-client");
let library: Library | undefined;

/** `@badgateway/oauth2-client` 3.3.1. */
export const badgatewayOauth2Client: ContenderFactory = {
  name: "@badgateway/oauth2-client",
  credentialCount: 1,
  async load() {
    library ??= await import("@badgateway/oauth2-client");
  },
  create(setup) {
    if (!library) throw new Error("load() first");
    const { OAuth2Client, OAuth2Fetch } = library;
    const [credential] = setup.credentials;
    const newClient = (secret: string) =>
      new OAuth2Client({
        server: setup.origin,
        tokenEndpoint: new URL(setup.tokenUrl).pathname,
        clientId: credential.clientId,
        clientSecret: secret,
      });
    let client = newClient(credential.secret);
    const wrapper = new OAuth2Fetch({
      client,
      getNewToken: () => client.clientCredentials(),
    });
    const close = () => Promise.resolve();
    return {
      getAccessToken: () => wrapper.getAccessToken(),
      get: async (url) => await consume(await wrapper.fetch(url)),
      fetch: (input, init) =>
        wrapper.fetch(input instanceof URL ? input.href : input, init),
      activeClientId: () => credential.clientId,
      updateSecret(clientId, secret) {
        if (clientId === credential.clientId) client = newClient(secret);
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  },
};
