import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const COMMITTED_SPEC = join(__dirname, '..', 'openapi.json');

const OPERATIONS = [
  ['post', '/api/audio-clips', 'createAudioClip'],
  ['get', '/api/audio-clips', 'listAudioClips'],
  ['get', '/api/audio-clips/{clip_id}', 'getAudioClip'],
  ['delete', '/api/audio-clips/{clip_id}', 'deleteAudioClip'],
  ['post', '/api/audio-clips/{clip_id}/complete', 'completeAudioClip'],
  ['post', '/api/audio-clips/{clip_id}/upload-url', 'renewAudioClipUpload'],
  ['post', '/api/audio-clips/{clip_id}/parts', 'createAudioClipPartUrls'],
  ['get', '/api/audio-clips/{clip_id}/parts', 'listAudioClipParts'],
  ['get', '/api/audio-clips/{clip_id}/playback', 'getAudioClipPlayback'],
  ['get', '/api/notes/{note_id}/audio', 'getNoteAudio'],
  ['get', '/api/notes/{note_id}/audio-clips', 'listNoteAudioClips'],
  ['post', '/api/notes', 'createNote'],
  ['get', '/api/notes', 'listNotes'],
  ['get', '/api/notes/{note_id}', 'getNote'],
  ['patch', '/api/notes/{note_id}', 'updateNote'],
  ['delete', '/api/notes/{note_id}', 'deleteNote'],
  ['get', '/api/notes/{note_id}/revisions', 'listNoteRevisions'],
  ['get', '/api/notes/{note_id}/revisions/{version}', 'getNoteRevision'],
  ['post', '/api/notes/{note_id}/revisions/{version}/restore', 'restoreNoteRevision'],
  ['get', '/api/sync/changes', 'listSyncChanges'],
  ['get', '/api/health', 'getLiveness'],
  ['get', '/api/health/ready', 'getReadiness'],
  ['get', '/api/me', 'getMe'],
  ['delete', '/api/me', 'deleteMe'],
  ['post', '/api/me/exports', 'createExport'],
  ['get', '/api/me/exports/{export_id}', 'getExport'],
] as const;

describe('the OpenAPI explorer and spec', () => {
  let testApp: TestApp;
  let phone: Phone;
  let spec: any;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    phone = await testApp.phone('alice');
    spec = (await phone.get('/api/docs-json')).body;
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it('serves the explorer page at /api/docs', async () => {
    const page = await phone.raw('GET', '/api/docs', undefined, {});
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.body).toContain('swagger-ui');
  });

  it('documents every operation under its SDK-friendly name, and nothing else', () => {
    const documented = Object.entries(spec.paths).flatMap(([path, methods]: [string, any]) =>
      Object.entries(methods).map(([method, operation]: [string, any]) => [method, path, operation.operationId]),
    );
    expect(documented.sort()).toEqual(OPERATIONS.map((operation) => [...operation]).sort());
  });

  it('speaks snake_case in every schema, with the seed’s request and response fields', () => {
    const schemas = spec.components.schemas;
    for (const [name, schema] of Object.entries<any>(schemas)) {
      for (const property of Object.keys(schema.properties ?? {}))
        expect(`${name}.${property}`).toMatch(/^\w+\.[a-z0-9_]+$/);
    }
    expect(Object.keys(schemas.CreateAudioClipDto.properties).sort()).toEqual([
      'bytes',
      'content_md5',
      'duration_ms',
      'mime_type',
      'note_id',
    ]);
    expect(schemas.CreateAudioClipDto.required.sort()).toEqual(['bytes', 'duration_ms', 'mime_type']);
    expect(Object.keys(schemas.AudioClipResponseDto.properties).sort()).toEqual([
      'bytes',
      'completed_at',
      'completed_by',
      'content_md5',
      'created_at',
      'declared_duration_ms',
      'duration_ms',
      'duration_source',
      'failure_reason',
      'id',
      'mime_type',
      'note_id',
      'renditions',
      'status',
      'storage_key',
      'updated_at',
      'waveform',
    ]);
    expect(Object.keys(schemas.PresignedUploadDto.properties).sort()).toEqual([
      'expires_at',
      'headers',
      'method',
      'mode',
      'part_count',
      'part_size',
      'server_time',
      'storage_key',
      'url',
    ]);
    expect(schemas.PresignedUploadDto.required.sort()).toEqual(['mode', 'server_time', 'storage_key']);
    expect(Object.keys(schemas.PlaybackDto.properties).sort()).toEqual([
      'expires_at',
      'mime_type',
      'server_time',
      'url',
    ]);
    expect(Object.keys(schemas.CreateAudioClipPartUrlsDto.properties)).toEqual(['part_numbers']);
    expect(Object.keys(schemas.PartUploadUrlDto.properties).sort()).toEqual([
      'expires_at',
      'headers',
      'method',
      'part_number',
      'url',
    ]);
    expect(Object.keys(schemas.PartUploadUrlsDto.properties).sort()).toEqual(['parts', 'server_time']);
    expect(Object.keys(schemas.StoredPartDto.properties).sort()).toEqual(['etag', 'part_number', 'size']);
    // Null is one of its values: a generated non-null enum would fail to decode a pending clip.
    expect(schemas.AudioClipResponseDto.properties.completed_by).toMatchObject({
      type: 'string',
      nullable: true,
      enum: ['client', 'server', null],
    });
  });

  it('documents the list of clips with each query parameter it validates', () => {
    const parameters = spec.paths['/api/audio-clips'].get.parameters.map((parameter: any) => parameter.name).sort();
    expect(parameters).toEqual(['cursor', 'limit', 'status', 'updated_since']);
  });

  it('gives every operation its success schema and its errors in the one error shape', () => {
    for (const [method, path] of OPERATIONS) {
      const responses = spec.paths[path][method].responses;
      const success = Object.keys(responses).filter((status) => status.startsWith('2'));
      expect(success).toHaveLength(1);
      for (const [status, response] of Object.entries<any>(responses)) {
        // 304 Not Modified has no body at all.
        if (status.startsWith('2') || status === '500' || status === '304') continue;
        if (path.startsWith('/api/health') && status === '503') {
          // Probes answer in terminus's shape, which load balancers and dashboards know.
          expect(Object.keys(response.content['application/json'].schema.properties).sort()).toEqual([
            'details',
            'error',
            'info',
            'status',
          ]);
          continue;
        }
        expect(response.content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorResponseDto');
      }
    }
    expect(spec.paths['/api/audio-clips'].post.requestBody.content['application/json'].schema.$ref).toBe(
      '#/components/schemas/CreateAudioClipDto',
    );
  });

  it('matches the committed openapi.json (run `npm run openapi` after changing the API)', async () => {
    const generated = `${JSON.stringify(spec, null, 2)}\n`;
    if (process.env.UPDATE_OPENAPI === '1') await writeFile(COMMITTED_SPEC, generated);
    const committed = await readFile(COMMITTED_SPEC, 'utf8').catch(() => '');
    expect(committed).toBe(generated);
  });
});
