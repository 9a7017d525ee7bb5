/**
 * The single-host revoke gate (`envFileRevokeGate`) with evidence: the
 * presence files of the processes that follow the env file. It refuses
 * while a follower still serves with the old secret, opens once the
 * follower switched and the token it served with the old secret expired,
 * ignores (and reports) a stale file whose process is gone, keeps shut for
 * a stale one whose process runs, and without any presence is the reload
 * wait it always was, saying so.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { envFileRevokeGate } from "../../src/rotation/incident.ts";
import {
  PresenceGateErrorCode,
  RevokeGateInUseError,
  RevokeGateUnreadableError,
} from "../../src/rotation/presence_gate.ts";
import { fingerprintSecret } from "../../src/rotation/journal.ts";
import { envFileSource } from "../../src/sources/env_file_source.ts";
import { followSource } from "../../src/sources/follow.ts";
import {
  PRESENCE_KIND,
  presenceDirectoryOf,
  type PresenceRecord,
  readPresence,
} from "../../src/sources/presence.ts";
import {
  fakeFollowedAuth,
  SECRETS,
  waitUntil,
  writeEnvFile,
} from "../support/presence_follower.ts";

const REQUEST = { label: "blue", clientId: "app", secretId: "s-old" };

async function withEnv(
  body: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(`${dir}/.env`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("revoke gate: refuses while a follower still serves with the old secret; opens once it switched and its token expired", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "blue");
    const lifetimeMs = 400;
    const auth = fakeFollowedAuth("blue", lifetimeMs);
    const follower = followSource(
      auth,
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { intervalMs: 100 } },
    );
    try {
      const directory = presenceDirectoryOf(path);
      await waitUntil(
        "the presence file",
        async () => (await readPresence(directory, Date.now())).length === 1,
      );
      // Promoted in the file, but green gets no token in this process.
      auth.canSwitch = false;
      await writeEnvFile(path, "green");
      const progress: string[] = [];
      const started = Date.now();
      const refused = await envFileRevokeGate(path, {
        reloadWaitMs: 100,
        gateTimeoutMs: 1_000,
        onProgress: (line) => void progress.push(line),
      })(REQUEST).then(() => undefined, (error: unknown) => error);
      assert.ok(refused instanceof RevokeGateInUseError, String(refused));
      assert.equal(refused.code, PresenceGateErrorCode.IN_USE);
      // Shut until its token, refreshed meanwhile, would outlive the deadline.
      assert.ok(
        Date.now() - started >= 1_000 - lifetimeMs,
        "waited while it could still open",
      );
      assert.equal(refused.holders.length, 1);
      assert.equal(refused.holders[0].reason, "active");
      assert.equal(refused.holders[0].pid, Deno.pid);
      assert.match(refused.message, new RegExp(`restart pid ${Deno.pid}`));
      assert.match(refused.message, /run the rotation again/);
      assert.match(progress.join("\n"), /serves with it \("blue" active\)/);

      // It gets its token now; a re-read of the changed file switches it.
      auth.canSwitch = true;
      await writeEnvFile(path, "green", {
        green: "green-restored-CANARY-00000000000",
      });
      await waitUntil("the switch", () => auth.active === "green");
      const blueExpiry = auth.expires.get("blue")!;
      const line = await envFileRevokeGate(path, {
        reloadWaitMs: 0,
        gateTimeoutMs: 10_000,
      })(REQUEST);
      assert.ok(
        Date.now() >= blueExpiry,
        "opened only after the token served with the old secret expired",
      );
      assert.match(line, /presence: 1 live process\(es\) \(pid \d+\)/);
      assert.match(line, /none serves with the old secret of "blue"/);
    } finally {
      await follower.stop();
    }
  });
});

Deno.test("revoke gate: a token of the old secret that outlives the timeout fails at once, saying until when", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "blue");
    const auth = fakeFollowedAuth("blue", 60_000);
    const follower = followSource(
      auth,
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { intervalMs: 100 } },
    );
    try {
      await writeEnvFile(path, "green");
      const directory = presenceDirectoryOf(path);
      await waitUntil(
        "the switch",
        async () =>
          (await readPresence(directory, Date.now()))[0]?.record?.active ===
            "green",
      );
      const started = Date.now();
      const error = await envFileRevokeGate(path, {
        reloadWaitMs: 0,
        gateTimeoutMs: 5_000,
      })(REQUEST).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof RevokeGateInUseError, String(error));
      assert.ok(Date.now() - started < 2_000, "no pointless wait");
      assert.equal(error.holders[0].reason, "used-recently");
      assert.equal(error.holders[0].usedUntil, auth.expires.get("blue"));
      assert.match(
        error.message,
        new RegExp(
          `wait until ${new Date(auth.expires.get("blue")!).toISOString()}`,
        ),
      );
    } finally {
      await follower.stop();
    }
  });
});

Deno.test("revoke gate: a stale presence whose process is gone is ignored and reported; one whose process runs keeps it shut", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const directory = presenceDirectoryOf(path);
    await Deno.mkdir(directory);
    const salt = "5a17";
    const stale = (instance: string, pid: number): PresenceRecord => ({
      version: 1,
      kind: PRESENCE_KIND,
      instance,
      pid,
      source: `env file ${path}`,
      startedAt: Date.now() - 120_000,
      updatedAt: Date.now() - 60_000,
      intervalMs: 1_000,
      salt,
      active: "blue",
      credentials: [],
    });
    const holding = async (instance: string, pid: number) => ({
      ...stale(instance, pid),
      credentials: [{
        label: "blue",
        clientId: "app",
        fingerprint: await fingerprintSecret(SECRETS.blue, salt),
        usedUntil: Date.now() + 3_600_000,
      }],
    });
    // Killed with the old secret active: its lock died with it.
    await Deno.writeTextFile(
      `${directory}/crashed.json`,
      JSON.stringify(await holding("crashed", 4_242_424)),
    );
    const line = await envFileRevokeGate(path, { reloadWaitMs: 0 })(REQUEST);
    assert.match(line, /ignored 1 stale file\(s\).*pid 4242424, 6\d\.\d s old/);
    assert.match(line, /no live process announces its presence/);
    assert.match(line, /the reload wait is the only evidence/);
    assert.ok(
      (await Deno.readDir(directory)[Symbol.asyncIterator]().next()).value,
      "the leftover is reported, not deleted",
    );

    // Stale but its process runs (its lock held): it may hold the secret.
    await Deno.writeTextFile(
      `${directory}/frozen.json`,
      JSON.stringify(stale("frozen", 4_343_434)),
    );
    const lock = await Deno.open(`${directory}/frozen.lock`, {
      read: true,
      write: true,
      create: true,
    });
    try {
      await lock.lock(true);
      const error = await envFileRevokeGate(path, {
        reloadWaitMs: 0,
        gateTimeoutMs: 300,
      })(REQUEST).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof RevokeGateInUseError, String(error));
      assert.equal(error.holders[0].reason, "stuck");
      assert.match(error.message, /pid 4343434 runs but has not refreshed/);
      assert.match(error.message, /or delete .*frozen\.json/);
    } finally {
      lock.close();
    }
    assert.match(
      await envFileRevokeGate(path, { reloadWaitMs: 0 })(REQUEST),
      /ignored 2 stale file\(s\)/,
    );
  });
});

Deno.test("revoke gate: without presence files it is the reload wait, says so, and creates nothing", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const started = Date.now();
    const line = await envFileRevokeGate(path, { reloadWaitMs: 300 })(
      REQUEST,
    );
    assert.ok(Date.now() - started >= 250, "the reload wait is the floor");
    assert.match(line, /re-read it within 0\.3 s \(--reload-wait\)/);
    assert.match(
      line,
      new RegExp(
        `no live process announces its presence in ${
          presenceDirectoryOf(path).replaceAll(".", "\\.")
        }: the reload wait is the only evidence`,
      ),
    );
    await assert.rejects(
      Deno.stat(presenceDirectoryOf(path)),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("revoke gate: stays shut for a follower on the old secret whose presence directory was removed, whose file was replaced by a link, or that shares another's instance name", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const source = envFileSource(path, { pollIntervalMs: 50 });
    const directory = presenceDirectoryOf(path);
    const switched = followSource(fakeFollowedAuth("green", 60_000), source, {
      presence: { instance: "web", intervalMs: 50 },
    });
    // Never gets a token with green: it keeps serving blue.
    const stuck = fakeFollowedAuth("blue", 60_000);
    stuck.canSwitch = false;
    const behind = followSource(stuck, source, {
      presence: { instance: "web", intervalMs: 50 },
    });
    try {
      const gate = envFileRevokeGate(path, {
        reloadWaitMs: 0,
        gateTimeoutMs: 300,
      });
      const refused = async (what: string) => {
        const error = await gate(REQUEST).then(
          (line) => line,
          (e: unknown) => e,
        );
        assert.ok(error instanceof RevokeGateInUseError, `${what}: ${error}`);
        assert.deepEqual(error.holders.map((h) => h.reason), ["active"]);
      };
      await waitUntil(
        "both presences",
        async () => (await readPresence(directory, Date.now())).length === 2,
      );
      await refused("same instance name");
      await Deno.remove(directory, { recursive: true });
      // Within the reload wait's floor (an interval here), written again.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await refused("directory removed");
      // Its file replaced by a link elsewhere: written again in place.
      for (const entry of await readPresence(directory, Date.now())) {
        await Deno.remove(entry.file);
        await Deno.symlink(`${path}.elsewhere`, entry.file);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      await refused("presence file replaced by a link");
    } finally {
      await behind.stop();
      await switched.stop();
    }
  });
});

Deno.test("revoke gate: a FIFO where a lock should be neither hangs it nor opens it; Ctrl-C ends the wait", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const directory = presenceDirectoryOf(path);
    await Deno.mkdir(directory);
    await Deno.writeTextFile(`${directory}/odd.json`, "{}");
    const made = await new Deno.Command("mkfifo", {
      args: [`${directory}/odd.lock`],
    }).output();
    assert.ok(made.success, "mkfifo");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the gate hung")), 5_000);
    });
    try {
      const error = await Promise.race([
        envFileRevokeGate(path, { reloadWaitMs: 0, gateTimeoutMs: 200 })(
          REQUEST,
        ).then((line) => line, (e: unknown) => e),
        hang,
      ]);
      assert.ok(error instanceof RevokeGateInUseError, String(error));
      assert.match(error.message, /or delete .*odd\.json/);
      const controller = new AbortController();
      const waiting = envFileRevokeGate(path, {
        reloadWaitMs: 0,
        gateTimeoutMs: 60_000,
      })({ ...REQUEST, signal: controller.signal });
      setTimeout(() => controller.abort(new Error("Ctrl-C")), 100);
      const stopped = await Promise.race([
        waiting.then((line) => line, (e: unknown) => e),
        hang,
      ]);
      assert.ok(
        !(stopped instanceof RevokeGateInUseError) &&
          stopped instanceof Error,
        String(stopped),
      );
    } finally {
      clearTimeout(timer);
    }
  });
});

Deno.test("revoke gate: a follower still on the old label keeps it shut even when its file lists no credential (it never could read the env file)", async () => {
  await withEnv(async (path) => {
    // A value the follower refuses (a space) while the gate reads blue's.
    await Deno.writeTextFile(
      path,
      [
        "GENESYS_CLIENT_ID_BLUE=app",
        `GENESYS_CLIENT_SECRET_BLUE=${SECRETS.blue}`,
        "GENESYS_CLIENT_ID_GREEN=app",
        "GENESYS_CLIENT_SECRET_GREEN='green secret'",
        "GENESYS_ACTIVE=green",
        "",
      ].join("\n"),
    );
    const follower = followSource(
      fakeFollowedAuth("blue", 60_000),
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { intervalMs: 50 }, onEvent: () => {} },
    );
    try {
      const directory = presenceDirectoryOf(path);
      await waitUntil(
        "the presence file",
        async () => (await readPresence(directory, Date.now())).length === 1,
      );
      const [entry] = await readPresence(directory, Date.now());
      assert.equal(entry.record?.active, "blue");
      assert.deepEqual(entry.record?.credentials, []);
      const error = await envFileRevokeGate(path, {
        reloadWaitMs: 0,
        gateTimeoutMs: 200,
      })(REQUEST).then((line) => line, (e: unknown) => e);
      assert.ok(error instanceof RevokeGateInUseError, String(error));
      assert.deepEqual(error.holders.map((h) => h.reason), ["active"]);
    } finally {
      await follower.stop();
    }
  });
});

Deno.test("revoke gate: a presence directory that cannot be read fails with REVOKE_GATE_UNREADABLE, saying what to do", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    // Not a directory (as root, a mode cannot make one unreadable).
    await Deno.writeTextFile(presenceDirectoryOf(path), "");
    const error = await envFileRevokeGate(path, {
      reloadWaitMs: 0,
      gateTimeoutMs: 200,
    })(REQUEST).then((line) => line, (e: unknown) => e);
    assert.ok(error instanceof RevokeGateUnreadableError, String(error));
    assert.equal(error.code, PresenceGateErrorCode.UNREADABLE);
    assert.ok(error.cause instanceof Error);
    assert.match(
      error.message,
      /cannot read the presence files in .*\.env\.presence/,
    );
    assert.match(
      error.message,
      /nothing was revoked\. Next: run rotate as a user/,
    );
  });
});

Deno.test("revoke gate: the leftovers of a crash loop are counted, not each named in the retire line", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const directory = presenceDirectoryOf(path);
    await Deno.mkdir(directory);
    const updatedAt = Date.now() - 60_000;
    for (let i = 0; i < 40; i++) {
      await Deno.writeTextFile(
        `${directory}/${1000 + i}-dead.json`,
        JSON.stringify(
          {
            version: 1,
            kind: PRESENCE_KIND,
            instance: `${1000 + i}-dead`,
            pid: 1000 + i,
            source: `env file ${path}`,
            startedAt: updatedAt,
            updatedAt,
            intervalMs: 1_000,
            salt: "00",
            active: "blue",
            credentials: [],
          } satisfies PresenceRecord,
        ),
      );
    }
    const line = await envFileRevokeGate(path, { reloadWaitMs: 0 })(REQUEST);
    assert.match(line, /ignored 40 stale file\(s\)/);
    assert.match(line, /pid 1004, 6\d\.\d s old, and 35 more\)/);
    assert.doesNotMatch(line, /pid 1005/);
  });
});

Deno.test("revoke gate: a timeout that is not a number is refused at once instead of never ending; a poll of 0 likewise", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const auth = fakeFollowedAuth("blue", 60_000);
    auth.canSwitch = false;
    const follower = followSource(
      auth,
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { intervalMs: 50 }, onEvent: () => {} },
    );
    try {
      await waitUntil(
        "the presence file",
        async () =>
          (await readPresence(presenceDirectoryOf(path), Date.now()))
            .length === 1,
      );
      for (
        const options of [{ gateTimeoutMs: NaN }, {
          gateTimeoutMs: 200,
          pollMs: 0,
        }]
      ) {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 1_000);
        try {
          const error = await envFileRevokeGate(path, {
            reloadWaitMs: 0,
            ...options,
          })({ ...REQUEST, signal: controller.signal }).then(
            (line) => line,
            (e: unknown) => e,
          );
          assert.ok(error instanceof ConfigError, String(error));
        } finally {
          clearTimeout(timer);
        }
      }
    } finally {
      await follower.stop();
    }
  });
});

Deno.test("revoke gate: a warm standby's token of the old secret is not counted, and the line says so rather than that none is held", async () => {
  await withEnv(async (path) => {
    await writeEnvFile(path, "green");
    const auth = fakeFollowedAuth("green", 60_000);
    // Refreshed with the old secret along with the active one's, never served.
    auth.expires.set("blue", Date.now() + 60_000);
    const follower = followSource(
      auth,
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { intervalMs: 50 } },
    );
    try {
      await waitUntil(
        "the presence file",
        async () =>
          (await readPresence(presenceDirectoryOf(path), Date.now()))
            .length === 1,
      );
      const line = await envFileRevokeGate(path, { reloadWaitMs: 0 })(REQUEST);
      assert.doesNotMatch(line, /holds a live token/);
      assert.match(
        line,
        /served a token of it that still lives \(a warm standby's token is not counted; a process that does not announce itself is not seen\)/,
      );
    } finally {
      await follower.stop();
    }
  });
});
