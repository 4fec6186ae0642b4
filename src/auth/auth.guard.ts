import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AppError } from '../common/app-error';
import { IS_PUBLIC, type AuthenticatedRequest } from './auth.decorators';
import { FailedAttemptsLimiter } from '../rate-limit/failed-attempts.limiter';
import { TokenVerifier, type AuthenticatedUser } from './token-verifier';

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;

/** Applied to every route: no valid bearer token, no access, unless the route is marked `@Public()`. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: TokenVerifier,
    private readonly failedAttempts: FailedAttemptsLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    try {
      request.user = await this.authenticate(request);
    } catch (error) {
      // Failed sign-ins count against the address, so garbage tokens end in 429 like any flood.
      if (error instanceof AppError && error.code !== 'AUTH_UNAVAILABLE')
        await this.failedAttempts.failed(request.ip, error);
      throw error;
    }
    return true;
  }

  private async authenticate(request: AuthenticatedRequest): Promise<AuthenticatedUser> {
    // Node keeps only the first of repeated Authorization headers; which one a proxy saw is anyone's guess.
    const authorizationHeaders = request.raw.rawHeaders.filter(
      (_value, index, all) => index % 2 === 0 && all[index].toLowerCase() === 'authorization',
    ).length;
    if (authorizationHeaders > 1) {
      throw new AppError('UNAUTHENTICATED', 'Send one Authorization header, not several.', {
        headers: { 'www-authenticate': 'Bearer error="invalid_request"' },
      });
    }
    const header = request.headers.authorization;
    const token = header === undefined ? undefined : BEARER.exec(header.trim())?.[1];
    if (token === undefined) {
      throw new AppError(
        'UNAUTHENTICATED',
        header === undefined
          ? 'Sign in: send Authorization: Bearer <token>.'
          : 'The Authorization header must be "Bearer <token>".',
        {
          headers: { 'www-authenticate': 'Bearer' },
        },
      );
    }
    return this.verifier.verify(token);
  }
}
