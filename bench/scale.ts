import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { registerSqliteSearchFunction } from '../src/notes/search/search-sql';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AudioClipsRepository, PLAYABLE_CLIP_SQL, PRIMARY_CLIP_SQL } from '../src/audio-clips/audio-clips.repository';
import { AudioClip, AudioClipStatus } from '../src/audio-clips/audio-clip.entity';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions } from '../src/database/database.options';
import S3rver from '@20minutes/s3rver';
import { issueToken } from '../src/auth/dev-token';
import { startServer } from './children';
import { printTable } from './table';

/**
 * `npm run bench:scale`: do the two hot lookups stay flat as the data grows? For SQLite (temp files) and
 * Postgres (fresh databases on BENCH_PG_URL, dropped at the end) it runs the app's migrations, seeds a
 * 1k database (1,000 clips over 100 notes) and a 1M one (a copy of the 1k one grown to 1,000,000 clips
 * over 100,000 notes), then measures both side by side in interleaved rounds: the repository's lookups in
 * this process, and the two endpoints through one app instance per database over HTTP. It prints p50/p99
 * with the ratio 1M/1k, and the query plans.
 *
 * Both databases get exactly the same rows (ids are derived from the row number, so the lookups can pick
 * random existing rows without asking the database) and the same lookup sequence (a seeded PRNG).
 */
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 5000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1000);
const TARGET_RATIO = 1.2;
const OWNERS = 8;
const KEY_PREFIX = 'bench';
/** Clip i was created at T0 + i seconds; note n at T0 + n seconds. */
const T0 = Date.UTC(2025, 0, 1);
const STEPS = [
  { label: '1k', notes: 100, clips: 1_000 },
  { label: '1M', notes: 100_000, clips: 1_000_000 },
] as const;
const MIMES = [
  ['audio/m4a', 'm4a'],
  ['audio/webm', 'webm'],
  ['audio/mpeg', 'mp3'],
] as const;

/** The exact SQL of AudioClipsRepository.findPlayable / findPrimaryOfNote, for the plans. */
const SQL_PLAYABLE = PLAYABLE_CLIP_SQL;
const SQL_PRIMARY = PRIMARY_CLIP_SQL;

// ---------------------------------------------------------------------------------------------------
// The generated data: one definition, used by the SQLite seeder (JS) and mirrored in SQL for Postgres.
// ---------------------------------------------------------------------------------------------------

