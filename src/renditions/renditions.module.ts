import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DecoderAvailability } from './decoder-availability';
import { Rendition } from './rendition.entity';
import { RenditionsRepository } from './renditions.repository';
import { RenditionsService } from './renditions.service';

/**
 * Renditions and waveforms: the rows, the decoder, and the API's view of them. The job that makes them
 * (RenditionWorker) is provided by AudioClipsModule, beside the clips and the deletion outbox it uses.
 */
@Module({
  imports: [TypeOrmModule.forFeature([Rendition])],
  providers: [DecoderAvailability, RenditionsRepository, RenditionsService],
  exports: [DecoderAvailability, RenditionsRepository, RenditionsService],
})
export class RenditionsModule {}
