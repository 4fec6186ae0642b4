/**
 * Looks at an uploaded object through ranged reads and says whether it really is a recording in the
 * container family its declared MIME type names, and how long it lasts.
 *
 * The parsing is music-metadata's: `probeAudio` hands it a random-access strtok3 tokenizer over the
 * object's byte ranges (`RangeTokenizer`), backed by a read-ahead cache of aligned chunks
 * (`RangeCache`) so that the parser's many small reads turn into a few range requests. The parsers
 * seek over what they do not need (an MP4 `mdat`, a WAV `data` chunk, Matroska clusters when a
 * SeekHead indexes them), so an MP4 whose `moov` box sits after the media data costs the head, the
 * box headers and the tail, not the object. Every byte fetched counts against `maxBytesRead`; a parser
 * that wants more than that (one counting the frames of an MP3 without a Xing header and of varying
 * bitrate, of an ADTS stream or of an AMR file, or reading every Ogg page) is stopped, and what it
 * found by then decides the answer, with `durationMs: null` (for Ogg the duration still comes from the
 * last page's granule position, in the tail that music-metadata had already fetched to look for
 * trailing tags). A Matroska/WebM parse is stopped as soon as its Tracks are known, since what follows
 * is clusters: a WebM without a Duration element (MediaRecorder's) gets `durationMs: null`.
 *
 * The verdict: `audio` when the bytes hold an audio stream in a container that the declared type names
 * (see CONTAINERS_BY_MIME_TYPE); `not-audio`, with a reason, for anything else: bytes no parser knows
 * (text, images, zeros), a container cut before its audio can be read (an MP4 without its `moov`), an
 * audio container of another family than declared (a WAV declared as audio/mpeg: the reason names what
 * it is), or a declared type that names no audio container. A failing RangeReader makes the promise
 * reject: a storage problem is no verdict on the bytes.
 *
 * Hand-written byte sniffing is limited to what music-metadata cannot do: AMR (which it does not
 * parse), spotting an ISO BMFF `ftyp` so that 3GP brands (which its type guess names `video/3gpp`,
 * a type it has no parser for) go to its MP4 parser, the Ogg granule read above, and wording the
 * reason when nothing recognises the bytes.
 *
 * music-metadata and strtok3 are ESM-only; this CommonJS module `require`s them, which Node ≥ 22.12
 * (through the `module-sync` export condition) and Jest 30 under `--experimental-vm-modules` on Node
 * ≥ 24.9 both support.
 */
import { parseFromTokenizer, type IAudioMetadata, type IFormat } from 'music-metadata';
import {
  AbstractTokenizer,
  EndOfStreamError,
  type IRandomAccessFileInfo,
  type IRandomAccessTokenizer,
  type IReadChunkOptions,
} from 'strtok3';
import { baseMimeType } from './audio-mime-types';

/** Random access to one stored object: `read` returns the bytes `start..endInclusive`, like an HTTP Range. */
export interface RangeReader {
  size: number;
  read(start: number, endInclusive: number): Promise<Uint8Array>;
}

export type AudioProbeResult =
  | {
      kind: 'audio';
      /** The container family: one of `AudioContainer`. */
      container: string;
      /** Integer milliseconds, or null when the container states none that can be had within the read budget. */
      durationMs: number | null;
    }
  | { kind: 'not-audio'; reason: string };

export interface AudioProbeOptions {
  /** The most bytes fetched from the reader in all, 4 MiB by default. */
  maxBytesRead?: number;
  /** Size of the aligned chunks fetched and cached, 64 KiB by default. */
  chunkSize?: number;
}

/** The container families this probe tells apart. */
export type AudioContainer = 'mp4' | 'mpeg' | 'adts' | 'wav' | 'ogg' | 'matroska' | 'flac' | 'amr';

const CONTAINER_LABEL: Readonly<Record<AudioContainer, string>> = {
  mp4: 'MP4/M4A/3GP (ISO BMFF)',
  mpeg: 'MPEG audio (MP3)',
  adts: 'AAC in ADTS',
  wav: 'WAV (RIFF/WAVE)',
  ogg: 'Ogg',
  matroska: 'WebM/Matroska',
  flac: 'FLAC',
  amr: 'AMR',
};

/**
 * Which containers each declared type accepts. Besides the obvious pairs, `audio/aac` also accepts
 * AAC in MP4, because iOS and React Native upload `.m4a` recordings under that name; all the MP4 names
 * (m4a, mp4, 3gpp, 3gpp2) accept any ISO BMFF brand, since phones mix them up and it is one format.
 */
