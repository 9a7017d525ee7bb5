/**
 * OpenTelemetry for an auth instance, through `@opentelemetry/api` only: the
 * library asks the global API for a tracer and a meter under its own name and
 * version and never installs a provider, so nothing is recorded unless the
 * application (or `OTEL_DENO=true` on Deno) set one up.
 *
 * Everything recorded comes from the public surface: the `onEvent` stream and
 * `status()`. Attributes carry labels, client ids, outcomes and error codes,
 * never a secret or a token.
 *
 * @module
 */
// An npm: specifier, not an import-map entry: Deno installs every npm entry of
// the import map on any run, and only ./otel needs this package.
import {
  type Attributes,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  // deno-lint-ignore no-import-prefix
} from "npm:@opentelemetry/api@^1.10.0";
import type { AuthEvent, AuthEventListener } from "../events.ts";
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from "./version.ts";

/** The names of the metrics recorded, by what they count. */
export interface OtelMetricNames {
  /** Token requests, by `credential` and `outcome` (`success`, `failure`, `retry`). */
  readonly tokenRequests: "dual_secret_auth.token.requests";
  /** How long token requests took, retries included, in seconds. */
  readonly tokenRequestDuration: "dual_secret_auth.token.request.duration";
  /** Failovers, by `from` and `to`. */
  readonly failovers: "dual_secret_auth.failovers";
  /** Verified switches of the active credential, by `from` and `to`. */
  readonly rotations: "dual_secret_auth.rotations";
  /** `getAccessToken()` calls, by `cache.result`: `hit` (served from cache) or `miss`. */
  readonly cacheRequests: "dual_secret_auth.token.cache.requests";
  /** Seconds left on the token served, by `credential`. */
  readonly tokenTimeLeft: "dual_secret_auth.token.time_left";
  /** Warnings, by `warning.code`. */
  readonly warnings: "dual_secret_auth.warnings";
}

/** The metric names, as exported. */
export const OTEL_METRICS: OtelMetricNames = Object.freeze({
  tokenRequests: "dual_secret_auth.token.requests",
  tokenRequestDuration: "dual_secret_auth.token.request.duration",
  failovers: "dual_secret_auth.failovers",
  rotations: "dual_secret_auth.rotations",
  cacheRequests: "dual_secret_auth.token.cache.requests",
  tokenTimeLeft: "dual_secret_auth.token.time_left",
  warnings: "dual_secret_auth.warnings",
});

/** The names of the spans recorded. */
export interface OtelSpanNames {
  /** One token request to the token endpoint (retries included). */
  readonly tokenRequest: "dual_secret_auth.token_request";
  /** One `getAccessToken()` call of an instrumented instance. */
  readonly getAccessToken: "dual_secret_auth.get_access_token";
}

/** The span names, as exported. */
export const OTEL_SPANS: OtelSpanNames = Object.freeze({
  tokenRequest: "dual_secret_auth.token_request",
  getAccessToken: "dual_secret_auth.get_access_token",
});

/** The attribute keys used on spans and metrics; none holds a secret or token. */
export interface OtelAttributeKeys {
  /** The credential's label. */
  readonly credential: "dual_secret_auth.credential";
  /** The credential's client id (spans only). */
  readonly clientId: "dual_secret_auth.client_id";
  /** `success`, `failure` or `retry`. */
  readonly outcome: "dual_secret_auth.outcome";
  /** Whether a refresh ahead of expiry made the request. */
  readonly background: "dual_secret_auth.background";
  /** The credential switched from. */
  readonly from: "dual_secret_auth.from";
  /** The credential switched to. */
  readonly to: "dual_secret_auth.to";
  /** `hit` or `miss`. */
  readonly cacheResult: "dual_secret_auth.cache.result";
  /** A warning's code. */
  readonly warningCode: "dual_secret_auth.warning.code";
  /** An error's stable code. */
  readonly errorType: "error.type";
  /** The HTTP status of a failed token request. */
  readonly httpStatus: "http.response.status_code";
}

