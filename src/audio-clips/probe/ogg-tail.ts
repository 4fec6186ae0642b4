import type { IFormat } from 'music-metadata';
import { ascii, readInt64LE, readUint32LE } from './bytes';
import { RangeCache, ReadBudgetExceededError } from './range-cache';

/**
 * music-metadata gives an Ogg stream's duration only after reading every page, which the read budget
 * stops; the last page's granule position (in the tail) says it directly.
 */
export async function oggDurationFromTail(cache: RangeCache, format: IFormat): Promise<number | null> {
  const firstPage = await cache.read(0, Math.min(cache.size, 512));
  const serial = readUint32LE(firstPage, 14);
  const payloadStart = 27 + firstPage[26];
  const codecId = ascii(firstPage, payloadStart, payloadStart + 8);
  let rate: number | undefined = format.sampleRate;
  let preSkip = 0;
  if (codecId === 'OpusHead') {
    rate = 48000; // Opus granule positions always count 48 kHz samples
    preSkip = firstPage[payloadStart + 10] | (firstPage[payloadStart + 11] << 8);
  }
  if (!rate) {
    return null;
  }
  const tailLength = Math.min(cache.size, cache.chunkSize);
  let tail: Uint8Array;
  try {
    tail = await cache.read(cache.size - tailLength, tailLength);
  } catch (error) {
    if (error instanceof ReadBudgetExceededError) return null;
    throw error;
  }
  for (let i = tail.length - 27; i >= 0; i--) {
    if (
      tail[i] === 0x4f &&
      ascii(tail, i, i + 4) === 'OggS' &&
      tail[i + 4] === 0 &&
      readUint32LE(tail, i + 14) === serial
    ) {
      const granule = readInt64LE(tail, i + 6);
      if (granule < 0) {
        continue; // -1: no packet ends on this page
      }
      return Math.max(0, Math.round(((granule - preSkip) / rate) * 1000));
    }
  }
  return null;
}
