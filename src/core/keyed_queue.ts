/**
 * Work run one at a time per key, in the order it was given: the next starts when the previous has ended, however it
 * ended. Keys with nothing waiting take no memory.
 *
 * @module
 */

/** One chain of work per key. */
export class KeyedQueue {
  readonly #chains = new Map<string, Promise<unknown>>();

  /** Run `fn` after everything given before under `key`; resolves (or rejects) as `fn` does. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(key);
    const run = prev === undefined ? fn() : prev.then(fn, fn);
    const tail = run.then(() => undefined, () => undefined);
    this.#chains.set(key, tail);
    tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key);
    });
    return run;
  }

  /** Wait for the work under way, at most `ms`. */
  async drain(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#chains.values()]),
      new Promise((resolve) => timer = setTimeout(resolve, ms)),
    ]);
    clearTimeout(timer);
  }
}
