#!/usr/bin/env node
/**
 * `advanced-notes`: the API from a terminal, doing what the phone does, on the typed client.
 * Every command prints a short human answer, or with `--json` the API's own JSON on stdout. Errors
 * are one line on stderr (`advanced-notes: CODE: message`, the server's code and message) and a
 * non-zero exit code.
 */
import { createWriteStream } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError } from 'commander';
import { ApiError, createAdvancedNotesClient, unwrap, type AdvancedNotesClient, type AudioClip } from './index';
import { detectAudioType } from './audio-type';
import { putFile } from './upload';
import { registerYourDataCommands } from './your-data';

const DEFAULT_URL = 'http://localhost:3000';
/** How many times an upload URL that ran out is renewed before giving up. */
const MAX_RENEWALS = 2;

interface GlobalOptions {
  url: string;
  token?: string;
}

interface JsonOption {
  json?: boolean;
}

export function buildProgram(): Command {
  const program = new Command('advanced-notes')
    .description('Advanced Notes from the command line: notes and their voice recordings.')
    .option('--url <url>', 'where the API runs (env ADVANCED_NOTES_URL)', process.env.ADVANCED_NOTES_URL || DEFAULT_URL)
    // No default from the environment here: commander prints defaults in --help, and a token is a secret.
    .option('--token <jwt>', 'bearer token (env ADVANCED_NOTES_TOKEN)')
    .showHelpAfterError()
    .exitOverride();

  const client = (): AdvancedNotesClient => {
    const { url, token } = program.opts<GlobalOptions>();
    return createAdvancedNotesClient({ baseUrl: url, token: token || process.env.ADVANCED_NOTES_TOKEN || undefined });
  };

  program
    .command('upload')
    .description('upload a recording: detect its type from the bytes, upload, complete, print the playback URL')
    .argument('<file>', 'the audio file')
    .option('--note <id>', 'attach the recording to this note')
    .option('--json', 'print the clip and its playback as JSON')
    .action(async (file: string, options: JsonOption & { note?: string }) => {
      const result = await upload(client(), file, options.note);
      if (options.json) return printJson(result);
      printFields([
        ['clip', result.clip.id],
        ['status', result.clip.status],
        ['duration', `${result.clip.duration_ms} ms (${result.clip.duration_source})`],
        ['type', result.clip.mime_type],
        ['bytes', String(result.clip.bytes)],
        ['playback', result.playback.url],
      ]);
    });

  program
    .command('play')
    .description('print the playback URL of a ready clip, or download the recording')
    .argument('<clip-id>')
    .option('--out <file>', 'download the recording to this file')
    .option('--json', 'print the playback as JSON')
    .option('--format <format>', 'play the rendition the server made (m4a: AAC in MP4, which every phone plays)')
    .action(async (clipId: string, options: JsonOption & { out?: string; format?: 'm4a' }) => {
      const query = options.format === undefined ? {} : { format: options.format };
      const playback = unwrap(
        await client().GET('/api/audio-clips/{clip_id}/playback', { params: { path: { clip_id: clipId }, query } }),
      );
      if (options.out !== undefined) {
        const bytes = await download(playback.url, options.out);
        if (options.json) return printJson({ ...playback, file: options.out, bytes });
        return console.log(`${options.out}: ${bytes} bytes`);
      }
      if (options.json) return printJson(playback);
      console.log(playback.url);
    });

  const notes = program.command('notes').description('create, list and show notes');
  notes
    .command('create')
    .description('create a note')
    .requiredOption('--title <title>')
    .option('--body <body>')
    .option('--json', 'print the note as JSON')
    .action(async (options: JsonOption & { title: string; body?: string }) => {
      const note = unwrap(
        await client().POST('/api/notes', {
          body: { title: options.title, ...(options.body === undefined ? {} : { body: options.body }) },
        }),
      );
      if (options.json) return printJson(note);
      console.log(note.id);
    });
  notes
    .command('list')
    .description('list your notes, newest first')
    .option('--json', 'print the notes as a JSON array')
    .action(async (options: JsonOption) => {
      const api = client();
      const all = await allPages((cursor) =>
        api.GET('/api/notes', { params: { query: { limit: 100, ...(cursor ? { cursor } : {}) } } }),
      );
      if (options.json) return printJson(all);
      for (const note of all) console.log(`${note.id}  ${note.created_at}  ${note.title}`);
    });
  notes
    .command('search')
    .description('find notes by what they say: every word must match, "a phrase", -excluded, the last word a prefix')
    .argument('<words...>')
    .option('--json', 'print the matching notes as a JSON array')
    .action(async (words: string[], options: JsonOption) => {
      const found = await searchNotes(client(), words.join(' '));
      if (options.json) return printJson(found);
      for (const note of found) {
        console.log(`${note.id}  ${note.updated_at}  ${note.title}`);
        if (note.highlight) console.log(`    ${note.highlight.text.replace(/\s+/g, ' ')}`);
      }
    });
  notes
    .command('show')
    .description('show one note')
    .argument('<note-id>')
    .option('--json', 'print the note as JSON')
    .action(async (noteId: string, options: JsonOption) => {
      const note = unwrap(await client().GET('/api/notes/{note_id}', { params: { path: { note_id: noteId } } }));
      if (options.json) return printJson(note);
      printFields([
        ['note', note.id],
        ['title', note.title],
        ['created', note.created_at],
        ['updated', note.updated_at],
      ]);
      if (note.body !== '') console.log(`\n${note.body}`);
    });

  addSyncCommands(program, notes, client);

  const clips = program.command('clips').description('list and delete audio clips');
  clips
    .command('list')
    .description("list a note's clips in every state, newest first")
    .argument('<note-id>')
    .option('--json', 'print the clips as a JSON array')
    .action(async (noteId: string, options: JsonOption) => {
      const api = client();
      const all = await allPages((cursor) =>
        api.GET('/api/notes/{note_id}/audio-clips', {
          params: { path: { note_id: noteId }, query: { limit: 100, ...(cursor ? { cursor } : {}) } },
        }),
      );
      if (options.json) return printJson(all);
      for (const clip of all) {
        console.log(
          `${clip.id}  ${clip.status.padEnd(7)}  ${clip.duration_ms} ms  ${clip.bytes} bytes  ${clip.mime_type}`,
        );
      }
    });
  clips
    .command('show')
    .description('show one clip, its renditions, and its waveform as a sparkline')
    .argument('<clip-id>')
    .option('--json', 'print the clip as JSON')
    .action(async (clipId: string, options: JsonOption) => {
      const clip = unwrap(await client().GET('/api/audio-clips/{clip_id}', { params: { path: { clip_id: clipId } } }));
      if (options.json) return printJson(clip);
      printFields([
        ['clip', clip.id],
        ['status', clip.status],
        ['audio', `${clip.duration_ms} ms  ${clip.bytes} bytes  ${clip.mime_type}`],
        ...clip.renditions.map((r): [string, string] => [
          r.format,
          r.failure_reason ? `${r.status} (${r.failure_reason})` : r.status,
        ]),
        ['waveform', clip.waveform ? sparkline(clip.waveform) : '(not made yet)'],
      ]);
    });
  clips
    .command('delete')
    .description('delete a clip and its stored audio')
    .argument('<clip-id>')
    .option('--json', 'print {"deleted": id} as JSON')
    .action(async (clipId: string, options: JsonOption) => {
      unwrap(await client().DELETE('/api/audio-clips/{clip_id}', { params: { path: { clip_id: clipId } } }));
      if (options.json) return printJson({ deleted: clipId });
      console.log(`deleted ${clipId}`);
    });

  registerYourDataCommands(program, client);
  return program;
}

