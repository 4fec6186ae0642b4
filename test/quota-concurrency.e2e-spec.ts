import { startTestApp, type DatabaseKind, type TestApp } from './support/test-app';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
const clip = (bytes: number) => ({ mime_type: 'audio/m4a', bytes, duration_ms: 1000 });

async function heldBy(testApp: TestApp, owner: string): Promise<{ bytes: number; pending: number }> {
  const [row] = await testApp.dataSource.query(
    testApp.env.DATABASE_URL.startsWith('postgres')
      ? "SELECT COALESCE(SUM(bytes), 0) AS bytes, COUNT(*) AS pending FROM audio_clips WHERE owner_id = $1 AND status = 'pending'"
      : "SELECT COALESCE(SUM(bytes), 0) AS bytes, COUNT(*) AS pending FROM audio_clips WHERE owner_id = ? AND status = 'pending'",
    [owner],
  );
  return { bytes: Number(row.bytes), pending: Number(row.pending) };
}

describe.each<DatabaseKind>(['sqlite', 'postgres'])('limits under concurrent creates, on %s', (database) => {
  describe('the storage quota', () => {
    let testApp: TestApp;

    beforeAll(async () => {
      testApp = await startTestApp({ database, storage: 'local', env: { USER_QUOTA_BYTES: '1000' } });
    });

    afterAll(async () => {
      await testApp?.close();
    });

    it('lets exactly as many racing creates through as fit, round after round', async () => {
      for (let round = 0; round < 5; round += 1) {
        const phone = await testApp.phone(`racer-${round}`);
        const answers = await Promise.all(Array.from({ length: 10 }, () => phone.post('/api/audio-clips', clip(300))));
        const statuses = answers.map((answer) => answer.status).sort();
        expect(statuses).toEqual([201, 201, 201, 413, 413, 413, 413, 413, 413, 413]);
        expect((await heldBy(testApp, `racer-${round}`)).bytes).toBe(900);
      }
    });

    it('with mixed sizes: never over the quota, and every refused clip really did not fit', async () => {
      const phone = await testApp.phone('mixed');
      const sizes = [600, 500, 400, 300, 250, 200, 150, 100, 50, 25];
      const answers = await Promise.all(sizes.map((size) => phone.post('/api/audio-clips', clip(size))));
      const held = (await heldBy(testApp, 'mixed')).bytes;
      expect(held).toBeLessThanOrEqual(1000);
      expect(held).toBe(sizes.filter((_size, index) => answers[index].status === 201).reduce((a, b) => a + b, 0));
      for (const [index, answer] of answers.entries()) {
        expect([201, 413]).toContain(answer.status);
        if (answer.status === 413) expect(held + sizes[index]).toBeGreaterThan(1000);
      }
    });
  });

  describe('the cap on pending uploads, with no quota configured', () => {
    let testApp: TestApp;

    beforeAll(async () => {
      // The defaults: 1 GiB and 100 uploads pending per user, 100 MiB per upload.
      testApp = await startTestApp({ database, storage: 'local' });
    });

    afterAll(async () => {
      await testApp?.close();
    });

    it('60 racing 100 MiB reservations: exactly the 10 that fit in 1 GiB succeed', async () => {
      const phone = await testApp.phone('hoarder');
      const answers = await Promise.all(
        Array.from({ length: 60 }, () => phone.post('/api/audio-clips', clip(100 * MiB))),
      );
      expect(answers.filter((answer) => answer.status === 201)).toHaveLength(10);
      const refused = answers.filter((answer) => answer.status !== 201);
      expect(refused).toHaveLength(50);
      for (const answer of refused) {
        expect(answer.status).toBe(409);
        expect(answer.body.error).toMatchObject({
          code: 'TOO_MANY_PENDING_UPLOADS',
          max_pending_upload_bytes: 1024 * MiB,
          max_pending_uploads: 100,
        });
      }
      expect(await heldBy(testApp, 'hoarder')).toEqual({ bytes: 1000 * MiB, pending: 10 });

      // Deleting a pending upload frees its room; another user was never affected.
      const first = answers.find((answer) => answer.status === 201)!;
      expect((await phone.delete(`/api/audio-clips/${first.body.clip.id}`)).status).toBe(204);
      expect((await phone.post('/api/audio-clips', clip(100 * MiB))).status).toBe(201);
      expect((await (await testApp.phone('neighbour')).post('/api/audio-clips', clip(100 * MiB))).status).toBe(201);
    });
  });

  describe('the cap on the number of pending uploads', () => {
    let testApp: TestApp;

    beforeAll(async () => {
      testApp = await startTestApp({ database, storage: 'local', env: { MAX_PENDING_UPLOADS: '5' } });
    });

    afterAll(async () => {
      await testApp?.close();
    });

    it('20 racing small creates: exactly 5 succeed', async () => {
      const phone = await testApp.phone('many');
      const answers = await Promise.all(Array.from({ length: 20 }, () => phone.post('/api/audio-clips', clip(10))));
      expect(answers.filter((answer) => answer.status === 201)).toHaveLength(5);
      expect(answers.filter((answer) => answer.status === 409)).toHaveLength(15);
      expect(await heldBy(testApp, 'many')).toEqual({ bytes: 50, pending: 5 });
    });
  });
});

describe.each<DatabaseKind>(['sqlite', 'postgres'])('dead upload URLs racing creates, on %s + S3', (database) => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage: 's3', env: { USER_QUOTA_BYTES: '1000' } });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('deleting three clips while ten creates race: their URLs keep counting, so no create gets through until they have run out', async () => {
    for (let round = 0; round < 3; round += 1) {
      const owner = `dead-racer-${round}`;
      const phone = await testApp.phone(owner);
      const kept = [];
      for (let i = 0; i < 3; i += 1) kept.push((await phone.post('/api/audio-clips', clip(300))).body.clip.id);
      const [deletes, creates] = await Promise.all([
        Promise.all(kept.map((id) => phone.delete(`/api/audio-clips/${id}`))),
        Promise.all(Array.from({ length: 10 }, () => phone.post('/api/audio-clips', clip(300)))),
      ]);
      expect(deletes.map((answer) => answer.status)).toEqual([204, 204, 204]);
      // 900 bytes stay counted, pending or behind a live URL, at every moment of the race.
      expect(creates.map((answer) => answer.status)).toEqual(Array(10).fill(413));
      expect((await heldBy(testApp, owner)).bytes).toBe(0);
    }

    // Once the URLs have run out and the janitor has deleted what they could write, exactly three fit.
    await testApp.janitor.runOnce(new Date(Date.now() + 2 * 60 * 60_000));
    const phone = await testApp.phone('dead-racer-0');
    const answers = await Promise.all(Array.from({ length: 10 }, () => phone.post('/api/audio-clips', clip(300))));
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 201, 201, 413, 413, 413, 413, 413, 413, 413]);
  });
});
