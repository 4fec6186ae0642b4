import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { SignJWT } from 'jose';
import { wav } from './support/audio';
import { download, putBytes } from './support/phone';
import { storeThatGoesDown } from './support/store-that-goes-down';
import { startTestApp, type TestApp } from './support/test-app';

jest.setTimeout(60_000);

/**
 * The log lines of whole flows, captured as they would reach stdout. One capture for the file:
 * nestjs-pino keeps one pino-http instance per process, so the first app's destination takes them all.
 */
const lines: string[] = [];
const capture = { write: (line: string) => void lines.push(line) };

function parsed(): Record<string, any>[] {
  return lines.flatMap((line) => line.split('\n').filter((part) => part.trim() !== '')).map((line) => JSON.parse(line));
}

/** Every request of the flow carries its own id, so its access line can be found. */
async function call(
  testApp: TestApp,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any; id: string }> {
  const id = `flow-${randomBytes(6).toString('hex')}`;
  const response = await fetch(testApp.baseUrl + path, {
    method,
    headers: {
      'x-request-id': id,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, id };
}

describe.each(['local', 's3'] as const)('the logs of a whole flow on %s storage', (storage) => {
  let testApp: TestApp;
  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage, env: { LOG_LEVEL: 'info' }, logDestination: capture });
  });
  afterAll(() => testApp.close());

  it('holds one JSON access line per request, and no token, signature or credential anywhere', async () => {
    lines.length = 0;
    const token = await testApp.tokenFor('alice');
    const secrets = new Set<string>([token, token.split('.')[2]]);
    const ids = new Map<string, { method: string; route: string; status: number; user: string | null }>();
    const record = (
      response: { status: number; id: string },
      method: string,
      route: string,
      user: string | null = 'alice',
    ) => ids.set(response.id, { method, route, status: response.status, user });

    const note = await call(testApp, token, 'POST', '/api/notes', { title: 'Standup' });
    record(note, 'POST', '/api/notes');
    const audio = wav(1);
    const created = await call(testApp, token, 'POST', '/api/audio-clips', {
      note_id: note.body.id,
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 1000,
    });
    record(created, 'POST', '/api/audio-clips');
    const clipId: string = created.body.clip.id;
    const urls: string[] = [created.body.upload.url];

    const renewed = await call(testApp, token, 'POST', `/api/audio-clips/${clipId}/upload-url`);
    record(renewed, 'POST', '/api/audio-clips/:clip_id/upload-url');
    urls.push(renewed.body.upload.url);
    expect((await putBytes(renewed.body.upload.url, audio, renewed.body.upload.headers)).status).toBe(200);

    const completed = await call(testApp, token, 'POST', `/api/audio-clips/${clipId}/complete`);
    expect(completed.status).toBe(200);
    record(completed, 'POST', '/api/audio-clips/:clip_id/complete');
    const playback = await call(testApp, token, 'GET', `/api/audio-clips/${clipId}/playback`);
    record(playback, 'GET', '/api/audio-clips/:clip_id/playback');
    urls.push(playback.body.url);
    expect((await download(playback.body.url)).bytes.equals(audio)).toBe(true);
    const primary = await call(testApp, token, 'GET', `/api/notes/${note.body.id}/audio`);
    record(primary, 'GET', '/api/notes/:note_id/audio');
    urls.push(primary.body.playback.url);

    // Tampered and expired signed URLs, a bad token, a foreign token, an unknown route.
    const tampered = new URL(playback.body.url);
    tampered.searchParams.set(storage === 's3' ? 'X-Amz-Signature' : 'signature', 'f'.repeat(64));
    urls.push(tampered.toString());
    await download(tampered.toString());
    const foreign = await new SignJWT({ exp: Math.floor(Date.now() / 1000) + 600 })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .sign(randomBytes(32));
    secrets.add(foreign);
    secrets.add(foreign.split('.')[2]);
    record(await call(testApp, foreign, 'GET', '/api/notes'), 'GET', '/api/notes', null);
    record(
      await call(testApp, 'not.a-real.token', 'GET', `/api/audio-clips/${clipId}`),
      'GET',
      '/api/audio-clips/:clip_id',
      null,
    );
    secrets.add('not.a-real.token');

    const deleted = await call(testApp, token, 'DELETE', `/api/notes/${note.body.id}`);
    expect(deleted.status).toBe(204);
    record(deleted, 'DELETE', '/api/notes/:note_id');

    for (const url of urls) {
      const query = new URL(url).searchParams;
      for (const name of ['X-Amz-Signature', 'X-Amz-Security-Token', 'signature']) {
        const value = query.get(name);
        if (value) secrets.add(value);
      }
      const credential = query.get('X-Amz-Credential');
      if (credential) secrets.add(credential.split('/')[0]);
    }
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'AUTH_JWT_SECRET', 'LOCAL_STORAGE_SIGNING_SECRET']) {
      if (testApp.env[name]) secrets.add(testApp.env[name]);
    }
    // The flow did hand out signed URLs, so the search below has signatures to look for.
    expect([...secrets].length).toBeGreaterThan(storage === 's3' ? 8 : 7);

    const text = lines.join('');
    for (const secret of secrets) expect(text).not.toContain(secret);

    const entries = parsed();
    for (const [id, expected] of ids) {
      const access = entries.filter((entry) => entry.request_id === id && entry.msg?.startsWith('request '));
      expect(access).toHaveLength(1);
      expect(access[0]).toMatchObject({
        method: expected.method,
        route: expected.route,
        status: expected.status,
        user_id: expected.user,
        response_time_ms: expect.any(Number),
        time: expect.any(String),
        level: expected.status >= 500 ? 'error' : expected.status >= 400 ? 'warn' : 'info',
      });
    }
    // Outside the /api prefix (where nestjs-pino's middleware does not run) there is an access line all the same.
    const stray = await fetch(`${testApp.baseUrl}/wp-login.php?password=hunter2`, {
      headers: { 'x-request-id': 'stray-1' },
    });
    expect(stray.status).toBe(404);
    expect(parsed().filter((entry) => entry.request_id === 'stray-1')).toEqual([
      expect.objectContaining({ method: 'GET', route: null, path: '/wp-login.php', status: 404, level: 'warn' }),
    ]);
    expect(lines.join('')).not.toContain('hunter2');

    // The store's own requests (the local driver's object endpoint) are logged too, without their query.
    if (storage === 'local') {
      const objectLines = entries.filter((entry) => entry.route === '/api/storage/local/*');
      expect(objectLines.length).toBeGreaterThanOrEqual(3);
      for (const entry of objectLines) expect(entry.path).not.toContain('?');
    }
  });
});

