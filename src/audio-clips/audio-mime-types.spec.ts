import {
  baseMimeType,
  DEFAULT_AUDIO_MIME_TYPES,
  extensionForMimeType,
  isWellFormedMimeType,
  normalizeMimeType,
} from './audio-mime-types';

/** What phones and browsers record, and the extension the design note stores each under. */
const EXPECTED_EXTENSIONS: ReadonlyArray<readonly [mimeType: string, extension: string]> = [
  ['audio/m4a', 'm4a'],
  ['audio/x-m4a', 'm4a'],
  ['audio/mp4', 'm4a'],
  ['audio/aac', 'aac'],
  ['audio/x-aac', 'aac'],
  ['audio/mpeg', 'mp3'],
  ['audio/mp3', 'mp3'],
  ['audio/wav', 'wav'],
  ['audio/x-wav', 'wav'],
  ['audio/wave', 'wav'],
  ['audio/vnd.wave', 'wav'],
  ['audio/webm', 'webm'],
  ['audio/ogg', 'ogg'],
  ['audio/opus', 'opus'],
  ['audio/flac', 'flac'],
  ['audio/x-flac', 'flac'],
  ['audio/amr', 'amr'],
  ['audio/3gpp', '3gp'],
  ['audio/3gpp2', '3g2'],
];

describe('extensionForMimeType', () => {
  it.each(EXPECTED_EXTENSIONS)('%s → .%s', (mimeType, extension) => {
    expect(extensionForMimeType(mimeType)).toBe(extension);
  });

  it.each(EXPECTED_EXTENSIONS)('%s in upper case with parameters and spaces still → .%s', (mimeType, extension) => {
    expect(extensionForMimeType(`  ${mimeType.toUpperCase()} ; codecs=opus ; rate = 48000 `)).toBe(extension);
  });

  it.each([
    ['audio/webm;codecs=opus', 'webm'],
    ['audio/webm; codecs="opus"', 'webm'],
    ['Audio/WebM; Codecs=Opus', 'webm'],
    ['audio/ogg;codecs=opus', 'ogg'],
    ['audio/mp4; codecs="mp4a.40.2"', 'm4a'],
    ['audio/wav;rate=44100;channels=1', 'wav'],
  ])('goes by the base type of %j → .%s', (mimeType, extension) => {
    expect(extensionForMimeType(mimeType)).toBe(extension);
  });

  it.each([
    '',
    'audio',
    'audio/',
    'video/mp4',
    'video/webm',
    'text/plain',
    'application/octet-stream',
    'audio/x-unknown',
    'audio/*',
    '*/*',
    'audio/m4a2',
    'xaudio/m4a',
    'audio/webm/extra',
    'toString',
    'hasOwnProperty',
    'valueOf',
  ])('knows no extension for %j', (mimeType) => {
    expect(extensionForMimeType(mimeType)).toBeUndefined();
  });

  // The table is looked up by own keys only: Object.prototype names are not types.
  it.each(['constructor', '__proto__', 'constructor;codecs=opus'])(
    'knows no extension for the Object.prototype key %j',
    (mimeType) => {
      expect(extensionForMimeType(mimeType)).toBeUndefined();
    },
  );

  it('only ever answers with a short lower-case alphanumeric extension', () => {
    for (const mimeType of DEFAULT_AUDIO_MIME_TYPES) expect(extensionForMimeType(mimeType)).toMatch(/^[a-z0-9]{2,5}$/);
  });
});

describe('DEFAULT_AUDIO_MIME_TYPES', () => {
  it('is exactly the types with a known extension', () => {
    expect([...DEFAULT_AUDIO_MIME_TYPES].sort()).toEqual(EXPECTED_EXTENSIONS.map(([mimeType]) => mimeType).sort());
  });

  it('holds only normalized, parameter-free, well-formed audio types', () => {
    for (const mimeType of DEFAULT_AUDIO_MIME_TYPES) {
      expect(mimeType).toBe(normalizeMimeType(mimeType));
      expect(mimeType).toBe(baseMimeType(mimeType));
      expect(mimeType.startsWith('audio/')).toBe(true);
      expect(isWellFormedMimeType(mimeType)).toBe(true);
    }
  });

  it('includes what iOS, Android and browsers record', () => {
    expect(DEFAULT_AUDIO_MIME_TYPES).toEqual(
      expect.arrayContaining([
        'audio/m4a',
        'audio/x-m4a',
        'audio/mp4',
        'audio/aac',
        'audio/webm',
        'audio/ogg',
        'audio/mpeg',
        'audio/3gpp',
      ]),
    );
  });
});

describe('normalizeMimeType', () => {
  it.each([
    ['audio/m4a', 'audio/m4a'],
    ['  AUDIO/M4A  ', 'audio/m4a'],
    ['Audio/WebM; codecs=opus', 'audio/webm;codecs=opus'],
    ['audio/webm ;codecs = opus', 'audio/webm;codecs=opus'],
    ['audio/webm; codecs="opus"', 'audio/webm;codecs="opus"'],
    ['audio/wav; rate=44100;  channels=1', 'audio/wav;rate=44100;channels=1'],
  ])('%j → %j', (raw, expected) => {
    expect(normalizeMimeType(raw)).toBe(expected);
  });

  it('is idempotent', () => {
    for (const raw of ['Audio/WebM; codecs=opus', ' audio/MP4 ; codecs = "mp4a.40.2" ']) {
      expect(normalizeMimeType(normalizeMimeType(raw))).toBe(normalizeMimeType(raw));
    }
  });
});

describe('baseMimeType', () => {
  it.each([
    ['audio/webm;codecs=opus', 'audio/webm'],
    ['Audio/WebM; Codecs=Opus', 'audio/webm'],
    [' audio/m4a ', 'audio/m4a'],
    ['audio/ogg', 'audio/ogg'],
    ['audio/wav;rate=44100;channels=1', 'audio/wav'],
  ])('%j → %j', (raw, expected) => {
    expect(baseMimeType(raw)).toBe(expected);
  });
});

describe('isWellFormedMimeType', () => {
  it.each([
    'audio/m4a',
    'AUDIO/M4A',
    'audio/x-m4a',
    'audio/vnd.wave',
    'audio/webm;codecs=opus',
    'audio/webm; codecs=opus',
    'audio/webm; codecs="opus"',
    'audio/mp4;codecs="mp4a.40.2"',
    'audio/wav;rate=44100;channels=1',
    '  audio/ogg  ',
  ])('accepts %j', (mimeType) => {
    expect(isWellFormedMimeType(mimeType)).toBe(true);
  });

  it.each([
    '',
    'audio',
    'audio/',
    '/webm',
    'audio//webm',
    'audio/webm/x',
    'audio/we bm',
    'audio webm',
    'audio/webm;',
    'audio/webm;codecs',
    'audio/webm;codecs=',
    'audio/webm;=opus',
    'audio/webm;codecs="opus',
    'audio/webm;;codecs=opus',
    'audio/webm\r\nX-Injected: yes',
    'audio/webm;codecs=opus\nx',
    '-audio/webm',
    'audio/ü',
    'audio/webm,audio/ogg',
  ])('rejects %j', (mimeType) => {
    expect(isWellFormedMimeType(mimeType)).toBe(false);
  });
});
