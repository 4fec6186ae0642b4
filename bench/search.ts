import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { issueToken } from '../src/auth/dev-token';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions, MIGRATIONS } from '../src/database/database.options';
import { benchEnv, startServer } from './children';
import { Agent, request as httpRequest } from 'node:http';
import { printTable } from './table';

/**
 * `npm run bench:search` (and the last part of `npm run bench`): search on a database of BENCH_SEARCH_ROWS
 * notes (1,000,000) in which one owner has BENCH_SEARCH_BIG (100,000) and another BENCH_SEARCH_SMALL
 * (10,000), text drawn from a word list with Zipf's law, on SQLite and on Postgres (BENCH_POSTGRES_URL, an
 * admin URL; a database of its own is made and dropped). It reports how long the search migration takes
 * on the notes already there and how big the index is, then p50/p99 of a one-word, a two-word and a
 * prefix query through the API against the same SQL in a node:http + driver baseline, and how the cost
 * grows from the small owner to the big one.
 */
const ROWS = Number(process.env.BENCH_SEARCH_ROWS ?? 1_000_000);
const BIG = Number(process.env.BENCH_SEARCH_BIG ?? 100_000);
const SMALL = Number(process.env.BENCH_SEARCH_SMALL ?? 10_000);
const DATABASES = (process.env.BENCH_SEARCH_DATABASES ?? 'sqlite,postgres').split(',');
const POSTGRES_ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** Rounds per query, API and baseline alternating (which goes first rotates): the median round is reported. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** A few concurrent searches: p50 and p99 are about one query's latency, not about throughput. */
const CONNECTIONS = 4;
/** Notes per owner among the others. */
const OTHER_OWNER_NOTES = 100;
const VOCABULARY = 5_000;

/** A deterministic generator, so every run searches the same text. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pronounceable words, a few with accents, ranked by how often they are used. */
function wordList(): string[] {
  const next = random(7);
  const onsets = ['b', 'c', 'd', 'f', 'g', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'br', 'st', 'tr', 'ch', 'pl'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ou', 'ea', 'é', 'ü'];
  const words = new Set<string>();
  while (words.size < VOCABULARY) {
    const syllables = 1 + Math.floor(next() * 3);
    let word = '';
    for (let i = 0; i < syllables; i += 1) {
      word += onsets[Math.floor(next() * onsets.length)] + vowels[Math.floor(next() * vowels.length)];
    }
    if (next() < 0.5) word += ['n', 'r', 's', 'l', 't'][Math.floor(next() * 5)];
    words.add(word);
  }
  return [...words];
}

/** Draws words with Zipf's law (rank r with weight 1/r), as natural text does. */
function zipfSampler(words: string[], next: () => number): () => string {
  const cumulative: number[] = [];
  let total = 0;
  for (let rank = 1; rank <= words.length; rank += 1) cumulative.push((total += 1 / rank));
  return () => {
    const target = next() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cumulative[mid] < target) low = mid + 1;
      else high = mid;
    }
    return words[low];
  };
}

interface Seeded {
  url: string;
  migrationSeconds: number;
  indexBytes: string;
  drop(): Promise<void>;
}

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

function ownerOf(i: number): string {
  if (i < BIG) return 'search-big';
  if (i < BIG + SMALL) return 'search-small';
  return `search-other-${Math.floor((i - BIG - SMALL) / OTHER_OWNER_NOTES)}`;
}

/** Note i's row: a few words of title, 20 to 60 of body, spread over the last year. */
function noteRows(words: string[]): (i: number) => [string, string, string, string, Date] {
  const next = random(42);
  const word = zipfSampler(words, next);
  const text = (count: number) => Array.from({ length: count }, word).join(' ');
  const start = Date.UTC(2025, 11, 1);
  return (i) => [
    uuid(i),
    ownerOf(i),
    text(2 + Math.floor(next() * 4)),
    text(20 + Math.floor(next() * 41)),
    new Date(start + Math.floor(next() * 365 * 86_400_000)),
  ];
}

