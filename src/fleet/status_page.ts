/**
 * The fleet status page (`deno task fleet --serve`): a small HTTP server on
 * loopback (another address only with a token) serving a page that reads
 * `status.json` every few seconds and draws the fleet from it — instances,
 * the active label and its history, a rotation in progress, the gate and the
 * drain, the schedule, the secrets' age, the audit timeline. The JSON is
 * {@linkcode FleetStatus}, which carries no secret and no token by
 * construction; the page draws it with `textContent` only, under a strict
 * Content-Security-Policy.
 *
 * @module
 */
import { ConfigError, DualSecretAuthError } from "../errors.ts";
import type { FleetStatus } from "./fleet_status.ts";

/** The code of {@linkcode StatusPageError}. */
export const FLEET_STATUS_TOKEN_REQUIRED =
  "FLEET_STATUS_TOKEN_REQUIRED" as const;

/** The status page was asked to listen beyond loopback without a token. */
export class StatusPageError extends DualSecretAuthError {
  /**
   * Creates the error.
   *
   * @param message What is wrong and what to do.
   */
  constructor(message: string) {
    super(FLEET_STATUS_TOKEN_REQUIRED as never, message);
  }
}

/** Options of {@linkcode serveFleetStatus}. */
export interface FleetStatusServerOptions {
  /** Reads the fleet's state (called once per request of `status.json`). */
  readonly read: () => Promise<FleetStatus>;
  /**
   * The address to listen on. Anything but loopback needs `token`.
   *
   * @default "127.0.0.1"
   */
  readonly hostname?: string;
  /**
   * The port (0: any free one).
   *
   * @default 8787
   */
  readonly port?: number;
  /**
   * A token the viewer must present (`?token=` once, kept in an HttpOnly
   * cookie; or `Authorization: Bearer`). Required beyond loopback.
   */
  readonly token?: string;
  /**
   * How often the page reads `status.json`, in ms: a positive number up to
   * 2^31 - 1 (a browser's timer fires at once past it, so every open page
   * would read the store without pause).
   *
   * @default 2000
   */
  readonly refreshMs?: number;
}

/** A running status server. */
export interface FleetStatusServer extends AsyncDisposable {
  /** The page's address. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Stops the server. */
  close(): Promise<void>;
}

const COOKIE = "fleet_status_token";

/**
 * Whether an address is loopback only.
 *
 * @param hostname The address.
 * @returns Whether only this machine can reach it.
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" ||
    hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
}

/** Compares digests, so the time taken says nothing of the token. */
async function sameToken(given: string, token: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(given), sha256(token)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function cookieOf(request: Request): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === COOKIE) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/**
 * Starts the status server.
 *
 * @param options What to read, where to listen, the token.
 * @returns The running server.
 * @throws {StatusPageError} When `hostname` is not loopback and no token is given.
 * @throws {ConfigError} When `refreshMs` is not a positive number of ms up to 2^31 - 1.
 */
