import { diff3Merge } from 'node-diff3';

export interface NoteContent {
  title: string;
  body: string;
}

export interface ConflictRegion {
  field: 'title' | 'body';
  /** 1-based line of the base where the region starts (1 for the title). */
  baseLine: number;
  base: string;
  current: string;
  yours: string;
}

export type MergeOutcome = { merged: NoteContent } | { conflicts: ConflictRegion[] };

/**
 * The most work one merge may do. The diff behind it (node-diff3's Hunt–McIlroy LCS) costs about the
 * number of pairs of equal lines times the length of the common subsequence: a body of thousands of
 * identical lines takes it to seconds or minutes. Past this estimate (about a quarter of a second here)
 * the merge is a conflict rather than a stall. Only the lines between what all three versions share
 * at both ends count, so ordinary edits of long notes stay far below it.
 */
export const MAX_MERGE_WORK = 100_000_000;

/**
 * Three-way merge of a note: the title as one unit, the body line by line (node-diff3). `yours` is the
 * client's edit of `base`; `current` is the note now. Changes on one side only are taken; the same
 * change on both sides is taken once; different changes of the same lines are conflicts.
 */
export function mergeNote(base: NoteContent, current: NoteContent, yours: NoteContent): MergeOutcome {
  const conflicts: ConflictRegion[] = [];
  let title = current.title;
  if (yours.title !== base.title && yours.title !== current.title) {
    if (current.title === base.title) title = yours.title;
    else conflicts.push({ field: 'title', baseLine: 1, base: base.title, current: current.title, yours: yours.title });
  }
  const body = mergeLines(base.body, current.body, yours.body);
  if ('conflicts' in body) conflicts.push(...body.conflicts);
  return conflicts.length > 0 ? { conflicts } : { merged: { title, body: (body as { merged: string }).merged } };
}

function mergeLines(
  base: string,
  current: string,
  yours: string,
): { merged: string } | { conflicts: ConflictRegion[] } {
  if (yours === base || yours === current) return { merged: current };
  if (current === base) return { merged: yours };
  const o = lines(base);
  const a = lines(yours);
  const b = lines(current);
  // The lines all three share at the start and at the end cost nothing to merge: only the middles are diffed.
  let head = 0;
  while (head < o.length && head < a.length && head < b.length && o[head] === a[head] && o[head] === b[head]) head += 1;
  let tail = 0;
  while (
    tail < o.length - head &&
    tail < a.length - head &&
    tail < b.length - head &&
    o[o.length - 1 - tail] === a[a.length - 1 - tail] &&
    o[o.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail += 1;
  const middle = (list: string[]) => list.slice(head, list.length - tail);
  const [mo, ma, mb] = [middle(o), middle(a), middle(b)];
  if (mergeWork(mo, ma, mb) > MAX_MERGE_WORK) {
    return {
      conflicts: [{ field: 'body', baseLine: head + 1, base: mo.join(''), current: mb.join(''), yours: ma.join('') }],
    };
  }
  const merged: string[] = o.slice(0, head);
  const conflicts: ConflictRegion[] = [];
  for (const region of diff3Merge<string>(ma, mo, mb, { excludeFalseConflicts: true })) {
    if (region.ok) merged.push(...region.ok);
    else if (region.conflict) {
      conflicts.push({
        field: 'body',
        baseLine: head + region.conflict.oIndex + 1,
        base: region.conflict.o.join(''),
        current: region.conflict.b.join(''),
        yours: region.conflict.a.join(''),
      });
    }
  }
  if (conflicts.length > 0) return { conflicts };
  merged.push(...o.slice(o.length - tail));
  return { merged: merged.join('') };
}

/** Pairs of equal lines between the base and each side, times the longest subsequence they could share. */
function mergeWork(o: string[], a: string[], b: string[]): number {
  const inBase = new Map<string, number>();
  for (const line of o) inBase.set(line, (inBase.get(line) ?? 0) + 1);
  const pairs = (side: string[]) => side.reduce((sum, line) => sum + (inBase.get(line) ?? 0), 0);
  return pairs(a) * Math.min(o.length, a.length) + pairs(b) * Math.min(o.length, b.length);
}

/** Lines with their line breaks kept, so that joining them gives the text back exactly. */
function lines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}
