import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import { AppError } from '../common/app-error';
import { AppConfig } from '../config/app-config';

const MINUTE_MS = 60_000;

/**
 * Failed sign-ins and failed storage signatures count against the client's address, in the same
 * per-address budget (and the same throttler storage) as the guard's unauthenticated requests: a
 * client sending garbage tokens or forged URLs is answered 429 once it has spent it.
 */
@Injectable()
export class FailedAttemptsLimiter {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: AppConfig,
  ) {}

  /** Counts one failure from `address`; throws RATE_LIMITED instead of `failure` once the budget is spent. */
  async failed(address: string, failure: unknown): Promise<never> {
    const limit = this.config.limits.requestsPerMinute;
    // The key RateLimitGuard gives an address in the default budget: `${throttler}:${tracker}`.
    const counted = await this.storage.increment(`default:ip:${address}`, MINUTE_MS, limit, MINUTE_MS, 'default');
    if (counted.isBlocked) {
      const retryAfter = Math.max(1, Math.ceil(counted.timeToBlockExpire));
      throw new AppError(
        'RATE_LIMITED',
        `Too many failed attempts from this address: at most ${limit} a minute. Retry in ${retryAfter} s.`,
        { headers: { 'retry-after': String(retryAfter) } },
      );
    }
    throw failure;
  }
}
