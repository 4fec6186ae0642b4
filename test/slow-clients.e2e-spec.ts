import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { wav } from './support/audio';
import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

jest.setTimeout(60_000);

/** Short timeouts so the test runs in seconds; the defaults are in docs/configuration.md. */
/** Straight to the server: these answers are about time, and the check against openapi.json adds its own. */
const DIRECT = { validateResponses: false } as const;
const TIMEOUTS = {
  HTTP_HEADERS_TIMEOUT_SECONDS: '2',
  HTTP_REQUEST_TIMEOUT_SECONDS: '2',
  HTTP_IDLE_TIMEOUT_SECONDS: '3',
  HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '1',
};
/** Generous: the server closes at its timeout plus at most a second of checking; the machine is loaded. */
const MARGIN_MS = 6_000;

interface RawClient {
  socket: Socket;
  received: () => string;
  /** Milliseconds from opening until the server closed the connection. */
  closed: Promise<number>;
}

async function open(baseUrl: string): Promise<RawClient> {
  const { port } = new URL(baseUrl);
  const started = performance.now();
  const socket = connect(Number(port), '127.0.0.1');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - started)));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => text, closed };
}

/** Polls until `done` holds (or 5 s pass), returning the last value: the server cleans up just after closing. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const until = Date.now() + 5_000;
  let value = await read();
  while (!done(value) && Date.now() < until) {
    await sleep(100);
    value = await read();
  }
  return value;
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'still open'> {
  return Promise.race([promise, sleep(ms).then(() => 'still open' as const)]);
}

describe('slow clients cannot hold sockets', () => {
  let testApp: TestApp;
  let token: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local', env: TIMEOUTS });
    token = await testApp.tokenFor('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('drops 100 requests that sent their headers and 9 of 1,000 body bytes, once they are idle', async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => open(testApp.baseUrl)));
    for (const client of clients) {
      client.socket.write(
        `POST /api/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"title":`,
      );
    }
    const closedAfter = await Promise.all(clients.map((client) => within(client.closed, 3_000 + MARGIN_MS)));
    expect(closedAfter.filter((ms) => ms === 'still open')).toEqual([]);
    expect(await testApp.rowCounts()).toEqual({ notes: 0, audioClips: 0 });
    // The server is fine afterwards.
    expect((await new Phone(testApp.baseUrl, undefined, DIRECT).get('/api/health')).status).toBe(200);
  });

  it('drops a request whose body trickles in (never idle) once HTTP_REQUEST_TIMEOUT_SECONDS has passed', async () => {
    const client = await open(testApp.baseUrl);
    client.socket.write(
      `POST /api/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
    );
    const trickle = setInterval(() => client.socket.writable && client.socket.write(' '), 500);
    try {
      const closedAfter = await within(client.closed, 2_000 + MARGIN_MS);
      expect(closedAfter).not.toBe('still open');
      expect(closedAfter as number).toBeGreaterThanOrEqual(1_500);
    } finally {
      clearInterval(trickle);
    }
  });

  it('answers headers that trickle in with 408 and closes, once HTTP_HEADERS_TIMEOUT_SECONDS has passed', async () => {
    const client = await open(testApp.baseUrl);
    client.socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => client.socket.writable && client.socket.write('X-Slow: 1\r\n'), 300);
    try {
      expect(await within(client.closed, 2_000 + MARGIN_MS)).not.toBe('still open');
      expect(client.received()).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(trickle);
    }
  });

  it('closes a kept-alive connection that sends nothing more', async () => {
    const client = await open(testApp.baseUrl);
    client.socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await within(client.closed, 1_000 + MARGIN_MS)).not.toBe('still open');
    expect(client.received()).toMatch(/^HTTP\/1\.1 200/);
  });

  it('cuts a stalled upload to the local store after its idle time and removes the partial file', async () => {
    const phone = new Phone(testApp.baseUrl, token, DIRECT);
    const audio = wav(1);
    const created = (
      await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1000 })
    ).body;
    const url = new URL(created.upload.url);
    const client = await open(testApp.baseUrl);
    client.socket.write(
      `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: ${audio.length}\r\n\r\n`,
    );
    client.socket.write(audio.subarray(0, audio.length / 2));
    // The temporary file exists while the upload is under way…
    await sleep(500);
    expect((await testApp.localFiles()).some((file) => file.startsWith('.incoming/'))).toBe(true);

    expect(await within(client.closed, 3_000 + MARGIN_MS)).not.toBe('still open');
    // …and is gone once the stalled upload was cut off; nothing was stored.
    expect(
      await eventually(
        () => testApp.localFiles(),
        (files) => files.length === 0,
      ),
    ).toEqual([]);
    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.body.error.code).toBe('UPLOAD_NOT_FOUND');
  });

  it('lets a slow but moving upload finish, well past the idle and request timeouts', async () => {
    const phone = new Phone(testApp.baseUrl, token, DIRECT);
    const audio = wav(1);
    const created = (
      await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1000 })
    ).body;
    const url = new URL(created.upload.url);
    const client = await open(testApp.baseUrl);
    client.socket.write(
      `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: ${audio.length}\r\nConnection: close\r\n\r\n`,
    );
    const pieces = 14;
    const size = Math.ceil(audio.length / pieces);
    const started = performance.now();
    for (let piece = 0; piece < pieces; piece += 1) {
      client.socket.write(audio.subarray(piece * size, (piece + 1) * size));
      await sleep(400); // 5.6 s in all: over the 2 s request and 3 s idle timeouts, each gap far under the idle one
    }
    await client.closed;
    expect(performance.now() - started).toBeGreaterThan(3_000);
    expect(client.received()).toMatch(/^HTTP\/1\.1 200/);
    const completed = await phone.post(`/api/audio-clips/${created.clip.id}/complete`);
    expect(completed.body.status).toBe('ready');
  });
});
