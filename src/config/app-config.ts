import { InvalidKeyPrefixError, PrefixSource, resolveKeyPrefix } from './key-prefix';
import { baseMimeType, DEFAULT_AUDIO_MIME_TYPES, extensionForMimeType } from '../audio-clips/audio-mime-types';

export type Env = Readonly<Record<string, string | undefined>>;
export type StorageDriverName = 's3' | 'local';

export type DatabaseConfig = ({ type: 'postgres'; url: string } | { type: 'sqlite'; path: string }) & {
  /** How long start-up waits for the database before giving up. */
  connectTimeoutSeconds: number;
  /** Whether start-up applies pending migrations (under a lock); when not, pending migrations stop the start. */
  migrationsRun: boolean;
  /** Owner given to rows from before sign-in existed, by the migration that added owners. */
  legacyOwnerId: string;
};

export interface S3Config {
  bucket: string;
  region: string;
  endpointUrl?: string;
  /** Absent means the SDK's default chain (instance role, SSO, shared profile). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** How long the start-up check of the bucket may take (DEFAULT_CONNECT_TIMEOUT_SECONDS when absent). */
  connectTimeoutSeconds?: number;
  /** Deadline of one store call, retries included; absent means the driver's default. */
  timeoutMs?: number;
}

/** How bearer tokens are verified. `dev-secret` is the no-setup default outside production. */
export type AuthConfig = (
  | { mode: 'secret'; secret: string; issuer?: string; audience?: string }
  | { mode: 'dev-secret'; secretFile: string; issuer?: string; audience?: string }
  | { mode: 'jwks'; jwksUrl: string; issuer: string; audience?: string; cooldownSeconds: number }
) & {
  /** The longest a token may still be valid for (its `exp` from now); absent means the default. */
  maxTokenLifetimeSeconds?: number;
};

export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;

export interface LocalStorageConfig {
  directory: string;
  /** Absent means a secret generated once and kept beside the objects. */
  signingSecret?: string;
}

/**
 * Everything the app reads from its environment, validated once at start-up. The class doubles
 * as the injection token, so services ask for `AppConfig` and get this typed object.
 */
export class AppConfig {
  host!: string;
  port!: number;
  publicBaseUrl!: string;
  database!: DatabaseConfig;
  storage!: {
    driver: StorageDriverName;
    keyPrefix: string;
    keyPrefixSource: PrefixSource | 'default';
    presignPutExpiresSeconds: number;
    presignGetExpiresSeconds: number;
    s3?: S3Config;
    local?: LocalStorageConfig;
  };
  audio!: {
    allowedMimeTypes: readonly string[];
    maxUploadBytes: number;
    /** Declared sizes from this one up are uploaded in parts (resumable), below it in one PUT. */
    multipartThresholdBytes: number;
  };
  auth!: AuthConfig;
  limits!: {
    requestsPerMinute: number;
    uploadRequestsPerMinute: number;
    /** Bytes of pending and ready audio one user may hold; `null` means no quota. */
    userQuotaBytes: number | null;
    /** Bytes one user may have in uploads not yet completed, quota or not. */
    maxPendingUploadBytes: number;
    /** Uploads one user may have not yet completed. */
    maxPendingUploads: number;
    /** Where rate limits are counted for all instances together; absent means each instance's memory. */
    redisUrl?: string;
  };
  /** Browser origins allowed to call the API; empty means no cross-origin access. */
  corsOrigins!: readonly string[];
  /** How long the server waits on a client, in milliseconds. */
  http!: {
    /** For the request line and headers. */
    headersTimeoutMs: number;
    /** For a whole API request, body included (uploads to the local store have their own). */
    requestTimeoutMs: number;
    /** For a whole upload to the local store's signed URL. */
    uploadTimeoutMs: number;
    /** With nothing received or sent on the connection. */
    idleTimeoutMs: number;
    /** For the next request on a kept-alive connection. */
    keepAliveTimeoutMs: number;
  };
  lifecycle!: {
    /** Pending clips older than this are expired and their uploads deleted. */
    uploadTtlSeconds: number;
    /** How often the janitor runs inside the app; 0 leaves it to `npm run sweep`. */
    janitorIntervalSeconds: number;
  };
  /** The background job that makes renditions and waveforms (docs/renditions.md). */
  renditions!: {
    /** Jobs one instance runs at once; 0 makes none here (the API still answers). */
    concurrency: number;
    /** Wall clock one job may take (download, decode, upload); its decoder is killed past it. */
    timeoutSeconds: number;
    /** Address space of one decoder process. */
    memoryMiB: number;
    ffmpegPath: string;
    ffprobePath: string;
  };
  sync!: {
    /** How long a deleted note's or clip's tombstone is kept for the change feed; older cursors answer 410. */
    tombstoneTtlSeconds: number;
    /** How many versions of each note are kept (revisions; the oldest go first). */
    noteRevisionsKept: number;
  };
  exports!: {
    /** How long a ready export archive can be downloaded before the janitor deletes it. */
    expiresSeconds: number;
    /** Exports one owner may ask for in 24 hours (429 past it). */
    perDay: number;
  };
  operations!: {
    /** `undefined`: JSON unless stdout is a terminal (decided when the logger starts). */
    logFormat: LogFormat | undefined;
    logLevel: LogLevelName;
    /** The internal Prometheus port; `null` when metrics are off. */
    metricsPort: number | null;
    /** How long a SIGTERM/SIGINT drain waits for requests in flight before it cuts them. */
    shutdownGraceSeconds: number;
  };
}

