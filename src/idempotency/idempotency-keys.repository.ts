import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, LessThan, QueryFailedError, Repository } from 'typeorm';
import { IdempotencyKey, type IdempotentEndpoint } from './idempotency-key.entity';

@Injectable()
export class IdempotencyKeysRepository {
  constructor(@InjectRepository(IdempotencyKey) private readonly keys: Repository<IdempotencyKey>) {}

  find(ownerId: string, endpoint: IdempotentEndpoint, key: string): Promise<IdempotencyKey | null> {
    return this.keys.findOneBy({ ownerId, endpoint, key });
  }

  /**
   * Records the key; `false` when a concurrent request recorded it first. With `manager`, inside that
   * transaction (a conflict then aborts it on Postgres: the caller rolls back and replays the winner).
   */
  async insert(record: IdempotencyKey, manager?: EntityManager): Promise<boolean> {
    try {
      await (manager ? manager.getRepository(IdempotencyKey) : this.keys).insert(record);
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  async deleteOlderThan(cutoff: Date): Promise<void> {
    await this.keys.delete({ createdAt: LessThan(cutoff) });
  }
}

export function isUniqueViolation(error: unknown): boolean {
  const code = error instanceof QueryFailedError ? (error.driverError as { code?: unknown }).code : undefined;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
