import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { matchesVersion, type EntityTagCondition } from '../common/entity-tags';
import type { Page, PageRequest } from '../common/pagination';
import { AppConfig } from '../config/app-config';
import { idempotencyKeyReused, requestHashOf } from '../idempotency/idempotency';
import { IdempotencyKeysRepository, isUniqueViolation } from '../idempotency/idempotency-keys.repository';
import { MAX_NOTE_BODY_LENGTH, toNoteResponse } from './note.dto';
import { Note } from './note.entity';
import { mergeNote, type ConflictRegion, type NoteContent } from './note-merge';
import type { NoteRevision } from './note-revision.entity';
import { NotesRepository } from './notes.repository';

export interface NoteInput {
  title: string;
  body?: string;
}

export interface NewNote extends NoteInput {
  /** The client's own id (a UUID v4). */
  id?: string;
}

export interface NoteChanges extends Partial<NoteInput> {
  /** The version the client edited from: older than the note's, its change is merged with the changes since. */
  baseVersion?: number;
}

export interface CreatedNote {
  note: Note;
  /** The create was a retry (same Idempotency-Key, or same client id and content): the note already existed. */
  replayed: boolean;
}

export interface UpdatedNote {
  note: Note;
  merged: boolean;
}

/** A write that lost a race with another one for the same version reads again, this many times at most. */
const MAX_WRITE_ATTEMPTS = 8;

class IdempotencyKeyTaken extends Error {}

/**
 * Every method acts for one owner and sees only that owner's notes. Versions: 1 on create, +1 on every
 * change; every write is conditional on the version it read, so concurrent writers never lose each
 * other's changes (the loser reads again, and answers 412 when the client's If-Match no longer holds).
 */
@Injectable()
export class NotesService {
  constructor(
    private readonly notes: NotesRepository,
    private readonly idempotencyKeys: IdempotencyKeysRepository,
    private readonly config: AppConfig,
  ) {}

