import { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import { AudioClip, AudioClipStatus } from '../audio-clips/audio-clip.entity';
import { toAudioClipResponse } from '../audio-clips/audio-clip.dto';
import type { Note } from '../notes/note.entity';
import { noteFileName, recordingFileName } from './archive-names';

type NoteSummary = Pick<Note, 'id' | 'title' | 'createdAt' | 'updatedAt'>;

/** Where the archive's parts come from: the owner's rows, their note bodies and recordings, read as they are written. */
export interface ArchiveSources {
  userId: string;
  notes: NoteSummary[];
  clips: AudioClip[];
  /** A note's body, read when its file is written; null when the note went meanwhile. */
  bodyOf(noteId: string): Promise<string | null>;
  /** A recording's bytes as a stream from the store; null when the object is not there. */
  openRecording(storageKey: string): Promise<NodeJS.ReadableStream | null>;
}

/**
 * The export archive as a zip stream, entry after entry: `notes.json` (every note's and clip's
 * metadata), one Markdown file per note, and every ready recording's original bytes, each opened
 * from the store only when the zip reaches it, so one recording at a time flows through (never whole
 * in memory). Recordings are stored, not deflated (audio does not compress). The stream errors, and
 * no archive must be kept, when any part fails or a recording has other than its recorded size.
 */
export function exportArchive(sources: ArchiveSources, exportedAt: Date): Readable {
  const zip = new ZipFile();
  const output = zip.outputStream as Readable;
  const fail = (error: Error) => output.destroy(error);
  zip.on('error', fail);

  const titles = new Map(sources.notes.map((note) => [note.id, note.title]));
  const ready = sources.clips.filter((clip) => clip.status === AudioClipStatus.Ready);
  const recordingFiles = new Map(
    ready.map((clip) => [
      clip.id,
      recordingFileName(clip, clip.noteId === null ? null : (titles.get(clip.noteId) ?? null)),
    ]),
  );

  const index = {
    format: 'advanced-notes-export',
    version: 1,
    exported_at: exportedAt.toISOString(),
    user_id: sources.userId,
    notes: sources.notes.map((note) => ({
      id: note.id,
      title: note.title,
      created_at: note.createdAt.toISOString(),
      updated_at: note.updatedAt.toISOString(),
      file: noteFileName(note),
      audio_clip_ids: sources.clips.filter((clip) => clip.noteId === note.id).map((clip) => clip.id),
    })),
    audio_clips: sources.clips.map((clip) => ({
      ...toAudioClipResponse(clip),
      file: recordingFiles.get(clip.id) ?? null,
    })),
  };
  zip.addBuffer(Buffer.from(`${JSON.stringify(index, null, 2)}\n`), 'notes.json', { mtime: exportedAt });

  for (const note of sources.notes) {
    const clips = sources.clips.filter((clip) => clip.noteId === note.id);
    zip.addReadStreamLazy(noteFileName(note), { mtime: note.updatedAt }, (callback) => {
      sources.bodyOf(note.id).then(
        (body) => callback(null, Readable.from([Buffer.from(noteMarkdown(note, body ?? '', clips, recordingFiles))])),
        (error: unknown) => callback(error, Readable.from([])),
      );
    });
  }

  for (const clip of ready) {
    const name = recordingFiles.get(clip.id)!;
    zip.addReadStreamLazy(
      name,
      // yazl checks the size: a store that ends a stream early fails the archive instead of truncating a file.
      { size: clip.bytes, compress: false, mtime: clip.completedAt ?? clip.createdAt },
      (callback) => {
        sources.openRecording(clip.storageKey).then(
          (stream) => {
            if (!stream) return fail(new Error(`the recording of clip ${clip.id} is not in the store`));
            // A read that fails mid-way (the store went away) fails the archive: pipe() would not pass it on.
            stream.on('error', (error: Error) => fail(error));
            callback(null, stream);
          },
          (error: unknown) => fail(error instanceof Error ? error : new Error(String(error))),
        );
      },
    );
  }
  zip.end();
  return output;
}

/** A note as Markdown: its title, dates, text, and links to its recordings inside the archive. */
export function noteMarkdown(
  note: NoteSummary,
  body: string,
  clips: readonly AudioClip[],
  recordingFiles: ReadonlyMap<string, string>,
): string {
  const lines = [
    `# ${note.title}`,
    '',
    `- Created: ${note.createdAt.toISOString()}`,
    `- Updated: ${note.updatedAt.toISOString()}`,
    `- Id: ${note.id}`,
    '',
    body,
    '',
  ];
  if (clips.length > 0) {
    lines.push('## Recordings', '');
    for (const clip of clips) {
      const seconds = (clip.durationMs / 1000).toFixed(1);
      const file = recordingFiles.get(clip.id);
      lines.push(
        file
          ? `- [${file.slice('recordings/'.length)}](<../${file}>) (${clip.mimeType}, ${seconds} s)`
          : `- Recording ${clip.id} (${clip.mimeType}, ${clip.status}: not in this archive)`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}