/** The schema before search, ROWS notes in it, then the search migration, timed. */
async function seed(kind: string, dir: string, words: string[]): Promise<Seeded> {
  // BENCH_SEARCH_REUSE=<a kept search.sqlite>: measure the queries again on it, without seeding.
  const reuse = process.env.BENCH_SEARCH_REUSE;
  if (kind === 'sqlite' && reuse) {
    const options = dataSourceOptions(loadAppConfig({ DATABASE_URL: `sqlite:${reuse}` }).database);
    const kept = await new DataSource({ ...options, migrationsRun: false, logging: false }).initialize();
    await kept.runMigrations({ transaction: 'each' });
    const indexBytes = `FTS5 tables ${mb(await sqliteSearchBytes(kept))}`;
    await kept.destroy();
    return { url: `sqlite:${reuse}`, migrationSeconds: Number.NaN, indexBytes, drop: async () => {} };
  }
  let url: string;
  let drop = async () => {};
  if (kind === 'sqlite') url = `sqlite:${join(dir, 'search.sqlite')}`;
  else {
    const name = `bench_search_${process.pid}`;
    const admin = new Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
    await admin.end();
    const target = new URL(POSTGRES_ADMIN_URL);
    target.pathname = `/${name}`;
    url = target.toString();
    drop = async () => {
      const again = new Client({ connectionString: POSTGRES_ADMIN_URL });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.end();
    };
  }
  const options = dataSourceOptions(loadAppConfig({ DATABASE_URL: url }).database);
  const mine = MIGRATIONS.findIndex((migration) => migration.name === 'NoteSearch1765200000000');
  const before = await new DataSource({
    ...options,
    migrations: MIGRATIONS.slice(0, mine),
    migrationsRun: false,
    logging: false,
  }).initialize();
  await before.runMigrations();
  const row = noteRows(words);
  const batch = 5_000;
  for (let first = 0; first < ROWS; first += batch) {
    const rows = Array.from({ length: Math.min(batch, ROWS - first) }, (_, k) => row(first + k));
    if (kind === 'sqlite') {
      const values = rows.map(() => '(?, ?, ?, ?, ?, ?)').join(', ');
      const stamp = (date: Date) => date.toISOString().replace('T', ' ').replace('Z', '');
      await before.query(
        `INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES ${values}`,
        rows.flatMap(([id, owner, title, body, at]) => [id, owner, title, body, stamp(at), stamp(at)]),
      );
    } else {
      await before.query(
        `INSERT INTO notes (id, owner_id, title, body, created_at, updated_at)
         SELECT * , c FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::text[], $5::timestamptz[]) AS u(a, b, t, d, c)`,
        [0, 1, 2, 3, 4].map((column) => rows.map((values) => values[column])),
      );
    }
    if ((first / batch) % 40 === 0) process.stderr.write(`  ${kind}: ${first + rows.length} notes\n`);
  }
  await before.destroy();

  const started = performance.now();
  const after = await new DataSource({ ...options, migrationsRun: false, logging: false }).initialize();
  await after.runMigrations({ transaction: 'each' });
  const migrationSeconds = (performance.now() - started) / 1000;
  let indexBytes: string;
  if (kind === 'sqlite') {
    indexBytes = `FTS5 tables ${mb(await sqliteSearchBytes(after))}`;
  } else {
    await after.query('ANALYZE');
    const [sizes] = (await after.query(`SELECT pg_relation_size('idx_note_search_terms') AS gin,
      pg_relation_size('idx_note_search_owner_updated') AS owner_index,
      pg_total_relation_size('note_search') AS total, pg_relation_size('notes') AS notes`)) as Record<string, string>[];
    indexBytes = `GIN ${mb(Number(sizes.gin))}, owner/time ${mb(Number(sizes.owner_index))}, note_search in all ${mb(Number(sizes.total))} (notes heap ${mb(Number(sizes.notes))})`;
  }
  await after.destroy();
  return { url, migrationSeconds, indexBytes, drop };
}

/** The FTS5 table's shadow tables (a migration that rebuilds it leaves free pages in the file, not counted). */
async function sqliteSearchBytes(dataSource: DataSource): Promise<number> {
  const [{ bytes }] = (await dataSource.query(
    "SELECT sum(pgsize) AS bytes FROM dbstat WHERE name LIKE 'notes_search%'",
  )) as { bytes: number }[];
  return bytes;
}

interface Latency {
  p50: number;
  p99: number;
  errors: number;
}

/**
 * CONNECTIONS keep-alive connections, each sending one request after another for `seconds`; latencies
 * kept to the microsecond (autocannon's are whole milliseconds, too coarse for queries of about one).
 */
async function measure(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
  seconds: number,
): Promise<Latency> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const latencies: number[] = [];
  let errors = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      httpRequest(`${baseUrl}${path}`, { agent, headers }, (response) => {
        response.resume();
        response.on('end', () => {
          latencies.push(performance.now() - started);
          if (response.statusCode !== 200) errors += 1;
          resolve();
        });
      })
        .on('error', reject)
        .end();
    });
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) await one();
    }),
  );
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
  return { p50: at(0.5), p99: at(0.99), errors };
}

