/**
 * `deno task demo`: zero-downtime rotation, live, with no set-up and no
 * secrets. It starts the Genesys Cloud emulator with two OAuth clients (blue
 * and green) and an admin client, runs application traffic through
 * `auth.fetch`, and meanwhile rotates secrets with the same staged rotation
 * that `deno task rotate` runs — and once regenerates the active secret
 * behind the application's back, forcing a failover. Exits 0 only if no
 * request failed.
 *
 * `--provider okta|entra|keycloak|cognito|auth0` shows the same staged
 * rotation on that provider's emulator instead, through the provider's
 * adapter (`readProviderEnv`, as `deno task rotate` uses it): two rotations
 * under traffic, each promoted, and with a two-secret provider the old
 * secret revoked once the application has switched.
 *
 * @module
 */
import { type AuthEvent, createDualSecretAuth } from "../mod.ts";
import { startGenesysEmulator } from "../testing.ts";
import { startProviderRehearsal } from "../src/testing/providers/rehearsal.ts";
import { readProviderEnv } from "../src/providers/env.ts";
import { createGenesysAdminClient } from "../src/genesys/admin_client.ts";
import {
  type RotationPhaseEvent,
  runStagedRotation,
} from "../src/rotation/staged_rotation.ts";
import { createCallbackSink } from "../src/rotation/sinks.ts";
import type { CredentialInput } from "../src/config.ts";
import {
  COMMON_OPTIONS,
  noStoreOptions,
  paint,
  parseTaskArgs,
  readOnlyOptions,
  runTask,
  setUpLogging,
  table,
  type TaskOptions,
  UsageError,
  useColour,
} from "./_cli.ts";

/** How the demo runs. */
export interface DemoOptions {
  /** Concurrent application workers. */
  readonly workers: number;
  /** Pause between the demo's steps, in ms (traffic flows throughout). */
  readonly stepMs: number;
  /** Token lifetime in seconds, short so refreshes ahead of expiry show. */
  readonly tokenLifetimeSeconds: number;
  /** Where progress and the summary go. */
  readonly write: (text: string) => void;
  /** Whether to redraw one live progress line (a terminal) or print steps. */
  readonly live: boolean;
  /** Whether to colour the output. */
  readonly color: boolean;
  /** Receives every library event (for logging), besides the progress display. */
  readonly onEvent?: (event: AuthEvent) => void;
}

/** What the demo measured. */
export interface DemoResult {
  /** Requests that got a 2xx. */
  readonly ok: number;
  /** Requests that failed (non-2xx or thrown). */
  readonly failed: number;
  /** Median request latency in ms. */
  readonly p50Ms: number;
  /** 99th percentile request latency in ms. */
  readonly p99Ms: number;
  /** Token requests the emulator served, per client id. */
  readonly tokenRequests: Readonly<Record<string, number>>;
  /** API requests that presented an expired token (must be 0). */
  readonly expiredTokenUses: number;
  /** Failovers the application made. */
  readonly failovers: number;
  /** Staged rotations completed. */
  readonly rotations: number;
  /** The active credential at the end. */
  readonly active: string;
  /**
   * The provider shown, with `--provider`.
   *
   * @default undefined (Genesys Cloud)
   */
  readonly provider?: string;
  /**
   * With `--provider`: the old secrets revoked after promotion.
   *
   * @default undefined (Genesys Cloud)
   */
  readonly revoked?: number;
}

const BLUE = { label: "blue", clientId: "demo-blue-client" } as const;
const GREEN = { label: "green", clientId: "demo-green-client" } as const;
const ADMIN_ID = "demo-rotation-admin";