export function serveFleetStatus(
  options: FleetStatusServerOptions,
): FleetStatusServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const token = options.token;
  if (!isLoopback(hostname) && (token === undefined || token.length < 16)) {
    throw new StatusPageError(
      `The status page would listen on ${hostname}, beyond this machine, without a token. Pass --token with at least 16 random characters (the viewer opens the page once with ?token=…), or leave --host out to listen on 127.0.0.1 only.`,
    );
  }
  const refreshMs = options.refreshMs ?? 2_000;
  if (!(refreshMs > 0 && refreshMs <= 2 ** 31 - 1)) {
    throw new ConfigError(
      "refreshMs",
      `must be a positive number of ms up to 2147483647 (about 24.8 days), got ${refreshMs}`,
    );
  }
  const controller = new AbortController();
  const respond = (
    body: string,
    type: string,
    status = 200,
    extra: Record<string, string> = {},
  ) =>
    new Response(body, {
      status,
      headers: { "content-type": type, ...SECURITY_HEADERS, ...extra },
    });
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (request.method !== "GET") {
      return respond("Only GET.\n", "text/plain; charset=utf-8", 405);
    }
    if (token !== undefined) {
      const offered = url.searchParams.get("token");
      if (offered !== null) {
        if (!await sameToken(offered, token)) {
          return respond("Wrong token.\n", "text/plain; charset=utf-8", 401);
        }
        // The token leaves the address bar at once; the cookie carries it.
        return respond("", "text/plain", 303, {
          location: url.pathname,
          "set-cookie": `${COOKIE}=${
            encodeURIComponent(token)
          }; HttpOnly; SameSite=Strict; Path=/`,
        });
      }
      const bearer = request.headers.get("authorization")?.replace(
        /^Bearer\s+/i,
        "",
      );
      const presented = bearer ?? cookieOf(request);
      if (presented === undefined || !await sameToken(presented, token)) {
        return respond(
          "Open the page once with ?token=<the token given to --token>.\n",
          "text/plain; charset=utf-8",
          401,
        );
      }
    }
    switch (url.pathname) {
      case "/":
        return respond(PAGE, "text/html; charset=utf-8");
      case "/status.js":
        return respond(
          SCRIPT.replace("__REFRESH_MS__", String(refreshMs)),
          "text/javascript; charset=utf-8",
        );
      case "/status.css":
        return respond(STYLE, "text/css; charset=utf-8");
      case "/status.json": {
        try {
          return respond(
            JSON.stringify(await options.read()),
            "application/json",
          );
        } catch (error) {
          const code = (error as { code?: unknown })?.code;
          return respond(
            JSON.stringify({
              error: typeof code === "string" ? code : "READ_FAILED",
              // A URL's user and password never reach the page.
              message: (error instanceof Error ? error.message : String(error))
                .replace(/\/\/[^@\s/]*@/g, "//***@"),
            }),
            "application/json",
            503,
          );
        }
      }
      default:
        return respond("Not found.\n", "text/plain; charset=utf-8", 404);
    }
  };
  const server = Deno.serve({
    hostname,
    port: options.port ?? 8787,
    signal: controller.signal,
    onListen: () => {},
  }, handler);
  const port = server.addr.port;
  const host = hostname.includes(":") && !hostname.startsWith("[")
    ? `[${hostname}]`
    : hostname;
  const close = async () => {
    controller.abort();
    await server.finished;
  };
  return {
    url: `http://${host}:${port}/`,
    port,
    finished: server.finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fleet status</title>
<link rel="stylesheet" href="status.css">
<script src="status.js" defer></script>
</head>
<body>
<header>
  <h1>Fleet status</h1>
  <p><span id="source">…</span> · read <span id="read-at">never</span> · <span id="state">loading</span></p>
</header>
<main>
  <section id="services"></section>
  <section>
    <h2>Live instances (<span id="instance-count">0</span>)</h2>
    <table id="instances">
      <thead><tr><th>Instance</th><th>Host</th><th>Active</th><th>Secrets held (generation, fingerprint)</th><th>Seal key</th><th>Token left</th><th>Last use</th><th>Seen</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Audit timeline</h2>
    <table id="audit">
      <thead><tr><th>Time</th><th>By</th><th>Action</th><th>Outcome</th><th>Label</th><th>Detail</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1f24; }
