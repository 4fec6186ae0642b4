/**
 * Audio types a phone or browser actually records, and the file extension each is stored under.
 * iOS reports AAC-in-MP4 as `audio/m4a` or `audio/x-m4a`; Android and browsers use the registered names.
 */
const EXTENSION_BY_MIME_TYPE: Readonly<Record<string, string>> = {
  'audio/m4a': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/mp4': 'm4a',
  'audio/aac': 'aac',
  'audio/x-aac': 'aac',
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/wave': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/webm': 'webm',
  'audio/ogg': 'ogg',
  'audio/opus': 'opus',
  'audio/flac': 'flac',
  'audio/x-flac': 'flac',
  'audio/amr': 'amr',
  'audio/3gpp': '3gp',
  'audio/3gpp2': '3g2',
};

export const DEFAULT_AUDIO_MIME_TYPES: readonly string[] = Object.keys(EXTENSION_BY_MIME_TYPE);

const MIME_TYPE_SYNTAX =
  /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*(;[a-z0-9!#$&^_.+-]+=("[\x20\x21\x23-\x5b\x5d-\x7e]*"|[a-z0-9!#$&^_.+-]+))*$/;

/** Lower-cases and drops whitespace: `Audio/WebM; codecs=opus` becomes `audio/webm;codecs=opus`. */
export function normalizeMimeType(mimeType: string): string {
  return mimeType
    .trim()
    .toLowerCase()
    .replace(/\s*;\s*/g, ';')
    .replace(/\s*=\s*/g, '=');
}

/** The part before any `;parameters`, which is what the allow-list and the extension go by. */
export function baseMimeType(mimeType: string): string {
  return normalizeMimeType(mimeType).split(';')[0];
}

export function isWellFormedMimeType(mimeType: string): boolean {
  return MIME_TYPE_SYNTAX.test(normalizeMimeType(mimeType));
}

export function extensionForMimeType(mimeType: string): string | undefined {
  const base = baseMimeType(mimeType);
  // Own keys only: `constructor` or `__proto__` must not find Object's.
  return Object.hasOwn(EXTENSION_BY_MIME_TYPE, base) ? EXTENSION_BY_MIME_TYPE[base] : undefined;
}
