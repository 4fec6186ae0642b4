import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerModule, type ThrottlerStorage } from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';
import { FailedAttemptsLimiter } from './failed-attempts.limiter';
import { FixedWindowThrottlerStorage } from './fixed-window.storage';
import { isUploadLimited } from './rate-limit.guard';
import { SharedThrottlerStorage } from './shared-throttler.storage';

const MINUTE_MS = 60_000;
const RATE_LIMIT_STORAGE = Symbol('RATE_LIMIT_STORAGE');

/**
 * Where requests are counted: in Redis with REDIS_URL, so every instance shares one budget per caller;
 * else in this process's memory (the zero-setup default). A provider, so that shutdown closes Redis.
 */
@Module({
  providers: [
    {
      provide: RATE_LIMIT_STORAGE,
      inject: [AppConfig],
      useFactory: (config: AppConfig): ThrottlerStorage & Partial<OnApplicationShutdown> =>
        config.limits.redisUrl
          ? new SharedThrottlerStorage(config.limits.redisUrl, config.storage.keyPrefix)
          : new FixedWindowThrottlerStorage(),
    },
  ],
  exports: [RATE_LIMIT_STORAGE],
})
class RateLimitStorageModule {}

/** Two budgets per caller and minute: one for everything, a smaller one for creating and completing uploads. */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      imports: [RateLimitStorageModule],
      inject: [AppConfig, RATE_LIMIT_STORAGE],
      useFactory: (config: AppConfig, storage: ThrottlerStorage) => ({
        storage,
        throttlers: [
          { name: 'default', ttl: MINUTE_MS, limit: config.limits.requestsPerMinute },
          {
            name: 'uploads',
            ttl: MINUTE_MS,
            limit: config.limits.uploadRequestsPerMinute,
            skipIf: (context) => !isUploadLimited(context),
          },
        ],
      }),
    }),
  ],
  providers: [FailedAttemptsLimiter],
  exports: [ThrottlerModule, FailedAttemptsLimiter],
})
export class RateLimitModule {}
