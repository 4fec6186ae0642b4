import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_STATUS, type ErrorCode } from '../src/common/app-error';
import { startTestApp, type TestApp } from './support/test-app';

const SPEC = JSON.parse(readFileSync(join(__dirname, '..', 'openapi.json'), 'utf8'));
/** The API's operations; the health probes answer in terminus's shape, not the API's error body. */
const API_PATHS = Object.entries<any>(SPEC.paths).filter(([path]) => !path.startsWith('/api/health'));
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/** Codes that need a state, a limit or an outage set up: the test that makes the server answer each. */
const PROVOKED_ELSEWHERE: { readonly [Code in ErrorCode]?: string } = {
  NO_READY_AUDIO_CLIP: 'test/audio-clip-flow.e2e-spec.ts',
  UPLOAD_NOT_FOUND: 'test/audio-clip-flow.e2e-spec.ts',
  AUDIO_CLIP_NOT_READY: 'test/audio-clip-flow.e2e-spec.ts',
  UPLOAD_MISMATCH: 'test/audio-clip-flow.e2e-spec.ts',
  UPLOAD_NOT_AUDIO: 'test/integrity.e2e-spec.ts',
  AUDIO_CLIP_NOT_PENDING: 'test/integrity.e2e-spec.ts',
  IDEMPOTENCY_KEY_REUSED: 'test/integrity.e2e-spec.ts',
  QUOTA_EXCEEDED: 'test/limits-and-headers.e2e-spec.ts',
  RATE_LIMITED: 'test/limits-and-headers.e2e-spec.ts',
  AUTH_UNAVAILABLE: 'test/jwks.e2e-spec.ts',
  STORAGE_UNAVAILABLE: 'test/store-outage.e2e-spec.ts',
  TOO_MANY_PENDING_UPLOADS: 'test/quota-concurrency.e2e-spec.ts',
  AUDIO_CLIP_NOT_MULTIPART: 'test/multipart-upload.e2e-spec.ts',
  UPLOAD_PARTS_MISSING: 'test/multipart-upload.e2e-spec.ts',
  MULTIPART_UPLOAD_GONE: 'test/multipart-upload.e2e-spec.ts',
  REQUEST_TIMEOUT: 'test/slow-clients.e2e-spec.ts',
  // A race (the object changes between the check and the conditional move), raised by both drivers.
  UPLOAD_CHANGED: 'src/storage/s3-storage.driver.ts',
  RENDITION_NOT_READY: 'test/renditions.e2e-spec.ts',
  RENDITION_FAILED: 'test/renditions.e2e-spec.ts',
  RENDITION_UNAVAILABLE: 'test/renditions.e2e-spec.ts',
  NOTE_ID_CONFLICT: 'test/notes-sync.e2e-spec.ts',
  NOTE_EDIT_CONFLICT: 'test/notes-sync.e2e-spec.ts',
  NOTE_DELETED: 'test/notes-sync.e2e-spec.ts',
  NOTE_VERSION_MISMATCH: 'test/notes-sync.e2e-spec.ts',
  NOTE_REVISION_NOT_FOUND: 'test/notes-sync.e2e-spec.ts',
  SYNC_CURSOR_EXPIRED: 'test/notes-sync.e2e-spec.ts',
  EXPORT_EXPIRED: 'test/exports.e2e-spec.ts',
  EXPORTS_PER_DAY_EXCEEDED: 'test/exports.e2e-spec.ts',
};

interface DocumentedError {
  operationId: string;
  method: string;
  path: string;
  status: number;
  code: ErrorCode;
  example: { status: number; error: { code: string; message: string; details?: { field: string }[] } };
}

const DOCUMENTED: DocumentedError[] = API_PATHS.flatMap(([path, methods]) =>
  Object.entries<any>(methods).flatMap(([method, operation]) =>
    Object.entries<any>(operation.responses)
      .filter(([status]) => Number(status) >= 400)
      .flatMap(([status, response]) =>
        Object.entries<any>(response.content['application/json'].examples ?? {}).map(([code, example]) => ({
          operationId: operation.operationId as string,
          method,
          path,
          status: Number(status),
          code: code as ErrorCode,
          example: example.value,
        })),
      ),
  ),
);

