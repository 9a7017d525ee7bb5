/**
 * Contender: this module's `createDualSecretAuth`, with its own authorized
 * fetch and `setCredentials` for a delivered secret.
 *
 * @module
 */
import { createDualSecretAuth, type CredentialInput } from "../../mod.ts";
import type { ContenderFactory } from "./contender.ts";
import { consume } from "./contender.ts";

/** This module, defaults untouched except the injected clock. */
export const thisModule: ContenderFactory = {
  name: "this module",
  credentialCount: 2,
  load: () => Promise.resolve(),
  create(setup) {
    let credentials: CredentialInput[] = setup.credentials.map((c) => ({
      label: c.label,
      clientId: c.clientId,
      clientSecret: c.secret,
    }));
    const auth = createDualSecretAuth({
      credentials,
      tokenUrl: setup.tokenUrl,
      ...(setup.clock ? { clock: setup.clock } : {}),
    });
    const close = () => auth.close();
    return {
      getAccessToken: () => auth.getAccessToken(),
      get: async (url) => await consume(await auth.fetch(url)),
      fetch: (input, init) => auth.fetch(input, init),
      activeClientId() {
        const { active, credentials } = auth.status();
        return credentials.find((c) => c.label === active)!.clientId;
      },
      updateSecret(clientId, secret) {
        credentials = credentials.map((c) =>
          c.clientId === clientId ? { ...c, clientSecret: secret } : c
        );
        auth.setCredentials(credentials);
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  },
};
