/**
 * probeAudio against the real recordings in test/fixtures/audio (made by scripts/make-audio-fixtures.sh)
 * and against large objects assembled in memory. music-metadata is ESM-only: run this through
 * `npm run test:unit`, whose NODE_OPTIONS=--experimental-vm-modules lets Jest `require` it (a bare
 * `npx jest` fails with "Cannot find module 'music-metadata'"). AUDIO_PROBE_TABLE=1 prints the table of
 * sizes, durations and bytes read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_AUDIO_MIME_TYPES } from './audio-mime-types';
import { containersForMimeType, probeAudio, type AudioProbeResult, type RangeReader } from './audio-probe';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures', 'audio');

interface ManifestEntry {
  file: string;
  mime_type: string;
  true_duration_ms: number | null;
  container: string;
  expected_kind: 'audio' | 'not-audio';
  duration_in_container: boolean | null;
  notes: string;
}

const manifest: ManifestEntry[] = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8'));
const fixture = (file: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, file)));

/** A RangeReader that counts what it serves, over segments laid end to end (so large objects need no memory). */
class CountingReader implements RangeReader {
  readonly size: number;
  bytesServed = 0;
  readonly requests: Array<[number, number]> = [];

  constructor(private readonly segments: ReadonlyArray<Uint8Array | { zeros: number }>) {
    this.size = segments.reduce((sum, s) => sum + ('zeros' in s ? s.zeros : s.length), 0);
  }

  static of(bytes: Uint8Array): CountingReader {
    return new CountingReader([bytes]);
  }

  async read(start: number, endInclusive: number): Promise<Uint8Array> {
    if (start < 0 || endInclusive >= this.size || endInclusive < start) {
      throw new RangeError(`bad range ${start}-${endInclusive} of ${this.size}`);
    }
    this.requests.push([start, endInclusive]);
    const out = new Uint8Array(endInclusive - start + 1);
    let offset = 0;
    for (const segment of this.segments) {
      const length = 'zeros' in segment ? segment.zeros : segment.length;
      const from = Math.max(start, offset);
      const to = Math.min(endInclusive + 1, offset + length);
      if (from < to && !('zeros' in segment)) {
        out.set(segment.subarray(from - offset, to - offset), from - start);
      }
      offset += length;
    }
    this.bytesServed += out.length;
    return out;
  }
}

/** A PCM WAV written by hand: RIFF header, `fmt ` chunk, then `data` of a 440 Hz tone. */
function makeWav(seconds: number, sampleRate: number, channels: number): Uint8Array {
  const bytesPerSample = 2;
  const frames = Math.round(seconds * sampleRate);
  const dataSize = frames * channels * bytesPerSample;
  const bytes = new Uint8Array(44 + dataSize);
  const view = new DataView(bytes.buffer);
  const text = (offset: number, s: string) => [...s].forEach((c, i) => (bytes[offset + i] = c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + dataSize, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * channels * bytesPerSample, true); // byte rate
  view.setUint16(32, channels * bytesPerSample, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  text(36, 'data');
  view.setUint32(40, dataSize, true);
  for (let i = 0; i < frames; i++) {
    const sample = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate));
    for (let c = 0; c < channels; c++) view.setInt16(44 + (i * channels + c) * bytesPerSample, sample, true);
  }
  return bytes;
}

/** Top-level MP4 boxes: [type, offset, size]. */
function topLevelBoxes(bytes: Uint8Array): Array<[string, number, number]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes: Array<[string, number, number]> = [];
  for (let offset = 0; offset + 8 <= bytes.length;) {
    const size = view.getUint32(offset);
    boxes.push([String.fromCharCode(...bytes.subarray(offset + 4, offset + 8)), offset, size]);
    offset += size;
  }
  return boxes;
}

function expectAudio(result: AudioProbeResult): Extract<AudioProbeResult, { kind: 'audio' }> {
  if (result.kind !== 'audio') throw new Error(`expected audio, got not-audio: ${result.reason}`);
  return result;
}

function expectNotAudio(result: AudioProbeResult): string {
  if (result.kind !== 'not-audio') throw new Error(`expected not-audio, got ${JSON.stringify(result)}`);
  return result.reason;
}

const KiB = 1024;
const MiB = 1024 * KiB;

