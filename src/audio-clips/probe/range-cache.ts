/** Random access to one stored object: `read` returns the bytes `start..endInclusive`, like an HTTP Range. */
export interface RangeReader {
  size: number;
  read(start: number, endInclusive: number): Promise<Uint8Array>;
}

export class ReadBudgetExceededError extends Error {
  override name = 'ReadBudgetExceededError';
}

/**
 * Fetches the object in aligned chunks and keeps them, coalescing the missing chunks of one read into
 * a single range request. Refuses (with ReadBudgetExceededError) any fetch that would take the total
 * past `maxBytesRead`.
 */
export class RangeCache {
  readonly size: number;
  bytesRead = 0;
  budgetExceeded = false;
  /** Set when the parse has learnt all it can use: further fetches fail (like the budget's). */
  enough = false;
  /** While set, any fetch fails: for re-parsing only what is already cached. */
  frozen = false;
  /** A failure of the RangeReader itself: a storage problem to pass on, not a verdict on the bytes. */
  readFailure: unknown;
  private readonly chunks = new Map<number, Uint8Array>();

  constructor(
    private readonly reader: RangeReader,
    readonly chunkSize: number,
    readonly maxBytesRead: number,
  ) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0)
      throw new RangeError('chunkSize must be a positive integer');
    if (!(maxBytesRead > 0)) throw new RangeError('maxBytesRead must be positive');
    this.size = reader.size;
  }

  /** The bytes `position .. position + length - 1`, which must lie within the object. */
  async read(position: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const first = Math.floor(position / this.chunkSize);
    const last = Math.floor((position + length - 1) / this.chunkSize);
    await this.fetchMissing(first, last);
    if (first === last) {
      const offset = position - first * this.chunkSize;
      return this.chunk(first).subarray(offset, offset + length);
    }
    const out = new Uint8Array(length);
    for (let index = first; index <= last; index++) {
      const chunkStart = index * this.chunkSize;
      const from = Math.max(position, chunkStart);
      const to = Math.min(position + length, chunkStart + this.chunkSize);
      out.set(this.chunk(index).subarray(from - chunkStart, to - chunkStart), from - position);
    }
    return out;
  }

  /** How many bytes from the start of the object are cached without a gap. */
  contiguousPrefixLength(): number {
    let index = 0;
    while (this.chunks.has(index)) index++;
    return Math.min(this.size, index * this.chunkSize);
  }

  private chunk(index: number): Uint8Array {
    const chunk = this.chunks.get(index);
    if (!chunk) throw new Error(`chunk ${index} missing`);
    return chunk;
  }

  private async fetchMissing(first: number, last: number): Promise<void> {
    let index = first;
    while (index <= last) {
      if (this.chunks.has(index)) {
        index++;
        continue;
      }
      let runEnd = index;
      while (runEnd + 1 <= last && !this.chunks.has(runEnd + 1)) runEnd++;
      const start = index * this.chunkSize;
      const endExclusive = Math.min(this.size, (runEnd + 1) * this.chunkSize);
      const wanted = endExclusive - start;
      if (this.enough || this.frozen) {
        throw new ReadBudgetExceededError('no more reads wanted');
      }
      if (this.bytesRead + wanted > this.maxBytesRead) {
        this.budgetExceeded = true;
        throw new ReadBudgetExceededError(
          `reading ${wanted} more bytes would pass the budget of ${this.maxBytesRead} (${this.bytesRead} read)`,
        );
      }
      let bytes: Uint8Array;
      try {
        bytes = await this.reader.read(start, endExclusive - 1);
      } catch (error) {
        this.readFailure ??= error;
        throw error;
      }
      this.bytesRead += bytes.length;
      if (bytes.length !== wanted) {
        const error = new Error(
          `range read ${start}-${endExclusive - 1} returned ${bytes.length} bytes, expected ${wanted}: the object is not the stated ${this.size} bytes`,
        );
        this.readFailure ??= error;
        throw error;
      }
      for (let i = index; i <= runEnd; i++) {
        const offset = (i - index) * this.chunkSize;
        this.chunks.set(i, bytes.subarray(offset, Math.min(bytes.length, offset + this.chunkSize)));
      }
      index = runEnd + 1;
    }
  }
}
