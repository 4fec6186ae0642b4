import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AudioClipsRepository } from '../src/audio-clips/audio-clips.repository';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions } from '../src/database/database.options';
import { printTable } from './table';

/**
 * `npm run bench:scale`: do the two hot lookups of `AudioClipsRepository` stay flat as the data grows?
 * For SQLite (a temp file) and Postgres (a fresh database on BENCH_PG_URL, dropped at the end) it runs
 * the app's migrations, seeds 1,000 clips over 100 notes, measures, grows to 1,000,000 clips over
 * 100,000 notes, measures again, and prints p50/p99 per lookup with the ratio 1M/1k and the query plans.
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

/** The exact SQL of AudioClipsRepository.findById / findPrimaryOfNote (for the plans). */
const SQL_BY_ID = 'SELECT * FROM audio_clips WHERE id = ? AND owner_id = ?';
const SQL_PRIMARY = "SELECT * FROM audio_clips WHERE note_id = ? AND status = 'ready' AND owner_id = ? ORDER BY completed_at DESC, id DESC LIMIT 1";

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
const noteOfClip = (i: number) => (i < STEPS[0].clips ? i % STEPS[0].notes : STEPS[0].notes + ((i - STEPS[0].clips) % (STEPS[1].notes - STEPS[0].notes)));
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
  const updated = status === 'ready' ? created + 20_000 : status === 'failed' ? created + 30_000 : status === 'expired' ? created + 86_400_000 : created;
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
  try {
    db.pragma('foreign_keys = ON');
    db.pragma('cache_size = -1048576'); // 1 GiB, this seeding connection only
    db.pragma('synchronous = OFF'); // this connection only; the file is thrown away
    const insertNote = db.prepare('INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
    const insertClip = db.prepare(`INSERT INTO audio_clips (${CLIP_COLUMNS}) VALUES (${CLIP_COLUMNS.split(',').map(() => '?').join(', ')})`);
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

async function measure(lookup: () => Promise<boolean | null>, count: number, warmup: number): Promise<Stats> {
  for (let k = 0; k < warmup; k++) await lookup();
  const samples = new Float64Array(count);
  let found = 0;
  let wrong = 0;
  for (let k = 0; k < count; k++) {
    const start = process.hrtime.bigint();
    const ok = await lookup();
    samples[k] = Number(process.hrtime.bigint() - start) / 1000;
    if (ok === true) found++;
    else if (ok === false) wrong++;
  }
  samples.sort();
  const at = (q: number) => samples[Math.min(count - 1, Math.ceil(q * count) - 1)];
  return { p50: at(0.5), p99: at(0.99), found, wrong };
}

async function measureStep(db: 'sqlite' | 'postgres', dataSource: DataSource, step: (typeof STEPS)[number]): Promise<{ byId: Stats; primary: Stats; plans: string[] }> {
  const repository = new AudioClipsRepository(dataSource);
  const random = prng(0x5ca1e + step.clips);
  // found → true; found but not what was asked for → false; nothing → null.
  const byId = await measure(
    async () => {
      const i = Math.floor(random() * step.clips);
      const clip = await repository.findById(ownerOfNote(noteOfClip(i)), clipId(i));
      return clip === null ? null : clip.id === clipId(i);
    },
    LOOKUPS,
    WARMUP,
  );
  const primary = await measure(
    async () => {
      const n = Math.floor(random() * step.notes);
      const clip = await repository.findPrimaryOfNote(ownerOfNote(n), noteId(n));
      return clip === null ? null : clip.noteId === noteId(n) && clip.status === 'ready';
    },
    LOOKUPS,
    WARMUP,
  );

  // The plans, for the exact SQL the repository runs, with a real clip and note.
  const i = Math.floor(random() * step.clips);
  const n = noteOfClip(i);
  const plans: string[] = [];
  for (const [name, sql, params] of [
    ['findById', SQL_BY_ID, [clipId(i), ownerOfNote(n)]],
    ['findPrimaryOfNote', SQL_PRIMARY, [noteId(n), ownerOfNote(n)]],
  ] as const) {
    if (db === 'sqlite') {
      const rows = (await dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, [...params])) as { id: number; parent: number; detail: string }[];
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
      const rows = (await dataSource.query(`EXPLAIN (ANALYZE, BUFFERS) ${pgSql}`, [...params])) as { 'QUERY PLAN': string }[];
      plans.push(`postgres · ${name} · ${step.label} rows: EXPLAIN (ANALYZE, BUFFERS)\n${rows.map((row) => `  ${row['QUERY PLAN']}`).join('\n')}`);
    }
  }
  return { byId, primary, plans };
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------

interface Result {
  db: string;
  lookup: string;
  rows: number;
  stats: Stats;
}

async function openDataSource(databaseUrl: string): Promise<DataSource> {
  // migrationsRun: true, as the app: the first open creates the schema, later ones find nothing to do.
  return new DataSource({ ...dataSourceOptions(loadAppConfig({ DATABASE_URL: databaseUrl }).database), logging: ['error', 'warn'] }).initialize();
}

async function runDatabase(db: 'sqlite' | 'postgres', databaseUrl: string, seed: (notes: Range, clips: Range, dataSource: DataSource) => Promise<DataSource>, size: (dataSource: DataSource) => Promise<string>): Promise<{ results: Result[]; plans: string[] }> {
  const results: Result[] = [];
  const plans: string[] = [];
  let dataSource = await openDataSource(databaseUrl);
  try {
    const migrations = (await dataSource.query('SELECT name FROM migrations ORDER BY id')) as { name: string }[];
    console.log(`[${db}] schema from ${migrations.length} migrations: ${migrations.map((m) => m.name).join(', ')}`);
    let notesDone = 0;
    let clipsDone = 0;
    for (const step of STEPS) {
      const started = performance.now();
      dataSource = await seed({ from: notesDone, to: step.notes }, { from: clipsDone, to: step.clips }, dataSource);
      const seconds = (performance.now() - started) / 1000;
      notesDone = step.notes;
      clipsDone = step.clips;
      const [{ clips, notes }] = (await dataSource.query('SELECT (SELECT count(*) FROM audio_clips) AS clips, (SELECT count(*) FROM notes) AS notes')) as { clips: number | string; notes: number | string }[];
      console.log(`[${db}] seeded to ${Number(clips).toLocaleString('en-US')} clips / ${Number(notes).toLocaleString('en-US')} notes in ${seconds.toFixed(1)} s (incl. ANALYZE); ${await size(dataSource)}`);
      if (Number(clips) !== step.clips || Number(notes) !== step.notes) throw new Error(`[${db}] expected ${step.clips} clips and ${step.notes} notes`);
      const statuses = (await dataSource.query('SELECT status, count(*) AS n FROM audio_clips GROUP BY status ORDER BY status')) as { status: string; n: number | string }[];
      console.log(`[${db}]   statuses: ${statuses.map((row) => `${row.status} ${Number(row.n).toLocaleString('en-US')}`).join(', ')}`);

      const started2 = performance.now();
      const measured = await measureStep(db, dataSource, step);
      console.log(
        `[${db}] ${step.label}: ${LOOKUPS} + ${WARMUP} warm-up lookups each in ${((performance.now() - started2) / 1000).toFixed(1)} s; ` +
          `findById found ${measured.byId.found}/${LOOKUPS} (wrong ${measured.byId.wrong}), findPrimaryOfNote found ${measured.primary.found}/${LOOKUPS} (wrong ${measured.primary.wrong})`,
      );
      results.push({ db, lookup: 'findById', rows: step.clips, stats: measured.byId });
      results.push({ db, lookup: 'findPrimaryOfNote', rows: step.clips, stats: measured.primary });
      plans.push(...measured.plans);
    }
  } finally {
    await dataSource.destroy();
  }
  return { results, plans };
}

async function main(): Promise<void> {
  const began = performance.now();
  console.log(`bench:scale: ${LOOKUPS} sequential awaited lookups (after ${WARMUP} warm-up) per lookup, database and size; ${OWNERS} owners; clips 88% ready, 4% pending/failed/expired each\n`);
  const all: Result[] = [];
  const plans: string[] = [];

  // SQLite: a temp file.
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-scale-'));
  try {
    const path = join(dir, 'scale.sqlite');
    const sqlite = await runDatabase(
      'sqlite',
      `sqlite:${path}`,
      async (notes, clips, dataSource) => {
        // Seed through a better-sqlite3 connection of its own, then reopen as the app would (cold page cache).
        await dataSource.destroy();
        seedSqlite(path, notes, clips);
        return openDataSource(`sqlite:${path}`);
      },
      async () => `file ${((await stat(path)).size / 2 ** 20).toFixed(0)} MiB`,
    );
    all.push(...sqlite.results);
    plans.push(...sqlite.plans);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // Postgres: a fresh database, dropped at the end.
  const admin = new Client({ connectionString: PG_URL });
  await admin.connect();
  const name = `bench_scale_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  try {
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    const [{ server_version, shared_buffers }] = (await admin.query('SELECT current_setting(\'server_version\') AS server_version, current_setting(\'shared_buffers\') AS shared_buffers')).rows as { server_version: string; shared_buffers: string }[];
    console.log(`\n[postgres] ${server_version}, shared_buffers ${shared_buffers}, database ${name}`);
    const postgres = await runDatabase(
      'postgres',
      url.toString(),
      async (notes, clips, dataSource) => {
        await seedPostgres(dataSource, notes, clips);
        return dataSource;
      },
      async (dataSource) => {
        const [row] = (await dataSource.query("SELECT pg_size_pretty(pg_table_size('audio_clips')) AS heap, pg_size_pretty(pg_indexes_size('audio_clips')) AS indexes")) as { heap: string; indexes: string }[];
        return `audio_clips heap ${row.heap}, indexes ${row.indexes}`;
      },
    );
    all.push(...postgres.results);
    plans.push(...postgres.plans);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }

  // The table.
  const rows = all.map((result) => {
    const base = all.find((other) => other.db === result.db && other.lookup === result.lookup && other.rows === STEPS[0].clips)!;
    const isBase = result === base;
    const r50 = result.stats.p50 / base.stats.p50;
    const r99 = result.stats.p99 / base.stats.p99;
    return [
      result.db,
      result.lookup,
      result.rows.toLocaleString('en-US'),
      result.stats.p50.toFixed(1),
      result.stats.p99.toFixed(1),
      isBase ? '' : `p50 ${r50.toFixed(2)} · p99 ${r99.toFixed(2)} (${r50 <= TARGET_RATIO ? 'p50 within' : 'p50 OVER'} ${TARGET_RATIO})`,
    ];
  });
  console.log(`\n${'-'.repeat(20)} query plans ${'-'.repeat(20)}\n`);
  for (const plan of plans) console.log(`${plan}\n`);
  console.log(`${'-'.repeat(20)} results (µs per awaited repository call; ratio = 1M / 1k) ${'-'.repeat(20)}\n`);
  printTable(['database', 'lookup', 'rows', 'p50 µs', 'p99 µs', 'ratio 1M/1k'], rows);
  console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
