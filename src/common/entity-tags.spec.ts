import { entityTagOf, matchesVersion, parseEntityTagCondition } from './entity-tags';

describe('entity tags', () => {
  it('parses * and lists of strong and weak tags', () => {
    expect(parseEntityTagCondition('*', 'If-Match')).toEqual({ any: true });
    expect(parseEntityTagCondition('"3"', 'If-Match')).toEqual({ any: false, tags: [{ weak: false, opaque: '3' }] });
    expect(parseEntityTagCondition(' "1", W/"2" ,"x" ', 'If-Match')).toEqual({
      any: false,
      tags: [
        { weak: false, opaque: '1' },
        { weak: true, opaque: '2' },
        { weak: false, opaque: 'x' },
      ],
    });
    expect(parseEntityTagCondition(undefined, 'If-Match')).toBeUndefined();
  });

  it.each(['', '3', 'W/3', '"3', '"3" "4"', '**', 'W/"3"x', '"a"b"', ',', '"3";'])(
    'refuses the malformed %j, naming the header',
    (header) => {
      expect(() => parseEntityTagCondition(header, 'If-Match')).toThrow(
        expect.objectContaining({
          code: 'VALIDATION_FAILED',
          details: [expect.objectContaining({ field: 'If-Match' })],
        }),
      );
    },
  );

  it('compares strongly: a weak tag never matches', () => {
    expect(matchesVersion(parseEntityTagCondition('"3"', 'h')!, 3)).toBe(true);
    expect(matchesVersion(parseEntityTagCondition('"2", "3"', 'h')!, 3)).toBe(true);
    expect(matchesVersion(parseEntityTagCondition('W/"3"', 'h')!, 3)).toBe(false);
    expect(matchesVersion(parseEntityTagCondition('"4"', 'h')!, 3)).toBe(false);
    expect(matchesVersion(parseEntityTagCondition('"03"', 'h')!, 3)).toBe(false);
    expect(matchesVersion(parseEntityTagCondition('*', 'h')!, 3)).toBe(true);
    expect(entityTagOf(7)).toBe('"7"');
  });
});
