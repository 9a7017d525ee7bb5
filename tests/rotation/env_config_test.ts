import assert from "node:assert/strict";
import {
  EnvConfigError,
  readRotationEnv,
  ROTATION_ENV_VARS,
} from "../../src/rotation/env_config.ts";

const VALID = {
  GENESYS_ENVIRONMENT: "mypurecloud.de",
  GENESYS_CLIENT_ID_BLUE: "blue-id",
  GENESYS_CLIENT_SECRET_BLUE: "blue-secret-CANARY",
  GENESYS_CLIENT_ID_GREEN: "green-id",
  GENESYS_CLIENT_SECRET_GREEN: "green-secret-CANARY",
  GENESYS_ACTIVE: "green",
};

function problemsOf(env: Record<string, string | undefined>, standby?: string) {
  try {
    readRotationEnv(env, { standby });
  } catch (error) {
    assert.ok(error instanceof EnvConfigError);
    assert.equal(error.code, "ENV_CONFIG_INVALID");
    assert.ok(!error.message.includes("CANARY"));
    return error.variables;
  }
  assert.fail("expected an EnvConfigError");
}

Deno.test("rotation environment", async (t) => {
  await t.step(
    "a region gives both hosts; the standby is the other label",
    () => {
      const config = readRotationEnv(VALID);
      assert.equal(config.tokenUrl, "https://login.mypurecloud.de/oauth/token");
      assert.equal(config.apiUrl, "https://api.mypurecloud.de");
      assert.equal(config.active, "green");
      assert.equal(config.standby, "blue");
      assert.deepEqual(config.credentials.map((c) => c.label), [
        "blue",
        "green",
      ]);
      assert.equal(config.admin, undefined);
      assert.ok(!Deno.inspect(config).includes("CANARY"));
    },
  );

  await t.step(
    "token and API URLs instead of a region, with admin credentials",
    () => {
      const config = readRotationEnv({
        ...VALID,
        GENESYS_ENVIRONMENT: undefined,
        GENESYS_TOKEN_URL: "http://127.0.0.1:8080/oauth/token",
        GENESYS_API_URL: "http://127.0.0.1:8080",
        GENESYS_ADMIN_CLIENT_ID: "admin",
        GENESYS_ADMIN_CLIENT_SECRET: "admin-secret",
      });
      assert.equal(config.tokenUrl, "http://127.0.0.1:8080/oauth/token");
      assert.equal(config.apiUrl, "http://127.0.0.1:8080");
      assert.equal(config.admin?.clientId, "admin");
    },
  );

  await t.step("every missing variable is named at once", () => {
    const variables = problemsOf({});
    for (const name of ROTATION_ENV_VARS) {
      if (/ADMIN|TOKEN_URL|API_URL/.test(name)) continue;
      assert.ok(variables.includes(name), name);
    }
  });

  await t.step("whitespace in a secret is an error naming the variable", () => {
    assert.deepEqual(
      problemsOf({
        ...VALID,
        GENESYS_CLIENT_SECRET_BLUE: "blue-secret-CANARY\n",
      }),
      ["GENESYS_CLIENT_SECRET_BLUE"],
    );
  });

  await t.step("an unknown region is named", () => {
    assert.deepEqual(
      problemsOf({ ...VALID, GENESYS_ENVIRONMENT: "example.com" }),
      [
        "GENESYS_ENVIRONMENT",
      ],
    );
  });

  await t.step("a standby equal to the active is refused", () => {
    assert.deepEqual(problemsOf(VALID, "green"), ["standby"]);
    assert.deepEqual(problemsOf(VALID, "purple"), ["standby"]);
    assert.equal(readRotationEnv(VALID, { standby: "blue" }).standby, "blue");
  });

  await t.step("other mistakes", () => {
    assert.deepEqual(problemsOf({ ...VALID, GENESYS_ACTIVE: "red" }), [
      "GENESYS_ACTIVE",
    ]);
    assert.deepEqual(
      problemsOf({ ...VALID, GENESYS_CLIENT_ID_GREEN: "blue-id" }),
      ["GENESYS_CLIENT_ID_GREEN"],
    );
    assert.deepEqual(
      problemsOf({ ...VALID, GENESYS_TOKEN_URL: "https://x/oauth/token" }),
      ["GENESYS_TOKEN_URL"],
    );
    assert.deepEqual(
      problemsOf({
        ...VALID,
        GENESYS_ENVIRONMENT: undefined,
        GENESYS_TOKEN_URL: "http://login.example.com/oauth/token",
      }),
      ["GENESYS_TOKEN_URL", "GENESYS_API_URL"],
    );
    assert.deepEqual(problemsOf({ ...VALID, GENESYS_ADMIN_CLIENT_ID: "a" }), [
      "GENESYS_ADMIN_CLIENT_SECRET",
    ]);
  });
});
