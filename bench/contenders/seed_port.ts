/**
 * Contender: the seed tutorial's `DualSecretAuth`, ported faithfully in
 * `bench/seed_dual_secret_auth.ts`. API calls follow the tutorial's
 * `get_current_user`: get a token, call, and on failure just raise.
 *
 * @module
 */
import { SeedDualSecretAuth } from "../seed_dual_secret_auth.ts";
import type { ContenderFactory } from "./contender.ts";
import { consume } from "./contender.ts";

/** The seed's algorithm; its `print` is silenced (it would flood the output). */
export const seedPort: ContenderFactory = {
  name: "seed port (tutorial)",
  credentialCount: 2,
  load: () => Promise.resolve(),
  create(setup) {
    const [a, b] = setup.credentials;
    const clock = setup.clock;
    const auth = new SeedDualSecretAuth({
      secrets: {
        a: { clientId: a.clientId, secret: a.secret },
        b: { clientId: b.clientId, secret: b.secret },
      },
      tokenUrl: setup.tokenUrl,
      ...(clock ? { now: () => clock.now() } : {}),
      log: () => {},
    });
    const close = () => Promise.resolve();
    return {
      getAccessToken: () => auth.getAccessToken(),
      async get(url) {
        const token = await auth.getAccessToken();
        return await consume(
          await fetch(url, { headers: { authorization: `Bearer ${token}` } }),
        );
      },
      activeClientId: () => auth.secrets[auth.activeSecretKey].clientId,
      updateSecret(clientId, secret) {
        // The tutorial's "update your application environment variables".
        for (const entry of Object.values(auth.secrets)) {
          if (entry.clientId === clientId) entry.secret = secret;
        }
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  },
};
