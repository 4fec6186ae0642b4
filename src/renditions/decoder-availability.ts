import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { decoderVersion, type DecoderTools } from './ffmpeg';

/**
 * Whether this server can make renditions: Debian's ffmpeg and ffprobe, looked for once at start. Without
 * them the server starts anyway and says so loudly, once; clips are ready as always, and their renditions
 * answer `unavailable` here.
 */
@Injectable()
export class DecoderAvailability implements OnModuleInit {
  private readonly logger = new Logger('Renditions');
  private version: string | null = null;
  readonly tools: DecoderTools;

  constructor(config: AppConfig) {
    this.tools = { ffmpeg: config.renditions.ffmpegPath, ffprobe: config.renditions.ffprobePath };
  }

  async onModuleInit(): Promise<void> {
    this.version = await decoderVersion(this.tools);
    if (this.version === null) {
      this.logger.error(
        `NO RENDITIONS ON THIS SERVER: ffmpeg (${this.tools.ffmpeg}) or ffprobe (${this.tools.ffprobe}) cannot be run. ` +
          'Clips are accepted and played as uploaded; their m4a renditions and waveforms are not made here ' +
          '(renditions answer "unavailable"). Install Debian\'s ffmpeg (apt-get install ffmpeg) or set FFMPEG_PATH and FFPROBE_PATH.',
      );
    } else {
      this.logger.log(`Renditions are made with ${this.version}`);
    }
  }

  get available(): boolean {
    return this.version !== null;
  }
}