/** A recording at or above the server's multipart threshold: part URLs a hundred at a time, each part PUT in turn. */
async function uploadParts(
  api: AdvancedNotesClient,
  clipId: string,
  plan: { partSize: number; partCount: number; size: number },
  file: string,
  onProgress: (sent: number) => void,
): Promise<void> {
  let sent = 0;
  for (let first = 1; first <= plan.partCount; first += 100) {
    const partNumbers = Array.from({ length: Math.min(100, plan.partCount - first + 1) }, (_, i) => first + i);
    const { parts } = unwrap(
      await api.POST('/api/audio-clips/{clip_id}/parts', {
        params: { path: { clip_id: clipId } },
        body: { part_numbers: partNumbers },
      }),
    );
    for (const part of parts) {
      const start = (part.part_number - 1) * plan.partSize;
      const end = Math.min(start + plan.partSize, plan.size) - 1;
      const put = await putFile(part, file, (partSent) => onProgress(sent + partSent), { start, end });
      if (put.status < 200 || put.status >= 300) throw storeRefusal(put.status, put.body);
      sent += end - start + 1;
    }
  }
}

/** The phone's four steps: create the clip, PUT the bytes (renewing a URL that ran out), complete, playback. */
async function upload(api: AdvancedNotesClient, file: string, noteId: string | undefined) {
  const size = (await stat(file)).size;
  const { mimeType, durationMs } = await detectAudioType(file);
  const created = unwrap(
    await api.POST('/api/audio-clips', {
      body: { mime_type: mimeType, bytes: size, duration_ms: durationMs, ...(noteId ? { note_id: noteId } : {}) },
    }),
  );
  const clipId = created.clip.id;
  let upload = created.upload;
  if (upload.mode === 'multipart') {
    await withProgressBar(size, (onProgress) =>
      uploadParts(api, clipId, { partSize: upload.part_size!, partCount: upload.part_count!, size }, file, onProgress),
    );
  } else {
    for (let renewals = 0; ; renewals += 1) {
      const put = await withProgressBar(size, (onProgress) => putFile(upload, file, onProgress));
      if (put.status >= 200 && put.status < 300) break;
      const expired = put.status === 403 && (Date.now() >= Date.parse(upload.expires_at!) || /expired/i.test(put.body));
      if (!expired || renewals === MAX_RENEWALS) throw storeRefusal(put.status, put.body);
      upload = unwrap(
        await api.POST('/api/audio-clips/{clip_id}/upload-url', { params: { path: { clip_id: clipId } } }),
      ).upload;
    }
  }
  const clip: AudioClip = unwrap(
    await api.POST('/api/audio-clips/{clip_id}/complete', { params: { path: { clip_id: clipId } } }),
  );
  const playback = unwrap(
    await api.GET('/api/audio-clips/{clip_id}/playback', { params: { path: { clip_id: clipId } } }),
  );
  return { clip, playback };
}