/** md5 of the seed, shaped as a v4 UUID (version nibble 4, variant 8–b). */
function uuidFrom(seed: string): string {
  const h = createHash('md5').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[parseInt(h[16], 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The same as uuidFrom, in SQL, for a column `h` holding md5(seed). */
const sqlUuidFrom = (h: string) =>
  `substr(${h}, 1, 8) || '-' || substr(${h}, 9, 4) || '-4' || substr(${h}, 14, 3) || '-' || substr('89ab', ((strpos('0123456789abcdef', substr(${h}, 17, 1)) - 1) & 3) + 1, 1) || substr(${h}, 18, 3) || '-' || substr(${h}, 21, 12)`;

const noteId = (n: number) => uuidFrom(`note-${n}`);
const clipId = (i: number) => uuidFrom(`clip-${i}`);
const ownerOfNote = (n: number) => `bench-owner-${n % OWNERS}`;
/** The first 1,000 clips go round the first 100 notes, the rest round the other 99,900: 10 clips a note. */
const noteOfClip = (i: number) =>
  i < STEPS[0].clips ? i % STEPS[0].notes : STEPS[0].notes + ((i - STEPS[0].clips) % (STEPS[1].notes - STEPS[0].notes));
/** A multiplicative hash of the row number (exact in a JS double and in a Postgres bigint up to 1M rows). */
const mix = (i: number) => (i * 2654435761) % 4294967296;
/** 4% pending, 4% failed, 4% expired, 88% ready. */
function statusOf(i: number): 'pending' | 'failed' | 'expired' | 'ready' {
  const bucket = mix(i) % 100;
  return bucket < 4 ? 'pending' : bucket < 8 ? 'failed' : bucket < 12 ? 'expired' : 'ready';
}
const SQL_NOTE_OF_CLIP = `CASE WHEN i < ${STEPS[0].clips} THEN i % ${STEPS[0].notes} ELSE ${STEPS[0].notes} + (i - ${STEPS[0].clips}) % ${STEPS[1].notes - STEPS[0].notes} END`;
const SQL_BUCKET = '((i::bigint * 2654435761) % 4294967296) % 100';
const SQL_MIX = '((i::bigint * 2654435761) % 4294967296)';
const FAILED_REASON = 'The upload is not the audio declared.';
const EXPIRED_REASON = 'The upload was not completed in time.';

/** SQLite keeps timestamps as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC, as TypeORM writes them. */
const sqliteTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

function clipRow(i: number) {
  const n = noteOfClip(i);
  const id = clipId(i);
  const status = statusOf(i);
  const [mime, ext] = MIMES[i % MIMES.length];
  const created = T0 + i * 1000;
  const durationMs = 5_000 + (mix(i) % 595_000);
  const completed = status === 'ready' ? created + 20_000 : null;
  const updated =
    status === 'ready'
      ? created + 20_000
      : status === 'failed'
        ? created + 30_000
        : status === 'expired'
          ? created + 86_400_000
          : created;
  return [
    id,
    ownerOfNote(n),
    noteId(n),
    status,
    mime,
    Math.round(durationMs * 16), // ~128 kbit/s
    durationMs,
    durationMs,
    status === 'ready' && ext !== 'webm' ? 'measured' : 'declared',
    null, // content_md5
    `${KEY_PREFIX}/audio-clips/${id}.${ext}`,
    `${KEY_PREFIX}/uploads/${id}.${ext}`,
    sqliteTime(created + 900_000),
    status === 'failed' ? FAILED_REASON : status === 'expired' ? EXPIRED_REASON : null,
    sqliteTime(created),
    sqliteTime(updated),
    completed === null ? null : sqliteTime(completed),
  ];
}

const CLIP_COLUMNS =
  'id, owner_id, note_id, status, mime_type, bytes, duration_ms, declared_duration_ms, duration_source, content_md5, storage_key, upload_key, upload_expires_at, failure_reason, created_at, updated_at, completed_at';

// ---------------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------------

interface Range {
  from: number;
  to: number; // exclusive
}

function seedSqlite(path: string, notes: Range, clips: Range): void {
  const db = new Database(path);
  // The search index's triggers call the app's function, as on every connection of the app.
  registerSqliteSearchFunction(db);
  try {
    db.pragma('foreign_keys = ON');
    db.pragma('cache_size = -1048576'); // 1 GiB, this seeding connection only
    db.pragma('synchronous = OFF'); // this connection only; the file is thrown away
    const insertNote = db.prepare(
      'INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const insertClip = db.prepare(
      `INSERT INTO audio_clips (${CLIP_COLUMNS}) VALUES (${CLIP_COLUMNS.split(',')
        .map(() => '?')
        .join(', ')})`,
    );
    const BATCH = 50_000;
    const notesBatch = db.transaction((from: number, to: number) => {
      for (let n = from; n < to; n++) {
        const at = sqliteTime(T0 + n * 1000);
        insertNote.run(noteId(n), ownerOfNote(n), `note ${n}`, '', at, at);
      }
    });
    const clipsBatch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) insertClip.run(...clipRow(i));
    });
    for (let n = notes.from; n < notes.to; n += BATCH) notesBatch(n, Math.min(n + BATCH, notes.to));
    for (let i = clips.from; i < clips.to; i += BATCH) clipsBatch(i, Math.min(i + BATCH, clips.to));
    db.exec('ANALYZE');
    // Leave nothing in the WAL: lookups then read the main file, as a long-running app's would.
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

async function seedPostgres(dataSource: DataSource, notes: Range, clips: Range): Promise<void> {
  const runner = dataSource.createQueryRunner();
  try {
    await runner.query('SET synchronous_commit = off');
    await runner.query(
      `INSERT INTO notes (id, owner_id, title, body, created_at, updated_at)
       SELECT ${sqlUuidFrom('h')}, 'bench-owner-' || (n % ${OWNERS}), 'note ' || n, '', at, at
       FROM (SELECT n, md5('note-' || n) AS h, timestamptz '2025-01-01 00:00:00+00' + n * interval '1 second' AS at
             FROM generate_series($1::int, $2::int) AS n) AS g`,
      [notes.from, notes.to - 1],
    );
    const CHUNK = 250_000;
    for (let from = clips.from; from < clips.to; from += CHUNK) {
      const to = Math.min(from + CHUNK, clips.to);
      await runner.query(
        `INSERT INTO audio_clips (${CLIP_COLUMNS})
         SELECT id, 'bench-owner-' || (note % ${OWNERS}), note_id, status, mime, duration_ms * 16, duration_ms, duration_ms,
                CASE WHEN status = 'ready' AND ext <> 'webm' THEN 'measured' ELSE 'declared' END,
                NULL,
                '${KEY_PREFIX}/audio-clips/' || id || '.' || ext,
                '${KEY_PREFIX}/uploads/' || id || '.' || ext,
                created + interval '900 seconds',
                CASE status WHEN 'failed' THEN '${FAILED_REASON}' WHEN 'expired' THEN '${EXPIRED_REASON}' END,
                created,
                CASE status WHEN 'ready' THEN created + interval '20 seconds' WHEN 'failed' THEN created + interval '30 seconds'
                            WHEN 'expired' THEN created + interval '1 day' ELSE created END,
                CASE WHEN status = 'ready' THEN created + interval '20 seconds' END
         FROM (
           SELECT ${sqlUuidFrom('h')} AS id, note, ${sqlUuidFrom('nh')} AS note_id,
                  CASE WHEN bucket < 4 THEN 'pending' WHEN bucket < 8 THEN 'failed' WHEN bucket < 12 THEN 'expired' ELSE 'ready' END AS status,
                  (ARRAY['${MIMES[0][0]}', '${MIMES[1][0]}', '${MIMES[2][0]}'])[i % 3 + 1] AS mime,
                  (ARRAY['${MIMES[0][1]}', '${MIMES[1][1]}', '${MIMES[2][1]}'])[i % 3 + 1] AS ext,
                  (5000 + mixed % 595000)::int AS duration_ms,
                  timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second' AS created
           FROM (SELECT i, md5('clip-' || i) AS h, ${SQL_NOTE_OF_CLIP} AS note, md5('note-' || (${SQL_NOTE_OF_CLIP})) AS nh,
                        ${SQL_BUCKET} AS bucket, ${SQL_MIX} AS mixed
                 FROM generate_series($1::int, $2::int) AS i) AS g
         ) AS c`,
        [from, to - 1],
      );
    }
    // VACUUM (ANALYZE), not just ANALYZE: it also sets hint bits and the visibility map, and keeps
    // autovacuum (due after a million inserts) from starting in the middle of the measurement.
    await runner.query('VACUUM (ANALYZE) notes, audio_clips');
  } finally {
    await runner.release();
  }
}

// ---------------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------------

/** mulberry32: the same lookup sequence for both databases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Stats {
  p50: number;
  p99: number;
  found: number;
  wrong: number;
}

/**
 * found → true; found but not what was asked for → false; nothing → null. A lookup that knows its own
 * duration better than the wall clock around it (the server's execution time) reports it in `micros`.
 */
type Found = boolean | null;
type Lookup = () => Promise<Found | { found: Found; micros: number }>;

class Samples {
  private readonly values: number[] = [];
  found = 0;
  wrong = 0;

  async take(lookup: Lookup): Promise<void> {
    const start = process.hrtime.bigint();
    const answer = await lookup();
    const elapsed = Number(process.hrtime.bigint() - start) / 1000;
    const ok = typeof answer === 'object' && answer !== null ? answer.found : answer;
    this.values.push(typeof answer === 'object' && answer !== null ? answer.micros : elapsed);
    if (ok === true) this.found++;
    else if (ok === false) this.wrong++;
  }

  stats(): Stats {
    const sorted = Float64Array.from(this.values).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    return { p50: at(0.5), p99: at(0.99), found: this.found, wrong: this.wrong };
  }
}

/**
 * Runs every (size, lookup) pair in ROUNDS interleaved slices after its warm-up, so that whatever else
 * the shared machine is doing hits the 1k and the 1M measurements alike: the ratio is what is reported.
 */
const ROUNDS = 10;
/** SQLite's page cache for the diagnostic warm run: more than the 1M file. */
const WARM_CACHE_KIB = 1024 * 1024;
async function interleaved(lookups: Map<string, Lookup>, count: number, warmup: number): Promise<Map<string, Stats>> {
  const samples = new Map([...lookups.keys()].map((name) => [name, new Samples()]));
  for (const lookup of lookups.values()) for (let k = 0; k < warmup; k++) await lookup();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, lookup] of lookups) {
      const slice = Math.floor(count / ROUNDS) + (round < count % ROUNDS ? 1 : 0);
      for (let k = 0; k < slice; k++) await samples.get(name)!.take(lookup);
    }
  }
  return new Map([...samples].map(([name, sample]) => [name, sample.stats()]));
}

