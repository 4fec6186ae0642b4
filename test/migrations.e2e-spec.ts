import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from '../src/database/database.options';
import { createTestDatabase, type TestDatabase } from './harness/databases';
import { SqlStatements } from '../src/database/sql-statements';
import { loadAppConfig } from '../src/config/app-config';
import {
  CLIP_BY_ID_SQL,
  DEAD_UPLOAD_BYTES_SQL,
  DEAD_UPLOADS_SQL,
  PLAYABLE_CLIP_SQL,
  PRIMARY_CLIP_SQL,
} from '../src/audio-clips/audio-clips.repository';

describe.each(['sqlite', 'postgres'] as const)('migrations on %s', (kind) => {
  let database: TestDatabase;

  beforeEach(async () => {
    database = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await database.drop();
  });

  function open(migrations?: typeof MIGRATIONS, env: Record<string, string> = {}): Promise<DataSource> {
    const options = dataSourceOptions(loadAppConfig({ DATABASE_URL: database.url, ...env }).database);
    return new DataSource({
      ...options,
      ...(migrations && { migrations }),
      migrationsRun: false,
      logging: false,
    }).initialize();
  }

  it('gives rows written before sign-in existed to LEGACY_OWNER_ID, and the schema then takes owned rows', async () => {
    const before = await open(MIGRATIONS.slice(0, 1));
    await before.runMigrations();
    const now = kind === 'postgres' ? new Date() : new Date().toISOString().replace('T', ' ').replace('Z', '');
    const p = (n: number) => (kind === 'postgres' ? `$${n}` : '?');
    await before.query(
      `INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (${p(1)}, 'old', '', ${p(2)}, ${p(3)})`,
      ['5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90', now, now],
    );
    await before.query(
      `INSERT INTO audio_clips (id, note_id, status, mime_type, bytes, duration_ms, storage_key, created_at, updated_at) VALUES (${p(1)}, ${p(2)}, 'ready', 'audio/m4a', 10, 1, 'dev/audio-clips/x.m4a', ${p(3)}, ${p(4)})`,
      ['9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b', '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90', now, now],
    );
    await before.destroy();

    const after = await open(undefined, { LEGACY_OWNER_ID: 'legacy-user' });
    expect((await after.runMigrations()).map((migration) => migration.name)).toEqual(
      MIGRATIONS.slice(1).map((migration) => migration.name),
    );
    expect(await after.query('SELECT owner_id FROM notes')).toEqual([{ owner_id: 'legacy-user' }]);
    expect(await after.query('SELECT owner_id, note_id FROM audio_clips')).toEqual([
      { owner_id: 'legacy-user', note_id: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90' },
    ]);
    // A clip ready before renditions existed gets its pending rendition, beside its own object.
    expect(await after.query('SELECT clip_id, format, owner_id, status, storage_key FROM renditions')).toEqual([
      {
        clip_id: '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b',
        format: 'm4a',
        owner_id: 'legacy-user',
        status: 'pending',
        storage_key: 'dev/audio-clips/x.universal.m4a',
      },
    ]);
    await expect(
      after.query(
        `INSERT INTO notes (id, title, body, created_at, updated_at) VALUES ('x', 't', '', ${kind === 'postgres' ? 'now()' : "'2026-01-01 00:00:00.000'"}, ${kind === 'postgres' ? 'now()' : "'2026-01-01 00:00:00.000'"})`,
      ),
    ).rejects.toThrow(/null|NOT NULL/i);
    await after.destroy();
  });

  it('serves the hot reads from their indexes, and the primary clip is the ready one completed last', async () => {
    const dataSource = await open(MIGRATIONS);
    await dataSource.runMigrations();
    const p = (sql: string) =>
      kind === 'postgres'
        ? sql.replace(
            /\?/g,
            (
              (n) => () =>
                `$${++n}`
            )(0),
          )
        : sql;
    const at = (minute: number) =>
      kind === 'postgres'
        ? new Date(Date.UTC(2026, 0, 1, 0, minute))
        : `2026-01-01 00:${String(minute).padStart(2, '0')}:00.000`;
    const note = '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90';
    await dataSource.query(
      p('INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)'),
      [note, 'alice', 't', '', at(0), at(0)],
    );
    const clips: [string, string, number | null][] = [
      ['00000000-0000-4000-8000-000000000001', 'ready', 5],
      ['00000000-0000-4000-8000-000000000002', 'ready', 9], // completed last: the primary clip
      ['00000000-0000-4000-8000-000000000003', 'pending', null],
      ['00000000-0000-4000-8000-000000000004', 'ready', 7],
    ];
    for (const [id, status, completed] of clips) {
      await dataSource.query(
        p(
          'INSERT INTO audio_clips (id, owner_id, note_id, status, mime_type, bytes, duration_ms, declared_duration_ms, duration_source, storage_key, upload_key, created_at, updated_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ),
        [
          id,
          'alice',
          note,
          status,
          'audio/m4a',
          10,
          1,
          1,
          'declared',
          `dev/audio-clips/${id}.m4a`,
          `dev/uploads/${id}.m4a`,
          at(1),
          at(1),
          completed === null ? null : at(completed),
        ],
      );
    }
    expect(await dataSource.query(p(PRIMARY_CLIP_SQL), [note, 'alice'])).toEqual([
      expect.objectContaining({ id: '00000000-0000-4000-8000-000000000002' }),
    ]);
    expect(await dataSource.query(p(PRIMARY_CLIP_SQL), [note, 'bob'])).toEqual([]);
    expect(await dataSource.query(p(CLIP_BY_ID_SQL), ['00000000-0000-4000-8000-000000000004', 'alice'])).toEqual([
      expect.objectContaining({ status: 'ready' }),
    ]);
    expect(await dataSource.query(p(PLAYABLE_CLIP_SQL), ['00000000-0000-4000-8000-000000000004', 'alice'])).toEqual([
      {
        status: 'ready',
        storage_key: 'dev/audio-clips/00000000-0000-4000-8000-000000000004.m4a',
        mime_type: 'audio/m4a',
      },
    ]);
    expect(await dataSource.query(p(PLAYABLE_CLIP_SQL), ['00000000-0000-4000-8000-000000000004', 'bob'])).toEqual([]);

    if (kind === 'sqlite') {
      const plan = async (sql: string) =>
        ((await dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, [note, 'alice'])) as { detail: string }[])
          .map((row) => row.detail)
          .join('\n');
      expect(await plan(PRIMARY_CLIP_SQL)).toMatch(
        /^SEARCH audio_clips USING INDEX idx_audio_clips_note_ready \(note_id=\? AND status=\?\)/,
      );
      expect(await plan(PRIMARY_CLIP_SQL)).not.toMatch(/TEMP B-TREE/);
      expect(await plan(CLIP_BY_ID_SQL)).toMatch(
        /^SEARCH audio_clips USING INDEX sqlite_autoindex_audio_clips_1 \(id=\?\)/,
      );
      expect(await plan(PLAYABLE_CLIP_SQL)).toMatch(
        /^SEARCH audio_clips USING INDEX sqlite_autoindex_audio_clips_1 \(id=\?\)/,
      );
      // Every create sums its owner's dead upload URLs: never a scan of the whole deletion outbox.
      for (const sql of [DEAD_UPLOADS_SQL, DEAD_UPLOAD_BYTES_SQL]) {
        const [step] = (await dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, ['alice'])) as { detail: string }[];
        expect(step.detail).toMatch(
          /^SEARCH storage_deletions USING INDEX idx_storage_deletions_owner \(owner_id=\?\)/,
        );
      }
    } else {
      // Four rows would be read sequentially; forbid that to see which index the planner can use.
      const runner = dataSource.createQueryRunner();
      try {
        await runner.query('ANALYZE audio_clips');
        await runner.query('SET enable_seqscan = off');
        const plan = async (sql: string) =>
          ((await runner.query(`EXPLAIN ${p(sql)}`, [note, 'alice'])) as { 'QUERY PLAN': string }[])
            .map((row) => row['QUERY PLAN'])
            .join('\n');
        expect(await plan(PRIMARY_CLIP_SQL)).toMatch(
          /Index Scan Backward using idx_audio_clips_note_ready on audio_clips/,
        );
        expect(await plan(PRIMARY_CLIP_SQL)).not.toMatch(/Sort/);
        expect(await plan(CLIP_BY_ID_SQL)).toMatch(/Index Scan using "?PK_\w+"? on audio_clips/);
        expect(await plan(PLAYABLE_CLIP_SQL)).toMatch(/Index Scan using "?PK_\w+"? on audio_clips/);
        for (const sql of [DEAD_UPLOADS_SQL, DEAD_UPLOAD_BYTES_SQL]) {
          const rows = (await runner.query(`EXPLAIN ${p(sql)}`, ['alice'])) as { 'QUERY PLAN': string }[];
          expect(rows.map((row) => row['QUERY PLAN']).join('\n')).toMatch(
            /Bitmap Index Scan on idx_storage_deletions_owner|Index Scan using idx_storage_deletions_owner/,
          );
        }
      } finally {
        await runner.query('RESET enable_seqscan');
        await runner.release();
      }
    }
    await dataSource.destroy();
  });

  it('serves the hot reads, prepared once, from every column of audio_clips, and on after a migration adds a column or retypes one', async () => {
    const dataSource = await open(MIGRATIONS);
    await dataSource.runMigrations();
    const columns = (
      (await dataSource.query(
        kind === 'postgres'
          ? "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'audio_clips'"
          : "SELECT name FROM pragma_table_info('audio_clips')",
      )) as { name: string }[]
    ).map((column) => column.name);
    const statements = new SqlStatements(dataSource);
    const missing = '00000000-0000-4000-8000-00000000ffff';
    expect(await statements.one(CLIP_BY_ID_SQL, [missing, 'alice'])).toBeUndefined();
    // The columns a hot read returns are all of the table's: a new column cannot be forgotten there.
    const selected = CLIP_BY_ID_SQL.slice('SELECT '.length, CLIP_BY_ID_SQL.indexOf(' FROM')).split(', ');
    expect([...selected].sort()).toEqual([...columns].sort());
    expect(PRIMARY_CLIP_SQL).toContain(selected.join(', '));

    // A later release's migration adds a column while this instance's statements are prepared (a rolling deploy).
    await dataSource.query('ALTER TABLE audio_clips ADD COLUMN added_later integer');
    for (const [sql, params] of [
      [CLIP_BY_ID_SQL, [missing, 'alice']],
      [PRIMARY_CLIP_SQL, [missing, 'alice']],
      [PLAYABLE_CLIP_SQL, [missing, 'alice']],
    ] as const) {
      await expect(statements.one(sql, params)).resolves.toBeUndefined();
    }
    if (kind === 'postgres') {
      // One that changes a selected column's type: Postgres refuses the plans prepared on every connection of
      // the pool (the reads run concurrently, so several connections hold them), and they are prepared anew.
      const reads = () =>
        Promise.all(
          Array.from({ length: 8 }, (_, n) =>
            statements.one(n % 2 ? CLIP_BY_ID_SQL : PRIMARY_CLIP_SQL, [missing, 'alice']),
          ),
        );
      await reads();
      await dataSource.query('ALTER TABLE audio_clips ALTER COLUMN failure_reason TYPE text');
      for (let round = 0; round < 3; round++) expect(await reads()).toEqual(Array(8).fill(undefined));
    }
    await dataSource.destroy();
  });

  it('can be undone step by step and run again', async () => {
    const dataSource = await open(MIGRATIONS);
    await dataSource.runMigrations();
    for (let i = 0; i < MIGRATIONS.length; i += 1) await dataSource.undoLastMigration();
    expect(
      await dataSource.query(
        kind === 'postgres'
          ? "SELECT to_regclass('notes') AS t"
          : "SELECT name AS t FROM sqlite_master WHERE name = 'notes'",
      ),
    ).toEqual(kind === 'postgres' ? [{ t: null }] : []);
    expect(await dataSource.runMigrations()).toHaveLength(MIGRATIONS.length);
    await dataSource.destroy();
  });
});
