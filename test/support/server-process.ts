import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');
/** Inside the checkout (and ignored by git), so the compiled code finds node_modules as dist/ does. */
const OUT_DIR = join(ROOT, '.test-tmp', 'dist');
const LOCK_DIR = join(ROOT, '.test-tmp', 'dist.lock');
const STAMP = join(ROOT, '.test-tmp', 'dist.run');

/**
 * The server compiled exactly as `npm run build` compiles it (tsconfig.build.json), once per test run,
 * so tests can start `node main.js` as production does. Returns the compiled tree's root.
 */
export async function builtServer(): Promise<string> {
  // The harness's scratch folder is new for every run: a stamp with another one means a stale build.
  const run = process.env.TEST_SQLITE_DIR ?? 'no-harness';
  await mkdir(join(ROOT, '.test-tmp'), { recursive: true });
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    const built = existsSync(STAMP) ? await readFile(STAMP, 'utf8') : '';
    if (built !== run) {
      await rm(OUT_DIR, { recursive: true, force: true });
      await promisify(execFile)(
        process.execPath,
        [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', OUT_DIR],
        { cwd: ROOT },
      );
      await writeFile(STAMP, run);
    }
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
  return OUT_DIR;
}

export interface ServerRun {
  code: number | null;
  /** stdout and stderr together, in order. */
  output: string;
  seconds: number;
}

/**
 * Runs a compiled entry point (`main.js` by default) with exactly `env` (plus PATH, and METRICS_PORT=0) in `cwd`, until it
 * exits or `until` matches its output (then it is stopped), or `timeoutMs` passes (then it is killed).
 */
export async function runServer(options: {
  env: Record<string, string>;
  cwd: string;
  args?: string[];
  entry?: string;
  until?: RegExp;
  timeoutMs?: number;
}): Promise<ServerRun> {
  const dist = await builtServer();
  const started = performance.now();
  const child = spawn(process.execPath, [join(dist, options.entry ?? 'main.js'), ...(options.args ?? [])], {
    cwd: options.cwd,
    // No metrics port unless a test asks for one: several servers at once would fight over the default.
    env: { PATH: process.env.PATH ?? '', METRICS_PORT: '0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise<ServerRun>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (options.until?.test(output)) child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (performance.now() - started) / 1000 });
    });
  });
}
