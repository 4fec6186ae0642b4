/** AMR (RFC 4867 storage format), which music-metadata does not parse. */
import { ascii } from './bytes';
import { RangeCache, ReadBudgetExceededError } from './range-cache';

export type AmrVariant = { magicLength: number; wideband: boolean };

export function amrVariant(head: Uint8Array): AmrVariant | undefined {
  if (ascii(head, 0, 6) === '#!AMR\n') return { magicLength: 6, wideband: false };
  if (ascii(head, 0, 9) === '#!AMR-WB\n') return { magicLength: 9, wideband: true };
  return undefined;
}

// Bytes per frame, including its one-byte header, by frame type (RFC 4867 §5.3; 3GPP TS 26.101/26.201).
const AMR_NB_FRAME_BYTES = [13, 14, 16, 18, 20, 21, 27, 32, 6, 1, 1, 1, 1, 1, 1, 1];
const AMR_WB_FRAME_BYTES = [18, 24, 33, 37, 41, 47, 51, 59, 61, 6, 1, 1, 1, 1, 1, 1];
const AMR_FRAME_MS = 20;

export interface AmrFrames {
  detail: 'AMR-NB' | 'AMR-WB';
  frames: number;
  /** Null when the read budget ran out before the last frame: AMR has no index to state a duration. */
  durationMs: number | null;
}

/** Counts the 20 ms frames up to the first byte that is not a frame header. */
export async function countAmrFrames(cache: RangeCache, variant: AmrVariant): Promise<AmrFrames> {
  const sizes = variant.wideband ? AMR_WB_FRAME_BYTES : AMR_NB_FRAME_BYTES;
  const detail = variant.wideband ? ('AMR-WB' as const) : ('AMR-NB' as const);
  let frames = 0;
  let position = variant.magicLength;
  let window: Uint8Array = new Uint8Array(0);
  let windowStart = position;
  let stoppedEarly = false;
  while (position < cache.size) {
    if (position - windowStart >= window.length) {
      windowStart = position;
      try {
        window = await cache.read(position, Math.min(cache.chunkSize, cache.size - position));
      } catch (error) {
        if (!(error instanceof ReadBudgetExceededError)) throw error;
        stoppedEarly = true;
        break;
      }
    }
    const header = window[position - windowStart];
    if ((header & 0x83) !== 0) {
      break; // padding bits set: not a frame header (corrupt, or not AMR after all)
    }
    const length = sizes[(header >> 3) & 0x0f];
    if (position + length > cache.size) {
      break; // a truncated last frame
    }
    frames++;
    position += length;
  }
  return { detail, frames, durationMs: stoppedEarly ? null : frames * AMR_FRAME_MS };
}
