/**
 * The last line of defence: every log line passes through here on its way out, whatever logged it
 * (our code, Nest, a library's error message), so a secret that slipped into a message is masked
 * before it reaches stdout. It is also how structured fields are masked: pino's own `redact` paths
 * deep-copied every logged object and cost a tenth of a playback request's CPU (docs/PERFORMANCE.md),
 * while a field under a telling key is masked here wherever it sits in the line.
 */
const MASK = '[REDACTED]';

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  // S3 presigned URLs: the signature, and the credential scope and session token that come with it.
  [/(X-Amz-(?:Signature|Credential|Security-Token)(?:=|%3D))[^&\s"'\\]+/gi, `$1${MASK}`],
  // The local driver's signed URLs.
  [/([?&]signature(?:=|%3D))[^&\s"'\\]+/gi, `$1${MASK}`],
  // Bearer tokens, and JWTs wherever they appear.
  [/(Bearer\s+)[^\s"'\\,]+/gi, `$1${MASK}`],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, MASK],
  // Passwords inside URLs (postgres://user:password@host).
  [/(\/\/[^/:@\s"]*:)[^@\s"/]+@/g, `$1${MASK}@`],
  // Secrets under a telling JSON key.
  [
    /("(?:authorization|proxy-authorization|x-api-key|cookie|set-cookie|signature|password|secret|secretAccessKey|sessionToken|token|x-amz-security-token)"\s*:\s*")(?:[^"\\]|\\.)*"/gi,
    `$1${MASK}"`,
  ],
];

/** One cheap test first: most lines (the access lines) hold none of these words and go out untouched. */
const MAYBE_SECRET =
  /signature|credential|security-token|bearer|eyJ|:\/\/[^/\s"]*@|password|secret|token|cookie|authorization|api-key/i;

export function redactSecrets(line: string): string {
  if (!MAYBE_SECRET.test(line)) return line;
  let redacted = line;
  for (const [pattern, replacement] of SECRET_PATTERNS) redacted = redacted.replace(pattern, replacement);
  return redacted;
}
