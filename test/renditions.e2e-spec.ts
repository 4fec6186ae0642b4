import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRenditionKey } from '../src/renditions/rendition-formats';
import { describeEachWithLegs, describeIfLeg } from './harness/legs';
import { FFMPEG_LEG } from './harness/ffmpeg';
import { RGW_LEG } from './harness/rgw';
import { wav, wavWithLoudSecond } from './support/audio';
import { download, putBytes, type Phone } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

interface Fixture {
  file: string;
  mime_type: string;
  true_duration_ms: number | null;
  container: string;
  expected_kind: 'audio' | 'not-audio';
}

const FIXTURE_DIR = join(__dirname, 'fixtures', 'audio');
const FIXTURES: Fixture[] = JSON.parse(readFileSync(join(FIXTURE_DIR, 'manifest.json'), 'utf8'));
const AUDIO_FIXTURES = FIXTURES.filter((fixture) => fixture.expected_kind === 'audio');
/** Declared on purpose far from the truth: the rendition's duration is checked against the measured one. */
const DECLARED_DURATION_MS = 99_999;
const PRINT = process.env.PRINT_RENDITION_TIMES === '1';
/** Every app of this file logs here: the JSON logger keeps the first destination it is given in a process. */
const logLines: string[] = [];
const logDestination = { write: (line: string) => void logLines.push(line) };

interface Ffprobed {
  format: { format_name: string; duration?: string };
  streams: { codec_type: string; codec_name: string; profile?: string; channels?: number }[];
}

function ffprobe(path: string): Ffprobed {
  return JSON.parse(
    execFileSync(
      'ffprobe',
      ['-v', 'error', '-show_entries', 'format=format_name,duration:stream', '-of', 'json', path],
      {
        encoding: 'utf8',
      },
    ),
  ) as Ffprobed;
}

