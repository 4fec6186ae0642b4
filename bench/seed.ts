import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AudioClip, AudioClipStatus, DurationSource } from '../src/audio-clips/audio-clip.entity';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions } from '../src/database/database.options';
import { Note } from '../src/notes/note.entity';

/** Notes and ready clips of one owner, in the database `env` names (migrated first). */
export async function seed(
  env: Record<string, string>,
  owner: string,
  noteCount: number,
  clipCount: number,
): Promise<{ noteIds: string[]; clipIds: string[] }> {
  const dataSource = await new DataSource({
    ...dataSourceOptions(loadAppConfig(env).database),
    logging: false,
  }).initialize();
  const now = Date.now();
  const notes = Array.from({ length: noteCount }, (_, i) =>
    Object.assign(new Note(), {
      id: randomUUID(),
      ownerId: owner,
      title: `note ${i}`,
      body: '',
      createdAt: new Date(now - i),
      updatedAt: new Date(now - i),
    }),
  );
  await dataSource.getRepository(Note).insert(notes);
  const clips = Array.from({ length: clipCount }, (_, i) => {
    const id = randomUUID();
    const at = new Date(now - i * 1000);
    return Object.assign(new AudioClip(), {
      id,
      ownerId: owner,
      noteId: notes[i % noteCount].id,
      status: AudioClipStatus.Ready,
      mimeType: 'audio/m4a',
      bytes: 123456,
      durationMs: 42000,
      declaredDurationMs: 42000,
      durationSource: DurationSource.Measured,
      contentMd5: null,
      storageKey: `bench/audio-clips/${id}.m4a`,
      uploadKey: `bench/uploads/${id}.m4a`,
      uploadExpiresAt: null,
      failureReason: null,
      createdAt: at,
      updatedAt: at,
      completedAt: at,
    });
  });
  for (let i = 0; i < clips.length; i += 200) await dataSource.getRepository(AudioClip).insert(clips.slice(i, i + 200));
  await dataSource.destroy();
  return { noteIds: notes.map((note) => note.id), clipIds: clips.map((clip) => clip.id) };
}
