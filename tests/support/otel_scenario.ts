/**
 * Run with OTEL_DENO=true by the OpenTelemetry test: an instrumented auth
 * instance against the emulator gets a token (miss), gets it again (hit),
 * rotates to green, loses green's secret behind its back and fails over to
 * blue. Prints the secrets and tokens it saw, as JSON, so the test can check
 * that none reached the exporter.
 *
 * @module
 */
import { createDualSecretAuth } from "@rotating/dual-secret-auth";
import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
import { createAuthTelemetry } from "@rotating/dual-secret-auth/otel";

const blue = { clientId: "blue-id", secret: "blue-SECRET-otel-4711" };
const green = { clientId: "green-id", secret: "green-SECRET-otel-0815" };
await using emulator = startGenesysEmulator({ clients: [blue, green] });
await emulator.ready;
const telemetry = createAuthTelemetry();
await using auth = telemetry.instrument(createDualSecretAuth({
  credentials: [
    { label: "blue", clientId: blue.clientId, clientSecret: blue.secret },
    { label: "green", clientId: green.clientId, clientSecret: green.secret },
  ],
  tokenUrl: emulator.tokenUrl,
  onEvent: telemetry.onEvent,
}));
const tokens = [await auth.getAccessToken(), await auth.getAccessToken()];
await auth.rotate({ to: "green" });
tokens.push(await auth.getAccessToken());
const greenSecret = emulator.regenerateSecret(green.clientId);
auth.invalidate();
tokens.push(await auth.getAccessToken());
// Not console.log: with OTEL_DENO=true the console is exported as logs.
await Deno.stdout.write(
  new TextEncoder().encode(JSON.stringify({
    active: auth.status().active,
    secrets: [blue.secret, green.secret, greenSecret],
    tokens,
  })),
);
