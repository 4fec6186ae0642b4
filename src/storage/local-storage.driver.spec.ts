import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { AppError, type ErrorCode } from '../common/app-error';
import { type IncomingUpload, LOCAL_OBJECTS_ROUTE } from './local-object-server';
import { LocalStorageDriver } from './local-storage.driver';

const BASE_URL = 'http://localhost:3000';
const SECRET = 'local-storage-spec-secret-0123456789';
const KEY = 'dev/audio-clips/9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.m4a';
const BYTES = Buffer.from('0123456789');

let dir: string;
let driver: LocalStorageDriver;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-storage-driver-'));
  driver = await LocalStorageDriver.open({ directory: dir, signingSecret: SECRET }, BASE_URL);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface SignedUpload {
  url: URL;
  query: { expires?: string; type?: string; length?: string; signature?: string };
  headers: Record<string, string>;
  expiresAt: Date;
}

async function presignUpload(
  key = KEY,
  contentType = 'audio/m4a',
  contentLength = BYTES.length,
  expiresInSeconds = 900,
): Promise<SignedUpload> {
  const upload = await driver.presignUpload(key, { contentType, contentLength, expiresInSeconds });
  expect(upload.method).toBe('PUT');
  const url = new URL(upload.url);
  const param = (name: string) => url.searchParams.get(name) ?? undefined;
  return {
    url,
    query: { expires: param('expires'), type: param('type'), length: param('length'), signature: param('signature') },
    headers: upload.headers,
    expiresAt: upload.expiresAt,
  };
}

/** What the local storage controller hands the driver for a PUT to the signed URL. */
function incoming(
  signed: SignedUpload,
  body: Buffer | Readable,
  overrides: Partial<IncomingUpload> = {},
): IncomingUpload {
  return {
    body: Buffer.isBuffer(body) ? Readable.from([body]) : body,
    signature: signed.query.signature,
    expires: signed.query.expires,
    signedContentType: signed.query.type,
    signedContentLength: signed.query.length,
    contentType: signed.headers['Content-Type'],
    contentLength: signed.headers['Content-Length'],
    ...overrides,
  };
}

async function expectAppError(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe(code);
  return caught as AppError;
}

async function incomingEntries(): Promise<string[]> {
  return readdir(join(dir, '.incoming'));
}

/** Every file under the root except the bookkeeping folder. */
async function storedFiles(): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .filter((path) => !path.startsWith('.incoming'))
    .sort();
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

async function upload(key = KEY, bytes = BYTES, contentType = 'audio/m4a'): Promise<void> {
  const signed = await presignUpload(key, contentType, bytes.length);
  await driver.server.receiveUpload(key, incoming(signed, bytes));
}

async function downloadQuery(key = KEY, expiresInSeconds = 900): Promise<{ expires?: string; signature?: string }> {
  const download = await driver.presignDownload(key, expiresInSeconds);
  const url = new URL(download.url);
  expect(url.pathname).toBe(`${LOCAL_OBJECTS_ROUTE}/${key}`);
  return signedQueryOf(url);
}

/** The query of a signed URL, without checking its path (which an unsafe key may not survive). */
function signedQueryOf(url: URL): { expires?: string; signature?: string } {
  return {
    expires: url.searchParams.get('expires') ?? undefined,
    signature: url.searchParams.get('signature') ?? undefined,
  };
}

