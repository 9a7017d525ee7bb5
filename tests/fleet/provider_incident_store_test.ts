/**
 * `respondToCompromise` on a fleet store (`fleetIncidentPorts`, in-memory
 * store) through the provider port, in process against the Okta and Auth0
 * emulators (blue active and compromised), as `deno task incident --kv`
 * wires it: credentials and secret ids read from the store's sealed records
 * at every run. Stopped after every step and run again, the response
 * finishes and green's clean secret is issued once over both runs, sealed
 * with its id. Okta revokes blue's leaked secret by the id its sealed record
 * carries and marks that record retired; Auth0 regenerates blue's client and
 * seals its new secret (twice only when stopped before it was stored).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createMemoryFleetStore } from "../../src/fleet/store.ts";
import { createStoreTarget } from "../../src/fleet/store_target.ts";
import { fleetIncidentPorts } from "../../src/fleet/store_flows.ts";
import { storedSecretIds } from "../../src/fleet/operator.ts";
import {
  credentialDocument,
  importSealKeyring,
  isSealedCredentialRecord,
} from "../../src/fleet/distribution.ts";
import { readProviderEnv } from "../../src/providers/env.ts";
import {
  INCIDENT_STEPS,
  respondToCompromise,
} from "../../src/rotation/incident.ts";
import type { SecretProvider } from "../../src/rotation/provider.ts";
import type { Secret } from "../../src/secret.ts";
import { PROVIDERS } from "../tasks/rotate_provider_scenario.ts";

for (const name of ["okta", "auth0"]) {
  Deno.test(`incident on a fleet store through the provider port on ${name}: stopped after each step, run again: finished, the clean secret issued and sealed once`, async (t) => {
    for (const step of INCIDENT_STEPS.filter((s) => s !== "verify")) {
      await t.step(step, async () => {
        await using world = await PROVIDERS[name]();
        const config = readProviderEnv(world.env);
        await using handle = await config.createProvider();
        const issued: string[] = [];
        const provider: SecretProvider = {
          ...handle.provider,
          issueSecret: (clientId, options) => {
            issued.push(clientId);
            return handle.provider.issueSecret(clientId, options);
          },
        };
        const store = createMemoryFleetStore();
        const target = createStoreTarget({
          store,
          service: "svc",
          by: "ops@test",
          now: () => Date.now(),
          ring: await importSealKeyring(btoa("k".repeat(32))),
          onRejected: () => {},
        });
        const labels = config.credentials.map((c) => c.label);
        const blue = config.credentials.find((c) => c.label === "blue")!;
        const green = config.credentials.find((c) => c.label === "green")!;
        const twoSecrets = config.model === "two-secrets";
        // Blue's secret sealed as a fleet rotation leaves it: with its id.
        const [listed] = twoSecrets
          ? (await handle.provider.inspectClient(blue.clientId)).secrets ?? []
          : [];
        await target.sealedSink().publish({
          label: "blue",
          clientId: blue.clientId,
          secret: blue.clientSecret as Secret,
          ...(listed ? { secretId: listed.secretId } : {}),
        });
        await target.setActive("blue");
        const record = async (label: string) => {
          const value = (await store.readDocument(
            "svc",
            credentialDocument(label),
          ))?.value;
          return isSealedCredentialRecord(value) ? value : undefined;
        };
        const respond = async (failAt?: string) => {
          const ports = fleetIncidentPorts(target, {
            compromised: "blue",
            timeoutMs: 1_000,
          });
          try {
            return await respondToCompromise({
              compromised: "blue",
              credentials: await target.credentials(config.credentials),
              active: (await store.readActive("svc"))!.label,
              tokenUrl: config.tokenUrl,
              provider,
              secretIds: {
                ...config.secretIds,
                ...await storedSecretIds(target, labels),
              },
              onSecretRevoked: ports.onSecretRevoked,
              ...(config.scope === undefined ? {} : { scope: config.scope }),
              ...(config.tokenParams === undefined
                ? {}
                : { tokenParams: config.tokenParams }),
              sink: ports.sink,
              onPromote: (label) => ports.onPromote(label),
              awaitLoaded: (request) => ports.awaitLoaded(request),
              journal: ports.journal,
              onStep: (event) => ports.recordStep(event),
              verifyAttempts: 3,
              verifyDelayMs: 10,
              ...(failAt === undefined ? {} : {
                failpoint: (reached: string) => {
                  if (reached === failAt) {
                    throw new Error(`killed after ${failAt}`);
                  }
                },
              }),
            });
          } finally {
            await ports.settled();
          }
        };
        await assert.rejects(respond(step), new RegExp(`killed after ${step}`));
        const report = await respond();
        assert.match(report.resumedFrom ?? "", /resuming incident/);
        assert.equal(report.active, "green");
        assert.equal((await store.readActive("svc"))?.label, "green");
        const issuedFor = (id: string) => issued.filter((i) => i === id).length;
        assert.equal(issuedFor(green.clientId), 1, issued.join());
        const greenRecord = await record("green");
        assert.ok(greenRecord, "green's clean secret is sealed");
        assert.equal(greenRecord.retiredAt, undefined);
        const blueRecord = await record("blue");
        if (twoSecrets) {
          // The clean secret alone, sealed with its id; the leaked one
          // revoked by the id blue's record carries, that record retired.
          assert.deepEqual(issued, [green.clientId]);
          assert.ok(greenRecord.secretId);
          assert.notEqual(greenRecord.secretId, listed!.secretId);
          assert.equal(world.liveSecrets(), 1);
          assert.equal(blueRecord?.secretId, listed!.secretId);
          assert.ok(blueRecord?.retiredAt, "blue's record is retired");
          assert.match(
            report.steps.find((s) => s.step === "verify")?.detail ?? "",
            /refuses the leaked secret of blue/,
          );
        } else {
          assert.equal(
            issuedFor(blue.clientId),
            step === "regenerate" ? 2 : 1,
            issued.join(),
          );
          assert.equal(blueRecord?.retiredAt, undefined);
          const [sealedBlue] = await target.credentials([blue]);
          assert.notEqual(
            (sealedBlue.clientSecret as Secret).reveal(),
            (blue.clientSecret as Secret).reveal(),
          );
        }
        const trail = (await store.listAudit("svc", 500)).map((e) =>
          `${e.action}:${e.outcome}:${e.label}`
        );
        assert.equal(
          trail.includes("incident.retire:ok:blue"),
          twoSecrets,
          trail.join(", "),
        );
      });
    }
  });
}
