import assert from "node:assert/strict";
import {
  acquireEnvFileLock,
  RotationLockedError,
} from "../../src/rotation/lock.ts";

Deno.test({
  name: "two symlinks to one env file share one lock",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/shared`);
      await Deno.writeTextFile(
        `${dir}/shared/app.env`,
        "GENESYS_ACTIVE=blue\n",
      );
      await Deno.symlink(`${dir}/shared/app.env`, `${dir}/.env`);
      await Deno.symlink("shared/app.env", `${dir}/prod.env`);
      await using _held = await acquireEnvFileLock(
        `${dir}/.env`,
        "rotate --yes",
      );
      for (const other of [`${dir}/prod.env`, `${dir}/shared/app.env`]) {
        await assert.rejects(
          () => acquireEnvFileLock(other, "rotate --yes"),
          RotationLockedError,
          `${other} took a second lock on the same file`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a symlink planted as the lock file is refused, its target untouched",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/.env`, "GENESYS_ACTIVE=blue\n");
      await Deno.writeTextFile(`${dir}/victim`, "precious\n");
      await Deno.symlink(`${dir}/victim`, `${dir}/.env.lock`);
      await assert.rejects(
        () => acquireEnvFileLock(`${dir}/.env`, "rotate --yes"),
        (error: Error & { code?: string }) =>
          error.code === "ROTATION_FILE_NOT_WRITABLE" &&
          /is a symbolic link/.test(error.message),
      );
      assert.equal(await Deno.readTextFile(`${dir}/victim`), "precious\n");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
