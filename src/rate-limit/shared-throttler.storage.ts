import { Logger, OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import Redis from 'ioredis';
import { FixedWindowThrottlerStorage } from './fixed-window.storage';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * One fixed window per caller, counted in Redis by one atomic script: the hit, the window's start on
 * the first hit, and what is left of it. Same rule as the in-memory store, shared by every instance.
 */
const INCREMENT_SCRIPT = `
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if hits == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return { hits, left }`;

/**
 * A rate-limit answer must not wait on a hung Redis for longer than this; the local count answers
 * instead. (A Redis that is down costs nothing: the connection is known lost and the local count answers
 * at once.) Not much less: on an overloaded instance the timer can fire before a reply already received
 * is read, and 250 ms did so on this shared two-core machine under the multi-instance test.
 */
const COMMAND_TIMEOUT_MS = 1_000;

type RedisWithIncrement = Redis & {
  throttleIncrement(key: string, ttlMs: number): Promise<[number, number]>;
};

/**
 * Rate limits shared by every instance through Redis (REDIS_URL), so N instances allow the limit once,
 * not N times. When Redis cannot answer (down, unreachable, too slow), each instance falls back to its
 * own in-memory count at once and says so in the log; the API stays up, with per-instance limits, until
 * Redis is back.
 */
export class SharedThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly logger = new Logger('RateLimits');
  private readonly redis: RedisWithIncrement;
  private usingFallback = false;

  constructor(
    redisUrl: string,
    /** Keeps environments sharing one Redis apart (the storage key prefix). */
    private readonly keyPrefix: string,
    private readonly fallback = new FixedWindowThrottlerStorage(),
  ) {
    this.redis = new Redis(redisUrl, {
      // Fail at once while disconnected instead of queueing behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
      lazyConnect: false,
    }) as RedisWithIncrement;
    this.redis.defineCommand('throttleIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
    this.redis.on('error', () => {
      // Reported through the fallback below; ioredis would otherwise print every reconnect attempt.
    });
    this.redis.on('ready', () => {
      if (this.usingFallback) this.logger.log('Redis is back: rate limits are shared across instances again.');
      this.usingFallback = false;
    });
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    if (this.redis.status !== 'ready')
      return this.local(key, ttl, limit, blockDuration, throttlerName, 'not connected');
    try {
      const [hits, leftMs] = await this.redis.throttleIncrement(
        `${this.keyPrefix}:throttle:${throttlerName}:${key}`,
        ttl,
      );
      const secondsLeft = Math.max(1, Math.ceil(leftMs / 1000));
      const isBlocked = hits > limit;
      return { totalHits: hits, timeToExpire: secondsLeft, isBlocked, timeToBlockExpire: isBlocked ? secondsLeft : 0 };
    } catch (error) {
      return this.local(
        key,
        ttl,
        limit,
        blockDuration,
        throttlerName,
        error instanceof Error ? error.message : String(error),
      );
    }
  }

  onApplicationShutdown(): void {
    this.fallback.onModuleDestroy();
    // Nothing is left to flush (every count is one script call): close now, and stop reconnecting.
    this.redis.disconnect(false);
  }

  private local(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
    reason: string,
  ): Promise<ThrottlerStorageRecord> {
    if (!this.usingFallback) {
      this.usingFallback = true;
      this.logger.warn(
        `Redis cannot count requests (${reason}): rate limits fall back to this instance's own memory until it is back.`,
      );
    }
    return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
  }
}
