import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { Note } from './note.entity';
import { NoteRevision } from './note-revision.entity';
import { NotesController } from './notes.controller';
import { NotesRepository } from './notes.repository';
import { NotesService } from './notes.service';
import { NotesSearchRepository } from './search/notes-search.repository';
import { NotesSearchService } from './search/notes-search.service';

@Module({
  imports: [IdempotencyModule, TypeOrmModule.forFeature([Note, NoteRevision])],
  controllers: [NotesController],
  providers: [NotesRepository, NotesService, NotesSearchRepository, NotesSearchService],
  exports: [NotesService, NotesRepository],
})
export class NotesModule {}
