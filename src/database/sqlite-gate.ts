import type { DataSource, QueryRunner } from 'typeorm';
import { BetterSqlite3QueryRunner } from 'typeorm/driver/better-sqlite3/BetterSqlite3QueryRunner.js';

/**
 * SQLite in this app is one better-sqlite3 connection, and TypeORM gives every caller the same query
 * runner on it. Two requests' transactions would then share one transaction: the second one's BEGIN
 * becomes a savepoint inside the first, a rollback of one undoes the other's statements, a COMMIT
 * commits the other's half-done work, and any read between sees writes that may yet be rolled back (a
 * change-feed pull could read a counter that is then rolled back, and skip the change numbered after).
 *
 * The gate makes a transaction what it is on Postgres: every caller gets its own query runner on the
 * shared connection, one transaction is open at a time, and while it is open every statement from
 * outside it waits for its COMMIT or ROLLBACK. Statements run synchronously in better-sqlite3, so a
 * statement that found the gate open runs whole before anything else.
 */
export class SqliteGate {
  private holder: object | null = null;
  private waiting: (() => void)[] = [];

  constructor(private readonly timeoutMs: number) {}

  /** Whether a transaction other than `self`'s is open. */
  closedTo(self?: object): boolean {
    return this.holder !== null && this.holder !== self;
  }

  /** Waits until no transaction other than `self`'s is open (a plain statement's turn). */
  async pass(self?: object): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    while (this.closedTo(self)) await this.wait(deadline);
  }

  /** Waits for the gate, then holds it until `leave` (a transaction's turn). */
  async enter(holder: object): Promise<void> {
    await this.pass(holder);
    this.holder = holder;
  }

  leave(holder: object): void {
    if (this.holder !== holder) return;
    this.holder = null;
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  private wait(deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const remaining = deadline - Date.now();
      const timer = setTimeout(
        () => {
          this.waiting = this.waiting.filter((wake) => wake !== woken);
          // As SQLite's own busy timeout answers: the request fails, nothing of it was written.
          reject(
            Object.assign(new Error('database is locked (a transaction held it too long)'), { code: 'SQLITE_BUSY' }),
          );
        },
        Math.max(0, remaining),
      );
      const woken = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiting.push(woken);
    });
  }
}

/** A query runner of its own for each caller, behind the connection's gate. */
class GatedSqliteQueryRunner extends BetterSqlite3QueryRunner {
  constructor(
    driver: ConstructorParameters<typeof BetterSqlite3QueryRunner>[0],
    private readonly gate: SqliteGate,
    statements: Map<string, unknown>,
  ) {
    super(driver);
    // One cache of prepared statements for all runners (each would otherwise prepare its statements anew).
    (this as unknown as { stmtCache: Map<string, unknown> }).stmtCache = statements;
  }

  override async startTransaction(isolationLevel?: Parameters<QueryRunner['startTransaction']>[0]): Promise<void> {
    if (this.isTransactionActive) return super.startTransaction(isolationLevel);
    await this.gate.enter(this);
    try {
      await super.startTransaction(isolationLevel);
    } catch (error) {
      this.gate.leave(this);
      throw error;
    }
  }

  override async commitTransaction(): Promise<void> {
    try {
      await super.commitTransaction();
    } finally {
      // A failed COMMIT leaves the transaction to the rollback that follows it.
      if (!this.isTransactionActive) this.gate.leave(this);
    }
  }

  override async rollbackTransaction(): Promise<void> {
    try {
      await super.rollbackTransaction();
    } finally {
      if (!this.isTransactionActive) this.gate.leave(this);
    }
  }

  override async query(
    ...args: Parameters<BetterSqlite3QueryRunner['query']>
  ): ReturnType<BetterSqlite3QueryRunner['query']> {
    if (this.gate.closedTo(this)) await this.gate.pass(this);
    return super.query(...args);
  }

  override async release(): Promise<void> {
    // A runner given back with its transaction open (an error between BEGIN and COMMIT): roll it back.
    if (this.isTransactionActive) await this.rollbackTransaction().catch(() => this.gate.leave(this));
    return super.release();
  }
}

const gates = new WeakMap<DataSource, SqliteGate>();

/** Installs the gate on an initialized better-sqlite3 data source. */
export function installSqliteGate(dataSource: DataSource, timeoutMs: number): void {
  const driver = dataSource.driver as unknown as ConstructorParameters<typeof BetterSqlite3QueryRunner>[0] & {
    createQueryRunner(): QueryRunner;
  };
  const gate = new SqliteGate(timeoutMs);
  const statements = new Map<string, unknown>();
  driver.createQueryRunner = () => new GatedSqliteQueryRunner(driver, gate, statements) as unknown as QueryRunner;
  gates.set(dataSource, gate);
}

/** The data source's gate; undefined on Postgres (and on a SQLite data source opened without one). */
export function sqliteGateOf(dataSource: DataSource): SqliteGate | undefined {
  return gates.get(dataSource);
}
