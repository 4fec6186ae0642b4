import { mergeNote } from './note-merge';

const note = (title: string, body: string) => ({ title, body });

describe('mergeNote', () => {
  const base = note('Standup', 'one\ntwo\nthree\nfour\n');

  it('takes disjoint line edits from both sides', () => {
    const current = note('Standup', 'ONE\ntwo\nthree\nfour\n');
    const yours = note('Standup', 'one\ntwo\nthree\nFOUR\n');
    expect(mergeNote(base, current, yours)).toEqual({ merged: note('Standup', 'ONE\ntwo\nthree\nFOUR\n') });
  });

  it('takes a title changed on one side and a body changed on the other', () => {
    const current = note('Standup', 'one\ntwo\nthree\nfour\nfive\n');
    const yours = note('Daily standup', 'one\ntwo\nthree\nfour\n');
    expect(mergeNote(base, current, yours)).toEqual({ merged: note('Daily standup', 'one\ntwo\nthree\nfour\nfive\n') });
  });

  it('takes the same change made on both sides once', () => {
    const same = note('Standup!', 'one\n2\nthree\nfour\n');
    expect(mergeNote(base, same, same)).toEqual({ merged: same });
  });

  it('reports overlapping line edits with the three versions of the region', () => {
    const current = note('Standup', 'one\nTWO (theirs)\nthree\nfour\n');
    const yours = note('Standup', 'one\nTWO (mine)\nthree\nfour\n');
    expect(mergeNote(base, current, yours)).toEqual({
      conflicts: [{ field: 'body', baseLine: 2, base: 'two\n', current: 'TWO (theirs)\n', yours: 'TWO (mine)\n' }],
    });
  });

  it('treats the title as one unit', () => {
    const outcome = mergeNote(base, note('Standup A', base.body), note('Standup B', base.body));
    expect(outcome).toEqual({
      conflicts: [{ field: 'title', baseLine: 1, base: 'Standup', current: 'Standup A', yours: 'Standup B' }],
    });
  });

  it('keeps text without a final line break exactly', () => {
    const b = note('t', 'a\nb\nc');
    expect(mergeNote(b, note('t', 'A\nb\nc'), note('t', 'a\nb\nC'))).toEqual({ merged: note('t', 'A\nb\nC') });
  });

  it('answers a conflict, quickly, past the bound instead of diffing pathological bodies', () => {
    const size = 3_000; // identical lines: the unbounded diff takes minutes
    const o = note('t', 'x\n'.repeat(size));
    const a = note('t', 'y\n' + 'x\n'.repeat(size - 2) + 'a\n');
    const b = note('t', 'z\n' + 'x\n'.repeat(size - 2) + 'b\n');
    const started = Date.now();
    const outcome = mergeNote(o, b, a);
    expect('conflicts' in outcome).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('merges long notes edited far apart without reaching the bound', () => {
    const body = Array.from({ length: 5_000 }, (_, i) => `line ${i}\n`).join('');
    const current = note('t', body.replace('line 10\n', 'line ten\n'));
    const yours = note('t', body.replace('line 4990\n', 'line four thousand nine hundred ninety\n'));
    const outcome = mergeNote(note('t', body), current, yours);
    expect(outcome).toEqual({
      merged: note(
        't',
        body.replace('line 10\n', 'line ten\n').replace('line 4990\n', 'line four thousand nine hundred ninety\n'),
      ),
    });
  });
});
