import 'reflect-metadata';
import type { ArgumentMetadata } from '@nestjs/common';
import { CreateAudioClipDto, MAX_DURATION_MS } from '../audio-clips/audio-clip.dto';
import { CreateNoteDto, MAX_NOTE_BODY_LENGTH, UpdateNoteDto } from '../notes/note.dto';
import { AppError } from './app-error';
import { createValidationPipe, uuidParam } from './validation';

type Dto = typeof CreateAudioClipDto | typeof CreateNoteDto | typeof UpdateNoteDto;

const NOTE_ID = '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90';
const GOOD_CLIP = { mime_type: 'audio/m4a', bytes: 123456, duration_ms: 42000 };

function run(metatype: Dto, value: unknown): Promise<unknown> {
  const metadata: ArgumentMetadata = { type: 'body', metatype };
  return createValidationPipe().transform(value, metadata);
}

/** Runs the pipe expecting a VALIDATION_FAILED AppError; returns it. */
async function rejection(metatype: Dto, value: unknown): Promise<AppError> {
  let caught: unknown;
  try {
    await run(metatype, value);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AppError);
  const error = caught as AppError;
  expect(error.code).toBe('VALIDATION_FAILED');
  expect(error.status).toBe(400);
  expect(error.details).toBeDefined();
  for (const detail of error.details ?? []) {
    expect(typeof detail.message).toBe('string');
    expect(detail.message.length).toBeGreaterThan(0);
  }
  return error;
}

function fieldsOf(error: AppError): string[] {
  return [...new Set((error.details ?? []).map((detail) => detail.field))].sort();
}

interface BadCase {
  name: string;
  body: unknown;
  fields: string[];
}

const without = (field: keyof typeof GOOD_CLIP) =>
  Object.fromEntries(Object.entries(GOOD_CLIP).filter(([key]) => key !== field));

const BAD_CLIPS: BadCase[] = [
  { name: 'empty object', body: {}, fields: ['bytes', 'duration_ms', 'mime_type'] },
  { name: 'missing mime_type', body: without('mime_type'), fields: ['mime_type'] },
  { name: 'missing bytes', body: without('bytes'), fields: ['bytes'] },
  { name: 'missing duration_ms', body: without('duration_ms'), fields: ['duration_ms'] },
  { name: 'mime_type a number', body: { ...GOOD_CLIP, mime_type: 123 }, fields: ['mime_type'] },
  { name: 'mime_type an array', body: { ...GOOD_CLIP, mime_type: ['audio/m4a'] }, fields: ['mime_type'] },
  { name: 'mime_type null', body: { ...GOOD_CLIP, mime_type: null }, fields: ['mime_type'] },
  {
    name: 'mime_type over 255 characters',
    body: { ...GOOD_CLIP, mime_type: `audio/${'x'.repeat(250)}` },
    fields: ['mime_type'],
  },
  { name: 'bytes "123" as a string', body: { ...GOOD_CLIP, bytes: '123' }, fields: ['bytes'] },
  { name: 'bytes a float', body: { ...GOOD_CLIP, bytes: 1.5 }, fields: ['bytes'] },
  { name: 'bytes negative', body: { ...GOOD_CLIP, bytes: -1 }, fields: ['bytes'] },
  { name: 'bytes 0', body: { ...GOOD_CLIP, bytes: 0 }, fields: ['bytes'] },
  { name: 'bytes null', body: { ...GOOD_CLIP, bytes: null }, fields: ['bytes'] },
  { name: 'bytes true', body: { ...GOOD_CLIP, bytes: true }, fields: ['bytes'] },
  { name: 'bytes NaN', body: { ...GOOD_CLIP, bytes: Number.NaN }, fields: ['bytes'] },
  { name: 'bytes Infinity', body: { ...GOOD_CLIP, bytes: Number.POSITIVE_INFINITY }, fields: ['bytes'] },
  { name: 'bytes an object', body: { ...GOOD_CLIP, bytes: { value: 1 } }, fields: ['bytes'] },
  { name: 'duration_ms "42000" as a string', body: { ...GOOD_CLIP, duration_ms: '42000' }, fields: ['duration_ms'] },
  { name: 'duration_ms a float', body: { ...GOOD_CLIP, duration_ms: 0.5 }, fields: ['duration_ms'] },
  { name: 'duration_ms negative', body: { ...GOOD_CLIP, duration_ms: -1 }, fields: ['duration_ms'] },
  {
    name: 'duration_ms one over the maximum',
    body: { ...GOOD_CLIP, duration_ms: MAX_DURATION_MS + 1 },
    fields: ['duration_ms'],
  },
  { name: 'duration_ms huge', body: { ...GOOD_CLIP, duration_ms: 1e15 }, fields: ['duration_ms'] },
  { name: 'note_id not a uuid', body: { ...GOOD_CLIP, note_id: 'not-a-uuid' }, fields: ['note_id'] },
  { name: 'note_id a number', body: { ...GOOD_CLIP, note_id: 42 }, fields: ['note_id'] },
  { name: 'note_id empty', body: { ...GOOD_CLIP, note_id: '' }, fields: ['note_id'] },
  { name: 'note_id uuid with junk after it', body: { ...GOOD_CLIP, note_id: `${NOTE_ID}x` }, fields: ['note_id'] },
  {
    name: 'note_id uuid without dashes',
    body: { ...GOOD_CLIP, note_id: NOTE_ID.replace(/-/g, '') },
    fields: ['note_id'],
  },
  { name: 'note_id a SQL fragment', body: { ...GOOD_CLIP, note_id: "' OR 1=1 --" }, fields: ['note_id'] },
  { name: 'unknown field', body: { ...GOOD_CLIP, extra: 1 }, fields: ['extra'] },
  {
    name: 'client-chosen storage_key',
    body: { ...GOOD_CLIP, storage_key: 'prod/audio-clips/x.m4a' },
    fields: ['storage_key'],
  },
  { name: 'client-chosen status', body: { ...GOOD_CLIP, status: 'ready' }, fields: ['status'] },
  {
    name: 'camelCase spelling',
    body: { mimeType: 'audio/m4a', bytes: 1, durationMs: 1 },
    fields: ['duration_ms', 'durationMs', 'mime_type', 'mimeType'],
  },
  {
    name: 'several problems at once',
    body: { mime_type: 5, bytes: '10', duration_ms: -3, note_id: 'nope', junk: true },
    fields: ['bytes', 'duration_ms', 'junk', 'mime_type', 'note_id'],
  },
  { name: 'null body', body: null, fields: ['bytes', 'duration_ms', 'mime_type'] },
  { name: 'undefined body', body: undefined, fields: ['bytes', 'duration_ms', 'mime_type'] },
];