/** A progress bar on stderr while the bytes go up, only when stderr is a terminal (never in a pipe or a log). */
async function withProgressBar<T>(total: number, run: (onProgress: (sent: number) => void) => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return run(() => {});
  const bar = new SingleBar({
    stream: process.stderr,
    format: 'uploading [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted}',
    hideCursor: true,
  });
  bar.start(total, 0);
  try {
    return await run((sent) => bar.update(sent));
  } finally {
    bar.stop();
  }
}

/** The store's own answer to a refused PUT: the local driver's error JSON, or S3's XML code and message. */
function storeRefusal(status: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code) return new ApiError(status, parsed.error.code, parsed.error.message ?? '');
  } catch {
    // not JSON: S3 answers XML
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  return new ApiError(status, code ?? `HTTP_${status}`, `the store refused the upload${message ? `: ${message}` : ''}`);
}

async function download(url: string, out: string): Promise<number> {
  const response = await fetch(url);
  if (!response.ok || !response.body) throw storeRefusal(response.status, await response.text());
  await pipeline(Readable.fromWeb(response.body), createWriteStream(out));
  return (await stat(out)).size;
}

async function allPages<T>(
  page: (cursor: string | null) => Promise<{
    data?: { items: T[]; next_cursor: string | null };
    error?: unknown;
    response: Response;
  }>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const result: { items: T[]; next_cursor: string | null } = unwrap(await page(cursor));
    items.push(...result.items);
    cursor = result.next_cursor;
  } while (cursor);
  return items;
}

/** One character per value 0–255, from ▁ to █. */
export function sparkline(values: readonly number[]): string {
  return values.map((value) => '▁▂▃▄▅▆▇█'[Math.min(7, Math.floor(value / 32))]).join('');
}

/**
 * Notes sync from a terminal (docs/sync.md): `notes edit` sends the version it edited from, so that an
 * edit racing another one is merged by the server (or refused as a conflict); `notes history` lists the
 * kept versions; `sync` prints what changed since the cursor it keeps in a file.
 */
