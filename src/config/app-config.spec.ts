import { DEFAULT_AUDIO_MIME_TYPES } from '../audio-clips/audio-mime-types';
import { AppConfig, ConfigValidationError, type Env, loadAppConfig, MAX_PRESIGN_EXPIRES_SECONDS } from './app-config';

/** The smallest environment that selects S3 and passes validation. */
const S3_ENV: Env = { S3_BUCKET: 'advanced-notes-audio', AWS_REGION: 'us-east-1' };

/** Runs loadAppConfig expecting a ConfigValidationError and returns its problems. */
function problemsOf(env: Env): readonly string[] {
  let caught: unknown;
  try {
    loadAppConfig(env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigValidationError);
  const error = caught as ConfigValidationError;
  // The message is what an operator reads at start-up: it must carry every problem.
  for (const problem of error.problems) expect(error.message).toContain(problem);
  return error.problems;
}

/** Exactly one problem, and it names the variable. */
function expectOneProblemNaming(env: Env, variable: string): string {
  const problems = problemsOf(env);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toContain(variable);
  return problems[0];
}

describe('loadAppConfig with an empty environment', () => {
  const config = loadAppConfig({});

  it('returns an AppConfig instance', () => {
    expect(config).toBeInstanceOf(AppConfig);
  });

  it('uses the documented defaults', () => {
    // toMatchObject: other settings (auth, limits, ...) are owned and tested elsewhere.
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 3000,
      publicBaseUrl: 'http://localhost:3000',
      database: { type: 'sqlite', path: './data/advanced-notes.sqlite' },
      storage: {
        driver: 'local',
        keyPrefix: 'dev',
        keyPrefixSource: 'default',
        presignPutExpiresSeconds: 900,
        presignGetExpiresSeconds: 900,
        s3: undefined,
        local: { directory: './data/objects', signingSecret: undefined },
      },
      audio: {
        allowedMimeTypes: [...DEFAULT_AUDIO_MIME_TYPES],
        maxUploadBytes: 100 * 1024 * 1024,
        multipartThresholdBytes: 16 * 1024 * 1024,
      },
    });
  });

  it('treats variables set to blank exactly like unset ones', () => {
    const names = [
      'PORT',
      'HOST',
      'PUBLIC_BASE_URL',
      'DATABASE_URL',
      'S3_KEY_PREFIX',
      'APP_ENV',
      'ENV',
      'FLASK_ENV',
      'NODE_ENV',
      'S3_PRESIGN_PUT_EXPIRES_SECONDS',
      'S3_PRESIGN_GET_EXPIRES_SECONDS',
      'S3_BUCKET',
      'STORAGE_DRIVER',
      'AWS_REGION',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'S3_ENDPOINT_URL',
      'LOCAL_STORAGE_DIR',
      'LOCAL_STORAGE_SIGNING_SECRET',
      'AUDIO_MIME_TYPES',
      'MAX_UPLOAD_BYTES',
      'DATABASE_CONNECT_TIMEOUT_SECONDS',
      'MIGRATIONS_RUN',
      'LEGACY_OWNER_ID',
      'LOG_FORMAT',
      'LOG_LEVEL',
      'METRICS_PORT',
      'SHUTDOWN_GRACE_SECONDS',
    ];
    for (const blank of ['', '   ', '\t']) {
      expect(loadAppConfig(Object.fromEntries(names.map((name) => [name, blank])))).toEqual(config);
    }
  });
});