const CONTAINERS_BY_MIME_TYPE: Readonly<Record<string, readonly AudioContainer[]>> = {
  'audio/m4a': ['mp4'],
  'audio/x-m4a': ['mp4'],
  'audio/mp4': ['mp4'],
  'audio/3gpp': ['mp4'],
  'audio/3gpp2': ['mp4'],
  'audio/aac': ['adts', 'mp4'],
  'audio/x-aac': ['adts', 'mp4'],
  'audio/aacp': ['adts', 'mp4'],
  'audio/mpeg': ['mpeg'],
  'audio/mp3': ['mpeg'],
  'audio/x-mp3': ['mpeg'],
  'audio/wav': ['wav'],
  'audio/x-wav': ['wav'],
  'audio/wave': ['wav'],
  'audio/vnd.wave': ['wav'],
  'audio/webm': ['matroska'],
  'audio/x-matroska': ['matroska'],
  'audio/ogg': ['ogg'],
  'audio/opus': ['ogg'],
  'audio/flac': ['flac'],
  'audio/x-flac': ['flac'],
  'audio/amr': ['amr'],
  'audio/amr-wb': ['amr'],
};

const DEFAULT_MAX_BYTES_READ = 4 * 1024 * 1024;
const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** The containers a declared type accepts, or undefined for a type that names no known audio container. */
export function containersForMimeType(mimeType: string): readonly AudioContainer[] | undefined {
  const base = baseMimeType(mimeType);
  return Object.hasOwn(CONTAINERS_BY_MIME_TYPE, base) ? CONTAINERS_BY_MIME_TYPE[base] : undefined;
}

export async function probeAudio(
  reader: RangeReader,
  declaredMimeType: string,
  options: AudioProbeOptions = {},
): Promise<AudioProbeResult> {
  const declared = baseMimeType(declaredMimeType);
  const accepted = containersForMimeType(declared);
  if (!Number.isSafeInteger(reader.size) || reader.size < 0) {
    throw new RangeError(`RangeReader.size must be a non-negative integer, got ${reader.size}`);
  }
  if (reader.size === 0) {
    return notAudio('the object is empty');
  }
  const cache = new RangeCache(
    reader,
    options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    options.maxBytesRead ?? DEFAULT_MAX_BYTES_READ,
  );

  const found = await identify(cache);
  if (found.kind === 'not-audio') {
    return found;
  }
  if (!accepted) {
    return notAudio(
      `the declared type ${declared} names no audio container this probe knows; the content is ${describe(found)}`,
    );
  }
  if (!accepted.includes(found.container)) {
    return notAudio(
      `the content is ${describe(found)}, not ${accepted.map((c) => CONTAINER_LABEL[c]).join(' or ')} as ${declared} declares`,
    );
  }
  return { kind: 'audio', container: found.container, durationMs: found.durationMs };
}

type Identified =
  | { kind: 'audio'; container: AudioContainer; detail: string; durationMs: number | null }
  | { kind: 'not-audio'; reason: string };

function describe(found: { container: AudioContainer; detail: string }): string {
  return found.detail
    ? `${CONTAINER_LABEL[found.container]} audio (${found.detail})`
    : `${CONTAINER_LABEL[found.container]} audio`;
}

function notAudio(reason: string): { kind: 'not-audio'; reason: string } {
  return { kind: 'not-audio', reason };
}