export type LogFormat = 'json' | 'pretty';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const DEFAULT_METRICS_PORT = 9464;

export class ConfigValidationError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** S3 cannot sign a URL for longer than seven days. */
export const MAX_PRESIGN_EXPIRES_SECONDS = 7 * 24 * 60 * 60;
export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
/** S3's smallest part (but the last): a threshold below it would make one-part uploads. */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;
export const DEFAULT_MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024;
export const DEFAULT_DATABASE_URL = 'sqlite:./data/advanced-notes.sqlite';
export const DEFAULT_LOCAL_STORAGE_DIR = './data/objects';
export const DEFAULT_DEV_AUTH_SECRET_FILE = './data/dev-auth.secret';
/** Start-up gives the database and the bucket this long to answer before it stops with a clear message. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 5;
const MIN_SECRET_LENGTH = 32;

/** Reads and validates the whole environment, reporting every problem at once, each naming its variable. */
export function loadAppConfig(env: Env): AppConfig {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return Number(raw);
  };
  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  const port = integer('PORT', 3000, 0, 65535);
  const host = read('HOST') ?? '0.0.0.0';

  const publicBaseUrl = (read('PUBLIC_BASE_URL') ?? `http://localhost:${port}`).replace(/\/+$/, '');
  if (!isHttpUrl(publicBaseUrl)) problems.push(`PUBLIC_BASE_URL must be an http(s) URL (got "${publicBaseUrl}")`);

  const database: DatabaseConfig = {
    ...parseDatabaseUrl(read('DATABASE_URL') ?? DEFAULT_DATABASE_URL, problems),
    connectTimeoutSeconds: integer('DATABASE_CONNECT_TIMEOUT_SECONDS', DEFAULT_CONNECT_TIMEOUT_SECONDS, 1, 600),
    migrationsRun: boolean('MIGRATIONS_RUN', true),
    legacyOwnerId: read('LEGACY_OWNER_ID') ?? '',
  };

  let keyPrefix = 'dev';
  let keyPrefixSource: PrefixSource | 'default' = 'default';
  try {
    ({ prefix: keyPrefix, source: keyPrefixSource } = resolveKeyPrefix(env));
  } catch (error) {
    if (!(error instanceof InvalidKeyPrefixError)) throw error;
    problems.push(`${error.source}: ${error.message}`);
  }

  const presignPutExpiresSeconds = integer('S3_PRESIGN_PUT_EXPIRES_SECONDS', 900, 1, MAX_PRESIGN_EXPIRES_SECONDS);
  const presignGetExpiresSeconds = integer('S3_PRESIGN_GET_EXPIRES_SECONDS', 900, 1, MAX_PRESIGN_EXPIRES_SECONDS);

  const bucket = read('S3_BUCKET');
  const requestedDriver = read('STORAGE_DRIVER')?.toLowerCase();
  let driver: StorageDriverName = bucket ? 's3' : 'local';
  if (requestedDriver !== undefined) {
    if (requestedDriver === 's3' || requestedDriver === 'local') driver = requestedDriver;
    else problems.push(`STORAGE_DRIVER must be "s3" or "local" (got "${requestedDriver}")`);
  }

  let s3: S3Config | undefined;
  let local: LocalStorageConfig | undefined;
  if (driver === 's3') {
    s3 = {
      ...parseS3Config(read, bucket, problems),
      connectTimeoutSeconds: integer('S3_CONNECT_TIMEOUT_SECONDS', DEFAULT_CONNECT_TIMEOUT_SECONDS, 1, 600),
      timeoutMs: integer('STORAGE_TIMEOUT_SECONDS', 5, 1, 300) * 1000,
    };
  } else {
    local = {
      directory: read('LOCAL_STORAGE_DIR') ?? DEFAULT_LOCAL_STORAGE_DIR,
      signingSecret: read('LOCAL_STORAGE_SIGNING_SECRET'),
    };
    if (local.signingSecret !== undefined && local.signingSecret.length < 32) {
      problems.push('LOCAL_STORAGE_SIGNING_SECRET must be at least 32 characters long');
    }
  }

  const allowedMimeTypes = parseMimeTypes(read('AUDIO_MIME_TYPES'), problems);
  const maxUploadBytes = integer('MAX_UPLOAD_BYTES', DEFAULT_MAX_UPLOAD_BYTES, 1, Number.MAX_SAFE_INTEGER);
  const multipartThresholdBytes = integer(
    'MULTIPART_THRESHOLD_BYTES',
    DEFAULT_MULTIPART_THRESHOLD_BYTES,
    MIN_PART_SIZE_BYTES,
    Number.MAX_SAFE_INTEGER,
  );

  // Production is the "prod" prefix, or any environment variable naming production, even beside a custom prefix.
  const production =
    keyPrefix === 'prod' ||
    ['APP_ENV', 'ENV', 'FLASK_ENV', 'NODE_ENV'].some((name) =>
      ['production', 'prod', 'live'].includes(read(name)?.toLowerCase() ?? ''),
    );
  const auth: AuthConfig = {
    ...parseAuthConfig(read, production, integer, problems),
    maxTokenLifetimeSeconds: integer(
      'AUTH_MAX_TOKEN_LIFETIME_SECONDS',
      DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
      60,
      365 * 24 * 60 * 60,
    ),
  };
  const quota = integer('USER_QUOTA_BYTES', 0, 0, Number.MAX_SAFE_INTEGER);
  const limits = {
    requestsPerMinute: integer('RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    uploadRequestsPerMinute: integer('UPLOAD_RATE_LIMIT_PER_MINUTE', 60, 1, 1_000_000),
    userQuotaBytes: quota === 0 ? null : quota,
    maxPendingUploadBytes: integer('MAX_PENDING_UPLOAD_BYTES', 1024 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
    maxPendingUploads: integer('MAX_PENDING_UPLOADS', 100, 1, 1_000_000),
    redisUrl: read('REDIS_URL'),
  };
  if (limits.redisUrl !== undefined && !isRedisUrl(limits.redisUrl)) {
    problems.push(`REDIS_URL must be a redis:// or rediss:// URL (got "${limits.redisUrl.split('@').pop()}")`);
  }
  const corsOrigins = (read('CORS_ORIGINS') ?? '')
    .split(',')
    .map((origin) => origin.trim().replace(/\/+$/, ''))
    .filter((origin) => origin !== '');
  for (const origin of corsOrigins) {
    if (!isHttpUrl(origin) || new URL(origin).origin !== origin)
      problems.push(`CORS_ORIGINS has "${origin}", which is not an origin like https://app.example.com`);
  }

  const lifecycle = {
    uploadTtlSeconds: integer('UPLOAD_TTL_SECONDS', 24 * 60 * 60, 60, 30 * 24 * 60 * 60),
    janitorIntervalSeconds: integer('JANITOR_INTERVAL_SECONDS', 60, 0, 24 * 60 * 60),
  };

  const sync = {
    tombstoneTtlSeconds: integer('SYNC_TOMBSTONE_TTL_SECONDS', 90 * 24 * 60 * 60, 60, 10 * 365 * 24 * 60 * 60),
    noteRevisionsKept: integer('NOTE_REVISIONS_KEPT', 50, 1, 10_000),
  };
  // A download URL (S3: at most seven days) is handed out for at most the archive's remaining life.
  const exportLimits = {
    expiresSeconds: integer('EXPORT_EXPIRES_SECONDS', 24 * 60 * 60, 60, MAX_PRESIGN_EXPIRES_SECONDS),
    perDay: integer('EXPORTS_PER_DAY', 5, 1, 1000),
  };

  const seconds = (name: string, fallback: number, max: number) => integer(name, fallback, 1, max) * 1000;
  const http = {
    headersTimeoutMs: seconds('HTTP_HEADERS_TIMEOUT_SECONDS', 10, 600),
    requestTimeoutMs: seconds('HTTP_REQUEST_TIMEOUT_SECONDS', 30, 3600),
    uploadTimeoutMs: seconds('UPLOAD_TIMEOUT_SECONDS', 3600, 24 * 3600),
    idleTimeoutMs: seconds('HTTP_IDLE_TIMEOUT_SECONDS', 30, 3600),
    keepAliveTimeoutMs: seconds('HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', 5, 3600),
  };
  const operations = parseOperationsConfig(read, integer, port, problems);
  const renditions = {
    concurrency: integer('RENDITION_CONCURRENCY', 1, 0, 16),
    timeoutSeconds: integer('RENDITION_TIMEOUT_SECONDS', 600, 1, 24 * 60 * 60),
    memoryMiB: integer('RENDITION_MEMORY_MIB', 1024, 64, 64 * 1024),
    ffmpegPath: read('FFMPEG_PATH') ?? 'ffmpeg',
    ffprobePath: read('FFPROBE_PATH') ?? 'ffprobe',
  };

  if (problems.length > 0) throw new ConfigValidationError(problems);
  return Object.assign(new AppConfig(), {
    host,
    port,
    publicBaseUrl,
    database,
    storage: { driver, keyPrefix, keyPrefixSource, presignPutExpiresSeconds, presignGetExpiresSeconds, s3, local },
    audio: { allowedMimeTypes, maxUploadBytes, multipartThresholdBytes },
    auth,
    limits,
    corsOrigins,
    lifecycle,
    sync,
    exports: exportLimits,
    http,
    renditions,
    operations,
  });
}

function parseOperationsConfig(
  read: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
  port: number,
  problems: string[],
): AppConfig['operations'] {
  const format = read('LOG_FORMAT')?.toLowerCase();
  if (format !== undefined && format !== 'json' && format !== 'pretty')
    problems.push(`LOG_FORMAT must be "json" or "pretty" (got "${format}")`);
  const level = read('LOG_LEVEL')?.toLowerCase() ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${level}")`);
  const metricsPort = integer('METRICS_PORT', DEFAULT_METRICS_PORT, 0, 65535);
  // The metrics say how the service is used: they must never be reachable where the public API is.
  if (metricsPort !== 0 && metricsPort === port)
    problems.push(`METRICS_PORT must differ from PORT (both ${port}); 0 turns metrics off`);
  return {
    logFormat: format === 'json' || format === 'pretty' ? format : undefined,
    logLevel: (LOG_LEVELS as readonly string[]).includes(level) ? (level as LogLevelName) : 'info',
    metricsPort: metricsPort === 0 ? null : metricsPort,
    shutdownGraceSeconds: integer('SHUTDOWN_GRACE_SECONDS', 10, 0, 3600),
  };
}

function parseAuthConfig(
  read: (name: string) => string | undefined,
  production: boolean,
  integer: (name: string, fallback: number, min: number, max: number) => number,
  problems: string[],
): AuthConfig {
  const secret = read('AUTH_JWT_SECRET');
  const jwksUrl = read('AUTH_JWKS_URL');
  const issuer = read('AUTH_ISSUER');
  const audience = read('AUTH_AUDIENCE');
  if (secret !== undefined && jwksUrl !== undefined) {
    problems.push(
      'AUTH_JWT_SECRET and AUTH_JWKS_URL cannot both be set: choose a shared secret or an identity provider',
    );
  }
  if (jwksUrl !== undefined) {
    if (!isHttpUrl(jwksUrl)) problems.push(`AUTH_JWKS_URL must be an http(s) URL (got "${jwksUrl}")`);
    // A provider's keys sign tokens for many tenants and apps: without the issuer check, any of them would pass.
    if (issuer === undefined)
      problems.push(
        'AUTH_ISSUER is required with AUTH_JWKS_URL (the issuer your identity provider puts in its tokens)',
      );
    const cooldownSeconds = integer('AUTH_JWKS_COOLDOWN_SECONDS', 30, 0, 3600);
    return { mode: 'jwks', jwksUrl, issuer: issuer ?? '', audience, cooldownSeconds };
  }
  if (secret !== undefined) {
    if (secret.length < MIN_SECRET_LENGTH)
      problems.push(`AUTH_JWT_SECRET must be at least ${MIN_SECRET_LENGTH} characters long`);
    return { mode: 'secret', secret, issuer, audience };
  }
  if (production) {
    problems.push(
      'AUTH_JWT_SECRET or AUTH_JWKS_URL is required in production: the API must not run without verified sign-in',
    );
  }
  return {
    mode: 'dev-secret',
    secretFile: read('AUTH_DEV_SECRET_FILE') ?? DEFAULT_DEV_AUTH_SECRET_FILE,
    issuer,
    audience,
  };
}

function parseS3Config(
  read: (name: string) => string | undefined,
  bucket: string | undefined,
  problems: string[],
): S3Config {
  if (!bucket) problems.push('S3_BUCKET is required when STORAGE_DRIVER is "s3"');
  else if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    problems.push(`S3_BUCKET "${bucket}" is not a valid bucket name`);

  const region = read('AWS_REGION') ?? read('AWS_DEFAULT_REGION');
  if (!region) problems.push('AWS_REGION is required when STORAGE_DRIVER is "s3" (e.g. us-east-1)');

  const endpointUrl = read('S3_ENDPOINT_URL');
  if (endpointUrl !== undefined && !isHttpUrl(endpointUrl)) {
    problems.push(`S3_ENDPOINT_URL must be an http(s) URL (got "${endpointUrl}")`);
  }

  const accessKeyId = read('AWS_ACCESS_KEY_ID');
  const secretAccessKey = read('AWS_SECRET_ACCESS_KEY');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    problems.push(
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or both left unset for the default credential chain)',
    );
  }
  const credentials =
    accessKeyId && secretAccessKey
      ? { accessKeyId, secretAccessKey, sessionToken: read('AWS_SESSION_TOKEN') }
      : undefined;
  return { bucket: bucket ?? '', region: region ?? '', endpointUrl, credentials };
}

