import { envOf, PROVIDERS, writeEnv } from "./rotate_provider_scenario.ts";
import { createWorkspace } from "./workspace.ts";

async function listing(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    if (["src", "tasks", "deno.json", "deno.lock", "mod.ts", "testing.ts", "sources.ts", "kv.ts", "redis.ts"].includes(e.name)) continue;
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) {
      for (const [k, v] of await listing(p)) out.set(`${e.name}/${k}`, v);
    } else out.set(e.name, (await Deno.stat(p)).mtime?.toISOString() + " " + (await Deno.readTextFile(p)).length);
  }
  return out;
}

for (const name of ["okta", "entra"]) {
  Deno.test(`explore ${name}`, async () => {
    await using world = await PROVIDERS[name]();
    await using ws = await createWorkspace();
    const file = `.env.${name}`;
    const { AUTH_CLIENT_ID_GREEN: _i, AUTH_CLIENT_SECRET_GREEN: _s, ...initial } = world.env;
    await writeEnv(ws, file, initial);
    const outputs: string[] = [];
    const run = async (task: "setup" | "incident" | "verify" | "rotate", args: string[]) => {
      const before = await listing(ws.dir);
      const r = await ws.task(task, args);
      const after = await listing(ws.dir);
      const changed = [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
      console.log(`== ${task} ${args.join(" ")} => ${r.code}; files changed: ${changed.join(", ")}`);
      console.log(r.stdout.slice(0, 3000));
      console.log(r.stderr.slice(0, 2000));
      outputs.push(r.stdout + r.stderr);
      return r;
    };
    await run("setup", ["--from", "blue", "--env-file", file, "--yes", "--dry-run", "--verbose"]);
    await run("setup", ["--from", "blue", "--env-file", file, "--yes", "--verbose"]);
    await run("incident", ["--compromised", "green", "--env-file", file, "--yes", "--dry-run", "--verbose", "--reload-wait", "0"]);
    await run("incident", ["--compromised", "blue", "--env-file", file, "--yes", "--dry-run", "--json", "--reload-wait", "0"]);
    await run("verify", ["--env-file", file, "--json"]);
    const env = await envOf(ws, file);
    console.log(env);
    const secrets = Object.entries(env).filter(([k]) => k.includes("SECRET") && !k.includes("SECRET_ID")).map(([, v]) => v);
    for (const o of outputs) for (const s of secrets) if (o.includes(s)) console.log("LEAK", s);
  });
}