/**
 * Runs the demo.
 *
 * @param options How to run it.
 * @returns The figures for the summary.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const secrets = new Map<string, string>([
    [BLUE.label, randomSecret()],
    [GREEN.label, randomSecret()],
  ]);
  const adminSecret = randomSecret();
  await using emulator = startGenesysEmulator({
    revokeTokensOnRegenerate: true,
    clients: [
      {
        clientId: BLUE.clientId,
        secret: secrets.get(BLUE.label)!,
        name: "App (blue)",
        tokenLifetimeSeconds: options.tokenLifetimeSeconds,
      },
      {
        clientId: GREEN.clientId,
        secret: secrets.get(GREEN.label)!,
        name: "App (green)",
        tokenLifetimeSeconds: options.tokenLifetimeSeconds,
      },
      {
        clientId: ADMIN_ID,
        secret: adminSecret,
        name: "Rotation admin",
        permissions: ["oauth:client:view", "oauth:client:edit"],
      },
    ],
  });
  const credentials = (): CredentialInput[] =>
    [BLUE, GREEN].map((c) => ({
      ...c,
      clientSecret: secrets.get(c.label)!,
    }));

  const progress = createProgress(options);
  const onEvent = (event: AuthEvent) => {
    progress.event(event);
    options.onEvent?.(event);
  };
  await using app = createDualSecretAuth({
    credentials: credentials(),
    tokenUrl: emulator.tokenUrl,
    refreshMarginMs: Math.floor(options.tokenLifetimeSeconds * 1000 / 3),
    onEvent,
  });
  await using adminAuth = createDualSecretAuth({
    credentials: [{
      label: "admin",
      clientId: ADMIN_ID,
      clientSecret: adminSecret,
    }],
    tokenUrl: emulator.tokenUrl,
  });
  const admin = createGenesysAdminClient({
    apiUrl: emulator.apiUrl,
    getAccessToken: () => adminAuth.getAccessToken(),
  });

  const traffic = startTraffic(
    app,
    `${emulator.apiUrl}/api/v2/tokens/me`,
    options.workers,
    progress,
  );
  const pause = () => sleep(options.stepMs);
  let rotations = 0;

  const rotate = async (standby: string, promote: boolean) => {
    const active = app.status().active;
    progress.step(
      `Staged rotation: regenerate ${standby}'s secret` +
        (promote ? `, then promote it over ${active}` : ""),
    );
    await runStagedRotation({
      credentials: credentials(),
      active,
      standby,
      tokenUrl: emulator.tokenUrl,
      admin,
      sink: createCallbackSink("application", (update) => {
        secrets.set(update.label, update.secret.reveal());
        app.setCredentials(credentials());
      }),
      promote,
      onPromote: async (label) => void await app.rotate({ to: label }),
      onPhase: (event: RotationPhaseEvent) => progress.phase(event),
    });
    rotations++;
  };

  progress.step("Traffic starts on blue");
  await pause();
  await rotate(GREEN.label, true);
  await pause();
  await rotate(BLUE.label, true);
  await pause();
  const victim = app.status().active;
  const victimId = victim === BLUE.label ? BLUE.clientId : GREEN.clientId;
  progress.step(
    `Incident: ${victim}'s secret is regenerated behind the application's back`,
  );
  emulator.regenerateSecret(victimId);
  await waitFor(() => app.status().active !== victim, options.stepMs * 4);
  await pause();
  await rotate(victim, false);
  progress.step(`${victim} is healthy again, as the standby`);
  await pause();
  const totals = await traffic.stop();
  progress.done();

  const stats = emulator.stats();
  return {
    ...totals,
    tokenRequests: {
      [BLUE.label]: stats.tokenRequestsByClient[BLUE.clientId] ?? 0,
      [GREEN.label]: stats.tokenRequestsByClient[GREEN.clientId] ?? 0,
    },
    expiredTokenUses: stats.expiredTokenUses,
    failovers: progress.failovers,
    rotations,
    active: app.status().active,
  };
}

/** The providers `--provider` shows. */
export const DEMO_PROVIDERS = [
  "okta",
  "entra",
  "keycloak",
  "cognito",
  "auth0",
] as const;

/** One of {@linkcode DEMO_PROVIDERS}. */
export type DemoProvider = typeof DEMO_PROVIDERS[number];

/**
 * Runs the demo on a provider's emulator: traffic through `auth.fetch` to
 * its protected resource while green, then blue, is rotated and promoted
 * through the provider's adapter.
 *
 * @param provider Which provider.
 * @param options How to run it.
 * @returns The figures for the summary.
 */
