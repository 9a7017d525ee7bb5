/**
 * A follower's presence (`followSource(auth, source, { presence })`): one
 * file per process in `<env file>.presence/`, with the active label, a
 * salted fingerprint per label (never the secret) and until when a token
 * served with each label lives; rewritten on a switch, removed on stop;
 * read back by `readPresence`, which tells a dead process's leftover from a
 * stuck one's by the lock the OS drops.
 */
import assert from "node:assert/strict";
import type { WarningEvent } from "../../src/events.ts";
import { fingerprintSecret } from "../../src/rotation/journal.ts";
import { envFileSource } from "../../src/sources/env_file_source.ts";
import { followSource } from "../../src/sources/follow.ts";
import {
  isPresenceRecord,
  PRESENCE_KIND,
  presenceDirectoryOf,
  type PresenceRecord,
  readPresence,
} from "../../src/sources/presence.ts";
import { ConfigError } from "../../src/errors.ts";
import { hostName } from "../../src/rotation/lock.ts";
import {
  fakeFollowedAuth,
  SECRETS,
  waitUntil,
  writeEnvFile,
} from "../support/presence_follower.ts";

async function only(directory: string): Promise<PresenceRecord> {
  const entries = await readPresence(directory, Date.now());
  assert.equal(entries.length, 1, JSON.stringify(entries));
  assert.equal(entries[0].state, "live");
  return entries[0].record!;
}

