/**
 * A service for the runbook test: follows an env file with envFileSource and
 * calls the Platform API continuously; on SIGTERM it prints what it saw as
 * JSON and exits.
 *
 * Usage: deno run --allow-read=<dir> --allow-net=127.0.0.1 runbook_service.ts <env file> <token URL> <API URL>
 */
import { type AuthEvent, createDualSecretAuth } from "../../mod.ts";
import { envFileSource, followSource, loadSource } from "../../sources.ts";

const [envFile, tokenUrl, apiUrl] = Deno.args;
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
const source = envFileSource(envFile);
const auth = createDualSecretAuth({ ...loadSource(source), tokenUrl, onEvent });
const follower = followSource(auth, source, { onEvent });
let running = true;
Deno.addSignalListener("SIGTERM", () => void (running = false));
let announced = false;
while (running) {
  try {
    const response = await auth.fetch(`${apiUrl}/api/v2/tokens/me`);
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
