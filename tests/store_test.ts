import assert from "node:assert/strict";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import {
  type CachedGrant,
  createMemorySharedState,
  type SharedState,
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

Deno.test("createMemorySharedState", async (t) => {
  await t.step("set, get and delete per key", () => {
    const store = createMemorySharedState();
    assert.equal(store.getGrant("blue"), undefined);
    const b = grant("b");
    store.setGrant("blue", b);
    store.setGrant("green", grant("g"));
    assert.equal(store.getGrant("blue")?.accessToken, "b");
    const b2 = grant("b2");
    store.setGrant("blue", b2);
    assert.equal(store.getGrant("blue")?.accessToken, "b2");
    store.deleteGrant("blue", b2);
    store.deleteGrant("unknown", b2);
    assert.equal(store.getGrant("blue"), undefined);
    assert.equal(store.getGrant("green")?.accessToken, "g");
  });

  await t.step(
    "delete removes only the grant given (compare-and-delete)",
    () => {
      const store = createMemorySharedState();
      const old = grant("old");
      const fresh = grant("fresh");
      store.setGrant("blue", old);
      store.setGrant("blue", fresh); // Another caller refreshed meanwhile.
      store.deleteGrant("blue", old);
      assert.equal(store.getGrant("blue"), fresh);
    },
  );

  await t.step("states are independent", () => {
    const one = createMemorySharedState();
    const two = createMemorySharedState();
    one.setGrant("blue", grant("b"));
    assert.equal(two.getGrant("blue"), undefined);
  });

  await t.step("holds the initial label, then the one set", () => {
    const store = createMemorySharedState("blue");
    assert.equal(store.getActive(), "blue");
    store.setActive("green", "rotate");
    assert.equal(store.getActive(), "green");
  });

  await t.step("starts empty without an initial label", () => {
    assert.equal(createMemorySharedState().getActive(), undefined);
  });
});

/** Own grants, but the active label of `active` (shared by several instances). */
function sharingActive(active: SharedState): SharedState {
  const own = createMemorySharedState();
  return {
    getGrant: (key) => own.getGrant(key),
    setGrant: (key, value) => own.setGrant(key, value),
    deleteGrant: (key, value) => own.deleteGrant(key, value),
    getActive: () => active.getActive(),
    setActive: (label, why) => active.setActive(label, why),
  };
}

Deno.test("createDualSecretAuth uses injected shared state", async (t) => {
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
      const inner = createMemorySharedState();
      const store: SharedState = {
        getGrant: (label) => inner.getGrant(label),
        setGrant: (label, value) => {
          writes.push([label, value]);
          inner.setGrant(label, value);
        },
        deleteGrant: (label, value) => inner.deleteGrant(label, value),
        getActive: () => inner.getActive(),
        setActive: (label, why) => inner.setActive(label, why),
      };
      const clock = new FakeClock(0);
      await using auth = createDualSecretAuth({
        credentials,
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock,
        shared: store,
      });
      const token = await auth.getAccessToken();
      assert.equal(writes.length, 1);
      assert.equal(writes[0][0], "blue");
      assert.equal(writes[0][1].accessToken, token);
      assert.equal(writes[0][1].clientId, "blue-id");

      // A grant placed by another instance (a shared store) is served as is.
      inner.setGrant("blue", {
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
    "a shared active label moves every instance on failover",
    async () => {
      const accepted = new Set(["green-id:green-secret"]);
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(accepted),
      });
      const activeStore = createMemorySharedState();
      const clock = new FakeClock(0);
      const options = {
        credentials,
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock,
      };
      await using one = createDualSecretAuth({
        ...options,
        shared: sharingActive(activeStore),
      });
      await using two = createDualSecretAuth({
        ...options,
        shared: sharingActive(activeStore),
      });
      assert.equal(activeStore.getActive(), "blue");
      await one.getAccessToken(); // blue rejected: one moves to green
      assert.equal(activeStore.getActive(), "green");
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
        shared: createMemorySharedState("purple"),
      });
      assert.equal(auth.status().active, "blue");
      assert.match(await auth.getAccessToken(), /^tok-blue-id-/);
    },
  );
});
