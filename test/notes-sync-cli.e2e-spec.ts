import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from './support/test-app';

const BIN = join(__dirname, '..', 'client', 'bin', 'advanced-notes.js');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const { NODE_OPTIONS: _jestOnly, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...inherited, ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | undefined) ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the CLI’s notes sync commands', () => {
  let testApp: TestApp;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    env = { ADVANCED_NOTES_URL: testApp.baseUrl, ADVANCED_NOTES_TOKEN: await testApp.tokenFor('cli-sync') };
    dir = await mkdtemp(join(tmpdir(), 'an-cli-sync-'));
    // The first run compiles client/ when its build is missing or stale.
    expect((await cli(['--help'], env)).code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await testApp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('edits with the version it read, merges an edit from an older version, shows the history, and syncs from a kept cursor', async () => {
    const id = (await cli(['notes', 'create', '--title', 'plan', '--body', 'one\ntwo\nthree\n'], env)).stdout.trim();
    expect((await cli(['notes', 'edit', id, '--body', 'ONE\ntwo\nthree\n'], env)).stdout).toBe('version 2\n');
    const merged = await cli(
      ['notes', 'edit', id, '--base-version', '1', '--body', 'one\ntwo\nTHREE\n', '--json'],
      env,
    );
    expect(JSON.parse(merged.stdout)).toMatchObject({ version: 3, merged: true, body: 'ONE\ntwo\nTHREE\n' });
    const conflict = await cli(['notes', 'edit', id, '--base-version', '1', '--body', 'uno\ntwo\nthree\n'], env);
    expect(conflict.stdout).toBe('');
    expect(conflict.stderr).toMatch(/^advanced-notes: NOTE_EDIT_CONFLICT: /);
    expect(conflict.code).toBe(1);
    const history = await cli(['notes', 'history', id], env);
    expect(
      history.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('  ')[0]),
    ).toEqual(['3', '2', '1']);

    const cursorFile = join(dir, 'cursor');
    const first = await cli(['sync', '--cursor-file', cursorFile], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`note  ${id}  v3  plan\n`);
    expect((await readFile(cursorFile, 'utf8')).trim()).not.toBe('');
    expect((await cli(['sync', '--cursor-file', cursorFile], env)).stdout).toBe('');
    expect((await cli(['notes', 'edit', id, '--title', 'plan B'], env)).code).toBe(0);
    const second = await cli(['sync', '--cursor-file', cursorFile, '--json'], env);
    expect(JSON.parse(second.stdout)).toEqual([expect.objectContaining({ id, version: 4, deleted: false })]);
  });
});
