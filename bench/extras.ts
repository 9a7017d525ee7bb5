/**
 * The figures that are not one-per-contender scenarios: heap per instance and
 * per cached token (this module and `@badgateway/oauth2-client`, measured
 * directly, with an in-process token endpoint so no emulator or HTTP state is
 * counted), `auth.fetch` latency inside a failover window with and without
 * `warmStandby`, and the size of the minified bundle.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { createDualSecretAuth } from "../mod.ts";
import { startGenesysEmulator } from "../testing.ts";
import { consume } from "./contenders/contender.ts";
import { canCollect, heapUsed } from "./heap.ts";
import { BLUE, GREEN } from "./scenarios/scenario.ts";
import { median, percentile } from "./stats.ts";

/** Heap figures of one library, in bytes. */
export interface MemoryFigures {
  /** Heap per idle instance (two credentials for this module, one for the other). */
  readonly perInstance: number;
  /** Heap added per instance by caching one token (40-character token). */
  readonly perCachedToken: number;
  /** Heap per instance still held after dropping the token (`invalidate()`), above the idle instance. */
  readonly afterInvalidate?: number;
}

/** `auth.fetch` latencies, steady state against the failover window, in ms. */
export interface FailoverFigures {
  /** p99.9 before the regeneration. */
  readonly steadyP999: number;
  /** Max before the regeneration. */
  readonly steadyMax: number;
  /** p99.9 of the requests started in the window. */
  readonly windowP999: number;
  /** Max of the requests started in the window. */
  readonly windowMax: number;
  /** Mean of the requests started in the window. */
  readonly windowMean: number;
  /** Requests in the window that failed. */
  readonly windowFailed: number;
  /**
   * Median over rounds of the ms from the regeneration until the first
   * request sent after it succeeds (with the standby).
   */
  readonly recoveryMs: number;
  /** Token requests the emulator received in all rounds. */
  readonly tokenRequests: number;
}

/** Everything this module measures here. */
export interface ExtraResults {
  /** Whether a full garbage collection could be forced (heap figures are noisy without). */
  readonly gcForced: boolean;
  /** By library name. */
  readonly memory: Readonly<Record<string, MemoryFigures>>;
  /** Without and with `warmStandby`. */
  readonly failover: {
    readonly cold: FailoverFigures;
    readonly warm: FailoverFigures;
  };
  /** `deno bundle --platform browser --minify mod.ts`, in bytes. */
  readonly bundle: { readonly minified: number; readonly gzip9: number };
}

/** Sizes of the extras. */
export interface ExtraSize {
  /** Instances per heap measurement. */
  readonly instances: number;
  /** Failover rounds. */
  readonly failoverRounds: number;
  /** Requests per failover round (the regeneration is at 2/3). */
  readonly failoverRequests: number;
  /** Requests after the regeneration that form the window. */
  readonly failoverWindow: number;
}

/** Full and `--quick` sizes. */
export const EXTRA_SIZES: { full: ExtraSize; quick: ExtraSize } = {
  full: {
    instances: 5_000,
    failoverRounds: 10,
    failoverRequests: 3_000,
    failoverWindow: 200,
  },
  quick: {
    instances: 500,
    failoverRounds: 2,
    failoverRequests: 600,
    failoverWindow: 100,
  },
};

let tokenCounter = 0;
/** A 40-character token, different each time. */
function newToken(): string {
  tokenCounter++;
  return `tok-${String(tokenCounter).padStart(8, "0")}-${
    crypto.randomUUID().slice(0, 27)
  }`;
}

/** An in-process token endpoint: every call answers a fresh token. */
const tokenEndpoint: typeof fetch = () =>
  Promise.resolve(
    new Response(
      JSON.stringify({
        access_token: newToken(),
        token_type: "bearer",
        expires_in: 86_400,
      }),
      { headers: { "content-type": "application/json" } },
    ),
  );

/**
 * How to drive one library's instances: shared functions, so that only the
 * library's own objects are held per instance (a wrapper object with
 * closures per instance would be counted as the library's).
 */
interface Driver<T> {
  make(index: number): T;
  getToken(instance: T): Promise<string>;
  invalidate?(instance: T): void;
  close?(instance: T): Promise<void>;
}

async function measureMemory<T>(
  driver: Driver<T>,
  count: number,
): Promise<MemoryFigures> {
  // Warm up the code paths so compiled code is not counted.
  for (let i = 0; i < 20; i++) {
    const warm = driver.make(i);
    await driver.getToken(warm);
    driver.invalidate?.(warm);
    await driver.close?.(warm);
  }
  const instances: T[] = new Array(count);
  const base = heapUsed();
  for (let i = 0; i < count; i++) instances[i] = driver.make(i);
  const created = heapUsed();
  await Promise.all(instances.map((instance) => driver.getToken(instance)));
  const cached = heapUsed();
  let invalidated: number | undefined;
  if (driver.invalidate) {
    instances.forEach((instance) => driver.invalidate!(instance));
    invalidated = heapUsed();
  }
  const figures: MemoryFigures = {
    perInstance: (created - base) / count,
    perCachedToken: (cached - created) / count,
    ...(invalidated === undefined
      ? {}
      : { afterInvalidate: (invalidated - created) / count }),
  };
  await Promise.all(instances.map((instance) => driver.close?.(instance)));
  return figures;
}

