/**
 * A loopback HTTP server for a fetch-style handler on Deno, Bun and Node:
 * `Deno.serve` and `Bun.serve` listen before they return; Node's `node:http`
 * knows its port only once `listening` resolves.
 *
 * @module
 */

/** A request handler in the shape of the Fetch API. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Where and how {@linkcode serveLocally} listens. */
export interface LocalServerOptions {
  /** Interface to listen on. */
  hostname: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** The answer when the handler throws. */
  onError: () => Response;
}

/** A running server. */
export interface LocalServer {
  /** `http://host:port`, or `undefined` while Node is still binding. */
  origin(): string | undefined;
  /** Resolves with the origin once the server accepts connections. */
  readonly listening: Promise<string>;
  /** Stops accepting connections and closes open ones. */
  shutdown(): Promise<void>;
}

/** What the Node adapter uses of `node:http`, so no Node typings are needed. */
interface NodeHttp {
  createServer(
    listener: (incoming: NodeIncoming, outgoing: NodeOutgoing) => void,
  ): NodeServer;
}

interface NodeServer {
  listen(port: number, hostname: string, onListening: () => void): void;
  address(): { address: string; port: number } | string | null;
  once(event: "error", listener: (error: Error) => void): void;
  close(onClosed: () => void): void;
  closeAllConnections(): void;
}

interface NodeIncoming extends AsyncIterable<Uint8Array> {
  readonly method?: string;
  readonly url?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

interface NodeOutgoing {
  writeHead(status: number, headers: Record<string, string>): void;
  write(chunk: Uint8Array): void;
  end(): void;
  destroy(error: Error): void;
}

interface BunServer {
  readonly port: number;
  readonly hostname: string;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

interface BunRuntime {
  serve(options: {
    hostname: string;
    port: number;
    fetch: FetchHandler;
    error: () => Response;
  }): BunServer;
}

/**
 * Serves `handler` on `options.hostname`, with the runtime's own server.
 *
 * @param options Address and error answer.
 * @param handler The handler of every request.
 * @returns The running server.
 */
export function serveLocally(
  options: LocalServerOptions,
  handler: FetchHandler,
): LocalServer {
  if (typeof Deno !== "undefined" && typeof Deno.serve === "function") {
    return serveWithDeno(options, handler);
  }
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun) return serveWithBun(bun, options, handler);
  return serveWithNode(options, handler);
}

function serveWithDeno(
  options: LocalServerOptions,
  handler: FetchHandler,
): LocalServer {
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    // The emulator must never write to the console, and Deno.serve announces
    // itself and logs handler errors unless told otherwise.
    onListen: () => {},
    onError: options.onError,
  }, handler);
  const origin = originOf(server.addr.hostname, server.addr.port);
  return {
    origin: () => origin,
    listening: Promise.resolve(origin),
    shutdown: () => server.shutdown(),
  };
}

function serveWithBun(
  bun: BunRuntime,
  options: LocalServerOptions,
  handler: FetchHandler,
): LocalServer {
  const server = bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch: handler,
    error: options.onError,
  });
  const origin = originOf(options.hostname, server.port);
  return {
    origin: () => origin,
    listening: Promise.resolve(origin),
    shutdown: async () => {
      await server.stop(true);
    },
  };
}

function serveWithNode(
  options: LocalServerOptions,
  handler: FetchHandler,
): LocalServer {
  let origin: string | undefined;
  let close: () => Promise<void> = () => Promise.resolve();
  // Imported on first use: only Node takes this path.
  const node = import("node:http") as Promise<unknown> as Promise<NodeHttp>;
  const listening = node.then((http) =>
    new Promise<string>((resolve, reject) => {
      const server = http.createServer((incoming, outgoing) => {
        void answer(origin!, incoming, outgoing, handler, options.onError);
      });
      close = () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        });
      server.once("error", reject);
      server.listen(options.port, options.hostname, () => {
        const address = server.address();
        if (address === null || typeof address === "string") {
          reject(new Error("node:http did not report a TCP address"));
          return;
        }
        origin = originOf(address.address, address.port);
        resolve(origin);
      });
    })
  );
  return {
    origin: () => origin,
    listening,
    shutdown: async () => {
      await listening.catch(() => {});
      await close();
    },
  };
}

/** Turns a node:http exchange into a Fetch one and back. */
async function answer(
  origin: string,
  incoming: NodeIncoming,
  outgoing: NodeOutgoing,
  handler: FetchHandler,
  onError: () => Response,
): Promise<void> {
  let response: Response;
  try {
    const chunks: Uint8Array[] = [];
    for await (const chunk of incoming) chunks.push(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(incoming.headers)) {
      for (const one of [value ?? []].flat()) headers.append(name, one);
    }
    const method = incoming.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD";
    response = await handler(
      new Request(new URL(incoming.url ?? "/", origin), {
        method,
        headers,
        body: hasBody ? concat(chunks) : undefined,
      }),
    );
  } catch {
    response = onError();
  }
  outgoing.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) {
    outgoing.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      outgoing.write(value);
    }
    outgoing.end();
  } catch (error) {
    // A body that fails part-way kills the connection, as a reset would.
    outgoing.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

function originOf(hostname: string, port: number): string {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `http://${host}:${port}`;
}
