import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { timestampParameter } from '../database/database.options';
import { SqlStatements } from '../database/sql-statements';
import { Note } from '../notes/note.entity';
import { SyncOwner } from './sync-owner.entity';
import { SyncTombstone } from './sync-tombstone.entity';

export interface ChangedItems {
  notes: Note[];
  clips: AudioClip[];
  tombstones: SyncTombstone[];
}

/** The change feed's reads, and the purge of old tombstones. */
@Injectable()
export class SyncRepository {
  private readonly dataSource: DataSource;

  constructor(
    @InjectRepository(SyncOwner) private readonly owners: Repository<SyncOwner>,
    @InjectRepository(SyncTombstone) private readonly tombstones: Repository<SyncTombstone>,
    @InjectRepository(Note) private readonly notes: Repository<Note>,
    @InjectRepository(AudioClip) private readonly clips: Repository<AudioClip>,
  ) {
    this.dataSource = owners.manager.connection;
  }

  /**
   * The owner's counter row; null for an owner who never changed anything. A plain read: it never waits
   * for a writer holding the row.
   */
  ownerState(ownerId: string): Promise<SyncOwner | null> {
    return this.owners.findOneBy({ ownerId });
  }

  /**
   * The owner's items whose last change is numbered in (after, upTo], at most `limit` of each kind, in
   * change order: notes and clips in their current state, deleted ones as tombstones. Each table is read
   * through its (owner_id, change_seq) index.
   */
  async changedBetween(ownerId: string, after: number, upTo: number, limit: number): Promise<ChangedItems> {
    const range = 'owner_id = :ownerId AND change_seq > :after AND change_seq <= :upTo';
    const params = { ownerId, after, upTo };
    const [notes, clips, tombstones] = [
      await this.notes
        .createQueryBuilder('note')
        .addSelect('note.changeSeq')
        .where(range, params)
        .orderBy('note.changeSeq', 'ASC')
        .limit(limit)
        .getMany(),
      await this.clips
        .createQueryBuilder('clip')
        .addSelect('clip.changeSeq')
        .where(range, params)
        .orderBy('clip.changeSeq', 'ASC')
        .limit(limit)
        .getMany(),
      await this.tombstones
        .createQueryBuilder('tombstone')
        .where(range, params)
        .orderBy('tombstone.changeSeq', 'ASC')
        .limit(limit)
        .getMany(),
    ];
    return { notes, clips, tombstones };
  }

  /**
   * Forgets the tombstones of deletions before `cutoff`, first raising their owners' `purged_seq` to the
   * highest of them: a cursor below it might have missed one, and answers 410. Returns how many went.
   */
  async purgeTombstones(cutoff: Date): Promise<number> {
    const at = timestampParameter(this.dataSource.options.type, cutoff);
    const adapt = (sql: string) => new SqlStatements(this.dataSource).adapt(sql);
    return this.dataSource.transaction(async (manager) => {
      const purged = `(SELECT MAX(change_seq) FROM sync_tombstones WHERE sync_tombstones.owner_id = sync_owners.owner_id AND deleted_at < ?)`;
      await manager.query(
        adapt(
          `UPDATE sync_owners SET purged_seq = CASE WHEN ${purged} > purged_seq THEN ${purged} ELSE purged_seq END
           WHERE owner_id IN (SELECT owner_id FROM sync_tombstones WHERE deleted_at < ?)`,
        ),
        [at, at, at],
      );
      const result = await manager
        .createQueryBuilder()
        .delete()
        .from(SyncTombstone)
        .where('deleted_at < :at', { at })
        .execute();
      return result.affected ?? 0;
    });
  }
}
