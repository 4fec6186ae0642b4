import { Global, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';
import { FailedAttemptsLimiter } from './failed-attempts.limiter';
import { FixedWindowThrottlerStorage } from './fixed-window.storage';
import { isUploadLimited } from './rate-limit.guard';

const MINUTE_MS = 60_000;

/** Two budgets per caller and minute: one for everything, a smaller one for creating and completing uploads. */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        storage: new FixedWindowThrottlerStorage(),
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
