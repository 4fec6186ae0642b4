import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, LessThanOrEqual, Repository } from 'typeorm';
import { StorageDeletion } from './storage-deletion.entity';

export interface DeletionRequest {
  storageKey: string;
  /** When no URL can write the key any more. */
  deleteAfter: Date;
}

/** The outbox of objects to delete. Claims are optimistic updates, so several instances never work one entry at once. */
@Injectable()
export class StorageDeletionsRepository {
  private readonly deletions: Repository<StorageDeletion>;

  constructor(@InjectDataSource() dataSource: DataSource) {
    this.deletions = dataSource.getRepository(StorageDeletion);
  }

  async enqueue(requests: DeletionRequest[], now: Date): Promise<void> {
    if (requests.length === 0) return;
    await this.deletions
      .createQueryBuilder()
      .insert()
      .values(requests.map((request) => ({ ...request, nextAttemptAt: now, attempts: 0, lastError: null, createdAt: now })))
      .orUpdate(['delete_after', 'next_attempt_at'], ['storage_key'])
      .execute();
  }

  findDue(now: Date, limit: number): Promise<StorageDeletion[]> {
    return this.deletions.find({ where: { nextAttemptAt: LessThanOrEqual(now) }, order: { nextAttemptAt: 'ASC' }, take: limit });
  }

  find(storageKeys: string[]): Promise<StorageDeletion[]> {
    return storageKeys.length === 0 ? Promise.resolve([]) : this.deletions.findBy(storageKeys.map((storageKey) => ({ storageKey })));
  }

  /** Takes the entry for `leaseMs` if nobody else did since it was read; returns whether this caller has it. */
  async claim(entry: StorageDeletion, until: Date): Promise<boolean> {
    const result = await this.deletions.update({ storageKey: entry.storageKey, nextAttemptAt: entry.nextAttemptAt, attempts: entry.attempts }, { nextAttemptAt: until });
    return (result.affected ?? 0) > 0;
  }

  async reschedule(storageKey: string, at: Date, attempts: number, lastError: string | null): Promise<void> {
    await this.deletions.update({ storageKey }, { nextAttemptAt: at, attempts, lastError: lastError?.slice(0, 500) ?? null });
  }

  async remove(storageKey: string): Promise<void> {
    await this.deletions.delete({ storageKey });
  }

  count(): Promise<number> {
    return this.deletions.count();
  }
}
