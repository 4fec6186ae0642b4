import { createReadStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { AudioClip, AudioClipStatus, CompletedBy, DurationSource } from '../audio-clips/audio-clip.entity';
import { exportArchive, type ArchiveSources } from './export-archive';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures', 'audio');
const AT = new Date('2026-11-27T10:00:00.000Z');
const NOTE = { id: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90', title: 'Standup / Montag ☕', createdAt: AT, updatedAt: AT };

function clip(id: string, file: string, mimeType: string, status = AudioClipStatus.Ready): AudioClip {
  return Object.assign(new AudioClip(), {
    id,
    ownerId: 'alice',
    noteId: NOTE.id,
    status,
    mimeType,
    bytes: readFileSync(join(FIXTURES, file)).length,
    durationMs: 2000,
    declaredDurationMs: 2000,
    durationSource: DurationSource.Measured,
    contentMd5: null,
    storageKey: file,
    uploadKey: `uploads/${file}`,
    uploadExpiresAt: null,
    uploadCheckAt: null,
    multipartUploadId: null,
    partSize: null,
    failureReason: null,
    createdAt: AT,
    updatedAt: AT,
    completedAt: AT,
    completedBy: CompletedBy.Client,
  });
}

function sources(overrides: Partial<ArchiveSources> = {}): ArchiveSources {
  return {
    userId: 'alice',
    notes: [NOTE],
    clips: [
      clip('9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b', 'tone-2s-faststart.m4a', 'audio/mp4'),
      clip('1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f', 'tone-2s.webm', 'audio/webm'),
      clip('2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a', 'tone-1s.wav', 'audio/wav', AudioClipStatus.Pending),
    ],
    bodyOf: async () => 'Ideas for the release train.',
    openRecording: async (key) => createReadStream(join(FIXTURES, key)),
    ...overrides,
  };
}

describe('exportArchive', () => {
  it('streams a zip of notes.json, the notes and the ready recordings, stored as they are', async () => {
    const zip = await buffer(exportArchive(sources(), AT));
    // Set KEEP_ARCHIVE=/tmp/x.zip to look at it with `unzip -l`.
    if (process.env.KEEP_ARCHIVE) await writeFile(process.env.KEEP_ARCHIVE, zip);
    const text = zip.toString('utf8');
    expect(zip.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    expect(text).toContain('notes.json');
    expect(text).toContain('notes/Standup _ Montag ☕ (5f0c2b8e).md');
    expect(text).toContain('recordings/Standup _ Montag ☕ 2026-11-27 (9b2f6c1e).m4a');
    expect(text).toContain('recordings/Standup _ Montag ☕ 2026-11-27 (1c2d3e4f).webm');
    expect(text).not.toContain('(2d3e4f5a).wav'); // pending: listed in notes.json, not archived
    // Recordings are stored, not deflated: their bytes appear as they are.
    expect(zip.includes(readFileSync(join(FIXTURES, 'tone-2s.webm')))).toBe(true);
  });

  it('fails when a recording comes back shorter than recorded (a store that ended the stream early)', async () => {
    const short = sources({
      openRecording: async (key) => Readable.from([readFileSync(join(FIXTURES, key)).subarray(0, 100)]),
    });
    await expect(buffer(exportArchive(short, AT))).rejects.toThrow(/unexpected number of bytes/);
  });

  it('fails when reading a recording fails mid-way (the store went away)', async () => {
    const broken = sources({
      openRecording: async () =>
        new Readable({
          read() {
            this.push(Buffer.alloc(10));
            this.destroy(new Error('socket hang up'));
          },
        }),
    });
    await expect(buffer(exportArchive(broken, AT))).rejects.toThrow('socket hang up');
  });

  it('fails when a recording is not in the store', async () => {
    await expect(buffer(exportArchive(sources({ openRecording: async () => null }), AT))).rejects.toThrow(
      /not in the store/,
    );
  });
});
