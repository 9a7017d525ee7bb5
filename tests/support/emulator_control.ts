/**
 * A tiny HTTP front for emulator operations, so a scenario running in another
 * runtime (Node, Bun) can regenerate a secret or revoke tokens behind its own
 * back while the emulator lives in the Deno test process.
 *
 * @module
 */
import type { GenesysEmulator } from "../../testing.ts";

/** A running control server; close it or `await using` it. */
export interface EmulatorControl extends AsyncDisposable {
  /** Base URL, such as `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Serves `POST /regenerate-secret?clientId=…` and
 * `POST /revoke-tokens?clientId=…` on loopback; both answer 204. New secrets
 * are not returned: the scenario must not learn them.
 *
 * @param emulator The emulator to drive.
 * @returns The running control server.
 */
export function startEmulatorControl(
  emulator: GenesysEmulator,
): EmulatorControl {
  const actions: Record<string, (clientId: string) => void> = {
    "/regenerate-secret": (id) => void emulator.regenerateSecret(id),
    "/revoke-tokens": (id) => emulator.revokeTokensOf(id),
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, (request) => {
    const url = new URL(request.url);
    const action = actions[url.pathname];
    const clientId = url.searchParams.get("clientId");
    if (request.method !== "POST" || action === undefined || !clientId) {
      return new Response("unknown control request", { status: 404 });
    }
    try {
      action(clientId);
    } catch (error) {
      return new Response(String(error), { status: 400 });
    }
    return new Response(null, { status: 204 });
  });
  const close = () => server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
