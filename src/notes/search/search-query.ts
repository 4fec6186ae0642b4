import { AppError } from '../../common/app-error';
import { BODY_PART, TITLE_PART } from './search-sql';
import { textTerms } from './search-text';

/** Longest `q` accepted, in UTF-16 code units (what a search box sends is far shorter). */
export const MAX_QUERY_LENGTH = 500;
/** Most words, phrases and exclusions in one `q`. */
export const MAX_QUERY_CLAUSES = 16;
/** Most terms in one `q`, all clauses together (a CJK phrase of n characters is n − 1 terms). */
export const MAX_QUERY_TERMS = 64;
/** The last word is a prefix only from this many characters on: one letter would match most words. */
export const MIN_PREFIX_LENGTH = 2;

/** One word or quoted phrase: its terms must appear next to each other, in order. */
export interface SearchClause {
  terms: string[];
  /** The last term matches as a prefix (the last word of the query, typed so far). */
  prefix: boolean;
}

export interface SearchQuery {
  /** Every one must match (title or body). */
  include: SearchClause[];
  /** None may match. */
  exclude: SearchClause[];
}

/** A raw piece of `q`: a word or a quoted phrase, maybe excluded. */
interface Piece {
  text: string;
  quoted: boolean;
  excluded: boolean;
}

const LONE_SURROGATE = /\p{Cs}/u;

function invalidQuery(message: string): AppError {
  return new AppError('VALIDATION_FAILED', `The search query is not valid: ${message}.`, {
    details: [{ field: 'q', message }],
  });
}

/**
 * Reads what a user typed: words (all must match, any order), "quoted phrases" (a quote left open runs
 * to the end), -word and -"phrase" (must not match); the last unquoted word matches as a prefix. Every
 * other character only separates words, so no input is a syntax error. Refused (400 naming `q`): more
 * than MAX_QUERY_LENGTH code units, a lone surrogate, more than MAX_QUERY_CLAUSES clauses or
 * MAX_QUERY_TERMS terms.
 */
export function parseSearchQuery(q: string): SearchQuery {
  if (q.length > MAX_QUERY_LENGTH) throw invalidQuery(`q must be at most ${MAX_QUERY_LENGTH} characters long`);
  if (LONE_SURROGATE.test(q)) throw invalidQuery('q must be valid Unicode (it has a lone surrogate)');
  const pieces = splitPieces(q);
  const clauses = pieces
    .map((piece) => ({ piece, terms: textTerms(piece.text) }))
    .filter(({ terms }) => terms.length > 0);
  if (clauses.length > MAX_QUERY_CLAUSES) throw invalidQuery(`q must have at most ${MAX_QUERY_CLAUSES} words`);
  if (clauses.reduce((sum, { terms }) => sum + terms.length, 0) > MAX_QUERY_TERMS) {
    throw invalidQuery(`q must have at most ${MAX_QUERY_TERMS} search terms`);
  }
  const lastPiece = pieces[pieces.length - 1];
  const query: SearchQuery = { include: [], exclude: [] };
  for (const { piece, terms } of clauses) {
    const last = terms[terms.length - 1];
    const prefix = piece === lastPiece && !piece.quoted && !piece.excluded && [...last].length >= MIN_PREFIX_LENGTH;
    (piece.excluded ? query.exclude : query.include).push({ terms, prefix });
  }
  return query;
}

function splitPieces(q: string): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  while (i < q.length) {
    if (/\s/.test(q[i])) {
      i += 1;
      continue;
    }
    let excluded = false;
    if (q[i] === '-' && i + 1 < q.length && !/[\s-]/.test(q[i + 1])) {
      excluded = true;
      i += 1;
    }
    if (q[i] === '"') {
      const end = q.indexOf('"', i + 1);
      const stop = end === -1 ? q.length : end;
      pieces.push({ text: q.slice(i + 1, stop), quoted: true, excluded });
      i = stop + 1;
      continue;
    }
    let end = i;
    while (end < q.length && !/\s/.test(q[end]) && q[end] !== '"') end += 1;
    pieces.push({ text: q.slice(i, end), quoted: false, excluded });
    i = end;
  }
  return pieces;
}

/** Whether the query can find anything: at least one clause that must match. */
export function isEmptySearch(query: SearchQuery): boolean {
  return query.include.length === 0;
}

/** Postgres tsquery text: lexemes quoted (terms are letters and digits only, but quoted anyway), `:A` for the title. */
export function toTsQuery(query: SearchQuery, titleOnly = false): string {
  const weight = titleOnly ? 'A' : '';
  const lexeme = (term: string, prefix: boolean) =>
    `'${term.replace(/['\\]/g, '\\$&')}'${prefix || weight ? ':' : ''}${prefix ? '*' : ''}${weight}`;
  const clause = ({ terms, prefix }: SearchClause) =>
    `(${terms.map((term, i) => lexeme(term, prefix && i === terms.length - 1)).join(' <-> ')})`;
  const parts = query.include.map(clause);
  if (!titleOnly) parts.push(...query.exclude.map((excluded) => `!${clause(excluded)}`));
  return parts.join(' & ');
}

/**
 * SQLite FTS5 MATCH expression over one owner's terms (`ownerKey`, see sqliteNoteTerms): each clause in
 * the title or the body (or the title alone); an excluded clause anywhere excludes the note.
 */
export function toFtsQuery(query: SearchQuery, ownerKey: string, titleOnly = false): string {
  const phrase = ({ terms, prefix }: SearchClause, part: string) =>
    `(${terms.map((term, i) => `"${ownerKey}${part}${term.replace(/"/g, '""')}"${prefix && i === terms.length - 1 ? '*' : ''}`).join(' + ')})`;
  const anywhere = (clause: SearchClause) => `(${phrase(clause, TITLE_PART)} OR ${phrase(clause, BODY_PART)})`;
  const positive = query.include
    .map((clause) => (titleOnly ? phrase(clause, TITLE_PART) : anywhere(clause)))
    .join(' AND ');
  if (query.exclude.length === 0) return positive;
  return `(${positive}) NOT (${query.exclude.map(anywhere).join(' OR ')})`;
}