/** The attribute keys, as exported. */
export const OTEL_ATTRIBUTES: OtelAttributeKeys = Object.freeze({
  credential: "dual_secret_auth.credential",
  clientId: "dual_secret_auth.client_id",
  outcome: "dual_secret_auth.outcome",
  background: "dual_secret_auth.background",
  from: "dual_secret_auth.from",
  to: "dual_secret_auth.to",
  cacheResult: "dual_secret_auth.cache.result",
  warningCode: "dual_secret_auth.warning.code",
  errorType: "error.type",
  httpStatus: "http.response.status_code",
});

/** Options of {@linkcode createAuthTelemetry}. */
export interface AuthTelemetryOptions {
  /**
   * Source of time for the time left on a token, in ms since the epoch.
   *
   * @default Date.now
   */
  readonly now?: () => number;
}

/**
 * What {@linkcode AuthTelemetry.instrument} needs of an auth instance; a
 * `DualSecretAuth` has it.
 */
export interface InstrumentableAuth {
  /** Resolves with an access token. */
  getAccessToken(options?: { readonly signal?: AbortSignal }): Promise<string>;
  /** A snapshot without secrets or tokens. */
  status(): {
    readonly active: string;
    readonly credentials: readonly {
      readonly label: string;
      readonly expiresAt?: number;
    }[];
  };
}

/** Telemetry for one or more auth instances. */
export interface AuthTelemetry {
  /**
   * The listener to pass as `onEvent` to `createDualSecretAuth` (or to call
   * from your own listener): records token-request spans and the token
   * request, failover, rotation and warning counters.
   */
  readonly onEvent: AuthEventListener;
  /**
   * Wraps an instance whose events reach {@linkcode AuthTelemetry.onEvent}:
   * `getAccessToken()` then records a span, a cache hit or miss, and the
   * time left on the token served; the other methods pass through (token
   * requests made for `fetch` still show as token-request spans and counts). A call counts as a miss when
   * a token request finished for the caller while it waited (a request shared
   * by concurrent callers is a miss for each of them).
   *
   * @param auth The instance.
   * @returns A view of `auth` with every method and property of it, whose
   * `getAccessToken()` calls are recorded.
   */
  instrument<Auth extends InstrumentableAuth>(auth: Auth): Auth;
}

/**
 * Creates telemetry that records through the global OpenTelemetry API.
 *
 * @param options The clock; `Date.now` if left out.
 * @returns The listener and the wrapper.
 *
 * @example Traces and metrics for an auth instance
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { createAuthTelemetry } from "@rotating/dual-secret-auth/otel";
 *
 * const telemetry = createAuthTelemetry();
 * await using auth = telemetry.instrument(createDualSecretAuth({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   environment: "mypurecloud.ie",
 *   onEvent: telemetry.onEvent,
 * }));
 * if (auth.status().active !== "blue") throw new Error();
 * ```
 */
