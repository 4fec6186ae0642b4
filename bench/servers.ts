import 'reflect-metadata';
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { Pool } from 'pg';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { createApp } from '../src/app.factory';
import { CLIP_BY_ID_SQL, PLAYABLE_CLIP_SQL, PRIMARY_CLIP_SQL } from '../src/audio-clips/audio-clips.repository';
import { probeAudio } from '../src/audio-clips/audio-probe';
import { createS3Client, S3StorageDriver } from '../src/storage/s3-storage.driver';

/**
 * The three servers the benchmark compares, each run in a child process of its own so that the load
 * generator never shares their core: `node dist-bench/bench/servers.js <app|baseline|obvious> <port>`,
 * configured by the same environment variables as the app.
 */
async function main(): Promise<void> {
  const [kind, portArg] = process.argv.slice(2);
  const port = Number(portArg);
  if (kind === 'app') await startApp(port);
  else if (kind === 'app-pair') await startAppPair(port);
  else if (kind === 'baseline') startBaseline(port);
  else if (kind === 'pg-baseline') startPostgresBaseline(port);
  else if (kind === 'obvious') await (await import('./obvious-stack')).startObviousStack(port);
  else throw new Error(`unknown server kind ${kind}`);
  process.send?.('ready');
  // A clean exit on request, so that `--cpu-prof` can write its profile.
  process.on('message', (message) => {
    if (message === 'exit') process.exit(0);
    if (message === 'memory') process.send?.(process.memoryUsage());
  });
  // The benches stop their servers with a kill: exit cleanly then too (a profile is written on exit).
  process.once('SIGTERM', () => process.exit(0));
}

async function startApp(port: number): Promise<void> {
  // As deployed: an access line per request (to stdout, which the bench discards) and metrics on a port of their own.
  const app = await createApp({
    env: { ...process.env, PORT: String(port), METRICS_PORT: process.env.METRICS_PORT ?? String(port + 1) },
  });
  await app.listen(port, '127.0.0.1');
}

/**
 * Two app processes on one port (node's cluster module: the primary hands each connection to the next
 * worker in turn), as two instances behind a round-robin balancer on this machine's two cores.
 */
async function startAppPair(port: number): Promise<void> {
  if (!cluster.isPrimary) return startApp(port);
  cluster.setupPrimary({ args: ['app-pair', String(port)], silent: false });
  await Promise.all(
    [0, 1].map(
      () =>
        new Promise<void>((resolve, reject) => {
          const worker = cluster.fork();
          worker.once('listening', () => resolve());
          worker.once('exit', (code) => reject(new Error(`app worker exited with ${code}`)));
        }),
    ),
  );
  process.on('exit', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
  });
}

/** The app's own S3 driver, for the baselines to sign with exactly as the app does. */
function signerFor(env: NodeJS.ProcessEnv): S3StorageDriver {
  const s3Config = {
    bucket: env.S3_BUCKET!,
    region: env.AWS_REGION!,
    endpointUrl: env.S3_ENDPOINT_URL,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  };
  return new S3StorageDriver(createS3Client(s3Config), s3Config.bucket, s3Config);
}

/** The bar on Postgres: bare node:http, a `pg` pool running the app's SQL, and the same presigner. */
function startPostgresBaseline(port: number): void {
  const env = process.env;
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 10 });
  const storage = signerFor(env);
  const numbered = (sql: string) => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  const playable = { name: 'playable', text: numbered(PLAYABLE_CLIP_SQL) };
  const primaryOfNote = { name: 'primary', text: numbered(PRIMARY_CLIP_SQL) };
  const json = (response: import('node:http').ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  createServer((request, response) => {
    const url = request.url ?? '';
    const playback = /^\/api\/audio-clips\/([0-9a-f-]{36})\/playback$/.exec(url);
    const primary = /^\/api\/notes\/([0-9a-f-]{36})\/audio$/.exec(url);
    const query = playback ? playable : primary ? primaryOfNote : undefined;
    if (!query) return json(response, 404, {});
    pool
      .query<{ status: string; storage_key: string }>({ ...query, values: [(playback ?? primary)![1], 'bench-user'] })
      .then(async ({ rows: [row] }) => {
        if (!row) return json(response, 404, {});
        const signed = await storage.presignDownload(row.storage_key, 900);
        const link = { url: signed.url, expires_at: signed.expiresAt.toISOString() };
        json(response, 200, playback ? link : { clip: row, playback: link });
      })
      .catch(() => json(response, 500, {}));
  }).listen(port, '127.0.0.1');
}

/**
 * The bar: bare node:http, a prepared SQLite statement, and the same presigner the app uses.
 * No framework, no authentication, no validation: what one core can do for these endpoints at best.
 */
