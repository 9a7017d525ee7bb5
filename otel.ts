/**
 * OpenTelemetry for `createDualSecretAuth`: spans for token requests and
 * `getAccessToken()` calls, and metrics for token requests by credential and
 * outcome, failovers, rotations, cache hits and misses and the time left on
 * the token served. It uses only `@opentelemetry/api` (`trace.getTracer`,
 * `metrics.getMeter` under this package's name and version) and never
 * installs a provider: on Deno, run with `OTEL_DENO=true`; on Node and Bun,
 * register the OpenTelemetry SDK as usual. No secret or token is recorded.
 *
 * @example Export with Deno's built-in OpenTelemetry
 * ```ts
 * // OTEL_DENO=true deno run --allow-net --allow-env app.ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { createAuthTelemetry } from "@rotating/dual-secret-auth/otel";
 *
 * const telemetry = createAuthTelemetry();
 * await using auth = telemetry.instrument(createDualSecretAuth({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   environment: "mypurecloud.de",
 *   onEvent: telemetry.onEvent,
 * }));
 * if (auth.status().active !== "blue") throw new Error();
 * ```
 *
 * @module
 */
export {
  type AuthTelemetry,
  type AuthTelemetryOptions,
  createAuthTelemetry,
  type InstrumentableAuth,
  OTEL_ATTRIBUTES,
  OTEL_METRICS,
  OTEL_SPANS,
  type OtelAttributeKeys,
  type OtelMetricNames,
  type OtelSpanNames,
} from "./src/otel/telemetry.ts";
export type {
  AuthEvent,
  AuthEventListener,
  ErrorSummary,
  FailoverEvent,
  RetryEvent,
  RotatedEvent,
  TokenAcquiredEvent,
  TokenFailedEvent,
  WarningEvent,
} from "./src/events.ts";
export {
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
} from "./src/otel/version.ts";

// Types named by the signatures above, from the modules that own them.
export type {
  ApiRateLimitedEvent,
  ApiReplaySkippedEvent,
  ReprobeEvent,
} from "./src/events.ts";
