import { Module } from '@nestjs/common';
import { RenditionsModule } from '../renditions/renditions.module';
import { SyncController } from './sync.controller';
import { SyncRepository } from './sync.repository';
import { SyncService } from './sync.service';

/** The change feed (GET /api/sync/changes) and the purge of old tombstones (run by the janitor). */
@Module({
  imports: [RenditionsModule],
  controllers: [SyncController],
  providers: [SyncRepository, SyncService],
  exports: [SyncService],
})
export class SyncModule {}
