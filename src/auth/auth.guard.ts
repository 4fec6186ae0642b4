import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AppError } from '../common/app-error';
import { IS_PUBLIC, type AuthenticatedRequest } from './auth.decorators';
import { TokenVerifier } from './token-verifier';

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;

/** Applied to every route: no valid bearer token, no access, unless the route is marked `@Public()`. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: TokenVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
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
    request.user = await this.verifier.verify(token);
    return true;
  }
}
