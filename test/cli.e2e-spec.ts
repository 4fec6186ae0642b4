import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './harness/free-port';
import { FFMPEG_LEG } from './harness/ffmpeg';
import { describeIfLeg } from './harness/legs';
import { download } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

const ROOT = join(__dirname, '..');
const BIN = join(ROOT, 'client', 'bin', 'advanced-notes.js');
const FIXTURES = join(__dirname, 'fixtures', 'audio');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `advanced-notes` as a user would: its own process, configured by the environment, stdout and stderr apart. */
function cli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const { NODE_OPTIONS: _jestOnly, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...inherited, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error.code as number | undefined) ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** A failed command: nothing on stdout, one line on stderr with the server's code, a non-zero exit. */
function expectOneLineError(run: CliRun, code: string): void {
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(new RegExp(`^advanced-notes: ${code}: \\S.*\\n$`));
  expect(run.code).not.toBe(0);
}

const MATRIX: [DatabaseKind, StorageKind][] = [
  ['sqlite', 'local'],
  ['postgres', 's3'],
];

describe.each(MATRIX)('the advanced-notes CLI against a real server on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage });
    env = { ADVANCED_NOTES_URL: testApp.baseUrl, ADVANCED_NOTES_TOKEN: await testApp.tokenFor('cli-user') };
    dir = await mkdtemp(join(tmpdir(), 'an-cli-'));
    // The first run compiles client/ when its build is missing or stale.
    const help = await cli(['--help'], env);
    expect(help.code).toBe(0);
    // Where the token comes from, never its value (a secret on the screen and in the scroll-back).
    expect(help.stdout).toContain('env ADVANCED_NOTES_TOKEN');
    expect(help.stdout).not.toContain(env.ADVANCED_NOTES_TOKEN);
  }, 180_000);

  afterAll(async () => {
    await testApp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('uploads a real recording onto a note and plays it back, the bytes intact', async () => {
    const note = await cli(['notes', 'create', '--title', 'Standup ideas', '--body', 'release train', '--json'], env);
    expect(note).toMatchObject({ code: 0, stderr: '' });
    const noteId: string = JSON.parse(note.stdout).id;

    const file = join(FIXTURES, 'tone-2s-faststart.m4a');
    const uploaded = await cli(['upload', file, '--note', noteId], env);
    expect(uploaded.stderr).toBe(''); // no progress bar: stderr is not a terminal
    expect(uploaded.code).toBe(0);
    const fields = Object.fromEntries(
      uploaded.stdout
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ')).trim()]),
    );
    expect(fields).toMatchObject({
      status: 'ready',
      duration: expect.stringMatching(/^20\d\d ms \(measured\)$/),
      type: 'audio/x-m4a',
      playback: expect.stringMatching(/^http/),
    });

    const clip = await testApp
      .phone('cli-user')
      .then((phone) => phone.api.GET('/api/audio-clips/{clip_id}', { params: { path: { clip_id: fields.clip } } }));
    expect(clip.data).toMatchObject({ note_id: noteId, status: 'ready', duration_source: 'measured' });

    const original = await readFile(file);
    expect((await download(fields.playback)).bytes.equals(original)).toBe(true);

    const url = await cli(['play', fields.clip], env);
    expect(url.code).toBe(0);
    expect((await download(url.stdout.trim())).bytes.equals(original)).toBe(true);

    const out = join(dir, 'played.m4a');
    const played = await cli(['play', fields.clip, '--out', out], env);
    expect(played).toMatchObject({ code: 0, stderr: '', stdout: `${out}: ${original.length} bytes\n` });
    expect((await readFile(out)).equals(original)).toBe(true);

    const listed = await cli(['clips', 'list', noteId, '--json'], env);
    expect(JSON.parse(listed.stdout).map((item: { id: string }) => item.id)).toEqual([fields.clip]);
  }, 120_000);

  // Detection is the CLI's own work: one storage leg is enough for it.
  if (storage === 'local')
    it('takes the type from the bytes, not the name, and prints clip and playback with --json', async () => {
      const cases = [
        ['tone-1s.wav', 'memo.mp3', 'audio/wav'],
        ['tone-2s.webm', 'memo.m4a', 'audio/webm'],
        ['tone-2s.opus', 'memo.opus', 'audio/ogg;codecs=opus'],
        ['tone-2s.3gp', 'memo.3gp', 'audio/3gpp'],
        ['tone-3s-id3.mp3', 'memo', 'audio/mpeg'],
        ['tone-2s.flac', 'memo.wav', 'audio/flac'],
      ];
      for (const [fixture, name, mimeType] of cases) {
        const file = join(dir, name);
        await copyFile(join(FIXTURES, fixture), file);
        const run = await cli(['upload', file, '--json'], env);
        expect({ fixture, code: run.code, stderr: run.stderr }).toEqual({ fixture, code: 0, stderr: '' });
        const { clip, playback } = JSON.parse(run.stdout);
        expect({ fixture, mime_type: clip.mime_type, status: clip.status }).toEqual({
          fixture,
          mime_type: mimeType,
          status: 'ready',
        });
        expect(Object.keys(playback).sort()).toEqual(['expires_at', 'mime_type', 'server_time', 'url']);
        expect((await download(playback.url)).bytes.equals(await readFile(file))).toBe(true);
      }
    }, 120_000);

  it('searches notes: every word, the last one a prefix, with the body passage that matched', async () => {
    const run = await cli(
      ['notes', 'create', '--title', 'Trip', '--body', 'Book the train to Zürich for Tuesday'],
      env,
    );
    const noteId = run.stdout.trim();
    await cli(['notes', 'create', '--title', 'Train set', '--body', 'for the kids'], env);
    const found = await cli(['notes', 'search', 'zurich', 'tra'], env);
    expect(found).toMatchObject({ code: 0, stderr: '' });
    expect(found.stdout).toMatch(new RegExp(`^${noteId}  \\S+  Trip\n    Book the train to Zürich for Tuesday\n$`));
    const json = JSON.parse((await cli(['notes', 'search', 'train', '--json'], env)).stdout);
    // The title match first; other tests' notes may mention trains too.
    expect(json[0].title).toBe('Train set');
    const trip = json.find((note: { id: string }) => note.id === noteId);
    expect(trip.highlight.matches).toEqual([{ start: 9, length: 5 }]);
  });

  it('creates, lists and shows notes, lists and deletes clips, each with --json', async () => {
    const created = await cli(['notes', 'create', '--title', 'Groceries'], env);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const noteId = created.stdout.trim();
    expect(noteId).toMatch(/^[0-9a-f-]{36}$/);

    const shown = JSON.parse((await cli(['notes', 'show', noteId, '--json'], env)).stdout);
    expect(shown).toMatchObject({ id: noteId, title: 'Groceries', body: '' });
    expect((await cli(['notes', 'show', noteId], env)).stdout).toMatch(/^title\s+Groceries$/m);

    const listed = JSON.parse((await cli(['notes', 'list', '--json'], env)).stdout);
    expect(listed[0]).toMatchObject({ id: noteId, title: 'Groceries' });
    expect((await cli(['notes', 'list'], env)).stdout.split('\n')[0]).toMatch(new RegExp(`^${noteId} .* Groceries$`));

    const uploaded = JSON.parse(
      (await cli(['upload', join(FIXTURES, 'tone-1s.wav'), '--note', noteId, '--json'], env)).stdout,
    );
    const clipId: string = uploaded.clip.id;
    expect((await cli(['clips', 'list', noteId], env)).stdout).toMatch(new RegExp(`^${clipId}  ready `));

    expect(await cli(['clips', 'delete', clipId, '--json'], env)).toMatchObject({
      code: 0,
      stdout: `${JSON.stringify({ deleted: clipId }, null, 2)}\n`,
    });
    expect(JSON.parse((await cli(['clips', 'list', noteId, '--json'], env)).stdout)).toEqual([]);
    expectOneLineError(await cli(['clips', 'delete', clipId], env), 'AUDIO_CLIP_NOT_FOUND');
  }, 120_000);

  it('shows your usage, exports everything to a zip, and deletes the account only with --yes', async () => {
    const mine = { ...env, ADVANCED_NOTES_TOKEN: await testApp.tokenFor('cli-leaver ü') };
    const note = JSON.parse((await cli(['notes', 'create', '--title', 'To take along', '--json'], mine)).stdout);
    const file = join(FIXTURES, 'tone-2s-faststart.m4a');
    expect((await cli(['upload', file, '--note', note.id], mine)).code).toBe(0);

    const me = await cli(['me'], mine);
    expect(me).toMatchObject({ code: 0, stderr: '' });
    expect(me.stdout).toMatch(/^user +cli-leaver ü\nnotes +1\nrecordings +1\nstorage +\d+ bytes \(no quota\)\n/);
    const meJson = JSON.parse((await cli(['me', '--json'], mine)).stdout);
    expect(meJson).toMatchObject({ user_id: 'cli-leaver ü', notes: 1, audio_clips: 1 });

    const out = join(dir, 'notes.zip');
    const exported = await cli(['export', '--out', out], mine);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toMatch(/^export [0-9a-f-]{36}: (pending|running)/);
    expect(exported.stderr).toMatch(/ready, downloading \d+ bytes\n$/);
    expect(exported.stdout).toMatch(new RegExp(`^${out}: \\d+ bytes\\n$`));
    const zip = await readFile(out);
    expect(zip.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    expect(zip.includes(await readFile(file))).toBe(true); // stored, not deflated: the recording's bytes as they are

    const refused = await cli(['account', 'delete'], mine);
    expect(refused.code).toBe(2);
    expect(JSON.parse((await cli(['me', '--json'], mine)).stdout).notes).toBe(1);
    const deleted = await cli(['account', 'delete', '--yes'], mine);
    expect(deleted).toMatchObject({ code: 0, stderr: '' });
    expect(deleted.stdout).toMatch(/^deleted account cli-leaver ü: \d+ stored objects scheduled for deletion\n$/);
    expect(JSON.parse((await cli(['me', '--json'], mine)).stdout)).toMatchObject({ notes: 0, audio_clips: 0 });
  }, 120_000);

  it("fails with one stderr line carrying the server's code, and a non-zero exit", async () => {
    const text = join(dir, 'memo.txt');
    await writeFile(text, 'not a recording, just some text\n');
    const notAudio = await cli(['upload', text], env);
    expectOneLineError(notAudio, 'UPLOAD_NOT_AUDIO');
    expect(notAudio.stderr).toContain('looks like text');

    const png = join(dir, 'picture.m4a');
    await copyFile(join(FIXTURES, 'not-audio-png.m4a'), png);
    const image = await cli(['upload', png], env);
    expectOneLineError(image, 'VALIDATION_FAILED');
    expect(image.stderr).toContain('mime_type must be one of the accepted audio types');

    const unknown = '00000000-0000-4000-8000-000000000000';
    expectOneLineError(await cli(['notes', 'show', unknown], env), 'NOTE_NOT_FOUND');
    expectOneLineError(await cli(['clips', 'list', unknown], env), 'NOTE_NOT_FOUND');
    expectOneLineError(await cli(['play', unknown], env), 'AUDIO_CLIP_NOT_FOUND');
    expectOneLineError(await cli(['upload', join(FIXTURES, 'tone-1s.wav'), '--note', unknown], env), 'NOTE_NOT_FOUND');
    expectOneLineError(await cli(['notes', 'show', 'not-an-id'], env), 'VALIDATION_FAILED');
    expectOneLineError(await cli(['notes', 'create', '--title', ''], env), 'VALIDATION_FAILED');

    expectOneLineError(await cli(['notes', 'list'], { ...env, ADVANCED_NOTES_TOKEN: 'bad' }), 'UNAUTHENTICATED');
    expectOneLineError(await cli(['--token', 'bad', 'notes', 'list'], env), 'UNAUTHENTICATED');
    expectOneLineError(await cli(['notes', 'list'], { ADVANCED_NOTES_URL: testApp.baseUrl }), 'UNAUTHENTICATED');

    const missing = await cli(['upload', join(dir, 'no-such-file.m4a')], env);
    expectOneLineError(missing, 'ENOENT');

    const unreachable = await cli(['--url', `http://127.0.0.1:${await freePort()}`, 'notes', 'list'], env);
    expect(unreachable.stderr).toMatch(/^advanced-notes: cannot reach the API: ECONNREFUSED\n$/);
    expect(unreachable.code).not.toBe(0);

    const usage = await cli(['upload'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("missing required argument 'file'");
  }, 120_000);
});

describe('the advanced-notes CLI when the upload URL has run out', () => {
  let testApp: TestApp;
  let proxy: Server;
  let proxyUrl: string;
  const calls: string[] = [];

  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { S3_PRESIGN_PUT_EXPIRES_SECONDS: '3' },
    });
    // Between the CLI and the API: the answer to the clip's creation arrives after its upload URL ran out.
    const target = new URL(testApp.baseUrl);
    proxy = createServer((incoming, outgoing) => {
      calls.push(`${incoming.method} ${incoming.url}`);
      const forward = request(
        {
          host: target.hostname,
          port: target.port,
          path: incoming.url,
          method: incoming.method,
          headers: incoming.headers,
        },
        (answer) => {
          const delay = incoming.method === 'POST' && incoming.url === '/api/audio-clips' ? 4500 : 0;
          setTimeout(() => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(outgoing);
          }, delay);
        },
      );
      incoming.pipe(forward);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  }, 180_000);

  afterAll(async () => {
    await new Promise((resolve) => proxy?.close(resolve));
    await testApp?.close();
  });

  it('renews it through upload-url and uploads again', async () => {
    const file = join(FIXTURES, 'tone-1s.wav');
    const env = { ADVANCED_NOTES_URL: proxyUrl, ADVANCED_NOTES_TOKEN: await testApp.tokenFor('cli-user') };
    const run = await cli(['upload', file, '--json'], env);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const { clip, playback } = JSON.parse(run.stdout);
    expect(clip.status).toBe('ready');
    expect(calls).toEqual([
      'POST /api/audio-clips',
      `POST /api/audio-clips/${clip.id}/upload-url`,
      `POST /api/audio-clips/${clip.id}/complete`,
      `GET /api/audio-clips/${clip.id}/playback`,
    ]);
    expect((await download(playback.url)).bytes.equals(await readFile(file))).toBe(true);
  }, 120_000);
});

