import assert from "node:assert/strict";
import { ConfigError, ErrorCode } from "../src/errors.ts";
import { GENESYS_REGIONS, resolveRegion } from "../src/regions.ts";

// The region domains listed in /work/shared/genesys-cloud-facts.md.
const DOCUMENTED_DOMAINS = [
  "mypurecloud.com",
  "mypurecloud.ie",
  "mypurecloud.com.au",
  "mypurecloud.jp",
  "mypurecloud.de",
  "usw2.pure.cloud",
  "cac1.pure.cloud",
  "apne2.pure.cloud",
  "euw2.pure.cloud",
  "aps1.pure.cloud",
  "use2.us-gov-pure.cloud",
  "sae1.pure.cloud",
  "mec1.pure.cloud",
  "apne3.pure.cloud",
  "euc2.pure.cloud",
  "mxc1.pure.cloud",
  "apse1.pure.cloud",
  "edee1.eusc-pure.cloud",
];

Deno.test("regions", async (t) => {
  await t.step("GENESYS_REGIONS holds exactly the documented domains", () => {
    assert.deepEqual(
      Object.keys(GENESYS_REGIONS).sort(),
      [...DOCUMENTED_DOMAINS].sort(),
    );
  });

  await t.step("every region resolves to its login. and api. hosts", () => {
    for (const domain of DOCUMENTED_DOMAINS) {
      const region = resolveRegion(domain);
      assert.deepEqual({ ...region }, {
        domain,
        tokenUrl: `https://login.${domain}/oauth/token`,
        apiUrl: `https://api.${domain}`,
        loginHost: `login.${domain}`,
        apiHost: `api.${domain}`,
      });
      assert.ok(Object.isFrozen(region));
    }
  });

  await t.step("hosts, URLs, case and whitespace are accepted", () => {
    for (
      const input of [
        "MyPureCloud.IE",
        " mypurecloud.ie ",
        "login.mypurecloud.ie",
        "api.mypurecloud.ie",
        "apps.mypurecloud.ie",
        "https://api.mypurecloud.ie",
        "https://login.mypurecloud.ie/oauth/token",
        "http://mypurecloud.ie:443/",
      ]
    ) {
      assert.equal(resolveRegion(input).domain, "mypurecloud.ie", input);
    }
  });

  await t.step("an unknown region is a ConfigError listing valid ones", () => {
    for (const bad of ["mypurecloud.fr", "example.com", "", "pure.cloud"]) {
      const error = assertThrowsConfig(() => resolveRegion(bad));
      assert.equal(error.option, "environment");
      for (const domain of DOCUMENTED_DOMAINS) {
        assert.ok(error.message.includes(domain), domain);
      }
    }
  });
});

function assertThrowsConfig(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, ErrorCode.CONFIG_INVALID);
    return error;
  }
  assert.fail("expected a ConfigError");
}
