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
  COMMON_FLAGS,
  COMMON_OPTIONS,
  didYouMean,
  editDistance,
  labelOption,
  noStoreOptions,
  parseTaskArgs,
  readOnlyOptions,
  redactUserinfo,
  runTask,
  type TaskMain,
  type TaskOptions,
  UsageError,
} from "../../tasks/_cli.ts";
import { runCli } from "../../tasks/cli.ts";
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

/** A value for a common flag that takes one. */
const FLAG_VALUES: Readonly<Record<string, string>> = {
  "env-file": "other.env",
  kv: "fleet.db",
  redis: "env",
  prefix: "svc",
};

Deno.test("the common flags: every command accepts each, and --help says what it does there", async () => {
  for (const row of ROWS) {
    const accepted = new Set(
      row.options.flatMap((table) => Object.keys(table)),
    );
    const missing = COMMON_FLAGS.filter((flag) => !accepted.has(flag));
    assert.deepEqual(missing, [], `${row.command} lacks common flags`);
    // Through the command's own entry: the flag passes the parser, which
    // then stops at the next, unknown one (so nothing runs).
    for (const flag of COMMON_FLAGS) {
      if (flag === "help" || flag === "version") continue;
      const value = FLAG_VALUES[flag];
      const args = value === undefined ? [`--${flag}`] : [`--${flag}`, value];
      const { code, stdout, stderr } = await run(row, [
        ...args,
        "--zzzzzzzzzz",
      ]);
      assert.equal(code, 2, `${row.command} --${flag}`);
      // With --json the failure is the JSON on stdout. rotate and promote
      // take --prefix with their store (their --kv rows): alone, it says so.
      const needsStore = flag === "prefix" && row.prefix === undefined &&
        row.options.length > 1;
      assert.match(
        stdout + stderr,
        needsStore
          ? /--prefix belongs to a fleet's \w+ through its store: add --kv <path> or --redis env\./
          : /unknown option --zzzzzzzzzz\. Run deno task /,
        `${row.command} --${flag}`,
      );
    }
  }
  // A command that changes nothing says what --dry-run and --yes mean there.
  for (const command of ["verify", "fleet", "status", "demo"]) {
    const row = ROWS.find((row) => row.command === command)!;
    const { stdout } = await run(row, ["--help"]);
    assert.match(stdout, /^ {2}--dry-run +.* changes nothing anyway$/m);
    assert.match(stdout, /^ {2}--yes +.* asks no question$/m);
  }
});

Deno.test("a common flag with nothing to act on: listed in --help with its reason, a value noted on stderr", () => {
  const options = {
    ...COMMON_OPTIONS,
    json: { type: "boolean", default: false },
    ...readOnlyOptions("probe"),
    ...noStoreOptions("probe keeps no store"),
  } as const;
  const help =
    "Usage: deno task probe\n\nOptions:\n  --json\n\nExit codes:\n  0    ok\n";
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  let values;
  try {
    assert.equal(
      parseTaskArgs("deno task probe", options, help, ["--help"]),
      undefined,
    );
    values = parseTaskArgs("deno task probe", options, help, [
      "--kv",
      "fleet.db",
      "--prefix",
      "svc",
      "--dry-run",
      "--yes",
    ]);
  } finally {
    console.log = log;
    console.error = error;
  }
  const shown = out.join("\n");
  // Before the exit codes, grouped by reason.
  assert.match(
    shown,
    /--json\n\nAccepted as by every command, with nothing to do here:\n {2}--dry-run {10}probe changes nothing anyway\n {2}--yes {14}probe asks no question\n {2}--kv <path>, --redis <url\|env>, --prefix <a\/b>\n {21}probe keeps no store\n\nExit codes:/,
  );
  assert.equal(values?.kv, "fleet.db");
  assert.equal(values?.["dry-run"], true);
  // Only the flag with a value is worth a line: --dry-run and --yes are met.
  assert.deepEqual(err, [
    "Notice: --kv and --prefix have no effect in deno task probe: probe keeps no store.",
  ]);
});