  async create(ownerId: string, input: NewNote, idempotencyKey?: string): Promise<CreatedNote> {
    const content = { title: input.title, body: input.body ?? '' };
    const requestHash = requestHashOf([input.id ?? null, content.title, content.body]);
    if (idempotencyKey !== undefined) {
      const earlier = await this.idempotencyKeys.find(ownerId, 'notes', idempotencyKey);
      if (earlier) return this.replayKey(ownerId, earlier.resourceId, earlier.requestHash === requestHash);
    }
    // Judged against the create that made the note, not what the note became since.
    const createRequestHash = input.id === undefined ? null : requestHashOf([content.title, content.body]);
    if (input.id !== undefined) {
      const existing = await this.existingUnderId(ownerId, input.id, createRequestHash);
      if (existing) return { note: existing, replayed: true };
    }

    const now = new Date();
    const note = Object.assign(new Note(), {
      id: input.id ?? randomUUID(),
      ownerId,
      ...content,
      version: 1,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await this.notes.transaction(async (manager) => {
        await this.notes.insertWithFirstRevision(note, createRequestHash, manager);
        if (idempotencyKey === undefined) return;
        const recorded = await this.idempotencyKeys.insert(
          { ownerId, endpoint: 'notes', key: idempotencyKey, requestHash, resourceId: note.id, createdAt: now },
          manager,
        );
        if (!recorded) throw new IdempotencyKeyTaken();
      });
    } catch (error) {
      // A concurrent retry recorded the key first: nothing of ours was written; answer with its note.
      if (error instanceof IdempotencyKeyTaken && idempotencyKey !== undefined) {
        const winner = await this.idempotencyKeys.find(ownerId, 'notes', idempotencyKey);
        if (winner) return this.replayKey(ownerId, winner.resourceId, winner.requestHash === requestHash);
      }
      // A concurrent create took the client's id first.
      if (isUniqueViolation(error) && input.id !== undefined) {
        const existing = await this.existingUnderId(ownerId, input.id, createRequestHash);
        if (existing) return { note: existing, replayed: true };
      }
      throw error;
    }
    return { note, replayed: false };
  }

  async get(ownerId: string, id: string): Promise<Note> {
    const note = await this.notes.findById(ownerId, id);
    if (!note) throw await this.missing(ownerId, id);
    return note;
  }

  async assertExists(ownerId: string, id: string): Promise<void> {
    if (!(await this.notes.exists(ownerId, id))) throw await this.missing(ownerId, id);
  }

  list(ownerId: string, page: PageRequest): Promise<Page<Note>> {
    return this.notes.list(ownerId, page);
  }

  /**
   * Changes the title or body. `ifMatch` is checked first (412 with the current note); then a
   * `baseVersion` older than the note's makes the change a three-way merge against that revision. A
   * change that changes nothing keeps the version.
   */
  async update(ownerId: string, id: string, changes: NoteChanges, ifMatch?: EntityTagCondition): Promise<UpdatedNote> {
    for (let attempt = 1; ; attempt += 1) {
      const note = await this.get(ownerId, id);
      if (ifMatch && !matchesVersion(ifMatch, note.version)) throw versionMismatch(note);
      const { baseVersion } = changes;
      if (baseVersion !== undefined && baseVersion > note.version) {
        throw invalid('base_version', `base_version must be at most the note's version (${note.version})`);
      }
      let content: NoteContent = { title: changes.title ?? note.title, body: changes.body ?? note.body };
      let merged = false;
      if (baseVersion !== undefined && baseVersion < note.version) {
        const base = await this.notes.findRevision(ownerId, id, baseVersion);
        if (!base) throw versionMismatch(note, `its version ${baseVersion} is no longer kept to merge your edit with`);
        const yours = { title: changes.title ?? base.title, body: changes.body ?? base.body };
        const outcome = mergeNote(base, note, yours);
        if ('conflicts' in outcome) throw editConflict(note, base, yours, outcome.conflicts);
        content = outcome.merged;
        merged = true;
        // Each side fits, both together may not: the merged note must be one the client can send back.
        if (content.body.length > MAX_NOTE_BODY_LENGTH)
          throw invalid(
            'body',
            `body must be shorter than or equal to ${MAX_NOTE_BODY_LENGTH} characters once merged with the changes since your version`,
          );
      }
      if (content.title === note.title && content.body === note.body) return { note, merged };
      const updated = await this.notes.updateFrom(note, content, new Date(), this.config.sync.noteRevisionsKept);
      if (updated) return { note: updated, merged };
      if (attempt >= MAX_WRITE_ATTEMPTS) throw versionMismatch(await this.get(ownerId, id));
    }
  }

  /** A new version with the content of a kept revision (the current one unchanged when it has that content already). */
  async restore(ownerId: string, id: string, version: number, ifMatch?: EntityTagCondition): Promise<Note> {
    for (let attempt = 1; ; attempt += 1) {
      const note = await this.get(ownerId, id);
      if (ifMatch && !matchesVersion(ifMatch, note.version)) throw versionMismatch(note);
      const revision = await this.notes.findRevision(ownerId, id, version);
      if (!revision) throw revisionNotFound(id, version);
      if (revision.title === note.title && revision.body === note.body) return note;
      const restored = await this.notes.updateFrom(note, revision, new Date(), this.config.sync.noteRevisionsKept);
      if (restored) return restored;
      if (attempt >= MAX_WRITE_ATTEMPTS) throw versionMismatch(await this.get(ownerId, id));
    }
  }

  async listRevisions(ownerId: string, id: string, limit: number, beforeVersion?: number): Promise<NoteRevision[]> {
    await this.assertExists(ownerId, id);
    return this.notes.listRevisions(ownerId, id, limit, beforeVersion);
  }

  async getRevision(ownerId: string, id: string, version: number): Promise<NoteRevision> {
    const revision = await this.notes.findRevision(ownerId, id, version);
    if (revision) return revision;
    await this.assertExists(ownerId, id);
    throw revisionNotFound(id, version);
  }

  /**
   * The note as a delete must find it: null when the owner deleted it already (a second delete answers
   * as the first did); 412 when `ifMatch` does not hold.
   */
  async toDelete(ownerId: string, id: string, ifMatch?: EntityTagCondition): Promise<Note | null> {
    const note = await this.notes.findById(ownerId, id);
    if (!note) {
      if (await this.notes.isDeletedBy(ownerId, id)) return null;
      throw noteNotFound(id);
    }
    if (ifMatch && !matchesVersion(ifMatch, note.version)) throw versionMismatch(note);
    return note;
  }

  /**
   * The row only, with its revisions' and its clips' rows (ON DELETE CASCADE; triggers record the
   * tombstones), if it is still at `version`: the API deletes a note through NoteDeletionService, which
   * first records the clips' stored objects for deletion.
   */
  deleteAt(ownerId: string, id: string, version: number): Promise<boolean> {
    return this.notes.deleteAt(ownerId, id, version);
  }

  /** 410 for a note the owner deleted (while its tombstone is kept), else 404 as for any missing note. */
  private async missing(ownerId: string, id: string): Promise<AppError> {
    return (await this.notes.isDeletedBy(ownerId, id)) ? noteDeleted(id) : noteNotFound(id);
  }

  /** The owner's note made by this very create, or null when the id is free; any other use is a conflict. */
  private async existingUnderId(ownerId: string, id: string, createRequestHash: string | null): Promise<Note | null> {
    const use = await this.notes.idUse(id);
    if (!use) return null;
    if (!use.deleted && use.ownerId === ownerId && use.createRequestHash === createRequestHash) {
      const note = await this.notes.findById(ownerId, id);
      if (note) return note;
    }
    // The same answer whoever holds the id, so that nobody learns whether another user has it.
    throw new AppError(
      'NOTE_ID_CONFLICT',
      `The id ${id} is already used by another note (or a deleted one). Create the note under a new id.`,
    );
  }

  private async replayKey(ownerId: string, noteId: string, sameRequest: boolean): Promise<CreatedNote> {
    if (!sameRequest) throw idempotencyKeyReused('note');
    return { note: await this.get(ownerId, noteId), replayed: true };
  }
}

export function noteNotFound(id: string): AppError {
  return new AppError('NOTE_NOT_FOUND', `No note with id ${id}.`);
}

export function noteDeleted(id: string): AppError {
  return new AppError('NOTE_DELETED', `Note ${id} was deleted.`);
}

function revisionNotFound(id: string, version: number): AppError {
  return new AppError('NOTE_REVISION_NOT_FOUND', `Note ${id} keeps no revision ${version}.`);
}

function versionMismatch(note: Note, why?: string): AppError {
  return new AppError(
    'NOTE_VERSION_MISMATCH',
    why
      ? `Note ${note.id} is at version ${note.version}, and ${why}. error.current is the note as it is now.`
      : `Note ${note.id} is at version ${note.version}, not the one this request names. error.current is the note as it is now.`,
    { info: { current: toNoteResponse(note) } },
  );
}

function editConflict(note: Note, base: NoteRevision, yours: NoteContent, conflicts: ConflictRegion[]): AppError {
  return new AppError(
    'NOTE_EDIT_CONFLICT',
    `Your edit of note ${note.id} (from version ${base.version}) and the changes since (now version ${note.version}) change the same ${conflicts.some((c) => c.field === 'title') ? 'title' : 'lines'}. Nothing was written.`,
    {
      info: {
        base: { version: base.version, title: base.title, body: base.body },
        current: toNoteResponse(note),
        yours,
        conflicts: conflicts.map((conflict) => ({
          field: conflict.field,
          base_line: conflict.baseLine,
          base: conflict.base,
          current: conflict.current,
          yours: conflict.yours,
        })),
      },
    },
  );
}

function invalid(field: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', 'The request is not valid.', { details: [{ field, message }] });
}
