import { attachmentDisposition, noteFileName, recordingFileName, safeFileStem } from './archive-names';

describe('archive names', () => {
  it('keeps any script, and makes path separators and reserved characters harmless', () => {
    expect(safeFileStem('Über/Straße: «日本語» 🎙️')).toBe('Über_Straße_ «日本語» 🎙️');
    expect(safeFileStem('a\\b<c>d"e|f?g*h')).toBe('a_b_c_d_e_f_g_h');
    expect(safeFileStem('../../etc/passwd')).toBe('_.._etc_passwd');
    expect(safeFileStem('..')).toBe('Untitled');
    expect(safeFileStem('  ')).toBe('Untitled');
    expect(safeFileStem('line\nbreak\ttab\u0000nul')).toBe('line break tab_nul');
    expect(safeFileStem('ends with dots...')).toBe('ends with dots');
    expect(safeFileStem('e\u0301')).toBe('é'); // NFC
  });

  it('never leaves a separator, a control character or a leading dot, whatever the title', () => {
    const titles = ['/', '\\\\', '.hidden', 'x/../y', '\u202e rtl', 'a'.repeat(500), '🎙️'.repeat(100), '\r\n'];
    for (const title of titles) {
      const stem = safeFileStem(title);
      expect(stem).not.toMatch(/[/\\\p{Cc}]/u);
      expect(stem).not.toMatch(/^\./);
      expect([...stem].length).toBeLessThanOrEqual(60);
      expect(stem.length).toBeGreaterThan(0);
    }
  });

  it('names notes and recordings in their folders, with the id and the right extension', () => {
    const id = '5f0c2b8e-8d1a-4c3e-9a57-2f1d6e4b7c90';
    expect(noteFileName({ id, title: 'Groceries / Monday' })).toBe('notes/Groceries _ Monday (5f0c2b8e).md');
    const createdAt = new Date('2026-11-27T10:00:00Z');
    expect(recordingFileName({ id, mimeType: 'audio/mp4', createdAt }, 'Täglich')).toBe(
      'recordings/Täglich 2026-11-27 (5f0c2b8e).m4a',
    );
    expect(recordingFileName({ id, mimeType: 'audio/webm;codecs=opus', createdAt }, null)).toBe(
      'recordings/Recording 2026-11-27 (5f0c2b8e).webm',
    );
  });

  it('gives the download an attachment disposition', () => {
    expect(attachmentDisposition('advanced-notes-export-2026-11-27.zip')).toBe(
      `attachment; filename="advanced-notes-export-2026-11-27.zip"; filename*=UTF-8''advanced-notes-export-2026-11-27.zip`,
    );
  });
});
