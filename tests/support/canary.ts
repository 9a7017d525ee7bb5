/**
 * Secret canaries for leak tests: unique marker strings used as secrets and
 * tokens, a collector that renders everything a caller can observe (errors
 * with their whole cause chain, events, status, public objects) in every way
 * a program might print it, and a scan for the markers in what was rendered.
 *
 * @module
 */
import { inspect as nodeInspect } from "node:util";

/**
 * A unique marker string, such as `CANARY-SECRET-<uuid>`.
 *
 * @param kind What it stands for, upper case (`SECRET`, `TOKEN`, …).
 * @returns The marker.
 */
export function canary(kind: string): string {
  return `CANARY-${kind}-${crypto.randomUUID()}`;
}

/** One place a marker was found. */
export interface Leak {
  /** What was being rendered. */
  readonly source: string;
  /** The marker found. */
  readonly needle: string;
  /** Some text around it. */
  readonly excerpt: string;
}

/** Collects renderings of observable values and scans them for markers. */
export class LeakCollector {
  readonly #renderings: { source: string; text: string }[] = [];

  /** How many renderings were collected. */
  get size(): number {
    return this.#renderings.length;
  }

  /**
   * Renders `value` every way a program might print it and keeps the text:
   * `String`, `JSON.stringify`, `Deno.inspect` and Node's `util.inspect` (deep,
   * hidden properties included), and for errors also `message`, `stack`,
   * every own property, and the same for each `cause` down the chain (and
   * the members of an `AggregateError`).
   *
   * @param source A name for where the value came from, for reports.
   * @param value What to render.
   */
  add(source: string, value: unknown): void {
    this.#render(source, value, new Set());
  }

  /**
   * Keeps a piece of text as it is.
   *
   * @param source A name for where the text came from.
   * @param text The text.
   */
  addText(source: string, text: string): void {
    this.#renderings.push({ source, text });
  }

  /**
   * Scans everything collected for the markers.
   *
   * @param needles The markers (secrets, tokens, encodings of them).
   * @returns Every place one was found.
   */
  leaks(needles: Iterable<string>): Leak[] {
    const found: Leak[] = [];
    const list = [...needles].filter((needle) => needle.length > 0);
    for (const { source, text } of this.#renderings) {
      for (const needle of list) {
        const at = text.indexOf(needle);
        if (at >= 0) {
          found.push({
            source,
            needle,
            excerpt: text.slice(Math.max(0, at - 60), at + needle.length + 20),
          });
        }
      }
    }
    return found;
  }

  #render(source: string, value: unknown, seen: Set<unknown>): void {
    if (typeof value === "object" && value !== null) {
      if (seen.has(value)) return;
      seen.add(value);
    }
    const push = (how: string, text: () => string) => {
      try {
        this.#renderings.push({ source: `${source} (${how})`, text: text() });
      } catch (error) {
        this.#renderings.push({
          source: `${source} (${how} threw)`,
          text: String(error),
        });
      }
    };
    push("String", () => String(value));
    push("JSON", () => JSON.stringify(value) ?? "undefined");
    push(
      "Deno.inspect",
      () => Deno.inspect(value, { depth: Infinity, showHidden: true }),
    );
    push(
      "util.inspect",
      () => nodeInspect(value, { depth: Infinity, showHidden: true }),
    );
    if (!(value instanceof Error)) return;
    push("message", () => value.message);
    push("stack", () => value.stack ?? "");
    for (const key of Reflect.ownKeys(value)) {
      if (key === "cause") continue;
      const property = (value as unknown as Record<PropertyKey, unknown>)[key];
      this.#render(`${source}.${String(key)}`, property, seen);
    }
    if ("cause" in value) this.#render(`${source}.cause`, value.cause, seen);
    if (value instanceof AggregateError) {
      value.errors.forEach((member, i) =>
        this.#render(`${source}.errors[${i}]`, member, seen)
      );
    }
  }
}
