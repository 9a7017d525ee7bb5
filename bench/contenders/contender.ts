/**
 * The one small interface every benchmark contender sits behind, so each
 * scenario drives this module, the seed's port and the npm libraries the
 * same way.
 *
 * @module
 */
import type { Clock } from "../../mod.ts";

/** One OAuth client of the emulator, as a contender is configured with it. */
export interface BenchCredential {
  /** A label such as `blue`. */
  readonly label: string;
  /** The OAuth client id. */
  readonly clientId: string;
  /** Its secret at start. */
  readonly secret: string;
}

/** Where a contender finds the emulator and with which credentials. */
export interface ContenderSetup {
  /** The emulator's origin, `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** The emulator's token endpoint. */
  readonly tokenUrl: string;
  /**
   * Two credentials, active first. Contenders that hold one credential use
   * only the first.
   */
  readonly credentials: readonly [BenchCredential, BenchCredential];
  /**
   * The clock to inject where a contender takes one; `undefined` means real
   * time. Contenders that read `Date` are driven by a patched global `Date`.
   */
  readonly clock?: Clock;
}

/** A contender, configured and ready. */
export interface Contender extends AsyncDisposable {
  /** A token, the way the library hands one out. */
  getAccessToken(): Promise<string>;
  /**
   * `GET url` with the library's own token handling (its authorized fetch,
   * its API client, or get-token-then-fetch where it has neither) and what it
   * does on a 401; the body is read whole.
   *
   * @returns The final HTTP status; rejects when the library throws.
   */
  get(url: string): Promise<number>;
  /**
   * The library's own authorized `fetch`, where it has one (for the input
   * shapes of scenario 6).
   */
  fetch?(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The client id whose tokens it uses now. */
  activeClientId(): string;
  /**
   * Hands over a regenerated secret, as a secret manager reload would (the
   * library's own way to change configuration, or a new instance of it).
   */
  updateSecret(clientId: string, secret: string): void;
  /** Stops whatever it runs. */
  close(): Promise<void>;
}

/** A contender kind: how to load its library and make instances. */
export interface ContenderFactory {
  /** A short name for tables. */
  readonly name: string;
  /** How many credentials it can hold. */
  readonly credentialCount: 1 | 2;
  /**
   * The largest cold herd it is run with, for a library that sends one token
   * request per caller (a full herd would take minutes and say nothing new).
   */
  readonly herdLimit?: number;
  /**
   * Loads the library (an npm package may fail to load under Deno).
   *
   * @throws When it cannot be loaded; the runner reports "did not load".
   */
  load(): Promise<void>;
  /** A fresh instance against the emulator in `setup`. */
  create(setup: ContenderSetup): Contender;
}

/**
 * Reads a response body whole and parses its JSON, as an application (and the
 * Genesys SDK, which always parses) would, and gives the status.
 *
 * @param response The response.
 * @returns Its status.
 */
export async function consume(response: Response): Promise<number> {
  const text = await response.text();
  try {
    if (text !== "") JSON.parse(text);
  } catch {
    // A non-JSON body still counts as read.
  }
  return response.status;
}
