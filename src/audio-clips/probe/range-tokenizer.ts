import {
  AbstractTokenizer,
  EndOfStreamError,
  type IRandomAccessFileInfo,
  type IRandomAccessTokenizer,
  type IReadChunkOptions,
} from 'strtok3';
import type { RangeCache } from './range-cache';

/**
 * A random-access strtok3 tokenizer whose bytes come from a RangeCache, for music-metadata's parsers.
 * (`@tokenizer/range` does this job for HTTP clients, but has no read budget, re-fetches ranges that are
 * partly cached, and throws RangeError instead of EndOfStreamError at the end, which parsers rely on.)
 */
export class RangeTokenizer extends AbstractTokenizer implements IRandomAccessTokenizer {
  readonly fileInfo: IRandomAccessFileInfo;

  /** `size` may be less than the object's, to present only a prefix of it. */
  constructor(
    private readonly cache: RangeCache,
    parserHint: string | undefined,
    private readonly size: number,
  ) {
    super();
    this.fileInfo = parserHint ? { size, mimeType: parserHint } : { size };
  }

  supportsRandomAccess(): boolean {
    return true;
  }

  setPosition(position: number): void {
    this.validateLength(position, 'position');
    this.position = position;
  }

  async readBuffer(buffer: Uint8Array, options?: IReadChunkOptions): Promise<number> {
    const normalized = this.normalizeOptions(buffer, options);
    const count = await this.peekBuffer(buffer, normalized);
    this.position = normalized.position + count;
    return count;
  }

  async peekBuffer(buffer: Uint8Array, options?: IReadChunkOptions): Promise<number> {
    const { position, length, mayBeLess } = this.normalizeOptions(buffer, options);
    const available = Math.max(0, Math.min(this.size - position, length));
    if (!mayBeLess && available < length) {
      throw new EndOfStreamError();
    }
    if (available > 0) {
      buffer.set(await this.cache.read(position, available), 0);
    }
    return available;
  }
}
