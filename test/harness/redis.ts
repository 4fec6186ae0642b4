import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { freePort } from './free-port';
import { LegUnavailable } from './legs';
import type { Service } from './service';

export const REDIS_LEG = 'redis';
const START_TIMEOUT_MS = 15_000;

/** A redis-server process this run started, on a loopback port, keeping nothing on disk. */
export interface RedisProcess {
  readonly url: string;
  readonly port: number;
  /** SIGKILL, as a crash or a lost network would (the tests of an outage use it). */
  kill(): Promise<void>;
}

/** The redis-server binary on PATH (Debian's `redis-server` package), or undefined. */
export function redisServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'redis-server');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : undefined;
}

/** The server named by TEST_REDIS_URL if set, otherwise a redis-server of this run's own. */
export async function startRedis(): Promise<Service> {
  const external = process.env.TEST_REDIS_URL?.trim();
  if (external) {
    await waitForPort(new URL(external).hostname, Number(new URL(external).port || 6379), 5_000).catch((error) => {
      throw new Error(`e2e harness: TEST_REDIS_URL (${external}) is not reachable: ${String(error)}`);
    });
    return {
      description: `Redis at ${external} (TEST_REDIS_URL)`,
      env: { TEST_REDIS_URL: external },
      stop: async () => {},
    };
  }
  const server = await startRedisServer();
  return {
    description: `redis-server at ${server.url}`,
    env: { TEST_REDIS_URL: server.url },
    stop: () => server.kill(),
  };
}

/** Starts redis-server on a free loopback port (or the given one, to restart a killed server in place). */
export async function startRedisServer(port?: number): Promise<RedisProcess> {
  const binary = redisServerBinary();
  if (!binary) {
    throw new LegUnavailable(
      'redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it), and TEST_REDIS_URL is not set',
    );
  }
  const chosen = port ?? (await freePort());
  const child = spawn(
    binary,
    [
      ...['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      ...['--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) during start-up: ${stderr}`))),
  );
  try {
    await Promise.race([waitForPort('127.0.0.1', chosen, START_TIMEOUT_MS), exited]);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`e2e harness: redis-server could not start on port ${chosen}: ${String(error)}`, { cause: error });
  }
  exited.catch(() => {}); // the exit after kill() is expected
  return { url: `redis://127.0.0.1:${chosen}`, port: chosen, kill: () => killChild(child) };
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.end('PING\r\n');
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