export async function runProviderDemo(
  provider: DemoProvider,
  options: DemoOptions,
): Promise<DemoResult> {
  // The emulator and env file `deno task emulator --provider` gives an
  // operator: both labels' secrets live, each with its recorded id.
  const rehearsal = await startProviderRehearsal(provider);
  await using emulator = rehearsal.emulator;
  const env = Object.fromEntries(rehearsal.settings);
  const config = readProviderEnv(env);
  await using handle = await config.createProvider();
  const secrets = new Map(
    config.credentials.map((c) => [c.label, c.clientSecret.reveal()]),
  );
  const credentials = (): CredentialInput[] =>
    config.credentials.map((c) => ({
      label: c.label,
      clientId: c.clientId,
      clientSecret: secrets.get(c.label)!,
      authMethod: c.authMethod,
    }));
  const progress = createProgress(options);
  const request = {
    ...(config.scope === undefined ? {} : { scope: config.scope }),
    ...(config.tokenParams === undefined
      ? {}
      : { tokenParams: config.tokenParams }),
  };
  await using app = createDualSecretAuth({
    credentials: credentials(),
    tokenUrl: config.tokenUrl,
    ...request,
    onEvent: (event) => {
      progress.event(event);
      options.onEvent?.(event);
    },
  });
  const traffic = startTraffic(
    app,
    emulator.resourceUrl,
    options.workers,
    progress,
  );
  const pause = () => sleep(options.stepMs);
  const secretIds: Record<string, string> = { ...config.secretIds };
  let rotations = 0;
  let revoked = 0;
  const rotate = async (standby: string) => {
    const active = app.status().active;
    progress.step(
      config.model === "two-secrets"
        ? `${config.title}: add a secret for ${standby}, promote it over ${active}, then revoke ${active}'s`
        : `${config.title}: rotate ${standby}'s secret, then promote it over ${active}`,
    );
    const report = await runStagedRotation({
      credentials: credentials(),
      active,
      standby,
      tokenUrl: config.tokenUrl,
      ...request,
      provider: handle.provider,
      secretIds,
      sink: createCallbackSink("application", (update) => {
        secrets.set(update.label, update.secret.reveal());
        if (update.secretId) secretIds[update.label] = update.secretId;
        app.setCredentials(credentials());
      }),
      promote: true,
      onPromote: async (label) => void await app.rotate({ to: label }),
      // In one process the switch is done once onPromote returned.
      revokeGate: ({ label }) =>
        Promise.resolve(
          `the application switched away from "${label}" (${app.status().active} active)`,
        ),
      onPhase: (event: RotationPhaseEvent) => progress.phase(event),
    });
    rotations++;
    if (report.retiredSecretId !== undefined) revoked++;
  };

  progress.step(`Traffic starts on blue (${config.title} emulator)`);
  await pause();
  await rotate("green");
  await pause();
  await rotate("blue");
  await pause();
  const totals = await traffic.stop();
  progress.done();
  const stats = emulator.stats();
  return {
    ...totals,
    // Per OAuth client: with two secrets both labels are one client.
    tokenRequests: Object.fromEntries(
      config.credentials.map((c) => [
        c.clientId,
        stats.tokenRequestsByClient[c.clientId] ?? 0,
      ]),
    ),
    expiredTokenUses: stats.resourceUnauthorized,
    failovers: progress.failovers,
    rotations,
    active: app.status().active,
    provider: config.title,
    ...(config.model === "two-secrets" ? { revoked } : {}),
  };
}

interface Traffic {
  stop(): Promise<{ ok: number; failed: number; p50Ms: number; p99Ms: number }>;
}

