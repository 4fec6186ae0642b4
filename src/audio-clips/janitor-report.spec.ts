import { describeJanitorReport } from './janitor-report';

describe('describeJanitorReport', () => {
  it('says what each count is', () => {
    const text = describeJanitorReport({
      completedClips: 4,
      failedClips: 0,
      expiredClips: 2,
      deletedObjects: 3,
      failedDeletions: 0,
      remainingDeletions: 15,
      purgedTombstones: 2,
    });
    expect(text.split('\n')).toEqual([
      'Janitor pass done:',
      '  4 uploads the phone never completed, completed by the server',
      '  0 uploads never completed failed (not the declared audio)',
      expect.stringMatching(/^ {2}2 pending clips expired \(nothing uploaded within UPLOAD_TTL_SECONDS/),
      '  3 stored objects deleted',
      expect.stringMatching(/^ {2}0 deletions failed \(the store refused or was unreachable\); retried with back-off$/),
      expect.stringMatching(/^ {2}15 deletions still scheduled: upload keys whose URL may still be used/),
      '  2 deletions older than SYNC_TOMBSTONE_TTL_SECONDS forgotten by the change feed',
    ]);
  });

  it('uses the singular for one', () => {
    const text = describeJanitorReport({
      completedClips: 1,
      failedClips: 1,
      expiredClips: 1,
      deletedObjects: 1,
      failedDeletions: 1,
      remainingDeletions: 1,
      purgedTombstones: 1,
    });
    expect(text).toMatch(/1 upload the phone never completed, completed by the server/);
    expect(text).toMatch(/1 upload never completed failed/);
    expect(text).toMatch(/1 pending clip expired/);
    expect(text).toMatch(/1 stored object deleted/);
    expect(text).toMatch(/1 deletion failed/);
    expect(text).toMatch(/1 deletion still scheduled/);
  });
});