const GOOD_CLIPS: Array<{ name: string; body: Record<string, unknown> }> = [
  { name: 'minimal', body: GOOD_CLIP },
  { name: 'with a note_id', body: { ...GOOD_CLIP, note_id: NOTE_ID } },
  { name: 'bytes 1', body: { ...GOOD_CLIP, bytes: 1 } },
  { name: 'duration_ms 0', body: { ...GOOD_CLIP, duration_ms: 0 } },
  { name: 'duration_ms at the maximum', body: { ...GOOD_CLIP, duration_ms: MAX_DURATION_MS } },
  { name: 'mime_type with parameters', body: { ...GOOD_CLIP, mime_type: 'audio/webm;codecs=opus' } },
  { name: 'mime_type 255 characters', body: { ...GOOD_CLIP, mime_type: `audio/${'x'.repeat(249)}` } },
];

describe('createValidationPipe with CreateAudioClipDto', () => {
  it.each(BAD_CLIPS)('rejects $name, naming $fields', async ({ body, fields }) => {
    expect(fieldsOf(await rejection(CreateAudioClipDto, body))).toEqual([...fields].sort());
  });

  it.each(GOOD_CLIPS)('accepts $name and returns a CreateAudioClipDto with the same values', async ({ body }) => {
    const result = await run(CreateAudioClipDto, body);
    expect(result).toBeInstanceOf(CreateAudioClipDto);
    expect({ ...(result as object) }).toEqual(body);
  });

  it('says an unknown field is not a known field', async () => {
    const error = await rejection(CreateAudioClipDto, { ...GOOD_CLIP, extra: 1 });
    expect(error.details).toEqual([{ field: 'extra', message: 'extra is not a known field' }]);
  });

  it('does not echo the rejected value into the details', async () => {
    const error = await rejection(CreateAudioClipDto, { ...GOOD_CLIP, note_id: 'secret-looking-value' });
    expect(JSON.stringify(error.details)).not.toContain('secret-looking-value');
  });

  it.each([
    ['a string', 'hello'],
    ['a number', 42],
    ['an array', [GOOD_CLIP]],
    ['true', true],
  ])('rejects %s as the whole body', async (_name, body) => {
    const error = await rejection(CreateAudioClipDto, body);
    expect(error.details?.length).toBeGreaterThan(0);
  });

  it('rejects note_id: null naming note_id (null is not "no note")', async () => {
    expect(fieldsOf(await rejection(CreateAudioClipDto, { ...GOOD_CLIP, note_id: null }))).toEqual(['note_id']);
  });

  // The server makes lower-case ids; an upper-case one from a client is answered in lower case.
  it('answers an upper-case note_id in lower case', async () => {
    const result = (await run(CreateAudioClipDto, {
      ...GOOD_CLIP,
      note_id: NOTE_ID.toUpperCase(),
    })) as CreateAudioClipDto;
    expect(result.note_id).toBe(NOTE_ID);
  });
});

