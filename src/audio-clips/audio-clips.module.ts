import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { StorageDeletion } from './deletions/storage-deletion.entity';
import { AudioClip } from './audio-clip.entity';
import { IdempotencyKey } from './idempotency-key.entity';
import { NotesModule } from '../notes/notes.module';
import { AudioClipsController } from './audio-clips.controller';
import { AudioClipsRepository } from './audio-clips.repository';
import { AudioClipsService } from './audio-clips.service';
import { AudioClipJanitor } from './audio-clip-janitor.service';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';
import { JanitorTasks } from './janitor-tasks';
import { NoteDeletionService } from './deletions/note-deletion.service';
import { StorageDeletionsRepository } from './deletions/storage-deletions.repository';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { NoteAudioClipsController } from './note-audio-clips.controller';

@Module({
  imports: [NotesModule, TypeOrmModule.forFeature([AudioClip, IdempotencyKey, StorageDeletion])],
  controllers: [AudioClipsController, NoteAudioClipsController],
  providers: [
    AudioClipsRepository,
    AudioClipsService,
    AudioClipJanitor,
    IdempotencyKeysRepository,
    StorageDeletionsRepository,
    StorageDeletionsService,
    NoteDeletionService,
    JanitorTasks,
  ],
  exports: [AudioClipJanitor, AudioClipsRepository, StorageDeletionsService, JanitorTasks],
})
export class AudioClipsModule {}
