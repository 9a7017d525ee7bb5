/**
 * Run under a task's permission set: tries what that task must not be able to
 * do and prints, as JSON, how each attempt ended.
 *
 * @module
 */
const attempts: Record<string, () => unknown> = {
  "env HOME": () => Deno.env.get("HOME"),
  "read /etc/hostname": () => Deno.readTextFileSync("/etc/hostname"),
  "write /tmp/probe": () => Deno.writeTextFileSync("/tmp/probe", "x"),
  "net example.com": () => fetch("https://example.com/"),
  "run true": () => new Deno.Command("true").outputSync(),
};

const outcome: Record<string, { error: string; message: string } | "allowed"> =
  {};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    const result = attempt();
    if (result instanceof Promise) await result;
    outcome[name] = "allowed";
  } catch (error) {
    const { name: errorName, message } = error as Error;
    outcome[name] = { error: errorName, message };
  }
}
console.log(JSON.stringify(outcome));