/** Creates, uploads and completes a clip; returns the ready clip. */
export async function readyClip(phone: Phone, audio: Buffer, mimeType: string, durationMs = DECLARED_DURATION_MS) {
  const created = await phone.post('/api/audio-clips', {
    mime_type: mimeType,
    bytes: audio.length,
    duration_ms: durationMs,
  });
  expect(created.status).toBe(201);
  expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': mimeType })).status).toBe(200);
  const completed = await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`);
  expect(completed.status).toBe(200);
  expect(completed.body.status).toBe('ready');
  return completed.body;
}

/** Asks for the clip until its rendition is no longer pending (and its waveform made, unless it failed). */
export async function settledClip(phone: Phone, clipId: string, timeoutMs = 60_000) {
  const stopAt = Date.now() + timeoutMs;
  for (;;) {
    const clip = (await phone.get(`/api/audio-clips/${clipId}`)).body;
    const rendition = clip.renditions?.[0];
    if (rendition && rendition.status !== 'pending') return clip;
    if (Date.now() > stopAt) throw new Error(`the rendition of ${clipId} is still pending: ${JSON.stringify(clip)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const describeWithFfmpeg = describeEachWithLegs<[DatabaseKind, StorageKind, string]>(
  [
    ['sqlite', 'local', FFMPEG_LEG],
    ['postgres', 's3', FFMPEG_LEG],
    ['postgres', 'rgw', FFMPEG_LEG],
  ],
  [FFMPEG_LEG, RGW_LEG],
);

describeWithFfmpeg('renditions and waveforms on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let phone: Phone;
  let scratch: string;
  /** On RGW one format is enough (the store is what differs): the one phones send most. */
  const fixtures =
    storage === 'rgw' ? AUDIO_FIXTURES.filter((fixture) => fixture.file === 'tone-2s.webm') : AUDIO_FIXTURES;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage, env: { RENDITION_CONCURRENCY: '1' }, logDestination });
    phone = await testApp.phone('alice');
    scratch = await mkdtemp(join(tmpdir(), 'an-renditions-'));
  });

  afterAll(async () => {
    await testApp?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it.each(fixtures)('$file ($container): an AAC-LC in MP4 as long as the original, and a waveform', async (fixture) => {
    const audio = readFileSync(join(FIXTURE_DIR, fixture.file));
    const started = performance.now();
    const ready = await readyClip(phone, audio, fixture.mime_type);
    expect(ready.waveform).toBeNull();
    expect(ready.renditions).toEqual([expect.objectContaining({ format: 'm4a', mime_type: 'audio/mp4' })]);
    const clip = await settledClip(phone, ready.id);
    const tookMs = performance.now() - started;
    const [rendition] = clip.renditions;
    expect(rendition).toMatchObject({ format: 'm4a', status: 'ready', failure_reason: null });
    expect(clip.status).toBe('ready');
    expect(clip.waveform).toHaveLength(100);
    expect(clip.waveform.every((value: number) => Number.isInteger(value) && value >= 0 && value <= 255)).toBe(true);
    expect(Math.max(...clip.waveform)).toBe(255); // a tone all through: every slice loud

    const played = await phone.get(`/api/audio-clips/${ready.id}/playback?format=m4a`);
    expect(played.status).toBe(200);
    const bytes = (await download(played.body.url)).bytes;
    const path = join(scratch, `${ready.id}.m4a`);
    await writeFile(path, bytes);
    const probed = ffprobe(path);
    expect(probed.format.format_name.split(',')).toContain('mp4');
    const audioStream = probed.streams.find((stream) => stream.codec_type === 'audio');
    expect(audioStream).toMatchObject({ codec_name: 'aac', profile: 'LC' });
    // The original's measured duration; a MediaRecorder WebM states none, so its true one.
    const originalMs = clip.duration_source === 'measured' ? clip.duration_ms : fixture.true_duration_ms!;
    const renditionMs = Math.round(Number(probed.format.duration) * 1000);
    const errorMs = renditionMs - originalMs;
    expect(Math.abs(errorMs)).toBeLessThanOrEqual(50);
    expect(Math.abs(rendition.duration_ms - renditionMs)).toBeLessThanOrEqual(1);
    expect(rendition.bytes).toBe(bytes.length);

    const isAacInMp4 = fixture.file.endsWith('.m4a');
    if (isAacInMp4) {
      // Already what every phone plays: nothing was made, the original is what m4a answers.
      expect(rendition.source).toBe('original');
      expect(bytes.equals(audio)).toBe(true);
      expect(played.body.mime_type).toBe(fixture.mime_type);
      expect(await testApp.storage.inspect(buildRenditionKey(clip.storage_key, 'm4a'))).toBeNull();
    } else {
      expect(rendition.source).toBeUndefined();
      expect(played.body.mime_type).toBe('audio/mp4');
      expect(audioStream!.channels).toBe(1);
      // Fast-start: the index (moov) before the audio (mdat).
      expect(bytes.indexOf('moov')).toBeLessThan(bytes.indexOf('mdat'));
    }
    // Without a format: the original, with its own type.
    const original = await phone.get(`/api/audio-clips/${ready.id}/playback`);
    expect(original.body.mime_type).toBe(fixture.mime_type);
    expect((await download(original.body.url)).bytes.equals(audio)).toBe(true);
    if (PRINT)
      console.log(
        `${storage} ${fixture.file}: rendition ${renditionMs} ms vs original ${originalMs} ms (error ${errorMs} ms), ` +
          `ready ${(tookMs / 1000).toFixed(2)} s after the upload began${isAacInMp4 ? ' (original kept)' : ''}`,
      );
  });

  it('draws silence as 100 zeros, and puts the peak where the one loud second is', async () => {
    const silent = await settledClip(phone, (await readyClip(phone, wav(5), 'audio/wav')).id);
    expect(silent.waveform).toEqual(new Array(100).fill(0));
    expect(silent.renditions[0].status).toBe('ready');

    // 10 s, loud from 6 to 7 s: slices 60 to 69 are 255, everything else silent.
    const loud = await settledClip(phone, (await readyClip(phone, wavWithLoudSecond(10, 6), 'audio/wav')).id);
    expect(loud.waveform.indexOf(255)).toBeGreaterThanOrEqual(59);
    expect(loud.waveform.slice(61, 69)).toEqual(new Array(8).fill(255));
    expect(loud.waveform.slice(0, 58).every((value: number) => value === 0)).toBe(true);
    expect(loud.waveform.slice(72).every((value: number) => value === 0)).toBe(true);
  });

  it('lists clips with their waveform and renditions, and plays a note’s audio in m4a', async () => {
    const note = await phone.post('/api/notes', { title: 'renditions', body: '' });
    expect(note.status).toBe(201);
    const audio = readFileSync(join(FIXTURE_DIR, 'tone-2s.opus'));
    const created = await phone.post('/api/audio-clips', {
      note_id: note.body.id,
      mime_type: 'audio/opus',
      bytes: audio.length,
      duration_ms: 2000,
    });
    await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/opus' });
    await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`);
    const clip = await settledClip(phone, created.body.clip.id);

    const listed = (await phone.get('/api/audio-clips?status=ready')).body.items.find(
      (item: { id: string }) => item.id === clip.id,
    );
    expect(listed).toMatchObject({ waveform: clip.waveform, renditions: clip.renditions });
    const ofNote = (await phone.get(`/api/notes/${note.body.id}/audio-clips`)).body.items[0];
    expect(ofNote).toMatchObject({ waveform: clip.waveform, renditions: clip.renditions });

    const noteAudio = await phone.get(`/api/notes/${note.body.id}/audio?format=m4a`);
    expect(noteAudio.status).toBe(200);
    expect(noteAudio.body.playback.mime_type).toBe('audio/mp4');
    expect(noteAudio.body.clip.renditions[0].status).toBe('ready');
    const probedPath = join(scratch, 'note.m4a');
    await writeFile(probedPath, (await download(noteAudio.body.playback.url)).bytes);
    expect(ffprobe(probedPath).streams[0].codec_name).toBe('aac');
    const noteOriginal = await phone.get(`/api/notes/${note.body.id}/audio`);
    expect(noteOriginal.body.playback.mime_type).toBe('audio/opus');

    for (const format of ['mp3', 'M4A', 'm4a ', '', 'aac']) {
      const refused = await phone.get(`/api/notes/${note.body.id}/audio?format=${encodeURIComponent(format)}`);
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('deletes a deleted clip’s rendition from the store (the janitor’s pass finishes what is left)', async () => {
    const clip = await settledClip(phone, (await readyClip(phone, wav(2, { noise: true }), 'audio/wav')).id);
    const key = buildRenditionKey(clip.storage_key, 'm4a');
    expect(await testApp.storage.inspect(key)).not.toBeNull();
    expect((await phone.delete(`/api/audio-clips/${clip.id}`)).status).toBe(204);
    await testApp.janitor.runOnce();
    expect(await testApp.storage.inspect(key)).toBeNull();
    expect(await testApp.storage.inspect(clip.storage_key)).toBeNull();
    const [rows] = await testApp.dataSource.query(
      testApp.dataSource.options.type === 'postgres'
        ? 'SELECT COUNT(*) AS count FROM renditions WHERE clip_id = $1'
        : 'SELECT COUNT(*) AS count FROM renditions WHERE clip_id = ?',
      [clip.id],
    );
    expect(Number(rows.count)).toBe(0);
  });

  it('deletes the renditions of a deleted note’s clips too', async () => {
    const note = await phone.post('/api/notes', { title: 'to delete', body: '' });
    const audio = wav(1, { noise: true });
    const created = await phone.post('/api/audio-clips', {
      note_id: note.body.id,
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 1000,
    });
    await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' });
    await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`);
    const clip = await settledClip(phone, created.body.clip.id);
    const key = buildRenditionKey(clip.storage_key, 'm4a');
    expect(await testApp.storage.inspect(key)).not.toBeNull();
    expect((await phone.delete(`/api/notes/${note.body.id}`)).status).toBe(204);
    await testApp.janitor.runOnce();
    expect(await testApp.storage.inspect(key)).toBeNull();
  });

  it('answers another owner’s clip with 404 and no URL, whatever the format', async () => {
    const clip = await settledClip(phone, (await readyClip(phone, wav(1, { noise: true }), 'audio/wav')).id);
    const bob = await testApp.phone('bob');
    for (const query of ['?format=m4a', '', '?format=mp3']) {
      const answer = await bob.get(`/api/audio-clips/${clip.id}/playback${query}`);
      expect(answer.status).toBe(query === '?format=mp3' ? 400 : 404);
      expect(JSON.stringify(answer.body)).not.toContain('http');
      expect(JSON.stringify(answer.body)).not.toContain(clip.storage_key);
    }
  });

  it('does not count renditions toward the owner’s quota', async () => {
    const [before] = await testApp.dataSource.query(
      "SELECT COALESCE(SUM(bytes), 0) AS bytes FROM renditions WHERE status = 'ready'",
    );
    expect(Number(before.bytes)).toBeGreaterThan(0);
    // The quota counts the clips' own bytes only: GET /api/audio-clips shows no rendition among them.
    const items = (await phone.get('/api/audio-clips?limit=100')).body.items as { storage_key: string }[];
    expect(items.every((item) => !item.storage_key.includes('.universal.'))).toBe(true);
  });
});

