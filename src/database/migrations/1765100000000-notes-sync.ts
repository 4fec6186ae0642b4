import { MigrationInterface, QueryRunner, Table, TableColumn, TableForeignKey, TableIndex } from 'typeorm';
import { dropSyncTriggers, installSyncTriggers } from '../../sync/sync-triggers';

/**
 * Notes a phone can sync (docs/sync.md): note versions and the hash of the create that made a note under a
 * client's id; a per-owner change counter, a change number on every note and clip, and tombstones of
 * deleted ones, kept up by triggers; the notes' revisions; and idempotency keys scoped per endpoint.
 */
export class NotesSync1765100000000 implements MigrationInterface {
  name = 'NotesSync1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const postgres = queryRunner.connection.driver.options.type === 'postgres';
    const timestamp = postgres ? 'timestamptz' : 'datetime';

    await queryRunner.addColumns('notes', [
      new TableColumn({ name: 'version', type: 'integer', default: 1 }),
      new TableColumn({ name: 'change_seq', type: 'bigint', default: 0 }),
      new TableColumn({ name: 'create_request_hash', type: 'varchar', length: '64', isNullable: true }),
    ]);
    await queryRunner.addColumn('audio_clips', new TableColumn({ name: 'change_seq', type: 'bigint', default: 0 }));

