import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../src/dual_secret_auth.ts";
import type { AuthEvent } from "../../src/events.ts";
import { setEnvFileValue } from "../../src/rotation/sinks.ts";
import { envFileSource } from "../../src/sources/env_file_source.ts";
import { followSource } from "../../src/sources/follow.ts";
import { loadSource } from "../../src/sources/source.ts";
import { secretDirectorySource } from "../../src/sources/secret_directory_source.ts";
import { startGenesysEmulator } from "../../src/testing/emulator.ts";

const BLUE = { clientId: "blue-id", secret: "blue-secret-CANARY" };
const GREEN = { clientId: "green-id", secret: "green-secret-CANARY" };
/** The bound: a change reaches a running service within 2 s. */
const FOLLOW_BOUND_MS = 2_000;

function envText(green: string, active: string): string {
  return [
    "# service configuration",
    `GENESYS_CLIENT_ID_BLUE=${BLUE.clientId}`,
    `GENESYS_CLIENT_SECRET_BLUE=${BLUE.secret}`,
    `GENESYS_CLIENT_ID_GREEN=${GREEN.clientId}`,
    `GENESYS_CLIENT_SECRET_GREEN=${green}`,
    `GENESYS_ACTIVE=${active}`,
    "",
  ].join("\n");
}

async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 10_000,
): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > timeoutMs) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return performance.now() - started;
}

Deno.test("envFileSource: a running instance follows the env file", async (t) => {
  await using emulator = startGenesysEmulator({
    clients: [BLUE, GREEN],
    revokeTokensOnRegenerate: true,
  });
  const dir = await Deno.makeTempDir();
  const path = `${dir}/.env`;
  await Deno.writeTextFile(path, envText(GREEN.secret, "blue"));
  const events: AuthEvent[] = [];
  const onEvent = (event: AuthEvent) => void events.push(event);
  const source = envFileSource(path);
  await using auth = createDualSecretAuth({
    ...loadSource(source),
    tokenUrl: emulator.tokenUrl,
    onEvent,
  });
  const follower = followSource(auth, source, { onEvent });
  const warnings = () =>
    events.filter((e) => e.type === "warning").map((e) =>
      (e as { code: string }).code
    );
  try {
    await t.step("starts from the file", async () => {
      assert.equal(auth.status().active, "blue");
      assert.ok(await auth.getAccessToken());
    });

    await t.step(
      `a new secret, then a new active label, reach it within ${FOLLOW_BOUND_MS} ms`,
      async () => {
        const fresh = emulator.regenerateSecret(GREEN.clientId);
        await setEnvFileValue(path, "GENESYS_CLIENT_SECRET_GREEN", fresh);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await setEnvFileValue(path, "GENESYS_ACTIVE", "green");
        const elapsed = await waitFor(
          "the switch to green",
          () => auth.status().active === "green",
        );
        assert.ok(
          elapsed < FOLLOW_BOUND_MS,
          `switched after ${Math.round(elapsed)} ms`,
        );
        console.log(`env file change followed in ${Math.round(elapsed)} ms`);
        assert.ok(await auth.getAccessToken());
        assert.deepEqual(warnings(), []);
      },
    );

    await t.step(
      "a target that does not get a token is not switched to: warning, current stays",
      async () => {
        await Deno.writeTextFile(path, envText("wrong-secret", "blue"));
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(auth.status().active, "blue");
        await Deno.writeTextFile(path, envText("still-wrong", "green"));
        await waitFor(
          "a SOURCE_SWITCH_FAILED warning",
          () => warnings().includes("SOURCE_SWITCH_FAILED"),
        );
        assert.equal(auth.status().active, "blue");
        assert.ok(await auth.getAccessToken());
      },
    );

    await t.step(
      "a malformed or half-written file keeps the last good configuration",
      async () => {
        const good = emulator.getClientSecret(GREEN.clientId);
        await Deno.writeTextFile(path, envText(good, "blue"));
        await new Promise((resolve) => setTimeout(resolve, 300));
        events.length = 0;
        // Half a file, as a non-atomic editor might leave it.
        await Deno.writeTextFile(
          path,
          envText(good, "green").slice(0, 60),
        );
        await waitFor(
          "a SOURCE_INVALID warning",
          () => warnings().includes("SOURCE_INVALID"),
        );
        assert.equal(auth.status().active, "blue");
        assert.ok(await auth.getAccessToken());
        const invalid = events.find((e) =>
          e.type === "warning" && e.code === "SOURCE_INVALID"
        ) as { message: string };
        assert.match(invalid.message, /GENESYS_ACTIVE is not set/);
        assert.ok(!invalid.message.includes(good));
        // Fixed: followed again.
        await Deno.writeTextFile(path, envText(good, "green"));
        await waitFor("green", () => auth.status().active === "green");
      },
    );
  } finally {
    await follower.stop();
    await auth.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("secretDirectorySource: follows a Kubernetes-style ..data swap", async () => {
  await using emulator = startGenesysEmulator({ clients: [BLUE, GREEN] });
  const dir = await Deno.makeTempDir();
  const writeVersion = async (name: string, green: string, active: string) => {
    await Deno.mkdir(`${dir}/${name}`);
    const files: Record<string, string> = {
      GENESYS_CLIENT_ID_BLUE: BLUE.clientId,
      GENESYS_CLIENT_SECRET_BLUE: `${BLUE.secret}\n`,
      GENESYS_CLIENT_ID_GREEN: GREEN.clientId,
      GENESYS_CLIENT_SECRET_GREEN: green,
      GENESYS_ACTIVE: active,
    };
    for (const [file, value] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}/${file}`, value);
    }
    return Object.keys(files);
  };
  const names = await writeVersion("..2026_01", GREEN.secret, "blue");
  await Deno.symlink("..2026_01", `${dir}/..data`);
  for (const name of names) {
    await Deno.symlink(`..data/${name}`, `${dir}/${name}`);
  }
  const source = secretDirectorySource(dir);
  const auth = createDualSecretAuth({
    ...loadSource(source),
    tokenUrl: emulator.tokenUrl,
  });
  const follower = followSource(auth, source);
  try {
    assert.equal(auth.status().active, "blue");
    const fresh = emulator.regenerateSecret(GREEN.clientId);
    await writeVersion("..2026_02", fresh, "green");
    // The kubelet's atomic swap: a new link renamed over ..data.
    await Deno.symlink("..2026_02", `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    const elapsed = await waitFor(
      "the switch to green",
      () => auth.status().active === "green",
    );
    assert.ok(
      elapsed < FOLLOW_BOUND_MS,
      `switched after ${Math.round(elapsed)} ms`,
    );
    assert.ok(await auth.getAccessToken());
  } finally {
    await follower.stop();
    await auth.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSource: checked up front", async (t) => {
  await t.step(
    "a source that is not usable at start is a config error",
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/.env`, "GENESYS_ACTIVE=purple\n");
        assert.throws(
          () => loadSource(envFileSource(`${dir}/.env`)),
          (error: Error & { code?: string }) =>
            error.code === "CONFIG_INVALID" &&
            /GENESYS_CLIENT_ID_BLUE is not set/.test(error.message) &&
            /GENESYS_ACTIVE is "purple"/.test(error.message),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step("something that is not a source is refused", () => {
    assert.throws(
      () => loadSource({}),
      /must be a credential source/,
    );
  });
});
