/**
 * A first-come, first-served async mutex: the stand-in for Python's
 * `threading.Lock` in the seed's port.
 *
 * @module
 */

/** A non-reentrant lock; waiters get it in arrival order. */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();

  /**
   * Runs `work` while holding the lock, like `with lock:`; the lock is
   * released however `work` ends.
   *
   * @param work What to run.
   * @returns What `work` returns.
   */
  async runExclusive<T>(work: () => Promise<T> | T): Promise<T> {
    let release!: () => void;
    const previous = this.#tail;
    this.#tail = new Promise<void>((resolve) => release = resolve);
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}
