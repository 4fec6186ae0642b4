import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccountModule } from '../account/account.module';
import { AudioClipsModule } from '../audio-clips/audio-clips.module';
import { NotesModule } from '../notes/notes.module';
import { Export } from './export.entity';
import { ExportWorker } from './export-worker.service';
import { ExportsController } from './exports.controller';
import { ExportsRepository } from './exports.repository';
import { ExportsService } from './exports.service';

@Module({
  imports: [TypeOrmModule.forFeature([Export]), AudioClipsModule, NotesModule, AccountModule],
  controllers: [ExportsController],
  providers: [ExportsRepository, ExportsService, ExportWorker],
  exports: [ExportWorker],
})
export class ExportsModule {}
