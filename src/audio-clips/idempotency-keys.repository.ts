import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, QueryFailedError, Repository } from 'typeorm';
import { IdempotencyKey } from './idempotency-key.entity';

@Injectable()
export class IdempotencyKeysRepository {
  constructor(@InjectRepository(IdempotencyKey) private readonly keys: Repository<IdempotencyKey>) {}

  find(ownerId: string, key: string): Promise<IdempotencyKey | null> {
    return this.keys.findOneBy({ ownerId, key });
  }

  /** Records the key; `false` when a concurrent request recorded it first. */
  async insert(record: IdempotencyKey): Promise<boolean> {
    try {
      await this.keys.insert(record);
      return true;
    } catch (error) {
      const code = error instanceof QueryFailedError ? (error.driverError as { code?: unknown }).code : undefined;
      if (code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE')
        return false;
      throw error;
    }
  }

  async deleteOlderThan(cutoff: Date): Promise<void> {
    await this.keys.delete({ createdAt: LessThan(cutoff) });
  }
}
