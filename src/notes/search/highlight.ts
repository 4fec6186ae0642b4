import type { SearchQuery } from './search-query';
import { boundedMemo } from './bounded-memo';
import { foldText, isCjkTerm, textTerms } from './search-text';

export interface HighlightMatch {
  start: number;
  length: number;
}

export interface Highlight {
  text: string;
  matches: HighlightMatch[];
}

/** Length of the passage around the first match, in UTF-16 code units (about two lines on a phone). */
export const PASSAGE_LENGTH = 160;
/** How much of the passage comes before the first match. */
const LEAD = 40;
/** Entries in each of the memos below (words and runs of a note's text repeat). */
const WORD_CACHE_SIZE = 50_000;
/** Words as typed: letters, digits and their combining marks (folded the way the index folds them). */
const WORD = /[\p{L}\p{N}\p{M}]+/gu;

interface Matcher {
  exact: Set<string>;
  prefixes: string[];
  /** CJK clauses as the text they stand for: found by position in the text itself. */
  cjk: string[];
}

function matcherOf(query: SearchQuery): Matcher {
  const matcher: Matcher = { exact: new Set(), prefixes: [], cjk: [] };
  for (const { terms, prefix } of query.include) {
    terms.forEach((term, i) => {
      if (isCjkTerm(term)) return;
      if (prefix && i === terms.length - 1) matcher.prefixes.push(term);
      else matcher.exact.add(term);
    });
    const cjkTerms = terms.filter(isCjkTerm);
    if (cjkTerms.length > 0)
      matcher.cjk.push(
        cjkTerms[0] +
          cjkTerms
            .slice(1)
            .map((pair) => [...pair][1])
            .join(''),
      );
  }
  return matcher;
}

/**
 * A short passage of the body around its first match, with where each match in it starts and how long
 * it is (UTF-16 code units, as JavaScript, Swift's `utf16` view and Kotlin strings count); null when the
 * body has no match (only the title matched). Words match as the index matches them (folded, the last
 * word as a prefix); CJK text matches where the query's characters appear.
 */
export function highlightOf(body: string, query: SearchQuery, prefilter = true): Highlight | null {
  const matcher = matcherOf(query);
  if (prefilter && !mayMatch(body, matcher)) return null;
  const matches: HighlightMatch[] = [];
  let windowEnd = Infinity;
  for (const word of body.matchAll(WORD)) {
    const start = word.index;
    if (start >= windowEnd) break;
    const found = wordMatches(word[0], matcher);
    for (const match of found) {
      matches.push({ start: start + match.start, length: match.length });
      if (windowEnd === Infinity) windowEnd = passageBounds(body, start + match.start).end;
    }
  }
  if (matches.length === 0) return null;
  const bounds = passageBounds(body, matches[0].start);
  const { start } = bounds;
  // A first match longer than the passage (a very long word) still fits whole.
  const end = Math.max(bounds.end, matches[0].start + matches[0].length);
  return {
    text: body.slice(start, end),
    matches: matches
      .filter((match) => match.start + match.length <= end)
      .map((match) => ({ start: match.start - start, length: match.length })),
  };
}

/**
 * Whether the body can have a match at all, cheaply: a matching word's terms are pieces of the whole
 * body folded, so a body whose fold contains none of the query's terms has none. The title hits of a page
 * often do not say the words in their body; for them this replaces folding and testing every word (most
 * of a search page's highlight time). A test checks on random text that it never turns a match away.
 */
function mayMatch(body: string, matcher: Matcher): boolean {
  if (matcher.cjk.some((text) => body.includes(text))) return true;
  if (matcher.exact.size === 0 && matcher.prefixes.length === 0) return false;
  const folded = quickFold(body);
  for (const term of matcher.exact) if (folded.includes(term)) return true;
  return matcher.prefixes.some((prefix) => folded.includes(prefix));
}

/** Runs of what folding changes: upper-case ASCII and everything beyond ASCII (lower-case ASCII stays). */
const FOLDED_RUN = /[A-Z\u0080-\uffff]+/g;

/** foldText(body), folding only its runs of upper-case or non-ASCII text, each remembered. */
function quickFold(body: string): string {
  return body.replace(FOLDED_RUN, foldedRun);
}

const foldedRun = boundedMemo(WORD_CACHE_SIZE, foldText);

function wordMatches(word: string, matcher: Matcher): HighlightMatch[] {
  const found: HighlightMatch[] = [];
  for (const text of matcher.cjk) {
    for (let at = word.indexOf(text); at !== -1; at = word.indexOf(text, at + text.length)) {
      found.push({ start: at, length: text.length });
    }
  }
  if (found.length > 0) return found;
  const terms = wordTerms(word);
  const hit = terms.some(
    (term) => matcher.exact.has(term) || matcher.prefixes.some((prefix) => term.startsWith(prefix)),
  );
  return hit ? [{ start: 0, length: word.length }] : [];
}

/**
 * A word's non-CJK terms, remembered: folding a word (NFKD, then a table per character) is most of what a
 * highlight costs, and the words of notes repeat. Bounded: emptied when it reaches WORD_CACHE_SIZE.
 */
const wordTerms = boundedMemo(WORD_CACHE_SIZE, (word) => textTerms(word).filter((term) => !isCjkTerm(term)));

/** The passage: from a word start a little before the match, PASSAGE_LENGTH long, never splitting a pair. */
function passageBounds(body: string, matchStart: number): { start: number; end: number } {
  let start = Math.max(0, matchStart - LEAD);
  if (start > 0) {
    const space = body.slice(start, matchStart).search(/\s/);
    start = space === -1 ? matchStart : start + space + 1;
  }
  let end = Math.min(body.length, start + PASSAGE_LENGTH);
  if (end < body.length) {
    const lastSpace = body.slice(matchStart, end).search(/\s\S*$/);
    if (lastSpace > 0) end = matchStart + lastSpace;
  }
  if (end < body.length && /[\ud800-\udbff]/.test(body[end - 1] ?? '')) end -= 1;
  return { start, end };
}
