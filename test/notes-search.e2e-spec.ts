import fc from 'fast-check';
import { DataSource } from 'typeorm';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions, MIGRATIONS } from '../src/database/database.options';
import {
  POSTGRES_SEARCH_SQL,
  SQLITE_HITS_SQL,
  SQLITE_SORT_AT_MOST,
  SQLITE_SORTED_HITS_SQL,
  SQLITE_WALKED_HITS_SQL,
  searchSqlite,
} from '../src/notes/search/notes-search.repository';
import { parseSearchQuery, toFtsQuery, toTsQuery } from '../src/notes/search/search-query';
import {
  collationCaseGaps,
  ownerSearchKey,
  postgresSearchFunctions,
  sqliteNoteTerms,
  SQLITE_PREFIX_INDEXES,
  SQLITE_TOKENIZER,
} from '../src/notes/search/search-sql';
import { textTerms } from '../src/notes/search/search-text';
import { createTestDatabase } from './harness/databases';
import type { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

jest.setTimeout(300_000);

/** Generous: an ordinary query takes milliseconds; this catches a pathological one. */
const BOUND_MS = 3_000;
const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 150);

/** Alice's notes, created in this order (so later ones have a newer updated_at). */
const ALICE_NOTES: [string, string][] = [
  ['Milk tea', 'bubble tea with tapioca'],
  ['Shopping list', 'milk, eggs and oat milk; recording of the store jingle'],
  ['Résumé draft', 'Update the CV before the Zürich interview'],
  ['Straße names', 'Hauptstraße and Bahnhofstrasse in ZURICH'],
  ['Привет мир', 'Заметка на русском: купить молоко'],
  ['会议记录', '我喜欢喝咖啡。明天去东京タワー'],
  ['Ελληνικά', 'Καλημέρα κόσμε, έλα στο σπίτι'],
  ['Recipes', 'Almond milk pancakes; no eggs today'],
  ['Edited note', 'originally about giraffes'],
  ['Deleted note', 'the platypus lives here'],
  ['Arabic', 'مرحبا بالعالم'],
  ['Hindi', 'नमस्ते दुनिया'],
  ['한국어 노트', '회의 메모'],
  ['Symbols', 'C++ & SQL: SELECT * FROM notes; DROP TABLE notes;--'],
  ['Øresund bridge', 'A trip to Łódź'],
];

/** Bob has the same words: never found by Alice. */
const BOB_NOTES: [string, string][] = [
  ['Shopping list', 'milk eggs oat milk platypus giraffes zebras resume zurich привет 咖啡'],
  ['Milk tea', 'recording'],
];

/** q → the titles Alice finds (as a set; the order has its own test). The same table on both databases. */
const CASES: [string, string[]][] = [
  ['milk', ['Milk tea', 'Shopping list', 'Recipes']],
  ['MILK', ['Milk tea', 'Shopping list', 'Recipes']],
  ['milk eggs', ['Shopping list', 'Recipes']],
  ['eggs milk', ['Shopping list', 'Recipes']],
  ['"oat milk"', ['Shopping list']],
  ['"milk oat"', []],
  ['"oat milk', ['Shopping list']],
  ['"unterminated milk', []],
  ['milk -almond', ['Milk tea', 'Shopping list']],
  ['milk -"almond milk"', ['Milk tea', 'Shopping list']],
  ['rec', ['Shopping list', 'Recipes']],
  ['mil', ['Milk tea', 'Shopping list', 'Recipes']],
  ['rec milk', []],
  ['milk rec', ['Shopping list', 'Recipes']],
  ['shopping jingle', ['Shopping list']],
  ['milk zebras', []],
  ['resume', ['Résumé draft']],
  ['RÉSUMÉ', ['Résumé draft']],
  ['zurich', ['Résumé draft', 'Straße names']],
  ['ZÜRICH', ['Résumé draft', 'Straße names']],
  ['strasse', ['Straße names']],
  ['STRASSE names', ['Straße names']],
  ['hauptstrasse', ['Straße names']],
  ['привет', ['Привет мир']],
  ['ПРИВЕТ', ['Привет мир']],
  ['молоко', ['Привет мир']],
  ['咖啡', ['会议记录']],
  ['会议', ['会议记录']],
  ['喜欢喝', ['会议记录']],
  ['东京', ['会议记录']],
  ['タワー', ['会议记录']],
  ['啡咖', []],
  ['καλημερα', ['Ελληνικά']],
  ['ελα', ['Ελληνικά']],
  ['ΕΛΛΗΝΙΚΑ', ['Ελληνικά']],
  ['مرحبا', ['Arabic']],
  ['नमस्ते', ['Hindi']],
  ['회의', ['한국어 노트']],
  ['oresund', ['Øresund bridge']],
  ['LODZ', ['Øresund bridge']],
  ['zebras', ['Edited note']],
  ['giraffes', []],
  ['platypus', []],
  ['select * from notes', ['Symbols']],
  ['drop table notes;--', ['Symbols']],
  ["' OR 1=1 --", []],
  ['c++', ['Symbols']],
  ["&|!():*'\\", []],
  ['-milk', []],
  ['', []],
  ['😀'.repeat(200), []],
  ['tea -bubble', []],
];