describe('log lines written during a request', () => {
  it('carry its request id, and a secret inside a message is masked on the way out', async () => {
    const store = await storeThatGoesDown();
    const testApp = await startTestApp({
      database: 'sqlite',
      storage: 's3',
      env: { LOG_LEVEL: 'info', S3_ENDPOINT_URL: store.endpoint, MULTIPART_THRESHOLD_BYTES: String(5 * 1024 * 1024) },
      logDestination: capture,
    });
    // Nothing listens there any more: completing fails inside the request, and the driver logs why.
    await store.stop();
    try {
      lines.length = 0;
      const token = await testApp.tokenFor('bob');
      const created = await call(testApp, token, 'POST', '/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: 100,
        duration_ms: 1000,
      });
      const completed = await call(testApp, token, 'POST', `/api/audio-clips/${created.body.clip.id}/complete`);
      expect(completed.status).toBe(503);
      expect(completed.body.error.request_id).toBe(completed.id);
      const ofRequest = parsed().filter((entry) => entry.request_id === completed.id);
      expect(ofRequest.map((entry) => entry.context ?? 'access')).toEqual(['S3StorageDriver', 'access']);

      // A request with a JSON body too: its handler runs after the body has been read, still in the request's context.
      const multipart = await call(testApp, token, 'POST', '/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: 6 * 1024 * 1024,
        duration_ms: 1000,
      });
      expect(multipart.status).toBe(503);
      expect(
        parsed()
          .filter((entry) => entry.request_id === multipart.id)
          .map((entry) => entry.context ?? 'access'),
      ).toEqual(['S3StorageDriver', 'access']);

      // Whatever a library puts in a message goes through the same mask.
      const { Logger } = await import('@nestjs/common');
      new Logger('Test').warn(
        `fetching ${created.body.upload.url} with Authorization: Bearer ${token} from postgres://app:hunter2@db/notes`,
      );
      const last = lines.at(-1)!;
      expect(last).not.toContain(new URL(created.body.upload.url).searchParams.get('X-Amz-Signature')!);
      expect(last).not.toContain(token);
      expect(last).not.toContain('hunter2');
      expect(last).toContain('X-Amz-Signature=[REDACTED]');
    } finally {
      await testApp.close();
    }
  });
});

