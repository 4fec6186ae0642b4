import { createHash } from 'node:crypto';
import { boundedMemo } from './bounded-memo';
import {
  CJK_CLASS,
  foldCharacter,
  MAX_TERM_LENGTH,
  MAX_TERMS_PER_NOTE,
  MULTI_CHAR_SPECIALS,
  noteSearchTerms,
  SINGLE_CHAR_SPECIALS,
} from './search-text';

/**
 * The database side of search-text.ts. Postgres gets SQL functions generated from the app's own character
 * classes, written out as explicit characters and code-point ranges, and lower case from a locale-free
 * collation (or, without one, the app's whole per-character table), so they never depend on the database's
 * locale (under `C`, Postgres's own lower() and character classes know ASCII only). SQLite gets the app's
 * function itself, registered on every connection.
 */

const LAST_CODE_POINT = 0x10ffff;
const LETTER_OR_DIGIT = /^[\p{L}\p{N}]$/u;
const MARK = /^\p{M}$/u;

/**
 * Collations whose lower() is Unicode's and the same in every database locale: Postgres 17's built-in
 * `pg_c_utf8` (simple case mapping, as the app's per-character step), else ICU's root locale.
 */
export const LOCALE_FREE_COLLATIONS = ['pg_c_utf8', 'und-x-icu'] as const;
export type LocaleFreeCollation = (typeof LOCALE_FREE_COLLATIONS)[number];
const CJK = new RegExp(`^[${CJK_CLASS}]$`, 'u');

interface FoldTable {
  from: string;
  to: string;
  deleted: string;
}

function isSurrogate(codePoint: number): boolean {
  return codePoint >= 0xd800 && codePoint <= 0xdfff;
}

/** Every character that survives NFKD and folds to something else: pairs for translate(), then deletions. */
function foldTable(): FoldTable {
  let from = '';
  let to = '';
  let deleted = '';
  for (let codePoint = 0; codePoint <= LAST_CODE_POINT; codePoint += 1) {
    if (isSurrogate(codePoint)) continue;
    const char = String.fromCodePoint(codePoint);
    if (char.normalize('NFKD') !== char) continue;
    const folded = foldCharacter(char);
    if (folded === char) continue;
    if (folded === '') deleted += char;
    else {
      from += char;
      to += folded;
    }
  }
  return { from, to, deleted };
}

/** A regex bracket body listing the code points `test` accepts, as literal characters and ranges. */
function characterRanges(test: (char: string) => boolean): string {
  let out = '';
  let start = -1;
  const close = (end: number) => {
    out += String.fromCodePoint(start) + (end > start ? `-${String.fromCodePoint(end)}` : '');
    start = -1;
  };
  for (let codePoint = 0; codePoint <= LAST_CODE_POINT + 1; codePoint += 1) {
    const accepted = codePoint <= LAST_CODE_POINT && !isSurrogate(codePoint) && test(String.fromCodePoint(codePoint));
    if (accepted && start === -1) start = codePoint;
    else if (!accepted && start !== -1) close(codePoint - 1);
  }
  return out;
}

function sqlLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * CREATE FUNCTION statements for Postgres: notes_search_fold(text), notes_search_terms(text) and
 * notes_search_vector(title, body) — the tsvector of a note, title terms weighted A, body terms after a
 * gap (so a phrase never spans title and body), positions up to MAX_TERMS_PER_NOTE.
 */