describe('probeAudio over the fixtures in test/fixtures/audio', () => {
  const audio = manifest.filter((e) => e.expected_kind === 'audio');
  const rows: string[] = [];

  afterAll(() => {
    if (process.env.AUDIO_PROBE_TABLE) {
      console.log(
        ['file | size | true ms | measured ms | bytes read (64 KiB chunks) | bytes read (1 KiB chunks)', ...rows].join(
          '\n',
        ),
      );
    }
  });

  it('lists every file in the folder, and every container the project accepts', () => {
    expect(manifest.length).toBeGreaterThanOrEqual(14);
    for (const ext of ['m4a', 'mp3', 'ogg', 'opus', 'webm', 'flac', 'aac', 'wav', 'amr', '3gp']) {
      expect(audio.some((e) => e.file.endsWith(`.${ext}`))).toBe(true);
    }
  });

  it.each(audio.map((e) => [e.file, e] as const))(
    '%s is audio of the declared family, with its duration',
    async (_file, entry) => {
      const bytes = fixture(entry.file);
      const reader = CountingReader.of(bytes);
      const result = expectAudio(await probeAudio(reader, entry.mime_type));

      expect(containersForMimeType(entry.mime_type)).toContain(result.container);
      if (entry.duration_in_container) {
        expect(result.durationMs).not.toBeNull();
        expect(Number.isInteger(result.durationMs)).toBe(true);
        expect(Math.abs(result.durationMs! - entry.true_duration_ms!)).toBeLessThanOrEqual(50);
      } else {
        // The MediaRecorder-like WebM: no Duration element, so no duration rather than a guess.
        expect(result.durationMs).toBeNull();
      }
      // The whole of a small file fits in one chunk: one request.
      expect(reader.requests).toHaveLength(1);

      // With 1 KiB chunks the same parse shows what it really touches.
      const small = CountingReader.of(bytes);
      expect(await probeAudio(small, entry.mime_type, { chunkSize: KiB })).toEqual(result);
      rows.push(
        `${entry.file} | ${bytes.length} | ${entry.true_duration_ms} | ${result.durationMs} | ${reader.bytesServed} | ${small.bytesServed}`,
      );
    },
  );

  it.each([
    ['tone-2s-moov-at-end.m4a'],
    ['tone-2s-faststart.m4a'],
    ['tone-3s-id3.mp3'],
    ['tone-2s-no-id3.mp3'],
    ['tone-1s.wav'],
  ])('%s: with 1 KiB chunks, the parse skips the media data', async (file) => {
    // (For the other containers, music-metadata's 4100-byte content sniff already covers most of these
    // few-KB files; the large objects below show what they cost.)
    const entry = manifest.find((e) => e.file === file)!;
    const bytes = fixture(file);
    const reader = CountingReader.of(bytes);
    expectAudio(await probeAudio(reader, entry.mime_type, { chunkSize: KiB }));
    expect(reader.bytesServed).toBeLessThan(bytes.length * 0.75);
  });

  it.each(manifest.filter((e) => e.expected_kind === 'not-audio').map((e) => [e.file, e] as const))(
    '%s is not audio',
    async (_file, entry) => {
      const reason = expectNotAudio(await probeAudio(CountingReader.of(fixture(entry.file)), entry.mime_type));
      expect(reason.length).toBeGreaterThan(10);
    },
  );

  it('says what the non-audio fixtures really are', async () => {
    expect(expectNotAudio(await probeAudio(CountingReader.of(fixture('not-audio-png.m4a')), 'audio/m4a'))).toMatch(
      /image\/png/,
    );
    expect(expectNotAudio(await probeAudio(CountingReader.of(fixture('not-audio-text.mp3')), 'audio/mpeg'))).toMatch(
      /text/,
    );
    expect(
      expectNotAudio(await probeAudio(CountingReader.of(fixture('wav-declared-as-mp3.mp3')), 'audio/mpeg')),
    ).toMatch(/WAV \(RIFF\/WAVE\).*not MPEG audio \(MP3\)/);
  });
});

