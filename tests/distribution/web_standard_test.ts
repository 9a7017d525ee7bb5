/**
 * The package's main entry must run on Node, Bun, browsers and edge runtimes,
 * so no module in its graph may touch the `Deno` namespace. The check parses
 * each local module (via a lint plugin) instead of grepping, so `Deno.` in
 * comments or strings (such as `Symbol.for("Deno.customInspect")`, which is
 * a cross-runtime convention) does not count, and real uses cannot hide.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runToEnd } from "../support/child_process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Reports every runtime or type reference to the `Deno` namespace. */
const denoNamespacePlugin: Deno.lint.Plugin = {
  name: "distribution",
  rules: {
    "no-deno-namespace": {
      create(context) {
        const report = (node: Deno.lint.Node) =>
          context.report({ node, message: "uses the Deno namespace" });
        const isGlobalObject = (node: Deno.lint.Node) =>
          node.type === "Identifier" &&
          ["globalThis", "self", "window"].includes(node.name);
        return {
          MemberExpression(node) {
            if (
              node.object.type === "Identifier" && node.object.name === "Deno"
            ) {
              report(node);
            } else if (
              isGlobalObject(node.object) &&
              ((node.property.type === "Identifier" && !node.computed &&
                node.property.name === "Deno") ||
                (node.property.type === "Literal" &&
                  node.property.value === "Deno"))
            ) {
              report(node);
            }
          },
          TSQualifiedName(node) {
            if (node.left.type === "Identifier" && node.left.name === "Deno") {
              report(node);
            }
          },
        };
      },
    },
  },
};

function denoUses(fileName: string, source: string): string[] {
  return Deno.lint.runPlugin(denoNamespacePlugin, fileName, source).map(
    (diagnostic) => {
      const [start, end] = diagnostic.range;
      const line = source.slice(0, start).split("\n").length;
      return `${fileName}:${line}: ${source.slice(start, end)}`;
    },
  );
}

async function localModulesOf(entry: string): Promise<string[]> {
  const { code, stdout, stderr } = await runToEnd(
    Deno.execPath(),
    ["info", "--json", entry],
    { cwd: ROOT },
  );
  assert.equal(code, 0, stderr);
  const graph = JSON.parse(stdout) as {
    modules: { specifier: string }[];
  };
  const specifiers = graph.modules.map((m) => m.specifier);
  // No runtime dependencies: nothing remote, nothing from npm or JSR.
  assert.deepEqual(specifiers.filter((s) => !s.startsWith("file:")), []);
  return specifiers;
}

Deno.test("the checker finds Deno namespace uses and ignores comments and strings", () => {
  const source = [
    "// Deno.exit() in a comment",
    'const inspect = Symbol.for("Deno.customInspect");',
    "const pattern = /['`]Deno.x/y;",
    "const home = Deno.env.get('HOME');",
    "const server: Deno.HttpServer | undefined = undefined;",
    "const runtime = globalThis.Deno;",
    "const other = { Deno: 1 }.Deno;",
  ].join("\n");
  assert.deepEqual(denoUses("sample.ts", source), [
    "sample.ts:4: Deno.env",
    "sample.ts:5: Deno.HttpServer",
    "sample.ts:6: globalThis.Deno",
  ]);
});

Deno.test("mod.ts and every module it imports use web-standard APIs only", async () => {
  const modules = await localModulesOf("mod.ts");
  assert.ok(
    modules.some((m) => m.endsWith("/src/dual_secret_auth.ts")),
    "the graph walk found the implementation modules",
  );
  assert.ok(
    !modules.some((m) => m.includes("/src/testing/")),
    "the test helpers (which use Deno.serve) stay out of mod.ts's graph",
  );
  const uses: string[] = [];
  for (const specifier of modules) {
    const path = fileURLToPath(specifier);
    uses.push(
      ...denoUses(path.slice(ROOT.length), await Deno.readTextFile(path)),
    );
  }
  assert.deepEqual(uses, []);
});
