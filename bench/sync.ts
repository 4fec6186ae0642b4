import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { registerSqliteSearchFunction } from '../src/notes/search/search-sql';
import { DataSource } from 'typeorm';
import { issueToken } from '../src/auth/dev-token';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions } from '../src/database/database.options';
import { dropSyncTriggers, installSyncTriggers } from '../src/sync/sync-triggers';
import { benchEnv, startServer } from './children';
import { fmt, fmtRatio, load, perRound, type Measurement } from './measure';
import { printTable } from './table';

/**
 * Notes sync, measured side by side in one run (`npm run bench`, after the audio endpoints):
 *
 * - `PATCH /api/notes/{id}` as it is now (version check, revision kept, change counter bumped by the
 *   triggers, in one transaction) against today's PATCH path before sync: a node:http server doing that
 *   path's SQL (read the note, update title, body and updated_at) on a copy of the database without the
 *   sync triggers. Target ≥ 0.6.
 * - One page (100 changes) of `GET /api/sync/changes` for an owner with SYNC_BENCH_OWNER_NOTES notes among
 *   SYNC_BENCH_ROWS rows, against the raw indexed SQL query of the page in a node:http server. Target ≥ 0.5.
 *
 * `node dist-bench/bench/sync.js baseline <port> <sqlite file>` is the baseline server (a child process).
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
const ROWS = Number(process.env.SYNC_BENCH_ROWS ?? 1_000_000);
const OWNER_NOTES = Number(process.env.SYNC_BENCH_OWNER_NOTES ?? 10_000);
const OWNER = 'bench-sync-user';
const PATCHED_NOTES = 100;
const FEED_PAGE = 100;

/** The page's raw SQL, as the app's repository runs it for notes (served by idx_notes_owner_change). */
const FEED_PAGE_SQL =
  'SELECT id, title, body, version, created_at, updated_at, change_seq FROM notes WHERE owner_id = ? AND change_seq > ? AND change_seq <= ? ORDER BY change_seq LIMIT ?';
/** Today's PATCH path before sync: find the note, then write title, body and updated_at. */
const FIND_NOTE_SQL =
  'SELECT id, owner_id, title, body, created_at, updated_at FROM notes WHERE id = ? AND owner_id = ?';
const UPDATE_NOTE_SQL = 'UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE id = ? AND owner_id = ?';

