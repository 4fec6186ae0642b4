import { MigrationInterface, QueryRunner, Table, TableForeignKey, TableIndex } from 'typeorm';

/**
 * Renditions and waveforms: a row per clip and format the server makes in the background, claimed by
 * one worker at a time with a lease; and the clip's waveform (100 peaks, hex). Clips already ready get
 * their pending row here, so they are rendered too.
 */
export class Renditions1765400000000 implements MigrationInterface {
  name = 'Renditions1765400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const timestamp = queryRunner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';
    // A plain ADD COLUMN: TypeORM's addColumn rebuilds the table on SQLite, which would drop the
    // sync triggers on audio_clips (src/sync/sync-triggers.ts).
    await queryRunner.query('ALTER TABLE audio_clips ADD COLUMN waveform varchar(200)');
    await queryRunner.createTable(
      new Table({
        name: 'renditions',
        columns: [
          { name: 'clip_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'format', type: 'varchar', length: '16', isPrimary: true },
          { name: 'owner_id', type: 'varchar', length: '255' },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'source', type: 'varchar', length: '16', default: "'rendition'" },
          { name: 'storage_key', type: 'varchar', length: '512' },
          { name: 'bytes', type: 'bigint', isNullable: true },
          { name: 'duration_ms', type: 'integer', isNullable: true },
          { name: 'failure_reason', type: 'varchar', length: '500', isNullable: true },
          { name: 'attempts', type: 'integer', default: 0 },
          { name: 'claim_token', type: 'varchar', length: '36', isNullable: true },
          { name: 'claimed_until', type: timestamp, isNullable: true },
          { name: 'created_at', type: timestamp },
          { name: 'updated_at', type: timestamp },
        ],
        indices: [
          new TableIndex({ name: 'idx_renditions_status_claimed', columnNames: ['status', 'claimed_until'] }),
          new TableIndex({ name: 'idx_renditions_storage_key', columnNames: ['storage_key'] }),
          new TableIndex({ name: 'idx_renditions_owner', columnNames: ['owner_id'] }),
        ],
        foreignKeys: [
          new TableForeignKey({
            name: 'fk_renditions_clip',
            columnNames: ['clip_id'],
            referencedTableName: 'audio_clips',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          }),
        ],
      }),
    );
    // Every clip already ready is rendered too. The key is the clip's own, its extension replaced.
    const now = queryRunner.connection.driver.options.type === 'postgres' ? 'now()' : 'CURRENT_TIMESTAMP';
    const clips = (await queryRunner.query(
      "SELECT id, owner_id, storage_key FROM audio_clips WHERE status = 'ready'",
    )) as { id: string; owner_id: string; storage_key: string }[];
    for (const clip of clips) {
      const key = clip.storage_key.replace(/\.[a-z0-9]+$/i, '') + '.universal.m4a';
      const params = [clip.id, clip.owner_id, key];
      await queryRunner.query(
        queryRunner.connection.driver.options.type === 'postgres'
          ? `INSERT INTO renditions (clip_id, format, owner_id, status, storage_key, created_at, updated_at) VALUES ($1, 'm4a', $2, 'pending', $3, ${now}, ${now})`
          : `INSERT INTO renditions (clip_id, format, owner_id, status, storage_key, created_at, updated_at) VALUES (?, 'm4a', ?, 'pending', ?, ${now}, ${now})`,
        params,
      );
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('renditions');
    await queryRunner.query('ALTER TABLE audio_clips DROP COLUMN waveform');
  }
}
