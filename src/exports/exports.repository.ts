import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, In, QueryFailedError, Repository, type WhereExpressionBuilder } from 'typeorm';
import { timestampParameter } from '../database/database.options';
import { SqlStatements } from '../database/sql-statements';
import { Export, ExportStatus } from './export.entity';

const UNDERWAY = [ExportStatus.Pending, ExportStatus.Running];

/**
 * Every query on `exports`. The owner's reads are scoped by owner; the worker's claims are conditional
 * updates that only one instance can win, like the janitor's.
 */
@Injectable()
export class ExportsRepository {
  private readonly dataSource: DataSource;
  private readonly sql: SqlStatements;

  constructor(@InjectRepository(Export) private readonly exports: Repository<Export>) {
    this.dataSource = exports.manager.connection;
    this.sql = new SqlStatements(this.dataSource);
  }

  private at(date: Date): Date | string {
    return timestampParameter(this.dataSource.options.type, date);
  }

  /**
   * Inserts the export unless the owner already asked for `perDay` since `since` (one conditional
   * INSERT … SELECT). Returns 'inserted', 'capped', or 'underway' when one is already pending or
   * running (the partial unique index refuses a second).
   */
  async insertWithinDailyCap(row: Export, perDay: number, since: Date): Promise<'inserted' | 'capped' | 'underway'> {
    const sql = this.sql.adapt(
      `INSERT INTO exports (id, owner_id, status, attempts, next_attempt_at, created_at, updated_at)
       SELECT ?, ?, ?, 0, ?, ?, ? WHERE (SELECT COUNT(*) FROM exports WHERE owner_id = ? AND created_at > ?) < ? RETURNING id`,
    );
    try {
      const rows = (await this.dataSource.query(sql, [
        row.id,
        row.ownerId,
        row.status,
        this.at(row.nextAttemptAt),
        this.at(row.createdAt),
        this.at(row.updatedAt),
        row.ownerId,
        this.at(since),
        perDay,
      ])) as unknown[];
      return rows.length > 0 ? 'inserted' : 'capped';
    } catch (error) {
      if (isUniqueViolation(error)) return 'underway';
      throw error;
    }
  }

  findById(ownerId: string, id: string): Promise<Export | null> {
    return this.exports.findOneBy({ ownerId, id });
  }

  findUnderway(ownerId: string): Promise<Export | null> {
    return this.exports.findOneBy({ ownerId, status: In(UNDERWAY) });
  }

  /** The owner's exports asked for since `since`, oldest first (the daily cap). */
  findCreatedSince(ownerId: string, since: Date): Promise<Export[]> {
    return this.exports
      .createQueryBuilder('export')
      .where('export.ownerId = :ownerId AND export.createdAt > :since', { ownerId, since: this.at(since) })
      .orderBy('export.createdAt', 'ASC')
      .getMany();
  }

  /** The keys of every archive the owner's exports wrote or are writing. */
  async keysOfOwner(ownerId: string): Promise<string[]> {
    const rows = await this.exports.find({ select: { storageKey: true }, where: { ownerId } });
    return rows.flatMap((row) => (row.storageKey === null ? [] : [row.storageKey]));
  }

  /** Exports a worker may take now: waiting, or running under a claim that lapsed (a crashed worker). */
  findDue(now: Date, limit: number): Promise<Export[]> {
    return this.due(this.exports.createQueryBuilder('export').select(), now)
      .orderBy('export.createdAt', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** Takes the export for one attempt, only while it is still due; of several workers one wins. */
  async claim(id: string, token: string, storageKey: string, now: Date, until: Date): Promise<boolean> {
    const update = this.exports
      .createQueryBuilder('export')
      .update()
      .set({
        status: ExportStatus.Running,
        claimToken: token,
        claimedUntil: until,
        storageKey,
        attempts: () => 'attempts + 1',
        updatedAt: now,
      })
      .where('id = :id', { id });
    const result = await this.due(update, now).execute();
    return (result.affected ?? 0) > 0;
  }

  private due<Q extends WhereExpressionBuilder>(query: Q, now: Date): Q {
    return query
      .andWhere('status IN (:...underway)', { underway: UNDERWAY })
      .andWhere('next_attempt_at <= :now', { now: this.at(now) })
      .andWhere('(claimed_until IS NULL OR claimed_until < :now)', { now: this.at(now) });
  }

  /** Keeps the claim of a long build; false when it was lost (taken over, or the account deleted). */
  async renewClaim(id: string, token: string, until: Date): Promise<boolean> {
    const result = await this.exports.update({ id, claimToken: token }, { claimedUntil: until });
    return (result.affected ?? 0) > 0;
  }

  /** running → ready, only by the attempt holding the claim. */
  async markReady(id: string, token: string, bytes: number, readyAt: Date, expiresAt: Date): Promise<boolean> {
    const result = await this.exports.update(
      { id, claimToken: token, status: ExportStatus.Running },
      {
        status: ExportStatus.Ready,
        bytes,
        readyAt,
        expiresAt,
        claimToken: null,
        claimedUntil: null,
        lastError: null,
        updatedAt: readyAt,
      },
    );
    return (result.affected ?? 0) > 0;
  }

  /** The attempt failed: waiting again until `retryAt`, or failed for good when `retryAt` is null. */
  async markAttemptFailed(id: string, token: string, error: string, now: Date, retryAt: Date | null): Promise<void> {
    await this.exports.update(
      { id, claimToken: token, status: ExportStatus.Running },
      {
        status: retryAt === null ? ExportStatus.Failed : ExportStatus.Pending,
        nextAttemptAt: retryAt ?? now,
        claimToken: null,
        claimedUntil: null,
        lastError: error.slice(0, 500),
        updatedAt: now,
      },
    );
  }

  /** Ready exports whose archive has expired. */
  findExpired(now: Date, limit: number): Promise<Export[]> {
    return this.exports
      .createQueryBuilder('export')
      .where('export.status = :ready AND export.expiresAt <= :now', { ready: ExportStatus.Ready, now: this.at(now) })
      .limit(limit)
      .getMany();
  }

  async markExpired(id: string, now: Date): Promise<boolean> {
    const result = await this.exports.update(
      { id, status: ExportStatus.Ready },
      { status: ExportStatus.Expired, updatedAt: now },
    );
    return (result.affected ?? 0) > 0;
  }

  /** Rows of finished exports older than `before` (past the daily cap's window, their archives gone). */
  async deleteFinishedBefore(before: Date): Promise<void> {
    await this.exports
      .createQueryBuilder()
      .delete()
      .where('status IN (:...finished) AND updated_at < :before', {
        finished: [ExportStatus.Expired, ExportStatus.Failed],
        before: this.at(before),
      })
      .execute();
  }
}

function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const code = (error.driverError as { code?: unknown } | undefined)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
