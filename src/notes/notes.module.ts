import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Note } from './note.entity';
import { NotesController } from './notes.controller';
import { NotesRepository } from './notes.repository';
import { NotesService } from './notes.service';
import { NotesSearchRepository } from './search/notes-search.repository';
import { NotesSearchService } from './search/notes-search.service';

@Module({
  imports: [TypeOrmModule.forFeature([Note])],
  controllers: [NotesController],
  providers: [NotesRepository, NotesService, NotesSearchRepository, NotesSearchService],
  exports: [NotesService],
})
export class NotesModule {}
