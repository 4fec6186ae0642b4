import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { Client } from 'pg';
import { createApp } from '../src/app.factory';
import { AudioClipJanitor } from '../src/audio-clips/audio-clip-janitor.service';
import { MIGRATION_LOCK_KEY, MIGRATIONS } from '../src/database/database.options';
import { createTestDatabase, testS3Env, type TestDatabase } from './harness/databases';
import { freePort } from './harness/free-port';
import { describeIfLeg } from './harness/legs';
import { withAdmin } from './harness/pg-admin';
import { REDIS_LEG } from './harness/redis';
import { wav } from './support/audio';
import { download, Phone, putBytes, type ApiResponse } from './support/phone';
import { report } from './support/report';

const INSTANCES = 3;
const FLOWS = 200;
const USERS = 20;
const KILLED = 1;
/** The instance is killed once this many completions have been answered, mid-run (half the flows). */
const KILL_AFTER_COMPLETIONS = FLOWS / 2;
const LIMIT_PER_MINUTE = 300;
/** MAX_PENDING_UPLOADS left at its default: uploads one user may have not yet completed. */
const MAX_PENDING_UPLOADS = 100;
/** Creates racing for the last pending slots, spread round-robin over the three instances. */
const RACING_CREATES = MAX_PENDING_UPLOADS + 30;

interface Instance {
  port: number;
  baseUrl: string;
  child: ChildProcess;
  output: string[];
}

interface Flow {
  index: number;
  user: string;
  instance: number;
  audio: Buffer;
  idempotencyKey: string;
  clipId?: string;
  /** Where the flow stopped when the killed instance cut it. */
  cutAt?: string;
  /** Every answer was 2xx and the bytes played back identical, on the first try. */
  done: boolean;
  finishedOn?: number;
}

/** A phone's network error (refused, reset): what a flow on the killed instance meets. */
function isCut(error: unknown): boolean {
  // By name: the error comes from Node's realm, not the test's VM context, so instanceof would not match.
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Error).name === 'TypeError' &&
    /fetch failed/.test((error as Error).message)
  );
}

