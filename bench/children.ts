import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Starts one of bench/servers.ts's servers in a child process of its own; resolves with its base URL once it listens. */
export async function startServer(
  kind: 'app' | 'app-pair' | 'baseline' | 'pg-baseline' | 'obvious',
  env: Record<string, string>,
  children: ChildProcess[],
): Promise<string> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = fork(join(__dirname, 'servers.js'), [kind, String(port)], {
    env: { ...process.env, ...env },
    // BENCH_CPU_PROFILE_DIR=<dir>: the app writes a V8 CPU profile there when it stops (open it in Chrome's DevTools).
    execArgv:
      kind.startsWith('app') && process.env.BENCH_CPU_PROFILE_DIR
        ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE_DIR}`]
        : process.execArgv,
    // The app's JSON log goes nowhere (its lines are still written); errors still show on stderr.
    stdio: ['ignore', kind.startsWith('app') ? 'ignore' : 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return `http://127.0.0.1:${port}`;
}

/**
 * The app in a child process of its own, on `port`, for the memory benches: resolves once it listens, with
 * a function that asks it for its `process.memoryUsage()` (bench/servers.ts answers the 'memory' message).
 */
export async function startAppReportingMemory(
  port: number,
  env: Record<string, string>,
): Promise<{ server: ChildProcess; memory: () => Promise<NodeJS.MemoryUsage> }> {
  const server = fork(join(__dirname, 'servers.js'), ['app', String(port)], {
    env: { ...process.env, ...env },
    // The app's JSON log is not the bench's output.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => server.once('message', resolve));
  const memory = () =>
    new Promise<NodeJS.MemoryUsage>((resolve) => {
      server.once('message', (message) => resolve(message as NodeJS.MemoryUsage));
      server.send('memory');
    });
  return { server, memory };
}

/**
 * s3rver in a process of its own, so that the store and the client uploading to it never share an event
 * loop (in the bench's own process they did, and the upload ratios measured that loop, not the store).
 */
export async function startS3rverProcess(
  directory: string,
  bucket: string,
  children: ChildProcess[],
): Promise<{ port: number }> {
  const script = `
    const S3rver = require('@20minutes/s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[1], configureBuckets: [{ name: process.argv[2] }] })
      .run().then(({ port }) => process.stdout.write(port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', script, directory, bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return { port };
}

/**
 * The settings every benchmarked server runs with: the app as deployed, on `databaseUrl` and the S3
 * driver against s3rver on `s3Port`, with limits no load generator reaches and no janitor timer.
 */
export function benchEnv(databaseUrl: string, s3Port: number): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    STORAGE_DRIVER: 's3',
    S3_BUCKET: 'bench',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    S3_ENDPOINT_URL: `http://127.0.0.1:${s3Port}`,
    S3_KEY_PREFIX: 'bench',
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    RATE_LIMIT_PER_MINUTE: '1000000',
    UPLOAD_RATE_LIMIT_PER_MINUTE: '1000000',
    JANITOR_INTERVAL_SECONDS: '0',
    // The API is measured alone; bench/renditions.ts turns the rendition job on where it measures it.
    RENDITION_CONCURRENCY: '0',
    HOST: '127.0.0.1',
  };
}
