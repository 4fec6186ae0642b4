import type { RenditionSource, RenditionStatus } from './rendition.entity';

/** A rendition as a clip shows it (the row, or what stands for a row not made yet). */
export interface RenditionView {
  format: string;
  mimeType: string;
  status: RenditionStatus;
  bytes: number | null;
  durationMs: number | null;
  failureReason: string | null;
  /** `original` when the original already is the format and is played as it is. */
  source: RenditionSource;
}
