import { Injectable } from '@nestjs/common';
import type { EntityTagCondition } from '../../common/entity-tags';
import { NotesService } from '../../notes/notes.service';
import { AudioClipsRepository } from '../audio-clips.repository';
import { StorageDeletionsService } from './storage-deletions.service';

/**
 * Deleting a note takes its clips with it: their rows go by ON DELETE CASCADE, and their stored
 * objects must go too. It lives here rather than in NotesService because it needs the clips.
 */
@Injectable()
export class NoteDeletionService {
  constructor(
    private readonly notes: NotesService,
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsService,
  ) {}

  /**
   * Deletes the note if it is at the version `ifMatch` names (412 otherwise). A note the owner deleted
   * already is done: a second delete answers as the first did.
   */
  async delete(ownerId: string, noteId: string, ifMatch?: EntityTagCondition): Promise<void> {
    for (;;) {
      const note = await this.notes.toDelete(ownerId, noteId, ifMatch);
      if (!note) return;
      // Recorded before the rows go, so a crash or an unreachable store cannot orphan the objects. A clip
      // created or completed on the note after this read is covered too: its keys were recorded when its
      // upload URL was made and before its bytes moved.
      const now = new Date();
      const requests = this.deletions.ofGoneClips(await this.clips.keysOfGoneClips(ownerId, noteId), now);
      await this.deletions.record(requests, now);
      // Only the version just checked: changed meanwhile, the note is looked at again (and If-Match with it).
      const deleted = await this.notes.deleteAt(ownerId, noteId, note.version);
      await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
      if (deleted) return;
    }
  }
}
