/**
 * The formats the server makes. `m4a`: AAC-LC in MP4, mono, fast-start (the index before the audio, so a
 * player starts before the download ends): what iOS, Android and every browser play natively.
 */
export const RENDITION_FORMATS = {
  m4a: {
    mimeType: 'audio/mp4',
    /**
     * Voice: mono at 24 kHz and 32 kbit/s, about 240 KB a minute. AAC-LC at that rate is transparent for
     * speech (what voice-message apps send at) and every decoder plays it.
     */
    sampleRate: 24_000,
    bitrate: '32k',
  },
} as const;

export type RenditionFormat = keyof typeof RENDITION_FORMATS;
export const RENDITION_FORMAT_NAMES = Object.keys(RENDITION_FORMATS) as RenditionFormat[];

export function isRenditionFormat(value: string): value is RenditionFormat {
  return Object.hasOwn(RENDITION_FORMATS, value);
}

/**
 * A rendition whose duration differs from the original's by more than this has failed. AAC works in frames
 * of 1024 samples (43 ms at 24 kHz) and encoders pad the ends: the documented tolerance is 100 ms plus
 * 0.5 % of the length, which still catches a truncated or runaway decode.
 */
export function durationTolerance(expectedMs: number): number {
  return 100 + Math.round(expectedMs * 0.005);
}

/** `<prefix>/audio-clips/<clip id>.universal.m4a`: beside the clip's own object, under its key. */
export function buildRenditionKey(clipStorageKey: string, format: RenditionFormat): string {
  return `${clipStorageKey.replace(/\.[a-z0-9]+$/i, '')}.universal.${format}`;
}