describeIfLeg(FFMPEG_LEG)('a recording that keeps the decoder busy past its limit', () => {
  let testApp: TestApp;
  let scratch: string;

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { RENDITION_CONCURRENCY: '1', RENDITION_TIMEOUT_SECONDS: '2' },
      logDestination,
    });
    scratch = await mkdtemp(join(tmpdir(), 'an-bomb-'));
  });

  afterAll(async () => {
    await testApp?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('fails the rendition on the timeout, leaves the clip ready, and the API answers meanwhile', async () => {
    // Two hours of silence: a small FLAC (silence compresses to nothing) that takes the decoder long.
    const path = join(scratch, 'silence.flac');
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=8000:cl=mono',
      '-t',
      '7200',
      '-c:a',
      'flac',
      path,
    ]);
    const audio = await readFile(path);
    expect(audio.length).toBeLessThan(5 * 1024 * 1024);
    const phone = await testApp.phone('alice');
    const started = Date.now();
    const ready = await readyClip(phone, audio, 'audio/flac', 7_200_000);
    expect(ready.duration_ms).toBe(7_200_000);

    // While the job runs, the API answers as always.
    const latencies: number[] = [];
    while (Date.now() - started < 1500) {
      const before = performance.now();
      expect((await phone.get(`/api/audio-clips/${ready.id}/playback`)).status).toBe(200);
      latencies.push(performance.now() - before);
    }
    expect(Math.max(...latencies)).toBeLessThan(1000);
    const pending = await phone.get(`/api/audio-clips/${ready.id}/playback?format=m4a`);
    expect(pending.status).toBe(409);
    expect(pending.body.error.code).toBe('RENDITION_NOT_READY');
    expect(Number(pending.headers.get('retry-after'))).toBeGreaterThan(0);

    const clip = await settledClip(phone, ready.id, 30_000);
    expect(clip.status).toBe('ready');
    expect(clip.renditions[0]).toMatchObject({ status: 'failed', failure_reason: expect.stringMatching(/limit/) });
    const failed = await phone.get(`/api/audio-clips/${ready.id}/playback?format=m4a`);
    expect(failed.status).toBe(409);
    expect(failed.body.error).toMatchObject({
      code: 'RENDITION_FAILED',
      failure_reason: expect.stringMatching(/limit/),
    });
    expect((await phone.get(`/api/audio-clips/${ready.id}/playback`)).status).toBe(200);
    expect(await testApp.storage.inspect(buildRenditionKey(clip.storage_key, 'm4a'))).toBeNull();
    // The job's folder (the original's copy, the half-made rendition) went with it.
    const root = join(tmpdir(), 'advanced-notes-renditions');
    const left = await readdir(root).catch(() => [] as string[]);
    const fromThisJob = [];
    for (const name of left) if ((await stat(join(root, name))).ctimeMs >= started) fromThisJob.push(name);
    expect(fromThisJob).toEqual([]);
  });
});

