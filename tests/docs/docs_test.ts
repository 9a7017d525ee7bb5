/**
 * The docs cannot rot: every TypeScript block of README.md and every .md under docs/ is
 * type-checked against the package's own specifiers (deno.json's import map),
 * every Node.js (`js`) block by the npm package test (tsc, checkJs), a block
 * left out says why; every `deno task` line names a task deno.json
 * defines and flags its parser accepts; every relative link resolves, anchor
 * included; the README's figures come from BENCHMARKS.md; the reference's
 * help pages and permission sets are what the tasks and deno.json say.
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import {
  HELP_BEGIN,
  HELP_END,
  OTHER_TASK_SOURCES,
  renderHelpPages,
  ROOT,
  TASK_NAMES,
  TASK_OPTIONS,
} from "./_commands.ts";
import {
  anchors,
  type DocFile,
  fences,
  nodeBlocks,
  prose,
  readDocs,
} from "./_markdown.ts";

const docs = await readDocs();

/** What a block left unchecked must begin with. */
const NOT_CHECKED = "// Not type-checked:";

function isCode(info: string): boolean {
  return /^(ts|typescript|tsx|js|javascript|jsx)\b/.test(info);
}

async function denoCheck(
  files: readonly string[],
  cwd: string,
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "check",
      "--lock=deno.dev.lock",
      `--config=${ROOT}deno.json`,
      "--doc-only",
      ...files,
    ],
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    output: decoder.decode(stdout) + decoder.decode(stderr),
  };
}

Deno.test("docs: every TypeScript block type-checks; a block left out says why", async () => {
  let expected = 0;
  let nodeChecked = 0;
  for (const doc of docs) {
    for (const fence of fences(doc.text)) {
      if (!isCode(fence.info)) continue;
      if (/^(js|javascript)\b/.test(fence.info)) {
        // Node.js code: deno check cannot resolve @deno/kv, so it is marked
        // ignore here and type-checked by the npm package test (nodeBlocks).
        assert.match(
          fence.info,
          /\bignore\b/,
          `${doc.path}:${fence.line}: a Node.js block is marked ignore (the npm package test checks it)`,
        );
        nodeChecked++;
      } else if (/\bignore\b/.test(fence.info)) {
        assert.ok(
          fence.body.trimStart().startsWith(NOT_CHECKED),
          `${doc.path}:${fence.line}: a block marked ignore must begin with "${NOT_CHECKED} <why>"`,
        );
      } else {
        expected++;
      }
    }
  }
  assert.ok(expected >= 8, `only ${expected} checked blocks found`);
  // The same blocks the npm package test type-checks as JavaScript.
  assert.equal(nodeChecked, nodeBlocks(docs).length);
  // Copies with a fresh comment in each block, so deno check cannot answer
  // from its cache and names every block it checks.
  const dir = await Deno.makeTempDir();
  const nonce = crypto.randomUUID();
  let code: number, output: string;
  try {
    for (const doc of docs) {
      const parent = doc.path.slice(0, doc.path.lastIndexOf("/") + 1);
      if (parent) await Deno.mkdir(`${dir}/${parent}`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/${doc.path}`,
        doc.text.split("\n").flatMap((line) => {
          const open = line.match(/^(\s*)`{3,}(.*)$/);
          return open && isCode(open[2].trim()) &&
              !/\bignore\b/.test(open[2])
            ? [line, `${open[1]}// ${nonce}`]
            : [line];
        }).join("\n"),
      );
    }
    ({ code, output } = await denoCheck(docs.map((d) => d.path), dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(code, 0, output);
  const checked = output.split("\n").filter((line) =>
    /^Check \S+\.md#\d+-\d+\.\w+$/.test(line.trim())
  );
  assert.equal(
    checked.length,
    expected,
    `deno check checked ${checked.length} blocks, the docs have ${expected}:\n${output}`,
  );
});

