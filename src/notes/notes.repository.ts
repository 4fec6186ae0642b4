import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { timestampParameter } from '../database/database.options';
import { afterCursor, PageRequest, toPage, type Page } from '../common/pagination';
import { Note } from './note.entity';

/**
 * Every query on `notes` lives here, and every one is scoped by owner: another user's note is
 * indistinguishable from a missing one.
 */
@Injectable()
export class NotesRepository {
  private readonly dataSource: DataSource;

  constructor(@InjectRepository(Note) private readonly notes: Repository<Note>) {
    this.dataSource = notes.manager.connection;
  }

  async insert(note: Note): Promise<void> {
    await this.notes.insert(note);
  }

  findById(ownerId: string, id: string): Promise<Note | null> {
    return this.notes.findOneBy({ ownerId, id });
  }

  exists(ownerId: string, id: string): Promise<boolean> {
    return this.notes.existsBy({ ownerId, id });
  }

  async list(ownerId: string, page: PageRequest): Promise<Page<Note>> {
    const query = this.notes
      .createQueryBuilder('note')
      .where('note.ownerId = :ownerId', { ownerId })
      .orderBy('note.createdAt', 'DESC')
      .addOrderBy('note.id', 'DESC')
      .limit(page.limit + 1);
    const cursorTime = page.after && timestampParameter(this.dataSource.options.type, page.after.createdAt);
    return toPage(await afterCursor(query, 'note', page.after, cursorTime).getMany(), page.limit);
  }

  async update(
    ownerId: string,
    id: string,
    changes: Partial<Pick<Note, 'title' | 'body' | 'updatedAt'>>,
  ): Promise<boolean> {
    const result = await this.notes.update({ ownerId, id }, changes);
    return (result.affected ?? 0) > 0;
  }

  /** Every note of the owner without its body (an export reads each body when it writes that note), oldest first. */
  summariesOfOwner(ownerId: string): Promise<Pick<Note, 'id' | 'title' | 'createdAt' | 'updatedAt'>[]> {
    return this.notes.find({
      select: { id: true, title: true, createdAt: true, updatedAt: true },
      where: { ownerId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /** Returns whether a note was deleted; its clips' rows go with it (ON DELETE CASCADE). */
  async delete(ownerId: string, id: string): Promise<boolean> {
    const result = await this.notes.delete({ ownerId, id });
    return (result.affected ?? 0) > 0;
  }
}
