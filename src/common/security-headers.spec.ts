import { helmetHeaders } from './security-headers';

describe('helmetHeaders', () => {
  it('gives the headers helmet sets, with the CSP directives given, and nothing helmet removes', () => {
    const headers = helmetHeaders({ contentSecurityPolicy: { directives: { imgSrc: ["'self'", 'data:'] } } });
    expect(headers['content-security-policy']).toContain("img-src 'self' data:");
    expect(headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers).not.toHaveProperty('x-powered-by');
  });

  it('follows the options: a header turned off is not sent', () => {
    expect(helmetHeaders({ frameguard: false })).not.toHaveProperty('x-frame-options');
    expect(helmetHeaders({ contentSecurityPolicy: false })).not.toHaveProperty('content-security-policy');
  });

  it('refuses CSP directives worked out per request, which fixed headers would freeze', () => {
    const nonce = () => "'nonce-abc'";
    expect(() => helmetHeaders({ contentSecurityPolicy: { directives: { scriptSrc: ["'self'", nonce] } } })).toThrow(
      /per request/,
    );
  });
});
