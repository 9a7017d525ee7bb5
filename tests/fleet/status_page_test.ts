/**
 * The fleet status page in a real headless Chromium (Debian's
 * `/usr/bin/chromium`, driven by puppeteer-core): a fleet of `deno run`
 * instances sharing one Deno KV file goes through `deno task rotate --kv`
 * and `promote --kv`, and the page, refreshing by itself, shows each step.
 * A screenshot is written under `test-artifacts/` (gitignored; the path is
 * printed). Nothing served carries a secret or a token.
 *
 * Without Chromium the browser test is skipped, unless
 * `DSA_REQUIRE_CHROMIUM=1` (CI), which makes it fail.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
// deno-lint-ignore no-import-prefix
import puppeteer from "npm:puppeteer-core@25.16.0";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import {
  type FleetStatusSource,
  kvStatusSource,
  readFleetStatus,
} from "../../src/fleet/fleet_status.ts";
import {
  FLEET_STATUS_TOKEN_REQUIRED,
  serveFleetStatus,
  StatusPageError,
} from "../../src/fleet/status_page.ts";
import { ConfigError } from "../../src/errors.ts";
import { assertNoFailures, type FleetChild, startKvFleet } from "./harness.ts";
import { until } from "../support/wait.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const BLUE = "blue-CANARY-page-31f7";
const GREEN = "green-CANARY-page-9a02";
const ADMIN = "admin-CANARY-page-c4d1";
const SECRETS = { blue: BLUE, green: GREEN, admin: ADMIN };
const N = 3;
/** How long the page may take to show a change, under load. */
const PAGE = { timeoutMs: 30_000 };

/** An element's data attributes, as the browser sees them. */
type Data = { dataset: Record<string, string | undefined> };

const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const requireChromium = Deno.env.get("DSA_REQUIRE_CHROMIUM") === "1";

Deno.test({
  name: "Chromium is there when DSA_REQUIRE_CHROMIUM=1 (CI installs it)",
  ignore: !requireChromium,
  fn() {
    assert.ok(hasChromium, `${CHROMIUM} is missing; apt-get install chromium`);
  },
});

const emptySource = (): FleetStatusSource => ({
  name: "memory",
  instances: () => Promise.resolve([]),
  audit: () => Promise.resolve([]),
  store: createMemoryFleetStore(),
  close: () => Promise.resolve(),
});

Deno.test("status page: beyond loopback only with a token", () => {
  const read = () => readFleetStatus(emptySource(), { now: 0 });
  for (const hostname of ["0.0.0.0", "192.0.2.1", "::"]) {
    assert.throws(
      () => serveFleetStatus({ read, hostname, port: 0 }),
      (error: unknown) =>
        error instanceof StatusPageError &&
        error.code === FLEET_STATUS_TOKEN_REQUIRED &&
        /--token/.test(error.message),
    );
    assert.throws(
      () => serveFleetStatus({ read, hostname, port: 0, token: "short" }),
      StatusPageError,
    );
  }
});

Deno.test("status page: a refresh period a browser timer cannot wait is refused", () => {
  const read = () => readFleetStatus(emptySource(), { now: 0 });
  for (const refreshMs of [2 ** 31, Infinity, 0, -1, Number.NaN]) {
    assert.throws(
      () => serveFleetStatus({ read, port: 0, refreshMs }),
      (error: unknown) =>
        error instanceof ConfigError && error.option === "refreshMs",
      String(refreshMs),
    );
  }
});

