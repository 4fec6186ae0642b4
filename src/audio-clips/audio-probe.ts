/**
 * Says whether an uploaded object really is a recording in the container family its declared MIME type
 * names, and how long it lasts, reading only byte ranges of it (never the whole object).
 *
 * music-metadata does the parsing, through a strtok3 tokenizer over a read-ahead cache of the object's
 * ranges (probe/range-tokenizer.ts, probe/range-cache.ts). Its parsers seek over what they do not need,
 * so an M4A whose index sits after the media costs the head and the tail. Every byte fetched counts
 * against a read budget: a parser that wants more (frame counting in an MP3 without a Xing header, an
 * ADTS or AMR stream, every page of an Ogg) is stopped, and what it found by then decides, without a
 * duration. A WebM parse stops once its Tracks are known, since only clusters follow.
 *
 * Hand-written byte reading covers only what music-metadata cannot: AMR (probe/amr.ts), the ISO BMFF
 * `ftyp` that sends 3GP brands to its MP4 parser, an Ogg stream's duration from its last page
 * (probe/ogg-tail.ts), and the wording of the reason when nothing recognises the bytes.
 *
 * A failing RangeReader makes the promise reject: a storage problem is no verdict on the bytes.
 * music-metadata and strtok3 are ESM-only; this CommonJS module `require`s them (Node >= 22.12, and
 * Jest 30 under --experimental-vm-modules).
 */
import { parseFromTokenizer, type IAudioMetadata, type IFormat } from 'music-metadata';
import { baseMimeType } from './audio-mime-types';
import { amrVariant, countAmrFrames, type AmrVariant } from './probe/amr';
import { ascii } from './probe/bytes';
import { oggDurationFromTail } from './probe/ogg-tail';
import { RangeCache, type RangeReader } from './probe/range-cache';
import { RangeTokenizer } from './probe/range-tokenizer';

export type { RangeReader } from './probe/range-cache';

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
 * Which containers each accepted type (DEFAULT_AUDIO_MIME_TYPES, the same keys) allows. Besides the obvious pairs, `audio/aac` also accepts
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
  'audio/mpeg': ['mpeg'],
  'audio/mp3': ['mpeg'],
  'audio/wav': ['wav'],
  'audio/x-wav': ['wav'],
  'audio/wave': ['wav'],
  'audio/vnd.wave': ['wav'],
  'audio/webm': ['matroska'],
  'audio/ogg': ['ogg'],
  'audio/opus': ['ogg'],
  'audio/flac': ['flac'],
  'audio/x-flac': ['flac'],
  'audio/amr': ['amr'],
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

async function probeAmr(cache: RangeCache, variant: AmrVariant): Promise<Identified> {
  const { detail, frames, durationMs } = await countAmrFrames(cache, variant);
  if (frames === 0) return notAudio(`${detail} magic number but no valid frame after it`);
  return { kind: 'audio', container: 'amr', detail, durationMs };
}
