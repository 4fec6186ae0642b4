import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { issueToken } from '../src/auth/dev-token';
import { loadAppConfig } from '../src/config/app-config';
import { LegUnavailable } from '../test/harness/legs';
import { startRgw } from '../test/harness/rgw';
import type { Service } from '../test/harness/service';
import { wav } from '../test/support/audio';
import { benchEnv, startS3rverProcess, startServer } from './children';
import { fmt, fmtRatio, load, median, perRound, type Measurement } from './measure';
import { seed } from './seed';
import { printTable } from './table';

/**
 * `npm run bench` (second part): the production configuration, Postgres + S3, measured side by side
 * in one run. Playback and the primary clip against a node:http + `pg` + same-signer baseline; two app
 * processes (node's cluster module, this machine's two cores) against one; and a 100 MiB upload in
 * parts through the API against one raw PUT of the same bytes to the same store.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
const OWNER = 'bench-user';
const MIB = 1024 * 1024;
const UPLOAD_BYTES = 100 * MIB;
const PART_CONCURRENCY = 4;
/** A Postgres the bench may CREATE DATABASE on (this machine's, by default). */
const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-prod-'));
  const children: ChildProcess[] = [];
  const { port: s3Port } = await startS3rverProcess(join(dir, 's3'), 'bench', children);
  const database = `bench_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${database}`));
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.pathname = `/${database}`;
  const env = benchEnv(databaseUrl.toString(), s3Port);
  try {
    const { noteIds, clipIds } = await seed(env, OWNER, 100, 1000);
    const token = await issueToken(loadAppConfig(env).auth, OWNER);
    const auth = { authorization: `Bearer ${token}` };
    const servers = { baseline: await startServer('pg-baseline', env, children), app: '', pair: '' };
    servers.app = await startServer('app', env, children);
    const appPid = children.at(-1)!.pid!;
    servers.pair = await startServer('app-pair', env, children);
    const pairPid = children.at(-1)!.pid!;
    const pick = (ids: string[]) => ids[Math.floor(Math.random() * ids.length)];
    const endpoints = [
      { name: 'playback', path: () => `/api/audio-clips/${pick(clipIds)}/playback` },
      { name: 'primary clip', path: () => `/api/notes/${pick(noteIds)}/audio` },
    ];
    console.log(
      `\nPostgres + S3 (s3rver): autocannon, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per server and endpoint ` +
        '(order rotated each round, 1 s warm-up first), loopback, on the one shared machine. Ratios are medians of each round’s ratio, with their range.\n',
    );
    const rows: string[][] = [];
    const settings = { seconds: SECONDS, connections: CONNECTIONS, firstWarmup: 0 };
    const cpuSplits: ({ endpoint: string; rate: number; pairApp: number } & CpuPerRequest)[] = [];
    for (const endpoint of endpoints) {
      const accounts = {
        app: new CpuAccount((proc) => proc.pid === appPid, SECONDS),
        // The cluster's primary and its two workers.
        pair: new CpuAccount((proc) => proc.pid === pairPid || proc.ppid === pairPid, SECONDS),
        baseline: undefined,
      };
      const names = ['baseline', 'app', 'pair'] as const;
      const measured = new Map<(typeof names)[number], Measurement[]>(names.map((name) => [name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < names.length; k++) {
          const name = names[(k + round) % names.length];
          const measure = (seconds: number) =>
            load(servers[name], 'GET', endpoint.path, undefined, auth, false, undefined, { ...settings, seconds });
          if (round === 0) await measure(1); // warm-up (JIT, pools, caches), not counted
          const account = accounts[name];
          measured.get(name)!.push(await (account ? account.during(() => measure(SECONDS)) : measure(SECONDS)));
        }
      }
      const [baseline, app, pair] = names.map((name) => measured.get(name)!);
      cpuSplits.push({
        endpoint: endpoint.name,
        rate: median(app.map((m) => m.requestsPerSecond)),
        ...accounts.app.perRequest(),
        pairApp: accounts.pair.perRequest().app,
      });
      const vsBaseline = perRound(app, baseline);
      const scaling = perRound(pair, app);
      rows.push([endpoint.name, 'baseline (node:http + pg)', fmt(baseline), '1.00', '']);
      rows.push([
        endpoint.name,
        'app, one process',
        fmt(app),
        fmtRatio(vsBaseline),
        `≥ 0.5 ${vsBaseline.median >= 0.5 ? 'met' : 'MISSED'}`,
      ]);
      rows.push([
        endpoint.name,
        'app, two processes',
        fmt(pair),
        fmtRatio(perRound(pair, baseline)),
        `${scaling.median.toFixed(2)}x one process (${scaling.min.toFixed(2)}–${scaling.max.toFixed(2)}); ≥ 1.6x ${scaling.median >= 1.6 ? 'met' : 'MISSED'}`,
      ]);
    }
    printTable(['endpoint', 'server', 'req/s · p50 · p99', 'vs baseline', 'target'], rows);
    console.log(
      '\nWhere the CPU goes in the one-process runs (µs of CPU per request, user + system, from /proc; the app process counts its GC and I/O threads), ' +
        'and what that leaves for a second process: this machine has 2 cores, shared by the app, Postgres and the load generator, ' +
        'so no number of app processes can serve more than 2 s of CPU / (CPU per request) requests a second. ' +
        'The last column is the app CPU per request of the two-process runs (both workers and the primary): ' +
        'the same as one process means the two do not slow each other down, only the cores run out.\n',
    );
    printTable(
      [
        'endpoint',
        'app',
        'Postgres',
        'load generator',
        'cores busy at one process',
        'two processes at most',
        'app, two processes',
      ],
      cpuSplits.map((split) => {
        const perRequest = split.app + split.postgres + split.generator;
        const busy = (split.rate * perRequest) / 1e6;
        return [
          split.endpoint,
          split.app.toFixed(0),
          split.postgres.toFixed(0),
          split.generator.toFixed(0),
          `${busy.toFixed(2)} of 2`,
          `${Math.min(2, 2 / busy).toFixed(2)}x one process`,
          split.pairApp.toFixed(0),
        ];
      }),
    );

    const upload = await measureUploads(servers.app, auth, env, false);
    printUploadTable('100 MiB upload to s3rver', upload, 'parts');
    console.log(
      's3rver answers ListParts with 405, so `complete` of a multipart clip cannot run against it: the parts are timed up to the last part stored.',
    );

    // The same on a production S3 implementation, complete included, when Ceph's packages are installed.
    let rgw: Service | undefined;
    try {
      rgw = await startRgw(join(dir, 'rgw'));
    } catch (error) {
      if (!(error instanceof LegUnavailable)) throw error;
      console.log(`\n!!! The upload on Ceph RGW was NOT measured: ${error.message}`);
    }
    if (rgw) {
      try {
        const rgwEnv = {
          ...env,
          S3_ENDPOINT_URL: rgw.env.TEST_RGW_S3_ENDPOINT_URL,
          S3_BUCKET: rgw.env.TEST_RGW_S3_BUCKET,
          AWS_REGION: rgw.env.TEST_RGW_AWS_REGION,
          AWS_ACCESS_KEY_ID: rgw.env.TEST_RGW_AWS_ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: rgw.env.TEST_RGW_AWS_SECRET_ACCESS_KEY,
        };
        const onRgw = await measureUploads(await startServer('app', rgwEnv, children), auth, rgwEnv, true);
        console.log('');
        printUploadTable('100 MiB upload to Ceph RGW (single node, in memory)', onRgw, 'parts, complete');
      } finally {
        await rgw.stop();
      }
    }
  } finally {
    // The servers go first, so that dropping their database does not make their pools complain.
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill();
          }),
      ),
    );
    await admin((client) => client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

interface UploadRates {
  raw: number;
  parts: number;
  ratio: { median: number; min: number; max: number };
}

function printUploadTable(title: string, upload: UploadRates, steps: string): void {
  printTable(
    [title, 'MiB/s (median of rounds)', 'vs raw PUT', 'target'],
    [
      ['raw PUT, one request (presigned PutObject)', upload.raw.toFixed(1), '1.00', ''],
      [
        `in parts through the API (${PART_CONCURRENCY} at a time): create, part URLs, ${steps}`,
        upload.parts.toFixed(1),
        fmtRatio(upload.ratio),
        `≥ 0.8 ${upload.ratio.median >= 0.8 ? 'met' : 'MISSED'}`,
      ],
    ],
  );
}

/**
 * Each round: one raw PUT of a 100 MiB recording (a WAV of noise), then the same bytes as a multipart
 * clip through the API, completed too when the store can list parts; MiB/s of each.
 */
async function measureUploads(
  appUrl: string,
  auth: Record<string, string>,
  env: Record<string, string>,
  complete: boolean,
): Promise<UploadRates> {
  const bytes = wav((UPLOAD_BYTES - 44) / 16000, { noise: true });
  const raw: Measurement[] = [];
  const parts: Measurement[] = [];
  const json = { ...auth, 'content-type': 'application/json' };
  const asMeasurement = (ms: number): Measurement => ({
    requestsPerSecond: UPLOAD_BYTES / MIB / (ms / 1000),
    p50: 0,
    p99: 0,
    errors: 0,
  });
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
  const s3 = new S3Client({
    endpoint: env.S3_ENDPOINT_URL,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  try {
    // Round -1 warms up and is not counted: RGW makes the pool for multipart uploads' metadata on the first one.
    for (let round = -1; round < ROUNDS; round++) {
      const rawUrl = await getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: env.S3_BUCKET, Key: `bench/raw/${round}.wav`, ContentType: 'audio/wav' }),
        { expiresIn: 900 },
      );
      let started = performance.now();
      const put = await fetch(rawUrl, { method: 'PUT', body: bytes, headers: { 'content-type': 'audio/wav' } });
      if (!put.ok) throw new Error(`raw PUT: ${put.status}`);
      if (round >= 0) raw.push(asMeasurement(performance.now() - started));

      started = performance.now();
      const created = (await (
        await fetch(`${appUrl}/api/audio-clips`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ mime_type: 'audio/wav', bytes: UPLOAD_BYTES, duration_ms: 3_600_000 }),
        })
      ).json()) as { clip: { id: string }; upload: { part_size: number; part_count: number } };
      const { part_size: partSize, part_count: partCount } = created.upload;
      const signed = (await (
        await fetch(`${appUrl}/api/audio-clips/${created.clip.id}/parts`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ part_numbers: Array.from({ length: partCount }, (_, i) => i + 1) }),
        })
      ).json()) as { parts: { part_number: number; url: string; headers: Record<string, string> }[] };
      const queue = [...signed.parts];
      await Promise.all(
        Array.from({ length: PART_CONCURRENCY }, async () => {
          for (let part = queue.shift(); part; part = queue.shift()) {
            const body = bytes.subarray((part.part_number - 1) * partSize, part.part_number * partSize);
            const response = await fetch(part.url, { method: 'PUT', body, headers: part.headers });
            if (!response.ok) throw new Error(`part ${part.part_number}: ${response.status}`);
            await response.arrayBuffer();
          }
        }),
      );
      if (complete) {
        const completed = await fetch(`${appUrl}/api/audio-clips/${created.clip.id}/complete`, {
          method: 'POST',
          headers: auth,
        });
        const body = (await completed.json()) as { status?: string; bytes?: number };
        if (body.status !== 'ready' || body.bytes !== UPLOAD_BYTES)
          throw new Error(`complete: ${completed.status} ${JSON.stringify(body)}`);
      }
      if (round >= 0) parts.push(asMeasurement(performance.now() - started));
    }
  } finally {
    s3.destroy();
  }
  return {
    raw: median(raw.map((m) => m.requestsPerSecond)),
    parts: median(parts.map((m) => m.requestsPerSecond)),
    ratio: perRound(parts, raw),
  };
}

