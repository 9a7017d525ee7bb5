/**
 * Watching directories with `Deno.watchFs` for the file-based sources. A
 * directory, not a file, is watched: an atomic replace (rename over the
 * file, or Kubernetes' `..data` swap) gives the path a new inode, which a
 * watch on the old file would no longer see.
 *
 * @module
 */
import type { SourceWatch } from "./source.ts";

/** Change notices within this long are passed on as one. */
const DEBOUNCE_MS = 20;

/**
 * Watches directories; calls `onChange` (debounced) on any event in them.
 * Where watching is not possible (permissions, platform), it quietly does
 * nothing: the follower's periodic re-read still brings every change.
 *
 * @param paths The directories.
 * @param onChange Called after events.
 * @returns The handle to stop watching.
 */
export function watchDirectories(
  paths: readonly string[],
  onChange: () => void,
): SourceWatch {
  let watcher: Deno.FsWatcher | undefined;
  try {
    watcher = Deno.watchFs([...paths], { recursive: false });
  } catch {
    return { close: () => Promise.resolve() };
  }
  let closed = false;
  let debounce: ReturnType<typeof setTimeout> | undefined;
  const watching = (async () => {
    try {
      for await (const _event of watcher!) {
        if (closed) break;
        clearTimeout(debounce);
        debounce = setTimeout(() => {
          if (!closed) onChange();
        }, DEBOUNCE_MS);
      }
    } catch {
      // The watcher failed; the periodic re-read goes on.
    }
  })();
  return {
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(debounce);
      try {
        watcher!.close();
      } catch {
        // Already closed.
      }
      await watching;
    },
  };
}
