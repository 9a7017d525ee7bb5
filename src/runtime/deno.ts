/**
 * The one check for code that needs Deno's own APIs (files with fsync and
 * locks, `Deno.watchFs`): on Node and Bun it throws an error that names the
 * function and what to use instead, rather than `Deno is not defined` from
 * somewhere inside.
 *
 * @module
 */

/** The stable code of {@linkcode DenoRequiredError}. */
export const DENO_REQUIRED = "DENO_REQUIRED";

/** A function that needs Deno was called on another runtime. */
export class DenoRequiredError extends Error {
  /** Always {@linkcode DENO_REQUIRED}. */
  readonly code: typeof DENO_REQUIRED = DENO_REQUIRED;
  /** The function called. */
  readonly feature: string;

  /**
   * @param feature The function called, such as `createEnvFileSink`.
   * @param instead What to use on this runtime, if anything.
   */
  constructor(feature: string, instead?: string) {
    super(
      `${feature} needs Deno (it uses Deno's file APIs) and this is ${runtimeName()}.` +
        (instead ? ` ${instead}` : ""),
    );
    this.name = "DenoRequiredError";
    this.feature = feature;
  }
}

/** `Deno`, `Bun` or `Node`, for messages. */
export function runtimeName(): string {
  const global = globalThis as { Deno?: unknown; Bun?: unknown };
  if (global.Deno !== undefined) return "Deno";
  if (global.Bun !== undefined) return "Bun";
  return "Node";
}

/**
 * Throws unless running on Deno.
 *
 * @param feature The public function that needs Deno.
 * @param instead What to use on Node and Bun, said to the caller.
 * @throws {DenoRequiredError} On Node and Bun.
 */
export function assertDeno(feature: string, instead?: string): void {
  const deno = (globalThis as { Deno?: { version?: unknown } }).Deno;
  if (deno === undefined || typeof deno.version !== "object") {
    throw new DenoRequiredError(feature, instead);
  }
}
