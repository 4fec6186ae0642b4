import { SignJWT } from 'jose';
import { DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, type AuthConfig } from '../config/app-config';
import { loadOrCreateSecret } from '../common/secret-file';

/**
 * A token for `userId` signed with the server's shared secret (configured, or the development one
 * it generated), for trying the API by hand. Identity-provider setups mint their own tokens.
 */
export async function issueToken(
  auth: AuthConfig,
  userId: string,
  lifetimeSeconds = auth.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
): Promise<string> {
  if (auth.mode === 'jwks')
    throw new Error('AUTH_JWKS_URL is set: tokens come from your identity provider, not from this server');
  const secret =
    auth.mode === 'secret'
      ? new TextEncoder().encode(auth.secret)
      : new Uint8Array(await loadOrCreateSecret(auth.secretFile));
  let token = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds);
  if (auth.issuer) token = token.setIssuer(auth.issuer);
  if (auth.audience) token = token.setAudience(auth.audience);
  return token.sign(secret);
}
