import type { DataSource } from 'typeorm';

interface PreparedStatement {
  get(...params: unknown[]): unknown;
}

interface SqliteConnection {
  prepare(sql: string): PreparedStatement;
}

/**
 * Single-row reads for the hot paths, without the query builder, whose query building dominated their
 * cost (docs/PERFORMANCE.md): on SQLite a statement prepared once on better-sqlite3's own handle, on
 * Postgres one parameterized query. SQL is written with `?` placeholders and adapted per database.
 */
export class SqlStatements {
  private readonly prepared = new Map<string, PreparedStatement>();
  private readonly postgres: boolean;

  constructor(private readonly dataSource: DataSource) {
    this.postgres = dataSource.options.type === 'postgres';
  }

  async one<T>(sql: string, params: readonly string[]): Promise<T | undefined> {
    if (this.postgres) {
      const rows = (await this.dataSource.query(this.forDatabase(sql), [...params])) as T[];
      return rows[0];
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
