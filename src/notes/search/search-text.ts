/**
 * How note text becomes search terms, and how a typed query becomes clauses of terms. One definition for
 * both databases: SQLite calls `noteSearchTerms` from its triggers (a function registered on every
 * connection), and Postgres runs a SQL function generated from the same per-character table
 * (`postgresSearchFunctions`), so a note indexes the same terms wherever it lives and a query folds the
 * same way it was indexed.
 *
 * Folding, in order: Unicode NFKD (compatibility forms and accents come apart), then per character:
 * combining marks removed, lower case (one character to one, locale-free), a few letters that do not
 * decompose mapped to their base (ø→o, ł→l, đ→d, ı→i, final ς→σ), then ß→ss, æ→ae, œ→oe, þ→th, then NFC.
 * Terms are runs of letters and digits; runs of Chinese, Japanese and Korean characters become the
 * overlapping pairs of their characters (bigrams), so any two or more adjacent characters can be found.
 * No stemming and no stop words.
 */

/** Longest term kept (code points): longer runs are cut, in notes and queries alike. */
export const MAX_TERM_LENGTH = 100;
/**
 * Terms indexed per note, title first: Postgres keeps word positions up to 16,383, and phrases need
 * positions, so both databases index the same first 16,383 terms.
 */
export const MAX_TERMS_PER_NOTE = 16_383;

export const SINGLE_CHAR_SPECIALS: Record<string, string> = {
  ø: 'o',
  ł: 'l',
  đ: 'd',
  ð: 'd',
  ħ: 'h',
  ı: 'i',
  ŧ: 't',
  ς: 'σ',
};
/** Applied after the per-character step, in this order (Postgres: nested replace()). */
export const MULTI_CHAR_SPECIALS: readonly (readonly [string, string])[] = [
  ['ß', 'ss'],
  ['æ', 'ae'],
  ['œ', 'oe'],
  ['þ', 'th'],
];

const MARK = /^\p{M}$/u;
const TERM_RUN = /[\p{L}\p{N}]+/gu;
export const CJK_CLASS = '\\p{sc=Han}\\p{sc=Hiragana}\\p{sc=Katakana}\\p{sc=Hangul}\\p{sc=Bopomofo}\\u30fc';
const CJK_OR_NOT = new RegExp(`[${CJK_CLASS}]+|[^${CJK_CLASS}]+`, 'gu');
const CJK_START = new RegExp(`^[${CJK_CLASS}]`, 'u');

const foldCache = new Map<string, string>();

/**
 * The per-character step, for one character of NFKD text: '' for a combining mark, else one character.
 * Characters whose lower case is several characters (none survive NFKD in practice) stay as they are.
 */
export function foldCharacter(char: string): string {
  let folded = foldCache.get(char);
  if (folded !== undefined) return folded;
  if (MARK.test(char)) folded = '';
  else {
    const lower = char.toLowerCase();
    const single = [...lower].length === 1 ? lower : char;
    folded = SINGLE_CHAR_SPECIALS[single] ?? single;
  }
  foldCache.set(char, folded);
  return folded;
}

export function foldText(text: string): string {
  let out = '';
  for (const char of text.normalize('NFKD')) out += foldCharacter(char);
  for (const [from, to] of MULTI_CHAR_SPECIALS) if (out.includes(from)) out = out.split(from).join(to);
  return out.normalize('NFC');
}

/** The terms of a piece of text, in order (a CJK run of n ≥ 2 characters gives its n − 1 pairs). */
export function textTerms(text: string): string[] {
  const terms: string[] = [];
  for (const [run] of foldText(text).matchAll(TERM_RUN)) {
    for (const [part] of run.matchAll(CJK_OR_NOT)) {
      const chars = [...part];
      if (CJK_START.test(part) && chars.length > 1) {
        for (let i = 0; i + 1 < chars.length; i += 1) terms.push(chars[i] + chars[i + 1]);
      } else {
        terms.push(chars.length > MAX_TERM_LENGTH ? chars.slice(0, MAX_TERM_LENGTH).join('') : part);
      }
    }
  }
  return terms;
}

export function isCjkTerm(term: string): boolean {
  return CJK_START.test(term);
}

/** A note's indexed terms: the title's, then the body's up to MAX_TERMS_PER_NOTE in all. */
export function noteSearchTerms(title: string, body: string): { title: string[]; body: string[] } {
  const titleTerms = textTerms(title).slice(0, MAX_TERMS_PER_NOTE);
  const bodyTerms = textTerms(body).slice(0, Math.max(0, MAX_TERMS_PER_NOTE - titleTerms.length - 1));
  return { title: titleTerms, body: bodyTerms };
}
