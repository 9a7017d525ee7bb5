import assert from "node:assert/strict";
import {
  formatEnvValue,
  parseEnvText,
  readEnvValues,
  setEnvValue,
} from "../../src/rotation/env_file.ts";
import {
  createCallbackSink,
  createEnvFileSink,
  createPrintSink,
} from "../../src/rotation/sinks.ts";
import { Secret } from "../../src/secret.ts";

const keyFor = (label: string) =>
  `GENESYS_CLIENT_SECRET_${label.toUpperCase()}`;

const ORIGINAL = [
  "# Genesys rotation",
  "GENESYS_ENVIRONMENT=mypurecloud.ie",
  "",
  "export GENESYS_CLIENT_SECRET_BLUE='blue old'",
  "GENESYS_CLIENT_SECRET_GREEN = green-old # rotated monthly",
  "GENESYS_ACTIVE=blue",
  "GENESYS_CLIENT_SECRET_GREEN=shadowed-duplicate",
  "",
].join("\n");

Deno.test("env file sink", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step(
      "rewrites one key atomically, keeping its mode, every other line intact",
      async () => {
        const path = `${dir}/.env`;
        await Deno.writeTextFile(path, ORIGINAL, { mode: 0o644 });
        const before = await Deno.stat(path);
        const sink = createEnvFileSink(path, { keyFor });
        await sink.publish({
          label: "green",
          clientId: "g",
          secret: new Secret("new-Green_secret"),
        });
        const text = await Deno.readTextFile(path);
        assert.equal(
          text,
          ORIGINAL.replace("= green-old #", "= new-Green_secret #"),
        );
        const after = await Deno.stat(path);
        if (Deno.build.os !== "windows") {
          // The operator's mode stays (never narrowed or widened silently).
          assert.equal(after.mode! & 0o777, 0o644);
          // A rename, not an in-place write: the file is a new inode.
          assert.notEqual(after.ino, before.ino);
        }
        assert.deepEqual(
          [...Deno.readDirSync(dir)].map((e) => e.name),
          [".env"],
        );
        assert.equal(
          readEnvValues(text).GENESYS_CLIENT_SECRET_GREEN,
          "new-Green_secret",
        );
      },
    );

    await t.step(
      "appends a missing key and creates a missing file",
      async () => {
        const path = `${dir}/new.env`;
        const sink = createEnvFileSink(path, { keyFor });
        await sink.publish({
          label: "blue",
          clientId: "b",
          secret: new Secret("b1"),
        });
        assert.equal(
          await Deno.readTextFile(path),
          "GENESYS_CLIENT_SECRET_BLUE=b1\n",
        );
        await Deno.writeTextFile(path, "A=1\r\nB=2");
        await sink.publish({
          label: "green",
          clientId: "g",
          secret: new Secret("g$1"),
        });
        assert.equal(
          await Deno.readTextFile(path),
          "A=1\r\nB=2\r\nGENESYS_CLIENT_SECRET_GREEN='g$1'\r\n",
        );
      },
    );

    await t.step(
      "temp names are unique per write: a leftover temp file is never written through",
      async () => {
        const path = `${dir}/stale.env`;
        await Deno.writeTextFile(`${path}.tmp`, "garbage", { mode: 0o644 });
        await createEnvFileSink(path, { keyFor }).publish({
          label: "green",
          clientId: "g",
          secret: new Secret("s"),
        });
        assert.equal(
          await Deno.readTextFile(path),
          "GENESYS_CLIENT_SECRET_GREEN=s\n",
        );
        assert.equal(await Deno.readTextFile(`${path}.tmp`), "garbage");
        await Deno.remove(`${path}.tmp`);
      },
    );

    await t.step("the sink's name holds no secret", () => {
      const sink = createEnvFileSink(`${dir}/.env`, { keyFor });
      assert.equal(sink.name, `env file ${dir}/.env`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("env file text", async (t) => {
  await t.step(
    "values are quoted so Deno's loader reads them back unchanged",
    async () => {
      const values = [
        "plain-._~+/=:@%",
        "with space",
        "hash#x",
        "dollar$X",
        'dq"x',
        "back\\slash",
        "",
      ];
      const dir = await Deno.makeTempDir();
      try {
        let text = "";
        values.forEach((v, i) => text = setEnvValue(text, `K${i}`, v));
        await Deno.writeTextFile(`${dir}/.env`, text);
        const script = `console.log(JSON.stringify([${
          values.map((_, i) => `Deno.env.get("K${i}")`).join(",")
        }]))`;
        const output = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-env", `--env-file=${dir}/.env`, "-"],
          stdin: "piped",
          stdout: "piped",
          stderr: "null",
          cwd: dir,
        }).spawn();
        const writer = output.stdin.getWriter();
        await writer.write(new TextEncoder().encode(script));
        await writer.close();
        const { stdout } = await output.output();
        assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), values);
        assert.deepEqual(Object.values(readEnvValues(text)), values);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("a value that cannot be kept literally is refused", () => {
    assert.throws(() => formatEnvValue("it's\nbad"), /cannot keep literally/);
  });

  await t.step("parses export, quotes, comments and multi-line values", () => {
    const found = parseEnvText(
      "# c\nexport A=\"x\ny\" # n\nB='q # r'\nC=v # z\n",
    );
    assert.deepEqual(found.map((a) => [a.key, a.value]), [
      ["A", "x\ny"],
      ["B", "q # r"],
      ["C", "v"],
    ]);
  });
});

Deno.test("print and callback sinks", async (t) => {
  await t.step(
    "the print sink writes the secret once, under its key",
    async () => {
      const lines: string[] = [];
      const sink = createPrintSink((line) => {
        lines.push(line);
      });
      await sink.publish({
        label: "green",
        clientId: "g",
        secret: new Secret("s3"),
        key: "GENESYS_CLIENT_SECRET_GREEN",
      });
      assert.deepEqual(lines, ["GENESYS_CLIENT_SECRET_GREEN=s3"]);
    },
  );

  await t.step(
    "the callback sink passes the update and its failure",
    async () => {
      const seen: string[] = [];
      await createCallbackSink(({ label }) => {
        seen.push(label);
      }).publish({ label: "green", clientId: "g", secret: new Secret("s") });
      assert.deepEqual(seen, ["green"]);
      const failing = createCallbackSink(() =>
        Promise.reject(new Error("down"))
      );
      await assert.rejects(
        failing.publish({ label: "g", clientId: "g", secret: new Secret("s") }),
        /down/,
      );
    },
  );
});

Deno.test("env-file sink: with secretIdKeyFor the secret's id is written with the secret", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env.okta`;
    await Deno.writeTextFile(path, "# mine\nAUTH_ACTIVE=blue\n");
    const sink = createEnvFileSink(path, {
      keyFor: (label) => `AUTH_CLIENT_SECRET_${label.toUpperCase()}`,
      secretIdKeyFor: (label) => `AUTH_SECRET_ID_${label.toUpperCase()}`,
    });
    await sink.publish({
      label: "green",
      clientId: "0oa1",
      secret: new Secret("s3cr3t"),
      secretId: "ocs123",
    });
    assert.equal(
      await Deno.readTextFile(path),
      "# mine\nAUTH_ACTIVE=blue\nAUTH_CLIENT_SECRET_GREEN=s3cr3t\nAUTH_SECRET_ID_GREEN=ocs123\n",
    );
    // Without an id (twin clients), only the secret.
    await sink.publish({
      label: "blue",
      clientId: "0oa1",
      secret: new Secret("other"),
    });
    assert.doesNotMatch(await Deno.readTextFile(path), /AUTH_SECRET_ID_BLUE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
