/**
 * Rotation per provider (part of `deno task bench`, never a timed test):
 * `deno task rotate --env-file .env.<provider> --yes --promote` against each
 * provider's emulator (Okta, Entra ID, Keycloak, Cognito, Auth0), set up by
 * the harness of tests/tasks/rotate_provider_test.ts
 * (tests/tasks/rotate_provider_scenario.ts).
 *
 * Per provider, two runs on one emulator: first with 4 services following
 * the env file and calling the emulator's protected resource through
 * `auth.fetch` (their calls and failed calls; every token request the
 * emulator saw meanwhile), then the rotation back with no service running,
 * so the token requests are the task's own (the application client's: the
 * plan's request and the proof; the admin's, for admins that get tokens).
 * Two-secret providers wait `--reload-wait 2` before revoking the old
 * secret; that wait is in their duration.
 *
 * `deno task bench` writes `providers.md` and `providers.json` beside
 * `latest.md`, unless `--skip-providers` (or `--quick`); alone it prints
 * markdown (`--json`: the figures) and, with `--out DIR`, writes both files.
 *
 * Usage: `deno run -A --lock=deno.dev.lock bench/scenarios/provider_rotation.ts [--json] [--out DIR]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  PROVIDERS,
  rotateWithServices,
  SERVICES,
  writeEnv,
} from "../../tests/tasks/rotate_provider_scenario.ts";
import { createWorkspace } from "../../tests/tasks/workspace.ts";

const RELOAD_WAIT_S = 2;

/** One provider's figures. */
export interface ProviderRotationFigures {
  /** The provider, as `AUTH_PROVIDER` names it. */
  readonly provider: string;
  /** `two-secrets` or `twin-clients` (whether a retire phase ran). */
  readonly model: string;
  /** Exit code of the rotation with services running. */
  readonly exitCode: number;
  /** Its wall time (task process start to exit), in ms. */
  readonly durationMs: number;
  /** Token requests the emulator saw during it (the services and the task). */
  readonly tokenRequests: number;
  /** Of them, answered with an error. */
  readonly tokenFailures: number;
  /** Calls the services made through `auth.fetch` over the run. */
  readonly calls: number;
  /** Of them, failed. */
  readonly failedCalls: number;
  /** Exit code of the rotation back, with no service running. */
  readonly aloneExitCode: number;
  /** Its wall time, in ms. */
  readonly aloneDurationMs: number;
  /** Its token requests with the application client (plan and proof). */
  readonly aloneAppTokenRequests: number;
  /** Its token requests with the admin credential (0 for API tokens and AWS keys). */
  readonly aloneAdminTokenRequests: number;
  /** Its requests to the secret-management API. */
  readonly aloneApiRequests: number;
}

/**
 * Runs the rotation on each provider's emulator.
 *
 * @param options Where progress lines go.
 * @returns The figures and their markdown section.
 */
export async function runProviderRotationBench(
  options: { progress?: (line: string) => void } = {},
): Promise<{ figures: ProviderRotationFigures[]; markdown: string }> {
  const figures: ProviderRotationFigures[] = [];
  for (const [provider, start] of Object.entries(PROVIDERS)) {
    options.progress?.(`providers: ${provider}`);
    await using world = await start();
    await using ws = await createWorkspace();
    const file = `.env.${provider}`;
    const args = [
      "--env-file",
      file,
      "--yes",
      "--promote",
      "--reload-wait",
      String(RELOAD_WAIT_S),
    ];
    await writeEnv(ws, file, world.env);
    const withServices = await rotateWithServices(world, ws, file, args);
    const alone = await rotateWithServices(world, ws, file, args, 0);
    const appIds = new Set([
      world.env.AUTH_CLIENT_ID_BLUE,
      world.env.AUTH_CLIENT_ID_GREEN,
    ]);
    const byClient = Object.entries(alone.tokenRequestsByClient);
    const app = byClient.filter(([id]) => appIds.has(id))
      .reduce((n, [, count]) => n + count, 0);
    figures.push({
      provider,
      model: world.liveSecrets() === undefined ? "twin-clients" : "two-secrets",
      exitCode: withServices.code,
      durationMs: Math.round(withServices.durationMs),
      tokenRequests: withServices.tokenRequests,
      tokenFailures: withServices.tokenFailures,
      calls: withServices.reports.reduce((n, r) => n + r.ok + r.failed, 0),
      failedCalls: withServices.reports.reduce((n, r) => n + r.failed, 0),
      aloneExitCode: alone.code,
      aloneDurationMs: Math.round(alone.durationMs),
      aloneAppTokenRequests: app,
      aloneAdminTokenRequests: alone.tokenRequests - app,
      aloneApiRequests: alone.apiRequests,
    });
  }
  return { figures, markdown: renderMarkdown(figures) };
}

function renderMarkdown(figures: readonly ProviderRotationFigures[]): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const rows = figures.map((f) =>
    `| ${f.provider} | ${f.model} | ${f.exitCode} | ${
      s(f.durationMs)
    } | ${f.tokenRequests} | ${f.tokenFailures} | ${f.calls} | ${f.failedCalls} | ${f.aloneExitCode} | ${
      s(f.aloneDurationMs)
    } | ${f.aloneAppTokenRequests} | ${f.aloneAdminTokenRequests} | ${f.aloneApiRequests} |`
  ).join("\n");
  return `## Rotation per provider (emulators)

\`deno task rotate --env-file .env.<provider> --yes --promote --reload-wait ${RELOAD_WAIT_S}\` on each provider's emulator: first while ${SERVICES} services follow the env file and call a protected resource through \`auth.fetch\` every 10 ms, then the rotation back with no service running (its token requests are the task's own). Two-secret providers revoke the old secret after the ${RELOAD_WAIT_S} s reload wait, which their durations include. Durations are of the task's process, start to exit.

| provider | model | exit | duration s | token requests (services + task) | token failures | service calls | failed calls | alone: exit | alone: duration s | alone: app token requests | alone: admin token requests | alone: admin API requests |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows}
`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      out: { type: "string" },
    },
  });
  const { figures, markdown } = await runProviderRotationBench({
    progress: (line) => console.error(line),
  });
  if (values.out) {
    await Deno.writeTextFile(`${values.out}/providers.md`, markdown);
    await Deno.writeTextFile(
      `${values.out}/providers.json`,
      JSON.stringify(figures, null, 2) + "\n",
    );
  }
  console.log(values.json ? JSON.stringify(figures, null, 2) : markdown);
}