const BAD_CREATE_NOTES: BadCase[] = [
  { name: 'empty object', body: {}, fields: ['title'] },
  { name: 'body only', body: { body: 'text' }, fields: ['title'] },
  { name: 'empty title', body: { title: '' }, fields: ['title'] },
  { name: 'title 201 characters', body: { title: 'x'.repeat(201) }, fields: ['title'] },
  { name: 'title a number', body: { title: 5 }, fields: ['title'] },
  { name: 'title null', body: { title: null }, fields: ['title'] },
  { name: 'title an object', body: { title: { en: 'x' } }, fields: ['title'] },
  { name: 'body a number', body: { title: 'x', body: 5 }, fields: ['body'] },
  { name: 'body an array', body: { title: 'x', body: ['a'] }, fields: ['body'] },
  { name: 'body too long', body: { title: 'x', body: 'x'.repeat(MAX_NOTE_BODY_LENGTH + 1) }, fields: ['body'] },
  // A client-chosen id is a UUID v4 (docs/sync.md); anything else is refused, naming it.
  { name: 'client-chosen id not a UUID', body: { title: 'x', id: 'note-1' }, fields: ['id'] },
  { name: 'client-chosen id a number', body: { title: 'x', id: 5 }, fields: ['id'] },
  {
    name: 'client-chosen created_at',
    body: { title: 'x', created_at: '2020-01-01T00:00:00Z' },
    fields: ['created_at'],
  },
  { name: 'several problems', body: { title: '', body: 1, tags: [] }, fields: ['body', 'tags', 'title'] },
  { name: 'null body', body: null, fields: ['title'] },
];

const GOOD_CREATE_NOTES = [
  { name: 'title only', body: { title: 'Standup ideas' } },
  { name: 'title and body', body: { title: 'Standup ideas', body: 'Talk about the release train.' } },
  { name: 'one-character title, empty body', body: { title: 'x', body: '' } },
  { name: 'title 200 characters', body: { title: 'x'.repeat(200) } },
  { name: 'body at the maximum', body: { title: 'x', body: 'y'.repeat(MAX_NOTE_BODY_LENGTH) } },
  { name: 'unicode', body: { title: 'Ideen für morgen ✨', body: '日本語' } },
];

describe('createValidationPipe with CreateNoteDto', () => {
  it.each(BAD_CREATE_NOTES)('rejects $name, naming $fields', async ({ body, fields }) => {
    expect(fieldsOf(await rejection(CreateNoteDto, body))).toEqual([...fields].sort());
  });

  it.each(GOOD_CREATE_NOTES)('accepts $name', async ({ body }) => {
    const result = await run(CreateNoteDto, body);
    expect(result).toBeInstanceOf(CreateNoteDto);
    expect({ ...(result as object) }).toEqual(body);
  });
});

const BAD_UPDATE_NOTES: BadCase[] = [
  { name: 'empty title', body: { title: '' }, fields: ['title'] },
  { name: 'title 201 characters', body: { title: 'x'.repeat(201) }, fields: ['title'] },
  { name: 'title a number', body: { title: 5 }, fields: ['title'] },
  { name: 'body a boolean', body: { body: false }, fields: ['body'] },
  { name: 'body too long', body: { body: 'x'.repeat(MAX_NOTE_BODY_LENGTH + 1) }, fields: ['body'] },
  { name: 'unknown field', body: { titel: 'typo' }, fields: ['titel'] },
  {
    name: 'client-chosen updated_at',
    body: { title: 'x', updated_at: '2020-01-01T00:00:00Z' },
    fields: ['updated_at'],
  },
];

const GOOD_UPDATE_NOTES = [
  { name: 'nothing', body: {} },
  { name: 'title only', body: { title: 'New title' } },
  { name: 'body only', body: { body: 'New body' } },
  { name: 'clearing the body', body: { body: '' } },
  { name: 'both', body: { title: 'T', body: 'B' } },
];

