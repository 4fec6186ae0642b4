import { Injectable } from '@nestjs/common';
import { DataSource, type EntityMetadata } from 'typeorm';
import { SqlStatements } from '../database/sql-statements';

/** The column every owned table names its owner in. */
export const OWNER_COLUMN = 'owner_id';

/**
 * Tables with an owner column whose rows are not the owner's data but the server's work on their
 * behalf, and outlive an account deletion on purpose: the deletion outbox names the owner on the
 * entries of upload URLs it cannot revoke, counting what they can still write against that owner
 * until their last delete, which then removes the entry.
 */
export const OWNER_ROWS_KEPT_BY = new Set(['storage_deletions']);

/**
 * Tables that the sync triggers write when a note or a clip is deleted (src/sync/sync-triggers.ts): they
 * go after every other table, or the deletion of the notes would write them again. Their counter row
 * gone, the owner's next write starts a new epoch, so sync cursors issued before answer 410.
 */
const DELETED_LAST = ['sync_tombstones', 'sync_owners'];

/**
 * Queries over everything an owner has, whatever the table: the counts `GET /api/me` shows and the
 * deletion of an account. The tables are found from the entities' metadata (every table with an
 * `owner_id` column), so a table added later is covered without a change here.
 */
@Injectable()
export class AccountRepository {
  private readonly sql: SqlStatements;

  constructor(private readonly dataSource: DataSource) {
    this.sql = new SqlStatements(dataSource);
  }

  async countNotesAndClips(ownerId: string): Promise<{ notes: number; audioClips: number }> {
    const [row] = (await this.dataSource.query(
      this.sql.adapt(
        'SELECT (SELECT COUNT(*) FROM notes WHERE owner_id = ?) AS notes, (SELECT COUNT(*) FROM audio_clips WHERE owner_id = ?) AS audio_clips',
      ),
      [ownerId, ownerId],
    )) as { notes: number | string; audio_clips: number | string }[];
    return { notes: Number(row.notes), audioClips: Number(row.audio_clips) };
  }

  /** Every table holding rows of an owner, those that refer to others first (so no foreign key stops a delete). */
  ownedTables(): EntityMetadata[] {
    const owned = this.dataSource.entityMetadatas.filter(
      (metadata) =>
        !OWNER_ROWS_KEPT_BY.has(metadata.tableName) &&
        metadata.columns.some((column) => column.databaseName === OWNER_COLUMN),
    );
    const ordered: EntityMetadata[] = [];
    const left = new Set(owned);
    while (left.size > 0) {
      // A table no remaining table refers to can go now.
      const next = [...left].find(
        (candidate) =>
          ![...left].some(
            (other) =>
              other !== candidate &&
              other.foreignKeys.some((key) => key.referencedEntityMetadata.tableName === candidate.tableName),
          ),
      );
      const table = next ?? [...left][0]; // a cycle: the cascades decide
      ordered.push(table);
      left.delete(table);
    }
    const last = (table: EntityMetadata) => DELETED_LAST.indexOf(table.tableName);
    return [
      ...ordered.filter((table) => last(table) < 0),
      ...DELETED_LAST.flatMap((name) => ordered.filter((table) => table.tableName === name)),
    ];
  }

  /**
   * Deletes every row of the owner in every owned table, in one transaction: all of it or nothing. On
   * Postgres it holds the owner's advisory lock, the one a quota-checked create takes, so no create of
   * theirs interleaves with it. Returns the rows deleted per table.
   */
  async deleteEverythingOf(ownerId: string): Promise<Record<string, number>> {
    return this.dataSource.transaction(async (manager) => {
      if (this.dataSource.options.type === 'postgres')
        await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`audio_clips:${ownerId}`]);
      const deleted: Record<string, number> = {};
      for (const table of this.ownedTables()) {
        const result = await manager
          .createQueryBuilder()
          .delete()
          .from(table.target)
          .where(`${OWNER_COLUMN} = :ownerId`, { ownerId })
          .execute();
        deleted[table.tableName] = result.affected ?? 0;
      }
      return deleted;
    });
  }
}