type Step = (typeof STEPS)[number];

/** The two lookups of one size, over the repository exactly as the app calls it, on random existing rows. */
function repositoryLookups(dataSource: DataSource, step: Step): { playable: Lookup; primary: Lookup } {
  const repository = new AudioClipsRepository(dataSource.getRepository(AudioClip));
  const random = prng(0x5ca1e + step.clips);
  return {
    playable: async () => {
      const i = Math.floor(random() * step.clips);
      const clip = await repository.findPlayable(ownerOfNote(noteOfClip(i)), clipId(i));
      return clip === null ? null : clip.storageKey.includes(clipId(i));
    },
    primary: async () => {
      const n = Math.floor(random() * step.notes);
      const clip = await repository.findPrimaryOfNote(ownerOfNote(n), noteId(n));
      return clip === null ? null : clip.noteId === noteId(n) && clip.status === AudioClipStatus.Ready;
    },
  };
}

/**
 * The same two statements timed by Postgres itself (EXPLAIN ANALYZE's execution time, planning left
 * out): on two shared cores the round trip to the server process swings by tens of microseconds with
 * where the scheduler puts the two processes, which hides what the table's size does to the lookup.
 */
function serverLookups(dataSource: DataSource, step: Step): { playable: Lookup; primary: Lookup } {
  const random = prng(0x5e7 + step.clips);
  const explain = async (sql: string, params: string[]) => {
    let index = 0;
    const pgSql = sql.replace(/\?/g, () => `$${++index}`);
    const [row] = (await dataSource.query(
      `EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) ${pgSql}`,
      params,
    )) as { 'QUERY PLAN': [{ Plan: { 'Actual Rows': number }; 'Execution Time': number }] }[];
    const [plan] = row['QUERY PLAN'];
    return { found: plan.Plan['Actual Rows'] === 1 ? true : null, micros: plan['Execution Time'] * 1000 };
  };
  return {
    playable: () => {
      const i = Math.floor(random() * step.clips);
      return explain(SQL_PLAYABLE, [clipId(i), ownerOfNote(noteOfClip(i))]);
    },
    primary: () => {
      const n = Math.floor(random() * step.notes);
      return explain(SQL_PRIMARY, [noteId(n), ownerOfNote(n)]);
    },
  };
}