export function createAuthTelemetry(
  options?: AuthTelemetryOptions,
): AuthTelemetry {
  const tracer = trace.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  const meter = metrics.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  const now = options?.now ?? Date.now;
  const instruments = {
    tokenRequests: meter.createCounter(OTEL_METRICS.tokenRequests, {
      description: "Token requests to the token endpoint, by outcome",
      unit: "{request}",
    }),
    tokenRequestDuration: meter.createHistogram(
      OTEL_METRICS.tokenRequestDuration,
      {
        description: "Duration of token requests, retries included",
        unit: "s",
      },
    ),
    failovers: meter.createCounter(OTEL_METRICS.failovers, {
      description: "Switches to another credential after a rejection",
      unit: "{failover}",
    }),
    rotations: meter.createCounter(OTEL_METRICS.rotations, {
      description: "Verified switches of the active credential",
      unit: "{rotation}",
    }),
    cacheRequests: meter.createCounter(OTEL_METRICS.cacheRequests, {
      description: "getAccessToken() calls served from cache (hit) or not",
      unit: "{call}",
    }),
    tokenTimeLeft: meter.createHistogram(OTEL_METRICS.tokenTimeLeft, {
      description: "Time left on the token served",
      unit: "s",
      advice: {
        explicitBucketBoundaries: [
          0,
          30,
          60,
          120,
          300,
          600,
          1800,
          3600,
          7200,
          21600,
          43200,
          86400,
        ],
      },
    }),
    warnings: meter.createCounter(OTEL_METRICS.warnings, {
      description: "Warnings the library emitted",
      unit: "{warning}",
    }),
  };
  /** Finished foreground token requests, so a caller can tell hit from miss. */
  let foregroundRequests = 0;

  function recordTokenSpan(
    name: string,
    attributes: Attributes,
    durationMs: number,
    error?: { code: string; message: string },
  ): void {
    const end = now();
    const span = tracer.startSpan(name, {
      kind: SpanKind.CLIENT,
      startTime: end - durationMs,
      attributes,
    });
    if (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
    }
    span.end(end);
  }

  const onEvent = (event: AuthEvent): void => {
    const A = OTEL_ATTRIBUTES;
    switch (event.type) {
      case "token.acquired": {
        if (!event.background) foregroundRequests++;
        const labels = { [A.credential]: event.label, [A.outcome]: "success" };
        instruments.tokenRequests.add(1, labels);
        instruments.tokenRequestDuration.record(
          event.durationMs / 1000,
          labels,
        );
        recordTokenSpan(OTEL_SPANS.tokenRequest, {
          ...labels,
          [A.clientId]: event.clientId,
          [A.background]: event.background,
        }, event.durationMs);
        return;
      }
      case "token.failed": {
        if (!event.background) foregroundRequests++;
        const labels = {
          [A.credential]: event.label,
          [A.outcome]: "failure",
          [A.errorType]: event.error.code,
        };
        instruments.tokenRequests.add(1, labels);
        recordTokenSpan(
          OTEL_SPANS.tokenRequest,
          {
            ...labels,
            [A.background]: event.background,
            ...(event.error.status === undefined
              ? {}
              : { [A.httpStatus]: event.error.status }),
          },
          0,
          event.error,
        );
        return;
      }
      case "retry":
        instruments.tokenRequests.add(1, {
          [A.credential]: event.label,
          [A.outcome]: "retry",
          [A.errorType]: event.error.code,
        });
        return;
      case "failover":
        instruments.failovers.add(1, {
          [A.from]: event.from,
          [A.to]: event.to,
        });
        return;
      case "rotated":
        instruments.rotations.add(1, {
          [A.from]: event.from,
          [A.to]: event.to,
        });
        return;
      case "warning":
        instruments.warnings.add(1, { [A.warningCode]: event.code });
        return;
    }
  };

  function instrument<Auth extends InstrumentableAuth>(auth: Auth): Auth {
    const getAccessToken = (
      callOptions?: { readonly signal?: AbortSignal },
    ): Promise<string> =>
      tracer.startActiveSpan(OTEL_SPANS.getAccessToken, {
        kind: SpanKind.INTERNAL,
      }, async (span) => {
        const before = foregroundRequests;
        try {
          const token = await auth.getAccessToken(callOptions);
          const result = foregroundRequests === before ? "hit" : "miss";
          const status = auth.status();
          const served = status.credentials.find((credential) =>
            credential.label === status.active
          );
          span.setAttributes({
            [OTEL_ATTRIBUTES.cacheResult]: result,
            [OTEL_ATTRIBUTES.credential]: status.active,
          });
          instruments.cacheRequests.add(1, {
            [OTEL_ATTRIBUTES.cacheResult]: result,
          });
          if (served?.expiresAt !== undefined) {
            instruments.tokenTimeLeft.record(
              Math.max(0, (served.expiresAt - now()) / 1000),
              { [OTEL_ATTRIBUTES.credential]: status.active },
            );
          }
          return token;
        } catch (error) {
          const code = (error as { code?: unknown })?.code;
          const type = typeof code === "string" ? code : "UNKNOWN";
          span.setAttribute(OTEL_ATTRIBUTES.errorType, type);
          span.setStatus({ code: SpanStatusCode.ERROR, message: type });
          throw error;
        } finally {
          span.end();
        }
      });
    // A view of the instance: its methods live on its prototype and need it
    // as `this`, so they are bound once each; only getAccessToken is
    // instrumented.
    const bound = new Map<PropertyKey, unknown>([
      ["getAccessToken", getAccessToken],
    ]);
    return new Proxy(auth, {
      get(target, key) {
        if (bound.has(key)) return bound.get(key);
        const value: unknown = Reflect.get(target, key, target);
        if (typeof value !== "function") return value;
        const method = value.bind(target);
        bound.set(key, method);
        return method;
      },
    });
  }

  return { onEvent, instrument };
}
