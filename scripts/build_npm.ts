/**
 * `deno task npm`: builds the npm package in `dist/npm` (or `--out DIR`):
 * ESM JavaScript and `.d.ts` for every entry of deno.json's `exports`,
 * emitted by TypeScript's own compiler (`npm:typescript`, run with
 * `--no-lock` so it never enters the project's lockfile), a `package.json`
 * with `exports`, `types`, `engines` and the npm packages each entry point
 * imports, and the README. The entry points are read from deno.json, so a new
 * one is built, declared and tested (tests/distribution/npm_package_test.ts)
 * without an edit here.
 *
 * An npm package the sources import (`npm:` specifiers) becomes a dependency,
 * except those in {@linkcode PEER_PACKAGES}, which become optional peer
 * dependencies: the modules that import one load it through a generated
 * module (`esm/_peers/`) that turns "Cannot find package" into an error
 * naming the entry point, the package and the command to install it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

/** The TypeScript compiler that emits the package, pinned. */
export const TYPESCRIPT = "npm:typescript@5.9.3";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * The Deno globals the sources use, typed loosely: Node and Bun never take
 * those paths, and `deno check` is the real type check. (`deno types` cannot
 * serve: its output names Deno's internal libraries, which TypeScript's
 * compiler does not know.) A new `Deno.X` used in a type position needs its
 * name here; any `Deno.x` value is covered by the index signature.
 */
const DENO_SHIM = `interface DenoShim {
  errors: Record<string, ErrorConstructor>;
  [member: string]: any;
}
declare var Deno: DenoShim;
declare namespace Deno {
  type FsFile = any;
  type NetAddr = any;
  type HttpServer<A = any> = any;
  type OpenOptions = any;
  type Command = any;
  type CommandOptions = any;
  type FileInfo = any;
  type Kv = any;
  type KvKey = any;
  type KvEntry<T = any> = any;
  type KvEntryMaybe<T = any> = any;
  type KvCommitResult = any;
  type KvCommitError = any;
  type KvListIterator<T = any> = any;
  type AtomicOperation = any;
  type AtomicCheck = any;
  type ChildProcess = any;
  type CommandOutput = any;
  type CommandStatus = any;
  type SignalListener = any;
  type WatchFsOptions = any;
  type FsEvent = any;
  type FsWatcher = any;
  type PermissionDescriptor = any;
}
declare module "node:http" {
  const http: unknown;
  export = http;
}
`;

interface NpmModule {
  readonly specifier: string;
  readonly npmPackage?: string;
  readonly dependencies?: readonly {
    readonly specifier: string;
    readonly code?: { readonly specifier: string };
  }[];
}