/** The plans, for the exact SQL the repository runs, with a real clip and note. */
async function queryPlans(db: 'sqlite' | 'postgres', dataSource: DataSource, step: Step): Promise<string[]> {
  const i = Math.floor(prng(7)() * step.clips);
  const n = noteOfClip(i);
  const plans: string[] = [];
  for (const [name, sql, params] of [
    ['findPlayable', SQL_PLAYABLE, [clipId(i), ownerOfNote(n)]],
    ['findPrimaryOfNote', SQL_PRIMARY, [noteId(n), ownerOfNote(n)]],
  ] as const) {
    if (db === 'sqlite') {
      const rows = (await dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, [...params])) as {
        id: number;
        parent: number;
        detail: string;
      }[];
      const depth = new Map<number, number>([[0, 0]]);
      const lines = rows.map((row) => {
        const d = (depth.get(row.parent) ?? 0) + 1;
        depth.set(row.id, d);
        return `${'  '.repeat(d)}${row.detail}`;
      });
      plans.push(`sqlite · ${name} · ${step.label} rows: EXPLAIN QUERY PLAN\n${lines.join('\n')}`);
    } else {
      let index = 0;
      const pgSql = sql.replace(/\?/g, () => `$${++index}`);
      const rows = (await dataSource.query(`EXPLAIN (ANALYZE, BUFFERS) ${pgSql}`, [...params])) as {
        'QUERY PLAN': string;
      }[];
      plans.push(
        `postgres · ${name} · ${step.label} rows: EXPLAIN (ANALYZE, BUFFERS)\n${rows.map((row) => `  ${row['QUERY PLAN']}`).join('\n')}`,
      );
    }
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------------
// The endpoints: the app itself, one instance per size, asked over HTTP one request at a time
// ---------------------------------------------------------------------------------------------------

const ENDPOINT_REQUESTS = Number(process.env.BENCH_ENDPOINT_REQUESTS ?? 2000);
const ENDPOINT_WARMUP = 300;

interface Endpoints {
  s3: S3rver;
  secret: string;
  s3Port: number;
  children: ChildProcess[];
}

async function startEndpoints(dir: string): Promise<Endpoints> {
  const s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 's3'),
    configureBuckets: [{ name: 'bench' }],
  });
  const { port } = await s3.run();
  return { s3, s3Port: port, secret: randomBytes(32).toString('base64url'), children: [] };
}

