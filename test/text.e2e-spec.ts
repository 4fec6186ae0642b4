import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

/** Raw JSON text, so that escapes such as a lone surrogate reach the server exactly as written. */
const BAD_TEXT: [string, string][] = [
  ['a lone high surrogate', '\\ud800X'],
  ['a lone low surrogate', 'X\\udc00'],
  ['surrogates in the wrong order', '\\udc00\\ud800'],
  ['a right-to-left override', 'abc\\u202edef'],
  ['a left-to-right embedding', '\\u202aabc'],
  ['a first-strong isolate', 'abc\\u2068def\\u2069'],
  ['a C1 control (NEL)', 'abc\\u0085def'],
  ['a C1 control (CSI)', '\\u009b31m'],
  ['DEL', 'abc\\u007f'],
  ['NUL', 'abc\\u0000'],
  ['an escape sequence', '\\u001b[31mred'],
];

describe('text is stored exactly as sent, or refused', () => {
  let testApp: TestApp;
  let phone: Phone;
  let noteId: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'postgres', storage: 'local' });
    phone = await testApp.phone('alice');
    noteId = (await phone.post('/api/notes', { title: 'kept', body: 'kept' })).body.id;
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it.each(
    BAD_TEXT.flatMap(([name, text]) => (['title', 'body'] as const).map((field) => [name, field, text] as const)),
  )('refuses %s in the %s, naming the field, on create and on update', async (_name, field, text) => {
    const before = await testApp.dataSource.query('SELECT * FROM notes ORDER BY id');
    const json = `{"title":${field === 'title' ? `"${text}"` : '"ok"'}${field === 'body' ? `,"body":"${text}"` : ''}}`;
    for (const [method, path] of [
      ['POST', '/api/notes'],
      ['PATCH', `/api/notes/${noteId}`],
    ]) {
      const answer = await phone.raw(method, path, json, { 'content-type': 'application/json' });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('VALIDATION_FAILED');
      expect(answer.body.error.details.map((detail: { field: string }) => detail.field)).toEqual([field]);
    }
    expect(await testApp.dataSource.query('SELECT * FROM notes ORDER BY id')).toEqual(before);
  });

  it.each([
    ['emoji (surrogate pairs)', 'Standup 🎙️👩🏽‍💻'],
    ['Arabic with its own direction marks', 'مرحبا\u200f بالعالم'],
    ['combining marks, not normalized', 'e\u0301 vs é'],
    ['CJK and a zero-width joiner', '会议\u200d记录'],
    ['a body with line breaks and tabs', 'line 1\nline 2\r\n\tindented'],
  ])('stores %s exactly as confirmed', async (name, text) => {
    const isBody = name.startsWith('a body');
    const created = await phone.post('/api/notes', isBody ? { title: 'x', body: text } : { title: text });
    expect(created.status).toBe(201);
    const read = await phone.get(`/api/notes/${created.body.id}`);
    expect(isBody ? read.body.body : read.body.title).toBe(text);
    expect(isBody ? created.body.body : created.body.title).toBe(text);
  });
});