async function memoryFigures(
  count: number,
): Promise<Record<string, MemoryFigures>> {
  const results: Record<string, MemoryFigures> = {};
  results["this module"] = await measureMemory({
    make: (i) =>
      createDualSecretAuth({
        credentials: [
          { label: "blue", clientId: `blue-${i}`, clientSecret: "blue-secret" },
          {
            label: "green",
            clientId: `green-${i}`,
            clientSecret: "green-secret",
          },
        ],
        tokenUrl: "https://login.example.test/oauth/token",
        fetch: tokenEndpoint,
      }),
    getToken: (auth) => auth.getAccessToken(),
    invalidate: (auth) => auth.invalidate(),
    close: (auth) => auth.close(),
  }, count);
  const { OAuth2Client, OAuth2Fetch } = await import(
    // deno-lint-ignore no-import-prefix -- a benchmark-only package, kept out of deno.lock (see deno.dev.lock)
    "npm:@badgateway/oauth2-client@3.3.1"
  );
  results["@badgateway/oauth2-client"] = await measureMemory({
    make: (i) => {
      const client = new OAuth2Client({
        server: "https://login.example.test",
        tokenEndpoint: "/oauth/token",
        clientId: `blue-${i}`,
        clientSecret: "blue-secret",
        fetch: tokenEndpoint,
      });
      return new OAuth2Fetch({
        client,
        getNewToken: () => client.clientCredentials(),
      });
    },
    getToken: (wrapper) => wrapper.getAccessToken(),
  }, count);
  return results;
}

async function failoverFigures(
  warmStandby: boolean,
  size: ExtraSize,
): Promise<FailoverFigures> {
  const steady: number[] = [];
  const window: number[] = [];
  let windowFailed = 0;
  let tokenRequests = 0;
  const recoveries: number[] = [];
  const regenerateAt = Math.floor(size.failoverRequests * 2 / 3);
  for (let round = 0; round < size.failoverRounds; round++) {
    await using emulator = startGenesysEmulator({
      revokeTokensOnRegenerate: true,
      clients: [BLUE, GREEN].map((c) => ({
        clientId: c.clientId,
        secret: c.secret,
      })),
    });
    await using auth = createDualSecretAuth({
      credentials: [BLUE, GREEN].map((c) => ({
        label: c.label,
        clientId: c.clientId,
        clientSecret: c.secret,
      })),
      tokenUrl: emulator.tokenUrl,
      warmStandby,
    });
    const me = `${emulator.apiUrl}/api/v2/tokens/me`;
    for (let i = 0; i < 200; i++) await consume(await auth.fetch(me));
    let started = 0;
    let regeneratedAt = 0;
    let recovered = false;
    const worker = async () => {
      while (started < size.failoverRequests) {
        const index = started++;
        // The active secret regenerated without warning; its tokens die.
        if (index === regenerateAt) {
          emulator.regenerateSecret(BLUE.clientId);
          regeneratedAt = performance.now();
        }
        const sent = performance.now();
        let ok = false;
        try {
          ok = (await consume(await auth.fetch(me))) === 200;
        } catch {
          ok = false;
        }
        const ms = performance.now() - sent;
        if (ok && index >= regenerateAt && !recovered) {
          recovered = true;
          recoveries.push(performance.now() - regeneratedAt);
        }
        if (index < regenerateAt) steady.push(ms);
        else if (index < regenerateAt + size.failoverWindow) {
          window.push(ms);
          if (!ok) windowFailed++;
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    tokenRequests += emulator.stats().tokenRequests;
  }
  return {
    steadyP999: percentile(steady, 99.9),
    steadyMax: Math.max(...steady),
    windowP999: percentile(window, 99.9),
    windowMax: Math.max(...window),
    windowMean: window.reduce((a, b) => a + b, 0) / window.length,
    windowFailed,
    tokenRequests,
    recoveryMs: median(recoveries),
  };
}

async function bundleFigures(): Promise<ExtraResults["bundle"]> {
  const root = fileURLToPath(new URL("../", import.meta.url));
  const out = await Deno.makeTempFile({ suffix: ".mjs" });
  try {
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--platform",
        "browser",
        "--minify",
        "-o",
        out,
        "mod.ts",
      ],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      throw new Error(new TextDecoder().decode(result.stderr));
    }
    const bytes = await Deno.readFile(out);
    return {
      minified: bytes.byteLength,
      gzip9: gzipSync(bytes, { level: 9 }).byteLength,
    };
  } finally {
    await Deno.remove(out);
  }
}

/**
 * Measures the extras.
 *
 * @param size Instance and request counts.
 * @param progress Reports what runs.
 * @returns The figures.
 */
export async function measureExtras(
  size: ExtraSize,
  progress: (text: string) => void,
): Promise<ExtraResults> {
  progress("extras · memory");
  const memory = await memoryFigures(size.instances);
  progress("extras · failover window without warmStandby");
  const cold = await failoverFigures(false, size);
  progress("extras · failover window with warmStandby");
  const warm = await failoverFigures(true, size);
  progress("extras · bundle");
  const bundle = await bundleFigures();
  return { gcForced: canCollect, memory, failover: { cold, warm }, bundle };
}
