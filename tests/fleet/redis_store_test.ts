/**
 * The Redis engine against a real redis-server: the shared contract suite,
 * then what only Redis has (scripts forgotten by a restart, pub/sub, ACL
 * users, key TTLs as garbage collection only, failing fast while down).
 */
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix
import { createClient } from "npm:@redis/client@^6.3.1";
import {
  checkRedisPrefix,
  createRedisFleetStore,
  listRedisInstances,
  type RedisClientLike,
  type RedisFleetStore,
} from "../../src/fleet/redis_store.ts";
import {
  RedisAuthError,
  RedisErrorCode,
  RedisPermissionError,
  RedisUnavailableError,
} from "../../src/fleet/redis_errors.ts";
import { ConfigError } from "../../src/errors.ts";
import type { InstanceRecord } from "../../src/fleet/store.ts";
import {
  ignoreWithoutRedis,
  sharedOrOwnRedis,
  startRedisServer,
} from "../support/redis_server.ts";
import { fleetStoreContract } from "./contract.ts";

const ignore = ignoreWithoutRedis();
let unique = 0;
const prefix = () => `contract:${Date.now()}:${unique++}`;

Deno.test({
  name: "Redis fleet store keeps the contract",
  ignore,
}, async (t) => {
  await using redis = await sharedOrOwnRedis();
  await fleetStoreContract(t, () => {
    const store = createRedisFleetStore({ url: redis.url, prefix: prefix() });
    return Promise.resolve({ store, close: () => store.close() });
  });
});

