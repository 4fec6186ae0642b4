/**
 * `advanced-notes me`, `export` and `account delete`: what you use, all your data as one zip, and the
 * deletion of your account. Registered on the program by `registerYourDataCommands`.
 */
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { ApiError, unwrap, type AdvancedNotesClient } from './index';

/** How often `export` asks whether the archive is ready. */
const POLL_MS = 1_000;

export function registerYourDataCommands(program: Command, client: () => AdvancedNotesClient): void {
  program
    .command('me')
    .description('your usage against your storage quota and upload limits')
    .option('--json', 'print GET /api/me as JSON')
    .action(async (options: { json?: boolean }) => {
      const me = unwrap(await client().GET('/api/me'));
      if (options.json) return console.log(JSON.stringify(me, null, 2));
      const quota =
        me.quota_bytes === null
          ? `${me.used_bytes} bytes (no quota)`
          : `${me.used_bytes} of ${me.quota_bytes} bytes (${((100 * me.used_bytes) / me.quota_bytes).toFixed(1)} %)`;
      const rows: [string, string][] = [
        ['user', me.user_id],
        ['notes', String(me.notes)],
        ['recordings', String(me.audio_clips)],
        ['storage', quota],
        [
          'pending',
          `${me.pending_uploads} of ${me.max_pending_uploads} uploads, ${me.pending_bytes} of ${me.max_pending_upload_bytes} bytes`,
        ],
      ];
      if (me.dead_uploads > 0)
        rows.push(['dead URLs', `${me.dead_uploads} upload URLs of deleted recordings, ${me.dead_upload_bytes} bytes`]);
      const width = Math.max(...rows.map(([name]) => name.length));
      for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
    });

  program
    .command('export')
    .description('download all your notes and recordings as one zip (progress on stderr while it is built)')
    .requiredOption('--out <file>', 'where to write the zip')
    .option('--json', 'print the export as JSON')
    .action(async (options: { out: string; json?: boolean }) => {
      const api = client();
      let exported = unwrap(await api.POST('/api/me/exports'));
      const started = Date.now();
      let said = '';
      while (exported.status === 'pending' || exported.status === 'running') {
        const line = `export ${exported.id}: ${exported.status}`;
        if (line !== said) process.stderr.write(`${line} (${Math.round((Date.now() - started) / 1000)} s)\n`);
        said = line;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        exported = unwrap(
          await api.GET('/api/me/exports/{export_id}', { params: { path: { export_id: exported.id } } }),
        );
      }
      if (exported.status !== 'ready' || !exported.url)
        throw new ApiError(500, 'EXPORT_FAILED', `export ${exported.id} is ${exported.status}; ask for a new one`);
      process.stderr.write(`export ${exported.id}: ready, downloading ${exported.bytes} bytes\n`);
      const response = await fetch(exported.url);
      if (!response.ok || !response.body)
        throw new ApiError(response.status, `HTTP_${response.status}`, 'the store refused the download');
      await pipeline(Readable.fromWeb(response.body), createWriteStream(options.out));
      const bytes = (await stat(options.out)).size;
      if (options.json) return console.log(JSON.stringify({ ...exported, file: options.out }, null, 2));
      console.log(`${options.out}: ${bytes} bytes`);
    });

  const account = program.command('account').description('your account');
  account
    .command('delete')
    .description('delete your account: every note, recording, upload and export (cannot be undone)')
    .option('--yes', 'really delete it')
    .option('--json', 'print the answer as JSON')
    .action(async (options: { yes?: boolean; json?: boolean }) => {
      if (!options.yes)
        program.error('account delete deletes everything for good: add --yes to confirm', { exitCode: 2 });
      const api = client();
      const { user_id: userId } = unwrap(await api.GET('/api/me'));
      const deleted = unwrap(
        await api.DELETE('/api/me', { params: { header: { 'Confirm-Delete': encodeURIComponent(userId) } } }),
      );
      if (options.json) return console.log(JSON.stringify(deleted, null, 2));
      console.log(
        `deleted account ${deleted.user_id}: ${deleted.scheduled_objects} stored objects scheduled for deletion`,
      );
    });
}
