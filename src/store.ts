/**
 * Where cached grants and the active label live. In-memory by default; fleet
 * mode puts both in a shared store (Deno KV) behind the same interfaces.
 *
 * @module
 */

/** A cached access token and its timing. */
export interface CachedGrant {
  /** The access token. */
  readonly accessToken: string;
  /** When it expires, in ms since the epoch (measured from when it was requested). */
  readonly expiresAt: number;
  /** From when a refresh ahead of expiry starts, in ms since the epoch. */
  readonly refreshAt: number;
  /** The client id it was issued to (so a replaced credential's grant is not reused). */
  readonly clientId: string;
}

/**
 * Holds cached grants by credential label. Reads are synchronous so the hot
 * path stays a map lookup; a shared store keeps a local mirror and writes
 * through.
 */
export interface TokenStore {
  /**
   * Reads a cached grant.
   *
   * @param label The credential's label.
   * @returns The cached grant, if any.
   */
  get(label: string): CachedGrant | undefined;
  /**
   * Caches a grant.
   *
   * @param label The credential's label.
   * @param grant The grant to cache.
   */
  set(label: string, grant: CachedGrant): void;
  /**
   * Drops a cached grant.
   *
   * @param label The credential whose grant to drop.
   */
  delete(label: string): void;
}

/** Holds which credential is active; a shared store lets a fleet agree on it. */
export interface ActiveStore {
  /**
   * Reads the active label.
   *
   * @returns The active label, if one was set.
   */
  get(): string | undefined;
  /**
   * Sets the active label.
   *
   * @param label The new active label.
   */
  set(label: string): void;
}

/**
 * The default {@linkcode TokenStore}: a `Map` in this process.
 *
 * @returns A new empty store.
 *
 * @example
 * ```ts
 * import { createMemoryTokenStore } from "@rotating/dual-secret-auth";
 * const store = createMemoryTokenStore();
 * store.set("blue", { accessToken: "t", expiresAt: 2, refreshAt: 1, clientId: "c" });
 * if (store.get("blue")?.accessToken !== "t") throw new Error();
 * ```
 */
export function createMemoryTokenStore(): TokenStore {
  return new MemoryTokenStore();
}

// Classes, so the methods live once on the prototype, not as closures per
// instance; the private field keeps the map out of reach as a closure did.
class MemoryTokenStore implements TokenStore {
  readonly #grants = new Map<string, CachedGrant>();
  get(label: string): CachedGrant | undefined {
    return this.#grants.get(label);
  }
  set(label: string, grant: CachedGrant): void {
    this.#grants.set(label, grant);
  }
  delete(label: string): void {
    this.#grants.delete(label);
  }
}

/**
 * The default {@linkcode ActiveStore}: a variable in this process.
 *
 * @param initial The label active at start.
 * @returns A new store.
 *
 * @example
 * ```ts
 * import { createMemoryActiveStore } from "@rotating/dual-secret-auth";
 * const active = createMemoryActiveStore("blue");
 * active.set("green");
 * if (active.get() !== "green") throw new Error();
 * ```
 */
export function createMemoryActiveStore(initial?: string): ActiveStore {
  return new MemoryActiveStore(initial);
}

class MemoryActiveStore implements ActiveStore {
  #active: string | undefined;
  constructor(initial: string | undefined) {
    this.#active = initial;
  }
  get(): string | undefined {
    return this.#active;
  }
  set(label: string): void {
    this.#active = label;
  }
}
