import { AppError } from '../common/app-error';
import type { StorageDriver } from '../storage/storage-driver';
import type { Metrics } from './metrics';

/** The port's operations, each measured under its own name. */
const OPERATIONS = {
  presignUpload: 'presign_upload',
  presignDownload: 'presign_download',
  inspect: 'inspect',
  readRange: 'read_range',
  move: 'move',
  delete: 'delete',
  ping: 'ping',
  openRead: 'open_read',
  writeStream: 'write_stream',
} as const satisfies Partial<Record<keyof StorageDriver, string>>;

/**
 * The same driver, every port call timed and its failures counted: the methods are wrapped on the
 * instance itself, so it stays what it is (the local driver's object endpoint checks `instanceof`) and
 * no other property access pays for it. Label children are bound once: presigning is on the playback
 * hot path.
 */
export function instrumentStorage<T extends StorageDriver>(driver: T, driverName: string, metrics: Metrics): T {
  const methods = driver as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const [method, operation] of Object.entries(OPERATIONS)) {
    const original = methods[method];
    if (typeof original !== 'function') continue;
    const duration = metrics.storageDuration.labels(driverName, operation);
    methods[method] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await original.apply(driver, args);
      } catch (error) {
        metrics.storageErrors.inc({
          driver: driverName,
          operation,
          code: error instanceof AppError ? error.code : 'UNEXPECTED',
        });
        throw error;
      } finally {
        duration.observe((performance.now() - started) / 1000);
      }
    };
  }
  return driver;
}