describe('requests whose answer never finishes', () => {
  let testApp: TestApp;
  beforeAll(async () => {
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 'local',
      env: { LOG_LEVEL: 'info' },
      logDestination: capture,
    });
  });
  afterAll(() => testApp.close());

  /** Sends `send` bytes of a request (or reads `read` bytes of its answer), then cuts the connection. */
  function cutShort(url: string, options: { method: string; headers: Record<string, string>; send?: Buffer }) {
    return new Promise<void>((resolve) => {
      const outgoing = request(url, { method: options.method, headers: options.headers });
      outgoing.on('error', () => resolve());
      outgoing.on('response', (incoming) => {
        // The first chunk of the answer, then gone.
        incoming.once('data', () => {
          outgoing.destroy();
          resolve();
        });
      });
      if (options.send) outgoing.write(options.send, () => setTimeout(() => (outgoing.destroy(), resolve()), 200));
      else outgoing.end();
    });
  }

  async function accessLinesOf(id: string): Promise<Record<string, any>[]> {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      const found = parsed().filter((entry) => entry.request_id === id && entry.msg?.startsWith('request '));
      if (found.length > 0) {
        await new Promise((resolve) => setTimeout(resolve, 300)); // a second line would have come by now
        return parsed().filter((entry) => entry.request_id === id && entry.msg?.startsWith('request '));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return [];
  }

  it('an upload cut halfway and a download abandoned after its first bytes each get one access line, marked aborted', async () => {
    const phone = await testApp.phone('carol');
    const audio = wav(120); // 1.9 MB: more than one chunk of an answer
    const created = await phone.post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: audio.length,
      duration_ms: 120_000,
    });
    const uploadUrl = new URL(created.body.upload.url as string);

    const cutUpload = `cut-upload-${randomBytes(4).toString('hex')}`;
    await cutShort(uploadUrl.toString(), {
      method: 'PUT',
      headers: {
        'x-request-id': cutUpload,
        'content-type': 'audio/wav',
        'content-length': String(audio.length),
      },
      send: audio.subarray(0, audio.length / 2),
    });
    expect(await accessLinesOf(cutUpload)).toEqual([
      expect.objectContaining({ method: 'PUT', path: uploadUrl.pathname, aborted: true }),
    ]);

    expect((await putBytes(uploadUrl.toString(), audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(200);
    const playbackUrl = new URL((await phone.get(`/api/audio-clips/${created.body.clip.id}/playback`)).body.url);
    const abandoned = `abandoned-${randomBytes(4).toString('hex')}`;
    await cutShort(playbackUrl.toString(), { method: 'GET', headers: { 'x-request-id': abandoned } });
    expect(await accessLinesOf(abandoned)).toEqual([
      expect.objectContaining({ method: 'GET', path: playbackUrl.pathname, status: 200, aborted: true }),
    ]);
    // A download read to the end: one line, not aborted.
    expect((await download(playbackUrl.toString())).bytes.equals(audio)).toBe(true);
  });
});