describe('probeAudio on large objects reads only a small part', () => {
  it('a 30 s WAV written in code (2.9 MB): the header, and the tail music-metadata checks for tags', async () => {
    const wav = makeWav(30, 48000, 1);
    const reader = CountingReader.of(wav);
    expect(await probeAudio(reader, 'audio/wav')).toEqual({ kind: 'audio', container: 'wav', durationMs: 30000 });
    expect(reader.bytesServed).toBeLessThanOrEqual(2 * 64 * KiB);
    expect(reader.requests.length).toBeLessThanOrEqual(2);
  });

  it('a 1.5 s stereo WAV written in code', async () => {
    const result = await probeAudio(CountingReader.of(makeWav(1.5, 16000, 2)), 'audio/x-wav');
    expect(result).toEqual({ kind: 'audio', container: 'wav', durationMs: 1500 });
  });

  it('an M4A with its mdat padded to 50 MB and moov at the end: head, box headers and tail only', async () => {
    const m4a = fixture('tone-2s-moov-at-end.m4a');
    const boxes = topLevelBoxes(m4a);
    expect(boxes.map((b) => b[0])).toEqual(['ftyp', 'free', 'mdat', 'moov']);
    const [, mdatOffset, mdatSize] = boxes[2];
    const moovOffset = boxes[3][1];
    const pad = 50 * MiB;
    // Grow mdat in place: the sample offsets in moov still point at the same bytes.
    const head = m4a.slice(0, moovOffset);
    new DataView(head.buffer).setUint32(mdatOffset, mdatSize + pad);
    const reader = new CountingReader([head, { zeros: pad }, m4a.subarray(moovOffset)]);

    const result = expectAudio(await probeAudio(reader, 'audio/m4a'));
    expect(result.container).toBe('mp4');
    expect(Math.abs(result.durationMs! - 2000)).toBeLessThanOrEqual(50);
    expect(reader.bytesServed).toBeLessThanOrEqual(2 * 64 * KiB);
    expect(reader.requests.length).toBeLessThanOrEqual(3);
  });

  it('a FLAC followed by 20 MB (standing in for its frames): STREAMINFO gives the duration', async () => {
    const reader = new CountingReader([fixture('tone-2s.flac'), { zeros: 20 * MiB }]);
    expect(await probeAudio(reader, 'audio/flac')).toEqual({ kind: 'audio', container: 'flac', durationMs: 2000 });
    expect(reader.bytesServed).toBeLessThanOrEqual(2 * 64 * KiB);
  });

  it('a MediaRecorder-like WebM of 10 MB (no Duration, no Cues): stops after the Tracks, duration null', async () => {
    const webm = fixture('tone-2s-no-duration.webm');
    // EBML header and an unknown-size Segment holding SeekHead, Info, Tracks and Tags, then 3 clusters.
    const firstCluster = 391;
    const secondCluster = 2812;
    const lastCluster = 5150;
    expect(Array.from(webm.subarray(firstCluster, firstCluster + 4))).toEqual([0x1f, 0x43, 0xb6, 0x75]);
    expect(Array.from(webm.subarray(secondCluster, secondCluster + 4))).toEqual([0x1f, 0x43, 0xb6, 0x75]);
    const cluster = webm.subarray(firstCluster, secondCluster);
    const reader = new CountingReader([
      webm.subarray(0, firstCluster),
      ...Array.from({ length: 4000 }, () => cluster),
      webm.subarray(lastCluster),
    ]);
    expect(reader.size).toBeGreaterThan(9 * MiB);

    expect(await probeAudio(reader, 'audio/webm;codecs=opus')).toEqual({
      kind: 'audio',
      container: 'matroska',
      durationMs: null,
    });
    expect(reader.bytesServed).toBeLessThanOrEqual(2 * 64 * KiB);
  });

  it('a bare CBR MP3 of 10 minutes: the duration from the frame size and the file size', async () => {
    const mp3 = fixture('tone-2s-no-id3.mp3'); // 85 frames of 1152 samples at 48 kHz = 2.040 s
    const copies = 294; // ~10 minutes
    const reader = new CountingReader(Array.from({ length: copies }, () => mp3));
    const result = expectAudio(await probeAudio(reader, 'audio/mpeg'));
    expect(result.container).toBe('mpeg');
    expect(Math.abs(result.durationMs! - copies * 2040)).toBeLessThanOrEqual(50);
    expect(reader.bytesServed).toBeLessThanOrEqual(2 * 64 * KiB);
  });

  it('an ADTS stream too long to count within maxBytesRead: audio, duration null, never past the budget', async () => {
    const aac = fixture('tone-2s.aac');
    const copies = Math.ceil((6 * MiB) / aac.length);
    const reader = new CountingReader(Array.from({ length: copies }, () => aac));
    const result = await probeAudio(reader, 'audio/aac');
    expect(result).toEqual({ kind: 'audio', container: 'adts', durationMs: null });
    expect(reader.bytesServed).toBeLessThanOrEqual(4 * MiB);

    // With room enough it counts every frame instead.
    const counted = expectAudio(
      await probeAudio(new CountingReader(Array.from({ length: copies }, () => aac)), 'audio/aac', {
        maxBytesRead: 8 * MiB,
      }),
    );
    expect(counted.durationMs).not.toBeNull();
  });

  it.each([['tone-2s.opus'], ['tone-2s-vorbis.ogg']])(
    '%s with a budget smaller than the file: the Ogg duration still comes from the last page, in the tail',
    async (file) => {
      const bytes = fixture(file);
      const reader = CountingReader.of(bytes);
      const result = expectAudio(await probeAudio(reader, 'audio/ogg', { chunkSize: KiB, maxBytesRead: 3 * KiB }));
      expect(result.container).toBe('ogg');
      expect(Math.abs(result.durationMs! - 2000)).toBeLessThanOrEqual(50);
      expect(reader.bytesServed).toBeLessThanOrEqual(3 * KiB);
      expect(reader.bytesServed).toBeLessThan(bytes.length);
    },
  );

  it('an AMR file larger than the budget: audio, duration null', async () => {
    const amr = fixture('tone-2s.amr');
    const frames = amr.subarray(6);
    const reader = new CountingReader([amr, ...Array.from({ length: 100 }, () => frames)]);
    const result = await probeAudio(reader, 'audio/amr', { maxBytesRead: 32 * KiB, chunkSize: 8 * KiB });
    expect(result).toEqual({ kind: 'audio', container: 'amr', durationMs: null });
    expect(reader.bytesServed).toBeLessThanOrEqual(32 * KiB);
    // Within budget, every 20 ms frame counts.
    expect(
      await probeAudio(new CountingReader([amr, ...Array.from({ length: 100 }, () => frames)]), 'audio/amr'),
    ).toEqual({
      kind: 'audio',
      container: 'amr',
      durationMs: 101 * 2000,
    });
  });

  it('100 MB of zeros: two chunks read, not audio', async () => {
    const reader = new CountingReader([{ zeros: 100 * MiB }]);
    expect(expectNotAudio(await probeAudio(reader, 'audio/m4a'))).toMatch(/zero/);
    expect(reader.bytesServed).toBeLessThanOrEqual(2 * 64 * KiB);
  });
});