describe('a server without ffmpeg', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    logLines.length = 0;
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { FFMPEG_PATH: '/nonexistent/ffmpeg', FFPROBE_PATH: '/nonexistent/ffprobe', LOG_LEVEL: 'error' },
      logDestination,
    });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('starts, says so once, keeps clips playable, and answers m4a with RENDITION_UNAVAILABLE', async () => {
    expect(logLines.filter((line) => line.includes('NO RENDITIONS ON THIS SERVER'))).toHaveLength(1);
    const phone = await testApp.phone('alice');
    const clip = await readyClip(phone, wav(1), 'audio/wav', 1000);
    expect(clip.renditions).toEqual([
      {
        format: 'm4a',
        mime_type: 'audio/mp4',
        status: 'unavailable',
        bytes: null,
        duration_ms: null,
        failure_reason: null,
      },
    ]);
    expect(clip.waveform).toBeNull();
    const played = await phone.get(`/api/audio-clips/${clip.id}/playback`);
    expect(played.status).toBe(200);
    expect(played.body.mime_type).toBe('audio/wav');
    const m4a = await phone.get(`/api/audio-clips/${clip.id}/playback?format=m4a`);
    expect(m4a.status).toBe(409);
    expect(m4a.body.error.code).toBe('RENDITION_UNAVAILABLE');
  });
});