/** The local store's ETag is the hex MD5 of the bytes, as S3's is for a single-part upload. */
function md5Hex(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

describe('LocalStorageDriver.presignUpload', () => {
  it('points at the local object route with the signed type, length and expiry', async () => {
    const before = Date.now();
    const signed = await presignUpload(KEY, 'audio/m4a', 123456, 600);
    expect(`${signed.url.origin}${signed.url.pathname}`).toBe(`${BASE_URL}/api/storage/local/${KEY}`);
    expect(signed.query.type).toBe('audio/m4a');
    expect(signed.query.length).toBe('123456');
    expect(signed.query.signature).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Number(signed.query.expires) * 1000).toBe(signed.expiresAt.getTime());
    expect(signed.expiresAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(signed.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(signed.headers).toEqual({ 'Content-Type': 'audio/m4a', 'Content-Length': '123456' });
  });

  it('keeps parameters of the type in the signed URL', async () => {
    const signed = await presignUpload('dev/audio-clips/x.webm', 'audio/webm;codecs=opus', 3);
    expect(signed.query.type).toBe('audio/webm;codecs=opus');
    expect(signed.headers['Content-Type']).toBe('audio/webm;codecs=opus');
  });
});

describe('LocalStorageDriver.receiveUpload', () => {
  it('stores exactly the signed bytes, and inspect reports their size and type', async () => {
    const signed = await presignUpload();
    await driver.server.receiveUpload(KEY, incoming(signed, BYTES));
    expect(await driver.inspect(KEY)).toEqual({ size: BYTES.length, contentType: 'audio/m4a', etag: md5Hex(BYTES) });
    expect(await readFile(join(dir, ...KEY.split('/')))).toEqual(BYTES);
    expect(await incomingEntries()).toEqual([]);
  });

  it('accepts the bytes in many small chunks', async () => {
    const signed = await presignUpload();
    await driver.server.receiveUpload(
      KEY,
      incoming(signed, Readable.from([...BYTES].map((byte) => Buffer.from([byte])))),
    );
    expect(await driver.inspect(KEY)).toEqual({ size: BYTES.length, contentType: 'audio/m4a', etag: md5Hex(BYTES) });
  });

  it('replaces an earlier upload of the same key', async () => {
    await upload(KEY, Buffer.from('first upload!'));
    await upload(KEY, BYTES);
    expect(await driver.inspect(KEY)).toEqual({ size: BYTES.length, contentType: 'audio/m4a', etag: md5Hex(BYTES) });
    expect(await readFile(join(dir, ...KEY.split('/')))).toEqual(BYTES);
  });

  interface Rejected {
    name: string;
    code: ErrorCode;
    make: () => Promise<IncomingUpload>;
  }
  const rejected: Rejected[] = [
    {
      name: 'a wrong Content-Type',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { contentType: 'audio/webm' }),
    },
    {
      name: 'no Content-Type',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { contentType: undefined }),
    },
    {
      // As S3 does: the signed value exactly (test/upload-content-type.e2e-spec.ts runs the same table on both stores).
      name: 'the signed type in another case and spacing',
      code: 'SIGNED_URL_INVALID',
      make: async () =>
        incoming(await presignUpload(KEY, 'audio/webm;codecs=opus', BYTES.length), BYTES, {
          contentType: 'Audio/WebM; codecs=opus',
        }),
    },
    {
      name: 'a Content-Type with extra parameters',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { contentType: 'audio/m4a;codecs=mp4a' }),
    },
    {
      name: 'a wrong Content-Length header',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { contentLength: String(BYTES.length + 1) }),
    },
    {
      name: 'no Content-Length header',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { contentLength: undefined }),
    },
    {
      name: 'a garbage Content-Length header',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { contentLength: 'ten' }),
    },
    {
      name: 'too few bytes for the declared length',
      code: 'UPLOAD_INCOMPLETE',
      make: async () => incoming(await presignUpload(), BYTES.subarray(0, BYTES.length - 3)),
    },
    {
      name: 'an empty body',
      code: 'UPLOAD_INCOMPLETE',
      make: async () => incoming(await presignUpload(), Buffer.alloc(0)),
    },
    {
      name: 'too many bytes for the declared length',
      code: 'UPLOAD_INCOMPLETE',
      make: async () => incoming(await presignUpload(), Buffer.concat([BYTES, Buffer.from('extra')])),
    },
    {
      name: 'too many bytes arriving over several chunks',
      code: 'UPLOAD_INCOMPLETE',
      make: async () =>
        incoming(await presignUpload(), Readable.from([BYTES.subarray(0, 6), BYTES.subarray(6), Buffer.from('!')])),
    },
    {
      name: 'a body that breaks off with an error',
      code: 'UPLOAD_INCOMPLETE',
      make: async () =>
        incoming(
          await presignUpload(),
          new Readable({
            read() {
              this.push(BYTES.subarray(0, 4));
              this.destroy(new Error('socket hang up'));
            },
          }),
        ),
    },
    {
      name: 'an expired URL',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(KEY, 'audio/m4a', BYTES.length, -1), BYTES),
    },
    {
      name: 'a URL expiring now',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(KEY, 'audio/m4a', BYTES.length, 0), BYTES),
    },
    {
      name: 'a missing signature',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { signature: undefined }),
    },
    {
      name: 'a tampered signature',
      code: 'SIGNED_URL_INVALID',
      make: async () => {
        const signed = await presignUpload();
        // One character changed, whatever the signature starts with (1 in 64 starts with "x").
        const signature = signed.query.signature ?? '';
        return incoming(signed, BYTES, { signature: `${signature.startsWith('x') ? 'y' : 'x'}${signature.slice(1)}` });
      },
    },
    {
      name: 'a missing expires parameter',
      code: 'SIGNED_URL_INVALID',
      make: async () => incoming(await presignUpload(), BYTES, { expires: undefined }),
    },
    {
      name: 'an extended expires parameter',
      code: 'SIGNED_URL_INVALID',
      make: async () => {
        const signed = await presignUpload();
        return incoming(signed, BYTES, { expires: String(Number(signed.query.expires) + 3600) });
      },
    },
    {
      name: 'a length parameter changed together with the header and body',
      code: 'SIGNED_URL_INVALID',
      make: async () => {
        const signed = await presignUpload();
        const more = Buffer.concat([BYTES, BYTES]);
        return incoming(signed, more, { signedContentLength: String(more.length), contentLength: String(more.length) });
      },
    },
    {
      name: 'a type parameter changed together with the header',
      code: 'SIGNED_URL_INVALID',
      make: async () =>
        incoming(await presignUpload(), BYTES, { signedContentType: 'audio/webm', contentType: 'audio/webm' }),
    },
    {
      name: 'a download signature used to upload',
      code: 'SIGNED_URL_INVALID',
      make: async () => {
        const signed = await presignUpload();
        const get = await downloadQuery();
        return incoming(signed, BYTES, { signature: get.signature, expires: get.expires });
      },
    },
  ];

  it.each(rejected)('rejects $name with $code and leaves no object and nothing incoming', async ({ code, make }) => {
    const upload = await make();
    await expectAppError(driver.server.receiveUpload(KEY, upload), code);
    expect(await driver.inspect(KEY)).toBeNull();
    expect(await incomingEntries()).toEqual([]);
    expect(await storedFiles()).toEqual([]);
  });

  it('rejects a URL signed for another key, writing nothing under either key', async () => {
    const signed = await presignUpload('dev/audio-clips/other.m4a');
    await expectAppError(driver.server.receiveUpload(KEY, incoming(signed, BYTES)), 'SIGNED_URL_INVALID');
    expect(await driver.inspect(KEY)).toBeNull();
    expect(await driver.inspect('dev/audio-clips/other.m4a')).toBeNull();
    expect(await incomingEntries()).toEqual([]);
  });

  it('rejects a URL signed by a driver with another secret', async () => {
    const other = await LocalStorageDriver.open(
      { directory: dir, signingSecret: 'another-secret-another-secret-0123' },
      BASE_URL,
    );
    const upload = await other.presignUpload(KEY, {
      contentType: 'audio/m4a',
      contentLength: BYTES.length,
      expiresInSeconds: 900,
    });
    const url = new URL(upload.url);
    await expectAppError(
      driver.server.receiveUpload(KEY, {
        body: Readable.from([BYTES]),
        signature: url.searchParams.get('signature') ?? undefined,
        expires: url.searchParams.get('expires') ?? undefined,
        signedContentType: 'audio/m4a',
        signedContentLength: String(BYTES.length),
        contentType: 'audio/m4a',
        contentLength: String(BYTES.length),
      }),
      'SIGNED_URL_INVALID',
    );
    expect(await driver.inspect(KEY)).toBeNull();
  });

  it.each<[string, Buffer, ErrorCode]>([
    ['too few bytes', BYTES.subarray(0, 5), 'UPLOAD_INCOMPLETE'],
    ['too many bytes', Buffer.concat([BYTES, BYTES]), 'UPLOAD_INCOMPLETE'],
  ])('leaves an earlier complete upload intact when a new upload has %s', async (_name, body, code) => {
    const original = Buffer.from('the original');
    await upload(KEY, original);
    const signed = await presignUpload(KEY, 'audio/m4a', BYTES.length);
    await expectAppError(driver.server.receiveUpload(KEY, incoming(signed, body)), code);
    expect(await driver.inspect(KEY)).toEqual({
      size: original.length,
      contentType: 'audio/m4a',
      etag: md5Hex(original),
    });
    expect(await readFile(join(dir, ...KEY.split('/')))).toEqual(original);
    expect(await incomingEntries()).toEqual([]);
  });
});