export function postgresSearchFunctions(
  collation: LocaleFreeCollation | null,
  caseGaps: Readonly<Record<string, string>> = {},
): string[] {
  const letters = characterRanges((char) => LETTER_OR_DIGIT.test(char));
  const cjk = characterRanges((char) => CJK.test(char));
  let folded: string;
  if (collation) {
    // Marks out, lower case by a locale-free collation, then the few letters that do not decompose. (Postgres's
    // translate() walks its whole list for every character: it gets only the short one.)
    const specials = Object.entries({ ...SINGLE_CHAR_SPECIALS, ...caseGaps });
    folded = `translate(lower(regexp_replace(normalize(t, NFKD), ${sqlLiteral(`[${characterRanges((char) => MARK.test(char))}]+`)}, '', 'g') COLLATE "${collation}"), ${sqlLiteral(specials.map(([from]) => from).join(''))}, ${sqlLiteral(specials.map(([, to]) => to).join(''))})`;
  } else {
    // No such collation: the whole per-character table, slower (a long translate list) but the same answer.
    const table = foldTable();
    folded = `translate(normalize(t, NFKD), ${sqlLiteral(table.from + table.deleted)}, ${sqlLiteral(table.to)})`;
  }
  for (const [from, to] of MULTI_CHAR_SPECIALS) folded = `replace(${folded}, ${sqlLiteral(from)}, ${sqlLiteral(to)})`;
  const fold = `CREATE OR REPLACE FUNCTION notes_search_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $fn$ SELECT normalize(${folded}, NFC) $fn$`;
  const words = `regexp_split_to_table(
        regexp_replace(regexp_replace(notes_search_fold(t), ${sqlLiteral(`[^${letters}]+`)}, ' ', 'g'), ${sqlLiteral(`([${cjk}]+)`)}, ' \\1 ', 'g'),
        ' +')`;
  const terms = `CREATE OR REPLACE FUNCTION notes_search_terms(t text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $fn$
      SELECT coalesce(array_agg(x.term ORDER BY w.n, g.i), '{}')
      FROM ${words} WITH ORDINALITY AS w(word, n)
      CROSS JOIN LATERAL (SELECT w.word ~ ${sqlLiteral(`^[${cjk}]`)} AND length(w.word) > 1 AS pairs) p
      CROSS JOIN LATERAL generate_series(1, CASE WHEN p.pairs THEN length(w.word) - 1 ELSE 1 END) AS g(i)
      CROSS JOIN LATERAL (SELECT CASE WHEN p.pairs THEN substr(w.word, g.i, 2) ELSE left(w.word, ${MAX_TERM_LENGTH}) END AS term) x
      WHERE w.word <> ''
    $fn$`;
  // PL/pgSQL: its statements are planned once per session, not on every call as a SQL function's with a CTE.
  const vector = `CREATE OR REPLACE FUNCTION notes_search_vector(title text, body text) RETURNS tsvector
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $fn$
    DECLARE
      title_terms text[] := (notes_search_terms(title))[1:${MAX_TERMS_PER_NOTE}];
      gap int := cardinality(title_terms) + 1;
      body_terms text[] := (notes_search_terms(body))[1:${MAX_TERMS_PER_NOTE} - gap];
    BEGIN
      RETURN (
        coalesce((SELECT string_agg('''' || u.term || ''':' || u.pos || 'A', ' ')
                  FROM unnest(title_terms) WITH ORDINALITY AS u(term, pos)), '')
        || ' ' ||
        coalesce((SELECT string_agg('''' || u.term || ''':' || (gap + u.pos), ' ')
                  FROM unnest(body_terms) WITH ORDINALITY AS u(term, pos)), '')
      )::tsvector;
    END
    $fn$`;
  return [fold, terms, vector];
}

/**
 * FTS5's tokenizer: unicode61 with diacritics removed, on terms the app already folded and separated by
 * spaces. Every category but spaces and controls counts as part of a term: SQLite's Unicode tables are
 * older than the app's, and a character that is a letter to the app may be unassigned, a mark or a symbol
 * to SQLite (U+1CF2, U+19B0). So FTS5 indexes exactly the terms it is given (a test checks that on random
 * text), and both databases answer alike.
 */
export const SQLITE_TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* M* S* P* Co Cn Cf'";

/** The SQLite function the first search migrations call: a note's title or body terms, space-separated. */
export const SQLITE_TERMS_FUNCTION = 'notes_search_terms';
/** The SQLite function the triggers call now: a note's terms, each under its owner's key (below). */
export const SQLITE_OWNER_TERMS_FUNCTION = 'notes_search_owner_terms';