describe('the error examples of openapi.json', () => {
  it('give every error status of every operation examples, each of a code of that status', () => {
    for (const [path, methods] of API_PATHS) {
      for (const operation of Object.values<any>(methods)) {
        for (const [status, response] of Object.entries<any>(operation.responses)) {
          if (Number(status) < 400) continue;
          const examples = Object.values<any>(response.content['application/json'].examples ?? {});
          expect({ path, status, examples: examples.length > 0 }).toEqual({ path, status, examples: true });
        }
      }
    }
    for (const documented of DOCUMENTED) {
      const { operationId, code, status, example } = documented;
      expect({ operationId, code, status: ERROR_STATUS[code] }).toEqual({ operationId, code, status });
      expect(example.status).toBe(status);
      expect(example.error.code).toBe(code);
    }
  });

  it('name only codes of the operation’s own resources', () => {
    for (const { operationId, path, code } of DOCUMENTED) {
      if (/CLIP|UPLOAD|IDEMPOTENCY|QUOTA|STORAGE/.test(code)) {
        // Idempotency-Key is honoured on the notes' create too (one shared mechanism).
        const clipRoute = /audio/.test(path) || (code === 'IDEMPOTENCY_KEY_REUSED' && operationId === 'createNote');
        expect({ operationId, code, clipRoute }).toEqual({ operationId, code, clipRoute: true });
      }
      if (code === 'NOTE_NOT_FOUND') {
        expect({ operationId, noteRoute: /note/.test(path) || operationId === 'createAudioClip' }).toEqual({
          operationId,
          noteRoute: true,
        });
      }
    }
  });

  it('name, for each code that needs a set-up of its own, a test or driver where the server produces it', () => {
    for (const { code } of DOCUMENTED) {
      const where = PROVOKED_ELSEWHERE[code];
      if (where)
        expect({ code, found: readFileSync(join(__dirname, '..', where), 'utf8').includes(code) }).toEqual({
          code,
          found: true,
        });
    }
  });

  describe('against the running server', () => {
    let testApp: TestApp;
    let token: string;
    let noteId: string;
    let clipId: string;

    beforeAll(async () => {
      testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
      token = await testApp.tokenFor('alice');
      const phone = await testApp.phone('alice');
      noteId = (await phone.api.POST('/api/notes', { body: { title: 'n' } })).data!.id;
      clipId = (
        await phone.api.POST('/api/audio-clips', { body: { mime_type: 'audio/wav', bytes: 10, duration_ms: 1 } })
      ).data!.clip.id;
    }, 120_000);

    afterAll(async () => {
      await testApp?.close();
    });

    /** A request of the operation that the server answers with `code`, for the codes any request shape can cause. */
    function provoke(error: DocumentedError): { path: string; init: RequestInit } | undefined {
      const ids = { note_id: noteId, clip_id: clipId, export_id: UNKNOWN_ID };
      const badField = error.example.error.details?.[0]?.field;
      if (error.code === 'NOTE_NOT_FOUND') ids.note_id = UNKNOWN_ID;
      if (error.code === 'AUDIO_CLIP_NOT_FOUND') ids.clip_id = UNKNOWN_ID;
      if (error.code === 'VALIDATION_FAILED' && (badField === 'note_id' || badField === 'clip_id'))
        ids[badField] = 'not-a-uuid';
      if (error.code === 'VALIDATION_FAILED' && badField === 'export_id') ids.export_id = 'not-a-uuid';
      let path = error.path
        .replace('{note_id}', ids.note_id)
        .replace('{clip_id}', ids.clip_id)
        .replace('{version}', badField === 'version' ? 'latest' : '1')
        .replace('{export_id}', ids.export_id);
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const validBodies: Record<string, object> = {
        createNote: { title: 'A title' },
        updateNote: { title: 'A title' },
        createAudioClip: { mime_type: 'audio/wav', bytes: 10, duration_ms: 1 },
        createAudioClipPartUrls: { part_numbers: [1] },
      };
      let body: string | undefined = validBodies[error.operationId]
        ? JSON.stringify(validBodies[error.operationId])
        : undefined;
      switch (error.code) {
        case 'UNAUTHENTICATED':
          delete headers.authorization;
          break;
        case 'INVALID_JSON':
          body = '{"title": ';
          break;
        case 'UNSUPPORTED_MEDIA_TYPE':
          headers['content-type'] = 'text/plain';
          body = 'title';
          break;
        case 'PAYLOAD_TOO_LARGE':
          body = JSON.stringify({ title: 'x'.repeat(2 * 1024 * 1024) });
          break;
        case 'NOTE_NOT_FOUND':
          if (error.operationId === 'createAudioClip')
            body = JSON.stringify({ ...validBodies.createAudioClip, note_id: UNKNOWN_ID });
          break;
        case 'AUDIO_CLIP_NOT_FOUND':
          break;
        case 'DELETE_NOT_CONFIRMED':
          // No Confirm-Delete header.
          break;
        case 'EXPORT_NOT_FOUND':
          break;
        case 'VALIDATION_FAILED':
          if (badField === 'mime_type')
            body = JSON.stringify({ ...validBodies.createAudioClip, mime_type: 'text/plain' });
          else if (badField === 'title') body = JSON.stringify({ title: '' });
          else if (badField === 'cursor') path += '?cursor=not-a-cursor';
          else if (badField === 'status') path += '?status=not-a-status';
          else if (badField === 'q') path += `?q=${'a'.repeat(501)}`;
          else if (badField === 'part_numbers') body = JSON.stringify({ part_numbers: [] });
          else if (badField === 'format') path += '?format=mp3';
          else if (badField === 'If-Match' || badField === 'If-None-Match') headers[badField.toLowerCase()] = '1';
          else if (
            badField !== 'note_id' &&
            badField !== 'clip_id' &&
            badField !== 'version' &&
            badField !== 'export_id'
          )
            return undefined;
          break;
        default:
          return undefined;
      }
      if (body === undefined) delete headers['content-type'];
      return { path, init: { method: error.method.toUpperCase(), headers, body } };
    }

    it('are what the server answers: status, code, and the field a validation example names', async () => {
      const checked: string[] = [];
      for (const error of DOCUMENTED) {
        const request = provoke(error);
        if (!request) {
          expect({ code: error.code, elsewhere: PROVOKED_ELSEWHERE[error.code] !== undefined }).toEqual({
            code: error.code,
            elsewhere: true,
          });
          continue;
        }
        const response = await fetch(testApp.baseUrl + request.path, request.init);
        const answer: any = await response.json();
        const label = `${error.operationId} ${error.code}`;
        expect({ label, status: response.status, code: answer.error.code }).toEqual({
          label,
          status: error.status,
          code: error.code,
        });
        if (error.example.error.details) {
          expect({ label, field: answer.error.details?.[0]?.field }).toEqual({
            label,
            field: error.example.error.details[0].field,
          });
        }
        checked.push(label);
      }
      // Every operation had at least its 401, its 400 or 404 checked here.
      expect(checked.length).toBeGreaterThan(40);
    }, 120_000);
  });
});