function parseDatabaseUrl(
  url: string,
  problems: string[],
): { type: 'postgres'; url: string } | { type: 'sqlite'; path: string } {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    try {
      new URL(url);
      return { type: 'postgres', url };
    } catch {
      problems.push('DATABASE_URL is not a valid postgres:// URL');
    }
  } else if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path !== '') return { type: 'sqlite', path };
    problems.push('DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/advanced-notes.sqlite');
  } else {
    problems.push(`DATABASE_URL must start with postgres://, postgresql:// or sqlite: (got "${url.split(':')[0]}:…")`);
  }
  return { type: 'sqlite', path: '' };
}

function parseMimeTypes(raw: string | undefined, problems: string[]): string[] {
  if (raw === undefined) return [...DEFAULT_AUDIO_MIME_TYPES];
  // The allow-list goes by base type; `audio/webm;codecs=opus` here means `audio/webm`.
  const types = raw
    .split(',')
    .map((type) => baseMimeType(type))
    .filter((type) => type !== '');
  const unknown = types.filter((type) => extensionForMimeType(type) === undefined);
  if (types.length === 0) problems.push('AUDIO_MIME_TYPES must list at least one audio type');
  if (unknown.length > 0) {
    problems.push(`AUDIO_MIME_TYPES has types this server cannot store: ${unknown.join(', ')}`);
  }
  return [...new Set(types)];
}

function isRedisUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return ['redis:', 'rediss:'].includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

function isHttpUrl(value: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}
