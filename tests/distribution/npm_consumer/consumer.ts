/**
 * A TypeScript consumer of the npm package, type-checked with `tsc --noEmit`
 * and run (after `tsc`) under Node and Bun: a token, a 401 replay, a
 * failover, a staged rotation (and one whose sink fails), and the emulator's
 * reset, 429 and delay faults, all against the package's own emulator.
 * Prints what it saw as one JSON line.
 */
import {
  type AuthEvent,
  createDualSecretAuth,
  type DualSecretAuth,
} from "@rotating/dual-secret-auth";
import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
import {
  createCallbackSink,
  runStagedRotation,
} from "@rotating/dual-secret-auth/rotation";
import { createAuthTelemetry } from "@rotating/dual-secret-auth/otel";

const EDIT = ["oauth:client:view", "oauth:client:edit"];
const versions = (globalThis as unknown as {
  process: { versions: Record<string, string | undefined> };
}).process.versions;

const emulator = startGenesysEmulator({
  clients: [
    { clientId: "blue-id", secret: "blue-secret-npm-0001" },
    { clientId: "green-id", secret: "green-secret-npm-0002" },
    {
      clientId: "admin-id",
      secret: "admin-secret-npm-0003",
      permissions: EDIT,
    },
  ],
});
await emulator.ready;

const events: AuthEvent["type"][] = [];
const telemetry = createAuthTelemetry();
const auth: DualSecretAuth = telemetry.instrument(createDualSecretAuth({
  credentials: [
    {
      label: "blue",
      clientId: "blue-id",
      clientSecret: "blue-secret-npm-0001",
    },
    {
      label: "green",
      clientId: "green-id",
      clientSecret: "green-secret-npm-0002",
    },
  ],
  tokenUrl: emulator.tokenUrl,
  onEvent: (event) => {
    events.push(event.type);
    telemetry.onEvent(event);
  },
}));

async function me(): Promise<{ status: number; clientId?: string }> {
  const response = await auth.fetch(`${emulator.apiUrl}/api/v2/tokens/me`);
  const body = await response.json() as { OAuthClient?: { id: string } };
  return { status: response.status, clientId: body.OAuthClient?.id };
}

const token = await auth.getAccessToken();
const first = await me();
emulator.revokeToken(token);
const afterRevoke = await me();
const unauthorizedReplayed = emulator.stats().apiUnauthorized;
emulator.regenerateSecret("blue-id");
auth.invalidate();
const afterRegenerate = await me();

const admin = createDualSecretAuth({
  credentials: [{
    label: "admin",
    clientId: "admin-id",
    clientSecret: "admin-secret-npm-0003",
  }],
  tokenUrl: emulator.tokenUrl,
});
let published = "";
const report = await runStagedRotation({
  credentials: [
    {
      label: "blue",
      clientId: "blue-id",
      clientSecret: emulator.getClientSecret("blue-id"),
    },
    {
      label: "green",
      clientId: "green-id",
      clientSecret: "green-secret-npm-0002",
    },
  ],
  active: "green",
  tokenUrl: emulator.tokenUrl,
  admin: createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => admin.getAccessToken(),
  }),
  sink: createCallbackSink((update) => void (published = update.label)),
});

// A sink that fails: the library's own error, with its code, on every runtime.
let failedRotation = "";
try {
  await runStagedRotation({
    credentials: [
      {
        label: "blue",
        clientId: "blue-id",
        clientSecret: emulator.getClientSecret("blue-id"),
      },
      {
        label: "green",
        clientId: "green-id",
        clientSecret: "green-secret-npm-0002",
      },
    ],
    active: "green",
    tokenUrl: emulator.tokenUrl,
    admin: createGenesysAdminClient({
      apiUrl: emulator.apiUrl,
      getAccessToken: () => admin.getAccessToken(),
    }),
    sink: createCallbackSink(() => {
      throw new Error("disk full");
    }),
  });
} catch (error) {
  failedRotation = String((error as { code?: unknown }).code);
}

// The emulator's faults under this runtime's HTTP server.
const form = {
  method: "POST",
  headers: {
    authorization: `Basic ${btoa("green-id:green-secret-npm-0002")}`,
    "content-type": "application/x-www-form-urlencoded",
  },
  body: "grant_type=client_credentials",
};
emulator.injectTokenFaults({ kind: "reset" });
let resetRejected = false;
try {
  await (await fetch(emulator.tokenUrl, form)).text();
} catch {
  resetRejected = true;
}
emulator.injectApiFaults({ kind: "status", status: 429 });
const limited = await fetch(`${emulator.apiUrl}/api/v2/tokens/me`);
await limited.body?.cancel();
emulator.injectTokenFaults({ kind: "delay", ms: 200 });
const delayStart = Date.now();
await (await fetch(emulator.tokenUrl, form)).text();
const delayedMs = Date.now() - delayStart;

console.log(JSON.stringify({
  runtime: versions.bun ? `bun ${versions.bun}` : `node ${versions.node}`,
  tokenIssued: token.length > 20,
  first,
  afterRevoke,
  unauthorizedReplayed,
  afterRegenerate,
  active: auth.status().active,
  events,
  rotation: { published, active: report.active },
  failedRotation,
  faults: {
    resetRejected,
    rateLimited: {
      status: limited.status,
      retryAfter: limited.headers.get("retry-after"),
    },
    delayed: delayedMs >= 150,
  },
  inspected: String(auth),
}));
await admin.close();
await auth.close();
await emulator.close();
