import { extname } from 'node:path';
import { fileTypeFromFile } from 'file-type';
import { parseFile } from 'music-metadata';

/** Where file-type names a container by its video type, the audio type the API accepts for it. */
const AUDIO_TYPE_OF: Readonly<Record<string, string>> = {
  'video/webm': 'audio/webm',
  'video/mp4': 'audio/mp4',
  'video/3gpp': 'audio/3gpp',
  'video/3gpp2': 'audio/3gpp2',
};

/** Only for bytes that match no known format: the type their name suggests, so the server can say what they are. */
const TYPE_OF_EXTENSION: Readonly<Record<string, string>> = {
  '.m4a': 'audio/m4a',
  '.mp4': 'audio/mp4',
  '.aac': 'audio/aac',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.webm': 'audio/webm',
  '.ogg': 'audio/ogg',
  '.opus': 'audio/opus',
  '.flac': 'audio/flac',
  '.amr': 'audio/amr',
  '.3gp': 'audio/3gpp',
};

export interface DetectedAudio {
  mimeType: string;
  /** What the CLI declares; the server measures the real one when the container states it. */
  durationMs: number;
}

/**
 * The type comes from the bytes (file-type reads the first few kilobytes), never from the name: a WAV
 * called `memo.mp3` is declared `audio/wav`. Bytes of a known other format (a PNG) are declared as
 * what they are, and the server refuses the type. Bytes that match no format at all (text) are
 * declared by their extension, or as `audio/mpeg` (whose frames need no header to be found), so that
 * the server checks them and answers `UPLOAD_NOT_AUDIO`.
 */
export async function detectAudioType(path: string): Promise<DetectedAudio> {
  const detected = await fileTypeFromFile(path);
  const mimeType = detected
    ? (AUDIO_TYPE_OF[detected.mime] ?? detected.mime)
    : (TYPE_OF_EXTENSION[extname(path).toLowerCase()] ?? 'audio/mpeg');
  return { mimeType, durationMs: await declaredDuration(path) };
}

async function declaredDuration(path: string): Promise<number> {
  try {
    const { format } = await parseFile(path, { duration: false, skipCovers: true });
    return format.duration === undefined ? 0 : Math.round(format.duration * 1000);
  } catch {
    return 0;
  }
}
