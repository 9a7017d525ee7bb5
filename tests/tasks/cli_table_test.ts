/**
 * Help and flag behaviour of every command, from one table: `--help` exits 0
 * and documents every option the command's parser accepts (read from the
 * parser's own table, so an undocumented option fails here) and every exit
 * code; an unknown option exits 2 with a "did you mean"; `--version` prints
 * the version in deno.json.
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import {
  didYouMean,
  editDistance,
  labelOption,
  redactUserinfo,
  runTask,
  type TaskMain,
  type TaskOptions,
  UsageError,
} from "../../tasks/_cli.ts";
import * as demo from "../../tasks/demo.ts";
import * as emulator from "../../tasks/emulator.ts";
import * as fleet from "../../tasks/fleet.ts";
import * as incident from "../../tasks/incident.ts";
import * as promote from "../../tasks/promote.ts";
import * as promoteFleet from "../../tasks/_promote_fleet.ts";
import * as rotate from "../../tasks/rotate.ts";
import * as rotateFleet from "../../tasks/_rotate_fleet.ts";
import * as setup from "../../tasks/setup.ts";
import * as status from "../../tasks/status.ts";
import * as verify from "../../tasks/verify.ts";

interface Row {
  /** The command as typed after `deno task`. */
  readonly command: string;
  readonly main: TaskMain;
  /** Every parser the command's `--help` speaks for (a variant's too). */
  readonly options: readonly TaskOptions[];
  /** The exit codes it can return. */
  readonly exitCodes: readonly number[];
  /** Arguments that select the variant, if any (such as `--kv x`). */
  readonly prefix?: readonly string[];
}

const OPERATOR = [0, 1, 2, 3, 130];
const FLEET = [...OPERATOR, 4, 5];

const ROWS: readonly Row[] = [
  {
    command: "verify",
    main: verify.main,
    options: [verify.OPTIONS],
    exitCodes: OPERATOR,
  },
  {
    command: "rotate",
    main: rotate.main,
    options: [rotate.OPTIONS, rotateFleet.OPTIONS],
    exitCodes: FLEET,
  },
  {
    command: "rotate --kv",
    main: rotate.main,
    options: [rotateFleet.OPTIONS],
    exitCodes: FLEET,
    prefix: ["--kv", "fleet.db"],
  },
  {
    command: "promote",
    main: promote.main,
    options: [promote.OPTIONS, promoteFleet.OPTIONS],
    exitCodes: FLEET,
  },
  {
    command: "promote --kv",
    main: promote.main,
    options: [promoteFleet.OPTIONS],
    exitCodes: FLEET,
    prefix: ["--kv", "fleet.db"],
  },
  {
    command: "setup",
    main: setup.main,
    options: [setup.OPTIONS],
    exitCodes: OPERATOR,
  },
  {
    command: "incident",
    main: incident.main,
    options: [incident.OPTIONS],
    exitCodes: FLEET,
  },
  {
    command: "fleet",
    main: fleet.main,
    options: [fleet.OPTIONS],
    exitCodes: [0, 1, 2],
  },
  {
    command: "status",
    main: status.main,
    options: [status.OPTIONS],
    exitCodes: [0, 1, 2],
  },
  {
    command: "emulator",
    main: emulator.main,
    options: [emulator.OPTIONS],
    exitCodes: [0, 2],
  },
  {
    command: "demo",
    main: demo.main,
    options: [demo.OPTIONS],
    exitCodes: [0, 1, 2],
  },
];