Deno.test({
  name: "Redis fleet store: what only the Redis engine has",
  ignore,
}, async (t) => {
  await using redis = await sharedOrOwnRedis();
  const open: RedisFleetStore[] = [];
  const make = (p = prefix()) => {
    const store = createRedisFleetStore({ url: redis.url, prefix: p });
    open.push(store);
    return store;
  };
  const raw = createClient({ url: redis.url });
  raw.on("error", () => undefined);
  await raw.connect();
  try {
    await t.step(
      "epoch-millisecond values survive the scripts exactly",
      async () => {
        const store = make();
        const key = { credential: "c", slot: 0 };
        const now = 1_764_000_000_123;
        assert.equal(
          await store.tryLease(key, { holder: "a", until: now + 5_001 }, now),
          true,
        );
        assert.equal(
          await store.tryLease(
            key,
            { holder: "b", until: now + 9_000 },
            now + 5_000,
          ),
          false,
          "1 ms before the lease lapses it is still held",
        );
        assert.equal(
          await store.tryLease(
            key,
            { holder: "b", until: now + 9_000 },
            now + 5_001,
          ),
          true,
        );
        const grant = {
          token: "t",
          sealed: false,
          clientId: "c",
          expiresAt: now + 3_600_001,
          refreshAt: now + 3_000_000,
          writtenAt: now,
          writtenBy: "b",
        };
        assert.equal(await store.writeGrant(key, grant, "b"), true);
        assert.equal(
          await store.writeGrant(
            key,
            { ...grant, expiresAt: now + 3_600_000 },
            "b",
          ),
          false,
          "1 ms earlier does not overwrite",
        );
        assert.deepEqual((await store.readSlots([key]))[0], { grant });
      },
    );

    await t.step(
      "key TTLs only collect garbage: they outlast the value's expiry",
      async () => {
        const p = prefix();
        const store = make(p);
        const key = { credential: "c", slot: 0 };
        const now = Date.now();
        await store.tryLease(key, { holder: "a", until: now + 1_000 }, now);
        const leaseTtl = await raw.pTTL(`{${p}}:lease:c:0`);
        assert.ok(leaseTtl > 1_000, `lease key TTL ${leaseTtl} ms`);
        await store.heartbeat({
          instanceId: "i",
          active: "blue",
          credentials: [],
          version: "0",
          startedAt: now,
          seenAt: now,
          until: now + 2_000,
        });
        const beatTtl = await raw.pTTL(`{${p}}:instance:i`);
        assert.ok(beatTtl > 2_000, `heartbeat key TTL ${beatTtl} ms`);
      },
    );

    await t.step(
      "scripts are sent again after SCRIPT FLUSH (a restarted server)",
      async () => {
        const store = make();
        const key = { credential: "c", slot: 0 };
        assert.equal(
          await store.tryLease(key, { holder: "a", until: 10 }, 1),
          true,
        );
        await raw.sendCommand(["SCRIPT", "FLUSH"]);
        assert.equal(
          await store.tryLease(key, { holder: "b", until: 10 }, 2),
          false,
        );
        assert.equal(
          await store.tryLease(key, { holder: "b", until: 20 }, 10),
          true,
        );
      },
    );

    await t.step(
      "pub/sub tells a watcher of another connection about changes",
      async () => {
        const p = prefix();
        const writer = make(p);
        const watcher = make(p);
        const seen: string[] = [];
        const key = { credential: "c", slot: 1 };
        let wake = () => {};
        const unwatch = watcher.watch!("svc", [key], () => {
          seen.push("change");
          wake();
        });
        const next = () =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error("no message")),
              5_000,
            );
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        // The subscription is asynchronous: write until the first message arrives.
        let generation = 0;
        const first = next();
        const writes = setInterval(() => {
          writer.compareAndSetActive("svc", generation, {
            label: "blue",
            generation: generation + 1,
            by: "w",
            at: 1,
            reason: "initial",
          }).then((won) => won && generation++).catch(() => undefined);
        }, 50);
        try {
          await first;
        } finally {
          clearInterval(writes);
        }
        const grantSeen = next();
        await writer.writeGrant(key, {
          token: "t",
          sealed: false,
          clientId: "c",
          expiresAt: Date.now() + 60_000,
          refreshAt: Date.now() + 30_000,
          writtenAt: Date.now(),
          writtenBy: "w",
        }, "w");
        await grantSeen;
        unwatch();
        const before = seen.length;
        await writer.compareAndSetActive("svc", generation, {
          label: "green",
          generation: generation + 1,
          by: "w",
          at: 2,
          reason: "rotate",
        });
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.equal(seen.length, before, "no calls after unwatch");
      },
    );

    await t.step(
      "listRedisInstances finds the live heartbeats of every fleet under a prefix",
      async () => {
        const base = prefix();
        const now = Date.now();
        const beat = (id: string, until: number): InstanceRecord => ({
          instanceId: id,
          active: "blue",
          credentials: [],
          version: "0",
          startedAt: now,
          seenAt: now,
          until,
        });
        await make(`${base}:svc-a`).heartbeat(beat("a1", now + 10_000));
        await make(`${base}:svc-a`).heartbeat(beat("a0", now - 1));
        await make(`${base}:svc-b`).heartbeat(beat("b1", now + 10_000));
        await make(`${base}x`).heartbeat(beat("other", now + 10_000));
        const found = await listRedisInstances(
          raw as unknown as RedisClientLike,
          `${base}:`,
          now,
        );
        assert.deepEqual(
          found.map((e) => `${e.prefix}/${e.record.instanceId}`),
          [`${base}:svc-a/a1`, `${base}:svc-b/b1`],
        );
      },
    );

    await t.step(
      "a given client is used and left open; only the pub/sub duplicate is closed",
      async () => {
        const p = prefix();
        const store = createRedisFleetStore({
          client: raw as unknown as RedisClientLike,
          prefix: p,
        });
        const unwatch = store.watch!("svc", [], () => {});
        assert.equal(
          await store.compareAndSetActive("svc", 0, {
            label: "blue",
            generation: 1,
            by: "x",
            at: 1,
            reason: "initial",
          }),
          true,
        );
        unwatch();
        await store.close();
        assert.equal(raw.isReady, true);
        assert.equal(
          JSON.parse(await raw.get(`{${p}}:active:svc`) ?? "{}").label,
          "blue",
        );
      },
    );

    await t.step("a bad prefix or URL is a ConfigError", () => {
      assert.throws(() => checkRedisPrefix(""), ConfigError);
      assert.throws(() => checkRedisPrefix("a{b}"), ConfigError);
      assert.throws(
        () => createRedisFleetStore({ url: "http://x", prefix: "p" }),
        ConfigError,
      );
    });
  } finally {
    await Promise.all(open.map((store) => store.close()));
    raw.destroy();
  }
});

