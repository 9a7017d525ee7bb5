/**
 * Reading the docs the way the docs tests need them: the files, their fenced
 * blocks, their inline code, their links and their headings' anchors.
 *
 * @module
 */
import { ROOT } from "./_commands.ts";

/** A markdown file of the docs, by its path from the project root. */
export interface DocFile {
  /** Such as `docs/runbook.md`. */
  readonly path: string;
  readonly text: string;
}

/** README.md and every .md under docs/, such as docs/providers/okta.md. */
export async function readDocs(): Promise<DocFile[]> {
  const paths = ["README.md"];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      if (entry.isDirectory) await walk(`${dir}/${entry.name}`);
      else if (entry.isFile && entry.name.endsWith(".md")) {
        paths.push(`${dir}/${entry.name}`);
      }
    }
  };
  await walk("docs");
  paths.sort();
  return await Promise.all(
    paths.map(async (path) => ({
      path,
      text: await Deno.readTextFile(`${ROOT}${path}`),
    })),
  );
}

/** A fenced code block. */
export interface Fence {
  /** The info string, such as `ts ignore`. */
  readonly info: string;
  readonly body: string;
  /** The 1-based line of the opening fence. */
  readonly line: number;
}

/**
 * The fenced blocks of a file (backtick fences, indented or not).
 *
 * @param text The file.
 * @returns The blocks, in order.
 */
export function fences(text: string): Fence[] {
  const lines = text.split("\n");
  const found: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^(\s*)(`{3,})(.*)$/);
    if (!open) continue;
    const [, indent, ticks, info] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      if (lines[j].trim() === ticks) break;
      body.push(
        lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j],
      );
    }
    found.push({ info: info.trim(), body: body.join("\n"), line: i + 1 });
    i = j;
  }
  return found;
}

/**
 * The file without its fenced blocks (blank lines in their place), for what
 * is prose: inline code and links.
 *
 * @param text The file.
 * @returns The prose.
 */
export function prose(text: string): string {
  const lines = text.split("\n");
  let inside: string | undefined;
  return lines.map((line) => {
    const fence = line.match(/^\s*(`{3,})/);
    if (inside === undefined && fence) {
      inside = fence[1];
      return "";
    }
    if (inside !== undefined) {
      if (line.trim() === inside) inside = undefined;
      return "";
    }
    return line;
  }).join("\n");
}

/**
 * GitHub's anchor of a heading: lower case, punctuation dropped, spaces to
 * hyphens.
 *
 * @param heading The heading's text, without the `#`s.
 * @returns The anchor, without `#`.
 */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "")
    .replaceAll(" ", "-");
}

/**
 * The anchors of a file's headings (duplicates numbered as GitHub does).
 *
 * @param text The file.
 * @returns The anchors.
 */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(text).split("\n")) {
    const heading = line.match(/^#{1,6}\s+(.*)$/);
    if (!heading) continue;
    const base = slug(heading[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** A Node.js block of the docs, which the npm package test type-checks. */
export interface NodeBlock {
  /** Such as `docs/platforms.md`. */
  readonly path: string;
  /** The 1-based line of the opening fence. */
  readonly line: number;
  readonly body: string;
}

/**
 * The Node.js (`js`) blocks of the docs. Deno cannot resolve their imports
 * (`@deno/kv` is not a package of this project), so they are marked `ignore`
 * for `deno check`; tests/distribution/npm_package_test.ts type-checks them
 * instead, as JavaScript (`tsc` with `checkJs`) in a project where the packed
 * package and `@deno/kv` are installed, as a Node user has them.
 *
 * @param docs The docs.
 * @returns The blocks, in file order.
 */
export function nodeBlocks(docs: readonly DocFile[]): NodeBlock[] {
  return docs.flatMap((doc) =>
    fences(doc.text)
      .filter((fence) => /^(js|javascript)\b/.test(fence.info))
      .map((fence) => ({ path: doc.path, line: fence.line, body: fence.body }))
  );
}
