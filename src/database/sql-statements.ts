import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { sqliteGateOf } from './sqlite-gate';

/**
 * What Postgres answers when a prepared statement's plan no longer fits the schema: "cached plan must not
 * change result type" (0A000), or a statement a pooler in between no longer knows (26000).
 */
const PLAN_GONE_STALE = new Set(['0A000', '26000']);

interface PreparedStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}

interface PendingWrite {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** The writes waiting for the next group commit, per SQLite connection. */
const pendingWrites = new WeakMap<SqliteConnection, PendingWrite[]>();

/** better-sqlite3's connection, as far as these statements use it. */
export interface SqliteConnection {
  prepare(sql: string): PreparedStatement;
  transaction<T>(work: () => T): () => T;
}

/**
 * Single-row reads for the hot paths, without the query builder, whose query building dominated their
 * cost (docs/PERFORMANCE.md): on SQLite a statement prepared once on better-sqlite3's own handle, on
 * Postgres a named statement on TypeORM's own pool, which the server parses and plans once per
 * connection instead of on every request. SQL is written with `?` placeholders and adapted per database.
 */
export class SqlStatements {
  private readonly prepared = new Map<string, PreparedStatement>();
  /** Postgres statement names: one per SQL text, the same on every connection of the pool. */
  private static readonly names = new Map<string, string>();
  /** Bumped when Postgres refuses a prepared plan: the names of the next generation are prepared afresh. */
  private static generation = 0;
  private readonly postgres: boolean;

  constructor(private readonly dataSource: DataSource) {
    this.postgres = dataSource.options.type === 'postgres';
  }

  async one<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    return (await this.all<T>(sql, params, true))[0];
  }

  /** Every row of a read, through the same prepared statements as `one`. */
  async all<T>(sql: string, params: readonly unknown[], onlyFirst = false): Promise<T[]> {
    if (this.postgres) {
      const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
      const run = () =>
        pool.query({ name: SqlStatements.nameOf(sql), text: this.forDatabase(sql), values: [...params] });
      try {
        return (await run()).rows as T[];
      } catch (error) {
        if (!PLAN_GONE_STALE.has((error as { code?: string }).code ?? '')) throw error;
        // A migration changed what the statement returns (a column's type, say), and Postgres will not run
        // the plan it made before: prepare every statement anew, under new names, on every connection.
        SqlStatements.generation += 1;
        return (await run()).rows as T[];
      }
    }
    await this.sqliteTurn();
    const statement = this.sqlite(sql);
    if (onlyFirst) {
      const row = statement.get(...params) as T | undefined;
      return row === undefined ? [] : [row];
    }
    return statement.all(...params) as T[];
  }

  /**
   * SQLite only: `work` as a transaction of its own on the app's connection, run synchronously once no
   * other transaction is open (src/database/sqlite-gate.ts), so nothing interleaves with it. `statement`
   * gives the prepared statements to run in it.
   *
   * Group commit: the writes that arrive in the same turn of the event loop share one COMMIT, each in a
   * savepoint of its own (one that throws is rolled back alone, and rejects alone). A COMMIT waits for the
   * disk (synchronous=FULL), and better-sqlite3 waits on the event loop's thread: one COMMIT per write
   * made the disk, not the work, the limit under load. Each write is answered only once its batch is on
   * disk, as before. Figures in docs/PERFORMANCE.md.
   */
  sqliteTransaction<T>(work: (statement: (sql: string) => PreparedStatement) => T): Promise<T> {
    const connection = this.connection();
    return new Promise<T>((resolve, reject) => {
      let batch = pendingWrites.get(connection);
      if (!batch) {
        batch = [];
        pendingWrites.set(connection, batch);
        setImmediate(() => void this.commitBatch(connection));
      }
      batch.push({ work: () => work((sql) => this.sqlite(sql)), resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private async commitBatch(connection: SqliteConnection): Promise<void> {
    const batch = pendingWrites.get(connection) ?? [];
    try {
      await this.sqliteTurn();
    } catch (error) {
      pendingWrites.delete(connection);
      for (const write of batch) write.reject(error);
      return;
    }
    // Writes from here on make the next batch (those that came while this one waited its turn are in it).
    pendingWrites.delete(connection);
    const outcomes: { value?: unknown; error?: unknown; failed: boolean }[] = [];
    try {
      connection.transaction(() => {
        for (const write of batch) {
          try {
            // A transaction inside a transaction is a savepoint in better-sqlite3.
            outcomes.push({ value: connection.transaction(write.work)(), failed: false });
          } catch (error) {
            outcomes.push({ error, failed: true });
          }
        }
      })();
    } catch (error) {
      // The COMMIT itself failed: nothing of the batch was written.
      for (const write of batch) write.reject(error);
      return;
    }
    batch.forEach((write, index) => {
      const outcome = outcomes[index];
      if (outcome.failed) write.reject(outcome.error);
      else write.resolve(outcome.value);
    });
  }

  get isPostgres(): boolean {
    return this.postgres;
  }

  /** Waits while a transaction of another caller is open on the SQLite connection. */
  private async sqliteTurn(): Promise<void> {
    const gate = sqliteGateOf(this.dataSource);
    if (gate?.closedTo()) await gate.pass();
  }

  private sqlite(sql: string): PreparedStatement {
    let statement = this.prepared.get(sql);
    if (!statement) {
      // The TypeORM driver's own connection: one statement runs synchronously, so nothing interleaves with it.
      statement = this.connection().prepare(sql);
      this.prepared.set(sql, statement);
    }
    return statement;
  }

  private connection(): SqliteConnection {
    return (this.dataSource.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
  }

  private static nameOf(sql: string): string {
    let name = SqlStatements.names.get(sql);
    if (name === undefined) {
      name = `hot_read_${SqlStatements.names.size + 1}`;
      SqlStatements.names.set(sql, name);
    }
    return `${name}_${SqlStatements.generation}`;
  }

  /** A statement whose result is not needed, through TypeORM's connection handling. */
  async execute(sql: string, params: readonly unknown[]): Promise<void> {
    await this.dataSource.query(this.forDatabase(sql), [...params]);
  }

  /** The statement with its `?` placeholders as this database wants them. */
  adapt(sql: string): string {
    return this.forDatabase(sql);
  }

  /** `?` placeholders as the database wants them: Postgres numbers them. */
  private forDatabase(sql: string): string {
    let index = 0;
    return this.postgres ? sql.replace(/\?/g, () => `$${++index}`) : sql;
  }

  /**
   * The ISO 8601 form (as `Date.toISOString` writes it) of a timestamp as the database hands it back:
   * SQLite's `YYYY-MM-DD HH:MM:SS.SSS` text needs no Date in between (on a page of 100 notes, parsing
   * and printing 200 dates was a visible share of the change feed's time).
   */
  iso(value: Date | string): string {
    if (typeof value === 'string' && value.length === 23 && value[10] === ' ' && value[19] === '.')
      return `${value.slice(0, 10)}T${value.slice(11)}Z`;
    return this.date(value).toISOString();
  }

  /** SQLite hands timestamps back as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC; Postgres as Dates. */
  date(value: Date | string): Date {
    return value instanceof Date ? value : new Date(`${value.replace(' ', 'T')}Z`);
  }
}
