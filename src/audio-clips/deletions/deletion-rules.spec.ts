import { AudioClipStatus } from '../audio-clip.entity';
import { deletionsFor, deletionsOfGoneClip, type GoneClip, UPLOAD_GRACE_MS, uploadOpenUntil } from './deletion-rules';

const NOW = new Date('2026-11-27T10:00:00.000Z');
const MINUTE = 60_000;
const S3 = { revokesUploadUrls: false };
const LOCAL = { revokesUploadUrls: true };

function clip(overrides: Partial<GoneClip> = {}): GoneClip {
  return {
    ownerId: 'alice',
    bytes: 16_044,
    storageKey: 'dev/audio-clips/c.wav',
    uploadKey: 'dev/uploads/c.wav',
    // A URL handed out ten minutes ago, valid for fifteen.
    uploadExpiresAt: new Date(NOW.getTime() + 5 * MINUTE),
    multipartUploadId: null,
    status: AudioClipStatus.Pending,
    ...overrides,
  };
}

describe('deletionsFor', () => {
  it('deletes the audio at once and the upload key again once no upload can land in it', () => {
    expect(deletionsFor(clip(), NOW)).toEqual([
      { storageKey: 'dev/audio-clips/c.wav', deleteAfter: NOW },
      {
        storageKey: 'dev/uploads/c.wav',
        deleteAfter: new Date(NOW.getTime() + 5 * MINUTE + UPLOAD_GRACE_MS),
        multipartUploadId: null,
      },
    ]);
  });

  it('never schedules the last delete in the past', () => {
    const long = clip({ uploadExpiresAt: new Date(NOW.getTime() - 2 * UPLOAD_GRACE_MS) });
    expect(deletionsFor(long, NOW)[1].deleteAfter).toEqual(NOW);
  });

  it('charges nobody', () => {
    for (const request of deletionsFor(clip(), NOW)) {
      expect(request.ownerId ?? null).toBeNull();
      expect(request.heldBytes ?? null).toBeNull();
    }
  });
});

describe('deletionsOfGoneClip', () => {
  it('on a store that cannot revoke URLs, charges the owner the declared bytes on the upload key while its URL is open', () => {
    const requests = deletionsOfGoneClip(clip(), NOW, S3);
    expect(requests).toEqual([
      { storageKey: 'dev/audio-clips/c.wav', deleteAfter: NOW },
      {
        storageKey: 'dev/uploads/c.wav',
        deleteAfter: uploadOpenUntil(new Date(NOW.getTime() + 5 * MINUTE)),
        multipartUploadId: null,
        ownerId: 'alice',
        heldBytes: 16_044,
      },
    ]);
  });

  it('keeps charging through the grace after the URL ran out, when an upload begun in time may still land', () => {
    const ranOut = clip({ uploadExpiresAt: new Date(NOW.getTime() - UPLOAD_GRACE_MS + MINUTE) });
    expect(deletionsOfGoneClip(ranOut, NOW, S3)[1]).toMatchObject({ ownerId: 'alice', heldBytes: 16_044 });
  });

  it('charges nothing once no upload can land any more (an expired clip)', () => {
    const closed = clip({ uploadExpiresAt: new Date(NOW.getTime() - UPLOAD_GRACE_MS) });
    expect(deletionsOfGoneClip(closed, NOW, S3)).toEqual(deletionsFor(closed, NOW));
    const never = clip({ uploadExpiresAt: null });
    expect(deletionsOfGoneClip(never, NOW, S3)).toEqual(deletionsFor(never, NOW));
  });

  it('charges nothing on a store that refuses the URLs of gone clips', () => {
    expect(deletionsOfGoneClip(clip(), NOW, LOCAL)).toEqual(deletionsFor(clip(), NOW));
  });

  it('charges a multipart upload too, with its id for the abort that ends the charge', () => {
    const multipart = clip({ bytes: 40 * 1024 * 1024, multipartUploadId: 'upload-1' });
    expect(deletionsOfGoneClip(multipart, NOW, S3)[1]).toMatchObject({
      storageKey: 'dev/uploads/c.wav',
      multipartUploadId: 'upload-1',
      ownerId: 'alice',
      heldBytes: 40 * 1024 * 1024,
    });
  });

  it('charges the one entry of a clip whose upload key is its storage key', () => {
    const same = clip({ uploadKey: 'dev/audio-clips/c.wav' });
    expect(deletionsOfGoneClip(same, NOW, S3)).toEqual([
      expect.objectContaining({ storageKey: 'dev/audio-clips/c.wav', ownerId: 'alice', heldBytes: 16_044 }),
    ]);
  });
});
