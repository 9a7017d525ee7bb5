import assert from "node:assert/strict";
import { fleetReport, hostStatus, main } from "../../tasks/status.ts";
import type { FleetStatus } from "../../src/fleet/fleet_status.ts";
import type { RotationJournalRecord } from "../../src/rotation/journal.ts";

const NOW = Date.UTC(2026, 11, 6, 12);
const HOUR = 3_600_000;

const journal = (
  overrides: Partial<RotationJournalRecord>,
): RotationJournalRecord => ({
  version: 1,
  rotationId: "r-1",
  active: "blue",
  standby: "green",
  clientId: "green-id",
  sink: "env file .env",
  phase: "done",
  startedAt: NOW - 3 * HOUR,
  publishedAt: NOW - 2 * HOUR,
  completedAt: NOW - 2 * HOUR,
  ...overrides,
});

Deno.test("status of a host: the rotated label's age, the other unknown", () => {
  const report = hostStatus("blue", journal({}), ".env", NOW);
  assert.equal(report.active, "blue");
  assert.deepEqual(report.labels, [
    { label: "blue", active: true },
    {
      label: "green",
      active: false,
      rotatedAt: NOW - 2 * HOUR,
      ageMs: 2 * HOUR,
    },
  ]);
  assert.equal(report.unfinished, undefined);
});

Deno.test("status of a host: an unfinished rotation and the command that resumes it", () => {
  const report = hostStatus(
    "blue",
    journal({
      phase: "regenerate",
      completedAt: undefined,
      publishedAt: undefined,
    }),
    "prod.env",
    NOW,
  );
  assert.deepEqual(report.unfinished, {
    standby: "green",
    phase: "regenerate",
    startedAt: NOW - 3 * HOUR,
    next: "deno task rotate --yes --env-file prod.env (resumes it)",
  });
  assert.equal(report.labels[1].ageMs, undefined);
});

Deno.test("status of a fleet: secrets' age, a rotation in progress, the next cycle", () => {
  const status = {
    readAt: NOW,
    source: "Deno KV fleet.db, prefix svc",
    instances: [],
    audit: [],
    services: [{
      service: "s",
      active: {
        label: "green",
        generation: 4,
        by: "op",
        at: NOW - HOUR,
        reason: "",
      },
      activeHistory: [],
      rotation: {
        standby: "blue",
        active: "green",
        phase: "publish",
        startedAt: NOW - 60_000,
        inProgress: true,
      },
      schedule: {
        step: "propagate",
        completed: 3,
        stepStartedAt: NOW - 30_000,
        lastCompletedAt: NOW - 24 * HOUR,
      },
      stragglers: [],
      secrets: [
        {
          label: "green",
          generation: 4,
          publishedAt: NOW - 48 * HOUR,
          publishedBy: "op",
          keyId: "k",
        },
      ],
    }],
  } as unknown as FleetStatus;
  const report = fleetReport(
    status,
    30 * 24 * HOUR,
    "--kv fleet.db --prefix svc",
  );
  assert.equal(report.active, "green");
  assert.deepEqual(report.labels, [
    { label: "blue", active: false },
    {
      label: "green",
      active: true,
      rotatedAt: NOW - 48 * HOUR,
      ageMs: 48 * HOUR,
    },
  ]);
  assert.equal(
    report.unfinished?.next,
    "deno task rotate --kv fleet.db --prefix svc --yes (resumes it)",
  );
  assert.deepEqual(report.schedule, {
    step: "propagate",
    completed: 3,
    lastCompletedAt: NOW - 24 * HOUR,
    nextDueAt: NOW - 24 * HOUR + 30 * 24 * HOUR,
  });
});

Deno.test("deno task status reads the env file and its journal, and changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const envFile = `${dir}/.env`;
    await Deno.writeTextFile(envFile, "GENESYS_ACTIVE=green\n");
    const record = journal({
      standby: "blue",
      active: "green",
      phase: "test",
      completedAt: undefined,
      startedAt: Date.now() - 60_000,
      publishedAt: Date.now() - 50_000,
    });
    await Deno.writeTextFile(
      `${envFile}.rotation.json`,
      JSON.stringify(record),
    );
    const before = [
      await Deno.readTextFile(envFile),
      await Deno.readTextFile(`${envFile}.rotation.json`),
    ];
    const out: string[] = [];
    const { log } = console;
    console.log = (...parts: unknown[]) => out.push(parts.join(" "));
    let code: number;
    try {
      code = await main(["--env-file", envFile, "--json"]);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    const report = JSON.parse(out.join("\n"));
    // GENESYS_ACTIVE from the shell would win; the test grants env, so only
    // compare when the shell does not set it.
    if (Deno.env.get("GENESYS_ACTIVE") === undefined) {
      assert.equal(report.active, "green");
    }
    assert.equal(report.unfinished.standby, "blue");
    assert.equal(report.unfinished.phase, "test");
    assert.match(report.unfinished.next, /^deno task rotate --yes --env-file /);
    assert.ok(report.labels[0].ageMs >= 50_000);
    assert.deepEqual(before, [
      await Deno.readTextFile(envFile),
      await Deno.readTextFile(`${envFile}.rotation.json`),
    ]);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [".env", ".env.rotation.json"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