Deno.test({
  name:
    "Redis fleet store: ACL user works; a wrong password is a RedisAuthError; down fails fast",
  ignore,
}, async (t) => {
  await using server = await startRedisServer({
    users: [{ username: "fleet", password: "s3cret-pass" }],
  });
  await t.step("the ACL user with its password works", async () => {
    const store = createRedisFleetStore({ url: server.url, prefix: "acl" });
    try {
      await store.connected(10_000);
      assert.equal(
        await store.publishRejection({
          credential: "c",
          label: "blue",
          clientId: "c",
          secretHash: "h",
          at: 1,
          by: "a",
        }),
        true,
      );
    } finally {
      await store.close();
    }
  });
  await t.step("username and password as options work too", async () => {
    const store = createRedisFleetStore({
      url: `redis://127.0.0.1:${server.port}`,
      username: "fleet",
      password: "s3cret-pass",
      prefix: "acl",
    });
    try {
      assert.equal((await store.readRejections(["c"])).length, 1);
    } finally {
      await store.close();
    }
  });
  await t.step(
    "a wrong password: RedisAuthError with a stable code, no password in it",
    async () => {
      const store = createRedisFleetStore({
        url: server.urlFor("fleet", "wrong-pass"),
        prefix: "acl",
      });
      try {
        const connected = await store.connected(10_000).then(
          () => undefined,
          (error) => error,
        );
        assert.ok(connected instanceof RedisAuthError, String(connected));
        assert.equal(connected.code, RedisErrorCode.REDIS_AUTH_FAILED);
        assert.equal(connected.code, "REDIS_AUTH_FAILED");
        assert.equal(connected.username, "fleet");
        assert.match(connected.message, /user "fleet".*ACL/);
        assert.doesNotMatch(connected.message, /wrong-pass|s3cret/);
        await assert.rejects(store.readActive("svc"), RedisAuthError);
      } finally {
        await store.close();
      }
    },
  );
  await t.step(
    "no password where one is required is a RedisAuthError too",
    async () => {
      const store = createRedisFleetStore({
        url: `redis://127.0.0.1:${server.port}`,
        prefix: "acl",
      });
      try {
        await assert.rejects(store.connected(10_000), (error: unknown) => {
          assert.ok(error instanceof RedisAuthError);
          assert.equal(error.username, "default");
          return true;
        });
      } finally {
        await store.close();
      }
    },
  );
  await t.step(
    "while Redis is down calls fail fast; they work again after it is back",
    async () => {
      const store = createRedisFleetStore({ url: server.url, prefix: "down" });
      try {
        await store.connected(10_000);
        await server.kill();
        const started = Date.now();
        await assert.rejects(store.readActive("svc"), RedisUnavailableError);
        assert.ok(Date.now() - started < 1_000, "failed fast");
        await server.start();
        await store.connected(15_000);
        assert.equal(await store.readActive("svc"), undefined);
      } finally {
        await store.close();
      }
    },
  );
});

