import { MigrationInterface, QueryRunner, TableColumn, TableIndex } from 'typeorm';

/**
 * An S3 upload URL cannot be revoked: after its clip is deleted or failed it still writes the clip's
 * declared bytes until it runs out. The outbox entry of such an upload key names the owner those bytes
 * are counted against, and how many they are, until its last delete.
 */
export class DeadUploadHolders1765000000000 implements MigrationInterface {
  name = 'DeadUploadHolders1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumns('storage_deletions', [
      new TableColumn({ name: 'owner_id', type: 'varchar', length: '255', isNullable: true }),
      new TableColumn({ name: 'held_bytes', type: 'bigint', isNullable: true }),
    ]);
    // The quota-checked insert sums an owner's held bytes on every create.
    await queryRunner.createIndex(
      'storage_deletions',
      new TableIndex({ name: 'idx_storage_deletions_owner', columnNames: ['owner_id'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('storage_deletions', 'idx_storage_deletions_owner');
    await queryRunner.dropColumn('storage_deletions', 'held_bytes');
    await queryRunner.dropColumn('storage_deletions', 'owner_id');
  }
}
