/**
 * What text the API stores: exactly what the client sent, so it must be text that survives storage
 * and display unchanged. Refused: lone surrogates (UTF-8 cannot hold them; they would come back as
 * U+FFFD), C0 and C1 control characters and DEL (NUL breaks Postgres, the others break clients), and
 * the bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069), which make
 * text display in another order than it is stored. Line breaks and tabs only where asked for.
 */
/* eslint-disable no-control-regex -- control characters are exactly what these patterns find */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const CONTROL_OR_LINE_BREAK = /[\u0000-\u001f\u007f-\u009f]/;
/* eslint-enable no-control-regex */
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;
/** With the `u` flag a surrogate pair is one code point; only a lone half is in category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

export function textProblem(value: string, options: { allowLineBreaks: boolean }): string | null {
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode (it has a lone surrogate)';
  if ((options.allowLineBreaks ? CONTROL : CONTROL_OR_LINE_BREAK).test(value))
    return `must not contain control characters${options.allowLineBreaks ? ' (line breaks and tabs are fine)' : ''}`;
  if (BIDI_CONTROL.test(value)) return 'must not contain bidirectional override or isolate characters';
  return null;
}