async function stopEndpoints(endpoints: Endpoints): Promise<void> {
  for (const child of endpoints.children) child.kill();
  await endpoints.s3.close();
}

/** GET with one kept-alive connection, as a phone would; answers true when the body names what was asked for. */
function httpGet(agent: Agent, url: string, token: string, expect: string): Promise<boolean | null> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { agent, headers: { authorization: `Bearer ${token}` } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(response.statusCode === 200 ? body.includes(expect) : null));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

async function endpointLookups(
  endpoints: Endpoints,
  databaseUrl: string,
  step: Step,
): Promise<{ playback: Lookup; primary: Lookup; agent: Agent }> {
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    STORAGE_DRIVER: 's3',
    S3_BUCKET: 'bench',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    S3_ENDPOINT_URL: `http://127.0.0.1:${endpoints.s3Port}`,
    S3_KEY_PREFIX: KEY_PREFIX,
    AUTH_JWT_SECRET: endpoints.secret,
    RATE_LIMIT_PER_MINUTE: '1000000',
    UPLOAD_RATE_LIMIT_PER_MINUTE: '1000000',
    JANITOR_INTERVAL_SECONDS: '0',
  };
  const baseUrl = await startServer('app', env, endpoints.children);
  const auth = loadAppConfig(env).auth;
  const tokens = await Promise.all(Array.from({ length: OWNERS }, (_, k) => issueToken(auth, `bench-owner-${k}`)));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const random = prng(0xe9d + step.clips);
  const ready = (i: number) => statusOf(i) === 'ready';
  return {
    agent,
    playback: async () => {
      let i = Math.floor(random() * step.clips);
      while (!ready(i)) i = Math.floor(random() * step.clips);
      return httpGet(
        agent,
        `${baseUrl}/api/audio-clips/${clipId(i)}/playback`,
        tokens[noteOfClip(i) % OWNERS],
        clipId(i),
      );
    },
    primary: async () => {
      const n = Math.floor(random() * step.notes);
      return httpGet(agent, `${baseUrl}/api/notes/${noteId(n)}/audio`, tokens[n % OWNERS], noteId(n));
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------

interface Result {
  db: string;
  level: 'repository' | 'warm' | 'server' | 'endpoint';
  lookup: string;
  rows: number;
  /** Lookups of the 1k database's rows, made in the 1M database. */
  subset: boolean;
  stats: Stats;
}

/** `key` is "<step index>|<lookup>" or "subset|<lookup>". */
function resultOf(db: string, level: Result['level'], key: string, stats: Stats): Result {
  const [k, lookup] = key.split('|');
  const subset = k === 'subset';
  return { db, level, lookup, rows: subset ? STEPS[1].clips : STEPS[Number(k)].clips, subset, stats };
}

async function openDataSource(databaseUrl: string): Promise<DataSource> {
  // migrationsRun: true, as the app: the first open creates the schema, later ones find nothing to do.
  const options = dataSourceOptions(loadAppConfig({ DATABASE_URL: databaseUrl }).database);
  // One connection per Postgres database: sequential lookups then always meet the same server process.
  const extra = options.type === 'postgres' ? { extra: { max: 1 } } : {};
  return new DataSource({ ...options, ...extra, logging: ['error', 'warn'] }).initialize();
}

async function describeData(
  db: string,
  dataSource: DataSource,
  step: Step,
  seconds: number,
  size: string,
): Promise<void> {
  const [{ clips, notes }] = (await dataSource.query(
    'SELECT (SELECT count(*) FROM audio_clips) AS clips, (SELECT count(*) FROM notes) AS notes',
  )) as { clips: number | string; notes: number | string }[];
  console.log(
    `[${db}] ${step.label}: ${Number(clips).toLocaleString('en-US')} clips / ${Number(notes).toLocaleString('en-US')} notes, seeded in ${seconds.toFixed(1)} s (incl. ANALYZE); ${size}`,
  );
  if (Number(clips) !== step.clips || Number(notes) !== step.notes)
    throw new Error(`[${db}] expected ${step.clips} clips and ${step.notes} notes`);
  const statuses = (await dataSource.query(
    'SELECT status, count(*) AS n FROM audio_clips GROUP BY status ORDER BY status',
  )) as { status: string; n: number | string }[];
  console.log(
    `[${db}]   statuses: ${statuses.map((row) => `${row.status} ${Number(row.n).toLocaleString('en-US')}`).join(', ')}`,
  );
}

/**
 * Both lookups on each size, keyed "<size index>|<lookup>", plus "subset|<lookup>": the 1k database's rows
 * looked up in the 1M one (the same lookups, a table a thousand times larger).
 */
function bothSizes(
  dataSources: DataSource[],
  make: (dataSource: DataSource, step: Step) => { playable: Lookup; primary: Lookup },
): Map<string, Lookup> {
  const lookups = new Map<string, Lookup>();
  const add = (key: string, { playable, primary }: { playable: Lookup; primary: Lookup }) => {
    lookups.set(`${key}|findPlayable`, playable);
    lookups.set(`${key}|findPrimaryOfNote`, primary);
  };
  STEPS.forEach((step, k) => add(String(k), make(dataSources[k], step)));
  add('subset', make(dataSources[1], STEPS[0]));
  return lookups;
}

/**
 * Measures one database holding both sizes side by side (`urls[k]` holds STEPS[k]): the repository
 * lookups in this process, then the endpoints through one app instance per size.
 */
async function measureDatabase(
  db: 'sqlite' | 'postgres',
  urls: [string, string],
  endpoints: Endpoints,
): Promise<{ results: Result[]; plans: string[] }> {
  const results: Result[] = [];
  const plans: string[] = [];
  const dataSources = await Promise.all(urls.map(openDataSource));
  try {
    const migrations = (await dataSources[1].query('SELECT name FROM migrations ORDER BY id')) as { name: string }[];
    console.log(`[${db}] schema from ${migrations.length} migrations: ${migrations.map((m) => m.name).join(', ')}`);
    const lookups = bothSizes(dataSources, repositoryLookups);
    let started = performance.now();
    const repositoryStats = await interleaved(lookups, LOOKUPS, WARMUP);
    console.log(
      `[${db}] repository: ${LOOKUPS} + ${WARMUP} warm-up lookups per size and lookup, interleaved, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const [key, stats] of repositoryStats) results.push(resultOf(db, 'repository', key, stats));
    for (const [k, step] of STEPS.entries()) plans.push(...(await queryPlans(db, dataSources[k], step)));

    if (db === 'postgres') {
      started = performance.now();
      const serverStats = await interleaved(bothSizes(dataSources, serverLookups), LOOKUPS, WARMUP);
      console.log(
        `[${db}] server-side execution times: measured in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      for (const [key, stats] of serverStats) results.push(resultOf(db, 'server', key, stats));
    }

    if (db === 'sqlite') {
      // The same lookups once every page is in SQLite's own cache: what is left of the 1M/1k gap is then
      // not the data's size but reading pages from the OS (a diagnosis, not how the app is configured).
      started = performance.now();
      for (const dataSource of dataSources) {
        await dataSource.query(`PRAGMA cache_size = -${WARM_CACHE_KIB}`);
        await dataSource.query('SELECT count(upload_key) FROM audio_clips NOT INDEXED');
        await dataSource.query(
          "SELECT count(*) FROM audio_clips INDEXED BY sqlite_autoindex_audio_clips_1 WHERE id > ''",
        );
        await dataSource.query(
          "SELECT count(*) FROM audio_clips INDEXED BY idx_audio_clips_note_ready WHERE note_id > ''",
        );
      }
      const warmStats = await interleaved(lookups, LOOKUPS, WARMUP);
      console.log(
        `[${db}] repository with a warmed ${WARM_CACHE_KIB / 1024} MiB page cache: measured in ${((performance.now() - started) / 1000).toFixed(1)} s (incl. warming)`,
      );
      for (const [key, stats] of warmStats) results.push(resultOf(db, 'warm', key, stats));
    }
  } finally {
    await Promise.all(dataSources.map((dataSource) => dataSource.destroy()));
  }

  const lookups = new Map<string, Lookup>();
  const agents: Agent[] = [];
  for (const [k, step] of STEPS.entries()) {
    const { playback, primary, agent } = await endpointLookups(endpoints, urls[k], step);
    agents.push(agent);
    lookups.set(`${k}|GET /api/audio-clips/:id/playback`, playback);
    lookups.set(`${k}|GET /api/notes/:id/audio`, primary);
  }
  const started = performance.now();
  const endpointStats = await interleaved(lookups, ENDPOINT_REQUESTS, ENDPOINT_WARMUP);
  console.log(
    `[${db}] endpoints: ${ENDPOINT_REQUESTS} + ${ENDPOINT_WARMUP} warm-up requests per size and endpoint, one at a time, interleaved, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  for (const agent of agents) agent.destroy();
  for (const [key, stats] of endpointStats) {
    const [k, lookup] = key.split('|');
    results.push({ db, level: 'endpoint', lookup, rows: STEPS[Number(k)].clips, subset: false, stats });
  }
  return { results, plans };
}

async function main(): Promise<void> {
  const began = performance.now();
  console.log(
    `bench:scale: the 1k and the 1M database side by side; ${LOOKUPS} repository lookups and ${ENDPOINT_REQUESTS} HTTP requests per size, interleaved in ${ROUNDS} rounds; ` +
      `${OWNERS} owners; clips 88% ready, 4% pending/failed/expired each\n`,
  );
  const all: Result[] = [];
  const plans: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-scale-'));
  const endpoints = await startEndpoints(dir);
  const admin = new Client({ connectionString: PG_URL });
  const pgNames = STEPS.map((step) => `bench_scale_${step.label.toLowerCase()}_${randomBytes(4).toString('hex')}`);
  try {
    // SQLite: two temp files; the 1M one starts as a copy of the 1k one, then grows.
    const paths = STEPS.map((step) => join(dir, `scale-${step.label}.sqlite`));
    await (await openDataSource(`sqlite:${paths[0]}`)).destroy(); // the schema, by the app's migrations
    let started = performance.now();
    seedSqlite(paths[0], { from: 0, to: STEPS[0].notes }, { from: 0, to: STEPS[0].clips });
    const smallSeconds = (performance.now() - started) / 1000;
    await copyFile(paths[0], paths[1]);
    started = performance.now();
    seedSqlite(paths[1], { from: STEPS[0].notes, to: STEPS[1].notes }, { from: STEPS[0].clips, to: STEPS[1].clips });
    const bigSeconds = (performance.now() - started) / 1000;
    for (const [k, step] of STEPS.entries()) {
      const dataSource = await openDataSource(`sqlite:${paths[k]}`);
      await describeData(
        'sqlite',
        dataSource,
        step,
        k === 0 ? smallSeconds : bigSeconds,
        `file ${((await stat(paths[k])).size / 2 ** 20).toFixed(0)} MiB`,
      );
      await dataSource.destroy();
    }
    const sqlite = await measureDatabase('sqlite', [`sqlite:${paths[0]}`, `sqlite:${paths[1]}`], endpoints);
    all.push(...sqlite.results);
    plans.push(...sqlite.plans);

    if (process.env.BENCH_SQLITE_ONLY) return print(all, plans, began);
    // Postgres: two fresh databases, the 1M one made from the 1k one as a template; dropped at the end.
    await admin.connect();
    const [{ server_version, shared_buffers }] = (
      await admin.query(
        "SELECT current_setting('server_version') AS server_version, current_setting('shared_buffers') AS shared_buffers",
      )
    ).rows as { server_version: string; shared_buffers: string }[];
    console.log(`\n[postgres] ${server_version}, shared_buffers ${shared_buffers}, databases ${pgNames.join(', ')}`);
    const urls = pgNames.map((name) => {
      const url = new URL(PG_URL);
      url.pathname = `/${name}`;
      return url.toString();
    }) as [string, string];
    const pgSize = async (dataSource: DataSource) => {
      const [row] = (await dataSource.query(
        "SELECT pg_size_pretty(pg_table_size('audio_clips')) AS heap, pg_size_pretty(pg_indexes_size('audio_clips')) AS indexes",
      )) as { heap: string; indexes: string }[];
      return `audio_clips heap ${row.heap}, indexes ${row.indexes}`;
    };
    await admin.query(`CREATE DATABASE ${pgNames[0]}`);
    let dataSource = await openDataSource(urls[0]);
    started = performance.now();
    await seedPostgres(dataSource, { from: 0, to: STEPS[0].notes }, { from: 0, to: STEPS[0].clips });
    await describeData(
      'postgres',
      dataSource,
      STEPS[0],
      (performance.now() - started) / 1000,
      await pgSize(dataSource),
    );
    await dataSource.destroy();
    await admin.query(`CREATE DATABASE ${pgNames[1]} TEMPLATE ${pgNames[0]}`);
    dataSource = await openDataSource(urls[1]);
    started = performance.now();
    await seedPostgres(
      dataSource,
      { from: STEPS[0].notes, to: STEPS[1].notes },
      { from: STEPS[0].clips, to: STEPS[1].clips },
    );
    await describeData(
      'postgres',
      dataSource,
      STEPS[1],
      (performance.now() - started) / 1000,
      await pgSize(dataSource),
    );
    await dataSource.destroy();
    const postgres = await measureDatabase('postgres', urls, endpoints);
    all.push(...postgres.results);
    plans.push(...postgres.plans);
  } finally {
    await stopEndpoints(endpoints);
    if (!process.env.BENCH_PG_KEEP)
      for (const name of pgNames)
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  print(all, plans, began);
}

function print(all: Result[], plans: string[], began: number): void {
  for (const result of all) {
    const { found, wrong } = result.stats;
    const count = result.level === 'endpoint' ? ENDPOINT_REQUESTS : LOOKUPS;
    if (found !== count || wrong !== 0)
      throw new Error(`${result.db} ${result.lookup} at ${result.rows} rows found ${found}/${count}, wrong ${wrong}`);
  }
  // The table.
  const rows = all.map((result) => {
    const base = all.find(
      (other) =>
        other.db === result.db &&
        other.level === result.level &&
        other.lookup === result.lookup &&
        other.rows === STEPS[0].clips &&
        !other.subset,
    )!;
    const isBase = result === base;
    const r50 = result.stats.p50 / base.stats.p50;
    const r99 = result.stats.p99 / base.stats.p99;
    return [
      result.db,
      result.level === 'endpoint'
        ? result.lookup
        : result.level === 'server'
          ? `executed in the server: ${result.lookup} SQL`
          : `${result.level === 'warm' ? 'warm cache: ' : ''}repository.${result.lookup}`,
      `${result.rows.toLocaleString('en-US')}${result.subset ? ' (the 1k rows)' : ''}`,
      result.stats.p50.toFixed(1),
      result.stats.p99.toFixed(1),
      isBase
        ? ''
        : `p50 ${r50.toFixed(2)} · p99 ${r99.toFixed(2)} (${r50 <= TARGET_RATIO ? 'p50 within' : 'p50 OVER'} ${TARGET_RATIO})`,
    ];
  });
  console.log(`\n${'-'.repeat(20)} query plans ${'-'.repeat(20)}\n`);
  for (const plan of plans) console.log(`${plan}\n`);
  console.log(
    `${'-'.repeat(20)} results (µs per awaited repository call / per HTTP request; every lookup found its row; ratio = 1M / 1k) ${'-'.repeat(20)}\n`,
  );
  printTable(['database', 'lookup', 'rows', 'p50 µs', 'p99 µs', 'ratio 1M/1k'], rows);
  console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
