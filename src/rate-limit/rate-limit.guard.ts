import { ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import { AppError } from '../common/app-error';
import type { AuthenticatedRequest } from '../auth/auth.decorators';

export const UPLOAD_LIMITED = 'rateLimit:uploads';

/** Puts a route under the stricter upload limit as well (creating and completing uploads). */
export const UploadRateLimited = (): MethodDecorator => SetMetadata(UPLOAD_LIMITED, true);

export function isUploadLimited(context: ExecutionContext): boolean {
  return Reflect.getMetadata(UPLOAD_LIMITED, context.getHandler()) === true;
}

/**
 * Counts requests per signed-in user (so one user on a shared network cannot exhaust others'),
 * falling back to the client address where there is no user. Runs after the authentication guard.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const { user, ip } = request as unknown as AuthenticatedRequest;
    return user ? `user:${user.id}` : `ip:${ip}`;
  }

  /** One budget per caller across all routes (the library's default would give every route its own). */
  protected override generateKey(_context: ExecutionContext, tracker: string, throttlerName: string): string {
    return `${throttlerName}:${tracker}`;
  }

  protected override async throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const retryAfter = Math.max(1, Math.ceil(detail.timeToBlockExpire));
    throw new AppError(
      'RATE_LIMITED',
      `Too many requests: at most ${detail.limit} per ${Math.round(detail.ttl / 1000)} s. Retry in ${retryAfter} s.`,
      {
        headers: { 'retry-after': String(retryAfter) },
      },
    );
  }
}
