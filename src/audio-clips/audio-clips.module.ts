import { Module } from '@nestjs/common';
import { NotesModule } from '../notes/notes.module';
import { AudioClipsController } from './audio-clips.controller';
import { AudioClipsRepository } from './audio-clips.repository';
import { AudioClipsService } from './audio-clips.service';
import { NoteAudioClipsController } from './note-audio-clips.controller';

@Module({
  imports: [NotesModule],
  controllers: [AudioClipsController, NoteAudioClipsController],
  providers: [AudioClipsRepository, AudioClipsService],
})
export class AudioClipsModule {}
