import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { Page, PageRequest } from '../common/pagination';
import { Note } from './note.entity';
import { NotesRepository } from './notes.repository';

export interface NoteInput {
  title: string;
  body?: string;
}

/** Every method acts for one owner and sees only that owner's notes. */
@Injectable()
export class NotesService {
  constructor(private readonly notes: NotesRepository) {}

  async create(ownerId: string, input: NoteInput): Promise<Note> {
    const now = new Date();
    const note = Object.assign(new Note(), {
      id: randomUUID(),
      ownerId,
      title: input.title,
      body: input.body ?? '',
      createdAt: now,
      updatedAt: now,
    });
    await this.notes.insert(note);
    return note;
  }

  async get(ownerId: string, id: string): Promise<Note> {
    const note = await this.notes.findById(ownerId, id);
    if (!note) throw noteNotFound(id);
    return note;
  }

  async assertExists(ownerId: string, id: string): Promise<void> {
    if (!(await this.notes.exists(ownerId, id))) throw noteNotFound(id);
  }

  list(ownerId: string, page: PageRequest): Promise<Page<Note>> {
    return this.notes.list(ownerId, page);
  }

  async update(ownerId: string, id: string, changes: Partial<NoteInput>): Promise<Note> {
    const note = await this.get(ownerId, id);
    if (changes.title === undefined && changes.body === undefined) return note;
    const updated = Object.assign(note, {
      ...(changes.title !== undefined ? { title: changes.title } : {}),
      ...(changes.body !== undefined ? { body: changes.body } : {}),
      updatedAt: new Date(),
    });
    if (
      !(await this.notes.update(ownerId, id, {
        title: updated.title,
        body: updated.body,
        updatedAt: updated.updatedAt,
      }))
    )
      throw noteNotFound(id);
    return updated;
  }

  /**
   * The row only, with its clips' rows (ON DELETE CASCADE): the API deletes a note through
   * NoteDeletionService, which first records the clips' stored objects for deletion.
   */
  async delete(ownerId: string, id: string): Promise<void> {
    if (!(await this.notes.delete(ownerId, id))) throw noteNotFound(id);
  }
}

export function noteNotFound(id: string): AppError {
  return new AppError('NOTE_NOT_FOUND', `No note with id ${id}.`);
}