function addSyncCommands(program: Command, notes: Command, client: () => AdvancedNotesClient): void {
  notes
    .command('edit')
    .description("change a note's title or body; edits made since (on another device) are merged, overlaps refused")
    .argument('<note-id>')
    .option('--title <title>')
    .option('--body <body>')
    .option('--base-version <n>', 'the version you edited from (default: the version now)', (value) => Number(value))
    .option('--json', 'print the note as JSON')
    .action(async (noteId: string, options: JsonOption & { title?: string; body?: string; baseVersion?: number }) => {
      const api = client();
      const path = { note_id: noteId };
      const baseVersion =
        options.baseVersion ?? unwrap(await api.GET('/api/notes/{note_id}', { params: { path } })).version;
      const note = unwrap(
        await api.PATCH('/api/notes/{note_id}', {
          params: { path },
          body: {
            base_version: baseVersion,
            ...(options.title === undefined ? {} : { title: options.title }),
            ...(options.body === undefined ? {} : { body: options.body }),
          },
        }),
      );
      if (options.json) return printJson(note);
      console.log(`version ${note.version}${note.merged ? ' (merged with the changes since your version)' : ''}`);
    });
  notes
    .command('history')
    .description("list a note's kept versions, newest first")
    .argument('<note-id>')
    .option('--json', 'print the versions as a JSON array')
    .action(async (noteId: string, options: JsonOption) => {
      const api = client();
      const all = await allPages((cursor) =>
        api.GET('/api/notes/{note_id}/revisions', {
          params: { path: { note_id: noteId }, query: { limit: 100, ...(cursor ? { cursor } : {}) } },
        }),
      );
      if (options.json) return printJson(all);
      for (const revision of all) console.log(`${revision.version}  ${revision.created_at}  ${revision.title}`);
    });
  program
    .command('sync')
    .description('print what changed since the last sync (all of it the first time), keeping the cursor in a file')
    .option('--cursor-file <file>', 'where the cursor is kept', '.advanced-notes-sync-cursor')
    .option('--json', 'print the changes as a JSON array')
    .action(async (options: JsonOption & { cursorFile: string }) => {
      const api = client();
      let cursor = (await readFile(options.cursorFile, 'utf8').catch(() => '')).trim() || undefined;
      const changes = [];
      for (;;) {
        const result = await api.GET('/api/sync/changes', {
          params: { query: { limit: 100, ...(cursor === undefined ? {} : { cursor }) } },
        });
        // Too old (or the account's sync state was reset): start again from the beginning.
        if (result.response.status === 410 && cursor !== undefined) {
          process.stderr.write('advanced-notes: the saved cursor has expired; syncing everything again\n');
          await rm(options.cursorFile, { force: true });
          cursor = undefined;
          changes.length = 0;
          continue;
        }
        const page = unwrap(result);
        changes.push(...page.changes);
        cursor = page.next_cursor;
        // Kept after every page: an interrupted sync resumes where it stopped.
        await writeFile(options.cursorFile, `${cursor}\n`);
        if (!page.has_more) break;
      }
      if (options.json) return printJson(changes);
      for (const change of changes) {
        const what = change.deleted
          ? `deleted ${change.deleted_at}`
          : change.note
            ? `v${change.note.version}  ${change.note.title}`
            : `${change.audio_clip?.status ?? ''}  ${change.audio_clip?.mime_type ?? ''}`;
        console.log(`${change.type}  ${change.id}  ${what}`);
      }
    });
}

function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

function printFields(fields: [string, string][]): void {
  const width = Math.max(...fields.map(([name]) => name.length));
  for (const [name, value] of fields) console.log(`${name.padEnd(width)}  ${value}`);
}

/** One line on stderr, and the exit code: 1 for an answer of the API or the store, 2 for a usage error. */
function describeFailure(error: unknown): { line: string; exitCode: number } {
  if (error instanceof ApiError) return { line: `${error.code}: ${error.message}`, exitCode: 1 };
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (error instanceof TypeError && cause) {
    return { line: `cannot reach the API: ${cause.code ?? cause.message ?? error.message}`, exitCode: 1 };
  }
  const node = error as NodeJS.ErrnoException;
  if (node.code && node.syscall) return { line: `${node.code}: ${node.message}`, exitCode: 1 };
  return { line: error instanceof Error ? error.message : String(error), exitCode: 1 };
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander has printed its usage message (or the help) already.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const { line, exitCode } = describeFailure(error);
    process.stderr.write(`advanced-notes: ${line.replace(/\s+/g, ' ').trim()}\n`);
    return exitCode;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}

/** The first SEARCH_RESULTS matches of a search, best first. */
const SEARCH_RESULTS = 50;

async function searchNotes(api: AdvancedNotesClient, q: string) {
  return unwrap(await api.GET('/api/notes', { params: { query: { q, limit: SEARCH_RESULTS } } })).items;
}
