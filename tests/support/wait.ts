/**
 * Waiting in tests, one way: poll a read until it passes a check, or fail
 * naming what was awaited and the last value (or error) seen; and hold a
 * client's new secret back on the emulator, as a slow propagation.
 *
 * @module
 */
import type { GenesysEmulator } from "../../testing.ts";

/** How {@linkcode until} polls. */
export interface PollOptions {
  /** Give up after this long, in ms. @default 20_000 */
  readonly timeoutMs?: number;
  /** The pause between reads, in ms. @default 100 */
  readonly intervalMs?: number;
}

/**
 * Reads until `done` holds for the value read. A read that throws counts as
 * not yet (a store may be failing over); the last error is in the message
 * if time runs out.
 *
 * @param what What is awaited, for the message.
 * @param read Reads the current value.
 * @param done Whether the value is the one awaited.
 * @param options The timeout and the pause between reads.
 * @returns The value that passed.
 * @throws {Error} `timed out waiting for <what>` with the last value or error.
 */
export async function until<T>(
  what: string,
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  options: PollOptions = {},
): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      const value = await read();
      if (done(value)) return value;
      last = JSON.stringify(value);
    } catch (error) {
      last = `error ${error instanceof Error ? error.message : String(error)}`;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Polls a condition until it holds: {@linkcode until} for a boolean.
 *
 * @param what What is awaited, for the message.
 * @param condition Whether it has happened.
 * @param options The timeout and the pause between checks.
 */
export async function untilTrue(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: PollOptions = {},
): Promise<void> {
  await until(what, condition, (holds) => holds, options);
}

/**
 * Makes a client refuse tokens from the moment its secret is regenerated
 * until `release()`, as a secret that has not propagated yet. The
 * regenerate response is held back (150 ms), so the client is inactive
 * before the first proof attempt.
 *
 * @param emulator The emulator.
 * @param clientId The client whose new secret propagates slowly.
 * @returns `release()`, which lets the secret through.
 */
export function slowPropagation(
  emulator: GenesysEmulator,
  clientId = "green-id",
): { release(): Promise<void> } {
  let stop = false;
  const watching = (async () => {
    const before = emulator.stats().secretRegenerations;
    while (!stop && emulator.stats().secretRegenerations === before) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (!stop) emulator.setClientState(clientId, "inactive");
  })();
  emulator.injectApiFaults({ kind: "delay", ms: 150 }, 2);
  return {
    async release() {
      stop = true;
      await watching;
      emulator.setClientState(clientId, "active");
    },
  };
}