interface Item {
  id: string;
  title: string;
  body: string;
  updated_at: string;
  highlight?: { text: string; matches: { start: number; length: number }[] } | null;
}

async function search(phone: Phone, q: string, extra = ''): Promise<{ status: number; body: any }> {
  return phone.get(`/api/notes?q=${encodeURIComponent(q)}${extra}`);
}

async function searchAll(phone: Phone, q: string, limit: number): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | null = null;
  do {
    const page = await search(phone, q, `&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(page.status).toBe(200);
    items.push(...page.body.items);
    cursor = page.body.next_cursor;
  } while (cursor);
  return items;
}

describe.each(['sqlite', 'postgres'] as const)('search on %s', (database) => {
  let testApp: TestApp;
  let alice: Phone;
  let bob: Phone;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage: 'local' });
    alice = await testApp.phone('alice');
    bob = await testApp.phone('bob');
    for (const [title, body] of ALICE_NOTES) {
      const created = await alice.post('/api/notes', { title, body });
      expect(created.status).toBe(201);
      ids.set(title, created.body.id);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    for (const [title, body] of BOB_NOTES) await bob.post('/api/notes', { title, body });
    expect((await alice.patch(`/api/notes/${ids.get('Edited note')}`, { body: 'now about zebras' })).status).toBe(200);
    expect((await alice.delete(`/api/notes/${ids.get('Deleted note')}`)).status).toBe(204);
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it.each(CASES)('q=%j finds %j', async (q, titles) => {
    const answer = await search(alice, q);
    expect(answer.status).toBe(200);
    expect(answer.body.items.map((item: Item) => item.title).sort()).toEqual([...titles].sort());
  });

  it('ranks notes whose title matches every term first, then by updated_at, newest first', async () => {
    const answer = await search(alice, 'milk');
    expect(answer.body.items.map((item: Item) => item.title)).toEqual(['Milk tea', 'Recipes', 'Shopping list']);
    // An edit makes a note the newest of its group, not of the title group.
    await alice.patch(`/api/notes/${ids.get('Shopping list')}`, {
      body: 'milk, eggs and oat milk; recording of the store jingle.',
    });
    const after = await search(alice, 'milk');
    expect(after.body.items.map((item: Item) => item.title)).toEqual(['Milk tea', 'Shopping list', 'Recipes']);
  });

  it('never finds another owner’s notes, with the same words', async () => {
    const answer = await search(bob, 'milk');
    expect(answer.body.items.map((item: Item) => item.title).sort()).toEqual(['Milk tea', 'Shopping list']);
    for (const item of answer.body.items) expect([...ids.values()]).not.toContain(item.id);
    expect((await search(bob, 'platypus')).body.items).toHaveLength(1);
    expect((await search(alice, 'tapioca')).body.items).toHaveLength(1);
    expect((await search(bob, 'tapioca')).body.items).toHaveLength(0);
  });

  it('highlights the body around the first match, in UTF-16 offsets, null when only the title matched', async () => {
    const zurich = (await search(alice, 'zurich')).body.items.find((item: Item) => item.title === 'Résumé draft');
    expect(zurich.highlight.text).toBe('Update the CV before the Zürich interview');
    expect(zurich.highlight.matches).toEqual([{ start: 25, length: 6 }]);
    const draft = (await search(alice, 'draft')).body.items;
    expect(draft).toEqual([expect.objectContaining({ title: 'Résumé draft', highlight: null })]);
    const coffee = (await search(alice, '咖啡')).body.items[0];
    const { text, matches } = coffee.highlight;
    expect(matches.map((m: { start: number; length: number }) => text.slice(m.start, m.start + m.length))).toEqual([
      '咖啡',
    ]);
    const created = await alice.post('/api/notes', {
      title: 'Emoji',
      body: `🎙️👩🏽‍💻 ${'word '.repeat(60)}then the Ölmühle and more ${'filler '.repeat(60)}`,
    });
    const emoji = (await search(alice, 'olmuhle')).body.items[0];
    expect(emoji.id).toBe(created.body.id);
    const [match] = emoji.highlight.matches;
    expect(emoji.highlight.text.slice(match.start, match.start + match.length)).toBe('Ölmühle');
    expect(emoji.highlight.text.length).toBeLessThanOrEqual(200);
    expect(created.body.body).toContain(emoji.highlight.text);
    // Every highlight of a longer result list points at matching words.
    for (const item of (await search(alice, 'milk')).body.items as Item[]) {
      for (const m of item.highlight?.matches ?? []) {
        expect(textTerms(item.highlight!.text.slice(m.start, m.start + m.length))).toEqual(['milk']);
      }
    }
  });

  it('pages through the search order with the cursor: every match once, in the one-page order', async () => {
    for (let i = 0; i < 23; i += 1) {
      await alice.post(
        '/api/notes',
        i % 3 === 0 ? { title: `paging ${i}` } : { title: `note ${i}`, body: `paging ${i}` },
      );
    }
    const whole = (await search(alice, 'paging', '&limit=100')).body.items.map((item: Item) => item.id);
    expect(whole).toHaveLength(23);
    for (const limit of [1, 4, 7]) {
      expect((await searchAll(alice, 'paging', limit)).map((item) => item.id)).toEqual(whole);
    }
    const list = await alice.get('/api/notes?limit=1');
    const listCursor = list.body.next_cursor;
    const mixed = await search(alice, 'paging', `&cursor=${listCursor}`);
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.details).toEqual([{ field: 'cursor', message: expect.any(String) }]);
  });

  it.each([
    ['longer than 500 characters', 'a'.repeat(501)],
    ['more than 16 words', Array.from({ length: 17 }, (_, i) => `w${i}`).join(' ')],
    ['more than 64 terms', '漢字'.repeat(40)],
    ['a lone surrogate', 'milk\ud800'],
  ])('refuses a q %s with a 400 naming q', async (_name, q) => {
    const answer = await alice.get(`/api/notes?q=${q.includes('\ud800') ? 'milk%ED%A0%80' : encodeURIComponent(q)}`);
    if (q.includes('\ud800')) {
      // A lone surrogate cannot travel as UTF-8: whatever arrives is either refused or a query.
      expect([200, 400]).toContain(answer.status);
      if (answer.status === 400) expect(answer.body.error.details[0].field).toBe('q');
      return;
    }
    expect(answer.status).toBe(400);
    expect(answer.body.error.details).toEqual([{ field: 'q', message: expect.stringContaining('q must') }]);
  });

  it('answers any q with 200 or a 400 naming q, never a 5xx, within an ordinary query’s time', async () => {
    const special = fc.constantFrom(
      '"',
      '-',
      '*',
      ':',
      '&',
      '|',
      '!',
      '(',
      ')',
      "'",
      '\\',
      ' ',
      '%',
      '_',
      ';',
      '--',
      'ß',
      'é',
    );
    const text = fc.oneof(
      fc.string({ maxLength: 80, unit: 'grapheme' }),
      fc.string({ maxLength: 600, unit: 'binary' }),
      fc
        .array(fc.oneof(special, fc.constantFrom('milk', 'zurich', '咖啡', 'привет', 'rec', 'OR', 'NEAR', 'AND')), {
          maxLength: 30,
        })
        .map((parts) => parts.join('')),
    );
    await fc.assert(
      fc.asyncProperty(text, async (q) => {
        const started = Date.now();
        const encoded = encodeURIComponent(q.replace(/[\ud800-\udfff]/g, (unit) => unit)).replace(
          /%EF%BF%BD/g,
          '%ED%A0%80',
        );
        const answer = await alice.get(`/api/notes?q=${encoded}`);
        expect(Date.now() - started).toBeLessThan(BOUND_MS);
        if (answer.status !== 200) {
          expect(answer.status).toBe(400);
          expect(answer.body.error.details.map((detail: { field: string }) => detail.field)).toEqual(['q']);
        }
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  if (database === 'postgres') {
    it('folds and splits text exactly as the app does, whatever the text (Postgres runs SQL generated from its table)', async () => {
      const text = fc.oneof(
        fc.string({ maxLength: 60, unit: 'grapheme' }),
        // Postgres text holds neither NUL nor a lone surrogate.
        fc.string({ maxLength: 60, unit: 'binary' }).map((s) =>
          s
            .replace(/\p{Cs}/gu, '')
            .split('\u0000')
            .join(''),
        ),
        fc
          .array(
            fc.constantFrom(
              'Straße',
              'ÆON',
              'İstanbul',
              'ΣΟΦΟΣ',
              'Ǆemal',
              'ﬁnal',
              '東京タワー',
              '한국어',
              'x²',
              'e\u0301',
              '-',
              ' ',
            ),
            {
              maxLength: 8,
            },
          )
          .map((parts) => parts.join('')),
      );
      await fc.assert(
        fc.asyncProperty(text, async (s) => {
          const [row] = (await testApp.dataSource.query('SELECT notes_search_terms($1) AS terms', [s])) as {
            terms: string[];
          }[];
          expect(row.terms).toEqual(textTerms(s));
        }),
        { numRuns: FUZZ_RUNS * 2 },
      );
    });
  }

  if (database === 'sqlite') {
    it('FTS5 indexes exactly the terms the app hands it, whatever the text', async () => {
      const ds = testApp.dataSource;
      await ds.query(`CREATE VIRTUAL TABLE tokens_check USING fts5(x, tokenize="${SQLITE_TOKENIZER}")`);
      await ds.query("CREATE VIRTUAL TABLE tokens_check_vocab USING fts5vocab(tokens_check, 'instance')");
      const text = fc.oneof(
        fc.string({ maxLength: 60, unit: 'grapheme' }),
        fc.string({ maxLength: 60, unit: 'binary' }).map((s) => s.replace(/\p{Cs}/gu, '')),
      );
      try {
        await fc.assert(
          fc.asyncProperty(text, async (s) => {
            await ds.query('DELETE FROM tokens_check');
            await ds.query('INSERT INTO tokens_check (rowid, x) VALUES (1, ?)', [textTerms(s).join(' ')]);
            const rows = (await ds.query('SELECT term FROM tokens_check_vocab ORDER BY offset')) as { term: string }[];
            expect(rows.map((row) => row.term)).toEqual(textTerms(s));
          }),
          { numRuns: FUZZ_RUNS * 2 },
        );
      } finally {
        await ds.query('DROP TABLE tokens_check_vocab');
        await ds.query('DROP TABLE tokens_check');
      }
    });
  }

  if (database === 'postgres') {
    it.each([['und-x-icu'], ['no locale-free collation']] as const)(
      'folds like the app with the functions made for a Postgres with %s',
      async (variant) => {
        const collation = variant === 'und-x-icu' ? variant : null;
        const [{ present }] = (await testApp.dataSource.query(
          "SELECT count(*)::int > 0 AS present FROM pg_collation WHERE collname = 'und-x-icu'",
        )) as { present: boolean }[];
        if (collation && !present) return; // a Postgres built without ICU: the built-in collation is tested above
        const runner = testApp.dataSource.createQueryRunner();
        const schema = `search_${collation ? 'icu' : 'table'}`;
        try {
          await runner.query(`CREATE SCHEMA ${schema}`);
          await runner.query(`SET search_path = ${schema}, public`);
          const gaps = collation
            ? await collationCaseGaps((sql, parameters) => runner.query(sql, parameters), collation)
            : {};
          for (const statement of postgresSearchFunctions(collation, gaps)) await runner.query(statement);
          await fc.assert(
            fc.asyncProperty(
              fc.oneof(
                fc.string({ maxLength: 40, unit: 'grapheme' }),
                fc.constantFrom('Straße ÆON İstanbul ΣΟΦΟΣ Ǆemal ﬁnal 東京タワー 한국어 x² Привет Ølmühle'),
              ),
              async (text) => {
                const [row] = (await runner.query(`SELECT ${schema}.notes_search_terms($1) AS terms`, [text])) as {
                  terms: string[];
                }[];
                expect(row.terms).toEqual(textTerms(text));
              },
            ),
            { numRuns: FUZZ_RUNS },
          );
        } finally {
          await runner.query('RESET search_path');
          await runner.query(`DROP SCHEMA ${schema} CASCADE`);
          await runner.release();
        }
      },
    );
  }

  it('EXPLAIN: a word and a prefix query use the full-text index', async () => {
    const ds = testApp.dataSource;
    // Alice has many notes, few of them about Zürich: the index, not a walk through her notes, finds them.
    if (database === 'postgres') {
      await ds.query(`INSERT INTO notes (id, owner_id, title, body, created_at, updated_at)
        SELECT gen_random_uuid()::text, CASE WHEN i % 2 = 0 THEN 'alice' ELSE 'owner-' || (i % 50) END,
               'filler ' || i, 'common words ' || md5(i::text), '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
        FROM generate_series(1, 5000) AS i`);
      await ds.query('ANALYZE');
    } else {
      await ds.query(`WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 3000)
        INSERT INTO notes (id, owner_id, title, body, created_at, updated_at)
        SELECT printf('00000000-0000-4000-8000-%012d', n), 'alice', 'filler ' || n, 'common words ' || hex(randomblob(8)), '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000' FROM i`);
      await ds.query('ANALYZE');
    }
    for (const q of ['zurich', 'zur']) {
      const query = parseSearchQuery(q);
      if (database === 'postgres') {
        // A table this small is cheaper to scan; with scans priced out, the plan shows which index the query can use.
        const runner = ds.createQueryRunner();
        await runner.startTransaction();
        await runner.query('SET LOCAL enable_seqscan = off');
        const plan = (
          (await runner.query(`EXPLAIN ${POSTGRES_SEARCH_SQL.replace('/*cursor*/', '')}`, [
            'alice',
            toTsQuery(query),
            toTsQuery(query, true),
            21,
          ])) as { 'QUERY PLAN': string }[]
        )
          .map((row) => row['QUERY PLAN'])
          .join('\n');
        await runner.rollbackTransaction();
        await runner.release();
        expect(plan).toMatch(/Bitmap Index Scan on idx_note_search_terms/);
        expect(plan).not.toMatch(/Seq Scan on note_search/);
      } else {
        const planOf = async (sql: string, params: unknown[]) =>
          ((await ds.query(`EXPLAIN QUERY PLAN ${sql}`, params)) as { detail: string }[])
            .map((row) => row.detail)
            .join('\n');
        // The hits come from the full-text index, never from a walk through the notes.
        const expression = toFtsQuery(query, ownerSearchKey('alice'));
        for (const titleOnly of [false, true]) {
          const hits = await planOf(SQLITE_HITS_SQL, [toFtsQuery(query, ownerSearchKey('alice'), titleOnly), 501]);
          expect(hits).toMatch(/SCAN notes_search VIRTUAL TABLE INDEX \d+:M/);
          expect(hits).not.toMatch(/\bnotes\b(?!_search)/);
        }
        // Few hits: each read by its rowid, then sorted.
        for (const cursor of [false, true]) {
          const extra = cursor ? ['2026-01-01 00:00:00.000', 'x'] : [];
          const sorted = await planOf(SQLITE_SORTED_HITS_SQL(cursor), ['[1,2]', 'alice', ...extra, 21]);
          expect(sorted).toMatch(/SEARCH n USING INTEGER PRIMARY KEY \(rowid=\?\)/);
          expect(sorted).not.toMatch(/SCAN n\b|USING INDEX idx_notes_owner/);
          // Many hits: the owner's notes newest first, in the index's order (no sort), stopping at the page.
          const walked = await planOf(SQLITE_WALKED_HITS_SQL(cursor), ['alice', expression, ...extra, 21]);
          expect(walked).toMatch(/SEARCH n USING INDEX idx_notes_owner_updated \(owner_id=\?/);
          expect(walked).toMatch(/SCAN notes_search VIRTUAL TABLE INDEX \d+:M/);
          expect(walked).not.toMatch(/TEMP B-TREE FOR ORDER BY|SCAN n\b/);
        }
      }
    }
  });

  it(`pages through a query with more than ${SQLITE_SORT_AT_MOST} hits in order, each note once (the walked half)`, async () => {
    // 3,000 of Alice's notes say "common" (the EXPLAIN test above wrote them on both databases); a few
    // have it in the title, so both halves take part, and the rest half walks her notes on SQLite.
    const ds = testApp.dataSource;
    const param = (n: number) => (database === 'postgres' ? `$${n}` : '?');
    const filler = (await ds.query(
      `SELECT id, title FROM notes WHERE owner_id = ${param(1)} AND body LIKE ${param(2)}`,
      ['alice', 'common words%'],
    )) as { id: string; title: string }[];
    expect(filler.length).toBeGreaterThan(SQLITE_SORT_AT_MOST);
    const inTitle = filler.slice(0, 3).map((row) => row.id);
    for (const id of inTitle)
      await ds.query(`UPDATE notes SET title = ${param(1)} WHERE id = ${param(2)}`, ['common title', id]);
    const rows = (await ds.query(
      `SELECT id, updated_at FROM notes WHERE owner_id = ${param(1)} AND body LIKE ${param(2)}`,
      ['alice', 'common words%'],
    )) as { id: string; updated_at: string | Date }[];
    const time = (value: string | Date) => (value instanceof Date ? value.toISOString() : value);
    const byRecency = (a: { id: string; updated_at: string | Date }, b: { id: string; updated_at: string | Date }) =>
      time(b.updated_at).localeCompare(time(a.updated_at)) || b.id.localeCompare(a.id);
    const expected = [
      ...rows.filter((row) => inTitle.includes(row.id)).sort(byRecency),
      ...rows.filter((row) => !inTitle.includes(row.id)).sort(byRecency),
    ]
      .slice(0, 250)
      .map((row) => row.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    while (seen.length < 250) {
      const page = await alice.get(
        `/api/notes?q=common&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(page.status).toBe(200);
      seen.push(...(page.body.items as { id: string }[]).map((item) => item.id));
      cursor = page.body.next_cursor as string | null;
      expect(cursor).not.toBeNull();
    }
    expect(seen).toEqual(expected);
  });

  // Owner keys are 48 bits of a hash: two owners could share one. Their terms then share FTS5 lists, and
  // only the owner filter of the reads keeps them apart; this makes Bob's note carry Alice's key.
  if (database === 'sqlite') {
    it('never finds another owner’s note even when its terms carry the asker’s key (a key collision)', async () => {
      const ds = testApp.dataSource;
      const title = 'common collision';
      const body = 'common words collision, newest of all';
      const created = await bob.post('/api/notes', { title, body });
      expect(created.status).toBe(201);
      const [{ rowid }] = (await ds.query('SELECT rowid FROM notes WHERE id = ?', [created.body.id])) as {
        rowid: number;
      }[];
      await ds.query('DELETE FROM notes_search WHERE rowid = ?', [rowid]);
      await ds.query('INSERT INTO notes_search (rowid, terms) VALUES (?, ?)', [
        rowid,
        sqliteNoteTerms('alice', title, body),
      ]);
      const hits = (await ds.query(SQLITE_HITS_SQL, [
        toFtsQuery(parseSearchQuery('collision'), ownerSearchKey('alice')),
        501,
      ])) as {
        hits: number;
      }[];
      expect(hits[0].hits).toBe(1); // FTS5 does give it to Alice's query…
      // …but neither the sorted read (one hit) nor the walk through her notes (over 500 "common") keeps it.
      for (const q of ['collision', 'common', 'common collision']) {
        const answer = await search(alice, q);
        expect(answer.status).toBe(200);
        expect(answer.body.items.map((item: Item) => item.id)).not.toContain(created.body.id);
      }
      expect((await search(bob, 'collision')).body.items).toEqual([]);
      expect((await bob.delete(`/api/notes/${created.body.id}`)).status).toBe(204);
    });
  }
});

