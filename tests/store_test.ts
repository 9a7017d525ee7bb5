import assert from "node:assert/strict";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import {
  type CachedGrant,
  createMemoryActiveStore,
  createMemoryTokenStore,
  type TokenStore,
} from "../src/store.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  acceptingHandler,
  FakeTokenEndpoint,
} from "./support/fake_token_endpoint.ts";

const grant = (accessToken: string): CachedGrant => ({
  accessToken,
  expiresAt: 2_000,
  refreshAt: 1_000,
  clientId: "c",
});

Deno.test("createMemoryTokenStore", async (t) => {
  await t.step("set, get and delete per label", () => {
    const store = createMemoryTokenStore();
    assert.equal(store.get("blue"), undefined);
    store.set("blue", grant("b"));
    store.set("green", grant("g"));
    assert.equal(store.get("blue")?.accessToken, "b");
    store.set("blue", grant("b2"));
    assert.equal(store.get("blue")?.accessToken, "b2");
    store.delete("blue");
    store.delete("unknown");
    assert.equal(store.get("blue"), undefined);
    assert.equal(store.get("green")?.accessToken, "g");
  });

  await t.step("stores are independent", () => {
    const one = createMemoryTokenStore();
    const two = createMemoryTokenStore();
    one.set("blue", grant("b"));
    assert.equal(two.get("blue"), undefined);
  });
});

Deno.test("createMemoryActiveStore", async (t) => {
  await t.step("holds the initial label, then the one set", () => {
    const store = createMemoryActiveStore("blue");
    assert.equal(store.get(), "blue");
    store.set("green");
    assert.equal(store.get(), "green");
  });

  await t.step("starts empty without an initial label", () => {
    assert.equal(createMemoryActiveStore().get(), undefined);
  });
});

Deno.test("createDualSecretAuth uses injected stores", async (t) => {
  const credentials = [
    { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
    { label: "green", clientId: "green-id", clientSecret: "green-secret" },
  ];

  await t.step(
    "grants are written to and read from the token store",
    async () => {
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(new Set(["blue-id:blue-secret"])),
      });
      const writes: [string, CachedGrant][] = [];
      const inner = createMemoryTokenStore();
      const store: TokenStore = {
        get: (label) => inner.get(label),
        set: (label, value) => {
          writes.push([label, value]);
          inner.set(label, value);
        },
        delete: (label) => inner.delete(label),
      };
      const clock = new FakeClock(0);
      await using auth = createDualSecretAuth({
        credentials,
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock,
        tokenStore: store,
      });
      const token = await auth.getAccessToken();
      assert.equal(writes.length, 1);
      assert.equal(writes[0][0], "blue");
      assert.equal(writes[0][1].accessToken, token);
      assert.equal(writes[0][1].clientId, "blue-id");

      // A grant placed by another instance (a shared store) is served as is.
      inner.set("blue", {
        ...grant("from-elsewhere"),
        expiresAt: 3_600_000,
        refreshAt: 3_000_000,
        clientId: "blue-id",
      });
      assert.equal(await auth.getAccessToken(), "from-elsewhere");
      assert.equal(endpoint.tokenCalls, 1);
    },
  );

  await t.step(
    "a shared active store moves every instance on failover",
    async () => {
      const accepted = new Set(["green-id:green-secret"]);
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(accepted),
      });
      const activeStore = createMemoryActiveStore();
      const clock = new FakeClock(0);
      const options = {
        credentials,
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock,
        activeStore,
      };
      await using one = createDualSecretAuth(options);
      await using two = createDualSecretAuth(options);
      assert.equal(activeStore.get(), "blue");
      await one.getAccessToken(); // blue rejected: one moves to green
      assert.equal(activeStore.get(), "green");
      assert.equal(two.status().active, "green");
      const before = endpoint.tokenCalls;
      await two.getAccessToken();
      // two never tried blue: one green request only.
      assert.equal(endpoint.tokenCalls, before + 1);
      assert.equal(endpoint.tokenRequests.at(-1)?.clientId, "green-id");
    },
  );

  await t.step(
    "an active label unknown to this instance falls back",
    async () => {
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(new Set(["blue-id:blue-secret"])),
      });
      await using auth = createDualSecretAuth({
        credentials,
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock: new FakeClock(0),
        activeStore: createMemoryActiveStore("purple"),
      });
      assert.equal(auth.status().active, "blue");
      assert.match(await auth.getAccessToken(), /^tok-blue-id-/);
    },
  );
});
