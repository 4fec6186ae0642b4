import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AudioClip } from '../audio-clips/audio-clip.entity';
import { Note } from '../notes/note.entity';
import { RenditionsModule } from '../renditions/renditions.module';
import { SyncController } from './sync.controller';
import { SyncOwner } from './sync-owner.entity';
import { SyncRepository } from './sync.repository';
import { SyncService } from './sync.service';
import { SyncTombstone } from './sync-tombstone.entity';

/** The change feed (GET /api/sync/changes) and the purge of old tombstones (run by the janitor). */
@Module({
  imports: [RenditionsModule, TypeOrmModule.forFeature([SyncOwner, SyncTombstone, Note, AudioClip])],
  controllers: [SyncController],
  providers: [SyncRepository, SyncService],
  exports: [SyncService],
})
export class SyncModule {}
