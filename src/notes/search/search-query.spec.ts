import fc from 'fast-check';
import { AppError } from '../../common/app-error';
import { highlightOf } from './highlight';
import { parseSearchQuery, toFtsQuery, toTsQuery } from './search-query';
import { foldText, noteSearchTerms, textTerms } from './search-text';

describe('folding and terms', () => {
  it.each([
    ['Résumé', ['resume']],
    ['ZÜRICH', ['zurich']],
    ['Straße STRASSE ẞ', ['strasse', 'strasse', 'ss']],
    ['ΟΔΟΣ οδός', ['οδοσ', 'οδοσ']],
    ['Øresund Łódź Ærø', ['oresund', 'lodz', 'aero']],
    ['ﬁle x² Ⅻ', ['file', 'x2', 'xii']],
    ['e-mail, don’t', ['e', 'mail', 'don', 't']],
    ['咖啡店 咖', ['咖啡', '啡店', '咖']],
    ['iPhone用户', ['iphone', '用户']],
    ["😀 & | ! ( ) : * ' \\", []],
  ])('%j → %j', (text, terms) => {
    expect(textTerms(text)).toEqual(terms);
  });

  it('is idempotent: folded text folds to itself', () => {
    for (const text of ['Résumé', 'Straße', 'ΟΔΟΣ', '東京タワー', 'नमस्ते']) {
      expect(foldText(foldText(text))).toBe(foldText(text));
    }
  });

  it('indexes at most 16,383 terms per note, title first, and cuts terms at 100 characters', () => {
    const terms = noteSearchTerms('a b', 'w '.repeat(20_000));
    expect(terms.title).toEqual(['a', 'b']);
    expect(terms.body).toHaveLength(16_383 - 2 - 1);
    expect(textTerms('x'.repeat(150))).toEqual(['x'.repeat(100)]);
  });
});

describe('parseSearchQuery', () => {
  it('reads words, phrases, exclusions and the last word as a prefix', () => {
    expect(parseSearchQuery('Milk "oat milk" -almond -"soy milk" rec')).toEqual({
      include: [
        { terms: ['milk'], prefix: false },
        { terms: ['oat', 'milk'], prefix: false },
        { terms: ['rec'], prefix: true },
      ],
      exclude: [
        { terms: ['almond'], prefix: false },
        { terms: ['soy', 'milk'], prefix: false },
      ],
    });
  });

  it('treats an open quote as running to the end, and every other character as a separator', () => {
    expect(parseSearchQuery('"oat mi').include).toEqual([{ terms: ['oat', 'mi'], prefix: false }]);
    expect(parseSearchQuery("&|!():*'\\")).toEqual({ include: [], exclude: [] });
    expect(parseSearchQuery('a - b').include.map((clause) => clause.terms)).toEqual([['a'], ['b']]);
  });

  it('makes the last word a prefix only from two characters on', () => {
    expect(parseSearchQuery('milk r').include[1]).toEqual({ terms: ['r'], prefix: false });
  });

  it.each([
    ['a'.repeat(501), 'q must be at most 500 characters long'],
    [Array.from({ length: 17 }, (_, i) => `w${i}`).join(' '), 'q must have at most 16 words'],
    ['漢字'.repeat(40), 'q must have at most 64 search terms'],
    ['milk \ud800', 'q must be valid Unicode (it has a lone surrogate)'],
  ])('refuses %j naming q', (q, message) => {
    expect(() => parseSearchQuery(q)).toThrow(AppError);
    try {
      parseSearchQuery(q);
    } catch (error) {
      expect((error as AppError).details).toEqual([{ field: 'q', message }]);
    }
  });

  it('writes safe tsquery and FTS5 expressions', () => {
    const query = parseSearchQuery('milk "oat milk" -almond rec');
    expect(toTsQuery(query)).toBe("('milk') & ('oat' <-> 'milk') & ('rec':*) & !('almond')");
    expect(toTsQuery(query, true)).toBe("('milk':A) & ('oat':A <-> 'milk':A) & ('rec':*A)");
    expect(toFtsQuery(query, 'k')).toBe(
      '((("ktmilk") OR ("kbmilk")) AND (("ktoat" + "ktmilk") OR ("kboat" + "kbmilk")) AND (("ktrec"*) OR ("kbrec"*)))' +
        ' NOT ((("ktalmond") OR ("kbalmond")))',
    );
    expect(toFtsQuery(query, 'k', true)).toBe(
      '(("ktmilk") AND ("ktoat" + "ktmilk") AND ("ktrec"*)) NOT ((("ktalmond") OR ("kbalmond")))',
    );
  });
});

describe('highlightOf', () => {
  it('gives the passage around the first body match with UTF-16 offsets', () => {
    const body = '🎙️ Notes: the Zürich trip, then ZURICH again';
    const highlight = highlightOf(body, parseSearchQuery('zurich'))!;
    expect(highlight.text).toBe(body);
    expect(highlight.matches.map(({ start, length }) => highlight.text.slice(start, start + length))).toEqual([
      'Zürich',
      'ZURICH',
    ]);
  });

  it('marks prefixes and CJK substrings, and is null without a body match', () => {
    const recording = highlightOf('a recording', parseSearchQuery('rec'))!;
    expect(recording.matches).toEqual([{ start: 2, length: 9 }]);
    const coffee = highlightOf('我喜欢喝咖啡。', parseSearchQuery('咖啡'))!;
    expect(coffee.matches).toEqual([{ start: 4, length: 2 }]);
    expect(highlightOf('nothing here', parseSearchQuery('milk'))).toBeNull();
  });

  it('turns no match away by its quick look at the body (the same answer as testing every word)', () => {
    // Pieces that fold in every way: case, accents as one character or combining, ß, ligatures, final
    // sigma, Hangul as syllables or letters, CJK, emoji, punctuation.
    const piece = fc.constantFrom(
      'Zürich',
      'ZURICH',
      'zu\u0308rich',
      'résumé',
      'RE\u0301SUME',
      'Straße',
      'STRASSE',
      'ﬁle',
      'ΟΔΟΣ',
      'οδός',
      'Øre',
      'Łódź',
      'Ærø',
      '한국',
      '\u1112\u1161\u11ab',
      '咖啡店',
      'コーヒー',
      '😀',
      'e-mail',
      "don't",
      'rec',
      'recording',
      'İstanbul',
      'ǅemal',
      'x²',
      ' ',
      ', ',
      '\n',
      '’',
    );
    const text = fc.array(piece, { maxLength: 12 }).map((pieces) => pieces.join(''));
    const query = fc
      .tuple(fc.array(piece, { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([pieces, quoted]) => (quoted ? `"${pieces.join(' ')}"` : pieces.join(' ')));
    fc.assert(
      fc.property(text, query, (body, q) => {
        const parsed = parseSearchQuery(q);
        expect(highlightOf(body, parsed)).toEqual(highlightOf(body, parsed, false));
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps a long body to a short passage starting at a word, never splitting a surrogate pair', () => {
    const body = `${'😀 '.repeat(100)}the milk ${'and more words '.repeat(30)}`;
    const highlight = highlightOf(body, parseSearchQuery('milk'))!;
    expect(highlight.text.length).toBeLessThanOrEqual(160);
    expect(highlight.text).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/);
    expect(body).toContain(highlight.text);
    const [match] = highlight.matches;
    expect(highlight.text.slice(match.start, match.start + match.length)).toBe('milk');
  });
});