/** Works out what the bytes are, whatever was declared. */
async function identify(cache: RangeCache): Promise<Identified> {
  const head = await cache.read(0, Math.min(cache.size, 64));

  const amr = amrVariant(head);
  if (amr) {
    return probeAmr(cache, amr);
  }
  const isoBmff = head.length >= 12 && ascii(head, 4, 8) === 'ftyp';
  // Without a MIME type music-metadata picks its parser from the content, not from the declaration; an
  // ISO BMFF file is sent to its MP4 parser whatever the brand, since it guesses 3GP brands as video/3gpp.
  const parserHint = isoBmff ? 'audio/mp4' : undefined;

  const full = await parse(new RangeTokenizer(cache, parserHint, cache.size), true, cache);
  // A parser may have swallowed the reader's error or the budget's (some turn read errors into
  // warnings), so ask the cache rather than the error.
  if (cache.readFailure) {
    throw cache.readFailure instanceof Error
      ? cache.readFailure
      : new Error('the audio could not be read', { cause: cache.readFailure });
  }
  let format = full.format;
  let parseError = full.error;
  // Durations set before a budget stop come from headers (mvhd, Xing, STREAMINFO, Info, the WAV data
  // size): the parsers that count frames (MP3 without Xing, ADTS) or read the last Ogg page set theirs
  // only on reaching the end, so a stopped parse has none rather than a partial one.
  const duration = format?.duration;
  const stoppedEarly = cache.budgetExceeded || cache.enough;

  if (stoppedEarly && !(format && hasAudioEvidence(format, isoBmff))) {
    // Some parsers report only at the end (Ogg keeps each stream's format until then). Parse again the
    // bytes already fetched, as if the object ended there, to learn what the stream is; no new reads.
    cache.frozen = true;
    const prefix = await parse(new RangeTokenizer(cache, parserHint, cache.contiguousPrefixLength()), false, cache);
    cache.frozen = false;
    format = prefix.format;
    parseError = prefix.error;
  }

  if (!format || !hasAudioEvidence(format, isoBmff)) {
    if (stoppedEarly) {
      return notAudio(
        `found no audio stream in the first ${cache.bytesRead} bytes read (read budget ${cache.maxBytesRead} bytes)`,
      );
    }
    if (parseError !== undefined) {
      return notAudio(reasonForParseError(parseError, head, format));
    }
    if (format?.container) {
      return notAudio(`a ${format.container} container with no audio stream${format.hasVideo ? ' (video only)' : ''}`);
    }
    return notAudio(
      'the first bytes look like audio, but no audio stream could be read from them (truncated or corrupt)',
    );
  }

  const container = containerOf(format, isoBmff);
  if (!container) {
    // music-metadata knows formats no phone uploads (AIFF, ASF, WavPack, ...): audio, but of no family here.
    return notAudio(
      `the content is ${format.container ?? 'an unknown container'} audio, which is not an accepted recording format`,
    );
  }
  if (parseError !== undefined && !stoppedEarly) {
    return notAudio(`truncated or corrupt ${CONTAINER_LABEL[container]} data: ${errorMessage(parseError)}`);
  }

  let durationMs = msOrNull(duration);
  if (durationMs === null && container === 'ogg') {
    durationMs = await oggDurationFromTail(cache, format);
  }
  if (durationMs === 0) {
    if (container === 'ogg') {
      // Every Ogg audio page carries the sample count so far: zero means there are only headers.
      return notAudio('an Ogg stream with headers but no audio pages (truncated?)');
    }
    durationMs = null; // e.g. a fragmented MP4 (Safari's MediaRecorder) leaves mvhd's duration at zero
  }
  return { kind: 'audio', container, detail: [format.container, format.codec].filter(Boolean).join(', '), durationMs };
}

/** Runs music-metadata, keeping what it had found when it failed (its observer sees the live collector). */
async function parse(
  tokenizer: RangeTokenizer,
  duration: boolean,
  cache: RangeCache,
): Promise<{ format?: IFormat; error?: unknown }> {
  let collected: IAudioMetadata | undefined;
  try {
    collected = await parseFromTokenizer(tokenizer, {
      duration,
      skipCovers: true,
      mkvUseIndex: true,
      observer: (update) => {
        collected = update.metadata;
        const format = update.metadata.format;
        // Matroska puts Info (with Duration, when there is one) before Tracks; once the audio track is
        // known nothing further counts, but without a SeekHead entry to jump to (MediaRecorder writes
        // none) the parser would go on reading every cluster header to the end: stop it at its next fetch.
        if (format.container?.startsWith('EBML') && format.codec !== undefined && format.sampleRate !== undefined) {
          cache.enough = true;
        }
      },
    });
    return { format: collected.format };
  } catch (error) {
    return { format: collected?.format, error };
  }
}

function hasAudioEvidence(format: IFormat, isoBmff: boolean): boolean {
  if (format.hasAudio === false) {
    return false;
  }
  if (format.hasAudio === undefined) {
    // Some parsers (Ogg, MP4) settle hasAudio only at the end; one stopped by the budget may already have
    // read the codec header, which is evidence enough.
    return format.codec !== undefined && format.sampleRate !== undefined && format.hasVideo !== true;
  }
  // The MPEG parser declares audio before it has found a frame; a frame sets the codec and sample rate.
  if (format.container === 'MPEG' || format.container?.startsWith('ADTS')) {
    return format.codec !== undefined && format.sampleRate !== undefined;
  }
  return isoBmff || format.codec !== undefined || format.sampleRate !== undefined;
}

