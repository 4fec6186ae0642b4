import { extensionForMimeType } from './audio-mime-types';

/**
 * `<prefix>/audio-clips/<clip id>.<extension>`: built only from the server's prefix, a server-made
 * random id and an extension from our own table, never from client text.
 */
export function buildAudioClipKey(prefix: string, clipId: string, mimeType: string): string {
  const extension = extensionForMimeType(mimeType);
  if (!extension) throw new Error(`No file extension is known for ${mimeType}`);
  return `${prefix}/audio-clips/${clipId}.${extension}`;
}
