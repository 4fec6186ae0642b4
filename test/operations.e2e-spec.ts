import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { freePort } from './harness/free-port';
import { storeThatGoesDown } from './support/store-that-goes-down';
import { wav } from './support/audio';
import { putBytes } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';
import { ShutdownState } from '../src/operations/shutdown-state';
import { StorageDeletionsRepository } from '../src/audio-clips/deletions/storage-deletions.repository';

jest.setTimeout(60_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A GET or POST with raw control over the headers (repeated headers included). */
function send(
  url: string,
  options: { method?: string; headers?: Record<string, string | string[]>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('request ids', () => {
  let testApp: TestApp;
  let token: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    token = await testApp.tokenFor('alice');
  });
  afterAll(() => testApp.close());

  // Every kind of answer: success, 401, 404 (no route), 400 (validation), 415, and a 201.
  const requests = (): [string, { method?: string; headers?: Record<string, string>; body?: string }, number][] => [
    ['/api/health', {}, 200],
    ['/api/notes', {}, 401],
    ['/api/no-such-route', {}, 404],
    [
      '/api/notes',
      {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"x":1}',
      },
      400,
    ],
    [
      '/api/notes',
      { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, body: 'a,b' },
      415,
    ],
    [
      '/api/notes',
      {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"title":"t"}',
      },
      201,
    ],
  ];

  it.each(['abc', 'req-1', 'a.b:c-d_E9', 'x'.repeat(128), '3f0c9a52-6f1e-4f7e-9d55-0b2b1f7f4a10'])(
    'keeps a sane incoming id (%s) on the answer and in every error body',
    async (id) => {
      for (const [path, options, status] of requests()) {
        const response = await send(testApp.baseUrl + path, {
          ...options,
          headers: { ...options.headers, 'x-request-id': id },
        });
        expect(response.status).toBe(status);
        expect(response.headers['x-request-id']).toBe(id);
        if (status >= 400) expect(response.body.error.request_id).toBe(id);
      }
    },
  );

  it.each([
    ['too long', 'x'.repeat(129)],
    ['a space', 'a b'],
    ['markup', '<script>'],
    ['non-ASCII', 'ïd'],
    ['a slash', 'a/b'],
    ['a newline-like escape', 'a%0Ab'],
    ['empty', ''],
    ['repeated', ['one', 'two']],
  ])('replaces an unusable incoming id (%s) with a new UUID', async (_name, id) => {
    for (const [path, options, status] of requests()) {
      const response = await send(testApp.baseUrl + path, {
        ...options,
        headers: { ...options.headers, 'x-request-id': id },
      });
      expect(response.status).toBe(status);
      expect(response.headers['x-request-id']).toMatch(UUID);
      if (status >= 400) expect(response.body.error.request_id).toBe(response.headers['x-request-id']);
    }
  });

  it('gives every request its own id when none is sent', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i += 1)
      ids.add(String((await send(`${testApp.baseUrl}/api/notes`)).headers['x-request-id']));
    expect(ids.size).toBe(5);
  });

  it('names the request on a malformed URL and on HTTP that does not parse, too', async () => {
    const badUrl = await send(`${testApp.baseUrl}/api/notes/%E0%A4%A`, { headers: { 'x-request-id': 'bad-url-1' } });
    expect(badUrl.status).toBe(400);
    expect(badUrl.headers['x-request-id']).toBe('bad-url-1');
    expect(badUrl.body.error.request_id).toBe('bad-url-1');

    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(testApp.baseUrl).port), '127.0.0.1', () =>
        socket.write('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    const headerId = /X-Request-Id: (\S+)/i.exec(raw)?.[1];
    expect(headerId).toMatch(UUID);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).error.request_id).toBe(headerId);
  });
});