function containerOf(format: IFormat, isoBmff: boolean): AudioContainer | undefined {
  if (isoBmff) {
    return 'mp4'; // music-metadata names MP4 containers by their brands: "M4A/isom/iso2", "3gp4/isom", ...
  }
  const name = format.container ?? '';
  if (name === 'MPEG') return 'mpeg';
  if (name.startsWith('ADTS')) return 'adts';
  if (name === 'WAVE' || name.startsWith('RIFF')) return 'wav';
  if (name === 'Ogg') return 'ogg';
  if (name.startsWith('EBML')) return 'matroska';
  if (name === 'FLAC') return 'flac';
  return undefined;
}

function reasonForParseError(error: unknown, head: Uint8Array, format: IFormat | undefined): string {
  const name = error instanceof Error ? error.name : '';
  const message = errorMessage(error);
  if (name === 'CouldNotDetermineFileTypeError') {
    return `not an audio container: ${describeUnknownBytes(head)}`;
  }
  if (name === 'UnsupportedFileTypeError') {
    // "Guessed MIME-type not supported: image/png"
    const guessed = /:\s*(\S+\/\S+)\s*$/.exec(message)?.[1];
    return guessed ? `not an audio container: the content is ${guessed}` : `not an audio container: ${message}`;
  }
  const container = format?.container ? `${format.container} ` : '';
  return `truncated or corrupt ${container}data: ${message}`;
}

function describeUnknownBytes(head: Uint8Array): string {
  if (head.every((b) => b === 0)) {
    return 'the first bytes are all zero';
  }
  const printable = head.filter((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f)).length;
  if (printable === head.length) {
    return `the content looks like text ("${ascii(head, 0, Math.min(head.length, 24)).replace(/\s+/g, ' ')}…")`;
  }
  const hex = Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `unrecognised bytes (starting ${hex})`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

function msOrNull(seconds: number | undefined): number | null {
  return seconds !== undefined && Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : null;
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

// --- AMR (RFC 4867 storage format), which music-metadata does not parse.

type AmrVariant = { magicLength: number; wideband: boolean };

function amrVariant(head: Uint8Array): AmrVariant | undefined {
  if (ascii(head, 0, 6) === '#!AMR\n') return { magicLength: 6, wideband: false };
  if (ascii(head, 0, 9) === '#!AMR-WB\n') return { magicLength: 9, wideband: true };
  return undefined;
}

// Bytes per frame, including its one-byte header, by frame type (RFC 4867 §5.3; 3GPP TS 26.101/26.201).
const AMR_NB_FRAME_BYTES = [13, 14, 16, 18, 20, 21, 27, 32, 6, 1, 1, 1, 1, 1, 1, 1];
const AMR_WB_FRAME_BYTES = [18, 24, 33, 37, 41, 47, 51, 59, 61, 6, 1, 1, 1, 1, 1, 1];
const AMR_FRAME_MS = 20;

/** Counts the 20 ms frames. AMR has no index, so a file larger than the budget gets no duration. */
async function probeAmr(cache: RangeCache, variant: AmrVariant): Promise<Identified> {
  const sizes = variant.wideband ? AMR_WB_FRAME_BYTES : AMR_NB_FRAME_BYTES;
  const detail = variant.wideband ? 'AMR-WB' : 'AMR-NB';
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
  if (frames === 0) {
    return notAudio(`${detail} magic number but no valid frame after it`);
  }
  return { kind: 'audio', container: 'amr', detail, durationMs: stoppedEarly ? null : frames * AMR_FRAME_MS };
}

// --- Ogg: the duration is the last page's granule position, which only the tail holds.

async function oggDurationFromTail(cache: RangeCache, format: IFormat): Promise<number | null> {
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

function readUint32LE(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16)) + bytes[offset + 3] * 0x1000000;
}

function readInt64LE(bytes: Uint8Array, offset: number): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigInt64(0, true));
}

// --- Ranged reads: a budgeted read-ahead cache, and a strtok3 tokenizer over it.

class ReadBudgetExceededError extends Error {
  override name = 'ReadBudgetExceededError';
}

/**
 * Fetches the object in aligned chunks and keeps them, coalescing the missing chunks of one read into
 * a single range request. Refuses (with ReadBudgetExceededError) any fetch that would take the total
 * past `maxBytesRead`.
 */
class RangeCache {
  readonly size: number;
  bytesRead = 0;
  requests = 0;
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
      this.requests++;
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

/** A random-access strtok3 tokenizer whose bytes come from a RangeCache, for music-metadata's parsers. */
class RangeTokenizer extends AbstractTokenizer implements IRandomAccessTokenizer {
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
