import { Injectable } from '@nestjs/common';
import { toAudioClipResponse } from '../audio-clips/audio-clip.dto';
import { AppConfig } from '../config/app-config';
import { RenditionsService } from '../renditions/renditions.service';
import { decodeSyncCursor, encodeSyncCursor, invalidSyncCursor, syncCursorExpired } from './sync-cursor';
import type { SyncChangeDto, SyncChangesDto } from './sync.dto';
import { SyncRepository } from './sync.repository';
import type { SyncOwner } from './sync-owner.entity';

/** The epoch of the cursors of an owner who has no counter row yet. */
const NO_EPOCH = '0'.repeat(32);

/**
 * The change feed (docs/sync.md). Every write to an owner's notes and clips takes the next number of the
 * owner's counter inside its transaction (triggers, src/sync/sync-triggers.ts), and the counter's row
 * lock makes those numbers commit in order. A pull reads the counter first (N), then the items numbered
 * up to N: every change up to N has committed by then, so nothing below the next cursor is ever still
 * to come, however the writers' commits interleave.
 */
@Injectable()
export class SyncService {
  constructor(
    private readonly sync: SyncRepository,
    private readonly config: AppConfig,
    private readonly renditions: RenditionsService,
  ) {}

  async changes(ownerId: string, rawCursor: string | undefined, limit: number): Promise<SyncChangesDto> {
    // An owner who never changed anything has no counter row yet (a read writes nothing).
    const owner = (await this.sync.ownerState(ownerId)) ?? { seq: 0, epoch: NO_EPOCH, purgedSeq: 0 };
    const now = Date.now();
    if (rawCursor === undefined) return this.page(ownerId, owner, 0, owner.seq, limit, now);
    const cursor = decodeSyncCursor(ownerId, rawCursor);
    // A cursor at 0 has seen nothing: it is a full sync in any epoch.
    if (cursor.seq === 0) return this.page(ownerId, owner, 0, owner.seq, limit, now);
    if (cursor.epoch !== owner.epoch) throw syncCursorExpired();
    if (cursor.seq > owner.seq || cursor.floor > owner.seq || cursor.issuedAt > now + 60_000) throw invalidSyncCursor();
    // A deletion after what the client has seen may have been forgotten since: it must start again. (A
    // full sync under way saw nothing before its first page, so what was purged below that is no loss.)
    if (
      Math.max(cursor.seq, cursor.floor) < owner.purgedSeq ||
      now - cursor.issuedAt > this.config.sync.tombstoneTtlSeconds * 1000
    )
      throw syncCursorExpired();
    return this.page(ownerId, owner, cursor.seq, cursor.floor, limit, now);
  }

  private async page(
    ownerId: string,
    owner: Pick<SyncOwner, 'seq' | 'epoch'>,
    after: number,
    floor: number,
    limit: number,
    now: number,
  ): Promise<SyncChangesDto> {
    const horizon = owner.seq;
    const { notes, clips, tombstones } = await this.sync.changedBetween(ownerId, after, horizon, limit + 1);
    // Each clip as GET /api/audio-clips/{id} answers it, renditions included.
    await this.renditions.attach(clips);
    const items: { seq: number; change: SyncChangeDto }[] = [
      ...notes.map(({ changeSeq, note }) => ({
        seq: changeSeq,
        change: {
          type: 'note' as const,
          id: note.id,
          deleted: false,
          deleted_at: null,
          version: note.version,
          note,
        },
      })),
      ...clips.map((clip) => ({
        seq: clip.changeSeq!,
        change: {
          type: 'audio_clip' as const,
          id: clip.id,
          deleted: false,
          deleted_at: null,
          version: null,
          audio_clip: toAudioClipResponse(clip),
        },
      })),
      ...tombstones.map((tombstone) => ({
        seq: tombstone.changeSeq,
        change: {
          type: tombstone.itemType,
          id: tombstone.id,
          deleted: true,
          deleted_at: tombstone.deletedAt.toISOString(),
          version: tombstone.version,
        },
      })),
    ].sort((a, b) => a.seq - b.seq);
    const page = items.slice(0, limit);
    const hasMore = items.length > limit;
    // The whole range up to the horizon was read unless the page is full.
    const reached = hasMore ? page[page.length - 1].seq : horizon;
    return {
      changes: page.map((item) => item.change),
      next_cursor: encodeSyncCursor(ownerId, {
        epoch: owner.epoch,
        seq: reached,
        issuedAt: now,
        floor: hasMore ? floor : 0,
      }),
      has_more: hasMore,
    };
  }

  /** The janitor's part: tombstones older than SYNC_TOMBSTONE_TTL_SECONDS go. */
  purgeTombstones(now: Date): Promise<number> {
    return this.sync.purgeTombstones(new Date(now.getTime() - this.config.sync.tombstoneTtlSeconds * 1000));
  }
}
