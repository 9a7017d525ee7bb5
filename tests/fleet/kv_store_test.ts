import { openKvRetrying } from "../../kv.ts";
import assert from "node:assert/strict";
import {
  createKvFleetStore,
  isDatabaseLocked,
  type KvLike,
  retryLocked,
} from "../../src/fleet/kv_store.ts";
import { fleetStoreContract } from "./contract.ts";

Deno.test("Deno KV fleet store keeps the contract", async (t) => {
  const kv = await Deno.openKv(":memory:");
  const _fits: KvLike = kv;
  let n = 0;
  try {
    await fleetStoreContract(t, () =>
      Promise.resolve({
        store: createKvFleetStore(kv, { prefix: ["contract", n++] }),
      }));
  } finally {
    kv.close();
  }
});

Deno.test("Deno KV fleet store on a file keeps the contract", async (t) => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/fleet.sqlite`);
  let n = 0;
  try {
    await fleetStoreContract(t, () =>
      Promise.resolve({
        store: createKvFleetStore(kv, { prefix: ["contract", n++] }),
      }));
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writes are retried on database is locked", async () => {
  assert.equal(isDatabaseLocked(new Error("database is locked")), true);
  assert.equal(isDatabaseLocked(new TypeError("other")), false);
  let calls = 0;
  const value = await retryLocked(() => {
    calls++;
    if (calls < 4) return Promise.reject(new Error("database is locked"));
    return Promise.resolve("ok");
  });
  assert.equal(value, "ok");
  assert.equal(calls, 4);
  calls = 0;
  await assert.rejects(
    retryLocked(() => {
      calls++;
      return Promise.reject(new Error("disk I/O error"));
    }),
    /disk I\/O/,
  );
  assert.equal(calls, 1, "other failures are not retried");
});

Deno.test("no atomic operation uses more than 10 checks; getMany at most 10 keys", async () => {
  const kv = await Deno.openKv(":memory:");
  const counts: number[] = [];
  const manySizes: number[] = [];
  const spy: KvLike = {
    get: (key) => kv.get(key),
    getMany: (keys) => {
      manySizes.push(keys.length);
      return kv.getMany(keys);
    },
    set: (key, value, options) => kv.set(key, value, options),
    delete: (key) => kv.delete(key),
    list: (selector) => kv.list(selector),
    atomic() {
      const op = kv.atomic();
      let checks = 0;
      const wrapped = {
        check(...c: { key: Deno.KvKey; versionstamp: string | null }[]) {
          checks += c.length;
          op.check(...c);
          return wrapped;
        },
        set(key: Deno.KvKey, value: unknown, o?: { expireIn?: number }) {
          op.set(key, value, o);
          return wrapped;
        },
        delete(key: Deno.KvKey) {
          op.delete(key);
          return wrapped;
        },
        commit() {
          counts.push(checks);
          return op.commit();
        },
      };
      return wrapped;
    },
  };
  try {
    let n = 0;
    await fleetStoreContract(
      {
        step: (_name: string, fn: () => Promise<void>) => fn().then(() => true),
      } as unknown as Deno.TestContext,
      () =>
        Promise.resolve({
          store: createKvFleetStore(spy, { prefix: ["spy", n++] }),
        }),
    );
    assert.ok(counts.length > 10);
    assert.ok(Math.max(...counts) <= 10);
    assert.ok(Math.max(...manySizes) <= 10);
  } finally {
    kv.close();
  }
});

Deno.test({
  name:
    "openKvRetrying creates a new KV file readable by its owner only (0600); an existing file keeps its mode",
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kv-mode-" });
  try {
    const path = `${dir}/fleet.db`;
    const kv = await openKvRetrying(path);
    await kv.set(["k"], 1);
    kv.close();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const shared = `${dir}/shared.db`;
    (await Deno.openKv(shared)).close();
    await Deno.chmod(shared, 0o640);
    (await openKvRetrying(shared)).close();
    assert.equal((await Deno.stat(shared)).mode! & 0o777, 0o640);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
