/**
 * Alerts when a fleet's rotation stalls: judged on a {@linkcode FleetStatus}
 * (the status page's one read of the store) and sent as JSON to a webhook.
 * Four triggers: a step older than a bound (a scheduled cycle's step, or a
 * rotation's journal left unfinished), a promotion that leaves stragglers, a
 * revoke gate shut past a bound while a cycle waits for it (with the
 * instances that hold it and when their tokens expire), and a distributed
 * secret older than the maximum age. Each alert fires once, and again only
 * after it has cleared. Payloads are built from the secret-free status.
 *
 * @module
 */
import type { FleetStatus } from "./fleet_status.ts";

/** The bounds that make an alert. Each is off when absent. */
export interface AlertBounds {
  /** A step (a scheduled cycle's, or an unfinished rotation's) older than this, in ms. */
  readonly stepMs?: number;
  /** Instances still off the shared active label this long after a promotion, in ms. */
  readonly stragglerMs?: number;
  /** The revoke gate shut this long while a cycle waits for it, in ms. */
  readonly gateMs?: number;
  /** A distributed secret older than this, in ms (`--max-age`). */
  readonly maxAgeMs?: number;
}

/** What triggered an alert. */
export type AlertKind =
  | "step-stalled"
  | "promotion-stragglers"
  | "gate-shut"
  | "secret-too-old";

