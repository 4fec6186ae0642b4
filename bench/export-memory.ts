import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { issueToken } from '../src/auth/dev-token';
import { loadAppConfig } from '../src/config/app-config';
import { startAppReportingMemory } from './children';

/**
 * `npm run bench:export-memory`: stores EXPORT_MB (2048 by default) of recordings for one user, asks
 * for an export, and samples the server's RSS while the archive is built, side by side with the bytes
 * exported. The recordings are streamed from the store through the zip into the store, so RSS must
 * grow by far less than the archive (the bar: under 100 MiB). Local driver on SQLite by default; set
 * EXPORT_BENCH_S3=1 with S3_ENDPOINT_URL, S3_BUCKET, AWS_REGION, AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY to measure against an S3 store (a multipart upload of the archive).
 */
const MIB = 1024 * 1024;
const TOTAL = Number(process.env.EXPORT_MB ?? 2048) * MIB;
const RECORDING = Math.min(TOTAL, Number(process.env.RECORDING_MB ?? 128) * MIB);
const CHUNK = Buffer.alloc(MIB, 0x5a);

interface CreatedClip {
  clip: { id: string };
  upload: { url: string; headers: Record<string, string> };
}
interface ExportAnswer {
  id: string;
  status: string;
  bytes: number;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'an-export-memory-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const store: Record<string, string> =
    process.env.EXPORT_BENCH_S3 === '1'
      ? { STORAGE_DRIVER: 's3', S3_KEY_PREFIX: `bench-${randomBytes(4).toString('hex')}` }
      : { STORAGE_DRIVER: 'local', LOCAL_STORAGE_DIR: join(dir, 'objects') };
  const env: Record<string, string> = {
    DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
    ...store,
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    MAX_UPLOAD_BYTES: String(RECORDING),
    // One PUT per recording: the bench is about the export, not the upload.
    MULTIPART_THRESHOLD_BYTES: String(RECORDING + 1),
    MAX_PENDING_UPLOAD_BYTES: String(2 * RECORDING),
    JANITOR_INTERVAL_SECONDS: '0',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
  };
  const { server, memory } = await startAppReportingMemory(port, env);
  try {
    const token = await issueToken(loadAppConfig(env).auth, 'bench-user');
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const answer = (await response.json()) as T;
      if (!response.ok) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(answer)}`);
      return answer;
    };

    const note = await api<{ id: string }>('POST', '/api/notes', {
      title: 'Bench / recordings',
      body: 'many long recordings',
    });
    let stored = 0;
    for (let index = 0; stored < TOTAL; index += 1) {
      const bytes = Math.min(RECORDING, TOTAL - stored);
      const created = await api<CreatedClip>('POST', '/api/audio-clips', {
        note_id: note.id,
        mime_type: 'audio/wav',
        bytes,
        duration_ms: Math.floor(((bytes - 44) / 16000) * 1000),
      });
      const status = await put(created.upload.url, bytes, created.upload.headers);
      if (status !== 200) throw new Error(`PUT of recording ${index} → ${status}`);
      await api('POST', `/api/audio-clips/${created.clip.id}/complete`);
      stored += bytes;
    }

    const before = await memory();
    let peak = before;
    const sampler = setInterval(
      () =>
        void memory().then((usage) => {
          if (usage.rss > peak.rss) peak = usage;
        }),
      50,
    );
    const started = Date.now();
    let exported = await api<ExportAnswer>('POST', '/api/me/exports');
    while (exported.status === 'pending' || exported.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 200));
      exported = await api<ExportAnswer>('GET', `/api/me/exports/${exported.id}`);
    }
    clearInterval(sampler);
    const seconds = (Date.now() - started) / 1000;
    if (exported.status !== 'ready') throw new Error(`export ended ${exported.status}`);
    const mb = (value: number) => (value / MIB).toFixed(1);
    const growth = peak.rss - before.rss;
    console.log(
      `export of ${mb(stored)} MiB of recordings (${Math.ceil(stored / RECORDING)} files, ${env.STORAGE_DRIVER} store): ` +
        `archive ${mb(exported.bytes)} MiB in ${seconds.toFixed(1)} s (${mb(exported.bytes / seconds)} MiB/s); ` +
        `server RSS ${mb(before.rss)} → peak ${mb(peak.rss)} MiB, growth ${mb(growth)} MiB ` +
        `= ${((100 * growth) / exported.bytes).toFixed(2)} % of the archive (bar < 100 MiB: ${growth < 100 * MIB ? 'met' : 'MISSED'})`,
    );
  } finally {
    server.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A valid WAV header for `size` bytes, then the same megabyte again and again. */
function put(url: string, size: number, headers: Record<string, string>): Promise<number> {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(size - 8, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(size - 44, 40);
  let sent = 0;
  const body = new Readable({
    read() {
      const source = sent === 0 ? Buffer.concat([header, CHUNK.subarray(44)]) : CHUNK;
      const chunk = source.subarray(0, Math.min(source.length, size - sent));
      sent += chunk.length;
      this.push(chunk.length > 0 ? chunk : null);
    },
  });
  return new Promise((resolve, reject) => {
    const upload = request(url, { method: 'PUT', headers }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    upload.on('error', reject);
    body.pipe(upload);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
