/**
 * A fleet alert as an OpenTelemetry event: a span named
 * `dual_secret_auth.fleet.alert` carrying the alert's kind, service, label,
 * since when and how many instances, with one span event holding the
 * summary. Through `@opentelemetry/api` only, under the package's
 * instrumentation scope, so nothing is recorded unless a provider is set up
 * (`OTEL_DENO=true` on Deno). The alert is secret-free by construction.
 *
 * @module
 */
import {
  SpanStatusCode,
  trace,
  // deno-lint-ignore no-import-prefix
} from "npm:@opentelemetry/api@^1.10.0";
import {
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
} from "../otel/version.ts";
import type { FleetAlert } from "./alerts.ts";

/** The span name of a fleet alert. */
export const FLEET_ALERT_SPAN = "dual_secret_auth.fleet.alert" as const;

/**
 * Records an alert as an OpenTelemetry span with one event.
 *
 * @param alert The alert.
 */
export function recordAlertEvent(alert: FleetAlert): void {
  const tracer = trace.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  const span = tracer.startSpan(FLEET_ALERT_SPAN, {
    startTime: alert.at,
    attributes: {
      "dual_secret_auth.alert.kind": alert.kind,
      "dual_secret_auth.service": alert.service,
      ...(alert.label === undefined
        ? {}
        : { "dual_secret_auth.credential": alert.label }),
      "dual_secret_auth.alert.since": new Date(alert.since).toISOString(),
      "dual_secret_auth.alert.instances": alert.instances.map((i) =>
        i.instanceId
      ),
    },
  });
  span.addEvent("fleet.alert", { summary: alert.summary }, alert.at);
  span.setStatus({ code: SpanStatusCode.ERROR, message: alert.kind });
  span.end(alert.at);
}
