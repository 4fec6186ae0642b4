import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from '../src/database/database.options';
import { createTestDatabase, type TestDatabase } from './harness/databases';
import { loadAppConfig } from '../src/config/app-config';

describe.each(['sqlite', 'postgres'] as const)('migrations on %s', (kind) => {
  let database: TestDatabase;

  beforeEach(async () => {
    database = await createTestDatabase(kind);
  });

  afterEach(async () => {
    delete process.env.LEGACY_OWNER_ID;
    await database.drop();
  });

  function open(migrations: typeof MIGRATIONS): Promise<DataSource> {
    const options = dataSourceOptions(loadAppConfig({ DATABASE_URL: database.url }).database);
    return new DataSource({ ...options, migrations, migrationsRun: false, logging: false }).initialize();
  }

  it('gives rows written before sign-in existed to LEGACY_OWNER_ID, and the schema then takes owned rows', async () => {
    const before = await open(MIGRATIONS.slice(0, 1));
    await before.runMigrations();
    const now = kind === 'postgres' ? new Date() : new Date().toISOString().replace('T', ' ').replace('Z', '');
    const p = (n: number) => (kind === 'postgres' ? `$${n}` : '?');
    await before.query(`INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (${p(1)}, 'old', '', ${p(2)}, ${p(3)})`, ['5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90', now, now]);
    await before.query(
      `INSERT INTO audio_clips (id, note_id, status, mime_type, bytes, duration_ms, storage_key, created_at, updated_at) VALUES (${p(1)}, ${p(2)}, 'ready', 'audio/m4a', 10, 1, 'dev/audio-clips/x.m4a', ${p(3)}, ${p(4)})`,
      ['9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b', '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90', now, now],
    );
    await before.destroy();

    process.env.LEGACY_OWNER_ID = 'legacy-user';
    const after = await open(MIGRATIONS);
    expect((await after.runMigrations()).map((migration) => migration.name)).toEqual(MIGRATIONS.slice(1).map((migration) => migration.name));
    expect(await after.query('SELECT owner_id FROM notes')).toEqual([{ owner_id: 'legacy-user' }]);
    expect(await after.query('SELECT owner_id, note_id FROM audio_clips')).toEqual([{ owner_id: 'legacy-user', note_id: '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90' }]);
    await expect(after.query(`INSERT INTO notes (id, title, body, created_at, updated_at) VALUES ('x', 't', '', ${kind === 'postgres' ? 'now()' : "'2026-01-01 00:00:00.000'"}, ${kind === 'postgres' ? 'now()' : "'2026-01-01 00:00:00.000'"})`)).rejects.toThrow(/null|NOT NULL/i);
    await after.destroy();
  });

  it('can be undone step by step and run again', async () => {
    const dataSource = await open(MIGRATIONS);
    await dataSource.runMigrations();
    for (let i = 0; i < MIGRATIONS.length; i += 1) await dataSource.undoLastMigration();
    expect(await dataSource.query(kind === 'postgres' ? "SELECT to_regclass('notes') AS t" : "SELECT name AS t FROM sqlite_master WHERE name = 'notes'")).toEqual(kind === 'postgres' ? [{ t: null }] : []);
    expect(await dataSource.runMigrations()).toHaveLength(MIGRATIONS.length);
    await dataSource.destroy();
  });
});
