import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * Resumable uploads: a large clip is uploaded in parts through one multipart upload on the store,
 * whose id the clip keeps (and the deletion outbox too, so an abandoned upload is aborted, not left
 * holding its parts).
 */
export class MultipartUploads1764900000000 implements MigrationInterface {
  name = 'MultipartUploads1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumns('audio_clips', [
      new TableColumn({ name: 'multipart_upload_id', type: 'varchar', length: '1024', isNullable: true }),
      new TableColumn({ name: 'part_size', type: 'bigint', isNullable: true }),
    ]);
    await queryRunner.addColumn(
      'storage_deletions',
      new TableColumn({ name: 'multipart_upload_id', type: 'varchar', length: '1024', isNullable: true }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('storage_deletions', 'multipart_upload_id');
    await queryRunner.dropColumn('audio_clips', 'part_size');
    await queryRunner.dropColumn('audio_clips', 'multipart_upload_id');
  }
}