describe('PORT and PUBLIC_BASE_URL', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['8080', 8080],
    [' 8080 ', 8080],
    ['65535', 65535],
  ])('accepts PORT=%j as %d', (raw, port) => {
    const config = loadAppConfig({ PORT: raw });
    expect(config.port).toBe(port);
    expect(config.publicBaseUrl).toBe(`http://localhost:${port}`);
  });

  it.each(['abc', '-1', '65536', '80.5', '1e3', '0x50', '80 80', '+80', '99999999999999999999'])(
    'rejects PORT=%j naming PORT',
    (raw) => {
      const problem = expectOneProblemNaming({ PORT: raw }, 'PORT');
      expect(problem).toContain(raw.trim());
    },
  );

  it.each([
    ['https://notes.example.com', 'https://notes.example.com'],
    ['https://notes.example.com/', 'https://notes.example.com'],
    ['http://10.0.2.2:3000//', 'http://10.0.2.2:3000'],
    ['https://example.com/notes/', 'https://example.com/notes'],
    ['  http://localhost:9999  ', 'http://localhost:9999'],
  ])('accepts PUBLIC_BASE_URL=%j as %j', (raw, expected) => {
    expect(loadAppConfig({ PUBLIC_BASE_URL: raw }).publicBaseUrl).toBe(expected);
  });

  it('does not take PORT into an explicit PUBLIC_BASE_URL', () => {
    expect(loadAppConfig({ PORT: '4000', PUBLIC_BASE_URL: 'https://api.example.com' })).toMatchObject({
      port: 4000,
      publicBaseUrl: 'https://api.example.com',
    });
  });

  it.each(['ftp://example.com', 'not a url', 'localhost:3000', 'example.com', '/api', 'file:///tmp/x'])(
    'rejects PUBLIC_BASE_URL=%j naming PUBLIC_BASE_URL',
    (raw) => {
      expectOneProblemNaming({ PUBLIC_BASE_URL: raw }, 'PUBLIC_BASE_URL');
    },
  );

  it('reads HOST', () => {
    expect(loadAppConfig({ HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
  });
});

describe.each(['S3_PRESIGN_PUT_EXPIRES_SECONDS', 'S3_PRESIGN_GET_EXPIRES_SECONDS'] as const)('%s', (name) => {
  const field = name === 'S3_PRESIGN_PUT_EXPIRES_SECONDS' ? 'presignPutExpiresSeconds' : 'presignGetExpiresSeconds';
  const other = name === 'S3_PRESIGN_PUT_EXPIRES_SECONDS' ? 'presignGetExpiresSeconds' : 'presignPutExpiresSeconds';

  it('allows at most seven days', () => {
    expect(MAX_PRESIGN_EXPIRES_SECONDS).toBe(604800);
  });

  it.each([
    ['1', 1],
    ['60', 60],
    ['900', 900],
    [' 3600 ', 3600],
    ['604800', 604800],
  ])('accepts %j as %d and leaves the other expiry at 900', (raw, seconds) => {
    const config = loadAppConfig({ [name]: raw });
    expect(config.storage[field]).toBe(seconds);
    expect(config.storage[other]).toBe(900);
  });

  it.each(['0', '-1', '-900', '1.5', '900.0', '604801', '1000000', 'abc', '15m', '1e3', '9e999'])(
    'rejects %j naming the variable',
    (raw) => {
      const problem = expectOneProblemNaming({ [name]: raw }, name);
      expect(problem).toContain(raw);
    },
  );

  it('is validated with the S3 driver as well as the local one', () => {
    expectOneProblemNaming({ ...S3_ENV, [name]: '0' }, name);
  });
});

describe('MAX_UPLOAD_BYTES', () => {
  it.each([
    ['1', 1],
    ['1048576', 1048576],
    ['5368709120', 5368709120],
  ])('accepts %j', (raw, bytes) => {
    expect(loadAppConfig({ MAX_UPLOAD_BYTES: raw }).audio.maxUploadBytes).toBe(bytes);
  });

  it.each(['0', '-5', '1.5', 'abc', '10MB', '100 MiB', '9007199254740992'])(
    'rejects %j naming MAX_UPLOAD_BYTES',
    (raw) => {
      expectOneProblemNaming({ MAX_UPLOAD_BYTES: raw }, 'MAX_UPLOAD_BYTES');
    },
  );
});

describe('REDIS_URL', () => {
  it('is unset by default: rate limits stay in each instance’s memory', () => {
    expect(loadAppConfig({}).limits.redisUrl).toBeUndefined();
  });

  it.each(['redis://127.0.0.1:6379', 'rediss://user:secret@cache.internal:6380/2', 'redis://redis'])(
    'accepts %j',
    (raw) => {
      expect(loadAppConfig({ REDIS_URL: raw }).limits.redisUrl).toBe(raw);
    },
  );

  it.each(['127.0.0.1:6379', 'http://redis:6379', 'redis://', 'not a url'])('rejects %j naming REDIS_URL', (raw) => {
    expectOneProblemNaming({ REDIS_URL: raw }, 'REDIS_URL');
  });

  it('does not print the password of a rejected URL', () => {
    expect(() => loadAppConfig({ REDIS_URL: 'redis:' })).toThrow(/REDIS_URL/);
    try {
      loadAppConfig({ REDIS_URL: 'http://user:hunter2@redis' });
    } catch (error) {
      expect(String(error)).not.toContain('hunter2');
    }
  });
});

describe('MULTIPART_THRESHOLD_BYTES', () => {
  it.each([
    ['5242880', 5242880],
    ['16777216', 16777216],
    ['1073741824', 1073741824],
  ])('accepts %j', (raw, bytes) => {
    expect(loadAppConfig({ MULTIPART_THRESHOLD_BYTES: raw }).audio.multipartThresholdBytes).toBe(bytes);
  });

  // Below S3's 5 MiB smallest part, a multipart upload would be one short part.
  it.each(['0', '5242879', '-1', '16MiB', '1e7'])('rejects %j naming MULTIPART_THRESHOLD_BYTES', (raw) => {
    expectOneProblemNaming({ MULTIPART_THRESHOLD_BYTES: raw }, 'MULTIPART_THRESHOLD_BYTES');
  });
});

describe('DATABASE_URL', () => {
  it.each([
    [
      'postgres://user:pass@db.internal:5432/notes',
      { type: 'postgres', url: 'postgres://user:pass@db.internal:5432/notes' },
    ],
    ['postgresql://localhost/notes', { type: 'postgres', url: 'postgresql://localhost/notes' }],
    [
      'postgres://localhost/notes?sslmode=require',
      { type: 'postgres', url: 'postgres://localhost/notes?sslmode=require' },
    ],
    ['sqlite:./data/x.sqlite', { type: 'sqlite', path: './data/x.sqlite' }],
    ['sqlite:notes.db', { type: 'sqlite', path: 'notes.db' }],
    ['sqlite:/var/lib/notes.sqlite', { type: 'sqlite', path: '/var/lib/notes.sqlite' }],
    ['sqlite:///var/lib/notes.sqlite', { type: 'sqlite', path: '/var/lib/notes.sqlite' }],
    ['sqlite::memory:', { type: 'sqlite', path: ':memory:' }],
    ['  sqlite:./padded.sqlite  ', { type: 'sqlite', path: './padded.sqlite' }],
  ])('parses %j', (raw, expected) => {
    expect(loadAppConfig({ DATABASE_URL: raw }).database).toEqual({
      ...expected,
      connectTimeoutSeconds: 5,
      migrationsRun: true,
      legacyOwnerId: '',
    });
  });

  it.each([
    'mysql://localhost/notes',
    'http://localhost/notes',
    'sqlite:',
    'sqlite',
    './data/advanced-notes.sqlite',
    'postgres:/localhost/notes',
    'postgres://localhost:99999/notes',
    'postgres://exa mple.com/notes',
  ])('rejects %j naming DATABASE_URL', (raw) => {
    expectOneProblemNaming({ DATABASE_URL: raw }, 'DATABASE_URL');
  });

  it('reads the start-up settings that go with it', () => {
    expect(
      loadAppConfig({ DATABASE_CONNECT_TIMEOUT_SECONDS: '12', MIGRATIONS_RUN: 'false', LEGACY_OWNER_ID: ' carol ' })
        .database,
    ).toMatchObject({ connectTimeoutSeconds: 12, migrationsRun: false, legacyOwnerId: 'carol' });
    for (const [raw, run] of [
      ['true', true],
      ['1', true],
      ['YES', true],
      ['off', false],
      ['0', false],
    ] as const) {
      expect(loadAppConfig({ MIGRATIONS_RUN: raw }).database.migrationsRun).toBe(run);
    }
  });

  it.each([
    ['DATABASE_CONNECT_TIMEOUT_SECONDS', '0'],
    ['DATABASE_CONNECT_TIMEOUT_SECONDS', '2.5'],
    ['DATABASE_CONNECT_TIMEOUT_SECONDS', 'soon'],
    ['MIGRATIONS_RUN', 'maybe'],
    ['MIGRATIONS_RUN', '2'],
  ])('rejects %s=%j naming it', (name, raw) => {
    expectOneProblemNaming({ [name]: raw }, name);
  });

  it('does not echo a postgres password into the problem', () => {
    const problem = expectOneProblemNaming(
      { DATABASE_URL: 'postgres://user:s3cret@localhost:99999/notes' },
      'DATABASE_URL',
    );
    expect(problem).not.toContain('s3cret');
  });
});

describe('key prefix through loadAppConfig', () => {
  it('reports the prefix and the variable it came from', () => {
    // (prod is avoided here: it brings production-only requirements that are not this spec's subject)
    expect(loadAppConfig({ APP_ENV: ' Stage ', NODE_ENV: 'development' }).storage).toMatchObject({
      keyPrefix: 'staging',
      keyPrefixSource: 'APP_ENV',
    });
    expect(loadAppConfig({ S3_KEY_PREFIX: '/Team-A/Notes/', APP_ENV: 'local' }).storage).toMatchObject({
      keyPrefix: 'team-a/notes',
      keyPrefixSource: 'S3_KEY_PREFIX',
    });
    expect(loadAppConfig({ NODE_ENV: 'Local' }).storage).toMatchObject({
      keyPrefix: 'dev',
      keyPrefixSource: 'NODE_ENV',
    });
    expect(loadAppConfig({ FLASK_ENV: 'qa', NODE_ENV: 'development' }).storage).toMatchObject({
      keyPrefix: 'qa',
      keyPrefixSource: 'FLASK_ENV',
    });
  });

  const prefixSources = ['S3_KEY_PREFIX', 'APP_ENV', 'ENV', 'FLASK_ENV', 'NODE_ENV'];
  const badPrefixes = ['my env', '..', 'a//b', 'a/../b'];
  it.each(prefixSources.flatMap((variable) => badPrefixes.map((bad) => ({ variable, bad }))))(
    'rejects $variable=$bad naming $variable',
    ({ variable, bad }) => {
      const problem = expectOneProblemNaming({ [variable]: bad }, variable);
      // and no other prefix variable
      for (const otherName of prefixSources.filter((name) => name !== variable && !variable.includes(name))) {
        expect(problem).not.toContain(otherName);
      }
    },
  );

  it('names the bad variable, not a stronger one that was blank and skipped', () => {
    const problem = expectOneProblemNaming({ S3_KEY_PREFIX: '   ', APP_ENV: 'a b' }, 'APP_ENV');
    expect(problem).not.toContain('S3_KEY_PREFIX');
  });

  // resolveKeyPrefix skips a value that is blank once slashes are stripped; the problem must blame the next one.
  it.each(['/', ' // ', '/ /'])('names APP_ENV when S3_KEY_PREFIX is only %j and APP_ENV is bad', (slashes) => {
    const problem = expectOneProblemNaming({ S3_KEY_PREFIX: slashes, APP_ENV: 'a b' }, 'APP_ENV');
    expect(problem).not.toContain('S3_KEY_PREFIX');
  });

  it('names NODE_ENV when every stronger variable is blank or slashes', () => {
    const problem = expectOneProblemNaming(
      { S3_KEY_PREFIX: '', APP_ENV: '/', ENV: '  ', FLASK_ENV: '//', NODE_ENV: '../x' },
      'NODE_ENV',
    );
    for (const other of ['S3_KEY_PREFIX', 'APP_ENV', 'FLASK_ENV']) expect(problem).not.toContain(other);
  });
});

describe('storage driver selection', () => {
  it.each<[string, Env, 's3' | 'local']>([
    ['no bucket, no driver → local', {}, 'local'],
    ['bucket, no driver → s3', S3_ENV, 's3'],
    ['bucket, STORAGE_DRIVER=local → local', { ...S3_ENV, STORAGE_DRIVER: 'local' }, 'local'],
    ['bucket, STORAGE_DRIVER=s3 → s3', { ...S3_ENV, STORAGE_DRIVER: 's3' }, 's3'],
    ['STORAGE_DRIVER=S3 (upper case) → s3', { ...S3_ENV, STORAGE_DRIVER: 'S3' }, 's3'],
    ['STORAGE_DRIVER=" Local " → local', { ...S3_ENV, STORAGE_DRIVER: ' Local ' }, 'local'],
    ['no bucket, STORAGE_DRIVER=local → local', { STORAGE_DRIVER: 'local' }, 'local'],
    ['blank bucket → local', { S3_BUCKET: '  ', AWS_REGION: 'us-east-1' }, 'local'],
  ])('%s', (_name, env, driver) => {
    const { storage } = loadAppConfig(env);
    expect(storage.driver).toBe(driver);
    if (driver === 's3') {
      expect(storage.s3).toBeDefined();
      expect(storage.local).toBeUndefined();
    } else {
      expect(storage.local).toBeDefined();
      expect(storage.s3).toBeUndefined();
    }
  });

  it.each(['gcs', 'minio', 'local,s3', 'disk', 's3 local', 'aws'])(
    'rejects STORAGE_DRIVER=%j naming STORAGE_DRIVER',
    (raw) => {
      expectOneProblemNaming({ STORAGE_DRIVER: raw }, 'STORAGE_DRIVER');
    },
  );

  it('reads local storage settings', () => {
    const secret = 'x'.repeat(32);
    expect(
      loadAppConfig({ LOCAL_STORAGE_DIR: '/srv/objects', LOCAL_STORAGE_SIGNING_SECRET: secret }).storage.local,
    ).toEqual({
      directory: '/srv/objects',
      signingSecret: secret,
    });
  });

  it('rejects a local signing secret shorter than 32 characters', () => {
    expectOneProblemNaming({ LOCAL_STORAGE_SIGNING_SECRET: 'x'.repeat(31) }, 'LOCAL_STORAGE_SIGNING_SECRET');
  });
});

describe('S3 settings', () => {
  it('reads the minimal S3 environment', () => {
    expect(loadAppConfig(S3_ENV).storage.s3).toEqual({
      bucket: 'advanced-notes-audio',
      region: 'us-east-1',
      endpointUrl: undefined,
      credentials: undefined,
      connectTimeoutSeconds: 5,
      timeoutMs: 5000,
    });
    expect(loadAppConfig({ ...S3_ENV, S3_CONNECT_TIMEOUT_SECONDS: '30' }).storage.s3?.connectTimeoutSeconds).toBe(30);
    expectOneProblemNaming({ ...S3_ENV, S3_CONNECT_TIMEOUT_SECONDS: '-1' }, 'S3_CONNECT_TIMEOUT_SECONDS');
  });

  it('reads the deadline of store calls', () => {
    expect(loadAppConfig({ ...S3_ENV, STORAGE_TIMEOUT_SECONDS: '2' }).storage.s3?.timeoutMs).toBe(2000);
    expect(() => loadAppConfig({ ...S3_ENV, STORAGE_TIMEOUT_SECONDS: '0' })).toThrow(/STORAGE_TIMEOUT_SECONDS/);
  });

  it('reads an endpoint and credentials', () => {
    expect(
      loadAppConfig({
        ...S3_ENV,
        S3_ENDPOINT_URL: 'http://localhost:4566',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        AWS_SESSION_TOKEN: 'token',
      }).storage.s3,
    ).toEqual({
      bucket: 'advanced-notes-audio',
      region: 'us-east-1',
      endpointUrl: 'http://localhost:4566',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
      connectTimeoutSeconds: 5,
      timeoutMs: 5000,
    });
  });

  it('takes AWS_DEFAULT_REGION when AWS_REGION is unset, and AWS_REGION over it', () => {
    expect(loadAppConfig({ S3_BUCKET: 'bucket', AWS_DEFAULT_REGION: 'eu-west-1' }).storage.s3?.region).toBe(
      'eu-west-1',
    );
    expect(
      loadAppConfig({ S3_BUCKET: 'bucket', AWS_REGION: 'eu-central-1', AWS_DEFAULT_REGION: 'eu-west-1' }).storage.s3
        ?.region,
    ).toBe('eu-central-1');
  });

  it('requires S3_BUCKET when STORAGE_DRIVER=s3', () => {
    expectOneProblemNaming({ STORAGE_DRIVER: 's3', AWS_REGION: 'us-east-1' }, 'S3_BUCKET');
  });

  it('requires AWS_REGION with the S3 driver', () => {
    expectOneProblemNaming({ S3_BUCKET: 'bucket' }, 'AWS_REGION');
  });

  it('reports both missing S3 settings at once', () => {
    const problems = problemsOf({ STORAGE_DRIVER: 's3' });
    expect(problems).toHaveLength(2);
    expect(problems.some((problem) => problem.includes('S3_BUCKET'))).toBe(true);
    expect(problems.some((problem) => problem.includes('AWS_REGION'))).toBe(true);
  });

  it.each(['My_Bucket', 'UPPER', 'ab', 'a'.repeat(64), '-bucket', 'bucket-', 'bucket/name', 'bucket name'])(
    'rejects S3_BUCKET=%j naming S3_BUCKET',
    (bucket) => {
      expectOneProblemNaming({ S3_BUCKET: bucket, AWS_REGION: 'us-east-1' }, 'S3_BUCKET');
    },
  );

  it.each(['abc', 'a'.repeat(63), 'my.bucket-1'])('accepts S3_BUCKET=%j', (bucket) => {
    expect(loadAppConfig({ S3_BUCKET: bucket, AWS_REGION: 'us-east-1' }).storage.s3?.bucket).toBe(bucket);
  });

  it.each(['localhost:4566', 'minio', 'ftp://minio:9000', 's3://bucket'])(
    'rejects S3_ENDPOINT_URL=%j naming S3_ENDPOINT_URL',
    (raw) => {
      expectOneProblemNaming({ ...S3_ENV, S3_ENDPOINT_URL: raw }, 'S3_ENDPOINT_URL');
    },
  );

  it.each(['http://localhost:4566', 'https://s3.eu-central-1.wasabisys.com', 'http://127.0.0.1:9000/'])(
    'accepts S3_ENDPOINT_URL=%j',
    (raw) => {
      expect(loadAppConfig({ ...S3_ENV, S3_ENDPOINT_URL: raw }).storage.s3?.endpointUrl).toBe(raw);
    },
  );

  it.each<[string, Env]>([
    ['only the key id', { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE' }],
    ['only the secret', { AWS_SECRET_ACCESS_KEY: 'secret' }],
    ['the key id and a blank secret', { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: '  ' }],
  ])('rejects %s, naming both credential variables', (_name, credentials) => {
    const problem = expectOneProblemNaming({ ...S3_ENV, ...credentials }, 'AWS_ACCESS_KEY_ID');
    expect(problem).toContain('AWS_SECRET_ACCESS_KEY');
  });

  it('leaves credentials to the default chain when neither is set', () => {
    expect(loadAppConfig(S3_ENV).storage.s3?.credentials).toBeUndefined();
  });

  it('ignores S3 settings, including incomplete ones, with the local driver', () => {
    const config = loadAppConfig({
      STORAGE_DRIVER: 'local',
      S3_BUCKET: 'Not_A_Valid_Bucket',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    });
    expect(config.storage.driver).toBe('local');
    expect(config.storage.s3).toBeUndefined();
    // Without a bucket, the local default needs no region or credentials either.
    expect(loadAppConfig({ AWS_SECRET_ACCESS_KEY: 'secret' }).storage.driver).toBe('local');
  });
});

describe('AUDIO_MIME_TYPES', () => {
  it.each<[string, string[]]>([
    ['audio/m4a', ['audio/m4a']],
    ['audio/m4a,audio/webm', ['audio/m4a', 'audio/webm']],
    [' Audio/M4A , AUDIO/WEBM ', ['audio/m4a', 'audio/webm']],
    ['audio/m4a,audio/m4a,AUDIO/M4A', ['audio/m4a']],
    ['audio/mpeg,,audio/wav,', ['audio/mpeg', 'audio/wav']],
  ])('reads %j as %j', (raw, expected) => {
    expect(loadAppConfig({ AUDIO_MIME_TYPES: raw }).audio.allowedMimeTypes).toEqual(expected);
  });

  it.each([',', ' , , '])('rejects an empty list %j naming AUDIO_MIME_TYPES', (raw) => {
    expectOneProblemNaming({ AUDIO_MIME_TYPES: raw }, 'AUDIO_MIME_TYPES');
  });

  it.each(['video/mp4', 'audio/m4a,text/plain', 'audio/x-unknown', 'application/octet-stream'])(
    'rejects %j (a type with no known extension) naming AUDIO_MIME_TYPES',
    (raw) => {
      const problem = expectOneProblemNaming({ AUDIO_MIME_TYPES: raw }, 'AUDIO_MIME_TYPES');
      expect(problem).toContain(raw.split(',').pop());
    },
  );

  // Object.prototype names are not storable types.
  it.each(['constructor', 'audio/m4a,__proto__'])('rejects %j naming AUDIO_MIME_TYPES', (raw) => {
    expectOneProblemNaming({ AUDIO_MIME_TYPES: raw }, 'AUDIO_MIME_TYPES');
  });

  // The allow-list goes by base type, so a parameterized entry is reduced to its base.
  it('keeps the base of a parameterized type, which is what uploads are checked against', () => {
    expect(loadAppConfig({ AUDIO_MIME_TYPES: 'audio/webm;codecs=opus, Audio/MPEG' }).audio.allowedMimeTypes).toEqual([
      'audio/webm',
      'audio/mpeg',
    ]);
  });
});

describe('several problems at once', () => {
  it('reports every bad variable in one error, each naming its variable', () => {
    const bad: Record<string, string> = {
      PORT: 'eighty',
      PUBLIC_BASE_URL: 'ftp://example.com',
      DATABASE_URL: 'mysql://localhost/notes',
      APP_ENV: 'a b',
      S3_PRESIGN_PUT_EXPIRES_SECONDS: '0',
      S3_PRESIGN_GET_EXPIRES_SECONDS: '604801',
      STORAGE_DRIVER: 'gcs',
      AUDIO_MIME_TYPES: 'video/mp4',
      MAX_UPLOAD_BYTES: '-1',
    };
    const problems = problemsOf(bad);
    expect(problems).toHaveLength(Object.keys(bad).length);
    for (const name of Object.keys(bad)) {
      // Each variable is named by its own problem (matching whole names: ENV is inside APP_ENV).
      expect(problems.filter((problem) => new RegExp(`(^|[^A-Z_])${name}([^A-Z_]|$)`).test(problem))).toHaveLength(1);
    }
  });

  it('reports S3 problems together with general ones', () => {
    const problems = problemsOf({
      STORAGE_DRIVER: 's3',
      S3_ENDPOINT_URL: 'minio:9000',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      PORT: '-1',
    });
    const mentions = (name: string) => problems.some((problem) => problem.includes(name));
    expect(problems).toHaveLength(5);
    for (const name of ['S3_BUCKET', 'AWS_REGION', 'S3_ENDPOINT_URL', 'AWS_SECRET_ACCESS_KEY', 'PORT'])
      expect(mentions(name)).toBe(true);
  });

  it('lists problems one per line under a heading', () => {
    let message = '';
    try {
      loadAppConfig({ PORT: 'x', MAX_UPLOAD_BYTES: 'y' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toHaveLength(3);
    expect(message).toMatch(/^Invalid configuration:\n {2}- PORT .*\n {2}- MAX_UPLOAD_BYTES /);
  });
});

describe('operations settings', () => {
  it('defaults to info logs in the format the terminal decides, metrics on 9464 and a 10 s drain', () => {
    expect(loadAppConfig({}).operations).toEqual({
      logFormat: undefined,
      logLevel: 'info',
      metricsPort: 9464,
      shutdownGraceSeconds: 10,
    });
  });

  it('reads LOG_FORMAT, LOG_LEVEL (any case), METRICS_PORT and SHUTDOWN_GRACE_SECONDS', () => {
    expect(
      loadAppConfig({ LOG_FORMAT: 'Pretty', LOG_LEVEL: 'DEBUG', METRICS_PORT: '9100', SHUTDOWN_GRACE_SECONDS: '25' })
        .operations,
    ).toEqual({ logFormat: 'pretty', logLevel: 'debug', metricsPort: 9100, shutdownGraceSeconds: 25 });
    expect(loadAppConfig({ LOG_FORMAT: 'json', LOG_LEVEL: 'silent' }).operations).toMatchObject({
      logFormat: 'json',
      logLevel: 'silent',
    });
  });

  it('turns metrics off with METRICS_PORT=0', () => {
    expect(loadAppConfig({ METRICS_PORT: '0' }).operations.metricsPort).toBeNull();
  });

  it('refuses metrics on the API port', () => {
    expectOneProblemNaming({ PORT: '8080', METRICS_PORT: '8080' }, 'METRICS_PORT');
    expectOneProblemNaming({ METRICS_PORT: '3000' }, 'METRICS_PORT');
  });

  it.each([
    ['LOG_FORMAT', 'text'],
    ['LOG_FORMAT', 'ndjson'],
    ['LOG_LEVEL', 'verbose'],
    ['LOG_LEVEL', 'loud'],
    ['METRICS_PORT', '70000'],
    ['METRICS_PORT', '-1'],
    ['METRICS_PORT', 'on'],
    ['SHUTDOWN_GRACE_SECONDS', '-5'],
    ['SHUTDOWN_GRACE_SECONDS', '1.5'],
    ['SHUTDOWN_GRACE_SECONDS', '99999'],
  ])('names %s when it is %s', (name, value) => {
    expect(expectOneProblemNaming({ [name]: value }, name)).toContain(value);
  });
});

describe('notes sync settings', () => {
  it('keeps tombstones 90 days and 50 revisions a note by default, and takes other values', () => {
    expect(loadAppConfig({}).sync).toEqual({ tombstoneTtlSeconds: 90 * 24 * 60 * 60, noteRevisionsKept: 50 });
    expect(loadAppConfig({ SYNC_TOMBSTONE_TTL_SECONDS: '3600', NOTE_REVISIONS_KEPT: '3' }).sync).toEqual({
      tombstoneTtlSeconds: 3600,
      noteRevisionsKept: 3,
    });
  });

  it.each([
    ['SYNC_TOMBSTONE_TTL_SECONDS', '0'],
    ['SYNC_TOMBSTONE_TTL_SECONDS', '59'],
    ['SYNC_TOMBSTONE_TTL_SECONDS', '90d'],
    ['SYNC_TOMBSTONE_TTL_SECONDS', '-1'],
    ['NOTE_REVISIONS_KEPT', '0'],
    ['NOTE_REVISIONS_KEPT', '1.5'],
    ['NOTE_REVISIONS_KEPT', '100001'],
  ])('names %s when it is %s', (name, value) => {
    expect(expectOneProblemNaming({ [name]: value }, name)).toContain(value);
  });
});

describe('EXPORT_EXPIRES_SECONDS and EXPORTS_PER_DAY', () => {
  it('default to a day and five a day', () => {
    expect(loadAppConfig({}).exports).toEqual({ expiresSeconds: 86400, perDay: 5 });
  });

  it('accept other values in range', () => {
    expect(loadAppConfig({ EXPORT_EXPIRES_SECONDS: '60', EXPORTS_PER_DAY: '1' }).exports).toEqual({
      expiresSeconds: 60,
      perDay: 1,
    });
    expect(loadAppConfig({ EXPORT_EXPIRES_SECONDS: '604800' }).exports.expiresSeconds).toBe(604800);
  });

  // A download URL of S3 lasts at most seven days; an archive must not outlive every URL to it.
  it.each(['0', '59', '604801', '1.5', '24h', '-1'])('rejects EXPORT_EXPIRES_SECONDS=%j naming it', (raw) => {
    expectOneProblemNaming({ EXPORT_EXPIRES_SECONDS: raw }, 'EXPORT_EXPIRES_SECONDS');
  });

  it.each(['0', '1001', 'many', '2.5'])('rejects EXPORTS_PER_DAY=%j naming it', (raw) => {
    expectOneProblemNaming({ EXPORTS_PER_DAY: raw }, 'EXPORTS_PER_DAY');
  });
});