interface CpuPerRequest {
  app: number;
  postgres: number;
  generator: number;
}

/**
 * CPU time (user + system, from /proc: Linux only) that the app process, every Postgres process and this
 * process (autocannon, the load generator) spend during measured runs, per request served.
 */
class CpuAccount {
  private readonly ticksPerSecond = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;
  private readonly spent = { app: 0, postgres: 0, generator: 0 };
  private requests = 0;

  constructor(
    private readonly isApp: (proc: ProcessCpu) => boolean,
    private readonly seconds: number,
  ) {}

  async during(run: () => Promise<Measurement>): Promise<Measurement> {
    const before = this.read();
    const measured = await run();
    const after = this.read();
    // Per process: one that started meanwhile counts from zero, one that ended meanwhile is lost (a
    // Postgres backend of an idle pool closing), never subtracted.
    const spent = (kind: keyof CpuPerRequest) => {
      let sum = 0;
      for (const [pid, ticks] of after[kind]) sum += ticks - (before[kind].get(pid) ?? 0);
      return sum;
    };
    this.spent.app += spent('app');
    this.spent.postgres += spent('postgres');
    this.spent.generator += spent('generator');
    this.requests += measured.requestsPerSecond * this.seconds;
    return measured;
  }

  perRequest(): CpuPerRequest {
    const micros = (ticks: number) => (ticks / this.ticksPerSecond / Math.max(1, this.requests)) * 1e6;
    return {
      app: micros(this.spent.app),
      postgres: micros(this.spent.postgres),
      generator: micros(this.spent.generator),
    };
  }

  private read(): Record<keyof CpuPerRequest, Map<number, number>> {
    const read = {
      app: new Map<number, number>(),
      postgres: new Map<number, number>(),
      generator: new Map<number, number>(),
    };
    for (const proc of processes()) {
      if (this.isApp(proc)) read.app.set(proc.pid, proc.ticks);
      else if (proc.comm === 'postgres') read.postgres.set(proc.pid, proc.ticks);
      else if (proc.pid === process.pid) read.generator.set(proc.pid, proc.ticks);
    }
    return read;
  }
}

interface ProcessCpu {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, in clock ticks. */
  ticks: number;
}

/** Every process on the machine, from one read of each `/proc/<pid>/stat`. */
function processes(): ProcessCpu[] {
  const found: ProcessCpu[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      found.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(') ')),
        ticks: Number(fields[11]) + Number(fields[12]),
      });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function admin(run: (client: Client) => Promise<unknown>): Promise<void> {
  const client = new Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await run(client);
  } finally {
    await client.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
