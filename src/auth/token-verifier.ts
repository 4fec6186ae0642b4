import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyResult } from 'jose';
import { AppError } from '../common/app-error';
import { DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, type AuthConfig } from '../config/app-config';
import { textProblem } from '../common/text-rules';
import { loadOrCreateSecret } from '../common/secret-file';

/** Who is calling: the token's `sub`, which owns every note and clip it creates. */
export interface AuthenticatedUser {
  id: string;
}

/** Identity providers sign with asymmetric keys; only these are accepted from a JWKS. */
const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const MAX_SUBJECT_LENGTH = 255;
const VERIFIED_CACHE_MS = 60_000;
/** Leeway for the provider's clock when checking how far ahead `exp` lies. */
const CLOCK_SKEW_MS = 60_000;
const VERIFIED_CACHE_ENTRIES = 10_000;

/**
 * Verifies bearer tokens with `jose`: the signature, the algorithm (never `none`), expiry and
 * not-before, and the issuer and audience when configured.
 */
export class TokenVerifier {
  /**
   * Tokens already verified, until they expire or for a minute at most. A phone sends the same token
   * with every request, and checking its signature each time is most of what authentication costs.
   */
  private readonly verified = new Map<string, { user: AuthenticatedUser; until: number }>();

  private constructor(
    private readonly verifyJwt: (token: string) => Promise<JWTVerifyResult>,
    /** Keys come from an identity provider's JWKS (else from a shared secret). */
    private readonly fromJwks: boolean,
    private readonly maxLifetimeMs: number,
  ) {}

  /** Only with a shared secret: an identity provider's retired key must stop working at once. */
  private get cacheVerified(): boolean {
    return !this.fromJwks;
  }

  static async create(config: AuthConfig): Promise<TokenVerifier> {
    // A token without expiry (or without a user) is never accepted, however it is signed.
    const claims = { issuer: config.issuer, audience: config.audience, requiredClaims: ['exp', 'sub'] };
    const maxLifetimeMs = (config.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS) * 1000;
    if (config.mode === 'jwks') {
      const jwks = createRemoteJWKSet(new URL(config.jwksUrl), {
        cooldownDuration: config.cooldownSeconds * 1000,
        timeoutDuration: 5000,
      });
      return new TokenVerifier(
        (token) => jwtVerify(token, jwks, { ...claims, algorithms: JWKS_ALGORITHMS }),
        true,
        maxLifetimeMs,
      );
    }
    const secret =
      config.mode === 'secret' ? new TextEncoder().encode(config.secret) : await loadOrCreateSecret(config.secretFile);
    // Imported once: handing jose the raw bytes would import the key again on every verification.
    const key = await crypto.subtle.importKey('raw', new Uint8Array(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'verify',
    ]);
    return new TokenVerifier(
      (token) => jwtVerify(token, key, { ...claims, algorithms: ['HS256'] }),
      false,
      maxLifetimeMs,
    );
  }

  async verify(token: string): Promise<AuthenticatedUser> {
    const now = Date.now();
    const cached = this.cacheVerified ? this.verified.get(token) : undefined;
    if (cached && cached.until > now) return cached.user;

    let subject: unknown;
    let expiresAtMs: number;
    try {
      const { payload } = await this.verifyJwt(token);
      subject = payload.sub;
      expiresAtMs = (payload.exp ?? 0) * 1000;
    } catch (error) {
      // The identity provider's keys could not be fetched: the token may be fine, so say to retry.
      // (A failed fetch is not a jose error at all; a non-200 answer is jose's generic one.)
      const keysUnavailable =
        error instanceof errors.JWKSTimeout ||
        !(error instanceof errors.JOSEError) ||
        error.code === 'ERR_JOSE_GENERIC';
      if (this.fromJwks && keysUnavailable) {
        throw new AppError(
          'AUTH_UNAVAILABLE',
          'The identity provider’s keys cannot be fetched right now. Retry in a few seconds.',
        );
      }
      throw new AppError('UNAUTHENTICATED', reasonFor(error), {
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    if (expiresAtMs - now > this.maxLifetimeMs + CLOCK_SKEW_MS) {
      throw new AppError(
        'UNAUTHENTICATED',
        `The token is valid for longer than this API accepts (at most ${this.maxLifetimeMs / 1000} s from now). Get a shorter-lived one.`,
        { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
      );
    }
    // The subject becomes the owner of rows: it must be the very string the provider meant, nothing a
    // display or a database would change (surrounding spaces, control characters, lone surrogates).
    if (
      typeof subject !== 'string' ||
      subject === '' ||
      subject.length > MAX_SUBJECT_LENGTH ||
      subject.trim() !== subject ||
      textProblem(subject, { allowLineBreaks: false }) !== null
    ) {
      throw new AppError('UNAUTHENTICATED', 'The token has no usable subject (sub).', {
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    const user = { id: subject };
    if (this.cacheVerified) this.remember(token, user, Math.min(expiresAtMs, now + VERIFIED_CACHE_MS));
    return user;
  }

  private remember(token: string, user: AuthenticatedUser, until: number): void {
    if (this.verified.size >= VERIFIED_CACHE_ENTRIES) {
      // Insertion order makes the first entry the oldest: a cheap bound without an LRU library.
      this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(token, { user, until });
  }
}

function reasonFor(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired. Sign in again.';
  if (error instanceof errors.JWTClaimValidationFailed) return `The token's ${error.claim} claim is not accepted here.`;
  if (error instanceof errors.JOSEAlgNotAllowed)
    return 'The token is signed with an algorithm this API does not accept.';
  if (error instanceof errors.JWKSNoMatchingKey) return 'The token is signed with a key this API does not know.';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token signature is not valid.';
  return 'The token is malformed or not valid.';
}
