/**
 * `deno task npm`: builds the npm package in `dist/npm` (or `--out DIR`):
 * ESM JavaScript and `.d.ts` for every entry of deno.json's `exports`,
 * emitted by TypeScript's own compiler (`npm:typescript`, run with
 * `--no-lock` so it never enters the project's lockfile), a `package.json`
 * with `exports`, `types` and `engines`, and the README.
 *
 * npm packages the sources import (`npm:` specifiers) become
 * optional peer dependencies: each is needed only by the entry point that
 * imports it (`@opentelemetry/api` by `./otel`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

/** The TypeScript compiler that emits the package, pinned. */
export const TYPESCRIPT = "npm:typescript@5.9.3";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The Deno globals the sources use, typed loosely: Node and Bun never take those paths. */
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
  type KvEntryMaybe<T> = any;
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

/** The npm packages the entry points' graph imports. */
async function npmImports(entries: readonly string[]): Promise<NpmImport[]> {
  const found = new Map<string, NpmImport>();
  for (const entry of entries) {
    const info = JSON.parse(
      // deno.dev.lock: ./otel's @opentelemetry/api is not in deno.lock, which
      // holds only what the tasks run (see tests/distribution/first_run_test.ts).
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
  }
  return [...found.values()];
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
  const packages = await npmImports(entries);
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
        noEmitOnError: true,
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
    await run(Deno.execPath(), [
      "run",
      "--no-config",
      "--no-lock",
      "-A",
      `${TYPESCRIPT}/bin/tsc`,
      "-p",
      `${work}/tsconfig.json`,
    ], work);
  } finally {
    await Deno.remove(work, { recursive: true });
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
    files: ["esm/", "README.md"],
    keywords: ["oauth", "client-credentials", "secret-rotation", "genesys"],
    ...(packages.length === 0 ? {} : {
      peerDependencies: Object.fromEntries(
        packages.map((pkg) => [pkg.name, pkg.range]),
      ),
      peerDependenciesMeta: Object.fromEntries(
        packages.map((pkg) => [pkg.name, { optional: true }]),
      ),
    }),
  };
  await Deno.writeTextFile(
    `${out}/package.json`,
    JSON.stringify(manifest, null, 2) + "\n",
  );
  await Deno.copyFile(`${ROOT}README.md`, `${out}/README.md`);
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
