import { describeJanitorReport } from './janitor-report';

describe('describeJanitorReport', () => {
  it('says what each count is', () => {
    const text = describeJanitorReport({
      expiredClips: 2,
      deletedObjects: 3,
      failedDeletions: 0,
      remainingDeletions: 15,
    });
    expect(text.split('\n')).toEqual([
      'Janitor pass done:',
      expect.stringMatching(/^ {2}2 pending clips expired \(not completed within UPLOAD_TTL_SECONDS/),
      '  3 stored objects deleted',
      expect.stringMatching(/^ {2}0 deletions failed \(the store refused or was unreachable\); retried with back-off$/),
      expect.stringMatching(/^ {2}15 deletions still scheduled: upload keys whose URL may still be used/),
    ]);
  });

  it('uses the singular for one', () => {
    const text = describeJanitorReport({
      expiredClips: 1,
      deletedObjects: 1,
      failedDeletions: 1,
      remainingDeletions: 1,
    });
    expect(text).toMatch(/1 pending clip expired/);
    expect(text).toMatch(/1 stored object deleted/);
    expect(text).toMatch(/1 deletion failed/);
    expect(text).toMatch(/1 deletion still scheduled/);
  });
});