h1 { margin: 0; font-size: 1.6em; }
h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #d0d7de; vertical-align: top; }
th { background: #f6f8fa; }
.service { border: 1px solid #d0d7de; border-radius: 6px; padding: .6em 1em; margin: .8em 0; }
.active-label { font-size: 1.5em; font-weight: 600; }
.label-blue { color: #0550ae; } .label-green { color: #116329; }
.bad { color: #cf222e; font-weight: 600; } .ok { color: #116329; }
.muted { color: #57606a; } code { font-size: .9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; margin: .4em 0; }
dt { color: #57606a; } dd { margin: 0; }
`;

// Runs in the browser: reads status.json, draws it with textContent only.
const SCRIPT = `"use strict";
const REFRESH_MS = __REFRESH_MS__;
const el = (tag, text, cls) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
};
const ago = (at, now) => at ? Math.max(0, Math.round((now - at) / 1000)) + " s ago" : "never";
const left = (ms) => ms === undefined ? "-" : Math.round(ms / 1000) + " s";
const time = (at) => at ? new Date(at).toISOString().replace("T", " ").replace(/\\.\\d+Z$/, "Z") : "-";
const row = (cells) => { const tr = el("tr"); for (const c of cells) tr.append(c instanceof Node ? c : el("td", c)); return tr; };
const pair = (dl, name, value, cls) => { dl.append(el("dt", name)); const dd = el("dd", value, cls); dl.append(dd); return dd; };

function drawService(s, now) {
  const box = el("div", undefined, "service");
  box.dataset.service = s.service;
  box.append(el("h2", "Service " + s.service));
  const active = s.active ? s.active.label : "(not set)";
  const p = el("p");
  p.append("Active label: ");
  const label = el("span", active, "active-label label-" + active);
  label.id = "active-label";
  p.append(label);
  if (s.active) p.append(el("span", " generation " + s.active.generation + ", set by " + s.active.by + " " + ago(s.active.at, now) + " (" + s.active.reason + ")", "muted"));
  box.append(p);
  const dl = el("dl");
  if (s.rotation) {
    const r = s.rotation;
    pair(dl, "Rotation", (r.inProgress ? "in progress: " : "last: ") + '"' + r.standby + '" phase ' + r.phase + ", started " + ago(r.startedAt, now) + (r.completedAt ? ", completed " + ago(r.completedAt, now) : ""), r.inProgress ? "bad" : "").id = "rotation";
  }
  if (s.lock) pair(dl, "Rotation lock", s.lock.command + " by " + s.lock.holder + " until " + time(s.lock.until)).id = "lock";
  if (s.schedule) {
    const c = s.schedule;
    pair(dl, "Schedule", "step " + c.step + (c.standby ? ' of "' + c.standby + '"' : "") + (c.generation ? " (generation " + c.generation + ")" : "") + ", since " + ago(c.stepStartedAt, now) + "; " + c.completed + " cycle(s) completed" + (c.lastCompletedAt ? ", last " + ago(c.lastCompletedAt, now) : "") + (c.leader ? "; leader " + c.leader.holder : "; no leader")).id = "schedule";
  }
  if (s.gate) {
    const g = s.gate;
    const text = 'gate of "' + g.label + '": ' + (g.open ? "open" : "shut by " + g.blockers.map((b) => b.instanceId + (b.host ? "@" + b.host : "") + " (" + b.reason + (b.heldUntil ? ", token until " + time(b.heldUntil) : "") + ")").join(", "));
    pair(dl, "Drain / gate", text, g.open ? "ok" : "bad").id = "gate";
  }
  pair(dl, "Stragglers", s.stragglers.length === 0 ? "none" : s.stragglers.map((x) => x.instanceId + ": " + x.reason).join("; "), s.stragglers.length ? "bad" : "ok").id = "stragglers";
  for (const secret of s.secrets) {
    pair(dl, 'Secret "' + secret.label + '"', "generation " + secret.generation + ", published " + ago(secret.publishedAt, now) + " by " + secret.publishedBy + ", seal key " + secret.keyId + (secret.secretId ? ", provider secret " + secret.secretId : "") + (secret.retiredAt ? ", retired " + ago(secret.retiredAt, now) : "")).dataset.secret = secret.label;
  }
  box.append(dl);
  box.append(el("h3", "Active label history"));
  const ul = el("ul");
  ul.className = "history";
  for (const h of s.activeHistory) ul.append(el("li", time(h.at) + " " + h.action + " " + h.outcome + (h.label ? ' "' + h.label + '"' : "") + " by " + h.by + (h.detail ? " — " + h.detail : "")));
  if (s.activeHistory.length === 0) ul.append(el("li", "no change recorded", "muted"));
  box.append(ul);
  return box;
}

function draw(status) {
  const now = status.readAt;
  document.getElementById("source").textContent = status.source;
  document.getElementById("read-at").textContent = time(now);
  const services = document.getElementById("services");
  services.replaceChildren(...status.services.map((s) => drawService(s, now)));
  if (status.services.length === 0) {
    const majority = status.instances.map((i) => i.active);
    const p = el("p");
    p.append("Active label (from the heartbeats): ");
    const label = el("span", majority[0] || "(no instance)", "active-label label-" + majority[0]);
    label.id = "active-label";
    p.append(label);
    services.replaceChildren(p);
  }
  document.getElementById("instance-count").textContent = status.instances.length;
  const body = document.querySelector("#instances tbody");
  body.replaceChildren(...status.instances.map((i) => {
    const held = i.credentials.map((c) => c.label + " g" + (c.secretGeneration ?? "0") + (c.secretFingerprint ? " " + c.secretFingerprint.slice(0, 12) : "") + (c.secretProblem ? " (" + c.secretProblem + ")" : "")).join(", ");
    const tokens = i.credentials.filter((c) => c.tokenLeftMs !== undefined).map((c) => c.label + " " + left(c.tokenLeftMs)).join(", ") || "-";
    const used = i.credentials.filter((c) => c.lastUsedAt).map((c) => c.label + " " + ago(c.lastUsedAt, now)).join(", ") || "never";
    const tr = row([i.instanceId, i.host || "-", el("td", i.active, "label-" + i.active), held, el("td", i.sealKey, i.sealKey === "ok" ? "ok" : i.sealKey === "not reported" ? "muted" : "bad"), tokens, used, ago(i.seenAt, now)]);
    tr.dataset.instance = i.instanceId;
    tr.dataset.active = i.active;
    tr.dataset.sealKey = i.sealKey;
    tr.dataset.generations = i.credentials.map((c) => c.label + ":" + (c.secretGeneration ?? 0)).join(",");
    return tr;
  }));
  const audit = document.querySelector("#audit tbody");
  audit.replaceChildren(...[...status.audit].reverse().map((a) => row([time(a.at), a.by, a.action, a.outcome, a.label || "-", a.detail || ""])));
}

async function refresh() {
  const state = document.getElementById("state");
  try {
    const response = await fetch("status.json", { cache: "no-store", credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error + ": " + body.message);
    draw(body);
    state.textContent = "live, every " + REFRESH_MS / 1000 + " s";
    state.className = "ok";
  } catch (error) {
    state.textContent = "read failed: " + error.message + " (retrying)";
    state.className = "bad";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
`;
