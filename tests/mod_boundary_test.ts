/**
 * The core and its one port: no module that `mod.ts` reaches imports a
 * satellite folder (fleet, sources, Genesys admin, rotation, OpenTelemetry,
 * testing), as a type or as a value. Satellites import the core, never the
 * other way round.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runToEnd } from "./support/child_process.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SATELLITES = [
  "fleet",
  "sources",
  "genesys",
  "rotation",
  "otel",
  "testing",
] as const;

interface Dependency {
  readonly specifier: string;
  readonly code?: { readonly specifier: string };
  readonly type?: { readonly specifier: string };
}

interface Graph {
  readonly modules: readonly {
    readonly specifier: string;
    readonly dependencies?: readonly Dependency[];
  }[];
}

/**
 * Every import, type-only or not, from a module of the graph into a
 * satellite folder under `src/`, as `importer -> imported`.
 */
function satelliteImports(graph: Graph, root: string): string[] {
  const src = new URL("src/", root).href;
  const inSatellite = (specifier: string) =>
    SATELLITES.some((folder) => specifier.startsWith(`${src}${folder}/`));
  const relative = (specifier: string) => specifier.slice(root.length);
  const found: string[] = [];
  for (const module of graph.modules) {
    if (inSatellite(module.specifier)) {
      found.push(`(reached) ${relative(module.specifier)}`);
    }
    for (const dependency of module.dependencies ?? []) {
      for (const target of [dependency.code, dependency.type]) {
        if (target !== undefined && inSatellite(target.specifier)) {
          found.push(
            `${relative(module.specifier)} -> ${relative(target.specifier)}`,
          );
        }
      }
    }
  }
  return [...new Set(found)];
}

Deno.test("the boundary check finds a type-only import of a satellite", () => {
  const root = "file:///p/";
  const graph: Graph = {
    modules: [
      {
        specifier: "file:///p/mod.ts",
        dependencies: [
          {
            specifier: "./src/config.ts",
            code: { specifier: "file:///p/src/config.ts" },
          },
        ],
      },
      {
        specifier: "file:///p/src/config.ts",
        dependencies: [
          {
            specifier: "./fleet/link.ts",
            type: { specifier: "file:///p/src/fleet/link.ts" },
          },
        ],
      },
    ],
  };
  assert.deepEqual(satelliteImports(graph, root), [
    "src/config.ts -> src/fleet/link.ts",
  ]);
  assert.deepEqual(
    satelliteImports({ modules: graph.modules.slice(0, 1) }, root),
    [],
  );
});

Deno.test("no module mod.ts reaches imports a satellite folder, as a type or a value", async () => {
  const { code, stdout, stderr } = await runToEnd(
    Deno.execPath(),
    ["info", "--json", "mod.ts"],
    { cwd: ROOT },
  );
  assert.equal(code, 0, stderr);
  const graph = JSON.parse(stdout) as Graph;
  // The graph is the real one: the core's own modules are in it.
  assert.ok(
    graph.modules.some((m) => m.specifier.endsWith("/src/dual_secret_auth.ts")),
  );
  assert.deepEqual(
    satelliteImports(graph, new URL("../", import.meta.url).href),
    [],
  );
});

Deno.test("mod.ts exports at most 12 error classes, each a DualSecretAuthError", async () => {
  const mod: Record<string, unknown> = await import("../mod.ts");
  const base = mod.DualSecretAuthError as typeof Error;
  const classes = Object.entries(mod)
    .filter(([, value]) =>
      typeof value === "function" &&
      (value === Error || value.prototype instanceof Error)
    )
    .map(([name, value]) => {
      assert.ok(
        value === base || (value as typeof Error).prototype instanceof base,
        `${name} is not a DualSecretAuthError`,
      );
      return name;
    });
  assert.ok(classes.length <= 12, `${classes.length}: ${classes.join(", ")}`);
});

Deno.test("a user of one fleet engine never loads the other's code; ./fleet loads neither", async () => {
  const modulesOf = async (entry: string) => {
    const { code, stdout, stderr } = await runToEnd(
      Deno.execPath(),
      ["info", "--json", entry],
      { cwd: ROOT },
    );
    assert.equal(code, 0, stderr);
    return (JSON.parse(stdout) as Graph).modules.map((m) => m.specifier);
  };
  const redisCode = (s: string) =>
    /\/src\/fleet\/redis_/.test(s) || s.includes("redis/client");
  const kvCode = (s: string) => s.endsWith("/src/fleet/kv_store.ts");
  const kv = await modulesOf("kv.ts");
  assert.ok(kv.some(kvCode));
  assert.deepEqual(kv.filter(redisCode), []);
  const redis = await modulesOf("redis.ts");
  assert.ok(redis.some(redisCode));
  assert.deepEqual(redis.filter(kvCode), []);
  const fleet = await modulesOf("fleet.ts");
  assert.deepEqual(fleet.filter((s) => redisCode(s) || kvCode(s)), []);
});