describe('health probes', () => {
  let testApp: TestApp;
  afterEach(() => testApp?.close());

  it.each(['local', 's3'] as const)(
    'answers liveness and readiness without a token, on %s storage',
    async (storage) => {
      testApp = await startTestApp({ database: 'sqlite', storage });
      const live = await send(`${testApp.baseUrl}/api/health`, { headers: { authorization: 'Bearer not-a-token' } });
      expect(live).toMatchObject({ status: 200, body: { status: 'ok', info: {}, error: {} } });
      const ready = await send(`${testApp.baseUrl}/api/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({
        status: 'ok',
        info: { database: { status: 'up' }, storage: { status: 'up' } },
        error: {},
      });
    },
  );

  it('answers readiness on Postgres too', async () => {
    testApp = await startTestApp({ database: 'postgres', storage: 'local' });
    const ready = await send(`${testApp.baseUrl}/api/health/ready`);
    expect(ready.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' }, storage: { status: 'up' } } });
  });

  describe('with a store that never answers, or is not there', () => {
    it.each([['frozen'], ['refusing connections']])(
      'answers 503 naming the storage (%s) within its short deadline; liveness stays 200',
      async (name) => {
        const store = await storeThatGoesDown();
        try {
          testApp = await startTestApp({ database: 'sqlite', storage: 's3', env: { S3_ENDPOINT_URL: store.endpoint } });
          if (name === 'frozen') store.freeze();
          else await store.stop();
          const started = Date.now();
          const ready = await send(`${testApp.baseUrl}/api/health/ready`);
          // Generous: the check's own deadline is 800 ms; a hang would take the SDK's 10 s.
          expect(Date.now() - started).toBeLessThan(5_000);
          expect(ready.status).toBe(503);
          expect(ready.body).toMatchObject({
            status: 'error',
            info: { database: { status: 'up' } },
            error: { storage: { status: 'down', message: expect.any(String) } },
          });
          expect((await send(`${testApp.baseUrl}/api/health`)).status).toBe(200);
        } finally {
          await store.stop();
        }
      },
    );
  });

  it('answers 503 naming the database when its connections are refused', async () => {
    testApp = await startTestApp({ database: 'postgres', storage: 'local' });
    const name = new URL(testApp.env.DATABASE_URL).pathname.slice(1);
    const { withAdmin } = await import('./harness/pg-admin');
    await withAdmin(process.env.TEST_PG_URL!, async (admin) => {
      await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} WITH ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    });
    try {
      const ready = await send(`${testApp.baseUrl}/api/health/ready`);
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({
        status: 'error',
        info: { storage: { status: 'up' } },
        error: { database: { status: 'down' } },
      });
    } finally {
      await withAdmin(process.env.TEST_PG_URL!, (admin) =>
        admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} WITH ALLOW_CONNECTIONS true`),
      );
    }
  });

  it('stays outside the rate limits', async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local', env: { RATE_LIMIT_PER_MINUTE: '2' } });
    const phone = await testApp.phone('alice');
    const limited = [];
    for (let i = 0; i < 4; i += 1) limited.push((await phone.get('/api/notes')).status);
    expect(limited).toContain(429);
    for (let i = 0; i < 10; i += 1) {
      expect((await send(`${testApp.baseUrl}/api/health`)).status).toBe(200);
      expect((await send(`${testApp.baseUrl}/api/health/ready`)).status).toBe(200);
    }
  });

  it('fails readiness at once when a drain begins, while liveness holds and answers close their connections', async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    testApp.app.get(ShutdownState).beginDrain();
    const ready = await send(`${testApp.baseUrl}/api/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      status: 'error',
      error: { server: { status: 'down', message: 'shutting down' } },
    });
    expect(ready.headers.connection).toBe('close');
    const live = await send(`${testApp.baseUrl}/api/health`);
    expect(live.status).toBe(200);
    expect(live.headers.connection).toBe('close');
  });
});

describe('metrics', () => {
  let testApp: TestApp;
  let metricsUrl: string;
  afterEach(() => testApp?.close());

  async function scrape(): Promise<string> {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    return response.text();
  }

  function value(text: string, series: string): number {
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  }

  it.each(['local', 's3'] as const)(
    'counts requests by route template, clip transitions, storage calls, the outbox and janitor runs (%s)',
    async (storage) => {
      const metricsPort = await freePort();
      metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
      testApp = await startTestApp({ database: 'sqlite', storage, env: { METRICS_PORT: String(metricsPort) } });
      const phone = await testApp.phone('alice');
      const audio = wav(1);
      const created = await phone.post('/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 1000,
      });
      expect((await putBytes(created.body.upload.url, audio, created.body.upload.headers)).status).toBe(200);
      expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(200);
      for (let i = 0; i < 3; i += 1)
        expect((await phone.get(`/api/audio-clips/${created.body.clip.id}/playback`)).status).toBe(200);
      const notAudio = randomBytes(2000);
      const bogus = await phone.post('/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: notAudio.length,
        duration_ms: 1000,
      });
      await putBytes(bogus.body.upload.url, notAudio, bogus.body.upload.headers);
      expect((await phone.post(`/api/audio-clips/${bogus.body.clip.id}/complete`)).status).toBe(422);
      expect((await phone.get(`/api/audio-clips/${randomBytes(4).toString('hex')}`)).status).toBe(400);
      expect((await phone.delete(`/api/audio-clips/${created.body.clip.id}`)).status).toBe(204);
      await testApp.janitor.runOnce();

      const text = await scrape();
      const route = '/api/audio-clips/:clip_id/playback';
      expect(value(text, `http_request_duration_seconds_count{method="GET",route="${route}",status="200"}`)).toBe(3);
      expect(
        value(text, `http_request_duration_seconds_count{method="POST",route="/api/audio-clips",status="201"}`),
      ).toBe(2);
      // Labels hold templates, never ids.
      expect(text).not.toContain(created.body.clip.id);
      expect(value(text, 'audio_clip_transitions_total{from="new",to="pending"}')).toBe(2);
      expect(value(text, 'audio_clip_transitions_total{from="pending",to="ready"}')).toBe(1);
      expect(value(text, 'audio_clip_transitions_total{from="pending",to="failed"}')).toBe(1);
      expect(value(text, 'audio_clip_transitions_total{from="ready",to="deleted"}')).toBe(1);
      expect(
        value(text, `storage_operation_duration_seconds_count{driver="${storage}",operation="inspect"}`),
      ).toBeGreaterThan(0);
      expect(
        value(text, `storage_operation_duration_seconds_count{driver="${storage}",operation="presign_download"}`),
      ).toBe(3);
      expect(value(text, 'janitor_runs_total{outcome="success"}')).toBe(1);
      const backlog = await testApp.app.get(StorageDeletionsRepository).count();
      expect(value(text, 'deletion_outbox_backlog')).toBe(backlog);
      expect(text).toContain('process_cpu_seconds_total');
    },
  );

  it('counts storage errors by operation, and never serves metrics on the API port', async () => {
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const store = await storeThatGoesDown();
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 's3',
      env: { METRICS_PORT: String(metricsPort), S3_ENDPOINT_URL: store.endpoint },
    });
    await store.stop();
    const phone = await testApp.phone('alice');
    const created = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 100, duration_ms: 1000 });
    expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(503);
    const text = await scrape();
    expect(
      value(text, 'storage_operation_errors_total{driver="s3",operation="inspect",code="STORAGE_UNAVAILABLE"}'),
    ).toBe(1);

    for (const path of ['/metrics', '/api/metrics']) expect((await send(testApp.baseUrl + path)).status).toBe(404);
    expect((await send(`http://127.0.0.1:${metricsPort}/api/health`)).status).toBe(404);
    expect((await send(metricsUrl, { method: 'POST' })).status).toBe(404);
  });
});

describe('the janitor during a shutdown', () => {
  it('stops its pass after the entry in hand: nothing left claimed, nothing lost', async () => {
    const testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    const deletions = testApp.app.get(StorageDeletionsRepository);
    const past = new Date(Date.now() - 60_000);
    const keys = Array.from({ length: 400 }, (_, i) => `${testApp.keyPrefix}/uploads/gone-${i}.wav`);
    await deletions.enqueue(
      keys.map((storageKey) => ({ storageKey, deleteAfter: past })),
      past,
    );
    const pass = testApp.janitor.runOnce();
    const closing = testApp.close();
    const report = await pass;
    await closing;
    // The pass stopped early instead of working all 400 entries through the closing app.
    expect(report.deletedObjects).toBeLessThan(keys.length);
    expect(report.deletedObjects + report.remainingDeletions).toBe(keys.length);
  }, 60_000);
});
