/**
 * Adversarial runs of a service following its credential source: a target
 * label whose token endpoint hangs or echoes the secret, close() in the
 * middle of a switch.
 */
import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../src/dual_secret_auth.ts";
import type { AuthEvent } from "../../src/events.ts";
import { envFileSource } from "../../src/sources/env_file_source.ts";
import { secretDirectorySource } from "../../src/sources/secret_directory_source.ts";
import { followSource } from "../../src/sources/follow.ts";
import type {
  CredentialSnapshot,
  CredentialSource,
} from "../../src/sources/source.ts";

const TOKEN_URL = "https://login.example.test/oauth/token";
const BLUE_SECRET = "blue-SRC-CANARY-91f2";
const GREEN_SECRET = "green-SRC-CANARY-0c4a";

/** An in-memory source the test changes and notifies. */
function memorySource(active: string) {
  let snapshot: CredentialSnapshot = {
    credentials: [
      { label: "blue", clientId: "blue-id", clientSecret: BLUE_SECRET },
      { label: "green", clientId: "green-id", clientSecret: GREEN_SECRET },
    ],
    active,
  };
  let notify: (() => void) | undefined;
  const source: CredentialSource = {
    name: "memory source",
    loadSync: () => snapshot,
    read: () => Promise.resolve(snapshot),
    watch(onChange) {
      notify = onChange;
      return { close: () => Promise.resolve() };
    },
    pollIntervalMs: 60_000,
  };
  return {
    source,
    setActive(label: string) {
      snapshot = { ...snapshot, active: label };
      notify?.();
    },
  };
}

function headersOf(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
): Headers {
  return input instanceof Request ? input.headers : new Headers(init?.headers);
}

function clientOf(input: RequestInfo | URL, init?: RequestInit): string {
  const header = headersOf(input, init).get("authorization") ?? "";
  return decodeURIComponent(
    atob(header.replace(/^Basic /, "")).split(":")[0],
  );
}

function tokenResponse(): Response {
  return Response.json({
    access_token: `tok-${crypto.randomUUID()}`,
    token_type: "bearer",
    expires_in: 3600,
  });
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > 5_000) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("close() while the follower proves a new active label whose token endpoint hangs: resolves at once", async () => {
  const memory = memorySource("blue");
  let greenPending = 0;
  const fetchFn: typeof fetch = (input, init) => {
    if (clientOf(input, init) === "blue-id") {
      return Promise.resolve(tokenResponse());
    }
    greenPending++;
    // Hangs until the request is aborted (the default timeout is 10 s).
    return new Promise((_resolve, reject) => {
      const signal = input instanceof Request ? input.signal : init?.signal;
      signal?.addEventListener("abort", () => reject(signal.reason), {
        once: true,
      });
    });
  };
  const auth = createDualSecretAuth({
    ...memory.source.loadSync(),
    tokenUrl: TOKEN_URL,
    fetch: fetchFn,
  });
  const follower = followSource(auth, memory.source);
  await auth.getAccessToken();
  memory.setActive("green");
  await waitFor("the green proof to start", () => greenPending > 0);
  const started = performance.now();
  await follower.stop();
  await auth.close();
  const elapsed = performance.now() - started;
  assert.ok(
    elapsed < 2_000,
    `close() took ${
      Math.round(elapsed)
    } ms waiting for the switch's token request`,
  );
});

Deno.test("a source naming an active label whose token endpoint echoes the secret: the warning holds no secret", async () => {
  const memory = memorySource("blue");
  const events: AuthEvent[] = [];
  const fetchFn: typeof fetch = (input, init) => {
    if (clientOf(input, init) === "blue-id") {
      return Promise.resolve(tokenResponse());
    }
    const header = headersOf(input, init).get("authorization") ?? "";
    const body = new URLSearchParams(String(init?.body ?? "")).toString();
    return Promise.resolve(Response.json({
      error: "invalid_client",
      error_description: `bad credentials: ${header} ${GREEN_SECRET} ${body} ${
        encodeURIComponent(GREEN_SECRET)
      } ${btoa(GREEN_SECRET)}`,
    }, { status: 401 }));
  };
  const onEvent = (event: AuthEvent) => void events.push(event);
  await using auth = createDualSecretAuth({
    ...memory.source.loadSync(),
    tokenUrl: TOKEN_URL,
    fetch: fetchFn,
    onEvent,
  });
  await using _follower = followSource(auth, memory.source, { onEvent });
  await auth.getAccessToken();
  memory.setActive("green");
  await waitFor(
    "the switch to fail",
    () =>
      events.some((e) =>
        e.type === "warning" && e.code === "SOURCE_SWITCH_FAILED"
      ),
  );
  assert.equal(auth.status().active, "blue");
  const text = JSON.stringify(events) + JSON.stringify(auth.status());
  const basic = btoa(`green-id:${GREEN_SECRET}`);
  for (const secret of [GREEN_SECRET, basic, btoa(GREEN_SECRET)]) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
});

Deno.test("close() while the source's read hangs (a stuck network mount): resolves at once", async () => {
  const memory = memorySource("blue");
  let release: (() => void) | undefined;
  let reads = 0;
  const stuck: CredentialSource = {
    ...memory.source,
    read: () => {
      reads++;
      return new Promise((resolve) => {
        release = () => resolve(memory.source.loadSync());
      });
    },
  };
  const auth = createDualSecretAuth({
    ...stuck.loadSync(),
    tokenUrl: TOKEN_URL,
    fetch: () => Promise.resolve(tokenResponse()),
  });
  const follower = followSource(auth, stuck);
  memory.setActive("green");
  await waitFor("the read to start", () => reads > 0);
  const started = performance.now();
  await follower.stop();
  await auth.close();
  const elapsed = performance.now() - started;
  release?.();
  assert.ok(elapsed < 2_000, `close() took ${Math.round(elapsed)} ms`);
});

Deno.test("pollIntervalMs 0 (or not a number) never re-reads the source in a busy loop", async (t) => {
  await t.step("envFileSource and secretDirectorySource refuse it", () => {
    // 30 days: past what an interval timer takes, it would fire at once.
    for (const bad of [0, -1, Number.NaN, Infinity, 30 * 86_400_000]) {
      assert.throws(
        () => envFileSource("/nonexistent/.env", { pollIntervalMs: bad }),
        (error: Error & { code?: string }) =>
          error.code === "CONFIG_INVALID" &&
          /pollIntervalMs/.test(error.message),
      );
      assert.throws(
        () => secretDirectorySource("/nonexistent", { pollIntervalMs: bad }),
        (error: Error & { code?: string }) => error.code === "CONFIG_INVALID",
      );
    }
  });

  await t.step(
    "a custom source with pollIntervalMs 0 is polled at the default",
    async () => {
      const memory = memorySource("blue");
      let reads = 0;
      const source = {
        ...memory.source,
        pollIntervalMs: 0,
        read: () => {
          reads++;
          return memory.source.read();
        },
      };
      const auth = createDualSecretAuth({
        ...source.loadSync(),
        tokenUrl: TOKEN_URL,
        fetch: () => Promise.resolve(tokenResponse()),
      });
      const follower = followSource(auth, source);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await follower.stop();
      await auth.close();
      assert.ok(reads <= 2, `${reads} reads in 300 ms`);
    },
  );
});