Deno.test("a variant's option without its selector is named as such, not as unknown", async () => {
  for (
    const [row, args, words] of [
      [
        "rotate",
        ["--every", "30d"],
        /^--every belongs to a fleet's rotation through its store: add --kv <path> or --redis env\./,
      ],
      [
        "rotate",
        ["--prefix", "svc"],
        /^--prefix belongs to a fleet's rotation through its store/,
      ],
      [
        "promote",
        ["--timeout", "5"],
        /^--timeout belongs to a fleet's promotion through its store: add --kv <path> or --redis env\./,
      ],
      // A typo of a variant's option still gets its did-you-mean.
      ["rotate", ["--evry", "30d"], /did you mean --every\?/],
    ] as const
  ) {
    const { code, stderr } = await run(
      ROWS.find((candidate) => candidate.command === row)!,
      [...args],
    );
    assert.equal(code, 2, stderr);
    assert.match(stderr, words);
  }
});

Deno.test("under the compiled program, the parser names what the operator typed", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  let typo: number, version: number;
  try {
    typo = await runCli(["rotate", "--frce"]);
    version = await runCli(["status", "--version"]);
  } finally {
    console.log = log;
    console.error = error;
  }
  assert.equal(typo, 2);
  assert.match(
    err.join("\n"),
    /^unknown option --frce; did you mean --force\? Run genesys-rotate rotate --help for the options\.$/m,
  );
  assert.equal(version, 0);
  assert.equal(out.join("\n"), `genesys-rotate status ${denoJson.version}`);
  // And deno task's words again once it returned.
  const after = await run(ROWS[0], ["--frce"]);
  assert.match(after.stderr, /Run deno task verify --help/);
});

Deno.test("--redis env works for every command that reads a store: REDIS_URL is in its permission set", () => {
  const permissions: Record<string, Record<string, unknown>> =
    denoJson.permissions;
  for (const row of ROWS) {
    const redis = row.options.find((table) => Object.hasOwn(table, "redis"))
      ?.redis;
    if (redis === undefined || redis.noEffect !== undefined) continue;
    const name = row.command.split(" ")[0];
    const task = (denoJson.tasks as Record<string, { command: string }>)[name];
    const set = /-P=(\w+)/.exec(task.command)?.[1];
    assert.ok(set, `deno task ${name} runs with a permission set`);
    assert.ok(
      (permissions[set].env as readonly string[] | undefined)?.includes(
        "REDIS_URL",
      ),
      `deno task ${name} (-P=${set}) may read REDIS_URL`,
    );
  }
});

Deno.test("an unreachable Redis is named as the operator gave it, never with its password", async () => {
  const saved = Deno.env.get("REDIS_URL");
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  Deno.env.set("REDIS_URL", "redis://:hunter2@127.0.0.1:1");
  try {
    // Each waits out the connection timeout (5 s): one way per command.
    const viaEnv = await run(
      ROWS.find((candidate) => candidate.command === "status")!,
      ["--redis", "env"],
    );
    assert.equal(viaEnv.code, 1, viaEnv.stderr);
    assert.match(
      viaEnv.stderr,
      /^The Redis named with REDIS_URL \(read by --redis env\) did not answer \(connection refused.*Check the host, the port and TLS \(rediss:\/\/\) in REDIS_URL:/,
    );
    const viaFlag = await run(
      ROWS.find((candidate) => candidate.command === "fleet")!,
      ["--redis", "redis://:hunter2@127.0.0.1:1"],
    );
    assert.equal(viaFlag.code, 1, viaFlag.stderr);
    assert.match(
      viaFlag.stderr,
      /^The Redis named with --redis did not answer/,
    );
    for (const output of [viaEnv, viaFlag]) {
      assert.doesNotMatch(output.stdout + output.stderr, /hunter2/);
    }
  } finally {
    if (saved === undefined) Deno.env.delete("REDIS_URL");
    else Deno.env.set("REDIS_URL", saved);
  }
});
