import { Injectable } from '@nestjs/common';
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

  async delete(ownerId: string, noteId: string): Promise<void> {
    await this.notes.assertExists(ownerId, noteId);
    // Recorded before the rows go, so a crash or an unreachable store cannot orphan the objects. A clip
    // created or completed on the note after this read is covered too: its keys were recorded when its
    // upload URL was made and before its bytes moved.
    const now = new Date();
    const requests = this.deletions.ofGoneClips(await this.clips.keysOfNote(ownerId, noteId), now);
    await this.deletions.record(requests, now);
    await this.notes.delete(ownerId, noteId);
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
  }
}