async function main(): Promise<void> {
  if (process.argv[2] === 'baseline') return startBaseline(Number(process.argv[3]), process.argv[4]);
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-sync-'));
  const appFile = join(dir, 'app.sqlite');
  const baselineFile = join(dir, 'today.sqlite');
  // No store call on these paths: the local store will do.
  const env = {
    ...benchEnv(`sqlite:${appFile}`, 1),
    STORAGE_DRIVER: 'local',
    LOCAL_STORAGE_DIR: join(dir, 'objects'),
  };
  const children: ChildProcess[] = [];
  try {
    const started = Date.now();
    const { patchIds } = await seedDatabase(env);
    await copyFile(appFile, baselineFile);
    const today = new Database(baselineFile);
    for (const name of ['notes_sync_insert', 'notes_sync_update', 'notes_sync_delete'])
      today.exec(`DROP TRIGGER IF EXISTS ${name}`);
    today.close();
    console.log(
      `\nnotes sync: ${ROWS} notes in SQLite, ${OWNER_NOTES} of them one owner's (seeded in ${Math.round((Date.now() - started) / 1000)} s); ` +
        `autocannon: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per server (order rotated each round).\n`,
    );

    const servers = {
      app: await startServer('app', env, children),
      baseline: await startBaselineProcess(baselineFile, children),
    };
    const token = await issueToken(loadAppConfig(env).auth, OWNER);
    const auth = { authorization: `Bearer ${token}` };
    const first = (await (await fetch(`${servers.app}/api/sync/changes?limit=1`, { headers: auth })).json()) as {
      changes: unknown[];
    };
    if (first.changes.length !== 1) throw new Error('the feed of the seeded owner is empty');
    // A cursor halfway through the owner's changes: the page read is an ordinary incremental pull.
    const middle = await cursorAt(servers.app, auth, Math.floor(OWNER_NOTES / 2));
    let edit = 0;
    const endpoints = [
      {
        name: 'PATCH note (versions, revisions, feed)',
        method: 'PATCH',
        path: () => `/api/notes/${patchIds[edit++ % patchIds.length]}`,
        // A new body every time, so that every request writes a version (a PATCH that changes nothing keeps it).
        bodyEach: () => JSON.stringify({ body: `edit ${edit} ${randomUUID()}` }),
        target: 0.6,
        against: "today's PATCH path (node:http, its SQL, no sync)",
      },
      {
        name: `sync feed page (${FEED_PAGE} of ${OWNER_NOTES} among ${ROWS})`,
        method: 'GET',
        path: (server: string) =>
          server === 'app'
            ? `/api/sync/changes?limit=${FEED_PAGE}&cursor=${middle}`
            : `/feed?after=${Math.floor(OWNER_NOTES / 2)}&limit=${FEED_PAGE}`,
        bodyEach: undefined,
        target: 0.5,
        against: 'raw indexed SQL (node:http)',
      },
    ];
    const rows: string[][] = [];
    // SYNC_BENCH_ONLY=patch|feed measures one of them (to profile it alone, say).
    const only = process.env.SYNC_BENCH_ONLY;
    for (const endpoint of endpoints.filter((_, index) => !only || only === ['patch', 'feed'][index])) {
      const measured: Record<'app' | 'baseline', Measurement[]> = { app: [], baseline: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of round % 2 === 0 ? (['baseline', 'app'] as const) : (['app', 'baseline'] as const)) {
          measured[name].push(
            await load(
              servers[name],
              endpoint.method,
              () => endpoint.path(name),
              endpoint.bodyEach?.(),
              auth,
              round === 0,
              undefined,
              { seconds: SECONDS, connections: CONNECTIONS, firstWarmup: 0 },
              endpoint.bodyEach,
            ),
          );
        }
      }
      const ratio = perRound(measured.app, measured.baseline);
      rows.push([endpoint.name, endpoint.against, fmt(measured.baseline), '1.00', '']);
      rows.push([
        endpoint.name,
        'app',
        fmt(measured.app),
        fmtRatio(ratio),
        `≥ ${endpoint.target} ${ratio.median >= endpoint.target ? 'met' : 'MISSED'}`,
      ]);
    }
    printTable(['endpoint', 'server', 'req/s · p50 · p99', 'vs baseline', 'target'], rows);
  } finally {
    for (const child of children) child.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The migrated schema, then ROWS notes (OWNER_NOTES of them the owner's, the rest spread over other owners). */
async function seedDatabase(env: Record<string, string>): Promise<{ patchIds: string[] }> {
  const dataSource = await new DataSource({
    ...dataSourceOptions(loadAppConfig(env).database),
    logging: false,
  }).initialize();
  await dataSource.runMigrations();
  const runner = dataSource.createQueryRunner();
  // The rows are numbered here, in bulk; the triggers number every write after.
  await dropSyncTriggers(runner);
  await runner.release();
  await dataSource.destroy();

  const db = new Database(env.DATABASE_URL.slice('sqlite:'.length));
  db.pragma('journal_mode = WAL');
  // The search index's triggers call the app's function, as on every connection of the app.
  registerSqliteSearchFunction(db);
  const insertNote = db.prepare(
    'INSERT INTO notes (id, owner_id, title, body, version, change_seq, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)',
  );
  const insertRevision = db.prepare(
    'INSERT INTO note_revisions (note_id, version, owner_id, title, body, created_at) VALUES (?, 1, ?, ?, ?, ?)',
  );
  const insertOwner = db.prepare(
    'INSERT INTO sync_owners (owner_id, seq, epoch, purged_seq) VALUES (?, ?, lower(hex(randomblob(16))), 0)',
  );
  const others = Math.max(1, Math.round((ROWS - OWNER_NOTES) / OWNER_NOTES));
  const perOwner = new Map<string, number>();
  const patchIds: string[] = [];
  const at = new Date().toISOString().replace('T', ' ').replace('Z', '');
  db.transaction(() => {
    for (let row = 0; row < ROWS; row++) {
      // The owner's notes are spread through the table, as they would be among everyone's.
      const owner =
        row % (others + 1) === 0 && (perOwner.get(OWNER) ?? 0) < OWNER_NOTES ? OWNER : `other-${row % others}`;
      const seq = (perOwner.get(owner) ?? 0) + 1;
      perOwner.set(owner, seq);
      const id = randomUUID();
      insertNote.run(id, owner, `note ${row}`, 'a line\nanother line\n', seq, at, at);
      if (owner === OWNER && patchIds.length < PATCHED_NOTES) {
        patchIds.push(id);
        insertRevision.run(id, owner, `note ${row}`, 'a line\nanother line\n', at);
      }
    }
    for (const [owner, seq] of perOwner) insertOwner.run(owner, seq);
  })();
  db.close();

  const again = await new DataSource({
    ...dataSourceOptions(loadAppConfig(env).database),
    logging: false,
  }).initialize();
  const reinstall = again.createQueryRunner();
  await installSyncTriggers(reinstall);
  await reinstall.release();
  await again.destroy();
  if ((perOwner.get(OWNER) ?? 0) < Math.min(OWNER_NOTES, ROWS)) throw new Error('seeding gave the owner too few notes');
  return { patchIds };
}

/** The app's cursor after the owner's first `seq` changes (pulled page by page). */
async function cursorAt(baseUrl: string, auth: Record<string, string>, seq: number): Promise<string> {
  let cursor = '';
  for (let read = 0; read < seq; read += 100) {
    const limit = Math.min(100, seq - read);
    const page = (await (
      await fetch(`${baseUrl}/api/sync/changes?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth })
    ).json()) as { next_cursor: string };
    cursor = page.next_cursor;
  }
  return cursor;
}

async function startBaselineProcess(file: string, children: ChildProcess[]): Promise<string> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = fork(__filename, ['baseline', String(port), file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`baseline exited with ${code}`)));
  });
  return `http://127.0.0.1:${port}`;
}

/** The baselines: today's PATCH path and the feed page's raw query, on better-sqlite3, JSON out. */
function startBaseline(port: number, file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  registerSqliteSearchFunction(db);
  const feedPage = db.prepare(FEED_PAGE_SQL);
  const findNote = db.prepare(FIND_NOTE_SQL);
  const updateNote = db.prepare(UPDATE_NOTE_SQL);
  const json = (response: ServerResponse, status: number, body: unknown) =>
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method === 'GET' && url.pathname === '/feed') {
      const after = Number(url.searchParams.get('after'));
      const limit = Number(url.searchParams.get('limit'));
      const rows = feedPage.all(OWNER, after, Number.MAX_SAFE_INTEGER, limit) as { change_seq: number }[];
      return json(response, 200, { changes: rows, next_cursor: String(rows.at(-1)?.change_seq ?? after) });
    }
    const patch = /^\/api\/notes\/([0-9a-f-]{36})$/.exec(url.pathname);
    if (request.method === 'PATCH' && patch) {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const changes = JSON.parse(body) as { title?: string; body?: string };
        const note = findNote.get(patch[1], OWNER) as { title: string; body: string } | undefined;
        if (!note) return json(response, 404, { error: { code: 'NOTE_NOT_FOUND' } });
        const now = new Date().toISOString().replace('T', ' ').replace('Z', '');
        updateNote.run(changes.title ?? note.title, changes.body ?? note.body, now, patch[1], OWNER);
        json(response, 200, { ...note, ...changes, updated_at: now });
      });
      return;
    }
    json(response, 404, { error: { code: 'NOT_FOUND' } });
  }).listen(port, '127.0.0.1', () => process.send?.('ready'));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