describe.each(['sqlite', 'postgres'] as const)('the search index after all migrations on %s', (kind) => {
  it('indexes notes that existed before, and the database keeps it in step on every later write', async () => {
    const database = await createTestDatabase(kind);
    const options = dataSourceOptions(loadAppConfig({ DATABASE_URL: database.url }).database);
    const mine = MIGRATIONS.findIndex((migration) => migration.name === 'NoteSearch1765200000000');
    const p = (sql: string) =>
      kind === 'postgres'
        ? sql.replace(
            /\?/g,
            (
              (n) => () =>
                `$${++n}`
            )(0),
          )
        : sql;
    const now = kind === 'postgres' ? new Date() : new Date().toISOString().replace('T', ' ').replace('Z', '');
    const insert = (ds: DataSource, id: string, title: string, body: string, owner = 'alice') =>
      ds.query(p('INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)'), [
        id,
        owner,
        title,
        body,
        now,
        now,
      ]);
    try {
      const before = await new DataSource({
        ...options,
        migrations: MIGRATIONS.slice(0, mine),
        migrationsRun: false,
        logging: false,
      }).initialize();
      await before.runMigrations();
      await insert(before, '00000000-0000-4000-8000-000000000001', 'Old Zürich note', 'written before search');
      // Words in both title and body, none at all, CJK pairs, another owner: all indexed by the migrations.
      await insert(before, '00000000-0000-4000-8000-000000000003', 'Milk milk MILK', 'milk, then oat milk');
      await insert(before, '00000000-0000-4000-8000-000000000004', '', '');
      await insert(before, '00000000-0000-4000-8000-000000000005', '東京タワー', 'コーヒー 咖啡店 Straße');
      await insert(before, '00000000-0000-4000-8000-000000000006', 'Old milk note', 'of another owner', 'bob');
      await before.destroy();

      // Every migration, also those after this one (a rebuilt notes table would lose the triggers).
      const after = await new DataSource({ ...options, migrationsRun: false, logging: false }).initialize();
      await after.runMigrations();
      if (kind === 'sqlite') {
        // Search as you type: FTS5 answers 2- and 3-character prefixes (after the owner key) from prefix indexes.
        const [{ sql }] = (await after.query("SELECT sql FROM sqlite_master WHERE name = 'notes_search'")) as {
          sql: string;
        }[];
        expect(sql).toContain(`prefix='${SQLITE_PREFIX_INDEXES}'`);
      }
      const found = async (q: string, owner = 'alice'): Promise<string[]> => {
        const query = parseSearchQuery(q);
        const rows = (
          kind === 'postgres'
            ? await after.query(POSTGRES_SEARCH_SQL.replace('/*cursor*/', ''), [
                owner,
                toTsQuery(query),
                toTsQuery(query, true),
                50,
              ])
            : await searchSqlite((sql, params) => after.query(sql, params), owner, query, 50)
        ) as { id: string }[];
        return rows.map((row) => row.id).sort();
      };
      expect(await found('zurich')).toEqual(['00000000-0000-4000-8000-000000000001']);
      expect(await found('"oat milk"')).toEqual(['00000000-0000-4000-8000-000000000003']);
      expect(await found('milk')).toEqual(['00000000-0000-4000-8000-000000000003']);
      expect(await found('milk', 'bob')).toEqual(['00000000-0000-4000-8000-000000000006']);
      expect(await found('咖啡 strasse')).toEqual(['00000000-0000-4000-8000-000000000005']);
      expect(await found('東京')).toEqual(['00000000-0000-4000-8000-000000000005']);
      await insert(after, '00000000-0000-4000-8000-000000000002', 'New note', 'about zurich too');
      expect(await found('zurich')).toEqual([
        '00000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000002',
      ]);
      await after.query(p('UPDATE notes SET body = ? WHERE id = ?'), [
        'now about Basel',
        '00000000-0000-4000-8000-000000000002',
      ]);
      expect(await found('zurich')).toEqual(['00000000-0000-4000-8000-000000000001']);
      expect(await found('basel')).toEqual(['00000000-0000-4000-8000-000000000002']);
      // Terms are keyed by owner: a note that changes hands is found by its new owner only.
      await after.query(p('UPDATE notes SET owner_id = ? WHERE id = ?'), [
        'bob',
        '00000000-0000-4000-8000-000000000002',
      ]);
      expect(await found('basel')).toEqual([]);
      expect(await found('basel', 'bob')).toEqual(['00000000-0000-4000-8000-000000000002']);
      await after.query(p('DELETE FROM notes WHERE id = ?'), ['00000000-0000-4000-8000-000000000001']);
      expect(await found('zurich')).toEqual([]);
      await after.destroy();
    } finally {
      await database.drop();
    }
  });
});
