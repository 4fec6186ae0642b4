import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { timestampParameter } from '../database/database.options';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { Rendition, RenditionSource, RenditionStatus } from './rendition.entity';
import { buildRenditionKey, RENDITION_FORMAT_NAMES } from './rendition-formats';

/** What playback with a format needs: the clip's state and the rendition's, in one read. */
export interface RenditionPlayback {
  clipStatus: string;
  clipStorageKey: string;
  clipMimeType: string;
  rendition: Pick<Rendition, 'status' | 'source' | 'storageKey' | 'failureReason'> | null;
}

interface PlaybackRow {
  status: string;
  storage_key: string;
  mime_type: string;
  rendition_status: RenditionStatus | null;
  rendition_source: RenditionSource | null;
  rendition_key: string | null;
  rendition_failure: string | null;
}

/** Every query on `renditions`. Claims and finishes are conditional updates, so one worker wins each. */
@Injectable()
export class RenditionsRepository {
  constructor(@InjectRepository(Rendition) private readonly renditions: Repository<Rendition>) {}

  private get type() {
    return this.renditions.manager.connection.options.type;
  }

  /** A pending row per format for a clip that became ready; a row already there stays as it is. */
  async insertPending(clip: { id: string; ownerId: string; storageKey: string }, now: Date): Promise<void> {
    await this.renditions
      .createQueryBuilder()
      .insert()
      .values(
        RENDITION_FORMAT_NAMES.map((format) => ({
          clipId: clip.id,
          format,
          ownerId: clip.ownerId,
          status: RenditionStatus.Pending,
          source: RenditionSource.Rendition,
          storageKey: buildRenditionKey(clip.storageKey, format),
          bytes: null,
          durationMs: null,
          failureReason: null,
          attempts: 0,
          claimToken: null,
          claimedUntil: null,
          createdAt: now,
          updatedAt: now,
        })),
      )
      .orIgnore()
      .execute();
  }

  /**
   * Ready clips created since `createdAfter` that have no rendition row (a crash between the clip's change
   * and the row's insert). Bounded by creation time so that it reads recent clips only (through
   * idx_audio_clips_status_created), not every ready clip there is.
   */
  async readyClipsWithoutRenditions(
    createdAfter: Date,
    limit: number,
  ): Promise<{ id: string; ownerId: string; storageKey: string }[]> {
    const rows = await this.renditions.manager
      .createQueryBuilder()
      .select(['c.id AS id', 'c.owner_id AS owner_id', 'c.storage_key AS storage_key'])
      .from('audio_clips', 'c')
      .where("c.status = 'ready' AND c.created_at > :createdAfter", {
        createdAfter: timestampParameter(this.type, createdAfter),
      })
      .andWhere('NOT EXISTS (SELECT 1 FROM renditions r WHERE r.clip_id = c.id)')
      .limit(limit)
      .getRawMany<{ id: string; owner_id: string; storage_key: string }>();
    return rows.map((row) => ({ id: row.id, ownerId: row.owner_id, storageKey: row.storage_key }));
  }

  forClips(clipIds: readonly string[]): Promise<Rendition[]> {
    if (clipIds.length === 0) return Promise.resolve([]);
    return this.renditions.find({ where: { clipId: In([...clipIds]) } });
  }

  find(clipId: string, format: string): Promise<Rendition | null> {
    return this.renditions.findOneBy({ clipId, format });
  }

  /** The owner's clip and its rendition in one read; null for a clip that is not theirs (or none). */
  async findPlayback(ownerId: string, clipId: string, format: string): Promise<RenditionPlayback | null> {
    // Placeholders in the order they appear (SQLite's `?` are positional).
    const [first, second, third] = this.type === 'postgres' ? ['$1', '$2', '$3'] : ['?', '?', '?'];
    const rows: PlaybackRow[] = await this.renditions.manager.query(
      'SELECT c.status, c.storage_key, c.mime_type, r.status AS rendition_status, r.source AS rendition_source, ' +
        'r.storage_key AS rendition_key, r.failure_reason AS rendition_failure FROM audio_clips c ' +
        `LEFT JOIN renditions r ON r.clip_id = c.id AND r.format = ${first} ` +
        `WHERE c.id = ${second} AND c.owner_id = ${third}`,
      [format, clipId, ownerId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      clipStatus: row.status,
      clipStorageKey: row.storage_key,
      clipMimeType: row.mime_type,
      rendition:
        row.rendition_status === null
          ? null
          : {
              status: row.rendition_status,
              source: row.rendition_source ?? RenditionSource.Rendition,
              storageKey: row.rendition_key ?? '',
              failureReason: row.rendition_failure,
            },
    };
  }

  /** Pending jobs nobody holds (never claimed, or their lease ran out), oldest first. */
  findClaimable(now: Date, limit: number): Promise<Rendition[]> {
    return this.renditions
      .createQueryBuilder('r')
      .where('r.status = :pending', { pending: RenditionStatus.Pending })
      .andWhere('(r.claimedUntil IS NULL OR r.claimedUntil < :now)', { now: timestampParameter(this.type, now) })
      .orderBy('r.createdAt', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** Takes the job for `token` until `until`, counting a try; false when another worker has it. */
  async claim(job: Pick<Rendition, 'clipId' | 'format'>, token: string, now: Date, until: Date): Promise<boolean> {
    const result = await this.renditions
      .createQueryBuilder()
      .update()
      .set({ claimToken: token, claimedUntil: until, attempts: () => 'attempts + 1', updatedAt: now })
      .where('clip_id = :clipId AND format = :format AND status = :pending', {
        clipId: job.clipId,
        format: job.format,
        pending: RenditionStatus.Pending,
      })
      .andWhere('(claimed_until IS NULL OR claimed_until < :now)', { now: timestampParameter(this.type, now) })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /** The job's outcome, only while `token` still holds it; false when the row is gone (clip deleted) or taken. */
  async finish(
    job: Pick<Rendition, 'clipId' | 'format'>,
    token: string,
    outcome: Pick<Rendition, 'status' | 'source' | 'storageKey' | 'bytes' | 'durationMs' | 'failureReason'>,
    now: Date,
  ): Promise<boolean> {
    // The clip's updated_at moves with it, so that the change feed and `updated_since` carry the outcome.
    return this.renditions.manager.transaction(async (manager) => {
      const result = await manager.update(
        Rendition,
        { clipId: job.clipId, format: job.format, claimToken: token },
        { ...outcome, claimToken: null, claimedUntil: null, updatedAt: now },
      );
      if ((result.affected ?? 0) === 0) return false;
      await manager.update(AudioClip, { id: job.clipId }, { updatedAt: now });
      return true;
    });
  }

  /** Gives the job back (the store was down, the app is stopping): taken up again from `retryAt`. */
  async release(job: Pick<Rendition, 'clipId' | 'format'>, token: string, retryAt: Date | null, uncount: boolean) {
    await this.renditions
      .createQueryBuilder()
      .update()
      .set({ claimToken: null, claimedUntil: retryAt, ...(uncount ? { attempts: () => 'attempts - 1' } : {}) })
      .where('clip_id = :clipId AND format = :format AND claim_token = :token', { ...job, token })
      .execute();
  }

  /** Whether a rendition still needs the object under this key: a made one, or one being made. */
  async keyUse(key: string): Promise<'ready' | 'pending' | null> {
    const row = await this.renditions.findOne({ where: { storageKey: key }, select: { status: true } });
    if (!row) return null;
    if (row.status === RenditionStatus.Ready) return 'ready';
    return row.status === RenditionStatus.Pending ? 'pending' : null;
  }
}
