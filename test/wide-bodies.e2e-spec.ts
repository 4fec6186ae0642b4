import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';
import { report } from './support/report';

/** A generous bound: the refusal itself takes milliseconds; this only catches a frozen event loop. */
const BOUND_MS = 3_000;

function wideObject(keys: number, value: (index: number) => unknown = () => 1): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (let index = 0; index < keys; index += 1) object[`k${index}`] = value(index);
  return object;
}

function nestedAt(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let level = 0; level < depth; level += 1) value = { inner: value };
  return value;
}

/** Bodies just under the 1 MiB body limit, each a different shape of "wide". */
const SHAPES: [string, () => unknown][] = [
  ['80,000 unknown keys at the top', () => ({ title: 'x', ...wideObject(80_000) })],
  ['80,000 keys inside a known field', () => ({ title: 'x', body: wideObject(80_000) })],
  ['60,000 keys five levels down', () => ({ title: 'x', body: nestedAt(5, wideObject(60_000)) })],
  ['a 400,000-item array', () => ({ title: Array.from({ length: 400_000 }, () => 1) })],
  [
    '30,000 one-key objects in an array',
    () => ({ title: 'x', body: Array.from({ length: 30_000 }, () => ({ a: 1 })) }),
  ],
  ['a 1,000,000-character string', () => ({ title: 'x', body: 'a'.repeat(1_000_000) })],
  ['a wide top-level array', () => Array.from({ length: 300_000 }, () => 1)],
  ['keys that look like prototype names', () => ({ title: 'x', ...wideObject(40_000), constructor: { prototype: 1 } })],
];

describe('wide bodies are refused in linear time, and nobody else waits for them', () => {
  let testApp: TestApp;
  let phone: Phone;
  let noteId: string;
  const timings: string[] = [];

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    phone = await testApp.phone('alice');
    noteId = (await phone.post('/api/notes', { title: 'kept' })).body.id;
  });

  afterAll(async () => {
    if (timings.length > 0) report(`wide-body timings (ms):\n${timings.join('\n')}`);
    await testApp?.close();
  });

  const routes = [
    ['POST', '/api/notes'],
    ['PATCH', '/api/notes/{note_id}'],
    ['POST', '/api/audio-clips'],
  ] as const;

  it.each(routes.flatMap(([method, path]) => SHAPES.map(([name, make]) => [method, path, name, make] as const)))(
    '%s %s with %s: 400 quickly, and a health check sent meanwhile is not held up',
    async (method, path, name, make) => {
      const before = await testApp.rowCounts();
      const notesBefore = await testApp.dataSource.query('SELECT * FROM notes ORDER BY id');
      const text = JSON.stringify(make());
      expect(Buffer.byteLength(text)).toBeLessThan(1024 * 1024);

      const started = performance.now();
      const refused = phone.raw(method, path.replace('{note_id}', noteId), text, {
        'content-type': 'application/json',
      });
      // Sent right behind it, as another client would be.
      const health = new Phone(testApp.baseUrl).get('/api/health').then((answer) => ({
        status: answer.status,
        ms: performance.now() - started,
      }));
      const answer = await refused;
      const refusedMs = performance.now() - started;
      const healthAnswer = await health;
      timings.push(
        `${method} ${path} ${name}: refused in ${refusedMs.toFixed(0)} ms, health in ${healthAnswer.ms.toFixed(0)} ms`,
      );

      expect(answer.status).toBe(400);
      // Prototype-polluting keys are already refused by Fastify's JSON parser.
      expect(['VALIDATION_FAILED', 'INVALID_JSON']).toContain(answer.body.error.code);
      expect(JSON.stringify(answer.body).length).toBeLessThan(10_000);
      expect(healthAnswer.status).toBe(200);
      expect(refusedMs).toBeLessThan(BOUND_MS);
      expect(healthAnswer.ms).toBeLessThan(BOUND_MS);
      expect(await testApp.rowCounts()).toEqual(before);
      expect(await testApp.dataSource.query('SELECT * FROM notes ORDER BY id')).toEqual(notesBefore);
    },
  );

  it('a query string with many parameters is refused the same way', async () => {
    const query = Array.from({ length: 1_500 }, (_, index) => `p${index}=1`).join('&');
    const started = performance.now();
    const answer = await phone.get(`/api/notes?${query}`);
    timings.push(`GET /api/notes with 1,500 query parameters: ${(performance.now() - started).toFixed(0)} ms`);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('names a few unknown fields, not thousands', async () => {
    const answer = await phone.post('/api/notes', { title: 'x', ...wideObject(500) });
    expect(answer.status).toBe(400);
    expect(answer.body.error.details).toHaveLength(11);
    expect(answer.body.error.details[0]).toEqual({ field: 'k0', message: 'k0 is not a known field' });
    expect(answer.body.error.details[10].message).toBe('and 490 more unknown fields');
  });

  it('still accepts an ordinary body', async () => {
    expect((await phone.post('/api/notes', { title: 'fine', body: 'text' })).status).toBe(201);
  });
});