describeIfLeg(REDIS_LEG)('three instances on one Postgres, one Redis and one S3, one of them killed mid-run', () => {
  let build: string;
  let database: TestDatabase;
  const instances: Instance[] = [];
  let env: Record<string, string>;
  const tokens = new Map<string, string>();
  let retriedAfter503 = 0;
  let readyWhenResumed = 0;
  let completionsAnswered = 0;
  let killedAtMs = 0;
  let markKilled: () => void = () => undefined;
  /** Settles when the instance has been killed: a few of its flows wait for it, so some are always cut. */
  const killed = new Promise<void>((resolve) => (markKilled = resolve));
  let runStarted = 0;
  let bootMs = 0;
  let lockWaitMs = 0;

  beforeAll(async () => {
    build = await mkdtemp(join(tmpdir(), 'an-multi-'));
    // The app as it is deployed: compiled, one process per instance.
    await promisify(execFile)(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(build, 'dist')],
      { cwd: join(__dirname, '..') },
    );
    database = await createTestDatabase('postgres');
    env = {
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      REDIS_URL: process.env.TEST_REDIS_URL!,
      STORAGE_DRIVER: 's3',
      ...testS3Env(),
      S3_KEY_PREFIX: `multi-${randomBytes(6).toString('hex')}`,
      AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
      JANITOR_INTERVAL_SECONDS: '0',
      // Renditions across instances have their own test (test/renditions-instances.e2e-spec.ts).
      RENDITION_CONCURRENCY: '0',
      RATE_LIMIT_PER_MINUTE: String(LIMIT_PER_MINUTE),
      UPLOAD_RATE_LIMIT_PER_MINUTE: String(LIMIT_PER_MINUTE),
      PATH: process.env.PATH ?? '',
      // The build lives outside the checkout; its imports resolve from the checkout's node_modules.
      NODE_PATH: join(__dirname, '..', 'node_modules'),
    };
    // All three start at the same moment on the fresh database, as a deployment rolling out does: the
    // migration lock (src/database) lets one migrate while the others wait, then find nothing to do.
    // The test holds that lock while they start, so that all three surely meet it (on an idle machine
    // the first finished migrating before the others had connected, and nothing raced); released once
    // all three wait for it, they contend for it at one moment.
    const lockHolder = new Client({ connectionString: database.url });
    await lockHolder.connect();
    const ports = await Promise.all(Array.from({ length: INSTANCES }, () => freePort()));
    const booting = performance.now();
    try {
      await lockHolder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      instances.push(...ports.map((port) => spawnInstance(port)));
      for (const deadline = Date.now() + 120_000; (await migrationLockWaiters(lockHolder)) < INSTANCES;) {
        const exited = instances.find((instance) => instance.child.exitCode !== null);
        if (exited) throw new Error(`instance exited during start-up:\n${exited.output.join('')}`);
        if (Date.now() > deadline) throw new Error('the instances did not all reach the migration lock in 120 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      lockWaitMs = performance.now() - booting;
      await lockHolder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    } finally {
      await lockHolder.end();
    }
    await Promise.all(instances.map((instance) => untilHealthy(instance)));
    bootMs = performance.now() - booting;
    for (let u = 0; u < USERS + 1; u += 1) tokens.set(`user-${u}`, await tokenFor(`user-${u}`));
  }, 240_000);

  afterAll(async () => {
    for (const instance of instances) instance.child.kill('SIGKILL');
    await database?.drop();
    if (build) await rm(build, { recursive: true, force: true });
  });

  function tokenFor(user: string): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setIssuedAt()
      .setExpirationTime('30m')
      .sign(new TextEncoder().encode(env.AUTH_JWT_SECRET));
  }

  function spawnInstance(port: number): Instance {
    const output: string[] = [];
    const child = spawn(process.execPath, [join(build, 'dist', 'main.js')], {
      cwd: build,
      env: { ...env, PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, METRICS_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    return { port, baseUrl: `http://127.0.0.1:${port}`, child, output };
  }

  async function untilHealthy({ baseUrl, child, output }: Instance): Promise<void> {
    for (const deadline = Date.now() + 120_000; ;) {
      if (child.exitCode !== null) throw new Error(`instance exited during start-up:\n${output.join('')}`);
      const healthy = await fetch(`${baseUrl}/api/health`)
        .then((response) => response.ok)
        .catch(() => false);
      if (healthy) return;
      if (Date.now() > deadline) throw new Error(`instance did not come up:\n${output.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  function phone(instance: number, user: string): Phone {
    return new Phone(instances[instance].baseUrl, tokens.get(user));
  }

  /** The flow's clip, under its Idempotency-Key: a create sent again finds the clip the first one made. */
  async function create(api: Phone, flow: Flow): Promise<{ upload: { url: string; headers: Record<string, string> } }> {
    const created = await api.post(
      '/api/audio-clips',
      { mime_type: 'audio/wav', bytes: flow.audio.length, duration_ms: 1000 },
      { 'Idempotency-Key': flow.idempotencyKey },
    );
    expect(created.status).toBe(201);
    flow.clipId = created.body.clip.id;
    return created.body;
  }

  /** create → PUT to the store → complete → playback, all on one instance, as one phone would. */
  async function run(flow: Flow, on: number): Promise<void> {
    const api = phone(on, flow.user);
    const step = (name: string) => (flow.cutAt = name);
    step('create');
    const { upload } = await create(api, flow);
    step('upload');
    expect((await putBytes(upload.url, flow.audio, upload.headers)).status).toBe(200);
    step('complete');
    // Not left to scheduling: the first few flows on the doomed instance reach complete only after the kill.
    if (on === KILLED && flow.index < INSTANCES * 3) await killed;
    const completed = await completeWithRetries(api, flow.clipId!);
    completionsAnswered += 1;
    if (completionsAnswered === KILL_AFTER_COMPLETIONS) {
      instances[KILLED].child.kill('SIGKILL');
      killedAtMs = performance.now() - runStarted;
      markKilled();
    }
    expect({ status: completed.status, body: completed.body.status }).toEqual({ status: 200, body: 'ready' });
    step('playback');
    await expectPlaysBack(api, flow);
    flow.cutAt = undefined;
  }

  /** A phone honours 503 + Retry-After (the store was slow to answer under this load) and tries again. */
  async function completeWithRetries(api: Phone, clipId: string): Promise<ApiResponse> {
    for (let attempt = 1; ; attempt += 1) {
      const response = await api.post(`/api/audio-clips/${clipId}/complete`);
      if (response.status !== 503 || attempt === 5) return response;
      retriedAfter503 += 1;
      await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1000));
    }
  }

  async function expectPlaysBack(api: Phone, flow: Flow): Promise<void> {
    const playback = await api.get(`/api/audio-clips/${flow.clipId}/playback`);
    expect(playback.status).toBe(200);
    const played = await download(playback.body.url);
    expect(sha256(played.bytes)).toBe(sha256(flow.audio));
  }

  /** A cut flow picks up where it was, on a surviving instance: the Idempotency-Key finds a clip created unseen. */
  async function finish(flow: Flow, on: number): Promise<void> {
    const api = phone(on, flow.user);
    if (flow.clipId === undefined) await create(api, flow);
    const clip = (await api.get(`/api/audio-clips/${flow.clipId}`)).body;
    if (clip.status === 'pending') {
      const completedAlready = await completeWithRetries(api, flow.clipId!);
      if (completedAlready.status !== 200) {
        // Nothing (or not all) arrived before the cut: a fresh URL, the bytes again, then complete.
        expect(completedAlready.body.error.code).toBe('UPLOAD_NOT_FOUND');
        const renewed = await api.post(`/api/audio-clips/${flow.clipId}/upload-url`);
        expect(renewed.status).toBe(200);
        expect((await putBytes(renewed.body.upload.url, flow.audio, renewed.body.upload.headers)).status).toBe(200);
        expect((await completeWithRetries(api, flow.clipId!)).status).toBe(200);
      }
    } else {
      expect(clip.status).toBe('ready');
      readyWhenResumed += 1;
    }
    await expectPlaysBack(api, flow);
    flow.finishedOn = on;
  }

  it('boots three instances at the same moment on a fresh database: all come up, and the migrations ran once', async () => {
    for (const instance of instances) {
      expect(instance.child.exitCode).toBeNull();
      expect((await fetch(`${instance.baseUrl}/api/health/ready`)).status).toBe(200);
    }
    const applied = await withAdmin(database.url, async (client) => {
      const { rows } = await client.query<{ name: string; times: number }>(
        'SELECT name, COUNT(*)::int AS times FROM migrations GROUP BY name ORDER BY name',
      );
      return rows;
    });
    expect(applied).toEqual(MIGRATIONS.map((migration) => ({ name: migration.name, times: 1 })).sort(byName));
    // One instance applied them all; the others found nothing left to do.
    const appliedBy = instances.map((instance) => countMatches(instance.output.join(''), /Applied migrations: /g));
    expect(appliedBy.sort()).toEqual([0, 0, 1]);
    // Each met the lock held, so each waited: the three really did contend for it.
    for (const instance of instances) {
      expect(instance.output.join('')).toContain('Another instance is migrating the database; waiting for it.');
    }
    report(
      `multi-instance boot: ${INSTANCES} instances started at once, all waiting on the migration lock after ` +
        `${(lockWaitMs / 1000).toFixed(1)} s, all up ${(bootMs / 1000).toFixed(1)} s after start; ` +
        `${MIGRATIONS.length} migrations applied once, by one instance`,
    );
  });

  it('holds the pending-upload cap exactly across instances: of racing creates spread over the three, exactly the cap succeeds', async () => {
    // The cap is checked inside the INSERT on the shared database (not in Redis), so no instance can
    // count a slot another instance is taking at the same moment.
    const hoarder = 'pending-hoarder';
    tokens.set(hoarder, await tokenFor(hoarder));
    const answers = await Promise.all(
      Array.from({ length: RACING_CREATES }, (_, n) =>
        phone(n % INSTANCES, hoarder).post('/api/audio-clips', { mime_type: 'audio/wav', bytes: 1000, duration_ms: 1 }),
      ),
    );
    const created = answers.filter((answer) => answer.status === 201);
    const refused = answers.filter((answer) => answer.status !== 201);
    expect(created).toHaveLength(MAX_PENDING_UPLOADS);
    expect(refused).toHaveLength(RACING_CREATES - MAX_PENDING_UPLOADS);
    for (const answer of refused) {
      expect(answer.status).toBe(409);
      expect(answer.body.error).toMatchObject({ code: 'TOO_MANY_PENDING_UPLOADS', max_pending_uploads: 100 });
    }
    const pending = await withAdmin(database.url, async (client) => {
      const { rows } = await client.query<{ count: number }>(
        "SELECT COUNT(*)::int AS count FROM audio_clips WHERE owner_id = $1 AND status = 'pending'",
        [hoarder],
      );
      return rows[0].count;
    });
    expect(pending).toBe(MAX_PENDING_UPLOADS);

    // Deleting one does not free its slot at once, on any instance: S3 cannot revoke the clip's upload
    // URL, which counts as a pending upload until it has run out. Then the clips go; what their URLs
    // hold ends with the janitor pass of the next test, two hours on.
    const ids = created.map((answer) => answer.body.clip.id as string);
    expect((await phone(0, hoarder).delete(`/api/audio-clips/${ids[0]}`)).status).toBe(204);
    const again = await phone(2, hoarder).post('/api/audio-clips', {
      mime_type: 'audio/wav',
      bytes: 1000,
      duration_ms: 1,
    });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'TOO_MANY_PENDING_UPLOADS', dead_uploads: 1 });
    const rest = ids.slice(1);
    const deleted = await Promise.all(
      rest.map((id, n) => phone(n % INSTANCES, hoarder).delete(`/api/audio-clips/${id}`)),
    );
    expect(deleted.map((answer) => answer.status)).toEqual(rest.map(() => 204));
    report(
      `multi-instance pending cap: ${RACING_CREATES} racing creates over ${INSTANCES} instances, ` +
        `${created.length} created (MAX_PENDING_UPLOADS ${MAX_PENDING_UPLOADS}), ${refused.length} refused 409`,
    );
  });

  it('keeps every flow consistent through the kill, lets cut flows finish elsewhere, leaves no stray object, and holds the per-user limit across instances', async () => {
    const flows: Flow[] = Array.from({ length: FLOWS }, (_, index) => ({
      index,
      user: `user-${index % USERS}`,
      instance: index % INSTANCES,
      audio: wav(0.5 + (index % 7) * 0.1, { noise: true }),
      idempotencyKey: randomUUID(),
      done: false,
    }));
    const started = performance.now();
    runStarted = started;
    const failures: string[] = [];
    await Promise.all(
      flows.map(async (flow) => {
        try {
          await run(flow, flow.instance);
          flow.done = true;
        } catch (error) {
          // Only the killed instance may cut a flow, and only by dropping its connection.
          if (!(flow.instance === KILLED && isCut(error))) failures.push(`flow ${flow.index}: ${String(error)}`);
        }
      }),
    );
    const runMs = performance.now() - started;
    if (failures.length > 0) {
      for (const [n, instance] of instances.entries())
        console.log(`instance ${n}:\n${instance.output.join('').slice(-4000)}`);
    }
    expect(failures).toEqual([]);
    expect(killedAtMs).toBeGreaterThan(0);
    const cut = flows.filter((flow) => !flow.done);
    // The kill came mid-run: flows on the killed instance were cut, at whatever step they had reached.
    expect(cut.length).toBeGreaterThan(0);
    expect(cut.every((flow) => flow.instance === KILLED)).toBe(true);

    const survivors = [0, 1, 2].filter((n) => n !== KILLED);
    await Promise.all(cut.map((flow, n) => finish(flow, survivors[n % survivors.length])));

    const s3 = new S3Client({
      endpoint: env.S3_ENDPOINT_URL,
      region: env.AWS_REGION,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
      forcePathStyle: true,
    });
    const sweeper = await createApp({ env: { ...env, PORT: '0' }, logLevels: ['error'] });
    try {
      await sweeper.init();
      const { DataSource } = await import('typeorm');
      const dataSource = sweeper.get(DataSource);
      const clips: { id: string; status: string; storage_key: string; upload_key: string }[] = await dataSource.query(
        'SELECT id, status, storage_key, upload_key FROM audio_clips',
      );
      // One clip per recording (the retried creates found theirs), every one ready.
      expect(clips).toHaveLength(FLOWS);
      expect(new Set(clips.map((clip) => clip.status))).toEqual(new Set(['ready']));
      expect(new Set(clips.map((clip) => clip.id))).toEqual(new Set(flows.map((flow) => flow.clipId)));

      // A janitor pass two hours on (every upload URL has run out), then: no object without a row.
      await sweeper.get(AudioClipJanitor).runOnce(new Date(Date.now() + 2 * 3600_000));
      const objects = await listObjects(s3, env.S3_BUCKET, `${env.S3_KEY_PREFIX}/`);
      expect(objects.sort()).toEqual(clips.map((clip) => clip.storage_key).sort());
    } finally {
      await sweeper.close();
      s3.destroy();
    }

    // The per-user limit holds across the surviving instances: one budget, not one per instance.
    const checker = `user-${USERS}`;
    const statuses: number[] = [];
    for (let n = 0; n < LIMIT_PER_MINUTE + 10; n += 1) {
      statuses.push((await phone(survivors[n % survivors.length], checker).get('/api/notes')).status);
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(LIMIT_PER_MINUTE);
    expect(statuses.slice(LIMIT_PER_MINUTE)).toEqual(Array(10).fill(429));

    report(
      `multi-instance: ${FLOWS} flows on ${INSTANCES} instances in ${(runMs / 1000).toFixed(1)} s; ` +
        `instance ${KILLED} SIGKILLed at ${(killedAtMs / 1000).toFixed(1)} s after ${KILL_AFTER_COMPLETIONS} completions had been answered; ` +
        `${cut.length} flows cut (${summarize(cut.map((flow) => flow.cutAt ?? '?'))}) and finished on the survivors (${readyWhenResumed} of them already ready: the kill only lost the answer); ` +
        `${retriedAfter503} completions retried after 503 + Retry-After; ${FLOWS} clips ready, no stray object; limit ${LIMIT_PER_MINUTE}/min held across ${survivors.length} instances`,
    );
  }, 600_000);
});

/** Every key under the prefix: from s3rver's folder (its bucket listing cannot be signed by the SDK), else ListObjectsV2. */
async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const s3rverDir = process.env.TEST_S3RVER_DIR;
  if (s3rverDir) {
    const root = join(s3rverDir, bucket);
    const entries = await readdir(join(root, prefix), { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
      .filter((entry) => entry.isFile() && entry.name.endsWith('._S3rver_object'))
      .map((entry) => relative(root, join(entry.parentPath, entry.name)).replace(/\._S3rver_object$/, ''));
  }
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((object) => object.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Sessions waiting for an advisory lock in the client's database (the instances at the migration lock). */
async function migrationLockWaiters(client: Client): Promise<number> {
  const { rows } = await client.query<{ waiting: number }>(
    `SELECT COUNT(*)::int AS waiting FROM pg_locks
      WHERE locktype = 'advisory' AND NOT granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  return rows[0].waiting;
}

function countMatches(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function summarize(values: string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].map(([value, count]) => `${count} at ${value}`).join(', ');
}
