/**
 * The client as a package of its own: `npm pack` of the workspace, the tarball installed into an empty
 * folder with the machine's own Node and npm (not the project's Node 24), and its `advanced-notes --help`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const ROOT = join(__dirname, '..');

/**
 * The first `node` on PATH outside any node_modules: what a user's shell runs (npm scripts put the
 * project's Node 24 first). The project's own when the machine has no other.
 */
function machineNodeDir(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir && !dir.includes('node_modules'));
  return dirs.find((dir) => existsSync(join(dir, 'node')) && existsSync(join(dir, 'npm'))) ?? '';
}

describe('the @advanced-notes/client package', () => {
  const nodeDir = machineNodeDir();
  // The machine's PATH without the project's bins, as in a terminal outside the checkout.
  const env = {
    ...Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(npm_|NODE_OPTIONS$|INIT_CWD$)/i.test(name)),
    ),
    PATH: [nodeDir, ...(process.env.PATH ?? '').split(delimiter).filter((dir) => !dir.includes('node_modules'))]
      .filter(Boolean)
      .join(delimiter),
  };
  let packed: string;
  let empty: string;

  beforeAll(async () => {
    packed = await mkdtemp(join(tmpdir(), 'an-pack-'));
    empty = await mkdtemp(join(tmpdir(), 'an-empty-'));
  });

  afterAll(async () => {
    await rm(packed, { recursive: true, force: true });
    await rm(empty, { recursive: true, force: true });
  });

  it('packs, installs into an empty folder and runs `advanced-notes --help` there without a warning', async () => {
    const version = execFileSync('node', ['--version'], { env, encoding: 'utf8' }).trim();
    const pack = spawnSync('npm', ['pack', '--workspace=@advanced-notes/client', '--pack-destination', packed], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect({ status: pack.status, stderr: pack.stderr }).toMatchObject({ status: 0 });
    const [tarball] = await readdir(packed);
    expect(tarball).toMatch(/^advanced-notes-client-.*\.tgz$/);

    const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', join(packed, tarball)], {
      cwd: empty,
      env,
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect({ status: install.status, version, stderr: install.stderr }).toMatchObject({ status: 0 });
    // No `npm warn EBADENGINE` (or any other warning) on this machine's Node.
    expect(`${install.stdout}${install.stderr}`).not.toMatch(/npm warn/i);
    const manifest = JSON.parse(
      await readFile(join(empty, 'node_modules', '@advanced-notes', 'client', 'package.json'), 'utf8'),
    );
    expect(Object.keys(manifest.bin)).toEqual(['advanced-notes']);

    const help = spawnSync(join(empty, 'node_modules', '.bin', 'advanced-notes'), ['--help'], {
      cwd: empty,
      env: { ...env, ADVANCED_NOTES_TOKEN: 'eyJ.a-secret-token.value' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ status: help.status, stderr: help.stderr }).toEqual({ status: 0, stderr: '' });
    expect(help.stdout).toContain('Usage: advanced-notes');
    // Where the token comes from, never the token.
    expect(help.stdout).toContain('env ADVANCED_NOTES_TOKEN');
    expect(help.stdout).not.toContain('a-secret-token');
  }, 400_000);

  it("runs as `npx advanced-notes` in the checkout, on the machine's npm, without a warning", () => {
    const run = spawnSync('npx', ['advanced-notes', '--help'], {
      cwd: ROOT,
      env: { ...env, ADVANCED_NOTES_TOKEN: 'eyJ.a-secret-token.value' },
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toContain('env ADVANCED_NOTES_TOKEN');
    expect(run.stdout).not.toContain('a-secret-token');
  }, 200_000);
});