Deno.test("status page: with a token, nothing is served without it; ?token= sets an HttpOnly cookie and leaves the address", async () => {
  const token = "page-token-0123456789abcdef";
  await using server = serveFleetStatus({
    read: () => readFleetStatus(emptySource(), { now: 1 }),
    port: 0,
    token,
  });
  for (const path of ["", "status.json", "status.js"]) {
    const refused = await fetch(server.url + path);
    assert.equal(refused.status, 401, path);
    assert.doesNotMatch(await refused.text(), new RegExp(token));
  }
  const wrong = await fetch(`${server.url}?token=nope`, { redirect: "manual" });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const opened = await fetch(`${server.url}?token=${token}`, {
    redirect: "manual",
  });
  assert.equal(opened.status, 303);
  assert.equal(opened.headers.get("location"), "/");
  const cookie = opened.headers.get("set-cookie") ?? "";
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  await opened.body?.cancel();
  const json = await fetch(`${server.url}status.json`, {
    headers: { cookie: cookie.split(";")[0] },
  });
  assert.equal(json.status, 200);
  const body = await json.text();
  assert.deepEqual(JSON.parse(body).instances, []);
  assert.doesNotMatch(body, new RegExp(token));
  const bearer = await fetch(server.url, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(bearer.status, 200);
  assert.match(
    bearer.headers.get("content-security-policy") ?? "",
    /script-src 'self'/,
  );
  assert.doesNotMatch(await bearer.text(), new RegExp(token));
});

Deno.test({
  name:
    `status page in headless Chromium: ${N} processes through rotate --kv and promote --kv, the page follows by itself; no secret or token served; screenshot kept`,
  ignore: !hasChromium && !requireChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using fleet = await startKvFleet(SECRETS, KEY, {
      n: N,
      heartbeatMs: 500,
      tokenLifetimeSeconds: 30,
    });
    const { emulator, ws, kvPath } = fleet;
    const fleetArgs = ["--kv", "fleet.db", "--prefix", "fleet-test"];
    const sealEnv = { DUAL_SECRET_SEAL_KEY: KEY };
    const children: FleetChild[] = fleet.children;
    const kv = await Deno.openKv(kvPath);
    const source = kvStatusSource(kv, ["fleet-test"], "Deno KV fleet.db");
    const server = serveFleetStatus({
      read: () => readFleetStatus(source, { now: Date.now() }),
      port: 0,
      refreshMs: 300,
    });
    const profile = await Deno.makeTempDir({ prefix: "dsa-chromium-" });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
      ],
    });
    const served: string[] = [];
    try {
      for (const child of children) {
        await child.send({ cmd: "traffic", intervalMs: 30, api: true });
      }
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 1000 });
      page.on("response", async (response) => {
        // Everything the browser was sent, for the scan at the end.
        served.push(await response.text().catch(() => ""));
      });
      await page.goto(server.url);
      const rows = () =>
        page.$$eval(
          "#instances tbody tr",
          (trs) =>
            trs.map((tr) => ({
              id: (tr as unknown as Data).dataset.instance,
              active: (tr as unknown as Data).dataset.active,
              generations: (tr as unknown as Data).dataset.generations,
              sealKey: (tr as unknown as Data).dataset.sealKey,
            })),
        );
      const activeLabel = () =>
        page.$eval("#active-label", (e) => e.textContent ?? "");

      // 1. The page shows the fleet: N instances, all on blue, generation 0.
      const first = await until(
        `${N} instances on blue`,
        rows,
        (r) => r.length === N && r.every((row) => row.active === "blue"),
        PAGE,
      );
      assert.deepEqual(
        first.map((row) => row.id),
        Array.from({ length: N }, (_, i) => `web-${i}`),
      );
      assert.equal(await activeLabel(), "blue");
      assert.ok(first.every((row) => row.generations === "blue:0,green:0"));

      // 2. Rotate green (the standby): the page shows every instance take
      // generation 1 of green, without a reload.
      const rotated = await ws.task("rotate", [...fleetArgs, "--yes"], sealEnv);
      assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
      await until(
        "every row on green's generation 1",
        rows,
        (r) =>
          r.length === N &&
          r.every((row) => row.generations === "blue:0,green:1"),
        PAGE,
      );
      // Each instance opened the sealed secret with its key.
      assert.deepEqual(
        (await rows()).map((row) => row.sealKey),
        Array(N).fill("ok"),
      );
      const secretText = await page.$eval(
        '[data-secret="green"]',
        (e) => e.textContent ?? "",
      );
      assert.match(secretText, /generation 1/);
      assert.match(
        await page.$eval("#audit tbody", (e) => e.textContent ?? ""),
        /secret\.publish/,
      );
      const gate = await page.$eval("#gate", (e) => e.textContent ?? "");
      assert.match(gate, /gate of "green"/);
      const dir = Deno.env.get("DSA_TEST_ARTIFACTS") ??
        `${ROOT}test-artifacts`;
      await Deno.mkdir(dir, { recursive: true });
      const midway = `${dir}/fleet-status-page-rotated.png`;
      await page.screenshot({ path: midway, fullPage: true });
      console.log(
        `fleet status page screenshot (rotated, not promoted): ${midway}`,
      );

      // 3. Promote green: the active label turns green on the page, then
      // every instance's row, and the history records the promotion.
      const promoteArgs = [...fleetArgs, "--to", "green", "--timeout", "20"];
      const promoted = await ws.task(
        "promote",
        [...promoteArgs, "--yes"],
        sealEnv,
      );
      assert.equal(promoted.code, 0, promoted.stdout + promoted.stderr);
      await until(
        "the active label green",
        activeLabel,
        (l) => l === "green",
        PAGE,
      );
      await until(
        "every row on green",
        rows,
        (r) => r.length === N && r.every((row) => row.active === "green"),
        PAGE,
      );
      assert.match(
        await page.$eval(".history", (e) => e.textContent ?? ""),
        /promote ok "green"/,
      );
      assert.equal(
        await page.$eval("#stragglers", (e) => e.textContent ?? ""),
        "none",
      );
      // Blue is the standby now, and its tokens are still held: the page
      // shows the gate shut by each instance, with when its token expires.
      const shut = await until(
        "the gate of blue shut",
        () => page.$eval("#gate", (e) => e.textContent ?? ""),
        (text) => /gate of "blue": shut/.test(text),
        PAGE,
      );
      for (let i = 0; i < N; i++) assert.match(shut, new RegExp(`web-${i}`));

      const screenshot = `${dir}/fleet-status-page.png`;
      await page.screenshot({ path: screenshot, fullPage: true });
      const size = (await Deno.stat(screenshot)).size;
      assert.ok(size > 10_000, `screenshot of ${size} bytes`);
      console.log(`fleet status page screenshot: ${screenshot}`);

      // 4. Nothing the page was sent, nor the page as drawn, carries a
      // secret, a seal key, a sealed secret or a token of the fleet.
      served.push(await page.content());
      served.push(await (await fetch(`${server.url}status.json`)).text());
      const forbidden = [
        BLUE,
        GREEN,
        ADMIN,
        emulator.getClientSecret("blue-id"),
        emulator.getClientSecret("green-id"),
        KEY,
      ];
      for await (const entry of kv.list({ prefix: ["fleet-test"] })) {
        // Records are JSON bytes: every grant's token and sealed secret.
        const value = entry.value;
        const text = value instanceof Uint8Array
          ? new TextDecoder().decode(value)
          : JSON.stringify(value);
        for (const match of text.matchAll(/"(?:token|sealed)":"([^"]+)"/g)) {
          forbidden.push(match[1]);
        }
      }
      const tokens = forbidden.length - 6;
      assert.ok(tokens > 0, "the scan found the fleet's tokens in the store");
      const all = served.join("\n");
      assert.ok(all.includes("web-0"), "the scan covers the served data");
      for (const secret of forbidden) {
        assert.ok(
          !all.includes(secret),
          `served content carries a secret or token (${secret.slice(0, 4)}…)`,
        );
      }
    } finally {
      await browser.close();
      await server.close();
      await Deno.remove(profile, { recursive: true }).catch(() => undefined);
      kv.close();
      const summaries = await Promise.all(children.map((c) => c.stop()));
      assertNoFailures(summaries.filter((s) => s !== undefined), N);
    }
  },
});
