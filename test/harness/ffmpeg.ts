import { spawnSync } from 'node:child_process';
import { LegUnavailable } from './legs';

/** The renditions tests need Debian's ffmpeg and ffprobe (apt-get install ffmpeg), like the server does. */
export const FFMPEG_LEG = 'ffmpeg';

/** Throws LegUnavailable when ffmpeg or ffprobe cannot be run. */
export function checkFfmpeg(): void {
  const missing = ['ffmpeg', 'ffprobe'].filter((tool) => spawnSync(tool, ['-version']).status !== 0);
  if (missing.length > 0)
    throw new LegUnavailable(
      `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not installed (install with: apt-get install ffmpeg): ` +
        'the rendition and waveform tests did not run',
    );
}
