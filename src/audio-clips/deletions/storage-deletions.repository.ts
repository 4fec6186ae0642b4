import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, LessThanOrEqual, Repository } from 'typeorm';
import { timestampParameter } from '../../database/database.options';
import { SqlStatements } from '../../database/sql-statements';
import { StorageDeletion } from './storage-deletion.entity';

/**
 * Upsert that keeps the later `delete_after`, keeps a recorded multipart upload id and holder (the
 * owner charged for what a dead upload URL can write), and bumps the version (same syntax on Postgres
 * and SQLite).
 */
const ENQUEUE = `INSERT INTO storage_deletions (storage_key, delete_after, next_attempt_at, attempts, last_error, created_at, version, multipart_upload_id, owner_id, held_bytes)
  VALUES (?, ?, ?, 0, NULL, ?, 0, ?, ?, ?)
  ON CONFLICT (storage_key) DO UPDATE SET
    multipart_upload_id = COALESCE(excluded.multipart_upload_id, storage_deletions.multipart_upload_id),
    owner_id = COALESCE(excluded.owner_id, storage_deletions.owner_id),
    held_bytes = COALESCE(excluded.held_bytes, storage_deletions.held_bytes),
    delete_after = CASE WHEN excluded.delete_after > storage_deletions.delete_after THEN excluded.delete_after ELSE storage_deletions.delete_after END,
    next_attempt_at = excluded.next_attempt_at,
    created_at = excluded.created_at,
    version = storage_deletions.version + 1`;

export interface DeletionRequest {
  storageKey: string;
  /** When no URL can write the key any more. */
  deleteAfter: Date;
  /** A multipart upload to abort before the key is deleted. */
  multipartUploadId?: string | null;
  /** Whom the bytes a still-valid upload URL can write are counted against, until the entry goes. */
  ownerId?: string | null;
  heldBytes?: number | null;
}

/** The outbox of objects to delete. Claims are optimistic updates, so several instances never work one entry at once. */
@Injectable()
export class StorageDeletionsRepository {
  private readonly dataSource: DataSource;
  private readonly sql: SqlStatements;

  constructor(@InjectRepository(StorageDeletion) private readonly deletions: Repository<StorageDeletion>) {
    this.dataSource = deletions.manager.connection;
    this.sql = new SqlStatements(this.dataSource);
  }

  /**
   * Records (or records again) that the keys must go. Recording again keeps the later `delete_after`,
   * makes the entry due now, and bumps its version, so a worker that claimed it before lets it be.
   */
  async enqueue(requests: DeletionRequest[], now: Date, firstAttemptAt: Date = now): Promise<void> {
    const at = (date: Date) => timestampParameter(this.dataSource.options.type, date);
    for (const request of requests) {
      await this.sql.execute(ENQUEUE, [
        request.storageKey,
        at(request.deleteAfter),
        at(firstAttemptAt),
        at(now),
        request.multipartUploadId ?? null,
        request.ownerId ?? null,
        request.heldBytes ?? null,
      ]);
    }
  }

  findDue(now: Date, limit: number): Promise<StorageDeletion[]> {
    return this.deletions.find({
      where: { nextAttemptAt: LessThanOrEqual(now) },
      order: { nextAttemptAt: 'ASC' },
      take: limit,
    });
  }

  find(storageKeys: string[]): Promise<StorageDeletion[]> {
    return storageKeys.length === 0
      ? Promise.resolve([])
      : this.deletions.findBy(storageKeys.map((storageKey) => ({ storageKey })));
  }

  /**
   * Takes the entry until `until` if nobody changed it since it was read. Returns the claimed entry
   * (with its new version), or null when another worker or a new enqueue got there first.
   */
  async claim(entry: StorageDeletion, until: Date): Promise<StorageDeletion | null> {
    const result = await this.deletions.update(
      { storageKey: entry.storageKey, version: entry.version },
      { nextAttemptAt: until, version: entry.version + 1 },
    );
    return (result.affected ?? 0) > 0 ? { ...entry, nextAttemptAt: until, version: entry.version + 1 } : null;
  }

  /**
   * Only the claimed version: if the key was recorded again meanwhile, that newer entry stands.
   * `releaseHold`: nothing more can land under the key, so its owner is no longer charged for it.
   */
  async reschedule(
    claimed: StorageDeletion,
    at: Date,
    attempts: number,
    lastError: string | null,
    releaseHold = false,
  ): Promise<void> {
    await this.deletions.update(
      { storageKey: claimed.storageKey, version: claimed.version },
      {
        nextAttemptAt: at,
        attempts,
        lastError: lastError?.slice(0, 500) ?? null,
        ...(releaseHold ? { ownerId: null, heldBytes: null } : {}),
      },
    );
  }

  async remove(claimed: StorageDeletion): Promise<void> {
    await this.deletions.delete({ storageKey: claimed.storageKey, version: claimed.version });
  }

  count(): Promise<number> {
    return this.deletions.count();
  }
}
