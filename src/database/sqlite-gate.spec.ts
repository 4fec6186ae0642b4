import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { loadAppConfig } from '../config/app-config';
import { dataSourceOptions, openDatabase } from './database.options';
import { SqlStatements } from './sql-statements';

/**
 * The SQLite gate (sqlite-gate.ts) against the real app data source on a real file: two requests'
 * transactions on the one connection stay two transactions.
 */
describe('SQLite transactions on the shared connection', () => {
  let dir: string;
  let dataSource: DataSource;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const insertNote = (id: string) =>
    `INSERT INTO notes (id, owner_id, title, body, version, created_at, updated_at) VALUES ('${id}', 'gate-owner', 't', 'b', 1, '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000')`;
  const noteIds = async () =>
    (
      (await dataSource.query("SELECT id FROM notes WHERE owner_id = 'gate-owner' ORDER BY id")) as { id: string }[]
    ).map((row) => row.id);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'an-gate-'));
    const config = loadAppConfig({ DATABASE_URL: `sqlite:${join(dir, 'gate.sqlite')}`, STORAGE_DRIVER: 'local' });
    dataSource = await openDatabase({ ...dataSourceOptions(config.database), migrationsRun: true, logging: false });
  });

  afterEach(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rolls back only the failing transaction, and commits the other one whole', async () => {
    const failing = dataSource.transaction(async (manager) => {
      await manager.query(insertNote('a-rolled-back'));
      await sleep(50);
      throw new Error('this transaction fails');
    });
    // Starts while the first one is open, and finishes first if it could.
    const succeeding = (async () => {
      await sleep(10);
      await dataSource.transaction(async (manager) => {
        await manager.query(insertNote('b-committed'));
        await manager.query(insertNote('c-committed'));
      });
    })();
    await expect(failing).rejects.toThrow('this transaction fails');
    await succeeding;
    expect(await noteIds()).toEqual(['b-committed', 'c-committed']);
  });

  it('never shows a statement outside a transaction what the transaction has not committed', async () => {
    const statements = new SqlStatements(dataSource);
    let insideDone = false;
    const open = dataSource.transaction(async (manager) => {
      await manager.query(insertNote('d-uncommitted'));
      await sleep(50);
      insideDone = true;
      throw new Error('rolled back');
    });
    await sleep(10);
    // Each of these waits for the transaction to end, and then sees it rolled back.
    const [viaTypeOrm, viaPrepared] = await Promise.all([
      noteIds(),
      statements.all<{ id: string }>("SELECT id FROM notes WHERE owner_id = 'gate-owner'", []),
    ]);
    expect(insideDone).toBe(true);
    expect(viaTypeOrm).toEqual([]);
    expect(viaPrepared).toEqual([]);
    await expect(open).rejects.toThrow('rolled back');
  });

  it('does not let a plain write outside the transaction join it (and be rolled back with it)', async () => {
    const open = dataSource.transaction(async (manager) => {
      await manager.query(insertNote('e-rolled-back'));
      await sleep(50);
      throw new Error('rolled back');
    });
    await sleep(10);
    await dataSource.query(insertNote('f-outside'));
    await expect(open).rejects.toThrow('rolled back');
    expect(await noteIds()).toEqual(['f-outside']);
  });

  it("runs a prepared statements' transaction whole, after the open one", async () => {
    const statements = new SqlStatements(dataSource);
    const open = dataSource.transaction(async (manager) => {
      await manager.query(insertNote('g-committed'));
      await sleep(30);
    });
    await sleep(5);
    const seen = await statements.sqliteTransaction((statement) => {
      statement(insertNote('h-committed')).run();
      return statement("SELECT COUNT(*) AS n FROM notes WHERE owner_id = 'gate-owner'").get() as { n: number };
    });
    await open;
    expect(seen.n).toBe(2);
    expect(await noteIds()).toEqual(['g-committed', 'h-committed']);
  });

  it('commits the writes of one group commit together, but rolls back and rejects a failing one alone', async () => {
    const statements = new SqlStatements(dataSource);
    const write = (id: string, fail: boolean) =>
      statements.sqliteTransaction((statement) => {
        statement(insertNote(id)).run();
        if (fail) throw new Error(`${id} fails after its insert`);
        return id;
      });
    // Started in the same turn of the event loop: one batch.
    const outcomes = await Promise.allSettled([
      write('i-committed', false),
      write('j-rolled-back', true),
      write('k-committed', false),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('j-rolled-back fails after its insert'));
    expect(await noteIds()).toEqual(['i-committed', 'k-committed']);
    // A write whose statement fails (a duplicate id) fails alone too.
    const again = await Promise.allSettled([write('i-committed', false), write('l-committed', false)]);
    expect(again.map((outcome) => outcome.status)).toEqual(['rejected', 'fulfilled']);
    expect(await noteIds()).toEqual(['i-committed', 'k-committed', 'l-committed']);
  });

  it('answers SQLITE_BUSY, not a hang, when a transaction holds the connection past the busy timeout', async () => {
    let release!: () => void;
    const held = dataSource.transaction(() => new Promise<void>((resolve) => (release = resolve)));
    await sleep(5);
    const started = Date.now();
    await expect(dataSource.query('SELECT 1')).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    release();
    await held;
    await expect(dataSource.query('SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]);
  }, 20_000);
});
