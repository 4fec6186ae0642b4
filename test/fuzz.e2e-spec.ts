import fc from 'fast-check';
import { parseEntityTagCondition } from '../src/common/entity-tags';
import { ExportWorker } from '../src/exports/export-worker.service';
import { wav } from './support/audio';
import { Phone, putBytes } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

jest.setTimeout(300_000);

/** Generous: a refusal takes milliseconds; this catches a hung request or a frozen event loop. */
const BOUND_MS = 3_000;
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

interface Operation {
  method: string;
  path: string;
  pathParams: string[];
  queryParams: string[];
  headerParams: string[];
  hasBody: boolean;
  isPublic: boolean;
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** What makes it malformed, for the failure message. */
  defect: string;
}

/** Strings that are not a UUID (so a path id made of one is malformed), URL-escaped to stay one segment. */
const notUuid = fc.string({ maxLength: 60, unit: 'grapheme' }).filter((text) => !UUID.test(text) && text !== '');
/** Strings that are not a positive integer (a note's version), URL-escaped to stay one segment. */
const notPositiveInteger = fc
  .string({ maxLength: 30, unit: 'grapheme' })
  .filter((text) => !/^[1-9][0-9]{0,9}$/.test(text) && text !== '');
/** Header values that are not `*` nor a list of entity tags. */
const notEntityTags = fc
  .oneof(fc.string({ minLength: 1, maxLength: 60 }), fc.constantFrom('1', 'W/1', '"1', '"1" "2"', '"1",x', '**'))
  .map((text) => text.replace(/[^\x21-\x7e]/g, 'x'))
  .filter((text) => {
    try {
      parseEntityTagCondition(text, 'If-Match');
      return false;
    } catch {
      return true;
    }
  });
/** JSON texts that do not parse. */
const notJson = fc
  .oneof(
    fc.string({ maxLength: 200, unit: 'binary' }),
    fc.constantFrom('{', '{"title":', '[1,2', '{"a":1}}', "{'a':1}", 'nul', '{"title":"x",}'),
  )
  .filter((text) => {
    try {
      JSON.parse(text);
      return false;
    } catch {
      return true;
    }
  });
/** Objects that always carry a field no DTO knows, beside anything else. */
const withUnknownField = fc
  .tuple(
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
    fc.string({ minLength: 1, maxLength: 8 }),
  )
  .map(([object, suffix]) => ({ ...object, [`unknown_${suffix}`]: 1 }));
/** JSON that is not an object at all. */
const notAnObject = fc.oneof(
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
  fc.string(),
  fc.integer(),
  fc.constant(null),
  fc.boolean(),
);
const badToken = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{0,40}$/),
  fc.constant('eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.'),
);
const badContentType = fc.constantFrom(
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'audio/m4a',
);
/** Header values a fetch client can send (printable ASCII, no leading or trailing space). */
const headerSafe = (text: string) => text.replace(/[^\x21-\x7e]/g, 'x');