describe('LocalStorageDriver signing secret', () => {
  it('without a configured secret, keeps one beside the objects so a restarted driver accepts old URLs', async () => {
    const ownDir = await mkdtemp(join(tmpdir(), 'local-storage-secret-'));
    try {
      const first = await LocalStorageDriver.open({ directory: ownDir }, BASE_URL);
      const upload = await first.presignUpload(KEY, {
        contentType: 'audio/m4a',
        contentLength: BYTES.length,
        expiresInSeconds: 900,
      });
      const second = await LocalStorageDriver.open({ directory: ownDir }, BASE_URL);
      const url = new URL(upload.url);
      await second.server.receiveUpload(KEY, {
        body: Readable.from([BYTES]),
        signature: url.searchParams.get('signature') ?? undefined,
        expires: url.searchParams.get('expires') ?? undefined,
        signedContentType: url.searchParams.get('type') ?? undefined,
        signedContentLength: url.searchParams.get('length') ?? undefined,
        contentType: 'audio/m4a',
        contentLength: String(BYTES.length),
      });
      expect(await first.inspect(KEY)).toEqual({ size: BYTES.length, contentType: 'audio/m4a', etag: md5Hex(BYTES) });
    } finally {
      await rm(ownDir, { recursive: true, force: true });
    }
  });
});