/** Runs a command in-process, capturing what it prints. */
async function run(
  row: Row,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    const code = await runTask(row.command, row.main, [
      ...(row.prefix ?? []),
      ...args,
    ]);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

for (const row of ROWS) {
  Deno.test(`${row.command} --help documents every option and exit code`, async () => {
    const { code, stdout } = await run(row, ["--help"]);
    assert.equal(code, 0);
    const names = new Set(row.options.flatMap((table) => Object.keys(table)));
    const missing = [...names].filter((name) =>
      !new RegExp(`(^|[\\s,|\\[])--${name}\\b`, "m").test(stdout)
    );
    assert.deepEqual(missing, [], `${row.command} --help lacks these options`);
    for (const table of row.options) {
      for (const [name, option] of Object.entries(table)) {
        if (option.short === undefined) continue;
        assert.match(stdout, new RegExp(`-${option.short}, --${name}\\b`));
      }
    }
    const listed = [...stdout.matchAll(/^\s{2}(\d+)\s{2,}/gm)].map((m) =>
      Number(m[1])
    );
    const undocumented = row.exitCodes.filter((c) => !listed.includes(c));
    assert.deepEqual(
      undocumented,
      [],
      `${row.command} --help lacks these exit codes`,
    );
    assert.match(stdout, /^Exit codes:$/m);
    assert.match(
      stdout,
      new RegExp(`^Usage: deno task ${row.command.split(" ")[0]}\\b`),
    );
  });

  Deno.test(`${row.command}: an unknown option exits 2 with a did-you-mean`, async () => {
    const [first] = Object.keys(row.options[0]).filter((name) =>
      name.length >= 5
    );
    // A typo: the option's second letter dropped.
    const typo = `--${first[0]}${first.slice(2)}`;
    const { code, stdout, stderr } = await run(row, [typo]);
    assert.equal(code, 2, stdout + stderr);
    assert.match(stderr, new RegExp(`did you mean --${first}\\?`));
    assert.match(stderr, new RegExp(`--${first.slice(0, 1)}${first.slice(2)}`));
    const far = await run(row, ["--zzzzzzzzzz"]);
    assert.equal(far.code, 2);
    assert.match(far.stderr, /unknown option --zzzzzzzzzz/);
    assert.doesNotMatch(far.stderr, /did you mean/);
  });

  Deno.test(`${row.command} --version prints the package version`, async () => {
    for (const flag of ["--version", "-V"]) {
      const { code, stdout } = await run(row, [flag]);
      assert.equal(code, 0);
      assert.match(
        stdout,
        new RegExp(`\\b${denoJson.version.replaceAll(".", "\\.")}$`),
      );
    }
  });
}

Deno.test("did you mean: a typo or an unambiguous prefix, never a far guess", () => {
  const options = {
    force: { type: "boolean" },
    "propagation-timeout": { type: "string" },
    prefix: { type: "string" },
    promote: { type: "boolean" },
  } as const;
  assert.equal(didYouMean("--frce", options), "--force");
  assert.equal(didYouMean("--promot", options), "--promote");
  assert.equal(didYouMean("--propagation", options), "--propagation-timeout");
  assert.equal(didYouMean("--prefx=svc", options), "--prefix");
  assert.equal(didYouMean("--zzzz", options), undefined);
  assert.equal(didYouMean("--pr", options), undefined);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
});

Deno.test("a failure never echoes a URL's password", async () => {
  assert.equal(
    redactUserinfo("could not reach redis://:s3cret@10.0.0.1:6379/0 (refused)"),
    "could not reach redis://***@10.0.0.1:6379/0 (refused)",
  );
  assert.equal(
    redactUserinfo("rediss://user:pw@host:6380 and https://a:b@x.example/"),
    "rediss://***@host:6380 and https://***@x.example/",
  );
  assert.equal(redactUserinfo("redis://host:6379"), "redis://host:6379");
  // Through runTask, as every entry point reports a failure.
  const err: string[] = [];
  const { error } = console;
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    const code = await runTask("fleet", () => {
      throw new UsageError("--redis redis://:hunter2@127.0.0.1:1 is wrong");
    }, []);
    assert.equal(code, 2);
  } finally {
    console.error = error;
  }
  assert.doesNotMatch(err.join("\n"), /hunter2/);
  assert.match(err.join("\n"), /redis:\/\/\*\*\*@127\.0\.0\.1:1/);
});

Deno.test("a label is refused in the operator's words", () => {
  assert.throws(
    () => labelOption("--to", "purple"),
    (error: Error) =>
      error instanceof UsageError &&
      /^--to purple: not a label; use blue or green/.test(error.message),
  );
  assert.equal(labelOption("--to", " Green "), "green");
  assert.equal(labelOption("--to", undefined), undefined);
});

Deno.test("--redis env refuses an unset REDIS_URL in every command that takes a store", async () => {
  const saved = Deno.env.get("REDIS_URL");
  Deno.env.delete("REDIS_URL");
  try {
    for (
      const [row, args] of [
        [fleet, ["--redis", "env"]],
        [status, ["--redis", "env"]],
      ] as const
    ) {
      const err: string[] = [];
      const { error } = console;
      console.error = (...parts: unknown[]) => err.push(parts.join(" "));
      let code: number;
      try {
        code = await runTask("store", row.main, [...args]);
      } finally {
        console.error = error;
      }
      assert.equal(code, 2, err.join("\n"));
      assert.match(err.join("\n"), /--redis env: REDIS_URL is not set/);
    }
  } finally {
    if (saved !== undefined) Deno.env.set("REDIS_URL", saved);
  }
});

Deno.test("the common flags: each command accepts those that apply to it", () => {
  // What a flag means for a command that has it: --dry-run checks and changes
  // nothing, --yes skips the question, --json prints JSON, --env-file names
  // the file the command reads (or writes). A command lacks one only where
  // the flag has nothing to act on (verify, fleet, status, emulator and demo
  // change no credential, so they ask nothing; demo reads no file).
  const expected: Record<string, readonly string[]> = {
    verify: ["json", "env-file"],
    rotate: ["dry-run", "yes", "json", "env-file"],
    "rotate --kv": ["dry-run", "yes", "json", "env-file"],
    promote: ["dry-run", "yes", "json", "env-file"],
    "promote --kv": ["dry-run", "yes", "json", "env-file"],
    setup: ["dry-run", "yes", "json", "env-file"],
    incident: ["dry-run", "yes", "json", "env-file"],
    fleet: ["json", "env-file"],
    status: ["json", "env-file"],
    emulator: ["json", "env-file"],
    demo: ["json"],
  };
  for (const row of ROWS) {
    const accepted = Object.keys(row.options[0]);
    const missing = expected[row.command].filter((flag) =>
      !accepted.includes(flag)
    );
    assert.deepEqual(missing, [], `${row.command} lacks common flags`);
    for (const flag of ["help", "version"]) {
      assert.ok(accepted.includes(flag), `${row.command} --${flag}`);
    }
  }
});
