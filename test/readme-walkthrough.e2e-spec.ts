/**
 * What a newcomer meets: the README's copy-paste session, run verbatim against the server as `npm start`
 * runs it (the built app in its own process, on the development defaults), from a folder outside the
 * checkout; and `npm run sweep`'s two outputs. Needs bash, curl and jq (`.ci/run` installs them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './harness/free-port';

const ROOT = join(__dirname, '..');
const TOOLS = ['bash', 'curl', 'jq'];
const missingTools = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);

/** The first ```sh block after `<!-- walkthrough: name -->` in README.md. */
function walkthroughBlock(name: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = `<!-- walkthrough: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error(`README.md has no sh block after ${marker}`);
  return block[1];
}

/** Only what a fresh shell has: nothing of the harness's S3 or database settings leaks into the server. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), LANG: 'C.UTF-8', ...extra };
}

function gitStatus(): string {
  return spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ROOT, encoding: 'utf8' }).stdout;
}

if (missingTools.length > 0 && process.env.CI !== 'true') {
  // Loud, never silent: the run says which leg did not run and why.
  console.warn(
    `\n*** README walkthrough test NOT RUN: ${missingTools.join(', ')} not installed. ` +
      `Install them (Debian/Ubuntu: sudo apt-get install ${missingTools.join(' ')}); .ci/run does. ***\n`,
  );
}
const describeWithTools = missingTools.length > 0 && process.env.CI !== 'true' ? describe.skip : describe;

describe('the machine has what the README walkthrough needs', () => {
  it(`has ${TOOLS.join(', ')} (mandatory under CI=true)`, () => {
    if (process.env.CI === 'true') expect(missingTools).toEqual([]);
  });
});

describeWithTools('the README walkthrough, run verbatim against a started server', () => {
  let scratch: string;
  let server: ChildProcess | undefined;
  let serverOutput = '';
  let env: Record<string, string>;
  let api: string;
  let token: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'an-walkthrough-'));
    const port = await freePort();
    env = cleanEnv({
      // The development defaults, with their files in the scratch folder instead of ./data.
      DATABASE_URL: `sqlite:${join(scratch, 'data', 'advanced-notes.sqlite')}`,
      LOCAL_STORAGE_DIR: join(scratch, 'data', 'objects'),
      AUTH_DEV_SECRET_FILE: join(scratch, 'data', 'dev-auth.secret'),
      PORT: String(port),
      HOST: '127.0.0.1',
    });
    api = `http://127.0.0.1:${port}/api`;

    // The token step, in the checkout as the README says (it also builds dist/, which the server runs).
    const tokenStep = spawnSync('bash', ['-c', `${walkthroughBlock('token')}\nprintf '%s' "$TOKEN"`], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 240_000,
    });
    if (tokenStep.status !== 0) throw new Error(`the token step failed: ${tokenStep.stderr}`);
    token = tokenStep.stdout.trim();

    server = spawn(process.execPath, ['dist/main.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    server.stderr!.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await fetch(`${api}/health`).then(
        (response) => response.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline || server.exitCode !== null)
        throw new Error(`the server did not start:\n${serverOutput}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 300_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** Runs the session block from a folder outside the checkout; its `mktemp -d` lands under `tmp`. */
  async function runSession(sessionEnv: Record<string, string>) {
    const cwd = await mkdtemp(join(scratch, 'cwd-'));
    const tmp = await mkdtemp(join(scratch, 'tmp-'));
    const run = spawnSync('bash', ['-c', walkthroughBlock('session')], {
      cwd,
      env: cleanEnv({ TMPDIR: tmp, ...sessionEnv }),
      encoding: 'utf8',
      timeout: 120_000,
    });
    const folders = await readdir(tmp);
    const files = folders.length === 1 ? (await readdir(join(tmp, folders[0]))).sort() : [];
    return { ...run, cwdFiles: await readdir(cwd), folders, files, folder: folders[0] && join(tmp, folders[0]) };
  }

  it('creates, uploads, completes and plays back a real recording, saving it to a file outside the checkout', async () => {
    const before = gitStatus();
    const run = await runSession({ TOKEN: token, API: api });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toContain('upload: HTTP 200');
    expect(run.stdout).toMatch(/"status": "ready",\s+"duration_ms": 1000,\s+"duration_source": "measured"/);
    expect(run.stdout).toContain(`Played back byte for byte: ${join(run.folder, 'played.wav')}`);
    // No binary on the terminal: the audio went to a file.
    expect(run.stdout).not.toContain('RIFF');

    expect(run.files).toEqual(['created.json', 'playback.json', 'played.wav', 'recording.wav']);
    const played = await readFile(join(run.folder, 'played.wav'));
    expect(played.subarray(0, 4).toString()).toBe('RIFF');
    expect(played.equals(await readFile(join(run.folder, 'recording.wav')))).toBe(true);
    // Nothing in the folder it ran from, nothing in the checkout.
    expect(run.cwdFiles).toEqual([]);
    expect(gitStatus()).toBe(before);
  });

  it.each([
    ['a token the server refuses', () => ({ TOKEN: 'not-a-token', API: api }), /401/],
    ['a server that is not there', () => ({ TOKEN: token, API: 'http://127.0.0.1:9/api' }), /Failed to connect/],
  ])('stops at the first failing call with %s, showing why', async (_name, sessionEnv, why) => {
    const run = await runSession(sessionEnv());
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(why);
    // Only the recording was written: the note call failed, and nothing after it ran.
    expect(run.files).toEqual(['recording.wav']);
    expect(run.stdout).toBe('');
  });

  describe('npm run sweep', () => {
    const sweep = (args: string[]) =>
      spawnSync(process.execPath, ['dist/audio-clips/sweep.cli.js', ...args], { cwd: ROOT, env, encoding: 'utf8' });

    it('prints a report a person can read', () => {
      const run = sweep([]);
      expect(run.status).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines[0]).toBe('Janitor pass done:');
      expect(lines.slice(1).map((line) => line.replace(/\d+/, 'N'))).toEqual([
        expect.stringMatching(/^ {2}N uploads? the phone never completed, completed by the server$/),
        expect.stringMatching(/^ {2}N uploads? never completed failed \(/),
        expect.stringMatching(/^ {2}N pending clips? expired \(/),
        expect.stringMatching(/^ {2}N stored objects? deleted$/),
        expect.stringMatching(/^ {2}N deletions? failed \(/),
        expect.stringMatching(/^ {2}N deletions? still scheduled: /),
        expect.stringMatching(/^ {2}N deletions? older than SYNC_TOMBSTONE_TTL_SECONDS forgotten by the change feed$/),
      ]);
    });

    it('prints the report as JSON with --json, and refuses an unknown argument', () => {
      const run = sweep(['--json']);
      expect(run.status).toBe(0);
      const report = JSON.parse(run.stdout);
      expect(report).toEqual({
        completedClips: expect.any(Number),
        failedClips: expect.any(Number),
        expiredClips: expect.any(Number),
        deletedObjects: expect.any(Number),
        failedDeletions: expect.any(Number),
        remainingDeletions: expect.any(Number),
        purgedTombstones: expect.any(Number),
      });
      // The walkthrough's upload key stays scheduled until its URL has run out.
      expect(report.remainingDeletions).toBeGreaterThan(0);

      const wrong = sweep(['--jsno']);
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toContain('Usage: npm run sweep [-- --json]');
    });
  });
});
