import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './free-port';
import { LegUnavailable } from './legs';
import type { Service } from './service';

export const RGW_LEG = 'rgw';
/** From test/harness, and from the benchmarks' compiled copy (dist-bench/test/harness) alike. */
const SCRIPT = join(projectRoot(__dirname), 'scripts', 'rgw.sh');
const BUCKET = 'advanced-notes-test';
const REGION = 'us-east-1';
const PACKAGES = 'ceph-mon ceph-osd radosgw ceph-common';
const TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool', 'ceph-authtool'];
/** ~12 s on an idle machine; generous for a loaded one. */
const START_TIMEOUT_MS = 150_000;
const STOP_WAIT_MS = 10_000;

/**
 * A single-node Ceph cluster in memory with its RADOS Gateway on a free loopback port
 * (scripts/rgw.sh), an S3 user, and the test bucket made through the S3 API. Throws LegUnavailable
 * when Ceph's packages are not installed.
 */
export async function startRgw(directory: string): Promise<Service> {
  const missing = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) {
    throw new LegUnavailable(
      `Ceph's RADOS Gateway is not installed (no ${missing.join(', ')}). ` +
        `Install it with: apt-get install --no-install-recommends ${PACKAGES}`,
    );
  }
  const [port, monPort] = await distinctFreePorts(2);
  const accessKeyId = `E2E${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const startedAt = performance.now();
  // Its own process group, so stopping it reaches every daemon; it also exits by itself once this
  // process is gone (the last argument), should teardown never run.
  const child = spawn(
    'bash',
    [SCRIPT, directory, String(port), String(monPort), accessKeyId, secretAccessKey, String(process.pid)],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const killOnExit = (): void => killGroup(child, 'SIGKILL');
  process.on('exit', killOnExit);
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    await stopGroup(child);
  };

  let scriptSeconds: string;
  try {
    scriptSeconds = await waitForReady(child);
  } catch (error) {
    await stop();
    throw new Error(`e2e harness: RGW did not start (${SCRIPT}, logs in ${directory}/log): ${String(error)}`, {
      cause: error,
    });
  }
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await createBucket(endpoint, accessKeyId, secretAccessKey);
  } catch (error) {
    await stop();
    throw new Error(`e2e harness: RGW started but the bucket could not be made: ${String(error)}`, { cause: error });
  }
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  return {
    description: `RGW at ${endpoint}, bucket ${BUCKET} (up in ${seconds} s, ${scriptSeconds} s of it the cluster)`,
    env: {
      TEST_RGW_S3_ENDPOINT_URL: endpoint,
      TEST_RGW_S3_BUCKET: BUCKET,
      TEST_RGW_AWS_REGION: REGION,
      TEST_RGW_AWS_ACCESS_KEY_ID: accessKeyId,
      TEST_RGW_AWS_SECRET_ACCESS_KEY: secretAccessKey,
      // For specs that start a gateway of their own on the same cluster (the outage suite).
      TEST_RGW_CEPH_CONF: join(directory, 'ceph.conf'),
      TEST_RGW_START_SECONDS: seconds,
    },
    stop,
  };
}

function projectRoot(from: string): string {
  for (let directory = from; ; directory = dirname(directory)) {
    if (existsSync(join(directory, 'package.json'))) return directory;
    if (dirname(directory) === directory) throw new Error(`no package.json above ${from}`);
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Resolves with the seconds the script reports once it prints RGW READY; rejects if it exits first. */
function waitForReady(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => finish(new Error(`not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const finish = (error?: Error, seconds?: string): void => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (error) reject(new Error(`${error.message}${stderr ? `\n${stderr.trim()}` : ''}`));
      else resolve(seconds!);
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`scripts/rgw.sh exited (${signal ?? `code ${code}`})`));
    child.on('exit', onExit);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const ready = /RGW READY ([\d.]+)/.exec(stdout);
      if (ready) finish(undefined, ready[1]);
    });
  });
}

async function createBucket(endpoint: string, accessKeyId: string, secretAccessKey: string): Promise<void> {
  const client = new S3Client({
    region: REGION,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } finally {
    client.destroy();
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the script's group (it stops its daemons), SIGKILL to what is left after a while. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(child, 'SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }
  // The daemons are in the group too; whatever outlived the script goes now.
  killGroup(child, 'SIGKILL');
  for (const deadline = Date.now() + STOP_WAIT_MS; groupAlive(child.pid) && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A gateway a spec runs itself: stopped and started again to play a store outage. */
export interface OwnGateway {
  readonly endpoint: string;
  readonly start: () => Promise<void>;
  /** Kills the gateway at once, as a crash or a network cut looks to the app. */
  readonly stop: () => Promise<void>;
}

/**
 * Another radosgw on the harness's cluster (same user, same bucket), on a port of its own, which the
 * spec may stop and start again. It dies with the test worker (parent-death signal), should the spec
 * never stop it.
 */
export async function ownGateway(name: string): Promise<OwnGateway> {
  const conf = process.env.TEST_RGW_CEPH_CONF;
  if (!conf) throw new Error('TEST_RGW_CEPH_CONF is not set: the RGW leg did not run in global setup.');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = '';
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await exited;
  };
  const start = async (): Promise<void> => {
    if (child) return;
    output = '';
    child = spawn(
      'setpriv',
      [
        '--pdeathsig',
        'KILL',
        '--',
        'radosgw',
        '-c',
        conf,
        '-n',
        `client.${name}`,
        '-f',
        '--rgw-frontends',
        `beast endpoint=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const started = child;
    started.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-2000)));
    started.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-2000)));
    for (const deadline = Date.now() + 60_000; ;) {
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`radosgw (client.${name}) exited during start-up: ${output.trim()}`);
      }
      try {
        await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
        return;
      } catch {
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`radosgw (client.${name}) did not answer on ${endpoint} within 60 s: ${output.trim()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  return { endpoint, start, stop };
}
