import assert from "node:assert/strict";
import {
  acquireEnvFileLock,
  type FencedLock,
  lockPathOf,
  RotationLockedError,
} from "../../src/rotation/lock.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("env-file lock: each hold's fencing token is above the last, kept in the lock file across releases", async () => {
  await withDir(async (dir) => {
    const env = `${dir}/.env`;
    const tokens: number[] = [];
    for (const command of ["rotate", "promote", "incident"]) {
      const lock: FencedLock = await acquireEnvFileLock(env, command);
      tokens.push(lock.token);
      await lock.release();
      await lock.release(); // a second release does nothing
    }
    assert.deepEqual(tokens, [1, 2, 3]);
    // Released: the file keeps the token and names no holder.
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(lockPathOf(env))),
      { token: 3 },
    );
    await using again = await acquireEnvFileLock(env, "rotate");
    assert.equal(again.token, 4);
    assert.equal(again.previousHolder, undefined);
  });
});

Deno.test("env-file lock: a holder that died leaves its token; the next hold counts on from it and names it", async () => {
  await withDir(async (dir) => {
    const env = `${dir}/.env`;
    // What a SIGKILLed holder leaves: its record (the OS dropped the flock).
    await Deno.writeTextFile(
      lockPathOf(env),
      `${
        JSON.stringify({
          pid: 4242,
          command: "rotate --yes",
          startedAt: "2026-01-01T00:00:00.000Z",
          token: 41,
        })
      }\n`,
    );
    await using lock = await acquireEnvFileLock(env, "rotate");
    assert.equal(lock.token, 42);
    assert.equal(lock.previousHolder?.pid, 4242);
    assert.equal(lock.previousHolder?.command, "rotate --yes");
    // Refused while held, with the same message as before tokens.
    const refused = await acquireEnvFileLock(env, "promote").catch((e) => e);
    assert.ok(refused instanceof RotationLockedError);
    assert.equal(refused.holder?.command, "rotate");
    assert.equal(refused.holder?.token, 42);
    assert.match(
      refused.message,
      /holds this env file's lock .*Nothing was changed/,
    );
  });
});

Deno.test("env-file lock: a lock file from before tokens, or unreadable, counts from 1", async () => {
  await withDir(async (dir) => {
    for (
      const [name, content] of [
        [
          "old",
          `${JSON.stringify({ pid: 7, command: "rotate", startedAt: "x" })}\n`,
        ],
        ["empty", ""],
        ["garbage", "not json\n"],
      ]
    ) {
      const env = `${dir}/${name}.env`;
      await Deno.writeTextFile(lockPathOf(env), content);
      await using lock = await acquireEnvFileLock(env, "rotate");
      assert.equal(lock.token, 1, name);
    }
  });
});
