import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from '@20minutes/s3rver';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DataSource } from 'typeorm';
import { issueToken } from '../src/auth/dev-token';
import { AudioClip, AudioClipStatus, DurationSource } from '../src/audio-clips/audio-clip.entity';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions } from '../src/database/database.options';
import { createS3Client } from '../src/storage/s3-storage.driver';
import { benchEnv, startServer } from './children';
import { fmt, fmtRatio, load, median, perRound, type Measurement } from './measure';
import { seed } from './seed';
import { printTable } from './table';

/**
 * `npm run bench`: the app, a bare node:http baseline doing the same lookup and signing, and the
 * "obvious" NestJS stack, each in its own process, driven one after another by autocannon over
 * loopback. It reports ratios measured side by side in one run, since absolute numbers on a shared
 * machine mean little.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
const OWNER = 'bench-user';
const NOTES = 100;
const CLIPS = 1000;
/** First completions per round and server, and before the first round. */
/** Users the create endpoint's requests are spread over (each stays far below the default pending-upload caps). */
const CREATORS = 2000;
const FIRST_COMPLETIONS = Number(process.env.BENCH_FIRST_COMPLETIONS ?? 300);
const FIRST_WARMUP = 50;
const WAV = readFileSync(join(__dirname, '../../test/fixtures/audio/tone-1s.wav'));

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-'));
  const s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 's3'),
    configureBuckets: [{ name: 'bench' }],
  });
  const { port: s3Port } = await s3.run();
  const env = benchEnv(`sqlite:${join(dir, 'bench.sqlite')}`, s3Port);
  const children: ChildProcess[] = [];
  try {
    const { noteIds, clipIds } = await seed(env, OWNER, NOTES, CLIPS);
    const authConfig = loadAppConfig(env).auth;
    const token = await issueToken(authConfig, OWNER);
    if (process.env.BENCH_PREPARE_ONLY) {
      // For profiling by hand: leave the seeded database and print what a load generator needs.
      console.log(JSON.stringify({ env, token, clipId: clipIds[0], noteId: noteIds[0] }));
      await new Promise((resolve) => setTimeout(resolve, Number(process.env.BENCH_PREPARE_ONLY) * 1000));
      return;
    }
    const servers = {
      app: await startServer('app', env, children),
      baseline: await startServer('baseline', env, children),
      obvious: await startServer('obvious', env, children),
    };
    const auth = { authorization: `Bearer ${token}` };
    const creators = await Promise.all(
      Array.from({ length: CREATORS }, async (_, i) => ({
        authorization: `Bearer ${await issueToken(authConfig, `bench-creator-${i}`)}`,
      })),
    );
    let nextCreator = 0;
    const pick = (ids: string[]) => ids[Math.floor(Math.random() * ids.length)];
    // First completions use each pending clip once: every server gets its own, enough for every round.
    const pending = {
      baseline: await seedPending(env, FIRST_COMPLETIONS * ROUNDS + FIRST_WARMUP),
      app: await seedPending(env, FIRST_COMPLETIONS * ROUNDS + FIRST_WARMUP),
    };
    const nextPending = (server: string) => {
      const id = pending[server as keyof typeof pending].pop();
      if (id === undefined) throw new Error(`no pending clip left for ${server}`);
      return id;
    };
    const endpoints = [
      {
        name: 'playback',
        method: 'GET',
        path: () => `/api/audio-clips/${pick(clipIds)}/playback`,
        targets: { baseline: 0.5, obvious: 8 },
      },
      {
        name: 'primary clip',
        method: 'GET',
        path: () => `/api/notes/${pick(noteIds)}/audio`,
        targets: { baseline: 0.5 },
      },
      {
        name: 'create',
        method: 'POST',
        path: () => '/api/audio-clips',
        body: JSON.stringify({ mime_type: 'audio/m4a', bytes: 123456, duration_ms: 42000 }),
        // Many phones, not one: a single user would hit the default cap of 100 pending uploads at once.
        auth: () => creators[nextCreator++ % creators.length],
        targets: { baseline: 0.35 },
      },
      {
        name: 'complete (ready clip)',
        method: 'POST',
        path: () => `/api/audio-clips/${pick(clipIds)}/complete`,
        targets: {},
      },
      {
        name: 'complete (first, uploaded WAV)',
        method: 'POST',
        path: (server: string) => `/api/audio-clips/${nextPending(server)}/complete`,
        amount: FIRST_COMPLETIONS,
        targets: {},
      },
    ] as const;

    console.log(
      `\nautocannon: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per server and endpoint (order rotated each round, 1 s warm-up before the first), loopback; ` +
        `${NOTES} notes and ${CLIPS} ready clips in SQLite; S3 driver against s3rver. Figures are medians over the rounds; ratios are medians of each round's ratio, with their range.\n`,
    );
    const rows: string[][] = [];
    for (const endpoint of endpoints) {
      const names = (['baseline', 'app', 'obvious'] as const).filter(
        (name) => name !== 'obvious' || endpoint.name === 'playback',
      );
      const measured = new Map<(typeof names)[number], Measurement[]>(names.map((name) => [name, []]));
      const body = 'body' in endpoint ? endpoint.body : undefined;
      for (let round = 0; round < ROUNDS; round++) {
        // Rotating the order spreads slow patches of the shared machine over all servers alike.
        for (let k = 0; k < names.length; k++) {
          const name = names[(k + round) % names.length];
          const amount = 'amount' in endpoint ? endpoint.amount : undefined;
          measured.get(name)!.push(
            await load(
              servers[name],
              endpoint.method,
              () => endpoint.path(name),
              body,
              'auth' in endpoint ? endpoint.auth : auth,
              round === 0,
              amount,
              {
                seconds: SECONDS,
                connections: CONNECTIONS,
                firstWarmup: FIRST_WARMUP,
              },
            ),
          );
        }
      }
      const app = measured.get('app')!;
      const baseline = measured.get('baseline')!;
      const ratio = perRound(app, baseline);
      rows.push([endpoint.name, 'baseline (node:http)', fmt(baseline), '1.00', '']);
      rows.push([
        endpoint.name,
        'app',
        fmt(app),
        fmtRatio(ratio),
        'baseline' in endpoint.targets
          ? `≥ ${endpoint.targets.baseline} ${ratio.median >= endpoint.targets.baseline ? 'met' : 'MISSED'}`
          : '',
      ]);
      const obvious = measured.get('obvious');
      if (obvious) {
        const gain = perRound(app, obvious);
        rows.push([
          endpoint.name,
          'obvious stack',
          fmt(obvious),
          fmtRatio(perRound(obvious, baseline)),
          `app is ${gain.median.toFixed(1)}x (${gain.min.toFixed(1)}–${gain.max.toFixed(1)}; target ≥ 8x ${gain.median >= 8 ? 'met' : 'MISSED'})`,
        ]);
      }
      if (endpoint.name === 'playback') {
        const p99 = median(app.map((m) => m.p99));
        rows.push([
          endpoint.name,
          'app p99',
          `${p99} ms (worst round ${Math.max(...app.map((m) => m.p99))} ms)`,
          '',
          `target < 20 ms ${p99 < 20 ? 'met' : 'MISSED'}`,
        ]);
      }
    }
    printTable(['endpoint', 'server', 'req/s · p50 · p99', 'vs baseline', 'target'], rows);
  } finally {
    for (const child of children) child.kill();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Pending clips whose upload (a real 1 s WAV) is already in the bucket, as a phone leaves them before completing. */
async function seedPending(env: Record<string, string>, count: number): Promise<string[]> {
  const config = loadAppConfig(env);
  const dataSource = await new DataSource({ ...dataSourceOptions(config.database), logging: false }).initialize();
  const s3 = createS3Client(config.storage.s3!);
  try {
    const now = new Date();
    const clips = Array.from({ length: count }, () => {
      const id = randomUUID();
      return Object.assign(new AudioClip(), {
        id,
        ownerId: OWNER,
        noteId: null,
        status: AudioClipStatus.Pending,
        mimeType: 'audio/wav',
        bytes: WAV.length,
        durationMs: 1000,
        declaredDurationMs: 1000,
        durationSource: DurationSource.Declared,
        contentMd5: null,
        storageKey: `bench/audio-clips/${id}.wav`,
        uploadKey: `bench/uploads/${id}.wav`,
        uploadExpiresAt: new Date(now.getTime() + 3_600_000),
        failureReason: null,
        createdAt: now,
        updatedAt: now,
        completedAt: null,
      });
    });
    for (let i = 0; i < clips.length; i += 200)
      await dataSource.getRepository(AudioClip).insert(clips.slice(i, i + 200));
    for (let i = 0; i < clips.length; i += 16) {
      await Promise.all(
        clips.slice(i, i + 16).map((clip) =>
          s3.send(
            new PutObjectCommand({
              Bucket: config.storage.s3!.bucket,
              Key: clip.uploadKey,
              Body: WAV,
              ContentType: 'audio/wav',
            }),
          ),
        ),
      );
    }
    return clips.map((clip) => clip.id);
  } finally {
    s3.destroy();
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
