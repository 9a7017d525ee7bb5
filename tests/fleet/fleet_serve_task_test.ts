/**
 * `deno task fleet --serve` and `--alert-webhook` as an operator runs them
 * (the fleet permission set): the page and its JSON are served on loopback,
 * an alert reaches a loopback webhook, SIGTERM stops it with exit 0; another
 * address without a token is refused before anything listens.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Secret } from "../../src/secret.ts";
import { importSealKeyring } from "../../src/fleet/distribution.ts";
import { createKvFleetStore } from "../../src/fleet/kv_store.ts";
import { createSealedStoreSink } from "../../src/fleet/operator.ts";
import { createWorkspace } from "../tasks/workspace.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(5)));
const SECRET = "green-CANARY-serve-8d3e";
const HOUR = 3_600_000;

Deno.test({
  name:
    "fleet --serve --alert-webhook: page and JSON on loopback, a secret older than --max-age alerts the webhook once, SIGTERM exits 0",
  sanitizeResources: false,
  async fn() {
    await using ws = await createWorkspace();
    const kv = await Deno.openKv(`${ws.dir}/fleet.db`);
    const store = createKvFleetStore(kv, { prefix: ["svc-test"] });
    await createSealedStoreSink({
      store,
      service: "svc",
      by: "ops@test",
      now: () => Date.now() - 2 * HOUR,
    }, await importSealKeyring(KEY)).publish({
      label: "green",
      clientId: "green-id",
      secret: new Secret(SECRET),
    });
    const sealed = ((await store.readDocument("svc", "credential/green"))
      ?.value as { sealed: string }).sealed;
    kv.close();

    // An OTLP/HTTP receiver on loopback for the alert's span.
    const otlp: string[] = [];
    const receiver = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
    }, async (request) => {
      if (new URL(request.url).pathname === "/v1/traces") {
        otlp.push(await request.text());
      } else await request.body?.cancel();
      return Response.json({});
    });
    const bodies: string[] = [];
    const hook = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
    }, async (request) => {
      bodies.push(await request.text());
      return new Response(null, { status: 204 });
    });
    const task = ws.spawn([
      "task",
      "-q",
      "fleet",
      "--kv",
      "fleet.db",
      "--prefix",
      "svc-test",
      "--serve",
      "--port",
      "0",
      "--refresh",
      "0.2",
      "--alert-webhook",
      `http://127.0.0.1:${hook.addr.port}/hook`,
      "--max-age",
      "1h",
    ], {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.addr.port}`,
      OTEL_SERVICE_NAME: "fleet-alert-test",
    });
    try {
      await task.waitFor(/Fleet status page: http:\/\/127\.0\.0\.1:\d+\//);
      const url = /Fleet status page: (\S+)/.exec(task.stdout())![1];
      const page = await (await fetch(url)).text();
      assert.match(page, /<title>Fleet status<\/title>/);
      const json = await (await fetch(`${url}status.json`)).text();
      const status = JSON.parse(json);
      assert.equal(status.services[0].service, "svc");
      assert.equal(status.services[0].secrets[0].label, "green");
      assert.equal(status.services[0].secrets[0].generation, 1);
      await task.waitFor(/ALERT secret-too-old/);
      const deadline = Date.now() + 10_000;
      while (bodies.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // Several reads later, still one alert: it fires once per condition.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(bodies.length, 1, bodies.join("\n"));
      const alert = JSON.parse(bodies[0]).alert;
      assert.equal(alert.kind, "secret-too-old");
      assert.equal(alert.label, "green");
      for (
        const text of [page, json, ...bodies, task.stdout(), task.stderr()]
      ) {
        for (const secret of [SECRET, sealed, KEY]) {
          assert.ok(!text.includes(secret), "a secret was served or sent");
        }
      }
    } finally {
      task.child.kill("SIGTERM");
      const run = await task.finished();
      await hook.shutdown();
      await receiver.shutdown();
      assert.equal(run.code, 0, run.stdout + run.stderr);
    }
    // Spans are flushed at exit: the alert's span, with its kind, no secret.
    const spans = otlp.join("\n");
    assert.match(spans, /dual_secret_auth\.fleet\.alert/);
    assert.match(spans, /secret-too-old/);
    for (const secret of [SECRET, sealed, KEY]) {
      assert.ok(!spans.includes(secret), "a secret was exported");
    }
  },
});

Deno.test("fleet --serve --host 0.0.0.0 without --token: refused, nothing listens", async () => {
  await using ws = await createWorkspace();
  // An existing (empty) database: the refusal is about the address alone.
  (await Deno.openKv(`${ws.dir}/fleet.db`)).close();
  const run = await ws.task("fleet", [
    "--kv",
    "fleet.db",
    "--serve",
    "--host",
    "0.0.0.0",
    "--port",
    "0",
  ]);
  assert.notEqual(run.code, 0);
  assert.match(run.stdout + run.stderr, /without a token/);
  assert.match(run.stdout + run.stderr, /--token/);
  assert.doesNotMatch(run.stdout, /Fleet status page:/);
});

Deno.test({
  name:
    "fleet --serve --token env: the token comes from FLEET_STATUS_TOKEN (never the command line), the page refuses without it",
  sanitizeResources: false,
}, async () => {
  await using ws = await createWorkspace();
  (await Deno.openKv(`${ws.dir}/fleet.db`)).close();
  const unset = await ws.task("fleet", [
    "--kv",
    "fleet.db",
    "--serve",
    "--port",
    "0",
    "--token",
    "env",
  ]);
  assert.notEqual(unset.code, 0);
  assert.match(unset.stdout + unset.stderr, /FLEET_STATUS_TOKEN/);
  const token = "status-token-CANARY-4b7e1f";
  const task = ws.spawn([
    "task",
    "-q",
    "fleet",
    "--kv",
    "fleet.db",
    "--serve",
    "--port",
    "0",
    "--token",
    "env",
  ], { FLEET_STATUS_TOKEN: token });
  try {
    await task.waitFor(/Fleet status page: http:\/\/127\.0\.0\.1:\d+\//);
    const url = /Fleet status page: (\S+)/.exec(task.stdout())![1];
    const refused = await fetch(`${url}status.json`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const opened = await fetch(`${url}?token=${token}`, { redirect: "manual" });
    assert.equal(opened.status, 303);
    await opened.body?.cancel();
    const cookie = (opened.headers.get("set-cookie") ?? "").split(";")[0];
    const json = await fetch(`${url}status.json`, { headers: { cookie } });
    assert.equal(json.status, 200);
    assert.ok(!(await json.text()).includes(token));
  } finally {
    task.child.kill("SIGTERM");
    const run = await task.finished();
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(!(run.stdout + run.stderr).includes(token));
  }
});
