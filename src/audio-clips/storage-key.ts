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

/**
 * Where the phone's upload lands: a key of its own, moved to the clip's storage key on completion,
 * so that a presigned PUT still valid after that cannot replace a ready clip's bytes.
 */
export function buildUploadKey(prefix: string, clipId: string, mimeType: string): string {
  const extension = extensionForMimeType(mimeType);
  if (!extension) throw new Error(`No file extension is known for ${mimeType}`);
  return `${prefix}/uploads/${clipId}.${extension}`;
}