/** Hex characters of the key an owner's SQLite search terms start with (48 bits of SHA-256). */
export const OWNER_KEY_LENGTH = 12;
/** After the owner key, whether the term is the title's or the body's. */
export const TITLE_PART = 't';
export const BODY_PART = 'b';
/**
 * FTS5 prefix indexes (in characters): the owner key and part, then 2 or 3 characters typed. Longer
 * prefixes merge the owner's few terms that start with them.
 */
export const SQLITE_PREFIX_INDEXES = `${OWNER_KEY_LENGTH + 3} ${OWNER_KEY_LENGTH + 4}`;

/**
 * Every SQLite search term is `<owner key><t|b><term>`, so an FTS5 list holds one owner's notes: a query
 * reads the asker's hits and never the other owners' (whose lists an owner term would only filter), and a
 * title hit is its own term. Two owners sharing a key only share lists; the notes read are still filtered
 * by owner.
 */
export const ownerSearchKey = boundedMemo(10_000, (ownerId) =>
  createHash('sha256').update(ownerId, 'utf8').digest('hex').slice(0, OWNER_KEY_LENGTH),
);

/** A note's SQLite search terms under its owner's key, title then body, space-separated. */
export function sqliteNoteTerms(ownerId: string, title: string, body: string): string {
  const key = ownerSearchKey(ownerId);
  const terms = noteSearchTerms(title, body);
  const titleKey = key + TITLE_PART;
  const bodyKey = key + BODY_PART;
  let out = '';
  for (const term of terms.title) out += `${out ? ' ' : ''}${titleKey}${term}`;
  for (const term of terms.body) out += `${out ? ' ' : ''}${bodyKey}${term}`;
  return out;
}

interface SqliteFunctions {
  function(name: string, options: { deterministic: boolean }, implementation: (...args: unknown[]) => unknown): unknown;
}

const text = (value: unknown) => (typeof value === 'string' ? value : '');

/**
 * Registers, on a better-sqlite3 connection, notes_search_owner_terms(owner_id, title, body) for the
 * triggers and notes_search_terms(title, body, 'title' | 'body') for the migrations written before it.
 */
export function registerSqliteSearchFunction(db: SqliteFunctions): void {
  db.function(SQLITE_TERMS_FUNCTION, { deterministic: true }, (title, body, part) => {
    const terms = noteSearchTerms(text(title), text(body));
    return (part === 'title' ? terms.title : terms.body).join(' ');
  });
  db.function(SQLITE_OWNER_TERMS_FUNCTION, { deterministic: true }, (ownerId, title, body) =>
    sqliteNoteTerms(text(ownerId), text(title), text(body)),
  );
}

/**
 * The characters the app lower-cases that `collation` leaves as they are, each with the app's fold: a
 * database's Unicode tables (ICU's, or Postgres's own) can be older than Node's, and a letter of a script
 * added since has no lower case there. They join the translate() after lower(), so both fold alike.
 */
export async function collationCaseGaps(
  query: (sql: string, parameters: unknown[]) => Promise<unknown>,
  collation: LocaleFreeCollation,
): Promise<Record<string, string>> {
  const cased: string[] = [];
  for (let codePoint = 0; codePoint <= LAST_CODE_POINT; codePoint += 1) {
    if (isSurrogate(codePoint)) continue;
    const char = String.fromCodePoint(codePoint);
    // Only what reaches lower() (NFKD leaves it whole; not a mark, which goes before) and folds to one
    // other character: translate() maps one character to one.
    const folded = foldCharacter(char);
    if (char.normalize('NFKD') === char && folded !== char && [...folded].length === 1) cased.push(char);
  }
  const rows = (await query(`SELECT c, lower(c COLLATE "${collation}") AS lowered FROM unnest($1::text[]) AS c`, [
    cased,
  ])) as { c: string; lowered: string }[];
  return Object.fromEntries(rows.filter((row) => row.lowered === row.c).map((row) => [row.c, foldCharacter(row.c)]));
}
