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
 * `npm run bench:upload-memory`: PUTs a 500 MB recording to the local driver's signed URL and samples
 * the server's RSS while it arrives. The body is streamed to disk, so RSS must grow by far less than
 * the upload (the bar: under 64 MB).
 */
const SIZE = Number(process.env.UPLOAD_MB ?? 500) * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'an-upload-memory-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env: Record<string, string> = {
    DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
    STORAGE_DRIVER: 'local',
    LOCAL_STORAGE_DIR: join(dir, 'objects'),
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    MAX_UPLOAD_BYTES: String(SIZE),
    // One PUT is what this bench measures: above the threshold a clip is uploaded in parts (no upload.url).
    MULTIPART_THRESHOLD_BYTES: String(SIZE + 1),
    JANITOR_INTERVAL_SECONDS: '0',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
  };
  const { server, memory } = await startAppReportingMemory(port, env);
  try {
    const token = await issueToken(loadAppConfig(env).auth, 'bench-user');
    const uploadUrl = (bytes: number) =>
      fetch(`http://127.0.0.1:${port}/api/audio-clips`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mime_type: 'audio/wav', bytes, duration_ms: 1000 }),
      }).then(async (response) => ((await response.json()) as { upload: { url: string } }).upload.url);
    const measure = async (label: string, bytes: number) => {
      const url = await uploadUrl(bytes);
      const before = await memory();
      let peak = before;
      let maxArrayBuffers = before.arrayBuffers;
      const sample = (usage: NodeJS.MemoryUsage) => {
        if (usage.rss > peak.rss) peak = usage;
        maxArrayBuffers = Math.max(maxArrayBuffers, usage.arrayBuffers);
      };
      const sampler = setInterval(() => void memory().then(sample), 50);
      const started = Date.now();
      const status = await put(url, bytes);
      clearInterval(sampler);
      sample(await memory());
      const mb = (value: number) => (value / 1024 / 1024).toFixed(1);
      const growthMb = (peak.rss - before.rss) / 1024 / 1024;
      console.log(
        `${label}: PUT of ${bytes / 1024 / 1024} MB → ${status} in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
          `server RSS ${mb(before.rss)} → peak ${mb(peak.rss)} MB, growth ${growthMb.toFixed(1)} MB (bar < 64 MB: ${growthMb < 64 ? 'met' : 'MISSED'}); ` +
          `buffers held at most ${mb(maxArrayBuffers)} MB (${mb(before.arrayBuffers)} before), JS heap ${mb(before.heapTotal)} → ${mb(peak.heapTotal)} MB`,
      );
    };
    // What grows is not the JS heap but the socket's read buffers: node:http reads each 64 KB into a
    // fresh buffer, and V8 frees the spent ones only at a GC, which it forces once ~64 MB of such
    // external memory piles up. So the growth sits near 64 MB whatever the upload's size; the second
    // upload shows what an upload costs a warm server.
    await measure('first upload after start', SIZE);
    await measure('next upload', SIZE);
  } finally {
    server.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

function put(url: string, size: number): Promise<number> {
  let sent = 0;
  const body = new Readable({
    read() {
      const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, size - sent));
      sent += chunk.length;
      this.push(chunk.length > 0 ? chunk : null);
    },
  });
  return new Promise((resolve, reject) => {
    const upload = request(
      url,
      { method: 'PUT', headers: { 'content-type': 'audio/wav', 'content-length': String(size) } },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    upload.on('error', reject);
    body.pipe(upload);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
