import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/** The janitor asks, for every object it is about to delete, whether a pending clip still uploads to that key. */
export class UploadKeyIndex1764600000000 implements MigrationInterface {
  name = 'UploadKeyIndex1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex(
      'audio_clips',
      new TableIndex({ name: 'idx_audio_clips_upload_key', columnNames: ['upload_key'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('audio_clips', 'idx_audio_clips_upload_key');
  }
}
