import { MAX_PART_COUNT, partLength, planParts } from './multipart-plan';

const MIB = 1024 * 1024;

describe('planParts', () => {
  it.each([
    [16 * MIB, 5 * MIB, 4, MIB],
    [40 * MIB, 5 * MIB, 8, 5 * MIB],
    [100 * MIB, 5 * MIB, 20, 5 * MIB],
    [5 * MIB, 5 * MIB, 1, 5 * MIB],
    [5 * MIB + 1, 5 * MIB, 2, 1],
    // 50 000 MiB would need 10 000 parts of exactly 5 MiB; one byte more needs bigger parts.
    [50_000 * MIB + 1, 6 * MIB, 8334, 50_000 * MIB + 1 - 8333 * 6 * MIB],
  ])('cuts %d bytes into parts of %d, %d of them, the last %d bytes', (bytes, partSize, partCount, last) => {
    const plan = planParts(bytes);
    expect(plan).toEqual({ partSize, partCount });
    expect(partLength(bytes, plan, partCount)).toBe(last);
    expect(plan.partCount).toBeLessThanOrEqual(MAX_PART_COUNT);
    let total = 0;
    for (let n = 1; n <= plan.partCount; n += 1) total += partLength(bytes, plan, n);
    expect(total).toBe(bytes);
    if (plan.partCount > 1) expect(partLength(bytes, plan, 1)).toBeGreaterThanOrEqual(5 * MIB);
  });
});