    await queryRunner.createTable(
      new Table({
        name: 'sync_owners',
        columns: [
          { name: 'owner_id', type: 'varchar', length: '255', isPrimary: true },
          // The owner's last change number; its row lock orders the owner's writers.
          { name: 'seq', type: 'bigint', default: 0 },
          // New with every fresh row: cursors of an owner whose sync state was reset answer 410.
          { name: 'epoch', type: 'varchar', length: '32' },
          // The highest change number of a tombstone purged: older cursors may have missed it.
          { name: 'purged_seq', type: 'bigint', default: 0 },
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'sync_tombstones',
        columns: [
          { name: 'item_type', type: 'varchar', length: '16', isPrimary: true },
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'owner_id', type: 'varchar', length: '255' },
          { name: 'version', type: 'integer', isNullable: true },
          { name: 'deleted_at', type: timestamp },
          { name: 'change_seq', type: 'bigint' },
        ],
        indices: [
          new TableIndex({ name: 'idx_sync_tombstones_owner_seq', columnNames: ['owner_id', 'change_seq'] }),
          new TableIndex({ name: 'idx_sync_tombstones_deleted', columnNames: ['deleted_at'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'note_revisions',
        columns: [
          { name: 'note_id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'version', type: 'integer', isPrimary: true },
          { name: 'owner_id', type: 'varchar', length: '255' },
          { name: 'title', type: 'varchar', length: '200' },
          { name: 'body', type: 'text' },
          { name: 'created_at', type: timestamp },
        ],
        foreignKeys: [
          new TableForeignKey({
            name: 'fk_note_revisions_note',
            columnNames: ['note_id'],
            referencedTableName: 'notes',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          }),
        ],
      }),
    );

    // Rows from before: numbered per owner (notes, then clips, oldest first), each note's content its version 1.
    await queryRunner.query(
      `UPDATE notes SET change_seq = ranked.seq FROM (
         SELECT id, ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY created_at, id) AS seq FROM notes
       ) AS ranked WHERE notes.id = ranked.id`,
    );
    await queryRunner.query(
      `UPDATE audio_clips SET change_seq = ranked.seq FROM (
         SELECT clip.id, ROW_NUMBER() OVER (PARTITION BY clip.owner_id ORDER BY clip.created_at, clip.id)
           + COALESCE((SELECT MAX(note.change_seq) FROM notes note WHERE note.owner_id = clip.owner_id), 0) AS seq
         FROM audio_clips clip
       ) AS ranked WHERE audio_clips.id = ranked.id`,
    );
    const randomEpoch = postgres ? 'md5(random()::text || owner_id)' : 'lower(hex(randomblob(16)))';
    await queryRunner.query(
      `INSERT INTO sync_owners (owner_id, seq, epoch, purged_seq)
       SELECT owner_id, MAX(change_seq), ${randomEpoch}, 0 FROM (
         SELECT owner_id, change_seq FROM notes UNION ALL SELECT owner_id, change_seq FROM audio_clips
       ) AS changes GROUP BY owner_id`,
    );
    await queryRunner.query(
      'INSERT INTO note_revisions (note_id, version, owner_id, title, body, created_at) SELECT id, 1, owner_id, title, body, updated_at FROM notes',
    );

    // The feed reads an owner's changes in order of their numbers.
    await queryRunner.createIndex(
      'notes',
      new TableIndex({ name: 'idx_notes_owner_change', columnNames: ['owner_id', 'change_seq'] }),
    );
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_owner_change', columnNames: ['owner_id', 'change_seq'] }),
    );

    // Keys now name their endpoint (the same key may serve a note and a clip) and what they created.
    await queryRunner.query('CREATE TABLE idempotency_keys_before_sync AS SELECT * FROM idempotency_keys');
    await queryRunner.dropTable('idempotency_keys');
    await queryRunner.createTable(idempotencyKeysTable(timestamp));
    await queryRunner.query(
      `INSERT INTO idempotency_keys (owner_id, endpoint, idempotency_key, request_hash, resource_id, created_at)
       SELECT owner_id, 'audio-clips', idempotency_key, request_hash, clip_id, created_at FROM idempotency_keys_before_sync`,
    );
    await queryRunner.query('DROP TABLE idempotency_keys_before_sync');

    // Last: SQLite drops a table's triggers whenever TypeORM rebuilds it (the columns added above did).
    await installSyncTriggers(queryRunner);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const postgres = queryRunner.connection.driver.options.type === 'postgres';
    const timestamp = postgres ? 'timestamptz' : 'datetime';
    await dropSyncTriggers(queryRunner);
    await queryRunner.query('CREATE TABLE idempotency_keys_after_sync AS SELECT * FROM idempotency_keys');
    await queryRunner.dropTable('idempotency_keys');
    await queryRunner.createTable(
      new Table({
        name: 'idempotency_keys',
        columns: [
          { name: 'owner_id', type: 'varchar', length: '255', isPrimary: true },
          { name: 'idempotency_key', type: 'varchar', length: '255', isPrimary: true },
          { name: 'request_hash', type: 'varchar', length: '64' },
          { name: 'clip_id', type: 'varchar', length: '36' },
          { name: 'created_at', type: timestamp },
        ],
        indices: [new TableIndex({ name: 'idx_idempotency_keys_created', columnNames: ['created_at'] })],
      }),
    );
    await queryRunner.query(
      `INSERT INTO idempotency_keys (owner_id, idempotency_key, request_hash, clip_id, created_at)
       SELECT owner_id, idempotency_key, request_hash, resource_id, created_at FROM idempotency_keys_after_sync
       WHERE endpoint = 'audio-clips'`,
    );
    await queryRunner.query('DROP TABLE idempotency_keys_after_sync');
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_owner_change');
    await queryRunner.dropIndex('notes', 'idx_notes_owner_change');
    await queryRunner.dropTable('note_revisions');
    await queryRunner.dropTable('sync_tombstones');
    await queryRunner.dropTable('sync_owners');
    await queryRunner.dropColumn('audio_clips', 'change_seq');
    for (const column of ['create_request_hash', 'change_seq', 'version'])
      await queryRunner.dropColumn('notes', column);
  }
}

function idempotencyKeysTable(timestamp: string): Table {
  return new Table({
    name: 'idempotency_keys',
    columns: [
      { name: 'owner_id', type: 'varchar', length: '255', isPrimary: true },
      { name: 'endpoint', type: 'varchar', length: '32', isPrimary: true },
      { name: 'idempotency_key', type: 'varchar', length: '255', isPrimary: true },
      { name: 'request_hash', type: 'varchar', length: '64' },
      { name: 'resource_id', type: 'varchar', length: '36' },
      { name: 'created_at', type: timestamp },
    ],
    indices: [new TableIndex({ name: 'idx_idempotency_keys_created', columnNames: ['created_at'] })],
  });
}