describe('LocalStorageDriver.openDownload', () => {
  beforeEach(async () => {
    await upload();
  });

  it('serves the whole object without a Range', async () => {
    const download = await driver.server.openDownload(KEY, await downloadQuery(), undefined);
    expect(download.status).toBe(200);
    expect(download.headers).toMatchObject({
      'content-type': 'audio/m4a',
      'content-length': '10',
      'accept-ranges': 'bytes',
    });
    expect(download.headers['content-range']).toBeUndefined();
    expect(await readAll(download.body)).toEqual(BYTES);
  });

  it.each([
    ['bytes=0-1', 'bytes 0-1/10', '01'],
    ['bytes=2-', 'bytes 2-9/10', '23456789'],
    ['bytes=-2', 'bytes 8-9/10', '89'],
    ['bytes=-20', 'bytes 0-9/10', '0123456789'],
    ['bytes=5-100', 'bytes 5-9/10', '56789'],
    ['bytes=9-9', 'bytes 9-9/10', '9'],
    ['bytes=3-3', 'bytes 3-3/10', '3'],
  ])('serves Range %s as 206 %s', async (range, contentRange, body) => {
    const download = await driver.server.openDownload(KEY, await downloadQuery(), range);
    expect(download.status).toBe(206);
    expect(download.headers['content-range']).toBe(contentRange);
    expect(download.headers['content-length']).toBe(String(body.length));
    expect(download.headers['content-type']).toBe('audio/m4a');
    expect((await readAll(download.body)).toString()).toBe(body);
  });

  // RFC 9110: a last position before the first makes the Range invalid, and an invalid Range is ignored.
  it.each(['bytes=0-1,4-5', 'items=0-1', 'bytes=x-y', 'bytes=-', 'bytes 0-1', 'bytes=5-2', 'bytes=20-10'])(
    'ignores Range %j and serves the whole object',
    async (range) => {
      const download = await driver.server.openDownload(KEY, await downloadQuery(), range);
      expect(download.status).toBe(200);
      expect(download.headers['content-length']).toBe('10');
      expect(await readAll(download.body)).toEqual(BYTES);
    },
  );

  it.each(['bytes=10-', 'bytes=10-20', 'bytes=100-', 'bytes=-0', 'bytes=10-10'])(
    'answers Range %s with RANGE_NOT_SATISFIABLE and content-range bytes */10',
    async (range) => {
      const error = await expectAppError(
        driver.server.openDownload(KEY, await downloadQuery(), range),
        'RANGE_NOT_SATISFIABLE',
      );
      expect(error.status).toBe(416);
      expect(error.headers).toEqual({ 'content-range': 'bytes */10' });
    },
  );

  it.each<[string, () => Promise<{ expires?: string; signature?: string }>]>([
    ['no signature', async () => ({ ...(await downloadQuery()), signature: undefined })],
    ['a tampered signature', async () => ({ ...(await downloadQuery()), signature: 'AAAA' })],
    ['an expired URL', () => downloadQuery(KEY, -1)],
    ['a URL for another key', () => downloadQuery('dev/audio-clips/other.m4a')],
    [
      'an extended expiry',
      async () => {
        const query = await downloadQuery();
        return { ...query, expires: String(Number(query.expires) + 60) };
      },
    ],
    [
      'an upload URL',
      async () => {
        const signed = await presignUpload();
        return { expires: signed.query.expires, signature: signed.query.signature };
      },
    ],
  ])('refuses a download with %s', async (_name, makeQuery) => {
    await expectAppError(driver.server.openDownload(KEY, await makeQuery(), undefined), 'SIGNED_URL_INVALID');
  });

  it('answers NOT_FOUND for a correctly signed key that holds nothing', async () => {
    const key = 'dev/audio-clips/missing.m4a';
    await expectAppError(driver.server.openDownload(key, await downloadQuery(key), undefined), 'NOT_FOUND');
  });
});

