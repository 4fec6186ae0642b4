/**
 * Critical sections per key, in arrival order; different keys never wait for each other. The local
 * driver uses them so that an upload's two renames (bytes, then metadata) and an etag check with the
 * read or move relying on it never interleave.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const current = previous.then(work, work);
    const settled = current.catch(() => undefined);
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return current;
  }
}
