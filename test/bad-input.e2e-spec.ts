import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from '@20minutes/s3rver';
import { freePort } from './harness/free-port';
import { CapturedLogs } from './support/captured-logs';
import { describeEachWithLegs } from './harness/legs';
import { RGW_LEG } from './harness/rgw';
import { Phone } from './support/phone';
import { startTestApp, type DatabaseKind, type StorageKind, type TestApp } from './support/test-app';

const MISSING_ID = '00000000-0000-4000-8000-000000000000';
const MAX_UPLOAD_BYTES = 1_000_000;

interface BadRequestCase {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  path: string | ((ids: { noteId: string }) => string);
  /** A JSON value to send, or a raw string with its content type. */
  json?: unknown;
  raw?: { body: string; contentType?: string };
  /** Extra request headers. */
  headers?: Record<string, string>;
  status: number;
  code: string;
  field?: string;
}

const clip = { mime_type: 'audio/m4a', bytes: 1000, duration_ms: 1000 };

const CASES: BadRequestCase[] = [
  {
    name: 'mime_type missing',
    method: 'POST',
    path: '/api/audio-clips',
    json: { bytes: 1, duration_ms: 1 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'mime_type',
  },
  {
    name: 'mime_type not audio',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, mime_type: 'video/mp4' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'mime_type',
  },
  {
    name: 'mime_type text',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, mime_type: 'text/plain' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'mime_type',
  },
  {
    name: 'mime_type a path',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, mime_type: '../../audio/m4a' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'mime_type',
  },
  {
    name: 'mime_type a number',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, mime_type: 42 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'mime_type',
  },
  {
    name: 'bytes zero',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, bytes: 0 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'bytes',
  },
  {
    name: 'bytes negative',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, bytes: -5 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'bytes',
  },
  {
    name: 'bytes fractional',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, bytes: 1.5 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'bytes',
  },
  {
    name: 'bytes a string',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, bytes: '1000' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'bytes',
  },
  {
    name: 'bytes missing',
    method: 'POST',
    path: '/api/audio-clips',
    json: { mime_type: 'audio/m4a', duration_ms: 1 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'bytes',
  },
  {
    name: 'bytes over the maximum',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, bytes: MAX_UPLOAD_BYTES + 1 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'bytes',
  },
  {
    name: 'duration_ms negative',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, duration_ms: -1 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'duration_ms',
  },
  {
    name: 'duration_ms fractional',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, duration_ms: 0.5 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'duration_ms',
  },
  {
    name: 'duration_ms too large',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, duration_ms: 2 ** 31 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'duration_ms',
  },
  {
    name: 'duration_ms missing',
    method: 'POST',
    path: '/api/audio-clips',
    json: { mime_type: 'audio/m4a', bytes: 1 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'duration_ms',
  },
  {
    name: 'note_id not a UUID',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, note_id: 'optional-note-id' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'note_id',
  },
  {
    name: 'note_id of no note',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, note_id: MISSING_ID },
    status: 404,
    code: 'NOTE_NOT_FOUND',
  },
  {
    name: 'note_id null',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, note_id: null },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'note_id',
  },
  {
    name: 'mime_type with a line break in a parameter',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, mime_type: 'audio/m4a;x="a\r\nx-evil: 1"' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'mime_type',
  },
  {
    name: 'a body nested 3000 levels deep',
    method: 'POST',
    path: '/api/audio-clips',
    raw: { body: '{"mime_type":' + '{"a":'.repeat(3000) + '1' + '}'.repeat(3001), contentType: 'application/json' },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'an array nested 3000 levels deep',
    method: 'POST',
    path: '/api/notes',
    raw: { body: '['.repeat(3000) + ']'.repeat(3000), contentType: 'application/json' },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'an unknown field',
    method: 'POST',
    path: '/api/audio-clips',
    json: { ...clip, owner: 'someone' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'owner',
  },
  {
    name: 'a camelCase field',
    method: 'POST',
    path: '/api/audio-clips',
    json: { mime_type: 'audio/m4a', bytes: 1, durationMs: 1 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'durationMs',
  },
  {
    name: 'an array body',
    method: 'POST',
    path: '/api/audio-clips',
    json: [clip],
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'a null body',
    method: 'POST',
    path: '/api/audio-clips',
    raw: { body: 'null', contentType: 'application/json' },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'malformed JSON',
    method: 'POST',
    path: '/api/audio-clips',
    raw: { body: '{"mime_type":', contentType: 'application/json' },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    name: 'an empty JSON body',
    method: 'POST',
    path: '/api/audio-clips',
    raw: { body: '', contentType: 'application/json' },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    name: 'a text body',
    method: 'POST',
    path: '/api/audio-clips',
    raw: { body: 'mime_type=audio/m4a', contentType: 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'a form body',
    method: 'POST',
    path: '/api/audio-clips',
    raw: { body: 'mime_type=audio/m4a&bytes=1', contentType: 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'a body over 1 MiB',
    method: 'POST',
    path: '/api/notes',
    raw: { body: JSON.stringify({ title: 'x', body: 'y'.repeat(1_100_000) }), contentType: 'application/json' },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a clip id that is not a UUID',
    method: 'GET',
    path: '/api/audio-clips/42',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'clip_id',
  },
  {
    name: 'a clip that does not exist',
    method: 'GET',
    path: `/api/audio-clips/${MISSING_ID}`,
    status: 404,
    code: 'AUDIO_CLIP_NOT_FOUND',
  },
  {
    name: 'completing a clip that does not exist',
    method: 'POST',
    path: `/api/audio-clips/${MISSING_ID}/complete`,
    status: 404,
    code: 'AUDIO_CLIP_NOT_FOUND',
  },
  {
    name: 'completing a malformed id',
    method: 'POST',
    path: '/api/audio-clips/..%2F..%2Fetc/complete',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'clip_id',
  },
  {
    name: 'playback of a clip that does not exist',
    method: 'GET',
    path: `/api/audio-clips/${MISSING_ID}/playback`,
    status: 404,
    code: 'AUDIO_CLIP_NOT_FOUND',
  },
  {
    name: 'deleting a clip that does not exist',
    method: 'DELETE',
    path: `/api/audio-clips/${MISSING_ID}`,
    status: 404,
    code: 'AUDIO_CLIP_NOT_FOUND',
  },
  {
    name: 'audio of a note that does not exist',
    method: 'GET',
    path: `/api/notes/${MISSING_ID}/audio`,
    status: 404,
    code: 'NOTE_NOT_FOUND',
  },
  {
    name: 'clips of a note that does not exist',
    method: 'GET',
    path: `/api/notes/${MISSING_ID}/audio-clips`,
    status: 404,
    code: 'NOTE_NOT_FOUND',
  },
  {
    name: 'a note id that is not a UUID',
    method: 'GET',
    path: '/api/notes/abc/audio',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'note_id',
  },
  {
    name: 'a note without a title',
    method: 'POST',
    path: '/api/notes',
    json: { body: 'x' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'title',
  },
  {
    name: 'a note with an empty title',
    method: 'POST',
    path: '/api/notes',
    json: { title: '' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'title',
  },
  {
    name: 'a note title over 200 characters',
    method: 'POST',
    path: '/api/notes',
    json: { title: 'x'.repeat(201) },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'title',
  },
  {
    name: 'a note title with a NUL character',
    method: 'POST',
    path: '/api/notes',
    json: { title: 'a\u0000b' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'title',
  },
  {
    name: 'a note body with a NUL character',
    method: 'POST',
    path: '/api/notes',
    json: { title: 'ok', body: 'a\u0000b' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'body',
  },
  {
    name: 'renaming a note to null',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: null },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'title',
  },
  {
    name: 'a note body set to null',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { body: null },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'body',
  },
  {
    name: 'renaming a note to a number',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 7 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'title',
  },
  {
    name: 'changing a note’s id',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { id: MISSING_ID },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'id',
  },
  {
    name: 'updating a note that does not exist',
    method: 'PATCH',
    path: `/api/notes/${MISSING_ID}`,
    json: { title: 'x' },
    status: 404,
    code: 'NOTE_NOT_FOUND',
  },
  {
    name: 'deleting a note that does not exist',
    method: 'DELETE',
    path: `/api/notes/${MISSING_ID}`,
    status: 404,
    code: 'NOTE_NOT_FOUND',
  },
  {
    name: 'a page size of zero',
    method: 'GET',
    path: '/api/notes?limit=0',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a page size that is not a number',
    method: 'GET',
    path: '/api/notes?limit=ten',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a page size over 100',
    method: 'GET',
    path: '/api/notes?limit=101',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a page size in hexadecimal',
    method: 'GET',
    path: '/api/notes?limit=0x10',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a page size given twice',
    method: 'GET',
    path: '/api/notes?limit=5&limit=6',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a malformed percent-encoding in the path',
    method: 'GET',
    path: '/api/notes/%E0%A4%A',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'a cursor the API never gave',
    method: 'GET',
    path: '/api/notes?cursor=bm90LWEtY3Vyc29y',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'cursor',
  },
  {
    name: 'an unknown query parameter',
    method: 'GET',
    path: '/api/notes?sort=title',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'sort',
  },
  { name: 'an unknown route', method: 'GET', path: '/api/recordings', status: 404, code: 'NOT_FOUND' },
  {
    name: 'an unsigned storage upload',
    method: 'PUT',
    path: '/api/storage/local/dev/audio-clips/x.m4a',
    raw: { body: 'abc', contentType: 'audio/m4a' },
    status: 403,
    code: 'SIGNED_URL_INVALID',
  },
  {
    name: 'a storage download with a forged signature',
    method: 'GET',
    path: '/api/storage/local/dev/audio-clips/x.m4a?expires=9999999999&signature=forged',
    status: 403,
    code: 'SIGNED_URL_INVALID',
  },
  {
    name: 'a storage upload with a parameter repeated',
    method: 'PUT',
    path: '/api/storage/local/dev/audio-clips/x.m4a?expires=9999999999&type=audio%2Fm4a&type=audio%2Fm4a&length=3&signature=x',
    raw: { body: 'abc', contentType: 'audio/m4a' },
    status: 403,
    code: 'SIGNED_URL_INVALID',
  },
  ...['mp3', 'M4A', 'm4a%20', '', 'aac', '..%2Fm4a', 'm4a&format=m4a'].flatMap((format): BadRequestCase[] => [
    {
      name: `playback in format "${format}"`,
      method: 'GET',
      path: `/api/audio-clips/${MISSING_ID}/playback?format=${format}`,
      status: 400,
      code: 'VALIDATION_FAILED',
      field: 'format',
    },
    {
      name: `a note's audio in format "${format}"`,
      method: 'GET',
      path: ({ noteId }) => `/api/notes/${noteId}/audio?format=${format}`,
      status: 400,
      code: 'VALIDATION_FAILED',
      field: 'format',
    },
  ]),
  {
    name: 'playback in m4a of a clip that does not exist',
    method: 'GET',
    path: `/api/audio-clips/${MISSING_ID}/playback?format=m4a`,
    status: 404,
    code: 'AUDIO_CLIP_NOT_FOUND',
  },
  {
    name: 'a note without audio, in m4a',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}/audio?format=m4a`,
    status: 404,
    code: 'NO_READY_AUDIO_CLIP',
  },
  {
    name: 'a forged signature on a path escaping the folder',
    method: 'GET',
    path: '/api/storage/local/..%2F..%2Fetc%2Fpasswd?expires=9999999999&signature=x',
    status: 403,
    code: 'SIGNED_URL_INVALID',
  },
  {
    name: 'a search query longer than 500 characters',
    method: 'GET',
    path: `/api/notes?q=${'a'.repeat(501)}`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'q',
  },
  {
    name: 'a search query with more than 16 words',
    method: 'GET',
    path: `/api/notes?q=${Array.from({ length: 17 }, (_, i) => `w${i}`).join('+')}`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'q',
  },
  {
    name: 'a search query given twice',
    method: 'GET',
    path: '/api/notes?q=milk&q=eggs',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'q',
  },
  {
    name: 'a list cursor given to a search',
    method: 'GET',
    path: '/api/notes?q=milk&cursor=WyIyMDI2LTAxLTAxVDAwOjAwOjAwLjAwMFoiLCJ4Il0',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'cursor',
  },
  {
    name: 'a note id that is not a UUID',
    method: 'POST',
    path: '/api/notes',
    json: { id: 'note-1', title: 'x' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'id',
  },
  {
    name: 'a note id that is a UUID but not v4',
    method: 'POST',
    path: '/api/notes',
    json: { id: '6f1c2b8e-8d1a-1c3e-9a57-2f1d6e4b7c90', title: 'x' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'id',
  },
  {
    name: 'a note id that is a number',
    method: 'POST',
    path: '/api/notes',
    json: { id: 7, title: 'x' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'id',
  },
  {
    name: 'a note Idempotency-Key of 256 characters',
    method: 'POST',
    path: '/api/notes',
    json: { title: 'x' },
    headers: { 'idempotency-key': 'k'.repeat(256) },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'Idempotency-Key',
  },
  {
    name: 'base_version 0',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 'x', base_version: 0 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'base_version',
  },
  {
    name: 'base_version negative',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 'x', base_version: -3 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'base_version',
  },
  {
    name: 'base_version not an integer',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 'x', base_version: 1.5 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'base_version',
  },
  {
    name: 'base_version a string',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 'x', base_version: '1' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'base_version',
  },
  {
    name: 'base_version in the future',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 'x', base_version: 2 },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'base_version',
  },
  {
    name: 'a malformed If-Match on a PATCH',
    method: 'PATCH',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    json: { title: 'x' },
    headers: { 'if-match': '1' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'If-Match',
  },
  {
    name: 'a malformed If-Match on a DELETE',
    method: 'DELETE',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    headers: { 'if-match': 'W/1' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'If-Match',
  },
  {
    name: 'a malformed If-None-Match',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}`,
    headers: { 'if-none-match': '"1' },
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'If-None-Match',
  },
  {
    name: 'a revision version 0',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}/revisions/0`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'version',
  },
  {
    name: 'a revision version that is not a number',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}/revisions/latest`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'version',
  },
  {
    name: 'a revision version with a fraction',
    method: 'POST',
    path: ({ noteId }) => `/api/notes/${noteId}/revisions/1.5/restore`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'version',
  },
  {
    name: 'a revision version past the integers',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}/revisions/99999999999`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'version',
  },
  {
    name: 'a revisions cursor never issued',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}/revisions?cursor=abc`,
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'cursor',
  },
  {
    name: 'a revision not kept',
    method: 'GET',
    path: ({ noteId }) => `/api/notes/${noteId}/revisions/5`,
    status: 404,
    code: 'NOTE_REVISION_NOT_FOUND',
  },
  {
    name: 'a sync cursor never issued',
    method: 'GET',
    path: '/api/sync/changes?cursor=never-issued',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'cursor',
  },
  {
    name: 'a sync limit of 0',
    method: 'GET',
    path: '/api/sync/changes?limit=0',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a sync limit of 101',
    method: 'GET',
    path: '/api/sync/changes?limit=101',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'a sync limit that is not a number',
    method: 'GET',
    path: '/api/sync/changes?limit=all',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'limit',
  },
  {
    name: 'an account deletion without Confirm-Delete',
    method: 'DELETE',
    path: '/api/me',
    status: 400,
    code: 'DELETE_NOT_CONFIRMED',
  },
  {
    name: 'an account deletion confirming another user',
    method: 'DELETE',
    path: '/api/me',
    headers: { 'confirm-delete': 'bob' },
    status: 400,
    code: 'DELETE_NOT_CONFIRMED',
  },
  {
    name: 'an account deletion with a broken percent-encoding',
    method: 'DELETE',
    path: '/api/me',
    headers: { 'confirm-delete': 'alice%E' },
    status: 400,
    code: 'DELETE_NOT_CONFIRMED',
  },
  {
    name: 'an account deletion with the id not percent-decoded to itself',
    method: 'DELETE',
    path: '/api/me',
    headers: { 'confirm-delete': 'alic%65%' },
    status: 400,
    code: 'DELETE_NOT_CONFIRMED',
  },
  {
    name: 'an export id that is not a UUID',
    method: 'GET',
    path: '/api/me/exports/not-a-uuid',
    status: 400,
    code: 'VALIDATION_FAILED',
    field: 'export_id',
  },
  {
    name: 'an export that does not exist',
    method: 'GET',
    path: `/api/me/exports/${MISSING_ID}`,
    status: 404,
    code: 'EXPORT_NOT_FOUND',
  },
];

describeEachWithLegs<[DatabaseKind, StorageKind]>(
  [
    ['sqlite', 'local'],
    ['postgres', 'local'],
    ['postgres', 'rgw'],
  ],
  [RGW_LEG],
)('bad input on %s + %s storage', (database, storage) => {
  let testApp: TestApp;
  let phone: Phone;
  let noteId: string;

  beforeAll(async () => {
    testApp = await startTestApp({ database, storage, env: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) } });
    phone = await testApp.phone('alice');
    noteId = (await phone.post('/api/notes', { title: 'kept' })).body.id;
  });

  afterAll(async () => {
    await testApp?.close();
  });

  // The local driver's own storage routes exist only when it is the driver.
  const cases =
    storage === 'local'
      ? CASES
      : CASES.filter((testCase) => typeof testCase.path !== 'string' || !testCase.path.startsWith('/api/storage/'));

  it.each(cases)('$name → $status $code, nothing written', async (testCase) => {
    const before = await testApp.rowCounts();
    const path = typeof testCase.path === 'function' ? testCase.path({ noteId }) : testCase.path;
    const response = testCase.raw
      ? await phone.raw(testCase.method, path, testCase.raw.body, {
          ...(testCase.raw.contentType ? { 'content-type': testCase.raw.contentType } : {}),
          ...testCase.headers,
        })
      : await phone.raw(
          testCase.method,
          path,
          testCase.json === undefined ? undefined : JSON.stringify(testCase.json),
          { ...(testCase.json === undefined ? {} : { 'content-type': 'application/json' }), ...testCase.headers },
        );

    expect(response.status).toBe(testCase.status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.body).toEqual({
      status: testCase.status,
      error: {
        code: testCase.code,
        message: expect.any(String),
        ...(response.body?.error?.details ? { details: expect.any(Array) } : {}),
        // The same id as the answer header, to quote in a report.
        request_id: response.headers.get('x-request-id'),
      },
    });
    expect(response.body.error.message).not.toMatch(/\bat \S+ \(|node_modules|Error:/);
    if (testCase.field) {
      expect(response.body.error.details.map((detail: { field: string }) => detail.field)).toContain(testCase.field);
    }
    expect(await testApp.rowCounts()).toEqual(before);
    expect(await testApp.storedKeys()).toEqual([]);
    expect((await phone.get(`/api/notes/${noteId}`)).body.title).toBe('kept');
  });
});

describe('a store outage', () => {
  let testApp: TestApp;
  let phone: Phone;
  let logs: CapturedLogs;

  beforeAll(async () => {
    // The bucket is there at start-up (its check passes), then the store goes away: every call to it
    // fails to connect.
    const port = await freePort();
    const deadEndpoint = `http://127.0.0.1:${port}`;
    const directory = await mkdtemp(join(tmpdir(), 'an-dead-s3-'));
    const store = new S3rver({
      address: '127.0.0.1',
      port,
      silent: true,
      directory,
      configureBuckets: [{ name: 'unreachable' }],
    });
    await store.run();
    testApp = await startTestApp({
      database: 'sqlite',
      storage: 's3',
      env: {
        S3_ENDPOINT_URL: deadEndpoint,
        S3_BUCKET: 'unreachable',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      },
    }).finally(() => store.close());
    await rm(directory, { recursive: true, force: true });
    phone = await testApp.phone('alice');
    // The driver logs each failure on purpose: asserted on below, not printed.
    logs = CapturedLogs.of(testApp.app);
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('answers 503 with Retry-After on complete and leaves the clip as it was; a delete is recorded for later', async () => {
    const created = await phone.post('/api/audio-clips', clip);
    expect(created.status).toBe(201);

    const response = await phone.post(`/api/audio-clips/${created.body.clip.id}/complete`);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(response.body.error.code).toBe('STORAGE_UNAVAILABLE');
    expect((await phone.get(`/api/audio-clips/${created.body.clip.id}`)).body).toEqual(created.body.clip);

    expect((await phone.delete(`/api/audio-clips/${created.body.clip.id}`)).status).toBe(204);
    const recorded = await testApp.dataSource.query('SELECT storage_key FROM storage_deletions ORDER BY storage_key');
    expect(recorded.map((row: { storage_key: string }) => row.storage_key)).toEqual(
      [created.body.clip.storage_key, created.body.upload.storage_key].sort(),
    );
    const errors = logs.lines('error');
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^S3StorageDriver: S3 inspect failed: .*ECONNREFUSED/),
        expect.stringMatching(/^S3StorageDriver: S3 delete failed: .*ECONNREFUSED/),
      ]),
    );
    expect(errors.filter((line) => !/^S3StorageDriver: S3 \w+ failed: .*ECONNREFUSED/.test(line))).toEqual([]);
  });
});

describe('malformed HTTP', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('answers a request with a broken Content-Length with the JSON error shape', async () => {
    const { port } = new URL(testApp.baseUrl);
    const answer = await rawHttp(
      Number(port),
      'POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(body).toEqual({
      status: 400,
      error: { code: 'VALIDATION_FAILED', message: expect.any(String), request_id: expect.any(String) },
    });
  });

  it('accepts an id in upper case as the same id', async () => {
    const phone = await testApp.phone('alice');
    const note = await phone.post('/api/notes', { title: 'case' });
    const upper = await phone.get(`/api/notes/${note.body.id.toUpperCase()}`);
    expect(upper.status).toBe(200);
    expect(upper.body.id).toBe(note.body.id);
    const created = await phone.post('/api/audio-clips', { ...clip, note_id: note.body.id.toUpperCase() });
    expect(created.status).toBe(201);
    expect(created.body.clip.note_id).toBe(note.body.id);
  });
});

function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
  });
}