describe('LocalStorageDriver.inspect', () => {
  it('answers null for a key never uploaded', async () => {
    expect(await driver.inspect(KEY)).toBeNull();
    expect(await driver.inspect('dev')).toBeNull();
  });

  it('answers null when the bytes and the metadata disagree', async () => {
    await upload();
    await writeFile(join(dir, ...KEY.split('/')), Buffer.from('short'));
    expect(await driver.inspect(KEY)).toBeNull();
  });
});

describe('LocalStorageDriver.delete', () => {
  it('deletes an object and its metadata', async () => {
    await upload();
    await driver.delete(KEY);
    expect(await driver.inspect(KEY)).toBeNull();
    expect(await storedFiles()).toEqual([]);
  });

  it('is idempotent', async () => {
    await upload();
    await driver.delete(KEY);
    await expect(driver.delete(KEY)).resolves.toBeUndefined();
    await expect(driver.delete('dev/audio-clips/never-uploaded.m4a')).resolves.toBeUndefined();
    expect(await driver.inspect(KEY)).toBeNull();
  });

  it('deletes only its own key', async () => {
    await upload(KEY);
    await upload('dev/audio-clips/keep.m4a');
    await driver.delete(KEY);
    expect(await driver.inspect('dev/audio-clips/keep.m4a')).toEqual({
      size: BYTES.length,
      contentType: 'audio/m4a',
      etag: md5Hex(BYTES),
    });
  });
});

describe('LocalStorageDriver key safety', () => {
  const UNSAFE_KEYS = [
    '..',
    '../outside',
    '../../etc/passwd',
    'dev/../../outside',
    'dev/..',
    'dev/./x',
    '.',
    './x',
    '/abs/path',
    'dev//x',
    'dev/x/',
    '',
    '.incoming/x',
    '.signing-key',
    'dev/audio-clips/x.m4a.meta.json',
    'dev\\..\\..\\outside',
    'dev/x y',
    'dev/%2e%2e/x',
  ];

  it.each(UNSAFE_KEYS)('refuses to inspect %j', async (key) => {
    await expectAppError(driver.inspect(key), 'NOT_FOUND');
  });

  it.each(UNSAFE_KEYS)('refuses to delete %j', async (key) => {
    await expectAppError(driver.delete(key), 'NOT_FOUND');
  });

  it.each(UNSAFE_KEYS)('refuses a correctly signed upload to %j and writes nothing anywhere', async (key) => {
    const signed = await presignUpload(key);
    await expect(driver.server.receiveUpload(key, incoming(signed, BYTES))).rejects.toBeInstanceOf(AppError);
    expect(await storedFiles()).toEqual([]);
    expect(await incomingEntries()).toEqual([]);
    expect(existsSync(resolve(dir, '..', 'outside'))).toBe(false);
  });

  it.each(UNSAFE_KEYS)('refuses a correctly signed download of %j', async (key) => {
    const query = signedQueryOf(new URL((await driver.presignDownload(key, 900)).url));
    await expect(driver.server.openDownload(key, query, undefined)).rejects.toBeInstanceOf(AppError);
  });

  it('does not serve the signing key file even with a valid signature', async () => {
    const ownDir = await mkdtemp(join(tmpdir(), 'local-storage-secret-'));
    try {
      const own = await LocalStorageDriver.open({ directory: ownDir }, BASE_URL);
      const download = await own.presignDownload('.signing-key', 900);
      const url = new URL(download.url);
      const query = {
        expires: url.searchParams.get('expires') ?? undefined,
        signature: url.searchParams.get('signature') ?? undefined,
      };
      await expectAppError(own.server.openDownload('.signing-key', query, undefined), 'NOT_FOUND');
    } finally {
      await rm(ownDir, { recursive: true, force: true });
    }
  });
});
