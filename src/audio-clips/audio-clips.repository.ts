import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { PageRequest, toPage, type Page } from '../common/pagination';
import { timestampParameter } from '../database/database.options';
import { AudioClip, AudioClipStatus } from './audio-clip.entity';

/** Every query on `audio_clips` lives here, including the conditional state changes. */
@Injectable()
export class AudioClipsRepository {
  private readonly clips: Repository<AudioClip>;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.clips = dataSource.getRepository(AudioClip);
  }

  async insert(clip: AudioClip): Promise<void> {
    await this.clips.insert(clip);
  }

  findById(id: string): Promise<AudioClip | null> {
    return this.clips.findOneBy({ id });
  }

  /** The note's primary clip: the ready one completed last (served by idx_audio_clips_note_ready). */
  findPrimaryOfNote(noteId: string): Promise<AudioClip | null> {
    return this.clips
      .createQueryBuilder('clip')
      .where('clip.noteId = :noteId AND clip.status = :status', { noteId, status: AudioClipStatus.Ready })
      .orderBy('clip.completedAt', 'DESC')
      .addOrderBy('clip.id', 'DESC')
      .limit(1)
      .getOne();
  }

  async listOfNote(noteId: string, page: PageRequest): Promise<Page<AudioClip>> {
    const query = this.clips
      .createQueryBuilder('clip')
      .where('clip.noteId = :noteId', { noteId })
      .orderBy('clip.createdAt', 'DESC')
      .addOrderBy('clip.id', 'DESC')
      .limit(page.limit + 1);
    if (page.after) {
      query.andWhere('(clip.createdAt < :createdAt OR (clip.createdAt = :createdAt AND clip.id < :id))', {
        createdAt: timestampParameter(this.dataSource.options.type, page.after.createdAt),
        id: page.after.id,
      });
    }
    return toPage(await query.getMany(), page.limit);
  }

  async storageKeysOfNote(noteId: string): Promise<string[]> {
    const rows = await this.clips.find({ select: { storageKey: true }, where: { noteId } });
    return rows.map((row) => row.storageKey);
  }

  /**
   * pending → ready as one conditional UPDATE, so of two racing completions exactly one makes the
   * change; returns whether this call made it.
   */
  async markReady(id: string, at: Date): Promise<boolean> {
    const result = await this.clips.update({ id, status: AudioClipStatus.Pending }, { status: AudioClipStatus.Ready, completedAt: at, updatedAt: at });
    return (result.affected ?? 0) > 0;
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.clips.delete({ id });
    return (result.affected ?? 0) > 0;
  }
}
