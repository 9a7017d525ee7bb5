/**
 * A service for the provider rotation tests: follows a provider env file
 * (`AUTH_*` names) with envFileSource and calls the emulator's stand-in
 * protected resource continuously through `auth.fetch`; on SIGTERM it
 * prints what it saw as JSON and exits. The same report as
 * tests/runbook/runbook_service.ts, so tests/support/following_service.ts
 * reads it.
 *
 * With `presence` in the settings it announces itself beside the env file
 * (or in `presence.directory`) for the revoke gate, and needs
 * `--allow-write` there.
 *
 * Usage: deno run --allow-read=<dir> --allow-net=127.0.0.1 provider_service.ts
 *   <env file> <resource URL> <JSON: { tokenUrl, scope?, tokenParams?, authMethod, presence? }>
 */
import {
  type AuthEvent,
  createDualSecretAuth,
  type TokenAuthMethod,
} from "../../mod.ts";
import {
  type CredentialSnapshot,
  type CredentialSource,
  envFileSource,
  followSource,
  loadSource,
} from "../../sources.ts";

const [envFile, resourceUrl, settingsText] = Deno.args;
const settings = JSON.parse(settingsText) as {
  tokenUrl: string;
  scope?: string;
  tokenParams?: Record<string, string>;
  authMethod: TokenAuthMethod;
  presence?: { directory?: string; intervalMs?: number };
};
const switches: string[] = [];
const warnings: string[] = [];
const failures: string[] = [];
let ok = 0;
const onEvent = (event: AuthEvent) => {
  if (event.type === "rotated") switches.push(`${event.from}->${event.to}`);
  if (event.type === "failover") {
    switches.push(`failover ${event.from}->${event.to}`);
  }
  if (event.type === "warning") warnings.push(event.code);
};
const file = envFileSource(envFile, {
  clientIdVariable: (label) => `AUTH_CLIENT_ID_${label.toUpperCase()}`,
  clientSecretVariable: (label) => `AUTH_CLIENT_SECRET_${label.toUpperCase()}`,
  activeVariable: "AUTH_ACTIVE",
  pollIntervalMs: 250,
});
// The env file names no auth method: each credential gets the provider's.
const withMethod = (snapshot: CredentialSnapshot): CredentialSnapshot => ({
  ...snapshot,
  credentials: snapshot.credentials.map((c) => ({
    ...c,
    authMethod: settings.authMethod,
  })),
});
const source: CredentialSource = {
  ...file,
  loadSync: () => withMethod(file.loadSync()),
  read: async () => withMethod(await file.read()),
};
const auth = createDualSecretAuth({
  ...loadSource(source),
  tokenUrl: settings.tokenUrl,
  ...(settings.scope === undefined ? {} : { scope: settings.scope }),
  ...(settings.tokenParams === undefined
    ? {}
    : { tokenParams: settings.tokenParams }),
  onEvent,
});
const follower = followSource(auth, source, {
  onEvent,
  ...(settings.presence === undefined ? {} : { presence: settings.presence }),
});
let running = true;
Deno.addSignalListener("SIGTERM", () => void (running = false));
let announced = false;
while (running) {
  try {
    const response = await auth.fetch(resourceUrl);
    await response.body?.cancel();
    if (response.ok) ok++;
    else failures.push(`HTTP ${response.status} on ${auth.status().active}`);
  } catch (error) {
    failures.push(
      error instanceof Error
        ? `${error.name}: ${error.message}`
        : String(error),
    );
  }
  if (!announced && ok > 0) {
    announced = true;
    console.error("service ready");
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
}
await follower.stop();
await auth.close();
console.log(
  JSON.stringify({
    ok,
    failed: failures.length,
    failures,
    switches,
    warnings,
    active: auth.status().active,
  }),
);
