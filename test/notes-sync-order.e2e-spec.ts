import { randomUUID } from 'node:crypto';
import type { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

// Writers whose commits are held back for a few hundred milliseconds each, on a loaded machine.
jest.setTimeout(240_000);

const WRITERS = 4;
const READERS = 3;
const CREATES_PER_WRITER = 12;
const EDITS_PER_WRITER = 8;

/**
 * Makes every transaction that wrote a note titled `slow…` wait at COMMIT: a deferred constraint trigger
 * runs after the transaction's statements (its change numbers already taken) and before it commits. A
 * writer that got its number first then commits after writers that got theirs later.
 */
async function delayCommitsOfSlowNotes(testApp: TestApp): Promise<void> {
  await testApp.dataSource.query(`
    CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.title LIKE 'slow%' THEN PERFORM pg_sleep(0.1 + random() * 0.2); END IF;
      RETURN NULL;
    END $$`);
  await testApp.dataSource.query(`
    CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT OR UPDATE ON notes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()`);
}

/**
 * The classic change log, for the control run: numbers from a global sequence taken inside the writing
 * transaction, and readers that read up to the highest number taken (committed or not). Replaces the
 * per-owner counter row (and its lock) of src/sync/sync-triggers.ts in this test's database only.
 */
async function replaceCounterWithSequence(testApp: TestApp): Promise<void> {
  const queries = [
    'CREATE SEQUENCE test_unsafe_seq START 1000',
    'ALTER TABLE sync_owners RENAME TO sync_owners_real',
    `CREATE VIEW sync_owners AS
       SELECT owner_id, (SELECT last_value FROM test_unsafe_seq) AS seq, epoch, purged_seq FROM sync_owners_real`,
    `CREATE OR REPLACE FUNCTION sync_next_seq(owner varchar) RETURNS bigint LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO sync_owners_real (owner_id, seq, epoch, purged_seq) VALUES (owner, 0, md5(owner), 0)
         ON CONFLICT (owner_id) DO NOTHING;
       RETURN nextval('test_unsafe_seq');
     END $$`,
  ];
  for (const query of queries) await testApp.dataSource.query(query);
}

interface Figures {
  writers: number;
  readers: number;
  changes: number;
  pulls: number;
  /** Notes whose final state some reader's replica does not have, summed over the readers. */
  misses: number;
}

async function run(testApp: TestApp): Promise<Figures> {
  const owner = `order-${randomUUID()}`;
  const phones: Phone[] = await Promise.all(Array.from({ length: WRITERS + READERS }, () => testApp.phone(owner)));
  let writing = true;
  let changes = 0;
  let pulls = 0;

  const writer = async (phone: Phone, w: number) => {
    const mine: string[] = [];
    for (let n = 0; n < CREATES_PER_WRITER + EDITS_PER_WRITER; n += 1) {
      const slow = (n + w) % 2 === 0 ? 'slow' : 'fast';
      if (n < CREATES_PER_WRITER) {
        const created = await phone.post('/api/notes', { title: `${slow} ${w}.${n}` });
        expect(created.status).toBe(201);
        mine.push(created.body.id);
      } else {
        const edited = await phone.patch(`/api/notes/${mine[n % mine.length]}`, { title: `${slow} ${w}.${n} edited` });
        expect(edited.status).toBe(200);
      }
      changes += 1;
    }
  };

  const reader = async (phone: Phone) => {
    const replica = new Map<string, number>();
    let cursor: string | undefined;
    const pull = async () => {
      const query = cursor === undefined ? '' : `?cursor=${cursor}`;
      const page = await phone.get(`/api/sync/changes${query}`);
      expect(page.status).toBe(200);
      pulls += 1;
      for (const change of page.body.changes) {
        if (change.deleted) replica.delete(change.id);
        else replica.set(change.id, change.version);
      }
      cursor = page.body.next_cursor;
      return page.body.has_more as boolean;
    };
    while (writing) await pull();
    while (await pull());
    return replica;
  };

  // The owner's first change, before the readers start.
  expect((await phones[0].post('/api/notes', { title: 'fast first' })).status).toBe(201);
  changes += 1;
  const readers = phones.slice(WRITERS).map((phone) => reader(phone));
  await Promise.all(phones.slice(0, WRITERS).map((phone, w) => writer(phone, w)));
  writing = false;
  const replicas = await Promise.all(readers);

  const final = new Map(
    (
      (await testApp.dataSource.query('SELECT id, version FROM notes WHERE owner_id = $1', [owner])) as {
        id: string;
        version: number;
      }[]
    ).map((row) => [row.id, row.version]),
  );
  expect(final.size).toBe(WRITERS * CREATES_PER_WRITER + 1);
  let misses = 0;
  for (const replica of replicas) {
    for (const [id, version] of final) if (replica.get(id) !== version) misses += 1;
    for (const id of replica.keys()) if (!final.has(id)) misses += 1;
  }
  return { writers: WRITERS, readers: READERS, changes, pulls, misses };
}

describe('the change feed when transactions commit out of order, on postgres', () => {
  const figures: Record<string, Figures> = {};

  afterAll(() => {
    if (process.env.PRINT_SYNC_FIGURES === '1') console.log(JSON.stringify(figures, null, 2));
  });

  it('misses nothing: every reader ends with the final state', async () => {
    const testApp = await startTestApp({ database: 'postgres', storage: 'local' });
    try {
      await delayCommitsOfSlowNotes(testApp);
      figures.withCounterRow = await run(testApp);
      expect(figures.withCounterRow.misses).toBe(0);
    } finally {
      await testApp.close();
    }
  });

  it('never deadlocks a clip created on a note against the note’s deletion (both take the owner’s counter)', async () => {
    const testApp = await startTestApp({ database: 'postgres', storage: 'local' });
    try {
      const phone = await testApp.phone(`race-${randomUUID()}`);
      const statuses = new Set<number>();
      for (let round = 0; round < 15; round += 1) {
        const note = (await phone.post('/api/notes', { title: 'raced' })).body.id as string;
        const clip = { note_id: note, mime_type: 'audio/wav', bytes: 10, duration_ms: 1 };
        const answers = await Promise.all([
          ...Array.from({ length: 4 }, () => phone.post('/api/audio-clips', clip)),
          phone.delete(`/api/notes/${note}`),
          phone.patch(`/api/notes/${note}`, { body: `round ${round}` }),
        ]);
        for (const answer of answers) statuses.add(answer.status);
        expect((await phone.get(`/api/notes/${note}/audio-clips`)).status).toBe(410);
      }
      expect([...statuses].filter((status) => ![200, 201, 204, 404, 410].includes(status))).toEqual([]);
      // Every clip created on a deleted note went with it, tombstone and all.
      const left = (await testApp.dataSource.query(
        'SELECT COUNT(*)::int AS count FROM audio_clips clip WHERE NOT EXISTS (SELECT 1 FROM notes WHERE notes.id = clip.note_id)',
      )) as { count: number }[];
      expect(left[0].count).toBe(0);
    } finally {
      await testApp.close();
    }
  });

  it('is a test that can fail: with a sequence instead of the counter row, readers miss changes', async () => {
    const testApp = await startTestApp({ database: 'postgres', storage: 'local' });
    try {
      await replaceCounterWithSequence(testApp);
      await delayCommitsOfSlowNotes(testApp);
      figures.withSequence = await run(testApp);
      expect(figures.withSequence.misses).toBeGreaterThan(0);
    } finally {
      await testApp.close();
    }
  });
});
