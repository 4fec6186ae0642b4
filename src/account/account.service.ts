import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { AppConfig } from '../config/app-config';
import { AudioClipsRepository, type ClipLimits, type Holdings } from '../audio-clips/audio-clips.repository';
import { StorageDeletionsService } from '../audio-clips/deletions/storage-deletions.service';
import type { DeletionRequest } from '../audio-clips/deletions/storage-deletions.repository';
import { AccountRepository } from './account.repository';

export interface AccountUsage {
  userId: string;
  notes: number;
  audioClips: number;
  /** The very figures the quota-checked create compares with the limits. */
  holdings: Holdings;
  limits: ClipLimits;
}

export interface AccountDeletion {
  userId: string;
  deletedRows: Record<string, number>;
  scheduledObjects: number;
  /** When the last upload URL handed out before can no longer write (its last delete); null when none was open. */
  uploadsDeletedAfter: Date | null;
}

/**
 * Stored objects of an owner besides their clips' (export archives), with their deletions: every feature
 * that stores objects for an owner contributes its own, so an account deletion schedules them all.
 */
export interface OwnedObjects {
  deletionsOf(ownerId: string, now: Date): Promise<DeletionRequest[]>;
}

/** The signed-in owner's own account: what they use against their limits, and its deletion. */
@Injectable()
export class AccountService {
  private readonly ownedObjects: OwnedObjects[] = [];

  constructor(
    private readonly account: AccountRepository,
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsService,
    private readonly config: AppConfig,
  ) {}

  /** A feature storing objects for owners registers them here (at module init). */
  addOwnedObjects(source: OwnedObjects): void {
    this.ownedObjects.push(source);
  }

  limits(): ClipLimits {
    const { userQuotaBytes, maxPendingUploadBytes, maxPendingUploads } = this.config.limits;
    return { quotaBytes: userQuotaBytes, maxPendingBytes: maxPendingUploadBytes, maxPendingUploads };
  }

  async usage(ownerId: string): Promise<AccountUsage> {
    const [counts, holdings] = await Promise.all([
      this.account.countNotesAndClips(ownerId),
      this.clips.holdings(ownerId),
    ]);
    return { userId: ownerId, ...counts, holdings, limits: this.limits() };
  }

  /**
   * Deletes everything of the owner: every row of every table with an owner column, at once, and every
   * stored object through the deletion outbox. The objects are recorded first (as for a deleted clip:
   * what a still-valid upload URL can write is held against the owner until its last delete), so a crash
   * or an unreachable store cannot orphan them. A clip created meanwhile is covered too: its upload key
   * was recorded when its URL was made. Idempotent: a repeat finds nothing and deletes nothing.
   */
  async delete(ownerId: string, confirmation: string | undefined): Promise<AccountDeletion> {
    assertConfirmed(ownerId, confirmation);
    const now = new Date();
    const requests = [
      ...this.deletions.ofGoneClips(await this.clips.keysOfGoneClips(ownerId), now),
      ...(await Promise.all(this.ownedObjects.map((source) => source.deletionsOf(ownerId, now)))).flat(),
    ];
    await this.deletions.record(requests, now);
    const deletedRows = await this.account.deleteEverythingOf(ownerId);
    await this.deletions.deleteSoon(requests.map((request) => request.storageKey));
    const lastDelete = requests.reduce<Date | null>(
      (latest, request) =>
        request.deleteAfter > now && (!latest || request.deleteAfter > latest) ? request.deleteAfter : latest,
      null,
    );
    return { userId: ownerId, deletedRows, scheduledObjects: requests.length, uploadsDeletedAfter: lastDelete };
  }
}

/**
 * `Confirm-Delete` must be the owner's id, percent-encoded (a `sub` may hold any Unicode, a header only
 * Latin-1): a client that deletes must have read whose account it is.
 */
function assertConfirmed(ownerId: string, confirmation: string | undefined): void {
  let decoded: string | null;
  try {
    decoded = confirmation === undefined ? null : decodeURIComponent(confirmation);
  } catch {
    decoded = null;
  }
  if (decoded === ownerId) return;
  throw new AppError(
    'DELETE_NOT_CONFIRMED',
    confirmation === undefined
      ? 'Deleting your account needs the header Confirm-Delete: your user_id (from GET /api/me), percent-encoded.'
      : 'Confirm-Delete does not match your user_id (from GET /api/me, percent-encoded). Nothing was deleted.',
  );
}