describe('createValidationPipe with UpdateNoteDto', () => {
  it.each(BAD_UPDATE_NOTES)('rejects $name, naming $fields', async ({ body, fields }) => {
    expect(fieldsOf(await rejection(UpdateNoteDto, body))).toEqual([...fields].sort());
  });

  it.each(GOOD_UPDATE_NOTES)('accepts $name', async ({ body }) => {
    const result = await run(UpdateNoteDto, body);
    expect(result).toBeInstanceOf(UpdateNoteDto);
    expect({ ...(result as object) }).toEqual(body);
  });

  // `null` is not "absent": PATCH {"title": null} must not reach the NOT NULL column.
  it.each([
    { field: 'title', body: { title: null } },
    { field: 'body', body: { body: null } },
    { field: 'body', body: { title: 'x', body: null } },
  ])('rejects $field: null naming $field', async ({ field, body }) => {
    expect(fieldsOf(await rejection(UpdateNoteDto, body))).toEqual([field]);
  });
});

describe('control characters in notes', () => {
  it.each<[string, typeof CreateNoteDto | typeof UpdateNoteDto, Record<string, unknown>, string]>([
    ['NUL in a new title', CreateNoteDto, { title: 'a\u0000b' }, 'title'],
    ['a line break in a new title', CreateNoteDto, { title: 'a\nb' }, 'title'],
    ['a tab in a new title', CreateNoteDto, { title: 'a\tb' }, 'title'],
    ['ESC in a new title', CreateNoteDto, { title: '\u001b[31mred' }, 'title'],
    ['DEL in a new title', CreateNoteDto, { title: 'a\u007fb' }, 'title'],
    ['NUL in a new body', CreateNoteDto, { title: 'x', body: 'a\u0000b' }, 'body'],
    ['a bell in a new body', CreateNoteDto, { title: 'x', body: 'a\u0007b' }, 'body'],
    ['NUL in an edited title', UpdateNoteDto, { title: 'a\u0000b' }, 'title'],
    ['a line break in an edited title', UpdateNoteDto, { title: 'a\r\nb' }, 'title'],
    ['NUL in an edited body', UpdateNoteDto, { body: '\u0000' }, 'body'],
  ])('rejects %s', async (_name, dto, body, field) => {
    expect(fieldsOf(await rejection(dto, body))).toEqual([field]);
  });

  it.each<[string, typeof CreateNoteDto | typeof UpdateNoteDto, Record<string, unknown>]>([
    ['line breaks and tabs in a new body', CreateNoteDto, { title: 'x', body: 'one\ntwo\r\n\tthree' }],
    ['line breaks in an edited body', UpdateNoteDto, { body: 'a\nb' }],
  ])('accepts %s', async (_name, dto, body) => {
    expect({ ...((await run(dto, body)) as object) }).toEqual(body);
  });
});

describe('deeply nested bodies', () => {
  it('refuses a body nested far deeper than any DTO with VALIDATION_FAILED', async () => {
    let deep: Record<string, unknown> = {};
    for (let level = 0; level < 1000; level += 1) deep = { a: deep };
    let caught: unknown;
    try {
      await run(CreateNoteDto, { title: 'x', extra: deep });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('VALIDATION_FAILED');
  });

  it('still names an unknown field that holds a shallow object', async () => {
    expect(fieldsOf(await rejection(CreateNoteDto, { title: 'x', meta: { a: { b: 1 } } }))).toEqual(['meta']);
  });
});

describe('uuidParam', () => {
  const metadata: ArgumentMetadata = { type: 'param', data: 'note_id', metatype: String };
  // Sync or async, whatever the pipe is: always a promise here.
  const transform = async (raw: unknown): Promise<unknown> => uuidParam('note_id').transform(raw as string, metadata);

  it.each([
    [NOTE_ID, NOTE_ID],
    [NOTE_ID.toUpperCase(), NOTE_ID],
    ['00000000-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000000'],
  ])('accepts the v4 uuid %s as %s', async (raw, expected) => {
    await expect(transform(raw)).resolves.toBe(expected);
  });

  it.each([
    'not-a-uuid',
    '',
    '123',
    `${NOTE_ID}0`,
    `x${NOTE_ID}`,
    NOTE_ID.replace(/-/g, ''),
    '../etc',
    'c232ab00-9414-11ec-b3c8-9f6bdeced846' /* v1 */,
    '5f0c2b8e-8d1a-4c3e-7a57-2f1d6e4b7c90' /* wrong variant */,
    '5f0c2b8e-8d1a-4c3e-9a5-2f1d6e4b7c90' /* 8-4-4-3-12 */,
    '5f0c2b8e-8d1a-4c3e-9a570-2f1d6e4b7c90' /* 8-4-4-5-12 */,
    '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c9g' /* not hex */,
  ])('rejects %j with VALIDATION_FAILED on the named field', async (raw) => {
    let caught: unknown;
    try {
      await transform(raw);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('VALIDATION_FAILED');
    expect((caught as AppError).details).toEqual([{ field: 'note_id', message: 'note_id must be a UUID' }]);
  });
});
