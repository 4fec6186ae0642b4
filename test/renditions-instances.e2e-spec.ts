import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeIfLeg } from './harness/legs';
import { FFMPEG_LEG } from './harness/ffmpeg';
import { freePort } from './harness/free-port';
import { wav } from './support/audio';
import { startChildApp, type ChildApp } from './support/child-app';
import { putBytes, type Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

interface RenditionRow {
  clip_id: string;
  status: string;
  attempts: number;
  claim_token: string | null;
}

async function renditionRows(testApp: TestApp): Promise<RenditionRow[]> {
  const rows: RenditionRow[] = await testApp.dataSource.query(
    'SELECT clip_id, status, attempts, claim_token FROM renditions ORDER BY clip_id',
  );
  return rows.map((row) => ({ ...row, attempts: Number(row.attempts) }));
}

async function uploadAndComplete(phone: Phone, audio: Buffer): Promise<string> {
  const created = await phone.post('/api/audio-clips', { mime_type: 'audio/wav', bytes: audio.length, duration_ms: 1 });
  expect(created.status).toBe(201);
  expect((await putBytes(created.body.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
  expect((await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`)).status).toBe(200);
  return created.body.clip.id;
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const stopAt = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > stopAt) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeIfLeg(FFMPEG_LEG)('renditions made by several instances of one deployment (Postgres, S3)', () => {
  it('makes each rendition once, whichever instance the clip was completed on', async () => {
    const first = await startTestApp({ database: 'postgres', storage: 's3', env: { RENDITION_CONCURRENCY: '2' } });
    const second = await startTestApp({
      database: 'postgres',
      storage: 's3',
      sameDeploymentAs: first,
      env: { RENDITION_CONCURRENCY: '2' },
    });
    try {
      const phones = [await first.phone('alice'), await second.phone('alice')];
      const clips = await Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          uploadAndComplete(phones[index % 2], wav(1 + (index % 3), { noise: true })),
        ),
      );
      const rows = await until('every rendition to be made', 60_000, async () => {
        const found = await renditionRows(first);
        return found.length === clips.length && found.every((row) => row.status === 'ready') ? found : undefined;
      });
      // A claim counts a try: one each means no instance ever began one another had.
      expect(rows.map((row) => row.attempts)).toEqual(new Array(clips.length).fill(1));
      for (const clip of clips) {
        const shown = (await phones[0].get(`/api/audio-clips/${clip}`)).body;
        expect(shown.renditions[0].status).toBe('ready');
        expect(shown.waveform).toHaveLength(100);
      }
    } finally {
      await second.close();
      await first.close();
    }
  });

  it('finds a ready clip whose rendition row a crash kept from being written, and makes it', async () => {
    const api = await startTestApp({ database: 'postgres', storage: 's3', env: { RENDITION_CONCURRENCY: '0' } });
    try {
      const phone = await api.phone('alice');
      const clipId = await uploadAndComplete(phone, wav(1, { noise: true }));
      // As if the instance died between the clip's change to ready and the insert of its rendition row.
      await api.dataSource.query('DELETE FROM renditions WHERE clip_id = $1', [clipId]);
      expect((await phone.get(`/api/audio-clips/${clipId}`)).body.renditions[0].status).toBe('pending');
      const worker = await startTestApp({
        database: 'postgres',
        storage: 's3',
        sameDeploymentAs: api,
        env: { RENDITION_CONCURRENCY: '1' },
      });
      try {
        const [row] = await until('the rendition to be made', 60_000, async () => {
          const rows = await renditionRows(api);
          return rows[0]?.status === 'ready' ? rows : undefined;
        });
        expect(row).toMatchObject({ clip_id: clipId, attempts: 1 });
      } finally {
        await worker.close();
      }
    } finally {
      await api.close();
    }
  });

  describe('an instance killed with SIGKILL in the middle of a job', () => {
    let api: TestApp;
    let cwd: string;
    const children: ChildApp[] = [];

    beforeAll(async () => {
      // This instance answers the phone and makes nothing; the workers are the child processes.
      api = await startTestApp({ database: 'postgres', storage: 's3', env: { RENDITION_CONCURRENCY: '0' } });
      cwd = await mkdtemp(join(tmpdir(), 'an-kill-'));
    });

    afterAll(async () => {
      for (const child of children) child.process.kill('SIGKILL');
      await api?.close();
      if (cwd) await rm(cwd, { recursive: true, force: true });
    });

    async function worker(): Promise<ChildApp> {
      const port = await freePort();
      const child = await startChildApp(
        {
          ...api.env,
          LOG_LEVEL: 'info',
          PORT: String(port),
          PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
          RENDITION_CONCURRENCY: '1',
          // The lease is the limit plus 10 s: the survivor takes the job up about 40 s after the claim.
          RENDITION_TIMEOUT_SECONDS: '30',
        },
        cwd,
      );
      children.push(child);
      return child;
    }

    it('leaves the job to the next instance, which makes it once', async () => {
      const phone = await api.phone('alice');
      // Ten minutes of voice-band noise: long enough to be cut in the middle.
      const clipId = await uploadAndComplete(phone, wav(600, { noise: true }));
      const doomed = await worker();
      await until('the job to be claimed', 30_000, async () => {
        const [row] = await renditionRows(api);
        return row?.claim_token ? row : undefined;
      });
      doomed.process.kill('SIGKILL');
      await doomed.exited;
      const [cut] = await renditionRows(api);
      expect(cut).toMatchObject({ status: 'pending', attempts: 1 });

      const survivor = await worker();
      const [made] = await until('the rendition to be made after the restart', 120_000, async () => {
        const rows = await renditionRows(api);
        return rows[0]?.status === 'pending' ? undefined : rows;
      });
      expect(made).toMatchObject({ clip_id: clipId, status: 'ready', attempts: 2, claim_token: null });
      const clip = (await phone.get(`/api/audio-clips/${clipId}`)).body;
      expect(clip.status).toBe('ready');
      expect(clip.renditions[0]).toMatchObject({ status: 'ready' });
      expect(Math.abs(clip.renditions[0].duration_ms - 600_000)).toBeLessThanOrEqual(50);
      // Made once: by the survivor, never by the killed one.
      const madeLines = (child: ChildApp) => child.lines.filter((line) => line.includes(`clip ${clipId} made`));
      expect(madeLines(doomed)).toEqual([]);
      expect(madeLines(survivor)).toHaveLength(1);
      expect((await phone.get(`/api/audio-clips/${clipId}/playback?format=m4a`)).status).toBe(200);
    });
  });
});
