/**
 * `./otel` under Deno's built-in OpenTelemetry: a subprocess with
 * OTEL_DENO=true exports over OTLP/HTTP JSON to a receiver on loopback, which
 * must get the token-request spans and every metric, and no secret or token.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import {
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  OTEL_METRICS,
  OTEL_SPANS,
} from "../../otel.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Received {
  readonly path: string;
  readonly body: string;
}

/** A minimal OTLP/HTTP receiver: keeps every JSON body it is sent. */
function startReceiver() {
  const received: Received[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (request) => {
    received.push({
      path: new URL(request.url).pathname,
      body: await request.text(),
    });
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    received,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}

function attributesOf(list: OtlpAttribute[] | undefined) {
  return Object.fromEntries(
    (list ?? []).map((a) => [a.key, Object.values(a.value)[0]]),
  );
}

Deno.test("the instrumentation scope is the package's name and version", () => {
  assert.equal(INSTRUMENTATION_NAME, denoJson.name);
  assert.equal(INSTRUMENTATION_VERSION, denoJson.version);
});

Deno.test("OTEL_DENO=true exports spans and metrics, and no secret", async () => {
  await using receiver = startReceiver();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "--lock=deno.dev.lock",
      "-P=test",
      "tests/support/otel_scenario.ts",
    ],
    cwd: ROOT,
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "dual-secret-auth-otel-test",
      OTEL_METRIC_EXPORT_INTERVAL: "200",
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  const seen = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.equal(seen.active, "blue");

  const traces = receiver.received.filter((r) => r.path === "/v1/traces");
  const metricBodies = receiver.received.filter((r) =>
    r.path === "/v1/metrics"
  );
  assert.ok(traces.length > 0, "no traces received");
  assert.ok(metricBodies.length > 0, "no metrics received");

  const ours = (body: string) =>
    (JSON.parse(body).resourceSpans ?? JSON.parse(body).resourceMetrics ?? [])
      .flatMap((resource: Record<string, unknown[]>) =>
        resource.scopeSpans ?? resource.scopeMetrics ?? []
      )
      .filter((scope: { scope: { name: string; version: string } }) =>
        scope.scope.name === INSTRUMENTATION_NAME &&
        scope.scope.version === INSTRUMENTATION_VERSION
      );
  const spans = traces.flatMap((r) => ours(r.body)).flatMap((
    scope: { spans: { name: string; attributes: OtlpAttribute[] }[] },
  ) => scope.spans);
  const tokenSpans = spans.filter((s) => s.name === OTEL_SPANS.tokenRequest);
  const credentials = tokenSpans.map((s) =>
    attributesOf(s.attributes)["dual_secret_auth.credential"]
  );
  // blue (first call), green (rotate's proof), green fails, blue (failover).
  assert.ok(credentials.includes("blue") && credentials.includes("green"));
  const outcomes = tokenSpans.map((s) =>
    attributesOf(s.attributes)["dual_secret_auth.outcome"]
  );
  assert.ok(outcomes.includes("success"), outcomes.join());
  assert.ok(
    spans.some((s) => s.name === OTEL_SPANS.getAccessToken),
    "no getAccessToken span",
  );

  const metricNames = new Set(
    metricBodies.flatMap((r) => ours(r.body)).flatMap((
      scope: { metrics: { name: string }[] },
    ) => scope.metrics.map((m) => m.name)),
  );
  for (const name of Object.values(OTEL_METRICS)) {
    if (name === OTEL_METRICS.warnings) continue; // no warning in the scenario
    assert.ok(metricNames.has(name), `metric ${name} missing`);
  }
  const cache = metricBodies.map((r) => r.body).join("\n");
  assert.match(cache, /"hit"/);
  assert.match(cache, /"miss"/);

  const everything = receiver.received.map((r) => r.body).join("\n");
  for (const secret of [...seen.secrets, ...seen.tokens]) {
    assert.ok(!everything.includes(secret), "a secret or token was exported");
  }
});

Deno.test("mod.ts does not import OpenTelemetry", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "mod.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout));
  const specifiers: string[] = graph.modules.map((
    module: { specifier: string },
  ) => module.specifier);
  assert.ok(specifiers.some((specifier) => specifier.endsWith("/mod.ts")));
  for (const specifier of specifiers) {
    assert.doesNotMatch(specifier, /opentelemetry|\/src\/otel\//);
  }
});
