import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AuthenticatedUser } from './token-verifier';

export const IS_PUBLIC = 'auth:isPublic';

/** Marks a controller or route that needs no bearer token (health, signed storage URLs). */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(IS_PUBLIC, true);

export type AuthenticatedRequest = FastifyRequest & { user?: AuthenticatedUser };

/** The id of the signed-in caller; every service call is scoped by it. */
export const OwnerId = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const user = context.switchToHttp().getRequest<AuthenticatedRequest>().user;
  // The global guard runs first; a route without a user here is a wiring mistake, not a client error.
  if (!user) throw new Error('OwnerId used on a route the authentication guard did not cover');
  return user.id;
});