/** One alert: what, where, since when, and what to look at. Never a secret. */
export interface FleetAlert {
  /** The trigger. */
  readonly kind: AlertKind;
  /** The service namespace. */
  readonly service: string;
  /** The label concerned, if any. */
  readonly label?: string;
  /** One line for a human. */
  readonly summary: string;
  /** Since when the condition holds, in ms since the epoch. */
  readonly since: number;
  /** When it was found, in ms since the epoch. */
  readonly at: number;
  /** The instances concerned, with why, and when their tokens expire. */
  readonly instances: readonly {
    readonly instanceId: string;
    readonly host?: string;
    readonly reason: string;
    readonly tokenUntil?: number;
  }[];
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/**
 * Judges a status against the bounds.
 *
 * @param status The fleet's state.
 * @param bounds The bounds.
 * @returns The alerts that hold now.
 */
export function evaluateAlerts(
  status: FleetStatus,
  bounds: AlertBounds,
): FleetAlert[] {
  const now = status.readAt;
  const out: FleetAlert[] = [];
  for (const s of status.services) {
    const schedule = s.schedule;
    const waiting = schedule !== undefined && schedule.step !== "done";
    if (
      bounds.stepMs !== undefined && waiting &&
      now - schedule.stepStartedAt > bounds.stepMs
    ) {
      out.push({
        kind: "step-stalled",
        service: s.service,
        ...(schedule.standby === undefined ? {} : { label: schedule.standby }),
        summary: `The scheduled cycle's ${schedule.step} step${
          schedule.standby ? ` of "${schedule.standby}"` : ""
        } has waited ${
          seconds(now - schedule.stepStartedAt)
        }, beyond the bound of ${seconds(bounds.stepMs)}${
          s.stragglers.length > 0
            ? `; waiting for ${
              s.stragglers.map((x) => x.instanceId).join(", ")
            }`
            : ""
        }.`,
        since: schedule.stepStartedAt,
        at: now,
        instances: s.stragglers,
      });
    } else if (
      bounds.stepMs !== undefined && s.rotation?.inProgress === true &&
      now - s.rotation.startedAt > bounds.stepMs
    ) {
      out.push({
        kind: "step-stalled",
        service: s.service,
        label: s.rotation.standby,
        summary:
          `The rotation of "${s.rotation.standby}" stopped after phase ${s.rotation.phase}, ${
            seconds(now - s.rotation.startedAt)
          } ago (bound ${
            seconds(bounds.stepMs)
          }); run the rotate command again to resume it.`,
        since: s.rotation.startedAt,
        at: now,
        instances: [],
      });
    }
    if (
      bounds.stragglerMs !== undefined && s.active !== undefined &&
      schedule?.step !== "propagate" && s.stragglers.length > 0 &&
      now - s.active.at > bounds.stragglerMs
    ) {
      out.push({
        kind: "promotion-stragglers",
        service: s.service,
        label: s.active.label,
        summary:
          `${s.stragglers.length} live instance(s) still off "${s.active.label}" ${
            seconds(now - s.active.at)
          } after the promotion: ${
            s.stragglers.map((x) => x.instanceId).join(", ")
          }.`,
        since: s.active.at,
        at: now,
        instances: s.stragglers,
      });
    }
    if (
      bounds.gateMs !== undefined && schedule?.step === "rotate" &&
      s.gate !== undefined && !s.gate.open &&
      now - schedule.stepStartedAt > bounds.gateMs
    ) {
      const until = Math.max(
        0,
        ...s.gate.blockers.map((b) => b.heldUntil ?? 0),
      );
      out.push({
        kind: "gate-shut",
        service: s.service,
        label: s.gate.label,
        summary: `The revoke gate of "${s.gate.label}" has been shut for ${
          seconds(now - schedule.stepStartedAt)
        } (bound ${seconds(bounds.gateMs)}), held by ${
          s.gate.blockers.map((b) => `${b.instanceId} (${b.reason})`).join(
            ", ",
          )
        }${
          until > 0
            ? `; their tokens expire by ${new Date(until).toISOString()}`
            : ""
        }.`,
        since: schedule.stepStartedAt,
        at: now,
        instances: s.gate.blockers.map((b) => ({
          instanceId: b.instanceId,
          ...(b.host === undefined ? {} : { host: b.host }),
          reason: b.reason,
          ...(b.heldUntil === undefined ? {} : { tokenUntil: b.heldUntil }),
        })),
      });
    }
    if (bounds.maxAgeMs !== undefined) {
      for (const secret of s.secrets) {
        if (now - secret.publishedAt > bounds.maxAgeMs) {
          out.push({
            kind: "secret-too-old",
            service: s.service,
            label: secret.label,
            summary:
              `The secret of "${secret.label}" (generation ${secret.generation}) is ${
                seconds(now - secret.publishedAt)
              } old, beyond --max-age ${seconds(bounds.maxAgeMs)}; rotate it.`,
            since: secret.publishedAt,
            at: now,
            instances: [],
          });
        }
      }
    }
  }
  return out;
}

/** Options of {@linkcode createAlertNotifier}. */
export interface AlertNotifierOptions {
  /** The bounds. */
  readonly bounds: AlertBounds;
  /** Where alerts are POSTed as JSON, if anywhere. */
  readonly webhookUrl?: string;
  /**
   * Sends the request (injected for tests).
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /** Told of each alert fired (for a log line or a telemetry event). */
  readonly onAlert?: (alert: FleetAlert) => void;
  /** Told when the webhook could not be reached or refused (the alert is retried next check). */
  readonly onError?: (error: unknown, alert: FleetAlert) => void;
}

/** Fires alerts, each once until it clears. */
export interface AlertNotifier {
  /**
   * Judges a status and fires the alerts that are new.
   *
   * @param status The fleet's state.
   * @returns The alerts fired by this call.
   */
  check(status: FleetStatus): Promise<FleetAlert[]>;
}

const keyOf = (alert: FleetAlert) =>
  `${alert.kind}\u0000${alert.service}\u0000${
    alert.label ?? ""
  }\u0000${alert.since}`;

/**
 * Creates the notifier.
 *
 * @param options The bounds and where to send.
 * @returns The notifier.
 */
export function createAlertNotifier(
  options: AlertNotifierOptions,
): AlertNotifier {
  const send = options.fetch ?? globalThis.fetch;
  const fired = new Set<string>();
  return {
    async check(status) {
      const now = evaluateAlerts(status, options.bounds);
      const current = new Set(now.map(keyOf));
      // A cleared alert may fire again when its condition comes back.
      for (const key of [...fired]) if (!current.has(key)) fired.delete(key);
      const out: FleetAlert[] = [];
      for (const alert of now) {
        const key = keyOf(alert);
        if (fired.has(key)) continue;
        if (options.webhookUrl !== undefined) {
          try {
            const response = await send(options.webhookUrl, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ source: status.source, alert }),
            });
            await response.body?.cancel();
            if (!response.ok) {
              throw new Error(
                `the alert webhook answered HTTP ${response.status}`,
              );
            }
          } catch (error) {
            options.onError?.(error, alert);
            continue;
          }
        }
        fired.add(key);
        options.onAlert?.(alert);
        out.push(alert);
      }
      return out;
    },
  };
}
