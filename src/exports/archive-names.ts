import { extensionForMimeType } from '../audio-clips/audio-mime-types';

/** Longest file-name stem kept from a title, in characters (whole graphemes are not split further). */
const MAX_STEM_CHARS = 60;

/**
 * A title as a file name that unzips anywhere: letters of any script kept (NFC), but no path
 * separators, no characters Windows refuses (`<>:"|?*`), no control characters, no leading dots (a
 * hidden file or `..`) and no trailing dots or spaces (Windows drops them). Empty becomes "Untitled".
 */
export function safeFileStem(title: string): string {
  const cleaned = title
    .normalize('NFC')
    .replace(/\s+/gu, ' ')
    // Bidirectional overrides and the byte-order mark can disguise a name; a zero-width joiner (emoji) stays.
    .replace(/[/\\<>:"|?*\p{Cc}\u202a-\u202e\u2066-\u2069\ufeff]/gu, '_')
    .trim()
    .replace(/^[.\s]+/u, '')
    .replace(/[.\s]+$/u, '');
  const chars = [...cleaned];
  const stem = (chars.length > MAX_STEM_CHARS ? chars.slice(0, MAX_STEM_CHARS).join('') : cleaned).replace(
    /[.\s]+$/u,
    '',
  );
  return stem === '' ? 'Untitled' : stem;
}

/** The first characters of an id: enough to tell two notes of one title apart, and to find the note in notes.json. */
function shortId(id: string): string {
  return id.slice(0, 8);
}

/** `notes/<title> (<id>).md`: readable, and unique since ids are. */
export function noteFileName(note: { id: string; title: string }): string {
  return `notes/${safeFileStem(note.title)} (${shortId(note.id)}).md`;
}

/** `recordings/<note title or "Recording"> <date> (<id>).<ext>`, with the extension of its type. */
export function recordingFileName(
  clip: { id: string; mimeType: string; createdAt: Date },
  noteTitle: string | null,
): string {
  const extension = extensionForMimeType(clip.mimeType) ?? 'bin';
  const day = clip.createdAt.toISOString().slice(0, 10);
  return `recordings/${safeFileStem(noteTitle ?? 'Recording')} ${day} (${shortId(clip.id)}).${extension}`;
}

/** The download's file name: `advanced-notes-export-<date>.zip`, as Content-Disposition gives it. */
export function archiveFileName(createdAt: Date): string {
  return `advanced-notes-export-${createdAt.toISOString().slice(0, 10)}.zip`;
}

/** `attachment` with the file name, ASCII and RFC 5987 forms both (the name is ASCII here, but safe either way). */
export function attachmentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}
