import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { StorageDeletion } from './deletions/storage-deletion.entity';
import { AudioClip } from './audio-clip.entity';
import { NotesModule } from '../notes/notes.module';
import { AudioClipsController } from './audio-clips.controller';
import { AudioClipsRepository } from './audio-clips.repository';
import { AudioClipsService } from './audio-clips.service';
import { AudioClipJanitor } from './audio-clip-janitor.service';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { SyncModule } from '../sync/sync.module';
import { JanitorTasks } from './janitor-tasks';
import { NoteDeletionService } from './deletions/note-deletion.service';
import { StorageDeletionsRepository } from './deletions/storage-deletions.repository';
import { StorageDeletionsService } from './deletions/storage-deletions.service';
import { NoteAudioClipsController } from './note-audio-clips.controller';
import { RenditionsModule } from '../renditions/renditions.module';
import { RenditionWorker } from '../renditions/rendition-worker.service';

@Module({
  imports: [
    NotesModule,
    IdempotencyModule,
    SyncModule,
    RenditionsModule,
    TypeOrmModule.forFeature([AudioClip, StorageDeletion]),
  ],
  controllers: [AudioClipsController, NoteAudioClipsController],
  providers: [
    AudioClipsRepository,
    AudioClipsService,
    AudioClipJanitor,
    StorageDeletionsRepository,
    StorageDeletionsService,
    NoteDeletionService,
    RenditionWorker,
    JanitorTasks,
  ],
  exports: [AudioClipJanitor, RenditionWorker, AudioClipsRepository, StorageDeletionsService, JanitorTasks],
})
export class AudioClipsModule {}
