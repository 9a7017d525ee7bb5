/**
 * Heap readings for the memory figures: V8's used heap, after a full garbage
 * collection when the runner has `--v8-flags=--expose-gc` (as `deno task
 * bench` does).
 *
 * @module
 */

/** Whether a full collection can be forced (`--v8-flags=--expose-gc`). */
export const canCollect: boolean =
  typeof (globalThis as { gc?: unknown }).gc === "function";

/**
 * The used heap in bytes.
 *
 * @param collect Collect garbage first (twice, so weak callbacks run).
 * @returns `Deno.memoryUsage().heapUsed`.
 */
export function heapUsed(collect = true): number {
  if (collect && canCollect) {
    const gc = (globalThis as unknown as { gc: () => void }).gc;
    gc();
    gc();
  }
  return Deno.memoryUsage().heapUsed;
}
