import 'reflect-metadata';
import { AppError } from './app-error';
import {
  decodeCursor,
  DEFAULT_PAGE_SIZE,
  encodeCursor,
  PageCursor,
  PageQueryDto,
  toPage,
  toPageRequest,
} from './pagination';
import { createValidationPipe } from './validation';

const ID = '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b';

function expectBadCursor(raw: string): void {
  let caught: unknown;
  try {
    decodeCursor(raw);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe('VALIDATION_FAILED');
  expect((caught as AppError).status).toBe(400);
  expect((caught as AppError).details).toEqual([{ field: 'cursor', message: expect.any(String) }]);
}

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('cursor encoding', () => {
  it.each<PageCursor>([
    { createdAt: new Date('2026-11-27T09:30:00.000Z'), id: ID },
    { createdAt: new Date('2026-11-27T09:30:00.123Z'), id: ID },
    { createdAt: new Date(0), id: '00000000-0000-4000-8000-000000000000' },
    { createdAt: new Date('1999-12-31T23:59:59.999Z'), id: 'x' },
  ])('round-trips %o', (cursor) => {
    const encoded = encodeCursor(cursor);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    const decoded = decodeCursor(encoded);
    expect(decoded.id).toBe(cursor.id);
    expect(decoded.createdAt.getTime()).toBe(cursor.createdAt.getTime());
  });

  it('keeps millisecond precision', () => {
    const a = encodeCursor({ createdAt: new Date('2026-11-27T09:30:00.001Z'), id: ID });
    const b = encodeCursor({ createdAt: new Date('2026-11-27T09:30:00.002Z'), id: ID });
    expect(a).not.toBe(b);
    expect(decodeCursor(a).createdAt.toISOString()).toBe('2026-11-27T09:30:00.001Z');
  });

  it.each([
    ['empty', ''],
    ['not base64 JSON', 'garbage'],
    ['punctuation', '!!!!'],
    ['base64 of plain text', b64('hello world')],
    ['JSON null', b64(null)],
    ['JSON number', b64(42)],
    ['JSON object', b64({ createdAt: '2026-11-27T09:30:00.000Z', id: ID })],
    ['empty array', b64([])],
    ['one element', b64(['2026-11-27T09:30:00.000Z'])],
    ['reversed', b64([ID, '2026-11-27T09:30:00.000Z'])],
    ['bad date', b64(['not a date', ID])],
    ['numeric date', b64([1764235800000, ID])],
    ['numeric id', b64(['2026-11-27T09:30:00.000Z', 42])],
    ['null id', b64(['2026-11-27T09:30:00.000Z', null])],
    ['id longer than a uuid', b64(['2026-11-27T09:30:00.000Z', `${ID}-and-more`])],
    ['truncated', encodeCursor({ createdAt: new Date(), id: ID }).slice(0, 10)],
  ])('rejects a %s cursor with VALIDATION_FAILED on field cursor', (_name, raw) => {
    expectBadCursor(raw);
  });
});

describe('cursor decoding quirks', () => {
  // A JSON string is iterable: without the array check "12" would decode as a date and an id.
  it.each([b64('"12"'), b64('"9x"')])('rejects %j, a cursor that is a JSON string', (raw) => {
    expectBadCursor(raw);
  });
});

describe('toPageRequest', () => {
  it('defaults to 20 items and no cursor', () => {
    expect(DEFAULT_PAGE_SIZE).toBe(20);
    expect(toPageRequest({})).toEqual({ limit: 20, after: undefined });
  });

  it('decodes the cursor', () => {
    const createdAt = new Date('2026-11-27T09:30:00.000Z');
    expect(toPageRequest({ limit: 5, cursor: encodeCursor({ createdAt, id: ID }) })).toEqual({
      limit: 5,
      after: { createdAt, id: ID },
    });
  });

  it('refuses a garbage cursor', () => {
    expect(() => toPageRequest({ cursor: 'garbage' })).toThrow(AppError);
  });
});

describe('toPage', () => {
  const rows = Array.from({ length: 6 }, (_, index) => ({
    id: `id-${index}`,
    createdAt: new Date(Date.UTC(2026, 10, 27, 12, 0, 0) - index * 60_000),
  }));

  it('with limit + 1 rows returns limit items and a cursor at the last item returned', () => {
    const page = toPage(rows.slice(0, 4), 3);
    expect(page.items).toEqual(rows.slice(0, 3));
    expect(page.nextCursor).not.toBeNull();
    expect(decodeCursor(page.nextCursor as string)).toEqual({ id: 'id-2', createdAt: rows[2].createdAt });
  });

  it.each([
    ['exactly limit rows', 3, 3],
    ['fewer rows than the limit', 2, 3],
    ['no rows', 0, 3],
  ])('with %s returns them all and no cursor', (_name, count, limit) => {
    const page = toPage(rows.slice(0, count), limit);
    expect(page.items).toEqual(rows.slice(0, count));
    expect(page.nextCursor).toBeNull();
  });

  it('walks a list page by page without skipping or repeating', () => {
    const seen: string[] = [];
    let after: PageCursor | undefined;
    for (let guard = 0; guard < 10; guard += 1) {
      // Emulates the repositories: rows strictly after the cursor, newest first, limit + 1 of them.
      const remaining = rows.filter(
        (row) =>
          !after ||
          row.createdAt < after.createdAt ||
          (row.createdAt.getTime() === after.createdAt.getTime() && row.id < after.id),
      );
      const page = toPage(remaining.slice(0, 3), 2);
      seen.push(...page.items.map((row) => row.id));
      if (page.nextCursor === null) break;
      after = decodeCursor(page.nextCursor);
    }
    expect(seen).toEqual(rows.map((row) => row.id));
  });
});

describe('PageQueryDto through the validation pipe', () => {
  const run = (query: Record<string, unknown>) =>
    createValidationPipe().transform(query, { type: 'query', metatype: PageQueryDto });

  it.each<[Record<string, unknown>, { limit?: number; cursor?: string }]>([
    [{}, {}],
    [{ limit: '1' }, { limit: 1 }],
    [{ limit: '20' }, { limit: 20 }],
    [{ limit: '100' }, { limit: 100 }],
    [{ limit: '007' }, { limit: 7 }],
    [{ cursor: 'abc' }, { cursor: 'abc' }],
  ])('accepts %j', async (query, expected) => {
    const result = await run(query);
    expect(result).toBeInstanceOf(PageQueryDto);
    expect({ ...(result as object) }).toEqual(expected);
  });

  it.each<[Record<string, unknown>, string]>([
    [{ limit: '0' }, 'limit'],
    [{ limit: '101' }, 'limit'],
    [{ limit: '-1' }, 'limit'],
    [{ limit: '5.5' }, 'limit'],
    [{ limit: 'ten' }, 'limit'],
    [{ limit: '0x10' }, 'limit'],
    [{ limit: '1e1' }, 'limit'],
    [{ limit: ' 5' }, 'limit'],
    [{ limit: '' }, 'limit'],
    [{ limit: ['5', '6'] }, 'limit'],
    [{ cursor: 'x'.repeat(201) }, 'cursor'],
    [{ cursor: ['a', 'b'] }, 'cursor'],
    [{ page: '2' }, 'page'],
  ])('rejects %j naming %s', async (query, field) => {
    let caught: unknown;
    try {
      await run(query);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('VALIDATION_FAILED');
    expect([...new Set((caught as AppError).details?.map((detail) => detail.field))]).toEqual([field]);
  });
});