Deno.test("docs: the block check fails a block that does not type-check", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/broken.md`,
      '```ts\nimport { createDualSecretAuth } from "@rotating/dual-secret-auth";\nconst n: number = createDualSecretAuth;\n```\n',
    );
    const { code, output } = await denoCheck(["broken.md"], dir);
    assert.notEqual(code, 0, output);
    assert.match(output, /TS2322/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A command line a doc shows: `deno task <task> …` or `genesys-rotate <command> …`. */
interface CommandLine {
  readonly doc: string;
  readonly task: string;
  readonly flags: readonly string[];
  readonly text: string;
}

function commandLines(doc: DocFile): CommandLine[] {
  const segments: string[] = [];
  // Shell blocks (and the help pages' text blocks): one line each, with `\`
  // continuations joined.
  for (const fence of fences(doc.text)) {
    if (isCode(fence.info) || /^(yaml|json)/.test(fence.info)) continue;
    segments.push(...fence.body.replaceAll("\\\n", " ").split("\n"));
  }
  // Inline code in prose, even across a line break.
  for (const match of prose(doc.text).matchAll(/`([^`]+)`/g)) {
    segments.push(match[1].replaceAll("\n", " "));
  }
  const lines: CommandLine[] = [];
  for (const segment of segments) {
    for (
      const match of segment.matchAll(
        /(?:\bdeno task|\bgenesys-rotate)\s+([a-z][\w-]*)([^#;&]*)/g,
      )
    ) {
      const flags = [...match[2].matchAll(/(?:^|\s|\[)--([a-z][\w-]*)/g)].map(
        (m) => m[1],
      );
      lines.push({ doc: doc.path, task: match[1], flags, text: match[0] });
    }
  }
  return lines;
}

Deno.test("docs: every deno task line names a real task and flags its parser accepts", async () => {
  const lines = docs.flatMap(commandLines);
  assert.ok(lines.length > 50, `only ${lines.length} command lines found`);
  const otherFlags = new Map<string, Set<string>>();
  for (const [task, source] of Object.entries(OTHER_TASK_SOURCES)) {
    const text = source ? await Deno.readTextFile(`${ROOT}${source}`) : "";
    otherFlags.set(
      task,
      new Set(
        [...text.matchAll(
          /^\s*"?([a-z][\w-]*)"?:\s*\{\s*$|^\s*"?([a-z][\w-]*)"?:\s*\{\s*type:/gm,
        )]
          .map((m) => m[1] ?? m[2]),
      ),
    );
  }
  const problems: string[] = [];
  for (const line of lines) {
    const known = TASK_OPTIONS[line.task];
    if (!TASK_NAMES.includes(line.task)) {
      problems.push(`${line.doc}: "${line.text.trim()}": no task ${line.task}`);
      continue;
    }
    const accepted = known
      ? new Set(known.flatMap((table) => Object.keys(table)))
      : otherFlags.get(line.task);
    assert.ok(
      accepted,
      `deno.json task ${line.task} is in neither table of tests/docs/_commands.ts`,
    );
    for (const flag of line.flags) {
      if (!accepted.has(flag)) {
        problems.push(
          `${line.doc}: "${line.text.trim()}": ${line.task} has no --${flag}`,
        );
      }
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("docs: every relative link resolves, its anchor too", async () => {
  const problems: string[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  const anchorsFor = async (path: string) => {
    if (!anchorsOf.has(path)) {
      anchorsOf.set(path, anchors(await Deno.readTextFile(`${ROOT}${path}`)));
    }
    return anchorsOf.get(path)!;
  };
  let count = 0;
  for (const doc of docs) {
    const dir = doc.path.includes("/")
      ? doc.path.slice(0, doc.path.lastIndexOf("/") + 1)
      : "";
    for (const match of prose(doc.text).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1];
      if (/^[a-z]+:/i.test(target)) continue;
      count++;
      const [file, anchor] = target.split("#");
      const path = file === ""
        ? doc.path
        : new URL(file, `file:///${dir}`).pathname.slice(1);
      try {
        await Deno.stat(`${ROOT}${path}`);
      } catch {
        problems.push(`${doc.path}: ${target}: no file ${path}`);
        continue;
      }
      if (anchor !== undefined && path.endsWith(".md")) {
        if (!(await anchorsFor(path)).has(anchor)) {
          problems.push(
            `${doc.path}: ${target}: no heading #${anchor} in ${path}`,
          );
        }
      }
    }
  }
  assert.ok(count > 30, `only ${count} relative links found`);
  assert.deepEqual(problems, []);
});

Deno.test("README: every figure between the figures markers appears in BENCHMARKS.md", async () => {
  const readme = docs.find((d) => d.path === "README.md")!.text;
  const block = readme.match(
    /<!-- figures:begin -->([\s\S]*?)<!-- figures:end -->/,
  );
  assert.ok(block, "README.md has no figures block");
  const benchmarks = await Deno.readTextFile(`${ROOT}BENCHMARKS.md`);
  const figures = [...block[1].matchAll(/\d[\d,]*(?:\.\d+)?/g)].map((m) =>
    m[0]
  );
  assert.ok(figures.length >= 10, `only ${figures.length} figures found`);
  const missing = figures.filter((figure) => !benchmarks.includes(figure));
  assert.deepEqual(
    missing,
    [],
    "figures the README quotes that BENCHMARKS.md does not hold",
  );
});

Deno.test("reference: the help pages are what the commands print", async () => {
  const reference = docs.find((d) => d.path === "docs/reference.md")!.text;
  const begin = reference.indexOf(HELP_BEGIN);
  const end = reference.indexOf(HELP_END);
  assert.ok(
    begin !== -1 && end > begin,
    "docs/reference.md lacks the help markers",
  );
  assert.equal(
    reference.slice(begin + HELP_BEGIN.length, end).trim(),
    (await renderHelpPages()).trim(),
    "a command's --help changed: run deno run -A tests/docs/_commands.ts",
  );
});

Deno.test("reference: the commands and permission sets are deno.json's", () => {
  const reference = docs.find((d) => d.path === "docs/reference.md")!.text;
  const section = (heading: string) => {
    const start = reference.indexOf(`\n## ${heading}\n`);
    assert.notEqual(start, -1, `docs/reference.md has no "## ${heading}"`);
    const next = reference.indexOf("\n## ", start + 1);
    return reference.slice(start, next === -1 ? undefined : next);
  };
  const rows = (text: string) =>
    text.split("\n").filter((line) => /^\|\s*[`\[]/.test(line)).map((line) =>
      line.split("|").slice(1, -1).map((cell) => cell.trim())
    );
  const tasks = denoJson.tasks as Record<string, { command: string }>;
  const commands = rows(section("Commands"));
  assert.deepEqual(
    commands.map(([name]) => name.match(/`([\w-]+)`/)?.[1]).sort(),
    Object.keys(tasks).sort(),
    "the Commands table lists every task of deno.json, once",
  );
  for (const [cell, , set] of commands) {
    const name = cell.match(/`([\w-]+)`/)![1];
    const declared = tasks[name].command.match(/-P=(\w+)/)?.[1];
    if (declared) {
      assert.equal(set, `\`${declared}\``, `${name}'s permission set`);
    }
  }
  const sets = rows(section("Permission sets"));
  assert.deepEqual(
    sets.map(([name]) => name.replaceAll("`", "")).sort(),
    Object.keys(denoJson.permissions).sort(),
    "the Permission sets table lists every set of deno.json",
  );
  for (const [setCell, tasksCell] of sets) {
    const set = setCell.replaceAll("`", "");
    const listed = [...tasksCell.matchAll(/`([\w-]+)`/g)].map((m) => m[1])
      .sort();
    const using = Object.entries(tasks).filter(([, t]) =>
      t.command.includes(`-P=${set} `)
    ).map(([name]) => name).sort();
    assert.deepEqual(listed, using, `the tasks of the permission set ${set}`);
  }
  const operatorEnv = denoJson.permissions.operator.env;
  for (const name of operatorEnv) {
    assert.match(
      section("Environment variables"),
      new RegExp(`\`${name}\``),
      `the environment variables table lacks ${name}`,
    );
  }
});
