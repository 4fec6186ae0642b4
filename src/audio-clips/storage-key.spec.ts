import { randomUUID } from 'node:crypto';
import { DEFAULT_AUDIO_MIME_TYPES, extensionForMimeType } from './audio-mime-types';
import { buildAudioClipKey } from './storage-key';

const CLIP_ID = '9b2f6c1e-3a4d-4e5f-8a6b-7c8d9e0f1a2b';
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';

describe('buildAudioClipKey', () => {
  it('is <prefix>/audio-clips/<clip id>.<extension>', () => {
    expect(buildAudioClipKey('dev', CLIP_ID, 'audio/m4a')).toBe(`dev/audio-clips/${CLIP_ID}.m4a`);
  });

  it.each([
    ['dev', `dev/audio-clips/${CLIP_ID}.webm`],
    ['prod', `prod/audio-clips/${CLIP_ID}.webm`],
    ['staging', `staging/audio-clips/${CLIP_ID}.webm`],
    ['team-a/notes', `team-a/notes/audio-clips/${CLIP_ID}.webm`],
  ])('puts the clip under prefix %j', (prefix, expected) => {
    expect(buildAudioClipKey(prefix, CLIP_ID, 'audio/webm')).toBe(expected);
  });

  it.each([
    ['audio/m4a', 'm4a'],
    ['audio/x-m4a', 'm4a'],
    ['audio/mp4', 'm4a'],
    ['audio/aac', 'aac'],
    ['audio/mpeg', 'mp3'],
    ['audio/mp3', 'mp3'],
    ['audio/wav', 'wav'],
    ['audio/x-wav', 'wav'],
    ['audio/webm', 'webm'],
    ['audio/ogg', 'ogg'],
    ['audio/opus', 'opus'],
    ['audio/flac', 'flac'],
    ['audio/amr', 'amr'],
    ['audio/3gpp', '3gp'],
    ['audio/3gpp2', '3g2'],
  ])('stores %s as .%s', (mimeType, extension) => {
    expect(buildAudioClipKey('dev', CLIP_ID, mimeType)).toBe(`dev/audio-clips/${CLIP_ID}.${extension}`);
  });

  it.each([
    ['audio/webm;codecs=opus', 'webm'],
    ['audio/webm; codecs="opus"', 'webm'],
    ['Audio/WebM; Codecs=Opus', 'webm'],
    ['audio/ogg;codecs=opus', 'ogg'],
    ['audio/mp4; codecs="mp4a.40.2"', 'm4a'],
  ])('drops the parameters of %j (→ .%s)', (mimeType, extension) => {
    const key = buildAudioClipKey('dev', CLIP_ID, mimeType);
    expect(key).toBe(`dev/audio-clips/${CLIP_ID}.${extension}`);
    expect(key).not.toMatch(/[;="\s]/);
  });

  it.each(['video/mp4', 'text/plain', 'audio/x-unknown', '', 'audio', '../../etc/passwd', 'audio/../../x'])(
    'refuses %j, a type with no known extension',
    (mimeType) => {
      expect(() => buildAudioClipKey('dev', CLIP_ID, mimeType)).toThrow(/No file extension/);
    },
  );

  // Object.prototype names must not pass as types with an extension.
  it.each(['__proto__', 'constructor'])('refuses %j, an Object.prototype key', (mimeType) => {
    expect(() => buildAudioClipKey('dev', CLIP_ID, mimeType)).toThrow(/No file extension/);
  });

  it.each([
    'audio/webm;name=../../etc/passwd',
    'audio/webm; filename="evil.sh"',
    'audio/m4a;x=%2e%2e%2f',
    'audio/ogg;codecs=opus;path=/prod/other-tree/x',
    'AUDIO/MP4; note="hello world"',
  ])('never puts client text from %j into the key', (mimeType) => {
    const key = buildAudioClipKey('dev', CLIP_ID, mimeType);
    expect(key).toMatch(new RegExp(`^dev/audio-clips/${UUID}\\.[a-z0-9]+$`));
    const parameters = mimeType.slice(mimeType.indexOf(';') + 1);
    for (const fragment of parameters.split(/[;=\s"/]+/).filter((part) => part.length >= 3)) {
      expect(key.toLowerCase()).not.toContain(fragment.toLowerCase());
    }
    expect(key).not.toContain('..');
  });

  it('gives every default type a key of the safe shape with a fresh random id', () => {
    const keys = new Set<string>();
    for (const mimeType of DEFAULT_AUDIO_MIME_TYPES) {
      const key = buildAudioClipKey('team-a/notes', randomUUID(), mimeType);
      expect(key).toMatch(new RegExp(`^team-a/notes/audio-clips/${UUID}\\.${extensionForMimeType(mimeType)}$`));
      // Only the shapes the local driver lets touch the disk: no empty, dot or odd segments.
      expect(key).toMatch(/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/);
      keys.add(key);
    }
    expect(keys.size).toBe(DEFAULT_AUDIO_MIME_TYPES.length);
  });
});