describe('fuzz: malformed bodies, headers and paths on every route of the OpenAPI spec', () => {
  let testApp: TestApp;
  let operations: Operation[];
  let token: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    token = await testApp.tokenFor('alice');
    const alice = new Phone(testApp.baseUrl, token);
    ids.note_id = (await alice.post('/api/notes', { title: 'fuzz target' })).body.id;
    const audio = wav(0.2);
    const ready = (
      await alice.post('/api/audio-clips', {
        note_id: ids.note_id,
        mime_type: 'audio/wav',
        bytes: audio.length,
        duration_ms: 200,
      })
    ).body;
    expect((await putBytes(ready.upload.url, audio, { 'Content-Type': 'audio/wav' })).status).toBe(200);
    expect((await alice.post(`/api/audio-clips/${ready.clip.id}/complete`)).status).toBe(200);
    ids.clip_id = ready.clip.id;
    ids.version = '1';
    ids.export_id = (await alice.post('/api/me/exports')).body.id;
    // Built in the background: done before the snapshots, so that only a fuzzed request could change its row.
    await testApp.app.get(ExportWorker).runOnce();

    const spec = (await new Phone(testApp.baseUrl).get('/api/docs-json')).body;
    operations = Object.entries<Record<string, any>>(spec.paths).flatMap(([path, methods]) =>
      Object.entries<any>(methods).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        pathParams: (operation.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name),
        queryParams: (operation.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name),
        headerParams: (operation.parameters ?? []).filter((p: any) => p.in === 'header').map((p: any) => p.name),
        hasBody: operation.requestBody !== undefined,
        // No requirement, or one empty requirement (anonymous access): no token needed.
        isPublic: (operation.security ?? []).every((requirement: object) => Object.keys(requirement).length === 0),
      })),
    );
    // Every path parameter the spec uses has a real id to put in it.
    for (const operation of operations) for (const name of operation.pathParams) expect(ids[name]).toBeDefined();
  });

  afterAll(async () => {
    await testApp?.close();
  });

  async function snapshot(): Promise<string> {
    const tables = [
      'notes',
      'audio_clips',
      'storage_deletions',
      'idempotency_keys',
      'note_revisions',
      'sync_tombstones',
      'sync_owners',
    ];
    tables.push('exports');
    const rows = await Promise.all(tables.map((table) => testApp.dataSource.query(`SELECT * FROM ${table}`)));
    return JSON.stringify([rows, await testApp.localFiles()]);
  }

  const fill = (operation: Operation, overrides: Record<string, string> = {}) =>
    operation.path.replace(/\{(\w+)\}/g, (_match, name: string) => overrides[name] ?? ids[name]);
  const auth = () => ({ authorization: `Bearer ${token}` });
  const json = { 'content-type': 'application/json' };

  /** One malformed request for the operation: every kind of defect that applies to it. */
  function malformed(operation: Operation): fc.Arbitrary<FuzzRequest> {
    const { method } = operation;
    const kinds: fc.Arbitrary<FuzzRequest>[] = [];
    if (!operation.isPublic) {
      kinds.push(
        badToken.map((bad) => ({
          method,
          path: fill(operation),
          headers: { authorization: `Bearer ${headerSafe(bad)}` },
          defect: 'bad token',
        })),
        fc.constant({ method, path: fill(operation), headers: {}, defect: 'no token' }),
        fc.string({ maxLength: 40 }).map((scheme) => ({
          method,
          path: fill(operation),
          headers: { authorization: `${headerSafe(scheme) || 'Basic'} ${token}`.replace(/^Bearer /i, 'Token ') },
          defect: 'another scheme',
        })),
      );
    }
    for (const name of operation.pathParams) {
      kinds.push(
        (name === 'version' ? notPositiveInteger : notUuid).map((bad) => ({
          method,
          path: fill(operation, { [name]: encodeURIComponent(bad) }),
          headers: auth(),
          defect: name === 'version' ? 'version not a positive integer' : `${name} not a UUID`,
        })),
      );
    }
    if (operation.queryParams.includes('limit')) {
      kinds.push(
        fc
          .oneof(
            fc
              .string({ maxLength: 10 })
              .filter((text) => !/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > 100),
            fc.integer({ min: 101 }).map(String),
            fc.constant('0'),
          )
          .map((bad) => ({
            method,
            path: `${fill(operation)}?limit=${encodeURIComponent(bad)}`,
            headers: auth(),
            defect: 'bad limit',
          })),
      );
    }
    if (operation.queryParams.includes('cursor')) {
      kinds.push(
        fc.string({ minLength: 1, maxLength: 250 }).map((bad) => ({
          method,
          path: `${fill(operation)}?cursor=${encodeURIComponent(bad)}x`,
          headers: auth(),
          defect: 'bad cursor',
        })),
      );
    }
    if (operation.queryParams.includes('q')) {
      kinds.push(
        fc
          .oneof(
            fc.string({ minLength: 501, maxLength: 700 }),
            fc
              .array(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 17, maxLength: 30 })
              .map((words) => words.join(' ')),
          )
          .map((bad) => ({
            method,
            path: `${fill(operation)}?q=${encodeURIComponent(bad)}`,
            headers: auth(),
            defect: 'bad q',
          })),
      );
    }
    if (operation.hasBody) {
      kinds.push(
        notJson.map((body) => ({
          method,
          path: fill(operation),
          headers: { ...auth(), ...json },
          body,
          defect: 'not JSON',
        })),
        withUnknownField.map((body) => ({
          method,
          path: fill(operation),
          headers: { ...auth(), ...json },
          body: JSON.stringify(body),
          defect: 'unknown field',
        })),
        notAnObject.map((body) => ({
          method,
          path: fill(operation),
          headers: { ...auth(), ...json },
          body: JSON.stringify(body),
          defect: 'not an object',
        })),
        fc.tuple(badContentType, fc.string({ maxLength: 100 })).map(([type, body]) => ({
          method,
          path: fill(operation),
          headers: { ...auth(), 'content-type': type },
          body,
          defect: `content type ${type}`,
        })),
      );
    }
    if (operation.queryParams.includes('format')) {
      kinds.push(
        fc
          .oneof(fc.string({ maxLength: 20 }), fc.constantFrom('M4A', 'mp3', 'aac', 'm4a ', ' m4a', 'm4a\u0000'))
          .filter((text) => text !== 'm4a' && text !== '')
          .map((bad) => ({
            method,
            path: `${fill(operation)}?format=${encodeURIComponent(bad)}`,
            headers: auth(),
            defect: 'unknown format',
          })),
      );
    }
    for (const name of operation.headerParams.filter((header) => /^If-(None-)?Match$/.test(header))) {
      kinds.push(
        notEntityTags.map((bad) => ({
          method,
          path: fill(operation),
          headers: { ...auth(), ...(operation.hasBody ? json : {}), [name]: bad },
          body: operation.hasBody ? JSON.stringify({}) : undefined,
          defect: `${name} malformed`,
        })),
      );
    }
    if ((operation.path === '/api/audio-clips' || operation.path === '/api/notes') && method === 'POST') {
      kinds.push(
        fc.string({ minLength: 256, maxLength: 400 }).map((key) => ({
          method,
          path: fill(operation),
          headers: { ...auth(), ...json, 'idempotency-key': headerSafe(key) },
          body: JSON.stringify(
            operation.path === '/api/notes' ? { title: 'x' } : { mime_type: 'audio/wav', bytes: 10, duration_ms: 1 },
          ),
          defect: 'Idempotency-Key too long',
        })),
      );
    }
    if (operation.path === '/api/me' && method === 'DELETE') {
      kinds.push(
        fc
          .string({ maxLength: 80, unit: 'grapheme' })
          .map((bad) => headerSafe(bad))
          .filter((bad) => bad !== 'alice')
          .map((bad) => ({
            method,
            path: fill(operation),
            headers: { ...auth(), 'confirm-delete': bad },
            defect: 'wrong Confirm-Delete',
          })),
      );
    }
    return fc.oneof(...kinds);
  }

  /** The local store's signed-URL routes are not in the spec; they get forged URLs of every shape. */
  const forgedStorageUrl: fc.Arbitrary<FuzzRequest> = fc
    .tuple(
      fc.constantFrom('GET', 'PUT', 'HEAD'),
      fc.array(notUuid, { minLength: 1, maxLength: 4 }),
      fc.dictionary(
        fc.constantFrom('expires', 'signature', 'type', 'length', 'md5', 'x'),
        fc.string({ maxLength: 30 }),
      ),
    )
    .map(([method, segments, query]): FuzzRequest => ({
      method,
      path: `/api/storage/local/${segments.map(encodeURIComponent).join('/')}?${new URLSearchParams(query).toString()}`,
      headers: method === 'PUT' ? { 'content-type': 'audio/wav' } : ({} as Record<string, string>),
      body: method === 'PUT' ? 'bytes' : undefined,
      defect: 'forged storage URL',
    }));

  it('every malformed request gets a 4xx JSON error, quickly, and writes nothing', async () => {
    const before = await snapshot();
    const covered = new Set<string>();
    const arbitrary = fc.oneof(
      ...operations
        .filter((operation) => !operation.isPublic || operation.hasBody || operation.pathParams.length > 0)
        .map((operation) => malformed(operation)),
      forgedStorageUrl,
    );
    await fc.assert(
      fc.asyncProperty(arbitrary, async (request) => {
        const started = performance.now();
        const response = await fetch(`${testApp.baseUrl}${request.path}`, {
          method: request.method,
          headers: request.headers,
          body: request.body,
        });
        const text = await response.text();
        const ms = performance.now() - started;
        covered.add(
          `${request.method} ${request.path.replace(/\?.*/, '').replace(/[0-9a-f-]{36}/g, '{id}')} ${request.defect}`,
        );
        const where = `${request.method} ${request.path} (${request.defect}) → ${response.status} ${text.slice(0, 200)}`;
        expect([where, response.status >= 400 && response.status < 500]).toEqual([where, true]);
        if (request.method !== 'HEAD') {
          expect([where, response.headers.get('content-type')]).toEqual([where, 'application/json; charset=utf-8']);
          expect([where, typeof JSON.parse(text).error.code]).toEqual([where, 'string']);
        }
        expect([where, ms < BOUND_MS]).toEqual([where, true]);
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    expect(await snapshot()).toEqual(before);
    // Every operation with something to break was hit.
    const hit = new Set([...covered].map((entry) => entry.split(' ').slice(0, 2).join(' ')));
    expect(hit.size).toBeGreaterThanOrEqual(operations.filter((operation) => !operation.isPublic).length);
  });
});