function startTraffic(
  app: { fetch(url: string): Promise<Response> },
  url: string,
  workers: number,
  progress: Progress,
): Traffic {
  let running = true;
  const latencies: number[] = [];
  const worker = async () => {
    while (running) {
      const started = performance.now();
      try {
        const response = await app.fetch(url);
        await response.body?.cancel();
        progress.request(response.ok);
      } catch {
        progress.request(false);
      }
      latencies.push(performance.now() - started);
    }
  };
  const all = Promise.all(Array.from({ length: workers }, worker));
  return {
    async stop() {
      running = false;
      await all;
      latencies.sort((a, b) => a - b);
      const at = (q: number) =>
        latencies[
          Math.min(latencies.length - 1, Math.floor(q * latencies.length))
        ] ?? 0;
      return {
        ok: progress.ok,
        failed: progress.failed,
        p50Ms: at(0.5),
        p99Ms: at(0.99),
      };
    },
  };
}

interface Progress {
  ok: number;
  failed: number;
  failovers: number;
  request(ok: boolean): void;
  event(event: AuthEvent): void;
  phase(event: RotationPhaseEvent): void;
  step(text: string): void;
  done(): void;
}

function createProgress(options: DemoOptions): Progress {
  let phase = "-";
  let active = "blue";
  let tokens = 0;
  let lastDraw = 0;
  const state: Progress = {
    ok: 0,
    failed: 0,
    failovers: 0,
    request(ok) {
      ok ? state.ok++ : state.failed++;
      draw(false);
    },
    event(event) {
      if (event.type === "token.acquired") tokens++;
      if (event.type === "failover") {
        state.failovers++;
        active = event.to;
        line(
          paint(
            `  failover ${event.from} → ${event.to}`,
            "yellow",
            options.color,
          ) +
            ` (${event.error.oauthError ?? event.error.code})`,
        );
      }
      if (event.type === "rotated") {
        active = event.to;
        line(
          paint(
            `  rotated ${event.from} → ${event.to}`,
            "green",
            options.color,
          ),
        );
      }
    },
    phase(event) {
      phase = event.phase;
      if (event.status !== "started") {
        line(
          paint(`    ${event.phase}: ${event.status}`, "dim", options.color),
        );
      }
    },
    step(text) {
      line(paint(`▸ ${text}`, "bold", options.color));
    },
    done() {
      draw(true);
      if (options.live) options.write("\n");
    },
  };
  function line(text: string) {
    options.write((options.live ? "\r\x1b[2K" : "") + text + "\n");
    draw(true);
  }
  function draw(force: boolean) {
    if (!options.live) return;
    const now = performance.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const failed = paint(
      String(state.failed),
      state.failed === 0 ? "green" : "red",
      options.color,
    );
    options.write(
      `\r\x1b[2K  requests ok ${state.ok}  failed ${failed}  ` +
        `tokens acquired ${tokens}  active ${active}  phase ${phase}`,
    );
  }
  return state;
}

/**
 * Formats the demo's result as an aligned table.
 *
 * @param result The figures.
 * @param colour Whether to paint it.
 * @returns The table's lines.
 */
export function formatSummary(result: DemoResult, colour: boolean): string[] {
  const failed = {
    text: String(result.failed),
    colour: result.failed === 0 ? "green" : "red",
  } as const;
  return table(["measure", "value"], [
    ["requests ok", String(result.ok)],
    ["requests failed", failed],
    [
      "latency p50 / p99",
      `${result.p50Ms.toFixed(2)} ms / ${result.p99Ms.toFixed(2)} ms`,
    ],
    ...Object.entries(result.tokenRequests).map(([label, count]) => [
      `token requests at the emulator (${label})`,
      String(count),
    ]),
    [
      result.provider === undefined
        ? "requests with an expired token"
        : "requests the resource refused (401)",
      String(result.expiredTokenUses),
    ],
    ...(result.revoked === undefined
      ? []
      : [["old secrets revoked", String(result.revoked)]]),
    ["staged rotations", String(result.rotations)],
    ["failovers", String(result.failovers)],
    ["active at the end", result.active],
  ], colour);
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "x");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(10);
}

