import { FixedWindowThrottlerStorage } from './fixed-window.storage';

describe('FixedWindowThrottlerStorage', () => {
  let storage: FixedWindowThrottlerStorage;
  let now: number;

  beforeEach(() => {
    now = Date.parse('2026-11-27T10:00:00Z');
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    storage = new FixedWindowThrottlerStorage();
  });

  afterEach(() => {
    storage.onModuleDestroy();
    jest.restoreAllMocks();
  });

  it('allows exactly `limit` requests per window, then blocks until the window ends', async () => {
    const answers = [];
    for (let i = 0; i < 4; i += 1) answers.push(await storage.increment('user:a', 60_000, 3, 60_000, 'default'));
    expect(answers.map((answer) => answer.isBlocked)).toEqual([false, false, false, true]);
    expect(answers[3]).toEqual({ totalHits: 4, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 60 });

    now += 45_000;
    expect(await storage.increment('user:a', 60_000, 3, 60_000, 'default')).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 15,
    });

    now += 15_000;
    expect(await storage.increment('user:a', 60_000, 3, 60_000, 'default')).toEqual({
      totalHits: 1,
      timeToExpire: 60,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
  });

  it('keeps callers and named limits apart', async () => {
    for (let i = 0; i < 3; i += 1) await storage.increment('user:a', 60_000, 3, 60_000, 'default');
    expect((await storage.increment('user:b', 60_000, 3, 60_000, 'default')).totalHits).toBe(1);
    expect((await storage.increment('user:a', 60_000, 3, 60_000, 'uploads')).totalHits).toBe(1);
  });

  it('never reports less than one second to wait', async () => {
    await storage.increment('ip:1', 1000, 1, 1000, 'default');
    now += 999;
    expect((await storage.increment('ip:1', 1000, 1, 1000, 'default')).timeToBlockExpire).toBe(1);
  });
});
