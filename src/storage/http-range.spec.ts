import { parseRange } from './http-range';

describe('parseRange', () => {
  it.each<[string, number, ReturnType<typeof parseRange>]>([
    ['bytes=0-1', 10, { start: 0, end: 1 }],
    ['bytes=0-0', 10, { start: 0, end: 0 }],
    ['bytes=2-', 10, { start: 2, end: 9 }],
    ['bytes=0-', 10, { start: 0, end: 9 }],
    ['bytes=9-', 10, { start: 9, end: 9 }],
    ['bytes=-2', 10, { start: 8, end: 9 }],
    ['bytes=-10', 10, { start: 0, end: 9 }],
    ['bytes=-20', 10, { start: 0, end: 9 }],
    ['bytes=5-100', 10, { start: 5, end: 9 }],
    ['bytes=0-99999999999999999999', 10, { start: 0, end: 9 }],
    ['  bytes=1-2  ', 10, { start: 1, end: 2 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=10-20', 10, 'unsatisfiable'],
    ['bytes=3-1', 10, undefined],
    ['bytes=20-10', 10, undefined],
    ['bytes=10-10', 10, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=-1', 0, 'unsatisfiable'],
    ['bytes=-', 10, undefined],
    ['bytes=', 10, undefined],
    ['bytes=a-b', 10, undefined],
    ['bytes=1', 10, undefined],
    ['bytes=--1', 10, undefined],
    ['bytes=0-1,2-3', 10, undefined],
    ['bytes=0-1, 2-3', 10, undefined],
    ['bytes=1.5-2', 10, undefined],
    ['items=0-1', 10, undefined],
    ['0-1', 10, undefined],
    ['', 10, undefined],
  ])('parseRange(%j, %d) → %j', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});
