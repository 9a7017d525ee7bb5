// A scenario run by Node or Bun against the bundled library (the output of
// `deno bundle mod.ts`) and the Genesys emulator of the Deno test that started
// it. It prints one JSON line of observations; the Deno test asserts on them.
//
// argv[2]: JSON { bundle, tokenUrl, apiUrl, controlUrl, credentials }
import process from "node:process";
import { inspect } from "node:util";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.argv[2]);
const library = await import(pathToFileURL(config.bundle).href);
const [blue] = config.credentials;

const events = [];
const auth = library.createDualSecretAuth({
  credentials: config.credentials,
  tokenUrl: config.tokenUrl,
  onEvent: (event) => events.push(event.type),
});

async function control(action, clientId) {
  const url = `${config.controlUrl}/${action}?clientId=${
    encodeURIComponent(clientId)
  }`;
  const response = await fetch(url, { method: "POST" });
  await response.body?.cancel();
  if (response.status !== 204) throw new Error(`control ${action} failed`);
}

async function tokensMe() {
  const response = await auth.fetch(`${config.apiUrl}/api/v2/tokens/me`);
  const body = await response.json();
  return { status: response.status, clientId: body.OAuthClient?.id };
}

const results = {
  runtime: process.versions.bun
    ? `bun ${process.versions.bun}`
    : `node ${process.version}`,
  exports: Object.keys(library).sort(),
};
try {
  const token = await auth.getAccessToken();
  results.acquisition = {
    active: auth.status().active,
    cached: token === await auth.getAccessToken(),
    call: await tokensMe(),
  };

  // The token dies at the API; auth.fetch must drop it and replay once.
  await control("revoke-tokens", blue.clientId);
  results.afterRevoke = await tokensMe();

  // Blue's secret dies at the token endpoint; the next token must be green's.
  await control("regenerate-secret", blue.clientId);
  auth.invalidate();
  await auth.getAccessToken();
  results.afterRegenerate = {
    active: auth.status().active,
    call: await tokensMe(),
  };

  results.events = events;
  results.inspected = `${inspect(auth)} ${
    inspect(new library.Secret(blue.clientSecret))
  } ${JSON.stringify(auth.status())}`;
} catch (error) {
  results.error = `${error?.name}: ${error?.message}`;
} finally {
  await auth.close();
}
console.log(JSON.stringify(results));