function startBaseline(port: number): void {
  const env = process.env;
  const db = new Database(env.DATABASE_URL!.slice('sqlite:'.length));
  db.pragma('journal_mode = WAL');
  const storage = signerFor(env);
  // The app's own SQL for each lookup.
  const clipById = db.prepare(CLIP_BY_ID_SQL);
  const playableClip = db.prepare(PLAYABLE_CLIP_SQL);
  const primaryOfNote = db.prepare(PRIMARY_CLIP_SQL);
  const insertClip = db.prepare(
    "INSERT INTO audio_clips (id, owner_id, note_id, status, mime_type, bytes, duration_ms, declared_duration_ms, duration_source, storage_key, upload_key, created_at, updated_at) VALUES (?, ?, NULL, 'pending', ?, ?, ?, ?, 'declared', ?, ?, ?, ?)",
  );

  const markReady = db.prepare(
    "UPDATE audio_clips SET status = 'ready', duration_ms = ?, duration_source = ?, completed_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
  );
  type PendingRow = {
    id: string;
    status: string;
    mime_type: string;
    bytes: number;
    declared_duration_ms: number;
    storage_key: string;
    upload_key: string;
  };

  /** A first completion with the same store calls as the app's: HEAD, the probe's ranged reads, copy, delete. */
  const completeFirst = async (row: PendingRow) => {
    const object = await storage.inspect(row.upload_key);
    if (!object || object.size !== row.bytes) throw new Error('no upload of the declared size');
    const probe = await probeAudio(
      { size: object.size, read: (start, end) => storage.readRange(row.upload_key, start, end, object.etag) },
      row.mime_type,
    );
    if (probe.kind !== 'audio') throw new Error(probe.reason);
    await storage.move(row.upload_key, row.storage_key, object.etag);
    const now = new Date().toISOString().replace('T', ' ').replace('Z', '');
    markReady.run(
      probe.durationMs ?? row.declared_duration_ms,
      probe.durationMs === null ? 'declared' : 'measured',
      now,
      now,
      row.id,
    );
    return clipById.get(row.id, 'bench-user');
  };

  const json = (response: import('node:http').ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  createServer((request, response) => {
    const url = request.url ?? '';
    const playback = /^\/api\/audio-clips\/([0-9a-f-]{36})\/playback$/.exec(url);
    const primary = /^\/api\/notes\/([0-9a-f-]{36})\/audio$/.exec(url);
    if (playback) {
      const row = playableClip.get(playback[1], 'bench-user') as { status: string; storage_key: string } | undefined;
      if (!row) return json(response, 404, {});
      void storage
        .presignDownload(row.storage_key, 900)
        .then((signed) => json(response, 200, { url: signed.url, expires_at: signed.expiresAt.toISOString() }));
    } else if (primary) {
      const row = primaryOfNote.get(primary[1], 'bench-user') as { storage_key: string } | undefined;
      if (!row) return json(response, 404, {});
      void storage
        .presignDownload(row.storage_key, 900)
        .then((signed) =>
          json(response, 200, { clip: row, playback: { url: signed.url, expires_at: signed.expiresAt.toISOString() } }),
        );
    } else if (request.method === 'POST' && url === '/api/audio-clips') {
      let body = '';
      request
        .on('data', (chunk) => (body += chunk))
        .on('end', () => {
          const input = JSON.parse(body) as { mime_type: string; bytes: number; duration_ms: number };
          const id = randomUUID();
          const now = new Date().toISOString().replace('T', ' ').replace('Z', '');
          const key = `bench/audio-clips/${id}.m4a`;
          const uploadKey = `bench/uploads/${id}.m4a`;
          void storage
            .presignUpload(uploadKey, {
              contentType: input.mime_type,
              contentLength: input.bytes,
              expiresInSeconds: 900,
            })
            .then((upload) => {
              insertClip.run(
                id,
                'bench',
                input.mime_type,
                input.bytes,
                input.duration_ms,
                input.duration_ms,
                key,
                uploadKey,
                now,
                now,
              );
              json(response, 201, {
                clip: { id },
                upload: {
                  url: upload.url,
                  method: 'PUT',
                  headers: upload.headers,
                  storage_key: uploadKey,
                  expires_at: upload.expiresAt.toISOString(),
                },
              });
            });
        });
    } else if (request.method === 'POST' && /^\/api\/audio-clips\/[0-9a-f-]{36}\/complete$/.test(url)) {
      const row = clipById.get(url.split('/')[3], 'bench-user') as PendingRow | undefined;
      if (!row) return json(response, 404, {});
      if (row.status === 'ready') return json(response, 200, row);
      void completeFirst(row).then(
        (done) => json(response, 200, done),
        (error: unknown) => json(response, 422, { error: String(error) }),
      );
    } else {
      json(response, 404, {});
    }
  }).listen(port, '127.0.0.1');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