/** The options the demo parser accepts; `--help` documents each (tests/tasks/cli_table_test.ts). */
export const OPTIONS = {
  ...COMMON_OPTIONS,
  workers: { type: "string", default: "32" },
  "step-ms": { type: "string", default: "1500" },
  provider: { type: "string" },
  verbose: { type: "boolean", short: "v", default: false },
  json: { type: "boolean", default: false },
  ...readOnlyOptions("the demo"),
  "env-file": {
    type: "string",
    noEffect:
      "the demo reads and writes no env file: its emulator and clients live in the process",
  },
  ...noStoreOptions("the demo runs one process and keeps no fleet store"),
} as const satisfies TaskOptions;

const HELP = `Usage: deno task demo [options]

Runs application traffic against a local Genesys Cloud emulator while
rotating secrets and failing over; no set-up, no secrets. Touches nothing
outside the process (only 127.0.0.1).

Options:
  --workers <n>    concurrent application workers (default 32)
  --step-ms <ms>   pause between the demo's phases (default 1500)
  --provider <name>
                   okta, entra, keycloak, cognito or auth0: the same staged
                   rotation on that provider's emulator, through its adapter
                   (two rotations, each promoted; two-secret providers revoke
                   the old secret once the application switched)
  -v, --verbose    log every library event to stderr
  --json           progress to stderr; on stdout only the summary, as JSON
                   (ok: true when no request failed; requestsOk, failed, ...)
  -h, --help       show this help
  -V, --version    show the version

Exit codes:
  0    no request failed across every rotation and the failover
  1    some requests failed (the summary says how many)
  2    bad option
`;

/**
 * Runs the demo. Errors are thrown: wrap it in {@linkcode runTask}.
 *
 * @param args The command-line arguments (default `Deno.args`).
 * @returns The exit code: 0 when no request failed.
 */
export async function main(
  args: readonly string[] = Deno.args,
): Promise<number> {
  const values = parseTaskArgs("deno task demo", OPTIONS, HELP, args);
  if (values === undefined) return 0;
  const workers = Number(values.workers);
  const stepMs = Number(values["step-ms"]);
  if (!(Number.isInteger(workers) && workers > 0 && stepMs >= 0)) {
    throw new UsageError(
      `--workers ${values.workers} --step-ms ${
        values["step-ms"]
      }: --workers takes a whole number > 0, --step-ms a number ≥ 0`,
    );
  }
  const provider = values.provider;
  if (
    provider !== undefined &&
    !(DEMO_PROVIDERS as readonly string[]).includes(provider)
  ) {
    throw new UsageError(
      `--provider ${provider}: choose one of ${DEMO_PROVIDERS.join(", ")}`,
    );
  }
  const logger = await setUpLogging(
    "demo",
    values.verbose ? "debug" : "warning",
  );
  // With --json stdout holds the summary alone: progress goes to stderr.
  const progressTo = values.json ? Deno.stderr : Deno.stdout;
  const live = progressTo.isTerminal();
  const colour = useColour() && !values.json;
  const encoder = new TextEncoder();
  const demoOptions: DemoOptions = {
    workers,
    stepMs,
    tokenLifetimeSeconds: 3,
    live,
    color: colour,
    write: (text) => progressTo.writeSync(encoder.encode(text)),
    onEvent: (event) =>
      logger.debug("{type} {event}", { type: event.type, event }),
  };
  const result = provider === undefined
    ? await runDemo(demoOptions)
    : await runProviderDemo(provider as DemoProvider, demoOptions);
  if (values.json) {
    // `ok` is the verdict, as in every task's JSON; the count of requests
    // that succeeded is `requestsOk`.
    const { ok: requestsOk, ...rest } = result;
    console.log(
      JSON.stringify({ ok: result.failed === 0, requestsOk, ...rest }, null, 2),
    );
    return result.failed === 0 ? 0 : 1;
  }
  console.log(["", "Summary", ...formatSummary(result, colour)].join("\n"));
  console.log(
    result.failed === 0
      ? result.provider === undefined
        ? "\nZero requests failed across every rotation and the failover."
        : `\nZero requests failed across every ${result.provider} rotation.`
      : `\n${result.failed} requests failed.`,
  );
  return result.failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await runTask("demo", main, Deno.args));
}