describe('the advanced-notes CLI on a terminal', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
  }, 180_000);

  afterAll(async () => {
    await testApp?.close();
  });

  it('draws a progress bar on stderr while uploading', async () => {
    // util-linux `script` gives the CLI a pseudo-terminal, as a person's shell would.
    const token = await testApp.tokenFor('cli-user');
    const command = `ADVANCED_NOTES_URL=${testApp.baseUrl} ADVANCED_NOTES_TOKEN=${token} '${process.execPath}' '${BIN}' upload '${join(FIXTURES, 'tone-2s.flac')}'`;
    const { NODE_OPTIONS: _jestOnly, ...inherited } = process.env;
    const output = await new Promise<string>((resolve, reject) =>
      execFile('script', ['-qefc', command, '/dev/null'], { env: inherited, timeout: 120_000 }, (error, stdout) =>
        error ? reject(new Error(`script failed: ${error.message}`)) : resolve(stdout),
      ),
    );
    expect(output).toMatch(/uploading \[.*\] 100% \| \d+\/\d+ bytes/);
    expect(output).toMatch(/status\s+ready/);
  }, 120_000);
});

describeIfLeg(FFMPEG_LEG)('the CLI with renditions', () => {
  let testApp: TestApp;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local', env: { RENDITION_CONCURRENCY: '1' } });
    env = { ADVANCED_NOTES_URL: testApp.baseUrl, ADVANCED_NOTES_TOKEN: await testApp.tokenFor('cli-user') };
    dir = await mkdtemp(join(tmpdir(), 'an-cli-'));
  }, 180_000);

  afterAll(async () => {
    await testApp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('plays the m4a rendition with --format m4a, and clips show draws the waveform', async () => {
    const uploaded = await cli(['upload', join(FIXTURES, 'tone-2s.webm'), '--json'], env);
    expect(uploaded.code).toBe(0);
    const clipId: string = JSON.parse(uploaded.stdout).clip.id;
    let shown: CliRun;
    for (const stopAt = Date.now() + 60_000; ;) {
      shown = await cli(['clips', 'show', clipId], env);
      if (!/^m4a\s+pending/m.test(shown.stdout) || Date.now() > stopAt) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^m4a\s+ready/m);
    // A tone all through: 100 blocks, all at the top.
    expect(shown.stdout).toMatch(/^waveform\s+[▇█]{100}$/m);

    const out = join(dir, 'rendition.m4a');
    const played = await cli(['play', clipId, '--format', 'm4a', '--out', out], env);
    expect(played).toMatchObject({ code: 0, stderr: '' });
    const bytes = await readFile(out);
    expect(bytes.subarray(4, 8).toString()).toBe('ftyp');
    expect(bytes.indexOf('moov')).toBeLessThan(bytes.indexOf('mdat'));
    const json = JSON.parse((await cli(['play', clipId, '--format', 'm4a', '--json'], env)).stdout);
    expect(json.mime_type).toBe('audio/mp4');

    expectOneLineError(await cli(['play', clipId, '--format', 'mp3'], env), 'VALIDATION_FAILED');
  }, 120_000);
});
