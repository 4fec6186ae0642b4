import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/** Exports of an owner's data (POST /api/me/exports): one row per archive, built in the background. */
export class Exports1765300000000 implements MigrationInterface {
  name = 'Exports1765300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const timestamp = queryRunner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';
    await queryRunner.createTable(
      new Table({
        name: 'exports',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'owner_id', type: 'varchar', length: '255' },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'storage_key', type: 'varchar', length: '512', isNullable: true },
          { name: 'bytes', type: 'bigint', isNullable: true },
          { name: 'attempts', type: 'integer', default: 0 },
          { name: 'next_attempt_at', type: timestamp },
          { name: 'claim_token', type: 'varchar', length: '36', isNullable: true },
          { name: 'claimed_until', type: timestamp, isNullable: true },
          { name: 'last_error', type: 'varchar', length: '500', isNullable: true },
          { name: 'created_at', type: timestamp },
          { name: 'updated_at', type: timestamp },
          { name: 'ready_at', type: timestamp, isNullable: true },
          { name: 'expires_at', type: timestamp, isNullable: true },
        ],
      }),
    );
    await queryRunner.createIndices('exports', [
      new TableIndex({ name: 'idx_exports_owner_created', columnNames: ['owner_id', 'created_at'] }),
      new TableIndex({ name: 'idx_exports_status_next_attempt', columnNames: ['status', 'next_attempt_at'] }),
      new TableIndex({
        name: 'idx_exports_one_running_per_owner',
        columnNames: ['owner_id'],
        isUnique: true,
        where: "status IN ('pending', 'running')",
      }),
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('exports');
  }
}