describe('probeAudio rejects what is not audio', () => {
  const seededBytes = (length: number, seed: number) => {
    const out = new Uint8Array(length);
    let x = seed;
    for (let i = 0; i < length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  };
  const text = (s: string) => new TextEncoder().encode(s);
  const m4a = fixture('tone-2s-moov-at-end.m4a');

  it.each<[string, Uint8Array, string, RegExp]>([
    ['an empty object', new Uint8Array(0), 'audio/m4a', /empty/],
    ['plain text', text('hello, this is not a recording\n'.repeat(20)), 'audio/mpeg', /text/],
    ['a JSON document', text('{"duration_ms": 42000, "note": "nope"}'), 'audio/webm', /text/],
    ['an HTML error page', text('<!DOCTYPE html><html><body>403 Forbidden</body></html>'), 'audio/m4a', /text/],
    ['64 KiB of zeros', new Uint8Array(64 * KiB), 'audio/wav', /zero/],
    ['random bytes', seededBytes(20_000, 7), 'audio/mpeg', /unrecognised/],
    [
      'MPEG sync words with no valid frame',
      Uint8Array.from({ length: 5000 }, (_, i) => (i % 2 ? 0xfb : 0xff)),
      'audio/mpeg',
      /./,
    ],
    ['an M4A cut before its moov', m4a.subarray(0, 3000), 'audio/m4a', /truncated or corrupt/],
    ['the first 200 bytes of an M4A', m4a.subarray(0, 200), 'audio/m4a', /truncated or corrupt/],
    ['an MP3 cut to 100 bytes', fixture('tone-2s-no-id3.mp3').subarray(0, 100), 'audio/mpeg', /no audio stream/],
    ['a WAV cut inside its header', fixture('tone-1s.wav').subarray(0, 30), 'audio/wav', /no audio stream/],
    ['an Ogg cut after its first page', fixture('tone-2s.opus').subarray(0, 100), 'audio/ogg', /no audio pages/],
    ['a WebM cut inside its header', fixture('tone-2s.webm').subarray(0, 100), 'audio/webm', /no audio stream/],
    [
      'an AMR magic number and no frames',
      Uint8Array.from([...text('#!AMR\n'), ...new Uint8Array(40).fill(0xff)]),
      'audio/amr',
      /no valid frame/,
    ],
    ['a PNG', fixture('not-audio-png.m4a'), 'audio/mp4', /image\/png/],
  ])('%s', async (_name, bytes, mimeType, reason) => {
    expect(expectNotAudio(await probeAudio(CountingReader.of(bytes), mimeType))).toMatch(reason);
  });

  it('a WAV cut short still plays: audio, with the duration of what is there', async () => {
    const cut = makeWav(1, 8000, 1).subarray(0, 44 + 8000); // half of the samples
    expect(await probeAudio(CountingReader.of(cut), 'audio/wav')).toEqual({
      kind: 'audio',
      container: 'wav',
      durationMs: 500,
    });
  });
});

describe('probeAudio checks the declared family', () => {
  it('knows the containers of exactly the types a clip may declare', () => {
    for (const type of DEFAULT_AUDIO_MIME_TYPES) expect(containersForMimeType(type)?.length).toBeGreaterThan(0);
  });

  it.each<[string, string, RegExp]>([
    ['tone-1s.wav', 'audio/mpeg', /WAV \(RIFF\/WAVE\) audio.*not MPEG audio \(MP3\)/],
    ['tone-2s-faststart.m4a', 'audio/webm', /MP4\/M4A\/3GP.*not WebM\/Matroska/],
    ['tone-3s-id3.mp3', 'audio/wav', /MPEG audio \(MP3\).*not WAV/],
    ['tone-2s-vorbis.ogg', 'audio/flac', /Ogg audio.*not FLAC/],
    ['tone-2s.amr', 'audio/m4a', /AMR audio.*not MP4/],
    ['tone-2s.aac', 'audio/mpeg', /AAC in ADTS.*not MPEG audio/],
    ['tone-2s.webm', 'audio/ogg', /WebM\/Matroska.*not Ogg/],
    ['tone-2s.flac', 'audio/mp4', /FLAC.*not MP4/],
  ])('%s declared as %s is not-audio, naming what it is', async (file, mimeType, reason) => {
    expect(expectNotAudio(await probeAudio(CountingReader.of(fixture(file)), mimeType))).toMatch(reason);
  });

  it('a type that names no audio container is refused, with what the content is', async () => {
    const reason = expectNotAudio(
      await probeAudio(CountingReader.of(fixture('tone-2s-faststart.m4a')), 'application/octet-stream'),
    );
    expect(reason).toMatch(/application\/octet-stream.*MP4/);
  });

  it.each<[string, string, string]>([
    // iOS and React Native upload AAC-in-MP4 as audio/aac.
    ['tone-2s-faststart.m4a', 'audio/aac', 'mp4'],
    // One format, whatever the brand: a 3GP under an M4A name, an M4A under a 3GP name.
    ['tone-2s.3gp', 'audio/m4a', 'mp4'],
    ['tone-2s-moov-at-end.m4a', 'audio/3gpp', 'mp4'],
    ['tone-2s.opus', 'audio/ogg', 'ogg'],
    ['tone-2s-vorbis.ogg', 'Audio/OGG; codecs=vorbis', 'ogg'],
  ])('%s declared as %s is accepted', async (file, mimeType, container) => {
    expect(expectAudio(await probeAudio(CountingReader.of(fixture(file)), mimeType)).container).toBe(container);
  });
});

describe('probeAudio and a failing store', () => {
  it('passes on an error from the reader rather than calling the object not-audio', async () => {
    const failing: RangeReader = { size: 10_000, read: async () => Promise.reject(new Error('S3 said 503')) };
    await expect(probeAudio(failing, 'audio/m4a')).rejects.toThrow('S3 said 503');
  });

  it('passes on an error from a read that a parser would otherwise swallow (the moov read of an MP4)', async () => {
    const m4a = fixture('tone-2s-moov-at-end.m4a');
    const inner = CountingReader.of(m4a);
    let calls = 0;
    const flaky: RangeReader = {
      size: m4a.length,
      read: async (start, end) =>
        ++calls > 1 ? Promise.reject(new Error('connection reset')) : inner.read(start, end),
    };
    await expect(probeAudio(flaky, 'audio/m4a', { chunkSize: 1024 })).rejects.toThrow('connection reset');
  });

  it('fails when the object is shorter than its stated size', async () => {
    const m4a = fixture('tone-2s-faststart.m4a');
    const lying: RangeReader = { size: m4a.length + 500, read: async (start, end) => m4a.slice(start, end + 1) };
    await expect(probeAudio(lying, 'audio/m4a')).rejects.toThrow(/not the stated/);
  });
});
