import type { JanitorReport } from './audio-clip-janitor.service';

/** What one janitor pass did, for a person reading `npm run sweep` (`--json` prints the report itself). */
export function describeJanitorReport(report: JanitorReport): string {
  return [
    'Janitor pass done:',
    `  ${report.completedClips} ${plural(report.completedClips, 'upload')} the phone never completed, completed by the server`,
    `  ${report.failedClips} ${plural(report.failedClips, 'upload')} never completed failed (not the declared audio)`,
    `  ${report.expiredClips} pending ${plural(report.expiredClips, 'clip')} expired (nothing uploaded within UPLOAD_TTL_SECONDS, upload URL run out)`,
    `  ${report.deletedObjects} stored ${plural(report.deletedObjects, 'object')} deleted`,
    `  ${report.failedDeletions} ${plural(report.failedDeletions, 'deletion')} failed (the store refused or was unreachable); retried with back-off`,
    `  ${report.remainingDeletions} ${plural(report.remainingDeletions, 'deletion')} still scheduled: upload keys whose URL may still be used ` +
      '(deleted once it has run out), keys a pending clip still uses, and retries',
    `  ${report.purgedTombstones} ${plural(report.purgedTombstones, 'deletion')} older than SYNC_TOMBSTONE_TTL_SECONDS forgotten by the change feed`,
  ].join('\n');
}

function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`;
}