Deno.test({
  name:
    "Redis fleet store over TLS (rediss://): a trusted CA works, an untrusted certificate does not",
  ignore,
}, async (t) => {
  await using server = await startRedisServer({
    tls: true,
    users: [{ username: "fleet", password: "tls-pass" }],
  });
  assert.match(server.url, /^rediss:\/\//);
  await t.step("with the server's certificate as CA", async () => {
    const store = createRedisFleetStore({
      url: server.url,
      prefix: "tls",
      tls: { ca: server.certificate! },
    });
    try {
      await store.connected(10_000);
      assert.equal(
        await store.compareAndSetActive("svc", 0, {
          label: "blue",
          generation: 1,
          by: "a",
          at: 1,
          reason: "initial",
        }),
        true,
      );
      assert.equal((await store.readActive("svc"))?.label, "blue");
    } finally {
      await store.close();
    }
  });
  await t.step("without it the connection is refused, typed", async () => {
    const store = createRedisFleetStore({ url: server.url, prefix: "tls" });
    try {
      await assert.rejects(store.connected(3_000), (error: unknown) => {
        assert.ok(error instanceof RedisUnavailableError, String(error));
        assert.match(error.message, /certificate/i);
        return true;
      });
    } finally {
      await store.close();
    }
  });
});

Deno.test({
  name:
    "Redis fleet store: the Redis guide's least-privilege ACL keeps the contract; a user without scripting gets RedisPermissionError",
  ignore,
}, async (t) => {
  await using server = await startRedisServer({
    users: [{ username: "admin", password: "admin-pass" }],
  });
  const admin = createClient({ url: server.url });
  admin.on("error", () => undefined);
  await admin.connect();
  try {
    // The rule docs/fleet-redis.md gives, read from it, for the prefixes
    // this test uses.
    const guide = await Deno.readTextFile(
      new URL("../../docs/fleet-redis.md", import.meta.url),
    );
    const rule = guide.match(/\*\*ACL\.\*\* The user needs\s+`([^`]+)`/)?.[1];
    assert.equal(
      rule,
      "~{prefix}:* &{prefix}:* +@read +@write +@scripting +@pubsub +@connection",
      "docs/fleet-redis.md states the ACL rule this test applies",
    );
    const least = (prefix: string) =>
      rule.replaceAll("{prefix}", `{${prefix}}`);
    let n = 0;
    const prefixes = Array.from({ length: 20 }, () => `least:${n++}`);
    await admin.sendCommand([
      "ACL",
      "SETUSER",
      "svc",
      "on",
      ">svc-pass",
      "resetkeys",
      "resetchannels",
      ...prefixes.flatMap((p) => least(p).split(" ")),
    ]);
    await admin.sendCommand([
      "ACL",
      "SETUSER",
      "noscript",
      "on",
      ">noscript-pass",
      "~*",
      "&*",
      "+@all",
      "-@scripting",
    ]);
    let next = 0;
    await fleetStoreContract(t, () => {
      const store = createRedisFleetStore({
        url: server.urlFor("svc", "svc-pass"),
        prefix: prefixes[next++],
      });
      return Promise.resolve({ store, close: () => store.close() });
    });
    await t.step(
      "the same user may subscribe to its fleet's announcements",
      async () => {
        const p = prefixes[next++];
        const url = server.urlFor("svc", "svc-pass");
        const writer = createRedisFleetStore({ url, prefix: p });
        const watcher = createRedisFleetStore({ url, prefix: p });
        try {
          let seen = 0;
          const unwatch = watcher.watch!("svc", [], () => seen++);
          const end = Date.now() + 5_000;
          for (
            let generation = 0;
            seen === 0 && Date.now() < end;
            generation++
          ) {
            await writer.compareAndSetActive("svc", generation, {
              label: "blue",
              generation: generation + 1,
              by: "w",
              at: 1,
              reason: "initial",
            });
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          unwatch();
          assert.ok(seen > 0, "an announcement arrived");
        } finally {
          await writer.close();
          await watcher.close();
        }
      },
    );
    await t.step("the same user is refused other prefixes' keys", async () => {
      const store = createRedisFleetStore({
        url: server.urlFor("svc", "svc-pass"),
        prefix: "someone-else",
      });
      try {
        await assert.rejects(store.readActive("svc"), RedisPermissionError);
      } finally {
        await store.close();
      }
    });
    await t.step(
      "no scripting: REDIS_NO_PERMISSION, saying what to grant",
      async () => {
        const store = createRedisFleetStore({
          url: server.urlFor("noscript", "noscript-pass"),
          prefix: "p",
        });
        try {
          await assert.rejects(
            store.tryLease({ credential: "c", slot: 0 }, {
              holder: "a",
              until: 2,
            }, 1),
            (error: unknown) => {
              assert.ok(error instanceof RedisPermissionError, String(error));
              assert.equal(error.code, RedisErrorCode.REDIS_NO_PERMISSION);
              assert.match(error.message, /\+@scripting/);
              return true;
            },
          );
        } finally {
          await store.close();
        }
      },
    );
  } finally {
    admin.destroy();
  }
});
