import { randomBytes } from 'node:crypto';
import { readdir, stat, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { freePort } from './harness/free-port';
import { startChildApp, type ChildApp } from './support/child-app';

jest.setTimeout(120_000);

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The real server in a child process, signalled as a process manager signals it, with a real slow
 * upload to the local driver in flight.
 */
describe('the graceful drain on SIGTERM and SIGINT', () => {
  let dir: string;
  let port: number;
  let env: Record<string, string>;
  let child: ChildApp | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'an-drain-'));
    port = await freePort();
    env = {
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      DATABASE_URL: `sqlite:${join(dir, 'notes.sqlite')}`,
      STORAGE_DRIVER: 'local',
      LOCAL_STORAGE_DIR: join(dir, 'objects'),
      AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
      METRICS_PORT: String(await freePort()),
      LOG_FORMAT: 'json',
      JANITOR_INTERVAL_SECONDS: '1',
      // The 30 MB recording goes up in one PUT, as a phone's slow single upload would.
      MULTIPART_THRESHOLD_BYTES: String(64 * MB),
    };
  });
  afterEach(async () => {
    if (child && child.process.exitCode === null) child.process.kill('SIGKILL');
    child = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function createClip(bytes: number): Promise<{ url: string; headers: Record<string, string> }> {
    const token = await new SignJWT({ exp: Math.floor(Date.now() / 1000) + 600 })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .sign(new TextEncoder().encode(env.AUTH_JWT_SECRET));
    const response = await fetch(`http://127.0.0.1:${port}/api/audio-clips`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mime_type: 'audio/wav', bytes, duration_ms: 60_000 }),
    });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { upload: { url: string; headers: Record<string, string> } };
    return body.upload;
  }

  /** PUTs `bytes` in 256 KB chunks, one every `delayMs`; `stopAfter` bytes then stalls (never ends). */
  function slowUpload(
    upload: { url: string; headers: Record<string, string> },
    bytes: number,
    options: { delayMs: number; stopAfter?: number; onSent?: (sent: number) => void },
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(upload.url, { method: 'PUT', headers: upload.headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      const chunk = randomBytes(256 * 1024);
      let sent = 0;
      const next = () => {
        if (sent >= bytes) return void req.end();
        if (options.stopAfter !== undefined && sent >= options.stopAfter) return;
        const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += piece.length;
        options.onSent?.(sent);
        req.write(piece);
        setTimeout(next, options.delayMs);
      };
      next();
    });
  }

  async function filesOf(folder: string): Promise<{ path: string; size: number }[]> {
    const entries = await readdir(folder, { recursive: true, withFileTypes: true });
    return Promise.all(
      entries
        .filter((entry) => entry.isFile())
        .map(async (entry) => {
          const path = join(entry.parentPath, entry.name);
          return { path, size: (await stat(path)).size };
        }),
    );
  }

  it('lets a slow 30 MB upload finish with 200, ignores a second SIGTERM, closes the database and exits 0', async () => {
    env.SHUTDOWN_GRACE_SECONDS = '30';
    child = await startChildApp(env, dir);
    const bytes = 30 * MB;
    const upload = await createClip(bytes);
    let signalledAt = 0;
    const uploadStatus = deferred<number>();
    const signalled = new Promise<void>((resolve) => {
      void slowUpload(upload, bytes, {
        delayMs: 15,
        onSent: (sent) => {
          if (signalledAt === 0 && sent >= 8 * MB) {
            signalledAt = Date.now();
            // The whole group, twice: as npm and a shell around the server pass the signal on.
            process.kill(-child!.process.pid!, 'SIGTERM');
            setTimeout(() => process.kill(-child!.process.pid!, 'SIGTERM'), 300);
            resolve();
          }
        },
      }).then((status) => uploadStatus.resolve(status), uploadStatus.reject);
    });
    await signalled;

    // New connections are refused once the drain has begun.
    await sleep(500);
    await expect(fetch(`http://127.0.0.1:${port}/api/health`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${env.METRICS_PORT}/metrics`).then((r) => r.status)).resolves.toBe(200);

    const status = await uploadStatus.promise.catch((error: Error) => {
      throw new Error(`${error.message}\n${child!.lines.join('\n')}`);
    });
    expect(status).toBe(200);
    const exit = await child.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // Within the grace period: the drain ends as soon as the upload has.
    expect(exit.at - signalledAt).toBeLessThan(30_000);

    const stored = (await filesOf(env.LOCAL_STORAGE_DIR)).filter((file) => file.size === bytes);
    expect(stored).toHaveLength(1);
    // SQLite removes its write-ahead log when the last connection closes cleanly.
    expect((await readdir(dir)).filter((name) => name.endsWith('-wal'))).toEqual([]);
    const messages = child.lines.map((line) => JSON.parse(line) as { msg: string; context?: string });
    const shutdown = messages.filter((entry) => entry.context === 'Shutdown').map((entry) => entry.msg);
    expect(shutdown[0]).toMatch(/^SIGTERM received: draining/);
    expect(shutdown).toContainEqual(expect.stringMatching(/SIGTERM received again/));
    expect(shutdown.at(-1)).toBe('Drained and closed; exiting');
    expect(
      messages.find((entry) => entry.msg === 'request completed' && (entry as any).route === '/api/storage/local/*'),
    ).toMatchObject({ status: 200 });
  });

  it('cuts a stalled upload when the grace period ends, keeps nothing of it, and still exits 0', async () => {
    env.SHUTDOWN_GRACE_SECONDS = '2';
    child = await startChildApp(env, dir);
    const upload = await createClip(10 * MB);
    const outcome = slowUpload(upload, 10 * MB, { delayMs: 5, stopAfter: 2 * MB }).then(
      (status) => `status ${status}`,
      (error: Error) => `error ${error.message}`,
    );
    await sleep(1_000);
    const signalledAt = Date.now();
    process.kill(child.process.pid!, 'SIGTERM');
    const exit = await child.exited;
    expect(exit.code).toBe(0);
    // Two seconds of grace, then the cut: generous bounds for a loaded machine.
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(1_900);
    expect(exit.at - signalledAt).toBeLessThan(15_000);
    expect(await outcome).toMatch(/^error/);
    expect((await filesOf(env.LOCAL_STORAGE_DIR)).filter((file) => file.size >= 2 * MB)).toEqual([]);
    expect(child.lines.join('\n')).toMatch(/Grace period of 2 s over: cutting 1 connection/);
  });

  it('drains on SIGINT too', async () => {
    child = await startChildApp(env, dir);
    process.kill(child.process.pid!, 'SIGINT');
    expect(await child.exited).toMatchObject({ code: 0, signal: null });
    expect(child.lines.join('\n')).toContain('SIGINT received: draining');
  });
});

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}
