/**
 * One rule for the Content-Type of an upload, whichever store takes it: the URL is signed for the
 * declared type, and the store accepts exactly that value (SigV4 compares signed header values after
 * trimming them and collapsing runs of spaces, nothing more: no case folding, no parameter rewriting).
 * The same table runs against the local driver and against s3rver, a real SigV4-checking store.
 */
import { wav } from './support/audio';
import { Phone, putBytes } from './support/phone';
import { startTestApp, type StorageKind, type TestApp } from './support/test-app';

interface ContentTypeCase {
  declared: string;
  /** The Content-Type header sent with the PUT; undefined sends none. */
  sent: string | undefined;
  accepted: boolean;
}

const CASES: ContentTypeCase[] = [
  { declared: 'audio/wav', sent: 'audio/wav', accepted: true },
  { declared: 'audio/webm;codecs=opus', sent: 'audio/webm;codecs=opus', accepted: true },
  // Declared with a space and capitals: stored (and signed) normalized, so the normalized value is what to send.
  { declared: 'Audio/WebM; codecs=opus', sent: 'audio/webm;codecs=opus', accepted: true },
  { declared: 'audio/webm;codecs=opus', sent: 'audio/webm; codecs=opus', accepted: false },
  { declared: 'audio/webm;codecs=opus', sent: 'audio/webm ;codecs=opus', accepted: false },
  { declared: 'audio/webm;codecs=opus', sent: 'Audio/WebM;codecs=opus', accepted: false },
  { declared: 'audio/webm;codecs=opus', sent: 'audio/webm;codecs=OPUS', accepted: false },
  { declared: 'audio/webm;codecs=opus', sent: 'audio/webm', accepted: false },
  { declared: 'audio/webm;codecs=opus', sent: 'audio/webm;codecs=vorbis', accepted: false },
  { declared: 'audio/webm', sent: 'audio/webm;codecs=opus', accepted: false },
  { declared: 'audio/wav', sent: 'AUDIO/WAV', accepted: false },
  { declared: 'audio/wav', sent: 'audio/x-wav', accepted: false },
  { declared: 'audio/wav', sent: 'audio/wav;charset=binary', accepted: false },
  { declared: 'audio/wav', sent: undefined, accepted: false },
];

describe.each(['local', 's3'] as StorageKind[])('the Content-Type of an upload on %s storage', (storage) => {
  let testApp: TestApp;
  let phone: Phone;
  const audio = wav(0.1);

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage });
    phone = await testApp.phone('alice');
  });

  afterAll(async () => {
    await testApp?.close();
  });

  it.each(CASES)('declared $declared, sent $sent: accepted $accepted', async ({ declared, sent, accepted }) => {
    const created = await phone.post('/api/audio-clips', {
      mime_type: declared,
      bytes: audio.length,
      duration_ms: 100,
    });
    expect(created.status).toBe(201);
    const answer = await putBytes(created.body.upload.url, audio, sent === undefined ? {} : { 'Content-Type': sent });
    expect(answer.status).toBe(accepted ? 200 : 403);
    const stored = await testApp.storage.inspect(created.body.upload.storage_key);
    if (accepted) expect(stored?.contentType).toBe(created.body.upload.headers['Content-Type']);
    else expect(stored).toBeNull();
  });
});