async function run(
  program: string,
  args: readonly string[],
  cwd = ROOT,
): Promise<string> {
  const output = await new Deno.Command(program, {
    args: [...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed (${output.code}):\n${text}\n${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  return text;
}

/** `npm:name@range/sub` → `{ name, range }`. */
function parseNpmSpecifier(value: string) {
  const match = /^npm:(@?[^@/]+(?:\/[^@/]+)?)(?:@([^/]+))?/.exec(value);
  return match ? { name: match[1], range: match[2] ?? "*" } : undefined;
}

/** An npm package the sources import, and where Deno's cache holds it. */
interface NpmImport {
  /** The specifier as the sources write it: `npm:name@range` or an import-map key. */
  readonly specifier: string;
  readonly name: string;
  readonly range: string;
  readonly localPath: string;
}

/** The npm packages each entry point's graph imports, by entry file. */
async function npmImports(
  entries: readonly string[],
): Promise<Map<string, NpmImport[]>> {
  const byEntry = new Map<string, NpmImport[]>();
  for (const entry of entries) {
    const found = new Map<string, NpmImport>();
    const info = JSON.parse(
      // deno.dev.lock: ./otel's npm:@opentelemetry/api specifier is not in
      // deno.lock, which holds only what the tasks run (see
      // tests/distribution/first_run_test.ts).
      await run(Deno.execPath(), [
        "info",
        "--lock=deno.dev.lock",
        "--json",
        entry,
      ]),
    );
    const cache = info.npmPackages as Record<string, { localPath: string }>;
    const modules = info.modules as NpmModule[];
    for (const module of modules) {
      for (const dependency of module.dependencies ?? []) {
        // The specifier as written, and what it resolved to (through the
        // import map for a bare name).
        const written = dependency.specifier;
        const parsed = parseNpmSpecifier(dependency.code?.specifier ?? written);
        if (!parsed) continue;
        const id = modules.find((candidate) =>
          candidate.npmPackage?.startsWith(`${parsed.name}@`)
        )?.npmPackage;
        const localPath = id && cache[id]?.localPath;
        if (!localPath) {
          throw new Error(`${written} is not in Deno's npm cache`);
        }
        found.set(written, { specifier: written, ...parsed, localPath });
      }
    }
    byEntry.set(entry, [...found.values()]);
  }
  return byEntry;
}

/**
 * The npm packages that are optional peer dependencies of the npm package
 * rather than dependencies. `@opentelemetry/api` keeps the registered tracer
 * and meter providers in one global per process, so OpenTelemetry asks
 * instrumentation libraries to take it as a peer: the application's copy is
 * the one that must be used. Every other npm import is a plain dependency
 * (`@redis/client`: the engine of `./redis`, an implementation detail; a
 * client the application passes in is typed structurally, so a second copy
 * conflicts with nothing).
 */
export const PEER_PACKAGES: ReadonlySet<string> = new Set([
  "@opentelemetry/api",
]);

/** The stable `code` of the error a missing optional peer raises. */
export const PEER_DEPENDENCY_MISSING = "PEER_DEPENDENCY_MISSING";

/** `@opentelemetry/api` → `opentelemetry__api`, a file name. */
function slug(name: string): string {
  return name.replace(/^@/, "").replace(/[^A-Za-z0-9]+/g, "_");
}

const NAMED_IMPORT = (name: string) =>
  new RegExp(
    String.raw`(import\s*\{)([^}]*)(\}\s*from\s*)(["'])${
      name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
    }\4`,
    "g",
  );

/** The names a named-import clause takes (`a`, `b as c` → `a`, `b`). */
function importedNames(clause: string): string[] {
  return clause
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/[^\n]*/g, "")
    .split(",")
    .map((part) => part.trim().split(/\s+as\s+/)[0].trim())
    .filter((part) => part !== "" && !part.startsWith("type "));
}

/**
 * The module that loads an optional peer: a dynamic import, so that a missing
 * package surfaces as this error rather than Node's or Bun's resolution error
 * at link time.
 */
function peerModule(
  pkg: { name: string; range: string },
  subpaths: readonly string[],
  names: readonly string[],
): string {
  const needs = subpaths.join(", ");
  const message =
    `${needs} needs ${pkg.name}, an optional peer dependency that is not ` +
    `installed: npm install ${pkg.name}@"${pkg.range}" (or bun add).`;
  return `// Generated by scripts/build_npm.ts: ${pkg.name} is an optional peer
// dependency, loaded here so that its absence names the package to install.
let peer;
try {
  peer = await import(${JSON.stringify(pkg.name)});
} catch (error) {
  const text = String(error?.message ?? error);
  const missing = (error?.code === "ERR_MODULE_NOT_FOUND" ||
    /Cannot find (package|module)/.test(text)) &&
    text.includes(${JSON.stringify(pkg.name)});
  if (!missing) throw error;
  throw Object.assign(
    new Error(${JSON.stringify(message)}, { cause: error }),
    {
      name: "PeerDependencyMissingError",
      code: ${JSON.stringify(PEER_DEPENDENCY_MISSING)},
      packageName: ${JSON.stringify(pkg.name)},
    },
  );
}
export const { ${names.join(", ")} } = peer;
`;
}

/** Every file under `dir`, relative paths. */
async function* walk(dir: string, prefix = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) yield* walk(dir, path);
    else yield path;
  }
}

/** Turns an export key such as `./testing` into the emitted file's stem. */
function stemOf(file: string): string {
  return `./esm/${file.replace(/^\.\//, "").replace(/\.ts$/, "")}`;
}

/** What a Node or Bun user reads first: install, import, what needs Deno. */
function npmIntroduction(
  manifest: Record<string, unknown>,
  peersBySubpath: ReadonlyMap<string, readonly string[]>,
): string {
  const name = String(manifest.name);
  const entries = Object.keys(manifest.exports as object)
    .map((key) => {
      const peers = peersBySubpath.get(key) ?? [];
      return `\`${subpathName(key)}\`${
        peers.length === 0
          ? ""
          : ` (with the optional peer ${
            peers.map((peer) => `\`${peer}\``).join(", ")
          }: \`npm install ${peers.join(" ")}\`)`
      }`;
    })
    .join(", ");
  return `> **npm package** (Node.js ≥ 20, Bun): \`npm install ${name}\`.
> Entry points: ${entries}; ESM with TypeScript declarations.
> On Node, \`await emulator.ready\` before reading the emulator's URLs. The
> file-based rotation pieces (\`createEnvFileSink\`, \`setEnvFileValue\`,
> \`createFileJournal\`), \`./sources\`' file watchers, \`openKvRetrying\`
> and the \`deno task\` commands need Deno; on Node and Bun, use
> \`createCallbackSink\` with \`runStagedRotation\`, and \`openKv\` of
> \`@deno/kv\` for \`./kv\`.
`;
}

/** `./otel` → `@rotating/dual-secret-auth/otel`. */
function subpathName(key: string): string {
  return key === "." ? denoJson.name : `${denoJson.name}/${key.slice(2)}`;
}

/**
 * Routes the emitted JavaScript's imports of each optional peer through a
 * generated loader (see {@linkcode peerModule}). Only named imports are
 * rewritten; any other import of a peer fails the build, since it would link
 * the package directly and fail without naming it.
 */
async function guardPeers(
  out: string,
  exportsMap: Record<string, string>,
  importsByEntry: ReadonlyMap<string, readonly NpmImport[]>,
): Promise<void> {
  const esm = `${out}/esm`;
  const peers = new Map<string, { pkg: NpmImport; subpaths: string[] }>();
  for (const [key, file] of Object.entries(exportsMap)) {
    for (const pkg of importsByEntry.get(file) ?? []) {
      if (!PEER_PACKAGES.has(pkg.name)) continue;
      const peer = peers.get(pkg.name) ?? { pkg, subpaths: [] };
      peer.subpaths.push(subpathName(key));
      peers.set(pkg.name, peer);
    }
  }
  for (const { pkg, subpaths } of peers.values()) {
    const loader = `_peers/${slug(pkg.name)}.js`;
    const names = new Set<string>();
    for await (const path of walk(esm)) {
      if (!path.endsWith(".js") || path.startsWith("_peers/")) continue;
      const file = `${esm}/${path}`;
      const text = await Deno.readTextFile(file);
      const depth = path.split("/").length - 1;
      const relative = `${depth === 0 ? "./" : "../".repeat(depth)}${loader}`;
      const rewritten = text.replace(
        NAMED_IMPORT(pkg.name),
        (_match, open, clause, from, quote) => {
          for (const name of importedNames(clause)) names.add(name);
          return `${open}${clause}${from}${quote}${relative}${quote}`;
        },
      );
      if (
        rewritten.includes(`"${pkg.name}"`) ||
        rewritten.includes(`'${pkg.name}'`)
      ) {
        throw new Error(
          `${path} imports the optional peer ${pkg.name} other than by a ` +
            `named import (import { x } from "${pkg.name}"), which the npm ` +
            `build cannot route through its loader`,
        );
      }
      if (rewritten !== text) await Deno.writeTextFile(file, rewritten);
    }
    if (names.size === 0) continue; // Imported for types only.
    await Deno.mkdir(`${esm}/_peers`, { recursive: true });
    await Deno.writeTextFile(
      `${esm}/${loader}`,
      peerModule(pkg, subpaths, [...names].sort()),
    );
  }
}

/**
 * Builds the package.
 *
 * @param out The output directory; emptied first.
 * @returns The package.json written.
 */
export async function buildNpmPackage(
  out: string,
): Promise<Record<string, unknown>> {
  const exportsMap = denoJson.exports as Record<string, string>;
  const entries = Object.values(exportsMap);
  await Deno.remove(out, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(out, { recursive: true });
  // The compiler's input lives in the output directory, so the build writes
  // nowhere else (deno task npm may write only dist/npm).
  const work = `${out}/.build`;
  await Deno.mkdir(work);
  const importsByEntry = await npmImports(entries);
  const packages = [
    ...new Map(
      [...importsByEntry.values()].flat().map((pkg) => [pkg.specifier, pkg]),
    ).values(),
  ];
  try {
    await Deno.writeTextFile(`${work}/deno_shim.d.ts`, DENO_SHIM);
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "Bundler",
        lib: ["ESNext", "DOM", "DOM.Iterable"],
        types: [],
        strict: true,
        // Deno's own check is the type check; this compile only emits, and the
        // shim above types Deno's globals loosely.
        noImplicitAny: false,
        declaration: true,
        allowImportingTsExtensions: true,
        rewriteRelativeImportExtensions: true,
        resolveJsonModule: true,
        skipLibCheck: true,
        // `deno check` is the type check (deno task test); this compile emits.
        // Where the loose Deno shim above trips the compiler, the diagnostics
        // are shown and the output is kept; what users see is checked by
        // tests/distribution/npm_package_test.ts, which type-checks a
        // consumer of the emitted .d.ts with tsc --noEmit.
        noEmitOnError: false,
        rootDir: ROOT,
        outDir: `${out}/esm`,
        paths: Object.fromEntries(
          packages.map((pkg) => [pkg.specifier, [pkg.localPath]]),
        ),
      },
      files: [
        `${work}/deno_shim.d.ts`,
        ...entries.map((entry) => `${ROOT}${entry.replace(/^\.\//, "")}`),
      ],
    };
    await Deno.writeTextFile(
      `${work}/tsconfig.json`,
      JSON.stringify(tsconfig, null, 2),
    );
    const tsc = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        "-A",
        `${TYPESCRIPT}/bin/tsc`,
        "-p",
        `${work}/tsconfig.json`,
      ],
      cwd: work,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const diagnostics = new TextDecoder().decode(tsc.stdout).trim();
    // Exit code 2: diagnostics, output emitted. Anything else is a failure.
    if (tsc.code !== 0 && tsc.code !== 2) {
      throw new Error(
        `tsc failed (${tsc.code}):\n${diagnostics}\n${
          new TextDecoder().decode(tsc.stderr)
        }`,
      );
    }
    if (diagnostics) {
      console.error(
        `tsc, against the loose Deno shim (deno check is the type check):\n${diagnostics}`,
      );
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }

  for (const file of entries) {
    for (const extension of [".js", ".d.ts"]) {
      const emitted = `${out}/${stemOf(file)}${extension}`;
      await Deno.stat(emitted).catch(() => {
        throw new Error(`tsc emitted no ${emitted}`);
      });
    }
  }

  // Declarations keep `.ts` in relative imports; Node's resolution wants the
  // `.js` the JavaScript files really have. `npm:` specifiers become the
  // package names Node and Bun resolve from node_modules.
  for await (const path of walk(`${out}/esm`)) {
    if (!path.endsWith(".js") && !path.endsWith(".d.ts")) continue;
    const file = `${out}/esm/${path}`;
    let text = await Deno.readTextFile(file);
    text = text.replace(
      /(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g,
      "$1$2$3.js$2",
    );
    for (const pkg of packages) {
      text = text.replaceAll(`"${pkg.specifier}"`, `"${pkg.name}"`);
    }
    await Deno.writeTextFile(file, text);
  }
  await guardPeers(out, exportsMap, importsByEntry);

  const byName = (list: readonly NpmImport[]) =>
    Object.fromEntries(list.map((pkg) => [pkg.name, pkg.range]));
  const peers = packages.filter((pkg) => PEER_PACKAGES.has(pkg.name));
  const peersBySubpath = new Map(
    Object.entries(exportsMap).map(([key, file]) => [
      key,
      [
        ...new Set(
          (importsByEntry.get(file) ?? [])
            .filter((pkg) => PEER_PACKAGES.has(pkg.name))
            .map((pkg) => pkg.name),
        ),
      ],
    ]),
  );
  const dependencies = packages.filter((pkg) => !PEER_PACKAGES.has(pkg.name));
  const manifest: Record<string, unknown> = {
    name: denoJson.name,
    version: denoJson.version,
    description:
      "Zero-downtime rotation of OAuth client secrets (Genesys Cloud first): two credentials, cached tokens, failover on rejection, a Genesys emulator for tests",
    license: denoJson.license,
    type: "module",
    engines: { node: ">=20" },
    sideEffects: false,
    main: `${stemOf(exportsMap["."])}.js`,
    types: `${stemOf(exportsMap["."])}.d.ts`,
    exports: Object.fromEntries(
      Object.entries(exportsMap).map(([key, file]) => [key, {
        types: `${stemOf(file)}.d.ts`,
        default: `${stemOf(file)}.js`,
      }]),
    ),
    files: ["esm/", "README.md", "docs/"],
    keywords: ["oauth", "client-credentials", "secret-rotation", "genesys"],
    ...(dependencies.length === 0 ? {} : {
      dependencies: byName(dependencies),
    }),
    ...(peers.length === 0 ? {} : {
      peerDependencies: byName(peers),
      peerDependenciesMeta: Object.fromEntries(
        peers.map((pkg) => [pkg.name, { optional: true }]),
      ),
    }),
  };
  await Deno.writeTextFile(
    `${out}/package.json`,
    JSON.stringify(manifest, null, 2) + "\n",
  );
  await Deno.writeTextFile(
    `${out}/README.md`,
    npmIntroduction(manifest, peersBySubpath) + "\n" +
      await Deno.readTextFile(`${ROOT}README.md`),
  );
  // The README links into docs/ (and docs/providers/): ship the guides so
  // those links resolve.
  const copyGuides = async (dir: string): Promise<void> => {
    await Deno.mkdir(`${out}/${dir}`, { recursive: true });
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      if (entry.isDirectory) await copyGuides(`${dir}/${entry.name}`);
      else if (entry.isFile && entry.name.endsWith(".md")) {
        await Deno.copyFile(
          `${ROOT}${dir}/${entry.name}`,
          `${out}/${dir}/${entry.name}`,
        );
      }
    }
  };
  await copyGuides("docs");
  return manifest;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string", default: `${ROOT}dist/npm` } },
  });
  const manifest = await buildNpmPackage(values.out);
  console.log(
    `Built ${manifest.name}@${manifest.version} in ${values.out}: ${
      Object.keys(manifest.exports as object).join(", ")
    }`,
  );
}
