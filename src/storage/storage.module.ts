import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { LocalStorageController } from './local-storage.controller';
import { LocalStorageDriver } from './local-storage.driver';
import { createS3Client, S3StorageDriver } from './s3-storage.driver';
import { checkBucket } from './s3-bucket-check';
import { STORAGE_DRIVER, type StorageDriver } from './storage-driver';
import { instrumentStorage } from '../operations/instrumented-storage';
import { Metrics } from '../operations/metrics';

/** Picks the storage back end once, from config; the rest of the app only sees `StorageDriver`. */
export async function createStorageDriver(config: AppConfig): Promise<StorageDriver> {
  const { storage } = config;
  if (storage.driver === 's3' && storage.s3) {
    const client = createS3Client(storage.s3);
    try {
      // A bucket that is missing or refuses the credentials stops the start, rather than every upload later.
      await checkBucket(client, storage.s3, storage.keyPrefix);
      return await S3StorageDriver.open(client, storage.s3.bucket, storage.s3);
    } catch (error) {
      client.destroy();
      throw error;
    }
  }
  if (storage.driver === 'local' && storage.local) {
    return LocalStorageDriver.open(storage.local, config.publicBaseUrl);
  }
  throw new Error(`Storage driver "${storage.driver}" has no settings`);
}

@Global()
@Module({
  controllers: [LocalStorageController],
  providers: [
    {
      provide: STORAGE_DRIVER,
      inject: [AppConfig, Metrics],
      useFactory: async (config: AppConfig, metrics: Metrics) =>
        instrumentStorage(await createStorageDriver(config), config.storage.driver, metrics),
    },
  ],
  exports: [STORAGE_DRIVER],
})
export class StorageModule implements OnApplicationShutdown {
  constructor(@Inject(STORAGE_DRIVER) private readonly driver: StorageDriver) {}

  onApplicationShutdown(): void {
    if (this.driver instanceof S3StorageDriver) this.driver.close();
  }
}
