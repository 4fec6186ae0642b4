import { Logger } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { S3Config } from '../config/app-config';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { clearCredentialCache } from '@smithy/signature-v4';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3Client, s3ClientOptions, S3StorageDriver } from './s3-storage.driver';
import { CapturedLogs } from '../../test/support/captured-logs';

const KEY = 'dev/audio-clips/9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.m4a';

/** Port 9 (discard) on loopback refuses connections: presigning needs no network, requests fail fast. */
const UNREACHABLE: S3Config = {
  bucket: 'b',
  region: 'us-east-1',
  endpointUrl: 'http://127.0.0.1:9',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
};

function amzDate(url: URL): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(url.searchParams.get('X-Amz-Date') ?? '');
  expect(match).not.toBeNull();
  const [, y, mo, d, h, mi, s] = (match ?? []).map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

function queryNames(url: URL): string[] {
  return [...url.searchParams.keys()];
}

describe('S3StorageDriver presigning', () => {
  const drivers: S3StorageDriver[] = [];
  const open = (config: S3Config = UNREACHABLE) => {
    const driver = new S3StorageDriver(createS3Client(config), config.bucket, config);
    drivers.push(driver);
    return driver;
  };
  afterAll(() => drivers.forEach((driver) => driver.close()));

  describe.each([
    ['audio/m4a', 123456, 900],
    ['audio/webm;codecs=opus', 1, 60],
    ['audio/mpeg', 104857600, 604800],
  ])('presignUpload(%s, %d bytes, %d s)', (contentType, contentLength, expiresInSeconds) => {
    let upload: Awaited<ReturnType<S3StorageDriver['presignUpload']>>;
    let url: URL;
    const before = Date.now();

    beforeAll(async () => {
      upload = await open().presignUpload(KEY, { contentType, contentLength, expiresInSeconds });
      url = new URL(upload.url);
    });

    it('is a path-style URL on the configured endpoint', () => {
      expect(url.origin).toBe('http://127.0.0.1:9');
      expect(url.pathname).toBe(`/b/${KEY}`);
    });

    it('signs content-length, content-type and host', () => {
      const signed = (url.searchParams.get('X-Amz-SignedHeaders') ?? '').split(';');
      expect(signed).toEqual(expect.arrayContaining(['content-length', 'content-type', 'host']));
    });

    it('carries no checksum parameters a plain phone PUT could not satisfy', () => {
      for (const name of queryNames(url)) {
        expect(name.toLowerCase().startsWith('x-amz-checksum')).toBe(false);
        expect(name.toLowerCase()).not.toBe('x-amz-sdk-checksum-algorithm');
      }
      const signed = (url.searchParams.get('X-Amz-SignedHeaders') ?? '').toLowerCase();
      expect(signed).not.toContain('checksum');
    });

    it('is a SigV4 query-signed URL for the configured credentials', () => {
      expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
      expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^AKIDEXAMPLE\/\d{8}\/us-east-1\/s3\/aws4_request$/);
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    });

    it('expires after exactly the requested seconds', () => {
      expect(url.searchParams.get('X-Amz-Expires')).toBe(String(expiresInSeconds));
    });

    it('reports expiresAt as X-Amz-Date plus the expiry', () => {
      expect(upload.expiresAt.getTime()).toBe(amzDate(url) + expiresInSeconds * 1000);
      expect(amzDate(url)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
      expect(amzDate(url)).toBeLessThanOrEqual(Date.now());
    });

    it('tells the client to send exactly the signed Content-Type and Content-Length', () => {
      expect(upload.method).toBe('PUT');
      expect(upload.headers).toEqual({ 'Content-Type': contentType, 'Content-Length': String(contentLength) });
    });
  });

  it('uses virtual-hosted style on AWS itself (no endpoint)', async () => {
    const upload = await open({ ...UNREACHABLE, bucket: 'advanced-notes-audio', endpointUrl: undefined }).presignUpload(
      KEY,
      {
        contentType: 'audio/m4a',
        contentLength: 10,
        expiresInSeconds: 900,
      },
    );
    const url = new URL(upload.url);
    expect(url.hostname).toBe('advanced-notes-audio.s3.us-east-1.amazonaws.com');
    expect(url.pathname).toBe(`/${KEY}`);
  });

  it('signs a session token into the URL when one is configured', async () => {
    const upload = await open({
      ...UNREACHABLE,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'tok' },
    }).presignUpload(KEY, { contentType: 'audio/m4a', contentLength: 10, expiresInSeconds: 900 });
    expect(new URL(upload.url).searchParams.get('X-Amz-Security-Token')).toBe('tok');
  });

  it('gives different signatures for different lengths of the same key', async () => {
    const driver = open();
    const a = new URL(
      (await driver.presignUpload(KEY, { contentType: 'audio/m4a', contentLength: 10, expiresInSeconds: 900 })).url,
    );
    const b = new URL(
      (await driver.presignUpload(KEY, { contentType: 'audio/m4a', contentLength: 11, expiresInSeconds: 900 })).url,
    );
    const c = new URL(
      (await driver.presignUpload(KEY, { contentType: 'audio/webm', contentLength: 10, expiresInSeconds: 900 })).url,
    );
    expect(new Set([a, b, c].map((url) => url.searchParams.get('X-Amz-Signature'))).size).toBe(3);
  });

  it('signs Content-MD5 as a header (not hoisted into the query) when the phone declared a digest', async () => {
    const md5 = 'XUFAKrxLKna5cZ2REBfFkg==';
    const upload = await open().presignUpload(KEY, {
      contentType: 'audio/m4a',
      contentLength: 10,
      expiresInSeconds: 900,
      contentMd5: md5,
    });
    const url = new URL(upload.url);
    expect((url.searchParams.get('X-Amz-SignedHeaders') ?? '').split(';')).toEqual([
      'content-length',
      'content-md5',
      'content-type',
      'host',
    ]);
    expect(queryNames(url).some((name) => name.toLowerCase() === 'content-md5')).toBe(false);
    expect(upload.headers).toEqual({ 'Content-Type': 'audio/m4a', 'Content-Length': '10', 'Content-MD5': md5 });
    const without = new URL(
      (await open().presignUpload(KEY, { contentType: 'audio/m4a', contentLength: 10, expiresInSeconds: 900 })).url,
    );
    expect(without.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
  });

  describe('equal to getSignedUrl on a client with the SDK’s own SHA-256 (not the key-caching one the driver runs on)', () => {
    const signingDate = new Date('2026-11-27T10:00:00Z');
    const AWS = { ...UNREACHABLE, bucket: 'advanced-notes-audio', endpointUrl: undefined };
    /** [name, config, client settings beyond the app's, environment while the clients are made] */
    const cases: [string, S3Config, Partial<S3ClientConfig>, Record<string, string>][] = [
      ['a path-style endpoint', UNREACHABLE, {}, {}],
      ['an endpoint with a base path', { ...UNREACHABLE, endpointUrl: 'http://127.0.0.1:9/storage' }, {}, {}],
      ['AWS itself', AWS, {}, {}],
      ['AWS itself, a dotted bucket', { ...AWS, bucket: 'audio.notes.example', region: 'eu-west-1' }, {}, {}],
      ['AWS China', { ...AWS, region: 'cn-north-1' }, {}, {}],
      ['AWS GovCloud with FIPS', { ...AWS, region: 'us-gov-west-1' }, { useFipsEndpoint: true }, {}],
      ['AWS with FIPS', AWS, { useFipsEndpoint: true }, {}],
      ['AWS dual-stack', { ...AWS, region: 'eu-central-1' }, { useDualstackEndpoint: true }, {}],
      ['the aws-global region', { ...AWS, region: 'aws-global' }, {}, {}],
      ['AWS_ENDPOINT_URL_S3 from the environment', AWS, {}, { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9/from-env' }],
      [
        'a session token',
        {
          ...UNREACHABLE,
          credentials: {
            accessKeyId: 'AKIDEXAMPLE',
            secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
            sessionToken: 'tok/en+=',
          },
        },
        {},
        {},
      ],
    ];
    const clients: S3Client[] = [];
    afterAll(() => clients.forEach((client) => client.destroy()));

    /** The driver as the app builds it, and a client with the same settings on the SDK's default digest. */
    function pair(config: S3Config, settings: Partial<S3ClientConfig>, env: Record<string, string>) {
      const saved = Object.keys(env).map((name) => [name, process.env[name]] as const);
      Object.assign(process.env, env);
      try {
        const { sha256: _keyCaching, ...sdkDefaults } = s3ClientOptions(config);
        const appClient = new S3Client({ ...s3ClientOptions(config), ...settings });
        const sdkClient = new S3Client({ ...sdkDefaults, ...settings });
        clients.push(appClient, sdkClient);
        return { driver: new S3StorageDriver(appClient, config.bucket, config), sdkClient };
      } finally {
        for (const [name, value] of saved) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    }

    // Only Date is faked, so that both sides sign at exactly the same instant; timers and promises run as usual.
    beforeEach(() =>
      jest.useFakeTimers({
        now: signingDate,
        doNotFake: [
          'nextTick',
          'setImmediate',
          'clearImmediate',
          'setInterval',
          'clearInterval',
          'setTimeout',
          'clearTimeout',
          'queueMicrotask',
          'hrtime',
          'performance',
        ],
      }),
    );
    afterEach(() => jest.useRealTimers());

    // The SDK caches derived signing keys process-wide: cleared before each side signs, each derives its own.
    const fresh = async <T>(sign: () => Promise<T>): Promise<T> => {
      clearCredentialCache();
      return sign();
    };

    it.each(cases)('playback URLs are identical, byte for byte, on %s', async (_name, config, settings, env) => {
      const { driver, sdkClient } = pair(config, settings, env);
      for (const [key, seconds] of [
        [KEY, 900],
        ['prod/audio-clips/0b8c8f2e-1d5a-4f53-9d0e-1b2c3d4e5f60.webm', 60],
        ['team-a/notes/audio-clips/x.m4a', 604800],
        ['prod/audio-clips/ünïcode café.m4a', 900],
        ["odd/it's (really) *odd*!.m4a", 900],
      ] as const) {
        const fast = await fresh(() => driver.presignDownload(key, seconds, signingDate));
        expect(fast.url).toBe(
          await fresh(() =>
            getSignedUrl(sdkClient, new GetObjectCommand({ Bucket: config.bucket, Key: key }), {
              expiresIn: seconds,
              signingDate,
            }),
          ),
        );
      }
    });

    it.each(cases)(
      'upload URLs are identical, byte for byte, on %s (with and without Content-MD5)',
      async (_name, config, settings, env) => {
        const { driver, sdkClient } = pair(config, settings, env);
        for (const [key, contentMd5] of [
          [KEY, undefined],
          [KEY, 'XUFAKrxLKna5cZ2REBfFkg=='],
          ['prod/uploads/ünïcode café (1).m4a', undefined],
        ] as const) {
          const upload = await fresh(() =>
            driver.presignUpload(key, {
              contentType: 'audio/webm;codecs=opus',
              contentLength: 123456,
              expiresInSeconds: 900,
              contentMd5,
            }),
          );
          const command = new PutObjectCommand({
            Bucket: config.bucket,
            Key: key,
            ContentType: 'audio/webm;codecs=opus',
            ContentLength: 123456,
            ContentMD5: contentMd5,
          });
          const signableHeaders = new Set(['content-type', 'content-length', ...(contentMd5 ? ['content-md5'] : [])]);
          expect(upload.url).toBe(
            await fresh(() => getSignedUrl(sdkClient, command, { expiresIn: 900, signableHeaders })),
          );
          expect(new URL(upload.url).searchParams.get('X-Amz-Date')).toBe('20261127T100000Z');
        }
      },
    );

    it.each(cases)('part upload URLs are identical, byte for byte, on %s', async (_name, config, settings, env) => {
      const { driver, sdkClient } = pair(config, settings, env);
      for (const [key, uploadId, partNumber, contentLength] of [
        [KEY, 'VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA', 1, 5242880],
        ['prod/uploads/ünïcode café (1).m4a', '2~abc/def+ghi=', 10000, 17],
      ] as const) {
        const part = await fresh(() =>
          driver.presignUploadPart(key, uploadId, partNumber, { contentLength, expiresInSeconds: 900 }, signingDate),
        );
        const command = new UploadPartCommand({
          Bucket: config.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          ContentLength: contentLength,
        });
        expect(part.url).toBe(
          await fresh(() =>
            getSignedUrl(sdkClient, command, {
              expiresIn: 900,
              signingDate,
              signableHeaders: new Set(['content-length']),
            }),
          ),
        );
        expect(part.headers).toEqual({ 'Content-Length': String(contentLength) });
        expect(part.expiresAt.getTime()).toBe(signingDate.getTime() + 900_000);
      }
    });
  });

  it('refuses at open a bucket whose endpoint needs signing it cannot do (an S3 Express directory bucket)', async () => {
    const config = { ...UNREACHABLE, bucket: 'audio--usw2-az1--x-s3', region: 'us-west-2', endpointUrl: undefined };
    const client = createS3Client(config);
    await expect(S3StorageDriver.open(client, config.bucket, config)).rejects.toThrow(/sigv4-s3express signing/);
    client.destroy();
    const usable = await S3StorageDriver.open(createS3Client(UNREACHABLE), UNREACHABLE.bucket, UNREACHABLE);
    drivers.push(usable);
    expect(new URL((await usable.presignDownload(KEY, 60)).url).pathname).toBe(`/b/${KEY}`);
  });

  it.each([60, 900, 604800])(
    'presignDownload(%d s) is a path-style GET URL with X-Amz-Expires and a matching expiresAt',
    async (seconds) => {
      const download = await open().presignDownload(KEY, seconds);
      const url = new URL(download.url);
      expect(url.origin).toBe('http://127.0.0.1:9');
      expect(url.pathname).toBe(`/b/${KEY}`);
      expect(url.searchParams.get('X-Amz-Expires')).toBe(String(seconds));
      expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
      expect(queryNames(url).some((name) => name.toLowerCase().startsWith('x-amz-checksum'))).toBe(false);
      expect(download.expiresAt.getTime()).toBe(amzDate(url) + seconds * 1000);
    },
  );
});

describe('S3StorageDriver against an unreachable store', () => {
  let driver: S3StorageDriver;
  let logs: CapturedLogs;

  beforeAll(() => {
    // The driver logs each outage: asserted on below, not printed.
    logs = new CapturedLogs();
    Logger.overrideLogger(logs);
    driver = new S3StorageDriver(createS3Client(UNREACHABLE), UNREACHABLE.bucket, UNREACHABLE);
  });
  afterAll(() => {
    driver.close();
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);
  });

  it.each<[string, () => Promise<unknown>]>([
    ['inspect', () => driver.inspect(KEY)],
    ['delete', () => driver.delete(KEY)],
  ])(
    '%s rejects with STORAGE_UNAVAILABLE (503, Retry-After) quickly',
    async (operation, call) => {
      const started = Date.now();
      let caught: unknown;
      try {
        await call();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect((caught as AppError).code).toBe('STORAGE_UNAVAILABLE');
      expect((caught as AppError).status).toBe(503);
      expect((caught as AppError).headers).toEqual({ 'retry-after': '5' });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(logs.lines('error').at(-1)).toMatch(new RegExp(`^S3StorageDriver: S3 ${operation} failed: `));
    },
    15_000,
  );
});

/**
 * What the move concludes from the store's answers. The copy's precondition and the bytes are the
 * store's business (tested end to end on s3rver and RGW, test/integrity.e2e-spec.ts); these are the
 * answers no store here gives on demand: SSE-KMS and SSE-C ETags, a destination gone or half-written
 * by a concurrent completion when it is checked.
 */
describe('S3StorageDriver.move checks what the copy put at the destination', () => {
  const FROM = 'p/uploads/a.wav';
  const TO = 'p/audio-clips/a.wav';
  const ETAG = '"9e107d9d372bb6826bd81d3542a419d6"';
  const SIZE = 8044;
  const AS_CHECKED = { ETag: ETAG, ContentLength: SIZE };
  const NOT_FOUND = new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 } });
  type Head = Record<string, unknown> | Error;
  let client: S3Client;
  let driver: S3StorageDriver;
  let sent: string[];

  /** The destination shows `destination` after each copy in turn (the last one from then on); the source shows `source`. */
  function storeAnswers(destination: Head[], source: Head = AS_CHECKED): void {
    sent = [];
    let copies = 0;
    const answer = async (command: unknown): Promise<unknown> => {
      if (command instanceof HeadObjectCommand) {
        const head = command.input.Key === TO ? destination[Math.min(copies, destination.length) - 1] : source;
        sent.push(`head ${command.input.Key === TO ? 'destination' : 'source'}`);
        if (head instanceof Error) throw head;
        return head;
      }
      if (command instanceof CopyObjectCommand) {
        copies += 1;
        sent.push('copy');
        return { CopyObjectResult: { ETag: 'whatever the store says' } };
      }
      if (command instanceof DeleteObjectCommand) {
        sent.push(`delete ${command.input.Key === FROM ? 'source' : 'destination'}`);
        return {};
      }
      throw new Error(`unexpected ${(command as object).constructor.name}`);
    };
    // send's overloads include a callback form returning void; every call here awaits the promise.
    jest.spyOn(client, 'send').mockImplementation((command: unknown) => answer(command) as never);
  }

  async function moveError(): Promise<AppError | undefined> {
    try {
      await driver.move(FROM, TO, ETAG, SIZE);
      return undefined;
    } catch (error) {
      return error as AppError;
    }
  }

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => {
    client = createS3Client(UNREACHABLE);
    driver = new S3StorageDriver(client, UNREACHABLE.bucket, UNREACHABLE);
  });
  afterEach(() => driver.close());
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']));

  it.each<[string, Head]>([
    ['the same ETag and size', AS_CHECKED],
    ['the same ETag unquoted', { ETag: ETAG.slice(1, -1), ContentLength: SIZE }],
    [
      'another ETag under SSE-KMS (not a digest of the bytes)',
      { ...AS_CHECKED, ETag: '"1"', ServerSideEncryption: 'aws:kms' },
    ],
    ['another ETag under SSE-C', { ...AS_CHECKED, ETag: '"2"', SSECustomerAlgorithm: 'AES256' }],
  ])('deletes the source once the destination shows %s', async (_name, destination) => {
    storeAnswers([destination]);
    expect(await moveError()).toBeUndefined();
    expect(sent).toEqual(['copy', 'head destination', 'delete source']);
  });

  it.each<[string, Head]>([
    ['another ETag', { ETag: '"0cc175b9c0f1b6a831c399e269772661"', ContentLength: SIZE }],
    ['no ETag', { ContentLength: SIZE }],
    ['another size', { ETag: ETAG, ContentLength: SIZE + 1 }],
    ['another size under SSE-KMS', { ETag: '"1"', ContentLength: SIZE - 1, ServerSideEncryption: 'aws:kms:dsse' }],
    ['nothing', NOT_FOUND],
  ])(
    'keeps the source and answers UPLOAD_CHANGED when the destination shows %s and the source changed',
    async (_name, destination) => {
      storeAnswers([destination], { ETag: '"0cc175b9c0f1b6a831c399e269772661"', ContentLength: SIZE });
      const error = await moveError();
      expect(error).toBeInstanceOf(AppError);
      expect(error?.code).toBe('UPLOAD_CHANGED');
      expect(sent).toEqual(['copy', 'head destination', 'head source']);
    },
  );

  it.each<[string, Head]>([
    ['is gone', NOT_FOUND],
    ['has another size', { ETag: ETAG, ContentLength: SIZE + 1 }],
    [
      'is under SSE-KMS with another ETag (the source is never a copy: its ETag must match)',
      { ...AS_CHECKED, ETag: '"1"', ServerSideEncryption: 'aws:kms' },
    ],
  ])('answers UPLOAD_CHANGED when the destination shows other bytes and the source %s', async (_name, source) => {
    storeAnswers([{ ...AS_CHECKED, ETag: '"0"' }], source);
    expect((await moveError())?.code).toBe('UPLOAD_CHANGED');
    expect(sent).not.toContain('delete source');
  });

  it('copies again while the source is as checked and a concurrent copy is still writing the destination', async () => {
    storeAnswers([{ ...AS_CHECKED, ETag: '""' }, NOT_FOUND, AS_CHECKED]);
    expect(await moveError()).toBeUndefined();
    expect(sent).toEqual([
      ...['copy', 'head destination', 'head source'],
      ...['copy', 'head destination', 'head source'],
      ...['copy', 'head destination', 'delete source'],
    ]);
  });

  it('gives up after three copies with UPLOAD_CHANGED, the source kept', async () => {
    storeAnswers([{ ...AS_CHECKED, ETag: '"0"' }]);
    expect((await moveError())?.code).toBe('UPLOAD_CHANGED');
    expect(sent.filter((call) => call === 'copy')).toHaveLength(3);
    expect(sent).not.toContain('delete source');
  });

  it('answers STORAGE_UNAVAILABLE when the check cannot reach the store', async () => {
    storeAnswers([new Error('socket hang up')]);
    expect((await moveError())?.code).toBe('STORAGE_UNAVAILABLE');
    expect(sent).not.toContain('delete source');
  });
});
