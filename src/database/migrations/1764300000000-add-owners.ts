import { MigrationInterface, QueryRunner, TableColumn, TableIndex } from 'typeorm';

const OWNED_TABLES = ['notes', 'audio_clips'] as const;

/**
 * Every note and clip gets an owner: the `sub` of the token that created it. Rows written before
 * sign-in existed go to `LEGACY_OWNER_ID` when it is set at migration time, otherwise to the empty
 * owner, which no token can have (see the README for handing them to someone).
 */
export class AddOwners1764300000000 implements MigrationInterface {
  name = 'AddOwners1764300000000';

  /** TypeORM builds migrations without arguments, so the configured owner comes in through a subclass. */
  static withLegacyOwner(legacyOwnerId: string): typeof AddOwners1764300000000 {
    return class extends AddOwners1764300000000 {
      protected override readonly legacyOwner = legacyOwnerId;
    };
  }

  protected readonly legacyOwner: string = '';

  async up(queryRunner: QueryRunner): Promise<void> {
    const placeholder = queryRunner.connection.driver.options.type === 'postgres' ? '$1' : '?';
    for (const table of OWNED_TABLES) {
      await queryRunner.addColumn(
        table,
        new TableColumn({ name: 'owner_id', type: 'varchar', length: '255', isNullable: true }),
      );
      await queryRunner.query(`UPDATE ${table} SET owner_id = ${placeholder}`, [this.legacyOwner]);
      await queryRunner.changeColumn(
        table,
        'owner_id',
        new TableColumn({ name: 'owner_id', type: 'varchar', length: '255', isNullable: false }),
      );
    }
    await queryRunner.dropIndex('notes', 'idx_notes_created_at_id');
    // A user's notes, newest first, page by page.
    await queryRunner.createIndex(
      'notes',
      new TableIndex({ name: 'idx_notes_owner_created', columnNames: ['owner_id', 'created_at', 'id'] }),
    );
    // The storage quota sums a user's pending and ready clips.
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_owner_status', columnNames: ['owner_id', 'status'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_owner_status');
    await queryRunner.dropIndex('notes', 'idx_notes_owner_created');
    await queryRunner.createIndex(
      'notes',
      new TableIndex({ name: 'idx_notes_created_at_id', columnNames: ['created_at', 'id'] }),
    );
    for (const table of OWNED_TABLES) await queryRunner.dropColumn(table, 'owner_id');
  }
}
