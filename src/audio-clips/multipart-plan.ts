import { MIN_PART_SIZE_BYTES } from '../config/app-config';

/** S3 takes at most this many parts in one upload. */
export const MAX_PART_COUNT = 10_000;
/** Part URLs are handed out in batches of at most this many. */
export const MAX_PART_URLS_PER_REQUEST = 100;
const MIB = 1024 * 1024;

export interface PartPlan {
  /** Size of every part but the last. */
  partSize: number;
  partCount: number;
}

/**
 * How a recording of `bytes` is cut: parts as small as S3 allows (5 MiB), so a dropped connection
 * costs at most that much again, and bigger (whole MiB) only when 10 000 parts would not hold it.
 */
export function planParts(bytes: number): PartPlan {
  const partSize = Math.max(MIN_PART_SIZE_BYTES, Math.ceil(bytes / MAX_PART_COUNT / MIB) * MIB);
  return { partSize, partCount: Math.max(1, Math.ceil(bytes / partSize)) };
}

/** The exact size of part `partNumber` (1-based): the last one holds the rest. */
export function partLength(bytes: number, plan: PartPlan, partNumber: number): number {
  return partNumber < plan.partCount ? plan.partSize : bytes - (plan.partCount - 1) * plan.partSize;
}
