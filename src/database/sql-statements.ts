import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

/**
 * What Postgres answers when a prepared statement's plan no longer fits the schema: "cached plan must not
 * change result type" (0A000), or a statement a pooler in between no longer knows (26000).
 */
const PLAN_GONE_STALE = new Set(['0A000', '26000']);

interface PreparedStatement {
  get(...params: unknown[]): unknown;
}

interface SqliteConnection {
  prepare(sql: string): PreparedStatement;
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

  async one<T>(sql: string, params: readonly string[]): Promise<T | undefined> {
    if (this.postgres) {
      const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
      const run = () =>
        pool.query({ name: SqlStatements.nameOf(sql), text: this.forDatabase(sql), values: [...params] });
      try {
        return (await run()).rows[0] as T | undefined;
      } catch (error) {
        if (!PLAN_GONE_STALE.has((error as { code?: string }).code ?? '')) throw error;
        // A migration changed what the statement returns (a column's type, say), and Postgres will not run
        // the plan it made before: prepare every statement anew, under new names, on every connection.
        SqlStatements.generation += 1;
        return (await run()).rows[0] as T | undefined;
      }
    }
    let statement = this.prepared.get(sql);
    if (!statement) {
      // The TypeORM driver's own connection: one statement runs synchronously, so nothing interleaves with it.
      statement = (
        this.dataSource.driver as unknown as { databaseConnection: SqliteConnection }
      ).databaseConnection.prepare(sql);
      this.prepared.set(sql, statement);
    }
    return statement.get(...params) as T | undefined;
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

  /** SQLite hands timestamps back as `YYYY-MM-DD HH:MM:SS.SSS` text in UTC; Postgres as Dates. */
  date(value: Date | string): Date {
    return value instanceof Date ? value : new Date(`${value.replace(' ', 'T')}Z`);
  }
}
