/** How many values a waveform has (what Telegram sends with a voice message). */
export const WAVEFORM_LENGTH = 100;
/** Samples per block whose peak is kept while decoding: 10 ms at WAVEFORM_SAMPLE_RATE. */
const BLOCK_SAMPLES = 80;
/** The rate the decoder hands the waveform its PCM at: plenty for peaks, little to read. */
export const WAVEFORM_SAMPLE_RATE = 8000;

/**
 * Peaks of signed 16-bit little-endian mono PCM as it streams in, kept per 10 ms block (so memory grows
 * by 2 bytes a block however long the recording, and the slices can be cut once the length is known).
 */
export class WaveformBuilder {
  private readonly blocks: number[] = [];
  private blockPeak = 0;
  private inBlock = 0;
  private leftover: number | null = null;
  samples = 0;

  push(chunk: Buffer): void {
    let offset = 0;
    if (this.leftover !== null && chunk.length > 0) {
      this.sample((((chunk[0] << 8) | this.leftover) << 16) >> 16);
      this.leftover = null;
      offset = 1;
    }
    for (; offset + 1 < chunk.length; offset += 2) this.sample(chunk.readInt16LE(offset));
    if (offset < chunk.length) this.leftover = chunk[offset];
  }

  private sample(value: number): void {
    const magnitude = value < 0 ? -value : value;
    if (magnitude > this.blockPeak) this.blockPeak = magnitude;
    this.samples += 1;
    if (++this.inBlock === BLOCK_SAMPLES) this.closeBlock();
  }

  private closeBlock(): void {
    this.blocks.push(this.blockPeak);
    this.blockPeak = 0;
    this.inBlock = 0;
  }

  /** How long the decoded audio was. */
  get durationMs(): number {
    return Math.round((this.samples * 1000) / WAVEFORM_SAMPLE_RATE);
  }

  /** 100 values 0–255: each slice's peak, scaled so the loudest slice is 255; all 0 for silence. */
  finish(): number[] {
    if (this.inBlock > 0) this.closeBlock();
    return waveformOfBlocks(this.blocks);
  }
}

/** Cuts block peaks into WAVEFORM_LENGTH equal slices (a recording shorter than that repeats blocks). */
export function waveformOfBlocks(blocks: readonly number[]): number[] {
  const slices = new Array<number>(WAVEFORM_LENGTH).fill(0);
  if (blocks.length === 0) return slices;
  for (let slice = 0; slice < WAVEFORM_LENGTH; slice++) {
    const start = Math.floor((slice * blocks.length) / WAVEFORM_LENGTH);
    const end = Math.max(start + 1, Math.floor(((slice + 1) * blocks.length) / WAVEFORM_LENGTH));
    for (let block = start; block < end; block++) slices[slice] = Math.max(slices[slice], blocks[block]);
  }
  const loudest = Math.max(...slices);
  return loudest === 0 ? slices : slices.map((peak) => Math.round((peak * 255) / loudest));
}
