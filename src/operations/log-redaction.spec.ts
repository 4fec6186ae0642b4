import { redactSecrets } from './log-redaction';

describe('redactSecrets', () => {
  it.each([
    [
      'an S3 presigned URL',
      'GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=IQoJbSESSION&X-Amz-Signature=0123456789abcdef&x-id=GetObject',
      ['AKIAEXAMPLE', 'IQoJbSESSION', '0123456789abcdef'],
    ],
    ['an encoded S3 signature', 'url=https%3A%2F%2Fx%3FX-Amz-Signature%3Ddeadbeef00', ['deadbeef00']],
    [
      "the local driver's URL",
      '{"msg":"PUT /api/storage/local/k?expires=1&type=audio%2Fwav&length=3&signature=c2lnbmF0dXJl"}',
      ['c2lnbmF0dXJl'],
    ],
    ['a bearer header', 'Authorization: Bearer abc.def.ghi', ['abc.def.ghi']],
    ['a bare JWT', 'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig-nature_x here', ['eyJzdWIiOiJhIn0', 'sig-nature_x']],
    ['a password in a URL', 'connect postgres://app:hunter2@db:5432/notes failed', ['hunter2']],
    ['a password in a URL without a user', 'connect redis://:s3cretpw@cache:6379 failed', ['s3cretpw']],
    [
      'proxy credentials and API keys logged as headers',
      '{"headers":{"proxy-authorization":"Basic cHJveHk6cHc=","x-api-key":"k3y-123"}}',
      ['cHJveHk6cHc=', 'k3y-123'],
    ],
    ['a secret under a JSON key', '{"secretAccessKey":"wJalrXUt\\"nFEMI","password":"p4ss"}', ['wJalrXUt', 'p4ss']],
    [
      'headers logged as an object, at any depth',
      '{"err":{"req":{"headers":{"authorization":"Basic dXNlcjpwYXNz","cookie":"sid=s3ss10n"}}}}',
      ['dXNlcjpwYXNz', 's3ss10n'],
    ],
    [
      'credentials logged as an object',
      '{"credentials":{"accessKeyId":"AKIA1","secretAccessKey":"s3cr3tK3y","sessionToken":"FwoGZX1"}}',
      ['s3cr3tK3y', 'FwoGZX1'],
    ],
  ])('masks %s', (_name, line, secrets) => {
    const redacted = redactSecrets(line);
    for (const secret of secrets) expect(redacted).not.toContain(secret);
    expect(redacted).toContain('[REDACTED]');
  });

  it('leaves an ordinary access line untouched (the same string, no copy)', () => {
    const line =
      '{"level":"info","request_id":"abc","method":"GET","route":"/api/audio-clips/:clip_id/playback","status":200}\n';
    expect(redactSecrets(line)).toBe(line);
  });

  it('keeps the parts around the secret readable', () => {
    expect(redactSecrets('https://h/k?expires=5&signature=abc&x=1')).toBe(
      'https://h/k?expires=5&signature=[REDACTED]&x=1',
    );
  });
});
