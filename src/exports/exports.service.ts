import { randomUUID } from 'node:crypto';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { AccountService } from '../account/account.service';
import { AppError } from '../common/app-error';
import { AppConfig } from '../config/app-config';
import { STORAGE_DRIVER, type PresignedDownload, type StorageDriver } from '../storage/storage-driver';
import { Export, ExportStatus } from './export.entity';
import { ExportWorker } from './export-worker.service';
import { ExportsRepository } from './exports.repository';

const DAY_MS = 24 * 60 * 60_000;

export interface ExportView {
  export: Export;
  /** What the status says to the owner: a ready export past its expiry is expired, whether or not the janitor came by. */
  status: ExportStatus;
  download: PresignedDownload | null;
}

/**
 * The rules of exports: one under way per owner at a time (a second request answers it), at most
 * EXPORTS_PER_DAY asked for in 24 hours, downloadable until `expires_at`, then gone (410).
 */
@Injectable()
export class ExportsService implements OnModuleInit {
  constructor(
    private readonly exports: ExportsRepository,
    private readonly worker: ExportWorker,
    private readonly account: AccountService,
    private readonly config: AppConfig,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /** An account deletion deletes the owner's archives (written or being written) with the rest. */
  onModuleInit(): void {
    this.account.addOwnedObjects({
      deletionsOf: async (ownerId, now) =>
        (await this.exports.keysOfOwner(ownerId)).map((storageKey) => ({ storageKey, deleteAfter: now })),
    });
  }

  async create(ownerId: string): Promise<ExportView> {
    const running = await this.exports.findUnderway(ownerId);
    if (running) return this.view(running);
    const now = new Date();
    const row = Object.assign(new Export(), {
      id: randomUUID(),
      ownerId,
      status: ExportStatus.Pending,
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
    });
    const outcome = await this.exports.insertWithinDailyCap(
      row,
      this.config.exports.perDay,
      new Date(now.getTime() - DAY_MS),
    );
    if (outcome === 'capped') {
      const recent = await this.exports.findCreatedSince(ownerId, new Date(now.getTime() - DAY_MS));
      const oldest = recent[0]?.createdAt ?? now;
      const retryAfter = Math.max(1, Math.ceil((oldest.getTime() + DAY_MS - now.getTime()) / 1000));
      throw new AppError(
        'EXPORTS_PER_DAY_EXCEEDED',
        `At most ${this.config.exports.perDay} exports may be asked for in 24 hours. Retry in ${retryAfter} s.`,
        { headers: { 'retry-after': String(retryAfter) } },
      );
    }
    // A concurrent request inserted one first: that one is the answer.
    const created = outcome === 'inserted' ? row : await this.exports.findUnderway(ownerId);
    if (!created) return this.create(ownerId); // it finished in between: ask again (the cap still holds)
    this.worker.kick();
    return this.view(created);
  }

  async get(ownerId: string, id: string): Promise<ExportView> {
    const found = await this.exports.findById(ownerId, id);
    if (!found) throw new AppError('EXPORT_NOT_FOUND', `No export with id ${id}.`);
    const view = await this.view(found);
    if (view.status === ExportStatus.Expired) {
      throw new AppError(
        'EXPORT_EXPIRED',
        `Export ${id} expired${found.expiresAt ? ` at ${found.expiresAt.toISOString()}` : ''} and its archive was deleted. Ask for a new export.`,
      );
    }
    return view;
  }

  private async view(entry: Export): Promise<ExportView> {
    const now = new Date();
    const expired =
      entry.status === ExportStatus.Expired ||
      (entry.status === ExportStatus.Ready && entry.expiresAt !== null && entry.expiresAt <= now);
    const status = expired ? ExportStatus.Expired : entry.status;
    if (status !== ExportStatus.Ready || !entry.storageKey || !entry.expiresAt)
      return { export: entry, status, download: null };
    // The URL never outlives the archive, nor the usual download URL lifetime.
    const seconds = Math.max(
      1,
      Math.min(
        this.config.storage.presignGetExpiresSeconds,
        Math.floor((entry.expiresAt.getTime() - now.getTime()) / 1000),
      ),
    );
    return { export: entry, status, download: await this.storage.presignDownload(entry.storageKey, seconds) };
  }
}
