/**
 * A secret that cannot be printed by accident.
 *
 * @module
 */

const REDACTED = "[redacted]";

/**
 * Holds a secret string. `toString()`, `toJSON()`, template literals,
 * `Deno.inspect` and Node's `util.inspect` all show `[redacted]`; only
 * {@linkcode Secret.reveal} gives the value, at the one place that sends it.
 *
 * @example Redacted everywhere but reveal()
 * ```ts
 * import { Secret } from "@rotating/dual-secret-auth";
 * const secret = new Secret("s3cr3t");
 * if (`${secret}` !== "[redacted]") throw new Error("leak");
 * if (JSON.stringify({ secret }) !== '{"secret":"[redacted]"}') throw new Error("leak");
 * if (secret.reveal() !== "s3cr3t") throw new Error("lost");
 * ```
 */
export class Secret {
  readonly #value: string;

  /**
   * Wraps a value.
   *
   * @param value The secret value.
   */
  constructor(value: string) {
    this.#value = value;
  }

  /**
   * The secret value. Call only where it is sent.
   *
   * @returns The value.
   */
  reveal(): string {
    return this.#value;
  }

  /**
   * Compares with another secret in time independent of where they differ.
   *
   * @param other The secret to compare with.
   * @returns Whether both hold the same value.
   */
  equals(other: Secret): boolean {
    const a = this.#value;
    const b = other.reveal();
    let diff = a.length ^ b.length;
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
    }
    return diff === 0;
  }

  /**
   * Redacts.
   *
   * @returns `[redacted]`.
   */
  toString(): string {
    return REDACTED;
  }

  /**
   * Redacts.
   *
   * @returns `[redacted]`.
   */
  toJSON(): string {
    return REDACTED;
  }

  /**
   * Redacts.
   *
   * @returns `[redacted]`.
   */
  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  /**
   * Redacts.
   *
   * @returns `[redacted]`.
   */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}