Deno.test("presence: the follower announces its label, fingerprints and token use; a switch is written at once; stop removes it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await writeEnvFile(path, "blue");
    const source = envFileSource(path, { pollIntervalMs: 50 });
    const directory = presenceDirectoryOf(path);
    assert.equal(source.presenceDirectory, directory);
    const auth = fakeFollowedAuth("blue", 60_000);
    const blueExpiry = auth.expires.get("blue")!;
    const follower = followSource(auth, source, {
      // Long on purpose: the switch below must not wait for the interval.
      presence: { intervalMs: 60_000, instance: "web-1" },
    });
    try {
      await waitUntil(
        "the presence file",
        async () => (await readPresence(directory, Date.now())).length === 1,
      );
      const first = await only(directory);
      assert.ok(isPresenceRecord(first));
      assert.equal(first.kind, PRESENCE_KIND);
      assert.equal(first.instance, "web-1");
      assert.equal(first.pid, Deno.pid);
      assert.equal(first.active, "blue");
      assert.equal(first.source, `env file ${path}`);
      const text = await Deno.readTextFile(`${directory}/web-1.json`);
      assert.ok(!text.includes("CANARY"), "no secret in the presence file");
      const blue = first.credentials.find((c) => c.label === "blue")!;
      assert.equal(
        blue.fingerprint,
        await fingerprintSecret(SECRETS.blue, first.salt),
      );
      assert.equal(blue.usedUntil, blueExpiry);
      assert.equal(
        first.credentials.find((c) => c.label === "green")!.usedUntil,
        undefined,
        "green never served",
      );

      await writeEnvFile(path, "green");
      await waitUntil(
        "the switch in the presence file",
        async () => (await only(directory)).active === "green",
        5_000,
      );
      const after = await only(directory);
      const old = after.credentials.find((c) => c.label === "blue")!;
      assert.equal(old.usedUntil, blueExpiry, "blue's last token still counts");
      assert.equal(
        after.credentials.find((c) => c.label === "green")!.usedUntil,
        auth.expires.get("green"),
      );
      assert.equal(after.salt, first.salt, "one salt per process");
    } finally {
      await follower.stop();
    }
    assert.deepEqual(
      [...Deno.readDirSync(directory)].map((e) => e.name),
      [],
      "both files removed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("presence: a label given a new secret starts without use; the fingerprint follows the secret", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    const reissued = "blue-reissued-CANARY-000000000000";
    await writeEnvFile(path, "blue");
    const auth = fakeFollowedAuth("blue", 60_000);
    const follower = followSource(
      auth,
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { intervalMs: 100 } },
    );
    try {
      const directory = presenceDirectoryOf(path);
      const blueOf = async () => {
        const record = (await readPresence(directory, Date.now()))[0]?.record;
        return {
          record,
          blue: record?.credentials.find((c) => c.label === "blue"),
        };
      };
      await writeEnvFile(path, "green");
      await waitUntil(
        "green active, blue's use recorded",
        async () => {
          const { record, blue } = await blueOf();
          return record?.active === "green" && blue?.usedUntil !== undefined;
        },
      );
      // The next rotation gives the standby, blue, a new secret.
      await writeEnvFile(path, "green", { blue: reissued });
      await waitUntil(
        "blue's new fingerprint",
        async () => {
          const { record, blue } = await blueOf();
          return blue !== undefined &&
            blue.fingerprint ===
              await fingerprintSecret(reissued, record!.salt);
        },
        5_000,
      );
      const { blue } = await blueOf();
      assert.equal(
        blue!.usedUntil,
        undefined,
        "the old secret's use is not carried over to the new one",
      );
      assert.equal(blue!.lastUsedAt, undefined);
    } finally {
      await follower.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readPresence: reads only; a stale file is gone when its lock is free, stuck while it is held; a foreign file likewise", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const directory = `${dir}/.env.presence`;
    assert.deepEqual(await readPresence(directory, Date.now()), []);
    await assert.rejects(Deno.stat(directory), Deno.errors.NotFound);
    await Deno.mkdir(directory);
    const now = Date.now();
    const record = (instance: string, updatedAt: number): PresenceRecord => ({
      version: 1,
      kind: PRESENCE_KIND,
      instance,
      pid: 4_242_424,
      source: "env file x",
      startedAt: updatedAt,
      updatedAt,
      intervalMs: 1_000,
      salt: "00",
      active: "blue",
      credentials: [],
    });
    const write = (name: string, value: unknown) =>
      Deno.writeTextFile(`${directory}/${name}`, JSON.stringify(value));
    await write("fresh.json", record("fresh", now - 500));
    await write("dead.json", record("dead", now - 60_000));
    await write("frozen.json", record("frozen", now - 60_000));
    await write("garbage.json", { hello: "world" });
    await write("broken.json", { hello: "world" });
    await Deno.writeTextFile(`${directory}/.fresh.json.1-ab.tmp`, "{");
    // Held by this test as the live processes would hold theirs.
    const frozenLock = await Deno.open(`${directory}/frozen.lock`, {
      read: true,
      write: true,
      create: true,
    });
    await frozenLock.lock(true);
    const garbageLock = await Deno.open(`${directory}/garbage.lock`, {
      read: true,
      write: true,
      create: true,
    });
    await garbageLock.lock(true);
    try {
      const before = [...Deno.readDirSync(directory)].map((e) => e.name)
        .sort();
      const states = Object.fromEntries(
        (await readPresence(directory, now)).map((e) => [e.instance, e.state]),
      );
      assert.deepEqual(states, {
        broken: "gone",
        dead: "gone",
        fresh: "live",
        frozen: "stuck",
        garbage: "unreadable",
      });
      assert.deepEqual(
        [...Deno.readDirSync(directory)].map((e) => e.name).sort(),
        before,
        "nothing written or removed",
      );
    } finally {
      frozenLock.close();
      garbageLock.close();
    }
    const after = Object.fromEntries(
      (await readPresence(directory, now)).map((e) => [e.instance, e.state]),
    );
    assert.equal(after.frozen, "gone", "the lock freed: the process ended");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("presence: a directory that cannot be written is a PRESENCE_FAILED warning, never a failure; a source without a directory needs one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await writeEnvFile(path, "blue");
    // A regular file where the directory should be.
    await Deno.writeTextFile(`${dir}/not-a-dir`, "");
    const warnings: WarningEvent[] = [];
    const follower = followSource(
      fakeFollowedAuth("blue", 60_000),
      envFileSource(path, { pollIntervalMs: 50 }),
      {
        presence: { directory: `${dir}/not-a-dir/presence`, intervalMs: 50 },
        onEvent: (event) => void warnings.push(event),
      },
    );
    try {
      await waitUntil("the warning", () => warnings.length > 0);
      // Retried every interval, reported once.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].code, "PRESENCE_FAILED");
      assert.match(warnings[0].message, /not-a-dir\/presence/);
    } finally {
      await follower.stop();
    }
    const custom = {
      ...envFileSource(path),
      presenceDirectory: undefined,
    };
    assert.throws(
      () =>
        followSource(fakeFollowedAuth("blue", 1_000), custom, {
          presence: true,
        }),
      ConfigError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("presence: a second process under the same instance name is warned, never blocked, and announces itself under a name of its own", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await writeEnvFile(path, "blue");
    const source = envFileSource(path, { pollIntervalMs: 50 });
    const presence = { instance: "web-1", intervalMs: 50 };
    const first = followSource(fakeFollowedAuth("blue", 60_000), source, {
      presence,
    });
    try {
      await waitUntil(
        "the first presence",
        async () =>
          (await readPresence(presenceDirectoryOf(path), Date.now()))
            .length === 1,
      );
      const warnings: WarningEvent[] = [];
      const second = followSource(fakeFollowedAuth("blue", 60_000), source, {
        presence,
        onEvent: (event) => void warnings.push(event),
      });
      try {
        await waitUntil("the warning", () => warnings.length > 0);
        assert.equal(warnings[0].code, "PRESENCE_FAILED");
        const own = warnings[0].message.match(
          new RegExp(`as (web-1-${Deno.pid}-[0-9a-f]{8}) instead`),
        )?.[1];
        assert.ok(own, warnings[0].message);
        // Invisible, it would let the gate revoke a secret it serves with.
        await waitUntil(
          "the second presence",
          async () =>
            (await readPresence(presenceDirectoryOf(path), Date.now()))
              .length === 2,
        );
        const entries = await readPresence(
          presenceDirectoryOf(path),
          Date.now(),
        );
        assert.deepEqual(
          entries.map((e) => [e.instance, e.state, e.record?.instance]),
          [[own, "live", own], ["web-1", "live", "web-1"]],
        );
      } finally {
        await second.stop();
      }
      assert.deepEqual(
        (await readPresence(presenceDirectoryOf(path), Date.now())).map((
          e,
        ) => [e.instance, e.state]),
        [["web-1", "live"]],
        "the first process's file stays, the second's is removed",
      );
    } finally {
      await first.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("presence: a directory or lock file removed while the process runs is taken again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await writeEnvFile(path, "blue");
    const directory = presenceDirectoryOf(path);
    const follower = followSource(
      fakeFollowedAuth("blue", 60_000),
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { instance: "web-1", intervalMs: 50 } },
    );
    const live = async () =>
      (await readPresence(directory, Date.now()))
        .map((e) => `${e.instance}:${e.state}`).join() === "web-1:live";
    try {
      await waitUntil("the presence", live);
      // A clean-up of "leftovers" while the service runs.
      await Deno.remove(directory, { recursive: true });
      await waitUntil("the presence written again", live, 5_000);

      await Deno.remove(`${directory}/web-1.lock`);
      await waitUntil(
        "the lock taken again",
        () =>
          Deno.stat(`${directory}/web-1.lock`).then(() => true, () => false),
        5_000,
      );
      const probe = await Deno.open(`${directory}/web-1.lock`, { read: true });
      try {
        assert.equal(
          await probe.tryLock(false),
          false,
          "the new lock file is held by the process",
        );
      } finally {
        probe.close();
      }
    } finally {
      await follower.stop();
    }
    assert.deepEqual([...Deno.readDirSync(directory)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("presence: a presence file replaced by a link is written again in place, never through the link", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await writeEnvFile(path, "blue");
    const directory = presenceDirectoryOf(path);
    const follower = followSource(
      fakeFollowedAuth("blue", 60_000),
      envFileSource(path, { pollIntervalMs: 50 }),
      { presence: { instance: "web-1", intervalMs: 50 } },
    );
    try {
      await waitUntil(
        "the presence",
        async () => (await readPresence(directory, Date.now())).length === 1,
      );
      const victim = `${dir}/victim.txt`;
      await Deno.writeTextFile(victim, "precious\n");
      await Deno.remove(`${directory}/web-1.json`);
      await Deno.symlink(victim, `${directory}/web-1.json`);
      await waitUntil(
        "a regular presence file again",
        async () => (await Deno.lstat(`${directory}/web-1.json`)).isFile,
        5_000,
      );
      assert.equal(await Deno.readTextFile(victim), "precious\n");
      assert.equal((await only(directory)).active, "blue");
    } finally {
      await follower.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readPresence: a link or a huge file is not read; while its lock is held it is unreadable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const directory = `${dir}/.env.presence`;
    await Deno.mkdir(directory);
    const now = Date.now();
    const record = JSON.stringify(
      {
        version: 1,
        kind: PRESENCE_KIND,
        instance: "x",
        pid: 4_242_424,
        source: "env file x",
        startedAt: now,
        updatedAt: now,
        intervalMs: 1_000,
        salt: "00",
        active: "green",
        credentials: [],
      } satisfies PresenceRecord,
    );
    await Deno.writeTextFile(`${dir}/elsewhere.json`, record);
    await Deno.symlink(`${dir}/elsewhere.json`, `${directory}/linked.json`);
    // Valid JSON, padded far beyond any presence file.
    await Deno.writeTextFile(
      `${directory}/huge.json`,
      record + " ".repeat(1024 * 1024),
    );
    const locks: Deno.FsFile[] = [];
    try {
      for (const name of ["linked", "huge"]) {
        const lock = await Deno.open(`${directory}/${name}.lock`, {
          read: true,
          write: true,
          create: true,
        });
        locks.push(lock);
        await lock.lock(true);
      }
      assert.deepEqual(
        Object.fromEntries(
          (await readPresence(directory, now)).map((
            e,
          ) => [e.instance, e.state]),
        ),
        { huge: "unreadable", linked: "unreadable" },
      );
    } finally {
      for (const lock of locks) lock.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readPresence: a recent file of this host whose lock is there and free is a killed process's (gone); a missing lock or another host keeps it live; a FIFO lock never blocks", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const directory = `${dir}/.env.presence`;
    await Deno.mkdir(directory);
    const now = Date.now();
    const record = (
      instance: string,
      updatedAt: number,
      intervalMs: number,
      host = hostName(),
    ) =>
      JSON.stringify(
        {
          version: 1,
          kind: PRESENCE_KIND,
          instance,
          pid: 4_242_424,
          ...(host === undefined ? {} : { host }),
          source: "env file x",
          startedAt: updatedAt,
          updatedAt,
          intervalMs,
          salt: "00",
          active: "blue",
          credentials: [],
        } satisfies PresenceRecord,
      );
    // SIGKILLed with a long interval: "live" for three of them otherwise.
    await Deno.writeTextFile(
      `${directory}/killed.json`,
      record("killed", now, 600_000),
    );
    await Deno.writeTextFile(`${directory}/killed.lock`, "");
    // Its clock ahead of the reader's.
    await Deno.writeTextFile(
      `${directory}/ahead.json`,
      record("ahead", now + 3_600_000, 1_000),
    );
    await Deno.writeTextFile(`${directory}/ahead.lock`, "");
    await Deno.writeTextFile(
      `${directory}/nolock.json`,
      record("nolock", now, 1_000),
    );
    // Another host's (a shared mount): its lock cannot be probed from here.
    await Deno.writeTextFile(
      `${directory}/remote.json`,
      record("remote", now, 600_000, "another-host"),
    );
    await Deno.writeTextFile(`${directory}/remote.lock`, "");
    await Deno.writeTextFile(
      `${directory}/fifo.json`,
      record("fifo", now - 60_000, 1_000),
    );
    const made = await new Deno.Command("mkfifo", {
      args: [`${directory}/fifo.lock`],
    }).output();
    assert.ok(made.success, "mkfifo");
    const reading = readPresence(directory, now);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const entries = await Promise.race([
      reading,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("readPresence blocked on the FIFO")),
          3_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.deepEqual(
      Object.fromEntries(entries.map((e) => [e.instance, e.state])),
      {
        ahead: "gone",
        fifo: "stuck",
        killed: "gone",
        nolock: "live",
        remote: "live",
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("presenceDirectoryOf: an env file that is a dangling link names the directory beside its target, as rotate's writes follow it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/app`);
    await Deno.mkdir(`${dir}/secrets`);
    await Deno.symlink("../secrets/app.env", `${dir}/app/.env`);
    // The service starts before the file exists...
    const source = envFileSource(`${dir}/app/.env`);
    await writeEnvFile(`${dir}/app/.env`, "blue");
    // ...and the gate looks once it does.
    assert.equal(
      await Deno.realPath(source.presenceDirectory!.replace(/\.presence$/, "")),
      await Deno.realPath(`${dir}/secrets/app.env`),
    );
    assert.equal(
      source.presenceDirectory!.endsWith("app.env.presence"),
      true,
      source.presenceDirectory,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