const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(1));
const ratio = (value: number) => `${value.toFixed(2)}x`;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function startBaseline(env: Record<string, string>, children: ChildProcess[]): Promise<string> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = fork(join(__dirname, 'search-baseline.js'), [String(port)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(`http://127.0.0.1:${port}`));
    child.once('exit', (code) => reject(new Error(`search baseline exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const words = wordList();
  const prefix = words[299].slice(0, 3);
  // BENCH_SEARCH_ONLY=prefix (or "one word", "two words"): that query alone, say for a CPU profile.
  const queries = (
    [
      ['one word', words[99]],
      ['two words', `${words[19]} ${words[39]}`],
      ['prefix', prefix],
    ] as [string, string][]
  ).filter(([name]) => !process.env.BENCH_SEARCH_ONLY || name === process.env.BENCH_SEARCH_ONLY);
  console.log(
    `\nSearch: ${ROWS.toLocaleString('en')} notes, owners of ${BIG.toLocaleString('en')} and ${SMALL.toLocaleString('en')}; ` +
      `queries ${queries.map(([name, q]) => `${name} "${q}"`).join(', ')}; ${CONNECTIONS} connections, ` +
      `${ROUNDS} rounds of ${SECONDS} s per server (the median round reported, with the range of the ratios)\n`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-search-'));
  const children: ChildProcess[] = [];
  const setup: string[][] = [];
  const results: string[][] = [];
  const growth: string[][] = [];
  try {
    for (const kind of DATABASES) {
      const seeded = await seed(kind, dir, words);
      setup.push([kind, `${seeded.migrationSeconds.toFixed(1)} s`, seeded.indexBytes]);
      try {
        const env = { ...benchEnv(seeded.url, 1), STORAGE_DRIVER: 'local', LOCAL_STORAGE_DIR: join(dir, 'objects') };
        const authConfig = loadAppConfig(env).auth;
        const app = await startServer('app', env, children);
        const baseline = await startBaseline(env, children);
        const measured = new Map<string, Latency>();
        for (const [owner, notes] of [
          ['search-small', SMALL],
          ['search-big', BIG],
        ] as const) {
          const headers = { authorization: `Bearer ${await issueToken(authConfig, owner)}`, 'x-owner': owner };
          for (const [name, q] of queries) {
            const path = `/api/notes?q=${encodeURIComponent(q)}&limit=20`;
            await measure(app, path, headers, 0.5); // JIT, connection pools, caches
            await measure(baseline, path, headers, 0.5);
            const rounds: { api: Latency; bar: Latency }[] = [];
            for (let round = 0; round < ROUNDS; round += 1) {
              const first = round % 2 === 0 ? app : baseline;
              const one = await measure(first, path, headers, SECONDS);
              const other = await measure(first === app ? baseline : app, path, headers, SECONDS);
              rounds.push(first === app ? { api: one, bar: other } : { api: other, bar: one });
            }
            // The round whose ratio is the median: its p50s and p99s, and the range of the ratios.
            const ratios = rounds.map((r) => r.bar.p50 / r.api.p50);
            const order = ratios.map((_, index) => index).sort((a, b) => ratios[a] - ratios[b]);
            const { api, bar } = rounds[order[Math.floor(order.length / 2)]];
            const errors = rounds.reduce((sum, r) => sum + r.api.errors + r.bar.errors, 0);
            measured.set(`${owner} ${name}`, api);
            results.push([
              kind,
              notes.toLocaleString('en'),
              name,
              `${ms(api.p50)} / ${ms(api.p99)}`,
              `${ms(bar.p50)} / ${ms(bar.p99)}`,
              `${ratio(bar.p50 / api.p50)} (${ratio(ratios[order[0]])}–${ratio(ratios[order[order.length - 1]])})`,
              String(errors),
            ]);
          }
        }
        for (const [name] of queries) {
          const small = measured.get(`search-small ${name}`)!;
          const big = measured.get(`search-big ${name}`)!;
          growth.push([kind, name, ms(small.p50), ms(big.p50), ratio(big.p50 / small.p50)]);
        }
      } finally {
        for (const child of children.splice(0)) child.kill();
        await seeded.drop();
      }
    }
  } finally {
    // BENCH_SEARCH_KEEP=1 keeps the SQLite database, to try queries on it by hand.
    if (process.env.BENCH_SEARCH_KEEP) console.log(`\nkept: ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
  console.log(`Migration on ${ROWS.toLocaleString('en')} existing notes, and the index it builds:\n`);
  printTable(['database', 'migration', 'index size'], setup);
  console.log(
    '\np50 / p99 in ms, API against the same SQL in node:http + driver (ratio: baseline p50 / API p50, target ≥ 0.5;' +
      ' the median round, with the range over the rounds):\n',
  );
  printTable(['database', 'owner notes', 'query', 'API p50 / p99', 'baseline p50 / p99', 'ratio', 'errors'], results);
  console.log(
    `\nGrowth of the API's p50 from ${SMALL.toLocaleString('en')} to ${BIG.toLocaleString('en')} notes (target ≤ 3x):\n`,
  );
  printTable(
    ['database', 'query', `p50 at ${SMALL.toLocaleString('en')}`, `p50 at ${BIG.toLocaleString('en')}`, 'growth'],
    growth,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
